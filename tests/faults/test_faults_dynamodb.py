"""DynamoDB faults (on moto): throttling of every write and a full outage give 503 with
Retry-After, and once they pass the emulator's retries deliver everything once.

The faults come from a wrapper around the store's botocore client, so the store's own retry
and give-up path runs exactly as it would against DynamoDB."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from moto import mock_aws

from receiver.store.dynamodb import DynamoDBStore
from receiver.store.dynamodb.retry import RetryPolicy
from tests.faults.steps import (
    assert_stored_exactly,
    deliver_across_fault,
    post_expecting_503,
    receiver_on,
    workload_samples,
)

WRITES = frozenset({"batch_write_item", "put_item", "update_item", "delete_item", "transact_write_items"})
READS = frozenset({"get_item", "batch_get_item", "query", "scan"})


def throttled(operation: str) -> ClientError:
    return ClientError(
        {
            "Error": {
                "Code": "ProvisionedThroughputExceededException",
                "Message": "Rate of requests exceeds the allowed throughput.",
            },
            "ResponseMetadata": {"HTTPStatusCode": 400},
        },
        operation,
    )


def unreachable(operation: str) -> EndpointConnectionError:
    return EndpointConnectionError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com/")


class FaultyClient:
    """Passes every call to the real client, except the chosen operations while ``failing``.

    Calls reach moto one at a time: moto's DynamoDB is not thread-safe (a query iterating a
    table while another thread adds to it raises), and the store calls from several
    threads, the receiver's deriver among them. DynamoDB itself has no such limit.
    """

    def __init__(self, client: Any, operations: frozenset[str], error: Any) -> None:
        self._client = client
        self._operations = operations
        self._error = error
        self._one_at_a_time = threading.Lock()
        self.failing = True
        self.injected = 0

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._client, name)
        if not callable(real):
            return real

        def call(*args: Any, **kwargs: Any) -> Any:
            if self.failing and name in self._operations:
                self.injected += 1
                raise self._error(name)
            with self._one_at_a_time:
                return real(*args, **kwargs)

        return call


@pytest.fixture
def dynamodb_store():
    with mock_aws():
        # A short retry budget: each refused delivery gives up after a fraction of a second.
        yield DynamoDBStore("metrics", region="us-east-1", create=True, retry=RetryPolicy(timeout_s=0.3))


@pytest.mark.parametrize(
    ("operations", "error", "cause"),
    [
        (WRITES, throttled, "ProvisionedThroughputExceededException"),
        (WRITES | READS, unreachable, "Could not connect"),
    ],
    ids=["throttling", "outage"],
)
async def test_dynamodb_fault_gives_503_and_retries_deliver_everything_once(dynamodb_store, operations, error, cause):
    samples = workload_samples()
    async with receiver_on(dynamodb_store) as client:
        table = dynamodb_store._table
        faulty = FaultyClient(table._client, operations, error)
        table._client = faulty
        refused = await post_expecting_503(client, samples, cause=cause)
        assert faulty.injected > 0

        def recover() -> None:
            faulty.failing = False

        await deliver_across_fault(client, samples, clear_fault=recover)
        await assert_stored_exactly(dynamodb_store, samples, refused)
