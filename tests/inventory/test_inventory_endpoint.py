"""The inventory's clients find their endpoint where boto3 looks for it (AWS_ENDPOINT_URL):
a poll through moto running as a server on a loopback port."""

from __future__ import annotations

import boto3
import pytest
from moto.server import ThreadedMotoServer

from receiver.inventory.poller import InventoryPoller
from receiver.model import LIMITS
from receiver.store import MemoryStore
from tests.inventory.kit import ACCOUNT, REGION, MotoClients, settings, tables
from tests.processes import free_port

pytestmark = [pytest.mark.aws, pytest.mark.usefixtures("aws_env")]


async def test_a_poll_goes_to_the_endpoint_of_aws_endpoint_url(monkeypatch):
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    store = MemoryStore()
    await store.open()
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
        boto3.client("dynamodb", region_name=REGION).create_table(
            TableName="served",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            ProvisionedThroughput={"ReadCapacityUnits": 4, "WriteCapacityUnits": 2},
        )
        poller = InventoryPoller(store, settings(), clients=MotoClients())
        await poller.poll_once()
        served = (await tables(store))["served"]
        assert served["provisioned"] == {"read": 4, "write": 2}
        assert served["problems"] == {}
        assert [item.account for item in await store.inventory(LIMITS)] == [ACCOUNT]
        assert poller.counters.snapshot().last_poll_ms is not None
    finally:
        await store.close()
        server.stop()
