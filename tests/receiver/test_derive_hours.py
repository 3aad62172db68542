"""An hour derived from the minutes that changed stores, to the bit, what
``derive_hour_values`` gives over every sample stored for it: through commits in any order,
retries, corrections, settled minutes changing, regions, restarts, reloaded rules, values
past the largest float and replicas; and it reads only the minutes that changed."""

from __future__ import annotations

import pickle

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from receiver.config import REPOSITORY_RULES
from receiver.derive import deriver as deriver_module
from receiver.derive.deriver import Deriver, derive_hour_values
from receiver.model import HOUR_MS, MINUTE_MS, derived_key
from receiver.rules import load_rules
from receiver.store import open_store_from_url
from tests.builders import T0, make_sample
from tests.rules.rulekit import pack

HOUR = T0 - T0 % HOUR_MS


class Holder:
    """A RuleHolder whose rules a test replaces, as a reload does."""

    def __init__(self, rules) -> None:
        self.current = rules


def deriver_for(store, rules, **kwargs) -> Deriver:
    # The builders' samples are from 2023: a retention long enough to keep them current.
    return Deriver(store, rules, minute_retention_days=100_000, **kwargs)


async def expected(store) -> bytes:
    samples = await store.samples(HOUR, HOUR + HOUR_MS)
    return stable(derive_hour_values(pack(), samples, HOUR))


def stable(values) -> bytes:
    return pickle.dumps(sorted(values, key=derived_key))


async def stored(store) -> bytes:
    return stable(await store.bucket_values(HOUR_MS, HOUR))


@st.composite
def commits(draw):
    """Deliveries to some minutes of the hour: tables in two regions, corrections of what
    was sent before (a new Sum for the same identity), and repeats."""
    found = []
    for _ in range(draw(st.integers(1, 8))):
        minute = draw(st.integers(0, 7))
        delivery = []
        for _ in range(draw(st.integers(1, 4))):
            metric, operation = draw(
                st.sampled_from(
                    [
                        ("ConsumedReadCapacityUnits", None),
                        ("ThrottledRequests", "GetItem"),
                        ("SuccessfulRequestLatency", "Query"),
                    ]
                )
            )
            value = draw(st.sampled_from([0.0, 1.0, 7.5, 1e6, 1.7e308]))
            delivery.append(
                make_sample(
                    draw(st.sampled_from(["A", "B", "C"])),
                    metric,
                    start_ms=HOUR + minute * MINUTE_MS,
                    value=value,
                    low=value,
                    high=value,
                    count=float(draw(st.integers(1, 5))),
                    operation=operation,
                    region=draw(st.sampled_from(["us-east-1", "us-east-1", "eu-west-1"])),
                    stats=(("p99", draw(st.sampled_from([0.0, -0.0, 3.0]))),) if operation == "Query" else (),
                )
            )
        found.append((delivery, draw(st.sampled_from(["derive", "derive", "restart", "reload", "repeat"]))))
    return found


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(commits(), st.integers(1, 3))
async def test_an_hour_kept_in_step_stores_what_the_whole_hour_gives(monkeypatch, deliveries, open_minutes):
    monkeypatch.setattr(deriver_module, "OPEN_MINUTES", open_minutes)
    store = open_store_from_url("memory://")
    await store.open()
    rules_holder = Holder(pack())
    deriver = deriver_for(store, rules_holder, holder="one")
    for index, (delivery, then) in enumerate(deliveries):
        await store.commit(f"r{index}", delivery)
        if then == "repeat":  # a Firehose retry: the same samples again
            await store.commit(f"r{index}-again", delivery)
        elif then == "restart":  # state lost: the next pass reads the whole hour
            deriver = deriver_for(store, rules_holder, holder="one")  # the same name: it holds the leases
        elif then == "reload":
            rules_holder.current = load_rules(REPOSITORY_RULES)  # equal rules, another object
        deriver.touch(delivery)
        await deriver.derive_pending()
        assert await stored(store) == await expected(store)
    await store.close()


class Counting:
    """A store that counts whole-hour reads and minute reads."""

    def __init__(self, store) -> None:
        self.store = store
        self.whole_reads = 0
        self.minute_reads: list[int] = []

    def __getattr__(self, name):
        return getattr(self.store, name)

    def samples_by_series(self, start_ms, end_ms):
        self.whole_reads += 1
        return self.store.samples_by_series(start_ms, end_ms)

    async def samples(self, start_ms, end_ms, **kwargs):
        if end_ms - start_ms == MINUTE_MS:
            self.minute_reads.append(start_ms)
        return await self.store.samples(start_ms, end_ms, **kwargs)


async def test_an_hour_pass_reads_only_the_minutes_that_changed(store, rules, monkeypatch):
    monkeypatch.setattr(deriver_module, "OPEN_MINUTES", 2)
    counting = Counting(store)
    deriver = deriver_for(counting, rules)

    async def deliver(name, minute, value):
        samples = [make_sample(table, start_ms=HOUR + minute * MINUTE_MS, value=value) for table in ("A", "B")]
        await store.commit(name, samples)
        deriver.touch(samples)
        counting.minute_reads.clear()
        await deriver.derive_bucket(HOUR_MS, HOUR)
        assert await stored(store) == await expected(store)

    for minute in range(4):
        await store.commit(f"m{minute}", [make_sample("A", start_ms=HOUR + minute * MINUTE_MS, value=1.0)])
    await deriver.derive_bucket(HOUR_MS, HOUR)
    assert counting.whole_reads == 1
    await deliver("late", 3, 5.0)  # an open minute again
    assert (counting.whole_reads, counting.minute_reads) == (1, [HOUR + 3 * MINUTE_MS])
    await deliver("next", 4, 2.0)  # a new minute: minute 2 settles
    assert (counting.whole_reads, counting.minute_reads) == (1, [HOUR + 4 * MINUTE_MS])
    await deliver("correction", 0, 9.0)  # a settled minute: the hour is read again
    assert counting.whole_reads == 2


async def test_a_total_past_the_largest_float_is_left_out_and_comes_back(store, rules):
    deriver = deriver_for(store, rules)
    throttled = [
        make_sample("A", "ThrottledRequests", start_ms=HOUR + minute * MINUTE_MS, value=1.7e308, operation="GetItem")
        for minute in range(2)
    ]
    await store.commit("big", throttled)
    await deriver.derive_bucket(HOUR_MS, HOUR)
    assert await stored(store) == await expected(store)
    assert deriver.counts().not_computed  # the hour's total throttled requests
    await store.commit("smaller", [throttled[1]._replace(sum=1.0)])
    await deriver.derive_bucket(HOUR_MS, HOUR)
    assert await stored(store) == await expected(store)
    await store.commit("big again", throttled)
    await deriver.derive_bucket(HOUR_MS, HOUR)
    assert await stored(store) == await expected(store)


async def test_replicas_keep_an_hour_whole_whoever_derives_it(store, rules):
    now = [T0 / 1000]
    first = deriver_for(store, rules, clock=lambda: now[0], holder="first")
    second = deriver_for(store, rules, clock=lambda: now[0], holder="second")
    for minute in range(3):
        for deriver, table in ((first, "A"), (second, "B")):
            samples = [make_sample(table, start_ms=HOUR + minute * MINUTE_MS, value=minute + 1.0)]
            await store.commit(f"{table}{minute}", samples)
            deriver.touch(samples)
            await deriver.derive_pending()
        await first.mark_stale()
        await first.derive_pending()
        assert await stored(store) == await expected(store)
    now[0] += 3600.0  # the first replica stops: the second takes its leases over
    samples = [make_sample("C", start_ms=HOUR + 5 * MINUTE_MS, value=3.0)]
    await store.commit("C", samples)
    second.touch(samples)
    await second.derive_pending()
    assert await stored(store) == await expected(store)


async def test_a_correction_that_only_turns_a_zero_negative_is_stored(store, rules):
    # 0.0 == -0.0, yet a p99 of -0.0 gives a value of -0.0: the change must reach the store.
    deriver = deriver_for(store, rules)
    for p99 in (-0.0, 0.0, -0.0):
        latency = make_sample(
            "B",
            "SuccessfulRequestLatency",
            start_ms=HOUR,
            value=1.0,
            low=1.0,
            high=1.0,
            count=1.0,
            operation="Query",
            stats=(("p99", p99),),
        )
        await store.commit(f"p99 {p99!r}", [latency])
        await deriver.derive_bucket(HOUR_MS, HOUR)
        assert await stored(store) == await expected(store)
