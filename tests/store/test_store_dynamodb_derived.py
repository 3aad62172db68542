"""The DynamoDB store's derived-value blocks, chains and entity items (derived.py, value_blocks.py,
entities.py, legacy_values.py): what they write, what a reader sees, and what older receivers left."""

from __future__ import annotations

import asyncio
import dataclasses
import struct
import threading
import zlib

import orjson
import pytest

from receiver.model import MINUTE_MS, DerivedValue, derived_key
from receiver.store.dynamodb import derived, entities, value_blocks
from receiver.store.dynamodb.derived import chain_of, pointer_key
from receiver_tools.write_units import WriteUnits
from tests.builders import T0

SERVICE = "aws-dynamodb::123456789012"
METRIC = "aws_dynamodb_endpoint_x"


def value(endpoint: str | None = "GameScores", v: float = 1.0, metric: str = METRIC, time_ms: int = T0) -> DerivedValue:
    return DerivedValue(metric, "endpoint" if endpoint else "service", SERVICE, endpoint, "AWS_DYNAMODB", time_ms, v)


def tables(count: int, v: float = 1.0, metrics: tuple[str, ...] = (METRIC,)) -> list[DerivedValue]:
    return [value(f"T{i:04d}", v + i, metric) for i in range(count) for metric in metrics]


def pointer(store, bucket_ms: int = T0) -> dict:
    return store.client.get_item(
        TableName=store.table_name, Key=pointer_key(MINUTE_MS, bucket_ms), ConsistentRead=True
    )["Item"]


def blocks(store, group: int) -> list[dict]:
    return store.client.query(
        TableName=store.table_name,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"DB#{MINUTE_MS}#{group:02d}"}},
        ConsistentRead=True,
    )["Items"]


# -- the block codec ---------------------------------------------------------------------------


def test_a_block_reads_back_every_value_bit_for_bit_and_removes_what_it_removes():
    values = [value(f"T{i}", x) for i, x in enumerate([0.1, -0.0, 5e-324, 1.7976931348623157e308, 1 / 3])]
    values.append(dataclasses.replace(value("G", 2.5), region="eu-west-1", merged=False))
    state: value_blocks.State = {}
    for block in value_blocks.encode(values, []):
        value_blocks.apply(state, [block.data], T0)
    assert sorted(state.values(), key=repr) == sorted(values, key=repr)
    assert sorted(struct.pack("<d", v.value) for v in state.values()) == sorted(
        struct.pack("<d", v.value) for v in values
    )
    (removal,) = value_blocks.encode([], [value_blocks.value_id(values[0])])
    value_blocks.apply(state, [removal.data], T0)
    assert value_blocks.value_id(values[0]) not in state and len(state) == len(values) - 1


def test_the_difference_holds_what_changed_to_the_bit_and_what_went():
    old = {value_blocks.value_id(v): v for v in [value("A", 1.0), value("B", 0.0), value("C", 3.0)]}
    upserts, removals = value_blocks.differences(old, [value("A", 1.0), value("B", -0.0), value("D", 4.0)])
    assert sorted((v.endpoint, v.value) for v in upserts) == [("B", -0.0), ("D", 4.0)]
    assert removals == [value_blocks.value_id(value("C"))]


def test_a_block_past_an_item_is_halved_into_parts_of_distinct_values(monkeypatch):
    monkeypatch.setattr(value_blocks, "MAX_BLOCK_BYTES", 600)
    values = tables(300)
    parts = value_blocks.encode(values, [])
    assert len(parts) > 1 and all(len(part.data) <= 600 for part in parts)
    state: value_blocks.State = {}
    value_blocks.apply(state, [part.data for part in parts], T0)
    assert sorted(state.values(), key=repr) == sorted(values, key=repr)


# -- what a pass writes ----------------------------------------------------------------------


async def test_a_change_writes_a_block_per_group_it_touched_not_every_value_again(make_store):
    store = await make_store()
    metrics = tuple(f"aws_dynamodb_endpoint_m{i}" for i in range(40))
    assert await store.put_derived(MINUTE_MS, T0, 1, tables(200, metrics=metrics))
    meter = WriteUnits(store.client)
    changed = [value("T0003", 99.0, metrics[5])]
    assert await store.put_derived_changes(MINUTE_MS, T0, 1, 2, changed, [], 200 * 40)
    # One block (a unit: it holds one value) and the pointer; no value written again.
    assert meter.items["minute values"] == 1 and meter.computed["minute values"] == 1
    assert meter.items["versions"] == 1
    found = await store.derived(metrics[5], MINUTE_MS, T0, T0, service=SERVICE, endpoint="T0003")
    assert [v.value for v in found] == [99.0]
    assert len(await store.bucket_values(MINUTE_MS, T0)) == 200 * 40


async def test_a_whole_put_over_stored_values_stores_their_difference(make_store):
    store = await make_store()
    first = tables(100)
    assert await store.put_derived(MINUTE_MS, T0, 1, first)
    second = [*first[:50], *(dataclasses.replace(v, value=-v.value) for v in first[50:99])]  # the last one goes
    meter = WriteUnits(store.client)
    assert await store.put_derived(MINUTE_MS, T0, 2, second)
    assert meter.items["minute values"] == 1  # one group, the 49 changed values and a removal
    assert len(chain_of(pointer(store)).links) == 2
    assert await store.bucket_values(MINUTE_MS, T0) == sorted(second, key=lambda v: v.endpoint)
    assert not await store.put_derived(MINUTE_MS, T0, 2, first)  # not newer: nothing changes


async def test_blocks_past_an_item_are_stored_in_parts_and_read_whole(make_store, monkeypatch):
    monkeypatch.setattr(value_blocks, "MAX_BLOCK_BYTES", 1500)
    store = await make_store()
    values = tables(400)
    assert await store.put_derived(MINUTE_MS, T0, 1, values)
    (link,) = chain_of(pointer(store)).links
    assert link.parts > 1
    assert len(blocks(store, value_blocks.group_of(METRIC))) == link.parts
    assert await store.bucket_values(MINUTE_MS, T0) == sorted(values, key=lambda v: v.endpoint)
    found = await store.derived(METRIC, MINUTE_MS, T0, T0, service=SERVICE, endpoint="T0399")
    assert [v.value for v in found] == [400.0]


async def test_a_long_chain_is_rebased_with_the_same_values(make_store, monkeypatch):
    monkeypatch.setattr(derived, "MAX_CHAIN", 3)
    store = await make_store()
    assert await store.put_derived(MINUTE_MS, T0, 1, tables(10))
    expected = {derived_key(v): v for v in tables(10)}
    for version in range(2, 6):
        upsert = value(f"T{version:04d}", 100.0 + version)
        gone = derived_key(value(f"T{version - 2:04d}"))
        assert await store.put_derived_changes(MINUTE_MS, T0, version - 1, version, [upsert], [gone], 10)
        expected[derived_key(upsert)] = upsert
        expected.pop(gone, None)
        assert len(chain_of(pointer(store)).links) <= 3
    links = chain_of(pointer(store)).links
    assert len(links) < 4  # a base was written again on the way
    assert await store.bucket_values(MINUTE_MS, T0) == sorted(expected.values(), key=lambda v: v.endpoint)


# -- readers and replicas -----------------------------------------------------------------------


async def test_a_reader_sees_a_pass_whole_or_not_at_all(make_store):
    writer, reader = await make_store("shared"), await make_store("shared", create=False)
    assert await writer.put_derived(MINUTE_MS, T0, 1, tables(50, 1.0, ("aws_dynamodb_a", "aws_dynamodb_b")))
    written, resume = threading.Event(), threading.Event()

    def hold_commit(**_) -> None:  # blocks are written; the pointer is not moved yet
        written.set()
        resume.wait(10)

    writer.client.meta.events.register("before-call.dynamodb.UpdateItem", hold_commit)
    changes = tables(50, 1000.0, ("aws_dynamodb_a", "aws_dynamodb_b"))
    task = asyncio.create_task(writer.put_derived_changes(MINUTE_MS, T0, 1, 2, changes, [], 100))
    await asyncio.to_thread(written.wait, 10)
    assert {v.value for v in await reader.bucket_values(MINUTE_MS, T0)} == {1.0 + i for i in range(50)}
    resume.set()
    assert await task
    assert {v.value for v in await reader.bucket_values(MINUTE_MS, T0)} == {1000.0 + i for i in range(50)}


@pytest.mark.parametrize("make_store", ["dynalite"], indirect=True)  # moto's conditions are not atomic
async def test_of_two_replicas_changing_the_same_values_one_wins_and_the_other_leaves_nothing(make_store):
    first, second = await make_store("shared"), await make_store("shared", create=False)
    assert await first.put_derived(MINUTE_MS, T0, 1, tables(20))
    won = await asyncio.gather(
        first.put_derived_changes(MINUTE_MS, T0, 1, 2, [value("T0001", -1.0), value("new-1")], [], 21),
        second.put_derived_changes(
            MINUTE_MS, T0, 1, 2, [value("T0002", -2.0), value("new-2")], [derived_key(value("T0003"))], 20
        ),
    )
    assert sorted(won) == [False, True]
    found = {v.endpoint: v.value for v in await second.bucket_values(MINUTE_MS, T0)}
    if won[0]:
        assert found["T0001"] == -1.0 and "new-1" in found and "new-2" not in found and found["T0002"] == 3.0
    else:
        assert found["T0002"] == -2.0 and "new-2" in found and "T0003" not in found and "new-1" not in found
    assert len(chain_of(pointer(first)).links) == 2  # the loser's blocks are in no chain


async def test_a_change_over_values_another_pass_replaced_is_refused(make_store):
    store = await make_store()
    assert await store.put_derived(MINUTE_MS, T0, 1, tables(5))
    assert await store.put_derived(MINUTE_MS, T0, 3, tables(5, 10.0))
    assert not await store.put_derived_changes(MINUTE_MS, T0, 1, 4, [value("T0000", 0.5)], [], 5)
    assert {v.value for v in await store.bucket_values(MINUTE_MS, T0)} == {10.0 + i for i in range(5)}


# -- what older receivers stored -------------------------------------------------------------


def legacy_items(store, values: list[DerivedValue], version: int) -> None:
    """A bucket as receivers before blocks stored it: an item per metric, a pointer without a chain."""
    rows = [[v.scope, v.service, v.endpoint, v.layer, v.value, v.instance, v.region, v.merged] for v in values]
    put = store.client.put_item
    put(TableName=store.table_name, Item={
        "pk": {"S": f"D#{MINUTE_MS}#{METRIC}"}, "sk": {"S": f"{T0:013d}"}, "metric": {"S": METRIC},
        "version": {"N": str(version)}, "rows": {"B": zlib.compress(orjson.dumps(rows))},
        "expires_at": {"N": str(T0 // 1000 + 7 * 86_400)},
    })  # fmt: skip
    put(TableName=store.table_name, Item={"pk": {"S": "DM"}, "sk": {"S": METRIC}, "metric": {"S": METRIC},
                                          "expires_at": {"N": str(T0 // 1000 + 90 * 86_400)}})  # fmt: skip
    put(TableName=store.table_name, Item={
        **pointer_key(MINUTE_MS, T0), "version": {"N": str(version)}, "derived_version": {"N": str(version)},
        "full_version": {"N": str(version)}, "value_count": {"N": str(len(values))},
        "expires_at": {"N": str(T0 // 1000 + 7 * 86_400)},
    })  # fmt: skip


async def test_values_older_receivers_stored_are_read_until_the_bucket_is_stored_again(make_store):
    store = await make_store()
    old = tables(3)
    legacy_items(store, old, 4)
    assert await store.bucket_values(MINUTE_MS, T0) == old
    found = await store.derived(METRIC, MINUTE_MS, T0 - MINUTE_MS, T0 + MINUTE_MS, service=SERVICE)
    assert found == old
    totals = await store.endpoint_totals(METRIC, MINUTE_MS, T0, T0, service=SERVICE)
    assert totals["T0002"].total == 3.0
    # A change cannot build on them: the deriver then stores the bucket whole, in blocks.
    assert not await store.put_derived_changes(MINUTE_MS, T0, 4, 5, [value("T0000", 9.0)], [], 3)
    assert await store.put_derived(MINUTE_MS, T0, 5, [value("T0000", 9.0)])
    assert await store.bucket_values(MINUTE_MS, T0) == [value("T0000", 9.0)]


# -- entities ---------------------------------------------------------------------------------


async def test_an_entity_item_is_written_once_a_stride_and_the_logs_keep_the_latest_minute(make_store):
    store = await make_store()
    meter = WriteUnits(store.client)
    minutes = [T0 + i * MINUTE_MS for i in range(5)]
    for minute in minutes:
        assert await store.put_derived(MINUTE_MS, minute, 1, [value("A", time_ms=minute)])
    assert await store.put_derived(MINUTE_MS, minutes[0], 2, [value("A"), value("B")])
    items = store.client.query(
        TableName=store.table_name,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": entities.ENTITY_PK}},
        ConsistentRead=True,
    )["Items"]
    assert {item["endpoint"]["S"]: int(item["last_ms"]["N"]) for item in items} == {"A": T0, "B": T0}
    assert meter.items["entities"] == 2  # one item each
    assert meter.items["entity logs"] == 6  # a log per minute and pass with entities new to the minute
    a, b = (SERVICE, "AWS_DYNAMODB", "A", ()), (SERVICE, "AWS_DYNAMODB", "B", ())
    assert await store.entities(T0) == [a, b]
    assert await store.entities(minutes[4]) == [a]  # the item says T0; a log says minute 4
    assert await store.entities(minutes[4] + MINUTE_MS) == []
    assert await store.entities(T0 + MINUTE_MS) == [a]


async def test_a_bucket_an_older_receiver_stored_after_this_one_reads_as_it_stored_it(make_store):
    store = await make_store()
    assert await store.put_derived(MINUTE_MS, T0, 1, tables(3))
    chain = pointer(store)["chain"]
    newer = tables(2, 50.0)
    legacy_items(store, newer, 2)  # an older replica's whole put during a rolling deploy
    store.client.update_item(  # it moved the pointer as it knows it, leaving the chain as it was
        TableName=store.table_name,
        Key=pointer_key(MINUTE_MS, T0),
        UpdateExpression="SET chain = :c, chain_rows = :r, chain_version = :one",
        ExpressionAttributeValues={":c": chain, ":r": {"N": "3"}, ":one": {"N": "1"}},
    )
    assert await store.bucket_values(MINUTE_MS, T0) == newer
    assert not await store.put_derived_changes(MINUTE_MS, T0, 2, 3, [value("T0000", 7.0)], [], 2)
