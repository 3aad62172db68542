"""The SQLite store's packed layout: rows of blocks, what a repeat leaves behind, and the upgrade
of files whose samples were one row each (schema 3 and 4)."""

from __future__ import annotations

import dataclasses
import sqlite3

import orjson
import pytest

from receiver.model import DAY_MS, HOUR_MS, MINUTE_MS
from receiver.store.sqlite import repack
from receiver.store.sqlite.schema import SCHEMA_VERSION
from tests.builders import LABELS, T0, make_sample, make_series

ALL_TIME = (0, 2**62)


def peek(path, sql: str, *params) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql, params).fetchall()


def blocks(store) -> list[tuple]:
    """(metric, start, datapoints) of every row, in the order written."""
    return peek(
        store.path,
        "SELECT m.metric, b.start_ms, b.n FROM sample_blocks b JOIN metrics m ON m.id = b.metric_id ORDER BY b.seq",
    )


async def test_a_delivery_is_one_row_per_metric_and_start(sqlite_store):
    request = [
        make_sample(f"T{t}", metric, minute)
        for t in range(5)
        for metric in ("ConsumedReadCapacityUnits", "ThrottledRequests")
        for minute in range(3)
    ]
    await sqlite_store.commit("r1", request)
    rows = blocks(sqlite_store)
    assert sorted(rows) == sorted(
        (metric, T0 + minute * MINUTE_MS, 5)
        for metric in ("ConsumedReadCapacityUnits", "ThrottledRequests")
        for minute in range(3)
    )


async def test_a_repeat_keeps_its_earlier_copy_until_the_minute_is_pruned(sqlite_store):
    old = [make_sample(f"T{t}") for t in range(4)]
    recent = [make_sample(f"T{t}", minute=8 * DAY_MS // MINUTE_MS) for t in range(4)]
    await sqlite_store.commit("r1", old + recent)
    await sqlite_store.commit("r2", old)  # the same datapoints again: a second row, read once
    assert [n for _, _, n in blocks(sqlite_store)] == [4, 4, 4]
    assert await sqlite_store.count_samples() == 8
    await sqlite_store.prune(recent[0].start_ms + MINUTE_MS)  # 7 days of minutes kept
    assert [(start, n) for _, start, n in blocks(sqlite_store)] == [(recent[0].start_ms, 4)]
    assert sorted(await sqlite_store.samples(*ALL_TIME), key=repr) == sorted(recent, key=repr)


# -- files of schema 3 and 4: one row per datapoint -----------------------------------------

OLD_SAMPLES = """
CREATE TABLE samples (
    metric_id INTEGER NOT NULL, start_ms INTEGER NOT NULL, series_id INTEGER NOT NULL, end_ms INTEGER NOT NULL,
    unit TEXT, count REAL NOT NULL, sum REAL NOT NULL, min REAL NOT NULL, max REAL NOT NULL,
    stats TEXT NOT NULL, labels_id INTEGER NOT NULL,
    PRIMARY KEY (metric_id, start_ms, series_id, end_ms)
) WITHOUT ROWID
"""


def old_samples() -> list:
    """What a file of one row per datapoint may hold: several metrics, minutes and period
    lengths, units other than their series' (the empty one too), stats and labels."""
    latency = make_series("SuccessfulRequestLatency", operation="GetItem", unit="Milliseconds")
    return [
        *(make_sample(f"T{t}", minute=m, value=float(t + m)) for t in range(3) for m in range(3)),
        make_sample("T0", minute=0, period_minutes=5, value=50.0),
        make_sample(series=latency, minute=1, stats=(("p50", 1.25), ("p99", 7.5), ("p99.9", 9.0))),
        make_sample(series=dataclasses.replace(make_series(table="T1"), unit="None"), minute=4),
        make_sample(series=dataclasses.replace(make_series(table="T2"), unit=""), minute=4, labels=()),
        make_sample("T3", minute=5, labels=(("record", "7"),)),
    ]


async def old_file(sqlite_factory, version: int):
    """A store file as a receiver of schema ``version`` (3 or 4) left it, holding ``old_samples``.

    The current store writes the samples (so metrics, series and labels have their rows);
    then they are moved into the old one-row-per-datapoint table and the blocks dropped.
    """
    samples = old_samples()
    store = sqlite_factory()
    await store.open()
    await store.commit("r1", samples)
    versions = await store.versions(MINUTE_MS, [s.start_ms for s in samples])
    await store.close()
    with sqlite3.connect(store.path) as conn:
        conn.execute(OLD_SAMPLES)
        for sample in samples:
            series = sample.series
            metric_id, series_id, unit = conn.execute(
                "SELECT m.id, s.id, s.unit FROM series s JOIN metrics m ON m.id = s.metric_id "
                "WHERE m.metric = ? AND s.dimensions = ?",
                (series.metric, orjson.dumps(series.dimensions).decode()),
            ).fetchone()
            text = orjson.dumps(sample.labels).decode() if sample.labels else "[]"
            (labels_id,) = conn.execute("SELECT id FROM labels WHERE pairs = ?", (text,)).fetchone()
            conn.execute(
                "INSERT INTO samples VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    metric_id, sample.start_ms, series_id, sample.end_ms, None if series.unit == unit else series.unit,
                    sample.count, sample.sum, sample.min, sample.max, orjson.dumps(sample.stats).decode(), labels_id,
                ),
            )  # fmt: skip
        conn.execute("DROP TABLE sample_blocks")
        conn.execute(f"PRAGMA user_version = {version}")
    return store.path, samples, versions


@pytest.mark.parametrize("version", [3, 4])
async def test_a_file_of_one_row_per_datapoint_is_repacked_when_opened(sqlite_factory, version):
    path, samples, versions = await old_file(sqlite_factory, version)
    assert peek(path, "SELECT count(*) FROM samples") == [(len(samples),)]
    store = sqlite_factory()
    await store.open()
    assert sorted(await store.samples(*ALL_TIME), key=repr) == sorted(samples, key=repr)
    assert await store.count_samples() == len(samples)
    assert await store.versions(MINUTE_MS, [s.start_ms for s in samples]) == versions  # nothing to derive again
    assert peek(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert peek(path, "SELECT name FROM sqlite_master WHERE name = 'samples'") == []
    await store.commit("r2", [make_sample("T0", minute=0, value=99.0)])  # a later write still wins
    assert make_sample("T0", minute=0, value=99.0) in await store.samples(T0, T0 + MINUTE_MS)
    await store.close()


async def test_a_large_old_minute_is_repacked_into_blocks_of_at_most_a_slice(sqlite_factory, monkeypatch):
    monkeypatch.setattr(repack, "BLOCK_DATAPOINTS", 4)
    path, samples, _ = await old_file(sqlite_factory, 3)
    store = sqlite_factory()
    await store.open()
    assert max(n for (n,) in peek(path, "SELECT n FROM sample_blocks")) == 4
    assert sorted(await store.samples(*ALL_TIME), key=repr) == sorted(samples, key=repr)
    await store.close()


async def test_a_repack_that_fails_leaves_the_file_as_it_was(sqlite_factory, monkeypatch):
    path, samples, _ = await old_file(sqlite_factory, 3)
    calls = []
    real_block = repack._block

    def failing(*args):
        calls.append(1)
        if len(calls) == 3:
            raise OSError("the disk went away")
        return real_block(*args)

    monkeypatch.setattr(repack, "_block", failing)
    with pytest.raises(OSError):
        await sqlite_factory().open()
    assert peek(path, "PRAGMA user_version") == [(3,)]
    assert peek(path, "SELECT count(*) FROM samples") == [(len(samples),)]
    assert peek(path, "SELECT name FROM sqlite_master WHERE name = 'sample_blocks'") == []
    monkeypatch.setattr(repack, "_block", real_block)
    store = sqlite_factory()
    await store.open()  # the next start repacks it
    assert sorted(await store.samples(*ALL_TIME), key=repr) == sorted(samples, key=repr)
    await store.close()


@pytest.mark.parametrize("held", [0, 1 << 20], ids=["blocks read for each chunk", "blocks read once"])
async def test_an_hour_read_a_few_series_at_a_time_decodes_each_datapoint_once(sqlite_store, monkeypatch, held):
    from receiver.store.sqlite import store as module

    monkeypatch.setattr(module, "SERIES_PER_CHUNK", 3)
    monkeypatch.setattr(module, "BLOCKS_HELD", held)
    # Statistics of several layouts: a chunk decodes its range of each column, these included.
    layouts = [(), (("p50", 1.5),), (("p50", -0.0), ("p99", 7.25))]
    samples = [
        make_sample(f"T{t}", minute=m, labels=LABELS, stats=layouts[(t + m) % 3], value=t * 100.0 + m)
        for t in range(10)
        for m in range(0, 60, 7)
    ]
    await sqlite_store.commit("r1", samples)
    hour = T0 - T0 % HOUR_MS
    chunks = [chunk async for chunk in sqlite_store.samples_by_series(hour, hour + 2 * HOUR_MS)]
    assert len(chunks) == 4  # 10 series, 3 a chunk
    # By repr: -0.0 and 0.0 are equal but not the same value.
    assert sorted(repr(s) for chunk in chunks for s in chunk) == sorted(map(repr, samples))
