"""The DynamoDB store's sample blocks: items past 400 KB, the items of older receivers, the order of
writes, and what a commit costs in write request units."""

from __future__ import annotations

import asyncio
import math
import random
import threading

import orjson
import pytest

from receiver.model import HOUR_MS
from receiver.store import StoreError
from receiver.store.dynamodb import blocks
from receiver.store.dynamodb.blocks import Sequencer
from receiver.store.dynamodb.items import ITEM_BYTES, item_size
from receiver_tools.write_units import WriteUnits
from tests.builders import LABELS, T0, make_sample, make_series

ALL_TIME = (0, 2**62)
PK = f"S#AWS/DynamoDB#ConsumedReadCapacityUnits#{T0 - T0 % HOUR_MS:013d}"


def partition(store, pk: str = PK) -> list[dict]:
    return store.client.query(
        TableName=store.table_name, KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": {"S": pk}}
    )["Items"]


# -- items past 400 KB ---------------------------------------------------------------------


async def test_a_block_larger_than_an_item_is_cut_until_each_part_fits(make_store, monkeypatch):
    monkeypatch.setattr(blocks, "ITEM_BYTES", 1500)
    store = await make_store()
    samples = [make_sample(f"T{i:03d}", value=float(i), stats=(("p99", i / 7),)) for i in range(200)]
    await store.commit("r1", samples)
    items = partition(store)
    assert len(items) >= 4 and all(item_size(item) <= 1500 for item in items)
    assert sorted(await store.samples(*ALL_TIME), key=repr) == sorted(samples, key=repr)
    assert await store.count_samples() == 200


@pytest.mark.parametrize("make_store", ["dynalite"], indirect=True)
async def test_a_slice_past_400_kb_of_one_metric_and_minute_is_stored_in_several_items(make_store):
    store = await make_store()
    draw = random.Random(5)  # values that do not compress: 9 random doubles and a random table name each
    samples = [
        make_sample(
            series=make_series(table=f"{draw.getrandbits(128):032x}"),
            value=draw.random(),
            count=draw.random(),
            low=draw.random(),
            high=draw.random(),
            stats=tuple((f"p{q}", draw.random()) for q in (50, 90, 95, 99, 99.9)),
        )
        for _ in range(8000)
    ]
    await store.commit("r1", samples)
    items = partition(store)
    assert len(items) >= 2 and all(item_size(item) <= ITEM_BYTES for item in items)
    assert sorted(await store.samples(*ALL_TIME), key=repr) == sorted(samples, key=repr)


async def test_a_datapoint_larger_than_an_item_stores_nothing(make_store, monkeypatch):
    monkeypatch.setattr(blocks, "ITEM_BYTES", 400)
    store = await make_store()
    huge = make_sample(series=make_series(table=random.Random(1).randbytes(400).hex()))  # does not compress
    with pytest.raises(StoreError, match="more than a DynamoDB item holds"):
        await store.commit("r1", [make_sample(), huge])
    assert await store.count_samples() == 0 and not await store.is_committed("r1")


# -- the items of older receivers ----------------------------------------------------------


def old_item(sample, retention_s: int = 7 * 86_400) -> dict:
    """A sample as receivers before packed blocks wrote it: one item per datapoint."""
    series = sample.series
    item = {
        "pk": {"S": PK},
        "sk": {"S": f"{sample.start_ms:013d}#{sample.end_ms}#{hash(series.key) & (2**64 - 1):032x}"},
        "account": {"S": series.account},
        "region": {"S": series.region},
        "namespace": {"S": series.namespace},
        "metric": {"S": series.metric},
        "dimensions": {"S": orjson.dumps(series.dimensions).decode()},
        "unit": {"S": series.unit},
        "start_ms": {"N": str(sample.start_ms)},
        "end_ms": {"N": str(sample.end_ms)},
        "count": {"N": repr(sample.count)},
        "sum": {"N": repr(sample.sum)},
        "min": {"N": repr(sample.min)},
        "max": {"N": repr(sample.max)},
        "expires_at": {"N": str(sample.start_ms // 1000 + retention_s)},
    }
    if sample.stats:
        item["stats"] = {"S": orjson.dumps(sample.stats).decode()}
    if sample.labels:
        item["labels"] = {"S": orjson.dumps(sample.labels).decode()}
    return item


async def write_old(store, samples) -> None:
    """Put ``samples`` as an older receiver did: catalog items, then one item each."""
    await store.commit("catalog", [make_sample(minute=0, value=0.0)])  # the metric and hour catalog items
    for item in partition(store):
        store.client.delete_item(TableName=store.table_name, Key={"pk": item["pk"], "sk": item["sk"]})
    for sample in samples:
        store.client.put_item(TableName=store.table_name, Item=old_item(sample))


async def test_items_of_older_receivers_are_read_beside_blocks(make_store):
    store = await make_store()
    old = [make_sample(f"T{i}", minute=m, stats=(("p99", 2.5),), labels=LABELS) for i in range(3) for m in (0, 1)]
    await write_old(store, old)
    new = [make_sample("T5", minute=1)]
    await store.commit("r1", new)
    assert sorted(await store.samples(*ALL_TIME), key=repr) == sorted(old + new, key=repr)
    assert await store.count_samples() == 7


async def test_a_block_replaces_the_older_item_of_the_same_datapoint(make_store):
    store = await make_store()
    await write_old(store, [make_sample("T0", value=1.0), make_sample("T1", value=1.0)])
    await store.commit("r1", [make_sample("T1", value=2.0)])
    found = await store.samples(*ALL_TIME)
    assert sorted(found, key=repr) == sorted([make_sample("T0", value=1.0), make_sample("T1", value=2.0)], key=repr)
    assert await store.count_samples() == 2


# -- the order of writes -------------------------------------------------------------------


def test_sequence_numbers_never_repeat_even_when_the_clock_stands_still():
    sequencer = Sequencer(clock_ns=lambda: 1_700_000_000_000_000_000)
    found: list[int] = []

    def draw() -> None:
        found.extend(sequencer.next() for _ in range(2000))

    threads = [threading.Thread(target=draw) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(found)) == 8000 and min(found) == 1_700_000_000_000_000


async def test_concurrent_commits_of_one_replica_each_keep_their_blocks(make_store):
    store = await make_store()
    requests = [[make_sample(f"T{r}-{i}") for i in range(5)] for r in range(12)]
    await asyncio.gather(*(store.commit(f"r{r}", request) for r, request in enumerate(requests)))
    assert len(partition(store)) == 12
    assert await store.count_samples() == 60


async def test_the_later_of_two_replicas_writing_one_datapoint_wins(make_store):
    first, second = await make_store("shared"), await make_store("shared", create=False)
    await first.commit("r1", [make_sample(value=1.0)])
    await second.commit("r2", [make_sample(value=2.0)])
    await first.commit("r3", [make_sample("Other")])
    for replica in (first, second):
        found = await replica.samples(*ALL_TIME)
        assert sorted(found, key=repr) == sorted([make_sample(value=2.0), make_sample("Other")], key=repr)


# -- write request units -------------------------------------------------------------------


@pytest.mark.parametrize("make_store", ["dynalite"], indirect=True)
async def test_write_units_computed_from_item_sizes_agree_with_what_dynalite_reports(make_store):
    store = await make_store()
    meter = WriteUnits(store.client)
    latency = [
        make_sample(series=make_series("SuccessfulRequestLatency", table=f"T{i}", operation="GetItem"),
                    minute=m, stats=(("p50", 1.5), ("p90", 2.25), ("p99", 9.0)))
        for i in range(300) for m in (0, 1)
    ]  # fmt: skip
    reads = [make_sample(f"T{i}", minute=m, value=float(i)) for i in range(300) for m in (0, 1)]
    await store.write_samples(latency)
    await store.commit("r1", reads)
    # Blocks: one per metric and minute; request id: one; versions: a minute and an hour
    # per slice and minute; catalog: two metrics, their hour.
    assert meter.items["samples"] == 4 and meter.items["request ids"] == 1
    assert meter.items["versions"] == 2 * 3 and meter.items["catalog"] == 2 + 2
    assert meter.computed == meter.reported
    assert 4 <= meter.reported["samples"] < 1200 * 0.05  # 1,200 datapoints in a few KB


async def test_the_meter_counts_what_the_client_writes_by_kind(dynamodb_factory):
    store = dynamodb_factory()
    await store.open()
    meter = WriteUnits(store.client)
    await store.commit("r1", [make_sample(minute=m) for m in range(3)])
    assert meter.items["samples"] == 3 and meter.items["request ids"] == 1
    assert meter.computed["samples"] == 3  # small blocks: a unit each
    await store.close()


def test_an_items_size_follows_dynamodbs_rules():
    item = {
        "pk": {"S": "é#1"},  # names and strings count their UTF-8 bytes
        "n": {"N": "123.4500"},  # 5 significant digits: 3 bytes, and 1
        "z": {"N": "-0.000100"},  # 1 significant digit: 1 byte, and 1
        "b": {"B": b"\x00" * 10},
        "l": {"L": [{"S": "ab"}, {"BOOL": True}]},  # 3, and 1 per element
        "m": {"M": {"k": {"NULL": True}}},
    }
    assert item_size(item) == (2 + 4) + (1 + 4) + (1 + 2) + (1 + 10) + (1 + 3 + 3 + 2) + (1 + 3 + 1 + 1 + 1)
    assert math.isclose(item_size({"d": {"B": b"x" * 1024}}) / 1024, 1025 / 1024)
