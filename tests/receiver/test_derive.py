"""The deriver: derived values are a pure function of the stored samples, per minute and hour."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import math
import random

import pytest

from receiver.derive.deriver import Deriver, derive_hour_values, rollup_hour
from receiver.derive.worker import ThreadEvaluator
from receiver.model import HOUR_MS, MINUTE_MS, derived_key
from receiver.store import open_store_from_url
from receiver.store.sqlite import store as sqlite_store_module
from tests.builders import T0, make_sample

SERVICE = "aws-dynamodb::123456789012"
HOUR = T0 - T0 % HOUR_MS


def deriver_for(store, rules, **kwargs):
    # The builders' samples are from 2023: a retention long enough to keep them current.
    return Deriver(store, rules, minute_retention_days=100_000, **kwargs)


def workload(minutes: int = 3) -> list:
    samples = []
    for minute in range(minutes):
        for table in ("GameScores", "Orders"):
            samples.append(make_sample(table, "ConsumedReadCapacityUnits", minute, value=120.0 + minute, count=4))
            samples.append(make_sample(table, "ThrottledRequests", minute, value=2.0, count=2, operation="GetItem"))
            samples.append(
                make_sample(
                    table, "SuccessfulRequestLatency", minute, value=30.0 * (minute + 1), count=10, operation="GetItem"
                )
            )
    return samples


async def derived_map(store, step_ms=MINUTE_MS):
    found = {}
    for bucket in range(HOUR - HOUR_MS, HOUR + 2 * HOUR_MS, step_ms):
        for value in await store.bucket_values(step_ms, bucket):
            found[(value.metric, value.service, value.endpoint, value.time_ms)] = value.value
    return found


async def test_minutes_are_derived_from_everything_stored_for_them(store, rules):
    deriver = deriver_for(store, rules)
    samples = workload()
    # One minute split over two requests that each are derived on their own.
    await store.commit("a", samples[:5])
    deriver.touch(samples[:5])
    await deriver.derive_pending()
    await store.commit("b", samples[5:])
    deriver.touch(samples[5:])
    await deriver.derive_pending()
    expected = {(v.metric, v.service, v.endpoint, v.time_ms): v.value for v in rules.current.evaluate(samples)}
    assert await derived_map(store) == expected
    # Spot-check one value against the definition: Σ Sum ÷ 60 over the table's series.
    key = ("aws_dynamodb_endpoint_consumed_read_capacity_units", SERVICE, "GameScores", T0)
    assert (await derived_map(store))[key] == pytest.approx(120.0 / 60)


async def test_split_shuffled_repeated_deliveries_give_the_same_values(store, rules):
    samples = workload(4)
    reference_store = open_store_from_url("memory://")
    await reference_store.open()
    reference = deriver_for(reference_store, rules)
    await reference_store.commit("all", samples)
    reference.touch(samples)
    await reference.derive_pending()

    deriver = deriver_for(store, rules)
    rng = random.Random(7)
    parts = [samples[i : i + 5] for i in range(0, len(samples), 5)]
    parts += rng.sample(parts, 3)  # repeats
    rng.shuffle(parts)
    for index, part in enumerate(parts):
        await store.commit(f"r{index}", part)
        deriver.touch(part)
        if rng.random() < 0.5:
            await deriver.derive_pending()
    await deriver.derive_pending()
    assert await derived_map(store) == await derived_map(reference_store)
    assert await derived_map(store, HOUR_MS) == await derived_map(reference_store, HOUR_MS)


async def test_a_computation_from_older_samples_cannot_overwrite_a_newer_one(store, rules):
    first, second = workload(1)[:3], workload(1)[3:]
    await store.commit("a", first)
    slow = deriver_for(store, rules)
    version_seen = (await store.versions(MINUTE_MS, [T0]))[T0]
    samples_seen = await store.samples(T0, T0 + MINUTE_MS)
    # Meanwhile another replica commits more of the minute and derives it.
    await store.commit("b", second)
    fast = deriver_for(store, rules)
    assert await fast.derive_bucket(MINUTE_MS, T0)
    # The slow replica's values, from fewer samples, are refused.
    stale_values = rules.current.evaluate(samples_seen)
    assert not await store.put_derived(MINUTE_MS, T0, version_seen, stale_values)
    assert not await slow.derive_bucket(MINUTE_MS, T0)  # same version as stored: nothing to do
    expected = {(v.metric, v.service, v.endpoint, v.time_ms): v.value for v in rules.current.evaluate(first + second)}
    assert await derived_map(store) == expected


async def test_buckets_committed_but_not_derived_are_recovered_at_start(store, rules):
    samples = workload(2)
    await store.commit("before-restart", samples)  # committed, the process died before deriving
    deriver = deriver_for(store, rules)
    await deriver._recover()
    await deriver.derive_pending()
    assert await store.stale_buckets(MINUTE_MS, 0) == []
    assert await store.stale_buckets(HOUR_MS, 0) == []
    assert len(await derived_map(store)) > 0


def test_hour_rollup_is_one_average_minute_per_series():
    samples = [
        make_sample("GameScores", "SuccessfulRequestLatency", m, value=10.0 * (m + 1), count=m + 1, operation="GetItem")
        for m in range(3)
    ]
    samples.append(samples[0])  # a repeat is one datapoint
    [rolled] = rollup_hour(samples, HOUR)
    assert (rolled.start_ms, rolled.end_ms) == (HOUR, HOUR + HOUR_MS)
    assert rolled.sum == pytest.approx((10 + 20 + 30) / 60)
    assert rolled.count == pytest.approx((1 + 2 + 3) / 60)
    assert rolled.min == min(s.min for s in samples)
    assert rolled.max == max(s.max for s in samples)


def test_hour_values_follow_each_metric_aggregation(rules):
    minutes = 3
    samples = []
    for m in range(minutes):
        samples.append(
            make_sample("GameScores", "ThrottledRequests", m, value=float(m + 1), count=1, operation="GetItem")
        )
        samples.append(make_sample("GameScores", "ConsumedReadCapacityUnits", m, value=600.0 * (m + 1), count=5))
        samples.append(
            make_sample(
                "GameScores",
                "SuccessfulRequestLatency",
                m,
                value=100.0 * (m + 1),
                count=10 * (m + 1) ** 2,
                operation="GetItem",
            )
        )
        samples.append(make_sample("GameScores", "AccountMaxReads", m, value=1000.0 + m, count=1))
    values = {(v.metric, v.endpoint): v.value for v in derive_hour_values(rules.current, samples, HOUR)}
    # SUM: the hour's total throttled requests.
    assert values[("aws_dynamodb_endpoint_read_throttled_requests", "GameScores")] == pytest.approx(1 + 2 + 3)
    # AVG of a rate: the hour's consumed units ÷ 3600 s (minutes without data consumed nothing).
    assert values[("aws_dynamodb_endpoint_consumed_read_capacity_units", "GameScores")] == pytest.approx(
        (600 + 1200 + 1800) / 3600
    )
    # Weighted mean: Σ Sum ÷ Σ SampleCount over the hour, not the mean of the minute means.
    assert values[("aws_dynamodb_endpoint_get_successful_request_latency", "GameScores")] == pytest.approx(
        (100 + 200 + 300) / (10 + 40 + 90)
    )
    # MAX: the largest Maximum of the hour.
    assert values[("aws_dynamodb_account_max_reads", None)] == max(
        s.max for s in samples if s.series.metric == "AccountMaxReads"
    )


def reference_rollup(samples, hour_ms):
    """The rollup as first written, sample by sample: what the faster one must equal."""
    import math

    from receiver.model import Sample

    by_series = {}
    for sample in samples:
        by_series.setdefault(sample.series.key, []).append(sample)
    rolled = []
    for group in by_series.values():
        minutes = {(s.start_ms, s.end_ms): s for s in group}
        parts = [minutes[key] for key in sorted(minutes)]
        stats = {}
        for part in parts:
            for name, value in part.stats:
                stats[name] = max(value, stats.get(name, -math.inf))
        rolled.append(
            Sample(
                parts[-1].series,
                hour_ms,
                hour_ms + HOUR_MS,
                math.fsum(p.count for p in parts) / 60,
                math.fsum(p.sum for p in parts) / 60,
                min(p.min for p in parts),
                max(p.max for p in parts),
                tuple(sorted(stats.items())),
                parts[-1].labels,
            )
        )
    return rolled


def test_hour_rollup_equals_the_sample_by_sample_definition_bit_for_bit():
    rng = random.Random(11)
    odd = [float("nan"), 0.0, -0.0, float("-inf"), 1.5]
    interned = {}
    samples = []
    for _ in range(400):
        table = rng.choice(["A", "B", "C"])
        made = make_sample(
            table,
            "SuccessfulRequestLatency",
            rng.randint(0, 5),
            value=rng.choice([1.0, 2.5]),
            operation="GetItem",
            labels=(("run", str(rng.randint(0, 2))),),
        )
        # Some series interned (one object), some not (equal objects): both must group alike.
        series = interned.setdefault(table, made.series) if rng.random() < 0.5 else made.series
        stats = tuple(sorted({name: rng.choice(odd) for name in rng.sample(["p50", "p99", "p99.9"], 2)}.items()))
        samples.append(made._replace(series=series, stats=stats))
    assert repr(rollup_hour(samples, HOUR)) == repr(reference_rollup(samples, HOUR))
    for got, want in zip(rollup_hour(samples, HOUR), reference_rollup(samples, HOUR)):
        for (name, a), (_, b) in zip(got.stats, want.stats):
            assert math.copysign(1.0, a) == math.copysign(1.0, b), name  # 0.0 vs -0.0


async def test_the_loop_derives_again_as_soon_as_more_is_committed(store, rules):
    # An hour-long interval: a loop that rested after a pass would not derive the second
    # commit before the (generous) deadline below.
    deriver = deriver_for(store, rules, interval_s=3600.0, hour_interval_s=3600.0)
    passes = asyncio.Queue()
    deriver.on_derived(lambda step_ms, bucket_ms: passes.put_nowait(bucket_ms) if step_ms == MINUTE_MS else None)
    task = asyncio.create_task(deriver.run())
    try:
        for minute in range(3):
            samples = [make_sample("GameScores", "ConsumedReadCapacityUnits", minute)]
            await store.commit(f"r{minute}", samples)
            deriver.touch(samples)
            assert await asyncio.wait_for(passes.get(), 60) == T0 + minute * MINUTE_MS
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_running_deriver_derives_touched_minutes_by_itself(store, rules):
    deriver = deriver_for(store, rules, interval_s=0.01)
    derived = asyncio.Event()
    deriver.on_derived(lambda step_ms, bucket_ms: derived.set() if step_ms == MINUTE_MS else None)
    task = asyncio.create_task(deriver.run())
    try:
        samples = workload(1)
        await store.commit("a", samples)
        deriver.touch(samples)
        async with asyncio.timeout(60):  # a guard against hanging, not a speed check
            await derived.wait()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    expected = {(v.metric, v.service, v.endpoint, v.time_ms): v.value for v in rules.current.evaluate(samples)}
    assert await derived_map(store) == expected


async def test_an_hour_read_a_few_series_at_a_time_gives_the_values_of_the_whole_hour(tmp_path, rules, monkeypatch):
    # Chunks of at most two series of one metric: three metrics of 3, 6 and 3 series (the
    # latency series with two units) make 2 + 3 + 2 chunks.
    monkeypatch.setattr(sqlite_store_module, "SERIES_PER_CHUNK", 2)
    samples = []
    for minute in range(0, 60, 7):
        for table in ("GameScores", "Orders", "Sessions"):
            samples.append(make_sample(table, "ConsumedReadCapacityUnits", minute, value=60.0 + minute, count=6))
            for operation in ("GetItem", "Query"):
                latency = make_sample(
                    table,
                    "SuccessfulRequestLatency",
                    minute,
                    value=5.0 * minute + 1,
                    count=10 + minute,
                    operation=operation,
                )
                unit = "Milliseconds" if minute % 2 else "Count"
                samples.append(
                    latency._replace(
                        series=dataclasses.replace(latency.series, unit=unit), stats=(("p99", 3.0 + minute),)
                    )
                )
            samples.append(make_sample(table, "ThrottledRequests", minute, value=1.0, count=1, operation="Query"))
    hour = T0 - T0 % HOUR_MS
    samples = [
        s._replace(start_ms=s.start_ms - T0 % HOUR_MS, end_ms=s.end_ms - T0 % HOUR_MS, count=float(s.count))
        for s in samples
    ]
    sqlite = open_store_from_url(f"sqlite:///{tmp_path / 'metrics.db'}")
    await sqlite.open()
    try:
        await sqlite.commit("r1", samples)
        chunks = [chunk async for chunk in sqlite.samples_by_series(hour, hour + HOUR_MS)]
        assert len(chunks) == 7
        assert sorted(map(repr, itertools.chain.from_iterable(chunks))) == sorted(map(repr, samples))
        keys = [{s.series.key for s in chunk} for chunk in chunks]
        assert all(a.isdisjoint(b) for a, b in itertools.combinations(keys, 2))
        deriver = deriver_for(sqlite, rules)
        assert await deriver.derive_bucket(HOUR_MS, hour)
        stored = sorted(map(repr, await sqlite.bucket_values(HOUR_MS, hour)))
        assert stored == sorted(map(repr, derive_hour_values(rules.current, samples, hour)))
        assert len(stored) > 20
    finally:
        await sqlite.close()


class FailingFor(ThreadEvaluator):
    """Evaluates in this process, except that it raises for the minute starting at
    ``start_ms`` until ``fixed``."""

    def __init__(self, start_ms: int) -> None:
        super().__init__()
        self.start_ms = start_ms
        self.fixed = False

    async def evaluate(self, rules, samples):
        if not self.fixed and any(s.start_ms == self.start_ms for s in samples):
            raise RuntimeError("a bug in evaluation")
        return await super().evaluate(rules, samples)

    async def update(self, step_ms, rules, bucket_ms, changed, families, live):
        if not self.fixed and step_ms == MINUTE_MS and bucket_ms == self.start_ms:
            raise RuntimeError("a bug in evaluation")
        return await super().update(step_ms, rules, bucket_ms, changed, families, live)


async def test_a_minute_that_fails_unexpectedly_is_retried_and_the_others_are_derived(store, rules, caplog):
    evaluator = FailingFor(T0 + MINUTE_MS)
    now = [0.0]
    deriver = deriver_for(store, rules, evaluator=evaluator, monotonic=lambda: now[0])
    samples = workload(minutes=3)
    await store.commit("a", samples)
    deriver.touch(samples)
    await deriver.derive_pending(hours=False)
    assert "deriving a minute failed, will retry" in caplog.text
    assert {time for *_, time in await derived_map(store)} == {T0, T0 + 2 * MINUTE_MS}
    evaluator.fixed = True
    now[0] += deriver.retry_in_s()  # retried once its backoff has passed
    await deriver.derive_pending(hours=False)
    assert await derived_map(store) == {
        (v.metric, v.service, v.endpoint, v.time_ms): v.value for v in rules.current.evaluate(samples)
    }


class Writes:
    """Counts the derived values a store is asked to write, whole buckets and changes."""

    def __init__(self, store) -> None:
        self.whole: list[int] = []
        self.changes: list[tuple[int, int]] = []
        put, put_changes = store.put_derived, store.put_derived_changes

        async def put_derived(step_ms, bucket_ms, version, values):
            self.whole.append(len(values))
            return await put(step_ms, bucket_ms, version, values)

        async def put_derived_changes(step_ms, bucket_ms, base, version, upserts, removals, total):
            self.changes.append((len(upserts), len(removals)))
            return await put_changes(step_ms, bucket_ms, base, version, upserts, removals, total)

        store.put_derived, store.put_derived_changes = put_derived, put_derived_changes


async def whole_minute_values(rules, samples):
    """The values of one minute as deriving it whole gives them."""
    from receiver.derive.regions import evaluate_by_region

    return sorted(evaluate_by_region(rules.current, samples).values, key=derived_key)


async def test_a_commit_to_one_table_writes_only_what_it_changed(store, rules):
    writes = Writes(store)
    deriver = deriver_for(store, rules)
    samples = [make_sample(f"T{index}", "ConsumedReadCapacityUnits", 0, value=10.0 * index) for index in range(5)]
    await store.commit("a", samples)
    deriver.touch(samples)
    await deriver.derive_pending(hours=False)
    assert writes.whole and not writes.changes  # a minute seen first is stored whole
    correction = make_sample("T2", "ConsumedReadCapacityUnits", 0, value=99.0)
    await store.commit("b", [correction])
    deriver.touch([correction])
    await deriver.derive_pending(hours=False)
    ((upserts, removals),) = writes.changes
    stored = sorted(await store.bucket_values(MINUTE_MS, T0), key=derived_key)
    current = [s for s in samples if s.series.dimensions != correction.series.dimensions] + [correction]
    assert stored == await whole_minute_values(rules, current)
    # Table T2's own values and the account's totals: a few of the minute's values.
    assert 0 < upserts < len(stored) / 2 and removals == 0
    # Firehose sends the same request again: the minute's version moves, no value changes.
    await store.commit("b-again", [correction])
    deriver.touch([correction])
    await deriver.derive_pending(hours=False)
    assert writes.changes[1] == (0, 0)
    assert sorted(await store.bucket_values(MINUTE_MS, T0), key=derived_key) == stored


async def test_two_derivers_on_one_store_keep_every_value_whole(store, rules):
    now = [T0 / 1000 + 10.0]
    first, second = (deriver_for(store, rules, clock=lambda: now[0], holder=name) for name in ("a", "b"))
    rng = random.Random(5)
    stored = {}
    for step in range(12):
        minute = rng.randint(0, 1)
        batch = [
            make_sample(f"T{rng.randint(0, 4)}", "ConsumedReadCapacityUnits", minute, value=float(rng.randint(1, 50)))
            for _ in range(rng.randint(1, 3))
        ]
        await store.commit(f"r{step}", batch)
        stored.update((s.identity, s) for s in batch)
        committer = first if rng.random() < 0.5 else second
        committer.touch(batch)
        await committer.derive_pending(hours=False)
        # Whoever holds a minute's lease derives what the other committed to it.
        for deriver in (first, second):
            await deriver.mark_stale(hours=False)
            await deriver.derive_pending(hours=False)
        for start in (T0, T0 + MINUTE_MS):
            values = sorted(await store.bucket_values(MINUTE_MS, start), key=derived_key)
            assert values == await whole_minute_values(rules, [s for s in stored.values() if s.start_ms == start])
        now[0] += rng.choice([1.0, 40.0])  # now and then a lease runs out between passes


async def test_each_bucket_is_derived_by_one_replica_until_it_stops(store, rules):
    now = [T0 / 1000 + 10.0]
    first, second = (deriver_for(store, rules, clock=lambda: now[0], holder=name) for name in ("a", "b"))
    derived = []
    first.on_derived(lambda step, bucket: derived.append(("a", bucket)))
    second.on_derived(lambda step, bucket: derived.append(("b", bucket)))
    one, other = make_sample("A", minute=0), make_sample("A", minute=1)
    await store.commit("1", [one])
    first.touch([one])
    await first.derive_pending(hours=False)
    await store.commit("2", [other])
    second.touch([other])
    await second.derive_pending(hours=False)
    assert derived == [("a", T0), ("b", T0 + MINUTE_MS)]
    # The second replica commits to the first one's minute: it leaves it to the first.
    later = make_sample("A", minute=0, value=99.0)
    await store.commit("3", [later])
    second.touch([later])
    await second.derive_pending(hours=False)
    assert derived[-1] == ("b", T0 + MINUTE_MS)
    await first.mark_stale(hours=False)
    await first.derive_pending(hours=False)
    assert derived[-1] == ("a", T0)
    # The first replica stops: once its lease has run out, the second takes the minute over.
    again = make_sample("A", minute=0, value=7.0)
    await store.commit("4", [again])
    await second.mark_stale(hours=False)
    await second.derive_pending(hours=False)
    assert derived[-1] == ("a", T0)  # still the first one's
    now[0] += first.lease_s + 1
    await second.mark_stale(hours=False)
    await second.derive_pending(hours=False)
    assert derived[-1] == ("b", T0)
    assert sorted(await store.bucket_values(MINUTE_MS, T0), key=derived_key) == await whole_minute_values(
        rules, [again]
    )


async def test_rules_that_cannot_be_taken_apart_derive_whole_minutes(store, tmp_path):
    from receiver.rules import RuleHolder

    (tmp_path / "mixed.yaml").write_text(
        "metricPrefix: t\n"
        "metricsRules:\n"
        "  - name: mixed\n"
        "    exp: >-\n"
        "      (amazonaws_com_AWS_DynamoDB_ConsumedReadCapacityUnits_sum\n"
        "      + amazonaws_com_AWS_Firehose_IncomingRecords_sum).sum(['cloud_account_id'])\n"
        "      .service(['cloud_account_id'], Layer.AWS_DYNAMODB)\n"
    )
    holder = RuleHolder(tmp_path)
    writes = Writes(store)
    deriver = deriver_for(store, holder)
    samples = workload(1)
    for request in ("a", "b"):
        await store.commit(request, samples)
        deriver.touch(samples)
        await deriver.derive_pending(hours=False)
    assert len(writes.whole) == 2 and not writes.changes
