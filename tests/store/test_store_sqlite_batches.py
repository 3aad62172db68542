"""The SQLite commit path on large requests: multi-row statements, bulk checks, shared objects."""

from __future__ import annotations

import dataclasses
import math
import sqlite3

import pytest

from receiver.store import StoreError
from tests.builders import LABELS, T0, make_sample, make_series, many_samples

ALL_TIME = (0, 2**62)

# Larger than one 256-row statement plus some 16-row ones and single rows, so a request
# exercises every statement size the store uses.
BIG = 2 * 256 + 5 * 16 + 7


def by_identity(samples) -> dict:
    return {sample.identity: sample for sample in samples}


async def test_a_large_request_reads_back_exactly(sqlite_store):
    request = many_samples(BIG, tables=50)
    await sqlite_store.commit("r1", request)
    assert by_identity(await sqlite_store.samples(*ALL_TIME)) == by_identity(request)
    assert await sqlite_store.count_samples() == BIG


@pytest.mark.parametrize("positions", [(3, 200), (10, 300), (100, BIG - 1), (BIG - 3, BIG - 1)])
async def test_a_duplicate_anywhere_in_a_large_request_keeps_the_last(sqlite_store, positions):
    request = many_samples(BIG, tables=BIG)  # every identity distinct
    first, last = positions
    request[last] = request[first]._replace(sum=-1.0, stats=(("p99", 3.5),))
    await sqlite_store.commit("r1", request)
    stored = by_identity(await sqlite_store.samples(*ALL_TIME))
    assert stored[request[first].identity] == request[last]
    assert len(stored) == BIG - 1


async def test_units_and_labels_of_each_sample_survive_a_large_request(sqlite_store):
    series = [make_series(table=f"T{i}") for i in range(40)]
    await sqlite_store.commit("r0", [make_sample(series=one) for one in series])  # fixes each series' unit
    request = [
        make_sample(
            series=series[i % 40] if i % 3 else make_series(table=f"T{i % 40}", unit="Percent"),
            minute=1 + i // 40,
            labels=LABELS if i % 2 else (("record", str(i % 7)),),  # equal tuples, not shared ones
        )
        for i in range(BIG)
    ]
    await sqlite_store.commit("r1", request)
    stored = by_identity(await sqlite_store.samples(T0 + 60_000, 2**62))
    assert stored == by_identity(request)


@pytest.mark.parametrize(
    "change",
    [
        {"sum": 1e308, "max": 1e308},  # finite, but a float sum over the column overflows
        {"stats": (("null", 1.0), ("p99", 2.0))},  # a stat name that looks like a NaN in JSON
    ],
    ids=["huge-values", "stat-named-null"],
)
async def test_finite_values_that_look_suspicious_in_bulk_are_stored(sqlite_store, change):
    request = [sample._replace(**change) for sample in many_samples(20, tables=20)]
    await sqlite_store.commit("r1", request)
    assert by_identity(await sqlite_store.samples(*ALL_TIME)) == by_identity(request)


@pytest.mark.parametrize(
    "bad", [{"min": math.nan}, {"stats": (("p90", 1.0), ("p99", math.inf))}], ids=["nan-min", "inf-stat"]
)
async def test_a_non_finite_value_deep_in_a_large_request_is_named_and_stores_nothing(sqlite_store, bad):
    request = many_samples(BIG, tables=50)
    poisoned = make_sample(series=make_series(table="Poisoned"), minute=3)._replace(**bad)
    request[BIG - 5] = poisoned
    with pytest.raises(StoreError, match=f"AWS/DynamoDB/ConsumedReadCapacityUnits .*Poisoned.* at {T0 + 180_000}"):
        await sqlite_store.commit("r1", request)
    assert await sqlite_store.count_samples() == 0
    assert not await sqlite_store.is_committed("r1")


async def test_a_unit_that_reads_like_the_same_unit_marker_is_kept(sqlite_store):
    await sqlite_store.commit("r0", [make_sample(series=make_series(unit="Count"))])
    odd = [make_sample(series=make_series(unit=unit), minute=1 + i) for i, unit in enumerate(("0", "", "None"))]
    await sqlite_store.commit("r1", odd)
    assert await sqlite_store.samples(T0 + 60_000, 2**62) == odd


async def test_units_other_than_the_rows_are_kept_once_every_series_is_known(sqlite_store):
    # The second and third commits find every series in the store's caches (one lookup
    # each): the units that differ from their row's must still be written, and only those.
    counted = [make_series(table=f"T{i}") for i in range(10)]
    percent = [dataclasses.replace(one, unit="Percent") for one in counted[:3]]
    await sqlite_store.commit("r0", [make_sample(series=one) for one in counted])  # rows in Count
    requests = [
        [make_sample(series=one, minute=1) for one in (*counted[3:], *percent)],
        [make_sample(series=one, minute=2) for one in (*percent, *counted[3:])],  # all known, some odd
        [make_sample(series=one, minute=3) for one in counted],  # all known, none odd
    ]
    for number, request in enumerate(requests, 1):
        await sqlite_store.commit(f"r{number}", request)
    stored = by_identity(await sqlite_store.samples(T0 + 60_000, 2**62))
    assert stored == by_identity([sample for request in requests for sample in request])
    assert {sample.series.unit for sample in stored.values()} == {"Count", "Percent"}


async def test_a_sqlite_with_a_low_parameter_bound_still_takes_large_requests(sqlite_factory, monkeypatch):
    connect = sqlite3.connect

    def low_bound(*args, **kwargs):
        conn = connect(*args, **kwargs)
        conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)  # SQLite's bound before 3.32
        return conn

    monkeypatch.setattr(sqlite3, "connect", low_bound)
    store = sqlite_factory()
    await store.open()
    try:
        request = many_samples(BIG, tables=50)
        await store.commit("r1", request)
        assert by_identity(await store.samples(*ALL_TIME)) == by_identity(request)
    finally:
        await store.close()
