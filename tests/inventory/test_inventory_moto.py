"""The poller against moto: the documents a poll stores, deleted tables, accounts reached
through roles, and the lease that lets one replica poll."""

from __future__ import annotations

import asyncio

import boto3
import pytest

from receiver.inventory.clients import OWN, RENEW_BEFORE_S, AccountAccess, InventoryClients, client_config
from receiver.inventory.documents import limits_of
from receiver.inventory.poller import LEASE, InventoryPoller
from receiver.model import LIMITS, TABLE
from receiver.store import MemoryStore
from tests.builders import FakeClock
from tests.inventory.kit import (
    ACCOUNT,
    OTHER_ACCOUNT,
    REGION,
    MotoClients,
    eventually,
    settings,
    stop,
    table_items,
    tables,
)

pytestmark = [pytest.mark.aws, pytest.mark.usefixtures("moto")]

ROLE = f"arn:aws:iam::{OTHER_ACCOUNT}:role/inventory-reader"


@pytest.fixture
async def store():
    opened = MemoryStore()
    await opened.open()
    yield opened
    await opened.close()


def create_tables(dynamodb) -> None:
    dynamodb.create_table(
        TableName="orders",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            {"AttributeName": "customer", "AttributeType": "S"},
            {"AttributeName": "placed", "AttributeType": "S"},
        ],
        ProvisionedThroughput={"ReadCapacityUnits": 25, "WriteCapacityUnits": 10},
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by_customer",
                "KeySchema": [{"AttributeName": "customer", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
                "ProvisionedThroughput": {"ReadCapacityUnits": 7, "WriteCapacityUnits": 3},
            }
        ],
        LocalSecondaryIndexes=[
            {
                "IndexName": "by_placed",
                "KeySchema": [
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "placed", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        # Twelve tags: moto answers ListTagsOfResource ten at a time, so NextToken is followed.
        Tags=[{"Key": f"tag{i:02d}", "Value": f"value{i}"} for i in range(12)],
    )
    dynamodb.update_time_to_live(
        TableName="orders", TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires"}
    )
    dynamodb.update_continuous_backups(
        TableName="orders", PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
    )
    for sk in ("a", "b"):
        dynamodb.put_item(TableName="orders", Item={"pk": {"S": "p"}, "sk": {"S": sk}})
    dynamodb.create_table(
        TableName="events",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        OnDemandThroughput={"MaxReadRequestUnits": 500, "MaxWriteRequestUnits": 100},
        Tags=[{"Key": "team", "Value": "payments"}],
    )


async def test_a_poll_stores_each_table_field_by_field_and_the_limits(store):
    create_tables(boto3.client("dynamodb", region_name=REGION))
    clock = FakeClock()
    poller = InventoryPoller(store, settings(), clock=clock, clients=MotoClients())
    await poller.poll_once()

    found = await tables(store)
    assert sorted(found) == ["events", "orders"]
    orders = found["orders"]
    assert (orders["account"], orders["region"]) == (ACCOUNT, REGION)
    assert orders["arn"] == f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/orders"
    assert orders["status"] == "ACTIVE"
    assert orders["billing_mode"] == "PROVISIONED"
    assert orders["provisioned"] == {"read": 25, "write": 10}
    assert orders["on_demand_max"] is None
    assert (orders["item_count"], orders["size_bytes"]) == (2, 0)  # moto reports size 0
    assert orders["tags"] == {f"tag{i:02d}": f"value{i}" for i in range(12)}
    assert orders["ttl"] == {"status": "ENABLED", "attribute": "expires"}
    assert orders["stream"]["enabled"] is True and orders["stream"]["view_type"] == "NEW_AND_OLD_IMAGES"
    assert orders["stream"]["label"]
    assert orders["point_in_time_recovery"] == "ENABLED"
    assert orders["contributor_insights"] == {"status": "DISABLED", "rules": []}
    assert orders["deletion_protection"] is False
    assert orders["deleted"] is None and orders["problems"] == {}
    by_customer, by_placed = orders["indexes"]
    assert (by_customer["name"], by_customer["kind"], by_customer["status"]) == ("by_customer", "global", "ACTIVE")
    assert by_customer["provisioned"] == {"read": 7, "write": 3}
    assert by_customer["on_demand_max"] is None
    assert (by_placed["name"], by_placed["kind"], by_placed["provisioned"]) == ("by_placed", "local", None)

    events = found["events"]
    assert events["billing_mode"] == "PAY_PER_REQUEST"
    assert events["provisioned"] is None  # DynamoDB reports 0 units for an on-demand table
    assert events["tags"] == {"team": "payments"}
    assert events["ttl"] == {"status": "DISABLED", "attribute": None}
    assert events["stream"] is None
    assert events["indexes"] == []
    # moto leaves OnDemandThroughput out of DescribeTable; the Stubber tests cover the maximum.

    [limits] = await store.inventory(LIMITS)
    assert (limits.account, limits.region, limits.name) == (ACCOUNT, REGION, "")
    assert limits_of(limits) == {"account_max_read": 20000, "account_max_write": 20000,
                                 "table_max_read": 10000, "table_max_write": 10000}  # fmt: skip
    items = await table_items(store)
    assert {item.updated_ms for item in items.values()} == {int(clock.now * 1000)}
    snapshot = poller.counters.snapshot()
    assert snapshot.last_poll_ms == int(clock.now * 1000)
    assert snapshot.tables == 2
    assert ("ListTables", "ok", 1) in snapshot.calls
    assert ("DescribeTable", "ok", 2) in snapshot.calls
    assert ("ListTagsOfResource", "ok", 3) in snapshot.calls  # two pages for orders, one for events
    assert all(outcome == "ok" for _, outcome, _ in snapshot.calls)


async def test_a_table_deleted_between_polls_is_marked_once_with_its_first_deleted_time(store):
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    create_tables(dynamodb)
    clock = FakeClock()
    poller = InventoryPoller(store, settings(), clock=clock, clients=MotoClients())
    await poller.poll_once()
    dynamodb.delete_table(TableName="events")
    clock.advance(300)
    deleted_at = clock.now
    await poller.poll_once()
    events = (await tables(store))["events"]
    assert events["status"] == "DELETED"
    assert events["deleted"] == deleted_at
    assert events["billing_mode"] == "PAY_PER_REQUEST"  # what it was is kept
    assert (await tables(store))["orders"]["status"] == "ACTIVE"
    assert poller.counters.snapshot().tables == 1
    written = (await table_items(store))["events"]

    clock.advance(300)
    await poller.poll_once()
    assert (await table_items(store))["events"] == written  # not rewritten: nothing changed
    assert (await tables(store))["events"]["deleted"] == deleted_at


async def test_a_role_s_account_is_polled_with_its_own_account_id(store):
    boto3.client("dynamodb", region_name=REGION).create_table(
        TableName="mine",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    # A table in the other account: made with that account's credentials (moto keeps one
    # backend per account, chosen by the role the credentials come from).
    assumed = boto3.client("sts", region_name=REGION).assume_role(RoleArn=ROLE, RoleSessionName="setup")["Credentials"]
    other = boto3.client(
        "dynamodb",
        region_name=REGION,
        aws_access_key_id=assumed["AccessKeyId"],
        aws_secret_access_key=assumed["SecretAccessKey"],
        aws_session_token=assumed["SessionToken"],
    )
    other.create_table(
        TableName="theirs",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    poller = InventoryPoller(store, settings(roles=(ROLE,)), clients=MotoClients(roles=(ROLE,)))
    await poller.poll_once()

    assert list(await tables(store, ACCOUNT)) == ["mine"]
    theirs = (await tables(store, OTHER_ACCOUNT))["theirs"]
    assert theirs["account"] == OTHER_ACCOUNT
    assert theirs["arn"] == f"arn:aws:dynamodb:{REGION}:{OTHER_ACCOUNT}:table/theirs"
    assert {(i.account, i.name) for i in await store.inventory(LIMITS)} == {(ACCOUNT, ""), (OTHER_ACCOUNT, "")}
    calls = poller.counters.snapshot().calls
    assert ("AssumeRole", "ok", 1) in calls and ("GetCallerIdentity", "ok", 1) in calls


async def test_assumed_credentials_are_renewed_before_they_end():
    clients = InventoryClients((ROLE,), REGION)
    access = clients.new_access(ROLE)
    assert access.account == OTHER_ACCOUNT and access.expires is not None
    clients._clock = lambda: access.expires - RENEW_BEFORE_S - 60
    assert clients.cached_access(ROLE) is access
    clients._clock = lambda: access.expires - RENEW_BEFORE_S + 60
    assert clients.cached_access(ROLE) is None  # the poller assumes the role again
    assert clients.cached_access(OWN) is None  # never found yet
    own = clients.new_access(OWN)
    assert own.account == ACCOUNT and own.expires is None
    assert clients.cached_access(OWN) is own


async def test_each_client_has_the_inventory_s_retries_timeouts_and_user_agent(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    clients = InventoryClients((), REGION)
    access = AccountAccess(ACCOUNT, OWN, boto3.Session())
    client = clients.client(access, "eu-west-1", "dynamodb")
    assert clients.client(access, "eu-west-1", "dynamodb") is client  # one per account, region and service
    config = client.meta.config
    assert client_config().retries == {"mode": "standard", "max_attempts": 3}
    assert config.retries == {"mode": "standard", "total_max_attempts": 4}  # botocore: 3 retries after the first
    assert (config.connect_timeout, config.read_timeout) == (5, 20)
    assert "receiver-inventory" in config.user_agent_extra
    assert client.meta.region_name == "eu-west-1"
    assert client.meta.endpoint_url == "http://127.0.0.1:4566"  # boto3's own configuration


async def test_only_the_lease_holder_polls_and_a_release_on_cancel_lets_the_other_take_it(store):
    create_tables(boto3.client("dynamodb", region_name=REGION))
    first = InventoryPoller(store, settings(interval_s=0.2), clients=MotoClients())
    second = InventoryPoller(store, settings(interval_s=0.2), clients=MotoClients())
    running_first = asyncio.create_task(first.run())

    async def first_polled():
        return first.counters.snapshot().last_poll_ms is not None

    await eventually(first_polled)
    running_second = asyncio.create_task(second.run())

    before = first.counters.count("ListTables", "ok")

    async def first_polled_twice_more():
        return first.counters.count("ListTables", "ok") >= before + 2

    await eventually(first_polled_twice_more)  # while the second tried the lease every 0.2 s
    assert first.counters.holding_lease and not second.counters.holding_lease
    assert second.counters.total() == 0  # not one call while the other holds the lease

    running_first.cancel()
    await running_first  # returns quietly
    assert not first.counters.holding_lease
    now_ms = int(first._clock() * 1000)
    assert await store.take_lease(LEASE, "probe", now_ms, 1) is True  # released, not left to run out
    await store.release_lease(LEASE, "probe")

    async def second_polled():
        return second.counters.snapshot().last_poll_ms is not None

    await eventually(second_polled)
    assert second.counters.holding_lease
    assert await store.take_lease(LEASE, first.holder, int(second._clock() * 1000), 1000) is False
    await stop(running_second)
    assert await store.take_lease(LEASE, "probe", int(second._clock() * 1000), 1000) is True  # released
    assert {item.name for item in await store.inventory(TABLE)} == {"orders", "events"}
