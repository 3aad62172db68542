"""An hour still open is stored at its first hour pass and then once every
``open_hour_interval_s``; a closed hour, and a correction of one, at the next hour pass; a
stop's last pass (``derive_pending``) stores every marked hour. The same on every store: the
schedule is the deriver's."""

from __future__ import annotations

import pytest

from receiver.derive.deriver import Deriver, derive_hour_values
from receiver.model import HOUR_MS, MINUTE_MS, derived_key
from receiver.store import open_store_from_url
from tests.builders import T0, make_sample
from tests.rules.rulekit import pack

HOUR = T0 - T0 % HOUR_MS
INTERVAL_S = 300.0


class Holder:
    def __init__(self, rules) -> None:
        self.current = rules


class Clock:
    """The deriver's wall clock, in seconds, moved by the test."""

    def __init__(self) -> None:
        self.now = 0.0

    def at_minute(self, minute: int, seconds: float = 0.0) -> None:
        self.now = (HOUR + minute * MINUTE_MS) / 1000 + seconds

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "sqlite"])
async def store(request, tmp_path):
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'metrics.db'}"
    store = open_store_from_url(url)
    await store.open()
    yield store
    await store.close()


def deriver_for(store, clock: Clock) -> Deriver:
    # The builders' samples are from 2023: a retention long enough to keep them current.
    return Deriver(
        store,
        Holder(pack()),
        minute_retention_days=100_000,
        open_hour_interval_s=INTERVAL_S,
        clock=clock,
        holder="one",
    )


async def deliver(store, deriver: Deriver, minute: int, value: float) -> None:
    """A minute's sample committed and its minute derived, as after every delivery."""
    samples = [make_sample("A", start_ms=HOUR + minute * MINUTE_MS, value=value, count=2.0)]
    await store.commit(f"m{minute}-{value}", samples)
    deriver.touch(samples)
    assert await deriver.derive_pending(hours=False)


async def stored(store) -> list[str]:
    return [repr(value) for value in sorted(await store.bucket_values(HOUR_MS, HOUR), key=derived_key)]


async def expected(store) -> list[str]:
    """The hour's values from everything stored for it now."""
    values = derive_hour_values(pack(), await store.samples(HOUR, HOUR + HOUR_MS), HOUR)
    return [repr(value) for value in sorted(values, key=derived_key)]


async def test_an_open_hour_is_stored_at_its_first_pass_then_once_an_interval(store):
    clock = Clock()
    deriver = deriver_for(store, clock)
    clock.at_minute(1)
    await deliver(store, deriver, 0, 10.0)
    assert await deriver.derive_hours()
    first = await stored(store)
    assert first == await expected(store)
    for minute in range(1, 5):  # the hour passes of the next four minutes store nothing
        clock.at_minute(minute + 1)
        await deliver(store, deriver, minute, 10.0 + minute)
        assert await deriver.derive_hours()
        assert await stored(store) == first
    assert first != await expected(store)
    clock.at_minute(6)  # the interval since the first store has passed
    await deliver(store, deriver, 5, 15.0)
    assert await deriver.derive_hours()
    assert await stored(store) == await expected(store)


async def test_an_open_hour_not_due_stays_marked_for_a_later_pass(store):
    clock = Clock()
    deriver = deriver_for(store, clock)
    clock.at_minute(1)
    await deliver(store, deriver, 0, 10.0)
    assert await deriver.derive_hours()
    await deliver(store, deriver, 1, 20.0)
    clock.at_minute(2)
    assert await deriver.derive_hours()  # not due: nothing stored
    clock.at_minute(6)  # no new samples since, yet the change waits no longer than the interval
    assert await deriver.derive_hours()
    assert await stored(store) == await expected(store)


async def test_a_closed_hour_is_stored_at_the_next_hour_pass(store):
    clock = Clock()
    deriver = deriver_for(store, clock)
    clock.at_minute(59)
    await deliver(store, deriver, 58, 10.0)
    assert await deriver.derive_hours()
    clock.at_minute(60, 10.0)  # the hour ended 10 s ago, 70 s after its last store
    await deliver(store, deriver, 59, 30.0)
    assert await deriver.derive_hours()
    assert await stored(store) == await expected(store)
    clock.at_minute(61, 10.0)  # a correction of a closed hour: at the next pass too
    await deliver(store, deriver, 30, 50.0)
    assert await deriver.derive_hours()
    assert await stored(store) == await expected(store)


async def test_a_last_pass_stores_an_open_hour_at_once(store):
    clock = Clock()
    deriver = deriver_for(store, clock)
    clock.at_minute(1)
    await deliver(store, deriver, 0, 10.0)
    assert await deriver.derive_hours()
    clock.at_minute(2)
    await deliver(store, deriver, 1, 20.0)
    assert await deriver.derive_pending()  # what a stop runs: every marked hour
    assert await stored(store) == await expected(store)


async def test_an_hour_is_closed_once_a_later_hours_minute_is_marked(store):
    clock = Clock()
    deriver = deriver_for(store, clock)
    clock.at_minute(30)  # a clock behind the stream's: the hour looks open all along
    await deliver(store, deriver, 29, 10.0)
    assert await deriver.derive_hours()
    await deliver(store, deriver, 59, 20.0)
    await deliver(store, deriver, 60, 30.0)  # the next hour's first minute
    clock.at_minute(31)
    assert await deriver.derive_hours()
    assert await stored(store) == await expected(store)
