"""A bucket that cannot be derived never holds up the others (issue 14 point 3).

A value that cannot be computed (an overflow) is left out for its entity and counted;
every other value of the bucket is stored. A bucket whose derivation keeps failing for
another reason is retried with backoff and set aside after a bound, until new samples
give it a fresh chance.
"""

from __future__ import annotations

import logging
import math

import pytest

from receiver.config import ServeConfig
from receiver.derive.deriver import Deriver
from receiver.derive.worker import ThreadEvaluator
from receiver.keys import DERIVER
from receiver.model import HOUR_MS, MINUTE_MS, Series
from receiver.server.app import create_app
from tests.apps import serve_app
from tests.builders import T0, make_sample

POISONED, HEALTHY = "111111111111", "222222222222"
HOUR = T0 - T0 % HOUR_MS
USER_ERRORS = "aws_dynamodb_user_errors"


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def deriver_for(store, rules, **kwargs):
    # The builders' samples are from 2023: a retention long enough to keep them current.
    return Deriver(store, rules, minute_retention_days=100_000, **kwargs)


def user_errors(account: str, region: str, total: float):
    """UserErrors, which CloudWatch publishes per account and region (no table)."""
    sample = make_sample("-", "UserErrors", 0, value=total, count=1.0, account=account, region=region)
    series = Series(account, region, "AWS/DynamoDB", "UserErrors", (), "Count")
    return sample._replace(series=series, min=total, max=total)


def poisoned_minute() -> list:
    """Two accounts' user errors; the first's two regions add up past the largest float."""
    return [
        user_errors(POISONED, "us-east-1", 1.7e308),
        user_errors(POISONED, "eu-west-1", 1.7e308),
        user_errors(HEALTHY, "us-east-1", 5.0),
        user_errors(HEALTHY, "eu-west-1", 7.0),
        # The poisoned account's other metrics are derived as ever.
        make_sample("GameScores", "ConsumedReadCapacityUnits", 0, value=120.0, count=4, account=POISONED),
    ]


async def values_of(store, step_ms, bucket_ms):
    return {(v.metric, v.service, v.endpoint): v.value for v in await store.bucket_values(step_ms, bucket_ms)}


async def test_an_overflowing_value_is_left_out_and_counted_and_the_rest_is_derived(store, rules, caplog):
    deriver = deriver_for(store, rules)
    samples = poisoned_minute()
    await store.commit("a", samples)
    deriver.touch(samples)
    with caplog.at_level(logging.WARNING, "receiver.derive"):
        await deriver.derive_pending()
    minute = await values_of(store, MINUTE_MS, T0)
    assert minute[(USER_ERRORS, f"aws-dynamodb::{HEALTHY}", None)] == 12.0
    assert (USER_ERRORS, f"aws-dynamodb::{POISONED}", None) not in minute
    assert (
        minute[("aws_dynamodb_endpoint_consumed_read_capacity_units", f"aws-dynamodb::{POISONED}", "GameScores")] == 2.0
    )
    assert all(math.isfinite(value) for value in minute.values())
    # The hour: the poisoned account's average minute is finite, its hour total (× 60) is not.
    hour = await values_of(store, HOUR_MS, HOUR)
    assert hour[(USER_ERRORS, f"aws-dynamodb::{HEALTHY}", None)] == pytest.approx(12.0)
    assert (USER_ERRORS, f"aws-dynamodb::{POISONED}", None) not in hour
    assert all(math.isfinite(value) for value in hour.values())
    assert await store.stale_buckets(MINUTE_MS, 0) == [] and await store.stale_buckets(HOUR_MS, 0) == []

    snapshot = deriver.counts()
    assert snapshot.not_computed == (("hour", USER_ERRORS, 1), ("minute", USER_ERRORS, 1))
    lines = [r for r in caplog.records if r.name == "receiver.derive"]
    assert len(lines) == 2 and all(r.exc_info is None for r in lines)
    assert all(r.metric == USER_ERRORS for r in lines)

    # Derived again (more deliveries of the minute): counted and logged once per bucket and metric.
    await store.commit("b", samples[:1])
    deriver.touch(samples[:1])
    await deriver.derive_pending()
    assert deriver.counts().not_computed == snapshot.not_computed
    assert len([r for r in caplog.records if r.name == "receiver.derive"]) == 2


async def test_the_counts_reach_metrics(store, rules):
    # A long derive interval: the test runs the deriver's passes itself.
    config = ServeConfig(
        allow_unauthenticated=True, derive_interval_s=3600, hour_interval_s=3600, minute_retention_days=100_000
    )
    app = create_app(config, store, rules)
    async with serve_app(app) as client:
        deriver = app[DERIVER]
        samples = poisoned_minute()
        await store.commit("a", samples)
        deriver.touch(samples)
        await deriver.derive_pending()
        async with client.get("/metrics", headers={"Accept-Encoding": "identity"}) as response:
            body = (await response.read()).decode()
    assert f'metric_stream_receiver_values_not_computed_total{{metric="{USER_ERRORS}",step="minute"}} 1' in body
    assert 'metric_stream_receiver_derive_buckets_set_aside_total{step="minute"} 0' in body


def test_the_families_render():
    from receiver.derive.deriver import DeriveCountsSnapshot
    from receiver.views.prometheus import deriver_families, render

    text = render(deriver_families(DeriveCountsSnapshot(not_computed=(("minute", "m", 3),), set_aside=())))
    assert 'metric_stream_receiver_values_not_computed_total{metric="m",step="minute"} 3' in text
    assert 'metric_stream_receiver_derive_buckets_set_aside_total{step="hour"} 0' in text


class AlwaysFailingFor(ThreadEvaluator):
    """Evaluates in this process, but raises for the minute starting at ``start_ms``."""

    def __init__(self, start_ms: int) -> None:
        super().__init__()
        self.start_ms = start_ms
        self.calls = 0

    async def evaluate(self, rules, samples):
        if any(s.start_ms == self.start_ms for s in samples):
            self.calls += 1
            raise RuntimeError("a bug in evaluation")
        return await super().evaluate(rules, samples)

    async def update(self, step_ms, rules, bucket_ms, changed, families, live):
        if step_ms == MINUTE_MS and bucket_ms == self.start_ms:
            self.calls += 1
            raise RuntimeError("a bug in evaluation")
        return await super().update(step_ms, rules, bucket_ms, changed, families, live)


async def test_a_bucket_that_keeps_failing_backs_off_and_is_set_aside_until_new_samples(store, rules, caplog):
    from receiver.derive.deriver import MAX_ATTEMPTS

    clock = FakeMonotonic()
    bad = T0 + MINUTE_MS
    evaluator = AlwaysFailingFor(bad)
    deriver = deriver_for(store, rules, evaluator=evaluator, interval_s=2.0, monotonic=clock)
    samples = [make_sample("GameScores", "ConsumedReadCapacityUnits", m, value=60.0, count=1) for m in range(3)]
    await store.commit("a", samples)
    deriver.touch(samples)
    with caplog.at_level(logging.INFO, "receiver.derive"):
        await deriver.derive_pending(hours=False)
        # The others are derived at once.
        assert await values_of(store, MINUTE_MS, T0) and await values_of(store, MINUTE_MS, T0 + 2 * MINUTE_MS)
        assert evaluator.calls == 1
        # Not tried again before its backoff has passed, however often the loop runs.
        delays = []
        for _ in range(MAX_ATTEMPTS - 1):
            delay = deriver.retry_in_s()
            assert delay is not None and delay > 0
            delays.append(delay)
            calls = evaluator.calls
            await deriver.derive_pending(hours=False)
            assert evaluator.calls == calls
            clock.now += delay
            await deriver.derive_pending(hours=False)
            assert evaluator.calls == calls + 1
        assert delays[0] == 2.0 and delays[1] == 4.0  # doubling from the pass interval
        assert delays == sorted(delays) and max(delays) <= 300
        # After MAX_ATTEMPTS it is set aside: no more tries, one line saying so.
        assert deriver.retry_in_s() is None
        clock.now += 3600
        await deriver.derive_pending(hours=False)
        assert evaluator.calls == MAX_ATTEMPTS
    assert deriver.counts().set_aside == (("minute", 1),)
    set_aside = [r for r in caplog.records if "set aside" in r.getMessage()]
    assert len(set_aside) == 1 and set_aside[0].exc_info is None
    # Only the first failure logs a traceback, not every retry.
    assert len([r for r in caplog.records if r.exc_info]) == 1
    assert await values_of(store, MINUTE_MS, bad) == {}

    # New samples for that minute give it a fresh chance.
    more = [make_sample("Orders", "ConsumedReadCapacityUnits", 1, value=60.0, count=1)]
    await store.commit("b", more)
    deriver.touch(more)
    await deriver.derive_pending(hours=False)
    assert evaluator.calls == MAX_ATTEMPTS + 1


async def test_a_store_error_stops_the_pass_and_keeps_every_mark(store, rules):
    from receiver.store import StoreError

    deriver = deriver_for(store, rules)
    samples = [make_sample("GameScores", "ConsumedReadCapacityUnits", m, value=60.0, count=1) for m in range(3)]
    await store.commit("a", samples)
    deriver.touch(samples)
    real = store.written_since  # what a minute's pass reads
    calls = []

    async def down(*args, **kwargs):
        calls.append(args)
        raise StoreError("the store is down")

    store.written_since = down
    await deriver.derive_pending(hours=False)
    assert len(calls) == 1  # the pass stopped at the first
    store.written_since = real
    await deriver.derive_pending(hours=False)
    for minute in range(3):
        assert await values_of(store, MINUTE_MS, T0 + minute * MINUTE_MS)
    assert deriver.counts().set_aside == ()
