"""What every Store backend promises, run against memory:// and sqlite:///."""

from __future__ import annotations

import dataclasses
import math

import pytest

from receiver.model import MINUTE_MS
from receiver.store import StoreError
from receiver.store.base import DEFAULT_REQUEST_TTL_S
from receiver.store.sqlite import store as sqlite_store_module
from tests.builders import T0, make_sample, make_series

ALL_TIME = (0, 2**62)


async def stored(store) -> list:
    return await store.samples(*ALL_TIME)


# -- upsert by identity --------------------------------------------------------


async def test_committed_samples_read_back_equal(store):
    latency = make_series("SuccessfulRequestLatency", operation="GetItem", unit="Milliseconds")
    samples = [
        make_sample(minute=0),
        make_sample(series=latency, minute=0, stats=(("p50", 1.25), ("p99", 7.5), ("p99.9", 9.0))),
        make_sample(series=make_series(table="Other"), minute=1, labels=()),
    ]
    await store.commit("r1", samples)
    assert sorted(await stored(store), key=repr) == sorted(samples, key=repr)


async def test_duplicate_in_a_later_request_overwrites_the_stored_sample(store):
    await store.commit("r1", [make_sample(value=10.0)])
    newer = make_sample(value=99.0, count=5.0, stats=(("p99", 42.0),), labels=(("retry", "yes"),))
    await store.commit("r2", [newer])
    assert await stored(store) == [newer]
    assert await store.count_samples() == 1


async def test_duplicate_within_one_request_keeps_the_last(store):
    await store.commit("r1", [make_sample(value=1.0), make_sample(value=2.0), make_sample(value=3.0)])
    assert await stored(store) == [make_sample(value=3.0)]


async def test_overlapping_requests_store_each_identity_once_with_the_newer_values(store):
    await store.commit("r1", [make_sample(minute=m, value=1.0) for m in (0, 1, 2)])
    await store.commit("r2", [make_sample(minute=m, value=2.0) for m in (1, 2, 3)])
    assert await stored(store) == [
        make_sample(minute=0, value=1.0),
        make_sample(minute=1, value=2.0),
        make_sample(minute=2, value=2.0),
        make_sample(minute=3, value=2.0),
    ]


@pytest.mark.parametrize(
    "change",
    [
        {"account": "210987654321"},
        {"region": "eu-west-1"},
        {"namespace": "Custom/DynamoDB"},
        {"metric": "ConsumedWriteCapacityUnits"},
        {"dimensions": (("TableName", "Other"),)},
    ],
    ids=lambda change: next(iter(change)),
)
async def test_each_series_part_of_the_identity_tells_samples_apart(store, change):
    first = make_sample()
    other = make_sample(series=dataclasses.replace(first.series, **change))
    await store.commit("r1", [first, other])
    assert await store.count_samples() == 2


async def test_a_different_period_end_is_a_different_sample(store):
    await store.commit("r1", [make_sample(period_minutes=1), make_sample(period_minutes=5)])
    assert await store.count_samples() == 2


async def test_the_unit_is_not_part_of_the_identity(store):
    await store.commit("r1", [make_sample(value=1.0)])
    renamed = make_sample(series=dataclasses.replace(make_series(), unit="None"), value=2.0)
    await store.commit("r2", [renamed])
    assert await stored(store) == [renamed]


async def test_each_sample_keeps_the_unit_it_was_committed_with(store):
    counted = make_sample(minute=0)
    unitless = make_sample(series=dataclasses.replace(make_series(), unit="None"), minute=1)
    await store.commit("r1", [counted, unitless])
    assert await stored(store) == [counted, unitless]


# -- all or nothing ------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        {"sum": math.nan},
        {"min": -math.inf},
        {"count": math.inf},
        {"stats": (("p99", math.nan),)},
    ],
    ids=["nan-sum", "inf-min", "inf-count", "nan-stat"],
)
async def test_a_request_with_an_unstorable_value_stores_nothing(store, bad):
    before = make_sample(minute=0, value=1.0)
    await store.commit("r1", [before])
    good = [make_sample(minute=m, value=5.0) for m in range(3)]
    poisoned = make_sample(series=make_series(table="New"), minute=1)._replace(**bad)
    with pytest.raises(StoreError):
        await store.commit("r2", [*good, poisoned, make_sample(minute=4)])
    assert await stored(store) == [before]
    assert not await store.is_committed("r2")


# -- request ids ---------------------------------------------------------------


async def test_a_committed_request_id_is_remembered(store):
    await store.commit("r1", [make_sample()])
    assert await store.is_committed("r1")


async def test_an_unknown_request_id_is_not_committed(store):
    await store.commit("r1", [make_sample()])
    assert not await store.is_committed("r2")


async def test_a_request_without_samples_is_still_remembered(store):
    await store.commit("empty", [])
    assert await store.is_committed("empty")


async def test_a_request_id_is_forgotten_after_the_ttl(store, clock):
    await store.commit("r1", [make_sample()])
    clock.advance(DEFAULT_REQUEST_TTL_S - 1)
    assert await store.is_committed("r1")
    clock.advance(1)
    assert not await store.is_committed("r1")


async def test_committing_a_request_again_restarts_its_ttl(store, clock):
    await store.commit("r1", [make_sample()])
    clock.advance(DEFAULT_REQUEST_TTL_S - 10)
    await store.commit("r1", [make_sample()])
    clock.advance(20)
    assert await store.is_committed("r1")


async def test_expired_request_ids_do_not_disturb_fresh_ones(store, clock):
    await store.commit("old", [make_sample(minute=0)])
    clock.advance(DEFAULT_REQUEST_TTL_S + 3600)
    await store.commit("new", [make_sample(minute=1)])  # a commit prunes what expired
    assert not await store.is_committed("old")
    assert await store.is_committed("new")
    assert await store.count_samples() == 2  # pruning forgets ids, never samples


# -- reads ---------------------------------------------------------------------


async def test_samples_selects_starts_in_a_half_open_range(store):
    await store.commit("r1", [make_sample(minute=m) for m in range(5)])
    found = await store.samples(T0 + 1 * MINUTE_MS, T0 + 3 * MINUTE_MS)
    assert [s.start_ms for s in found] == [T0 + 1 * MINUTE_MS, T0 + 2 * MINUTE_MS]


async def test_samples_come_in_ascending_start_order(store):
    await store.commit("r1", [make_sample(minute=m) for m in (3, 0, 4, 1)])
    await store.commit("r2", [make_sample(series=make_series("ThrottledRequests"), minute=m) for m in (2, 0)])
    starts = [s.start_ms for s in await stored(store)]
    assert starts == sorted(starts) and len(starts) == 6


async def test_samples_by_series_gives_the_range_in_chunks_that_never_split_a_series(store, monkeypatch):
    monkeypatch.setattr(sqlite_store_module, "SERIES_PER_CHUNK", 2)  # SQLite: several chunks per metric
    series = [
        make_series(metric, table=f"T{t}")
        for metric in ("ConsumedReadCapacityUnits", "ThrottledRequests")
        for t in range(3)
    ]
    other_unit = dataclasses.replace(series[0], unit="Seconds")  # same key, another unit
    samples = [make_sample(series=one, minute=m) for one in series for m in range(4)]
    samples.append(make_sample(series=other_unit, minute=1)._replace(start_ms=T0 + MINUTE_MS + 1))
    await store.commit("r1", samples)
    low, high = T0 + MINUTE_MS, T0 + 3 * MINUTE_MS
    chunks = [chunk async for chunk in store.samples_by_series(low, high)]
    assert chunks and all(chunks)
    assert sorted(map(repr, (s for chunk in chunks for s in chunk))) == sorted(
        repr(s) for s in samples if low <= s.start_ms < high
    )
    keys = [{s.series.key for s in chunk} for chunk in chunks]
    assert sum(map(len, keys)) == len(set().union(*keys)) == len(series)
    assert [chunk async for chunk in store.samples_by_series(T0 + 10 * MINUTE_MS, T0 + 11 * MINUTE_MS)] == []


async def test_samples_filters_by_namespace(store):
    dynamodb = make_sample(minute=0)
    custom = make_sample(series=make_series(namespace="Custom/App"), minute=0)
    await store.commit("r1", [dynamodb, custom])
    assert await store.samples(*ALL_TIME, namespace="Custom/App") == [custom]


async def test_samples_filters_by_metric_names(store):
    reads = make_sample(series=make_series("ConsumedReadCapacityUnits"))
    writes = make_sample(series=make_series("ConsumedWriteCapacityUnits"))
    throttles = make_sample(series=make_series("ThrottledRequests"))
    await store.commit("r1", [reads, writes, throttles])
    found = await store.samples(*ALL_TIME, metrics={"ConsumedReadCapacityUnits", "ThrottledRequests"})
    assert sorted(found, key=repr) == sorted([reads, throttles], key=repr)


async def test_samples_combines_namespace_metric_and_time_filters(store):
    wanted = make_sample(series=make_series("UserErrors"), minute=1)
    await store.commit(
        "r1",
        [
            wanted,
            make_sample(series=make_series("UserErrors"), minute=2),  # outside the range
            make_sample(series=make_series("UserErrors", namespace="Custom/App"), minute=1),  # other namespace
            make_sample(series=make_series("SystemErrors"), minute=1),  # other metric
        ],
    )
    found = await store.samples(T0 + MINUTE_MS, T0 + 2 * MINUTE_MS, namespace="AWS/DynamoDB", metrics=["UserErrors"])
    assert found == [wanted]


async def test_an_empty_metric_selection_selects_nothing(store):
    await store.commit("r1", [make_sample()])
    assert await store.samples(*ALL_TIME, metrics=[]) == []


async def test_a_single_metric_name_string_is_refused(store):
    with pytest.raises(TypeError):
        await store.samples(*ALL_TIME, metrics="ConsumedReadCapacityUnits")


async def test_count_samples_counts_distinct_identities(store):
    await store.commit("r1", [make_sample(minute=m) for m in range(4)])
    await store.commit("r2", [make_sample(minute=m) for m in range(2, 6)])
    assert await store.count_samples() == 6


# -- lifecycle -----------------------------------------------------------------


async def test_ping_answers_while_open(store):
    await store.ping()


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.ping(),
        lambda s: s.commit("r1", [make_sample()]),
        lambda s: s.is_committed("r1"),
        lambda s: s.samples(*ALL_TIME),
        lambda s: s.count_samples(),
    ],
    ids=["ping", "commit", "is_committed", "samples", "count_samples"],
)
async def test_a_closed_store_raises_store_error(store, call):
    await store.close()
    with pytest.raises(StoreError):
        await call(store)
