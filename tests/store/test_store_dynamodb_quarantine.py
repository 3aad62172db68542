"""What only the DynamoDB store does with quarantined records, and its health check.

A record is zlib-compressed and split into part items, named by a pointer item written
after them (receiver/store/dynamodb/quarantine.py). These tests read the table past the
store to show the layout, and break commits half-way to show that a record is never read
half. The backend-independent contract is in test_store_quarantine.py.
"""

from __future__ import annotations

import asyncio
import math
import threading

import pytest
from botocore.exceptions import ClientError

from receiver.store import StoreError
from receiver.store.dynamodb import DynamoDBStore
from receiver.store.dynamodb import quarantine as dynamodb_quarantine
from receiver.store.dynamodb import table as dynamodb_table
from receiver.store.dynamodb.quarantine import PART_BYTES
from receiver.store.dynamodb.runner import CONTROL_THREADS
from tests.builders import T0, make_sample, make_series, many_samples
from tests.store.test_store_quarantine import FIREHOSE_MAX_RECORD, incompressible, record

ALL_TIME = (0, 2**62)
DAY_S = 86_400
ITEM_LIMIT = 400 * 1024
"""DynamoDB's item size limit, attribute names included."""


def partition(store: DynamoDBStore, pk: str) -> list[dict]:
    """Every item of one partition as DynamoDB holds it, read past the store."""
    client, items, request = store.client, [], {"TableName": store.table_name, "ConsistentRead": True}
    request |= {"KeyConditionExpression": "pk = :pk", "ExpressionAttributeValues": {":pk": {"S": pk}}}
    while True:
        page = client.query(**request)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return items
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def item_size(item: dict) -> int:
    """An item's size as DynamoDB counts it, for the attribute types these items use."""
    size = 0
    for name, value in item.items():
        size += len(name.encode())
        if "B" in value:
            size += len(value["B"])
        elif "S" in value:
            size += len(value["S"].encode())
        else:  # a number: about one byte per two digits, plus one
            size += math.ceil(len(value["N"].lstrip("-")) / 2) + 1
    return size


class FailingBatches:
    """Wraps the store client's batch_write_item: batches that ``fails(requests)`` picks raise."""

    def __init__(self, store: DynamoDBStore, fails) -> None:
        self._real = store.client.batch_write_item
        self._fails = fails
        self._store = store
        store.client.batch_write_item = self

    def __call__(self, **kwargs):
        (requests,) = kwargs["RequestItems"].values()
        if self._fails(requests):
            error = {"Error": {"Code": "ValidationException", "Message": "injected"}}
            raise ClientError(error, "BatchWriteItem")
        return self._real(**kwargs)

    def remove(self) -> None:
        self._store.client.batch_write_item = self._real


def writes_pointers(requests: list[dict]) -> bool:
    return any(r.get("PutRequest", {}).get("Item", {}).get("pk", {}).get("S") == "QK" for r in requests)


# -- layout -------------------------------------------------------------------------------


async def test_a_record_of_firehoses_largest_size_is_split_into_parts_under_the_item_limit(make_store):
    store = await make_store(hour_retention_days=2)
    large = record(data=incompressible(FIREHOSE_MAX_RECORD))
    await store.commit("req-1", [], [large])
    parts = partition(store, "QR")
    assert len(parts) == 3  # ~1,024,000 incompressible bytes in parts of 350,000
    assert all(len(part["data"]["B"]) <= PART_BYTES for part in parts)
    assert all(item_size(part) < ITEM_LIMIT for part in parts)
    assert {part["parts"]["N"] for part in parts} == {"3"}
    expires_at = large.received_ms // 1000 + 2 * DAY_S  # the hour retention, from receipt
    assert {int(part["expires_at"]["N"]) for part in parts} == {expires_at}
    (pointer,) = partition(store, "QK")
    assert pointer["parts"]["N"] == "3" and pointer["request_id"]["S"] == "req-1"
    assert int(pointer["expires_at"]["N"]) == expires_at
    assert all(part["sk"]["S"].startswith(f"{large.received_ms:013d}#req-1#0000000000#") for part in parts)


async def test_several_records_of_the_largest_size_read_back_across_query_pages(make_store):
    store = await make_store()
    records = [record(index=i, received_ms=T0 + i, data=incompressible(FIREHOSE_MAX_RECORD, seed=i)) for i in range(4)]
    await store.commit("req-1", [], records)
    assert await store.quarantined() == records
    assert await store.quarantined(limit=2) == records[:2]


async def test_records_are_checked_in_rounds_without_changing_what_is_read(make_store, monkeypatch):
    monkeypatch.setattr(dynamodb_quarantine, "_CHECK_BYTES", 1)  # every record a round of its own
    store = await make_store()
    records = [record(f"req-{i % 3}", i, T0 + i // 4) for i in range(12)]
    await store.commit("req-1", [], records)
    expected = sorted(records, key=lambda r: (r.received_ms, r.request_id, r.index))
    assert await store.quarantined() == expected
    assert await store.quarantined(limit=5) == expected[:5]


async def test_a_long_request_id_full_of_separators_is_kept_and_deleted(make_store):
    store = await make_store()
    long_id = "#%" * 1000  # escaped, three times a sort key's 1,024 bytes
    kept = [record("#%", 0), record(long_id, 0), record(long_id, 1)]  # in the order they are listed
    await store.commit("req-1", [], kept)
    assert await store.quarantined() == kept
    await store.delete_quarantined([(long_id, 0)])
    assert await store.quarantined() == [kept[0], kept[2]]


async def test_a_record_its_keys_cannot_hold_stores_nothing_of_the_commit(make_store):
    store = await make_store()
    with pytest.raises(StoreError, match="received at -1 ms"):
        await store.commit("req-1", [make_sample()], [record(), record(index=1, received_ms=-1)])
    assert await store.samples(*ALL_TIME) == []
    assert partition(store, "QR") == [] and partition(store, "QK") == []
    assert not await store.is_committed("req-1")


# -- commits broken half-way, replacing, deleting --------------------------------------------


async def test_a_commit_that_fails_before_its_pointers_keeps_no_record_and_its_resend_one(make_store):
    store = await make_store()
    large = record(data=incompressible(FIREHOSE_MAX_RECORD))
    failing = FailingBatches(store, writes_pointers)
    with pytest.raises(StoreError):
        await store.commit("req-1", [make_sample()], [large])
    failing.remove()
    assert len(partition(store, "QR")) == 3  # every part written, then the crash
    assert await store.quarantined() == [] and await store.count_quarantined() == 0
    assert not await store.is_committed("req-1")
    resent = record(received_ms=large.received_ms + 30_000, data=large.data)
    await store.commit("req-1", [make_sample()], [resent])
    assert await store.quarantined() == [resent] and await store.count_quarantined() == 1
    # The crashed write's parts stay unread until their TTL.
    assert len(partition(store, "QR")) == 6
    assert all("expires_at" in part for part in partition(store, "QR"))


async def test_a_commit_that_fails_half_way_through_the_parts_keeps_no_record(make_store):
    store = await make_store()
    records = [record(index=i, data=incompressible(FIREHOSE_MAX_RECORD, seed=i)) for i in range(9)]  # 27 parts
    batches = 0
    lock = threading.Lock()

    def second_batch_of_parts(requests: list[dict]) -> bool:
        nonlocal batches
        with lock:
            batches += 1
            return batches == 2

    failing = FailingBatches(store, second_batch_of_parts)
    with pytest.raises(StoreError):
        await store.commit("req-1", [], records)
    failing.remove()
    assert 0 < len(partition(store, "QR")) < 27
    assert await store.quarantined() == [] and await store.count_quarantined() == 0


async def test_a_pointer_whose_parts_are_not_all_there_is_not_read(make_store):
    store = await make_store()
    large = record(index=0, data=incompressible(FIREHOSE_MAX_RECORD))
    small = record(index=1, received_ms=T0 + 1)
    await store.commit("req-1", [], [large, small])
    middle = sorted(partition(store, "QR"), key=lambda item: item["sk"]["S"])[1]
    store.client.delete_item(TableName=store.table_name, Key={"pk": middle["pk"], "sk": middle["sk"]})
    assert await store.quarantined() == [small]


async def test_keeping_a_record_again_deletes_the_parts_of_the_first(make_store):
    store = await make_store()
    await store.commit("req-1", [], [record(data=incompressible(FIREHOSE_MAX_RECORD))])
    again = record(received_ms=T0 + 5_000, data=b"resent")
    await store.commit("req-1", [], [again])
    (part,) = partition(store, "QR")
    (pointer,) = partition(store, "QK")
    assert part["sk"]["S"].startswith(f"{T0 + 5_000:013d}#") and pointer["write"]["S"] in part["sk"]["S"]


async def test_delete_removes_the_pointer_and_every_part(make_store):
    store = await make_store()
    await store.commit("req-1", [], [record(index=i, data=incompressible(FIREHOSE_MAX_RECORD, i)) for i in range(2)])
    await store.delete_quarantined([("req-1", 0), ("req-1", 1)])
    assert partition(store, "QR") == [] and partition(store, "QK") == []


# -- ping ----------------------------------------------------------------------------------


async def test_ping_answers_while_every_thread_of_the_store_waits_on_dynamodb(make_store):
    store = await make_store(max_workers=2)
    gate, entered, lock = threading.Event(), [0], threading.Lock()

    def held(real):
        def call(**kwargs):
            with lock:
                entered[0] += 1
            gate.wait()
            return real(**kwargs)

        return call

    store.client.batch_write_item = held(store.client.batch_write_item)
    store.client.get_item = held(store.client.get_item)
    # Two commits hold both work threads (each in its catalog batch), two duplicate checks
    # both control threads.
    jobs = [
        asyncio.create_task(
            store.commit(
                f"big-{n}",
                many_samples(100, tables=50) if n == 0 else [make_sample(series=make_series(metric="Other"))],
            )
        )
        for n in range(2)
    ]
    jobs += [asyncio.create_task(store.is_committed(f"req-{n}")) for n in range(CONTROL_THREADS)]
    while entered[0] < 2 + CONTROL_THREADS:
        await asyncio.sleep(0.01)
    try:
        # Queued behind the held calls, this would never return: the bound only ends a hang.
        await asyncio.wait_for(store.ping(), timeout=60)
    finally:
        gate.set()
    await asyncio.gather(*jobs)
    assert await store.is_committed("big-0")


async def test_concurrent_pings_share_one_call(dynamodb_factory):
    store = dynamodb_factory()
    await store.open()
    client = store._table.ping_client
    real, gate, calls = client.get_item, threading.Event(), []

    def held(**kwargs):
        calls.append(kwargs)
        gate.wait()
        return real(**kwargs)

    client.get_item = held
    first = asyncio.create_task(store.ping())
    while not calls:
        await asyncio.sleep(0.01)
    others = [asyncio.create_task(store.ping()) for _ in range(3)]
    await asyncio.sleep(0)
    gate.set()
    await asyncio.gather(first, *others)
    assert len(calls) == 1
    await store.ping()  # the next one is a call of its own
    assert len(calls) == 2
    await store.close()


@pytest.mark.parametrize("code", ["ThrottlingException", "ProvisionedThroughputExceededException"])
async def test_a_throttled_store_is_up(dynamodb_factory, code):
    store = dynamodb_factory()
    await store.open()

    def throttled(**kwargs):
        raise ClientError({"Error": {"Code": code, "Message": "busy"}, "ResponseMetadata": {"HTTPStatusCode": 400}},
                          "GetItem")  # fmt: skip

    store._table.ping_client.get_item = throttled
    await store.ping()
    await store.close()


async def test_a_store_failing_past_the_ping_bound_is_down(dynamodb_factory, monkeypatch):
    monkeypatch.setattr(dynamodb_table, "PING_TIMEOUT_S", 0.2)
    store = dynamodb_factory()
    await store.open()
    calls = []

    def failing(**kwargs):
        calls.append(kwargs)
        raise ClientError({"Error": {"Code": "InternalServerError", "Message": "down"},
                           "ResponseMetadata": {"HTTPStatusCode": 500}}, "GetItem")  # fmt: skip

    store._table.ping_client.get_item = failing
    with pytest.raises(StoreError, match="InternalServerError"):
        await store.ping()
    assert len(calls) > 1  # retried within the bound first
    await store.close()
