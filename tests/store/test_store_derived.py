"""Derived values in every store: bucket versions, put_derived, reads and retention."""

from __future__ import annotations

import dataclasses

from receiver.model import DAY_MS, HOUR_MS, MINUTE_MS, DerivedValue, derived_key
from tests.builders import T0, make_sample, make_series

SERVICE = "aws-dynamodb::123456789012"


def value(metric="aws_dynamodb_endpoint_x", endpoint="GameScores", time_ms=T0, v=1.0, service=SERVICE):
    scope = "endpoint" if endpoint else "service"
    return DerivedValue(metric, scope, service, endpoint, "AWS_DYNAMODB", time_ms, v)


async def test_each_commit_bumps_the_minute_and_hour_of_its_samples(store):
    hour = T0 - T0 % HOUR_MS
    await store.commit("r1", [make_sample(), make_sample(series=make_series(table="B"))])
    await store.commit("r2", [make_sample(minute=1)])
    assert await store.versions(MINUTE_MS, [T0, T0 + MINUTE_MS, T0 + 2 * MINUTE_MS]) == {
        T0: 1,
        T0 + MINUTE_MS: 1,
        T0 + 2 * MINUTE_MS: 0,
    }
    assert (await store.versions(HOUR_MS, [hour]))[hour] == 2


async def test_a_bucket_is_stale_until_values_of_its_version_are_stored(store):
    await store.commit("r1", [make_sample()])
    assert await store.stale_buckets(MINUTE_MS, T0) == [T0]
    assert await store.put_derived(MINUTE_MS, T0, 1, [value()])
    assert await store.stale_buckets(MINUTE_MS, T0) == []
    await store.commit("r2", [make_sample(series=make_series(table="B"))])
    assert await store.stale_buckets(MINUTE_MS, T0) == [T0]
    assert await store.stale_buckets(MINUTE_MS, T0 + MINUTE_MS) == []


async def test_values_from_an_older_version_never_replace_newer_ones(store):
    assert await store.put_derived(MINUTE_MS, T0, 2, [value(v=2.0)])
    assert not await store.put_derived(MINUTE_MS, T0, 1, [value(v=1.0)])
    assert not await store.put_derived(MINUTE_MS, T0, 2, [value(v=3.0)])
    assert [v.value for v in await store.bucket_values(MINUTE_MS, T0)] == [2.0]


async def test_put_derived_replaces_the_whole_bucket(store):
    await store.put_derived(MINUTE_MS, T0, 1, [value(endpoint="A"), value(endpoint="B")])
    await store.put_derived(MINUTE_MS, T0, 2, [value(endpoint="A", v=5.0)])
    assert await store.bucket_values(MINUTE_MS, T0) == [value(endpoint="A", v=5.0)]


def ordered(values):
    return sorted(values, key=lambda v: (v.metric, v.endpoint or "", v.region))


async def test_changes_upsert_and_remove_values_in_place(store):
    a, b = value(endpoint="A"), value(endpoint="B")
    other = value(metric="aws_dynamodb_endpoint_y", endpoint="A")
    assert await store.put_derived(MINUTE_MS, T0, 1, [a, b, other])
    moved = value(endpoint="A", v=7.0)
    regional = dataclasses.replace(value(endpoint="C"), region="eu-west-1", merged=False)
    assert await store.put_derived_changes(MINUTE_MS, T0, 1, 2, [moved, regional], [derived_key(b)], total=3)
    assert ordered(await store.bucket_values(MINUTE_MS, T0)) == ordered([moved, regional, other])
    # Reads see them: a metric's values over a range, and the merged ones only without a region.
    assert [v.value for v in await store.derived("aws_dynamodb_endpoint_x", MINUTE_MS, T0, T0)] == [7.0]
    found = await store.derived("aws_dynamodb_endpoint_x", MINUTE_MS, T0, T0, region="eu-west-1")
    assert found == [regional]
    assert await store.stale_buckets(MINUTE_MS, T0) == []


async def test_changes_apply_only_over_the_values_they_were_computed_from(store):
    assert await store.put_derived(MINUTE_MS, T0, 3, [value(v=3.0)])
    # Based on version 2, but version 3's values are stored: nothing changes.
    assert not await store.put_derived_changes(MINUTE_MS, T0, 2, 4, [value(v=4.0)], [], total=1)
    assert [v.value for v in await store.bucket_values(MINUTE_MS, T0)] == [3.0]
    # A bucket no one stored values of has no base to change.
    assert not await store.put_derived_changes(MINUTE_MS, T0 + MINUTE_MS, 0, 1, [value()], [], total=1)
    # Never back to an older version.
    assert not await store.put_derived_changes(MINUTE_MS, T0, 3, 2, [value(v=2.0)], [], total=1)
    # The same version may change (a ceiling changed, not a sample), and later ones build on it.
    assert await store.put_derived_changes(MINUTE_MS, T0, 3, 3, [value(v=3.5)], [], total=1)
    assert await store.put_derived_changes(MINUTE_MS, T0, 3, 5, [value(v=5.0)], [], total=1)
    assert not await store.put_derived_changes(MINUTE_MS, T0, 3, 6, [value(v=6.0)], [], total=1)
    assert [v.value for v in await store.bucket_values(MINUTE_MS, T0)] == [5.0]


async def test_a_metric_whose_values_all_go_is_gone_and_a_whole_put_still_replaces_all(store):
    kept, dropped = value(endpoint="A"), value(metric="aws_dynamodb_endpoint_y", endpoint="A")
    assert await store.put_derived(MINUTE_MS, T0, 1, [kept, dropped])
    assert await store.put_derived_changes(MINUTE_MS, T0, 1, 2, [], [derived_key(dropped)], total=1)
    assert await store.bucket_values(MINUTE_MS, T0) == [kept]
    assert await store.derived("aws_dynamodb_endpoint_y", MINUTE_MS, T0, T0) == []
    assert await store.put_derived_changes(MINUTE_MS, T0, 2, 3, [value(endpoint="B")], [], total=2)
    assert await store.put_derived(MINUTE_MS, T0, 4, [value(endpoint="C")])
    assert await store.bucket_values(MINUTE_MS, T0) == [value(endpoint="C")]
    assert await store.latest_bucket(MINUTE_MS, T0 + MINUTE_MS) == T0


async def test_derived_reads_one_metric_and_entity_over_an_inclusive_range(store):
    for minute in range(5):
        t = T0 + minute * MINUTE_MS
        await store.put_derived(
            MINUTE_MS,
            t,
            1,
            [
                value(endpoint="A", time_ms=t, v=minute),
                value(endpoint="B", time_ms=t, v=10 + minute),
                value(metric="aws_dynamodb_x", endpoint=None, time_ms=t, v=100 + minute),
            ],
        )
    found = await store.derived(
        "aws_dynamodb_endpoint_x", MINUTE_MS, T0 + MINUTE_MS, T0 + 3 * MINUTE_MS, service=SERVICE, endpoint="B"
    )
    assert [(v.time_ms, v.value) for v in found] == [(T0 + i * MINUTE_MS, 10 + i) for i in (1, 2, 3)]
    service_level = await store.derived("aws_dynamodb_x", MINUTE_MS, T0, T0 + 10 * MINUTE_MS, service=SERVICE)
    assert [v.value for v in service_level] == [100, 101, 102, 103, 104]
    assert service_level[0].endpoint is None
    assert await store.derived("aws_dynamodb_x", HOUR_MS, T0, T0 + 10 * MINUTE_MS) == []


async def test_latest_bucket_and_entities(store):
    await store.put_derived(MINUTE_MS, T0, 1, [value(endpoint="A"), value(metric="aws_dynamodb_x", endpoint=None)])
    await store.put_derived(MINUTE_MS, T0 + MINUTE_MS, 1, [value(endpoint="B", time_ms=T0 + MINUTE_MS)])
    assert await store.latest_bucket(MINUTE_MS, T0 + 5 * MINUTE_MS) == T0 + MINUTE_MS
    assert await store.latest_bucket(MINUTE_MS, T0 + MINUTE_MS) == T0
    assert await store.latest_bucket(MINUTE_MS, T0) is None
    assert await store.entities(T0) == [
        (SERVICE, "AWS_DYNAMODB", None, ()),
        (SERVICE, "AWS_DYNAMODB", "A", ()),
        (SERVICE, "AWS_DYNAMODB", "B", ()),
    ]
    assert await store.entities(T0 + MINUTE_MS) == [(SERVICE, "AWS_DYNAMODB", "B", ())]


def regional(endpoint, region, merged, v, time_ms=T0):
    return dataclasses.replace(value(endpoint=endpoint, time_ms=time_ms, v=v), region=region, merged=merged)


async def test_values_by_region_beside_the_merged_ones(store):
    # "Global" reports from two regions: a merged value and one per region; "Local" from
    # one region: one value, merged and of that region.
    await store.put_derived(
        MINUTE_MS,
        T0,
        1,
        [
            regional("Global", "", True, 30.0),
            regional("Global", "eu-west-1", False, 10.0),
            regional("Global", "us-east-1", False, 20.0),
            regional("Local", "eu-west-1", True, 5.0),
        ],
    )
    metric, end = "aws_dynamodb_endpoint_x", T0 + MINUTE_MS

    async def read(endpoint, region=None):
        found = await store.derived(metric, MINUTE_MS, T0, end, service=SERVICE, endpoint=endpoint, region=region)
        return [(v.region, v.merged, v.value) for v in found]

    assert await read("Global") == [("", True, 30.0)]
    assert await read("Global", "us-east-1") == [("us-east-1", False, 20.0)]
    assert await read("Local") == [("eu-west-1", True, 5.0)]
    assert await read("Local", "eu-west-1") == [("eu-west-1", True, 5.0)]
    assert await read("Local", "us-east-1") == []
    merged = await store.derived(metric, MINUTE_MS, T0, end, service=SERVICE)
    assert sorted((v.endpoint, v.value) for v in merged) == [("Global", 30.0), ("Local", 5.0)]
    assert len(await store.bucket_values(MINUTE_MS, T0)) == 4
    assert await store.entities(T0) == [
        (SERVICE, "AWS_DYNAMODB", "Global", ("eu-west-1", "us-east-1")),
        (SERVICE, "AWS_DYNAMODB", "Local", ("eu-west-1",)),
    ]


async def test_prune_keeps_minutes_for_their_retention_and_hours_for_theirs(pruning_store):
    store = pruning_store
    old, recent = T0, T0 + 8 * DAY_MS
    await store.commit("r1", [make_sample()])
    await store.commit("r2", [make_sample(minute=8 * 24 * 60)])
    old_hour = old - old % HOUR_MS
    await store.put_derived(MINUTE_MS, old, 1, [value(time_ms=old)])
    await store.put_derived(HOUR_MS, old_hour, 1, [value(time_ms=old_hour)])
    await store.prune(recent + MINUTE_MS)  # 8 days later: past the 7-day minute retention
    assert [s.start_ms for s in await store.samples(0, 2**62)] == [recent]
    assert await store.bucket_values(MINUTE_MS, old) == []
    assert await store.bucket_values(HOUR_MS, old_hour) == [value(time_ms=old_hour)]
    await store.prune(old + 91 * DAY_MS)
    assert await store.bucket_values(HOUR_MS, old_hour) == []
