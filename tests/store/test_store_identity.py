"""Identity decides, in every backend: whatever was written before, a read gives each datapoint
once, as the last write of it has it (stores keep samples packed: receiver/store/packing.py)."""

from __future__ import annotations

import dataclasses

from receiver.model import DAY_MS, MINUTE_MS
from receiver.store.sqlite import store as sqlite_store_module
from tests.builders import LABELS, T0, make_sample, make_series

ALL_TIME = (0, 2**62)
TABLES = [f"T{i}" for i in range(6)]


def minute_of(tables, minute=0, value=1.0, metric="ConsumedReadCapacityUnits"):
    return [make_sample(table, metric, minute, value) for table in tables]


def ordered(samples) -> list:
    return sorted(samples, key=repr)


async def test_a_delivery_sent_again_leaves_each_datapoint_once(store):
    delivery = minute_of(TABLES) + minute_of(TABLES, minute=1) + minute_of(TABLES[:2], metric="ThrottledRequests")
    await store.commit("r1", delivery)
    await store.commit("r1", delivery)  # Firehose's retry: the same bytes
    await store.commit("r2", delivery)  # or its S3 backup, replayed under another id
    assert ordered(await store.samples(*ALL_TIME)) == ordered(delivery)
    assert await store.count_samples() == len(delivery)


async def test_a_correction_replaces_only_the_datapoints_it_holds(store):
    await store.commit("r1", minute_of(TABLES, value=1.0))
    corrected = minute_of(TABLES[1:4:2], value=9.0)  # T1 and T3
    await store.commit("r2", corrected)
    expected = minute_of([TABLES[0], TABLES[2], TABLES[4], TABLES[5]], value=1.0) + corrected
    assert ordered(await store.samples(*ALL_TIME)) == ordered(expected)
    assert await store.count_samples() == len(TABLES)


async def test_a_minute_delivered_in_parts_reads_back_whole(store):
    parts = [minute_of(TABLES[i : i + 2]) for i in range(0, 6, 2)]
    for number, part in enumerate(parts):
        await store.commit(f"r{number}", part)
    found = await store.samples(T0, T0 + MINUTE_MS)
    assert ordered(found) == ordered([sample for part in parts for sample in part])
    assert await store.count_samples() == len(TABLES)


async def test_the_later_slice_of_one_delivery_wins(store):
    await store.write_samples(minute_of(TABLES, value=1.0))
    await store.commit("r1", minute_of(TABLES[:2], value=2.0))
    expected = minute_of(TABLES[:2], value=2.0) + minute_of(TABLES[2:], value=1.0)
    assert ordered(await store.samples(*ALL_TIME)) == ordered(expected)


async def test_a_correction_may_change_the_unit_and_the_labels(store):
    await store.commit("r1", minute_of(TABLES[:3]))
    renamed = make_sample(
        series=dataclasses.replace(make_series(table="T1"), unit="None"), value=3.0, labels=(("k", "v"),)
    )
    await store.commit("r2", [renamed])
    expected = [*minute_of(["T0"]), renamed, *minute_of(["T2"])]
    assert ordered(await store.samples(*ALL_TIME)) == ordered(expected)


async def test_periods_of_other_lengths_are_other_datapoints_across_writes(store):
    await store.commit("r1", [make_sample(period_minutes=1, value=1.0)])
    await store.commit("r2", [make_sample(period_minutes=5, value=5.0)])
    await store.commit("r3", [make_sample(period_minutes=1, value=2.0)])
    expected = [make_sample(period_minutes=1, value=2.0), make_sample(period_minutes=5, value=5.0)]
    assert ordered(await store.samples(*ALL_TIME)) == ordered(expected)
    assert await store.count_samples() == 2


async def test_a_range_read_sees_the_latest_of_each_datapoint_in_it(store):
    await store.commit("r1", [make_sample(table, minute=m, value=1.0) for table in TABLES[:3] for m in range(4)])
    await store.commit("r2", [make_sample("T1", minute=m, value=7.0) for m in (1, 2, 3)])
    found = await store.samples(T0 + MINUTE_MS, T0 + 3 * MINUTE_MS, metrics=["ConsumedReadCapacityUnits"])
    expected = [make_sample(t, minute=m, value=7.0 if t == "T1" else 1.0) for t in TABLES[:3] for m in (1, 2)]
    assert ordered(found) == ordered(expected)
    assert [s.start_ms for s in found] == sorted(s.start_ms for s in found)


async def test_samples_by_series_gives_the_latest_of_each_datapoint_once(store, monkeypatch):
    monkeypatch.setattr(sqlite_store_module, "SERIES_PER_CHUNK", 2)  # SQLite: a chunk reads part of each block
    await store.commit("r1", minute_of(TABLES, value=1.0) + minute_of(TABLES, minute=1, value=1.0))
    await store.commit("r2", minute_of(TABLES[3:], value=2.0))
    chunks = [chunk async for chunk in store.samples_by_series(T0, T0 + 2 * MINUTE_MS)]
    found = [sample for chunk in chunks for sample in chunk]
    expected = minute_of(TABLES[:3]) + minute_of(TABLES[3:], value=2.0) + minute_of(TABLES, minute=1)
    assert ordered(found) == ordered(expected)
    assert all(len({s.series.key for s in chunk} & {s.series.key for s in other}) == 0
               for i, chunk in enumerate(chunks) for other in chunks[i + 1 :])  # fmt: skip


async def test_pruning_drops_every_copy_of_a_past_minute_and_keeps_the_rest(pruning_store):
    store = pruning_store
    recent_minute = 8 * DAY_MS // MINUTE_MS
    await store.commit("r1", minute_of(TABLES) + minute_of(TABLES, minute=recent_minute))
    await store.commit("r2", minute_of(TABLES, value=3.0))  # a correction of the old minute
    await store.commit("r3", minute_of(TABLES[:2], minute=recent_minute, value=4.0))
    await store.prune(T0 + recent_minute * MINUTE_MS + MINUTE_MS)  # the minute retention: 7 days
    expected = minute_of(TABLES[:2], minute=recent_minute, value=4.0) + minute_of(TABLES[2:], minute=recent_minute)
    assert ordered(await store.samples(*ALL_TIME)) == ordered(expected)
    assert await store.count_samples() == len(TABLES)


async def test_labels_that_differ_within_one_write_are_kept_per_datapoint(store):
    samples = [make_sample(table, labels=LABELS if i % 2 else (("record", str(i)),)) for i, table in enumerate(TABLES)]
    await store.commit("r1", samples)
    assert ordered(await store.samples(*ALL_TIME)) == ordered(samples)
