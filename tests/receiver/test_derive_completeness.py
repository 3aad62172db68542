"""When a minute is complete (receiver/derive/completeness.py): its expected series in, or
settled; in order; per account and region."""

from __future__ import annotations

from receiver.derive.completeness import ALL_ARRIVED, SETTLED, Completeness, MinuteCompleteness
from receiver.model import MINUTE_MS
from tests.builders import T0, make_sample

SETTLE_S = 300.0
HISTORY = 3
"""Settled minutes in a row a series must report in to be expected (the default is longer)."""
EDGE = T0 + 10 * MINUTE_MS
"""The settled edge of the tests' clock: minutes up to this one have settled."""
NOW_S = (EDGE + MINUTE_MS) / 1000 + SETTLE_S + 5


class Clock:
    def __init__(self, now_s: float = NOW_S) -> None:
        self.now_s = now_s

    def __call__(self) -> float:
        return self.now_s


def minute(offset: int) -> int:
    return EDGE + offset * MINUTE_MS


def samples(at: int, tables=("A", "B"), metrics=("ConsumedReadCapacityUnits", "ThrottledRequests"), **kw):
    return [make_sample(table, metric, start_ms=at, **kw) for table in tables for metric in metrics]


def tracker(history=(-2, -1, 0), clock: Clock | None = None, **series) -> Completeness:
    """A tracker that observed the same series in each of the settled minutes ``history``."""
    completeness = Completeness(SETTLE_S, clock or Clock(), history_minutes=HISTORY)
    for offset in history:
        completeness.observe(minute(offset), samples(minute(offset), **series))
    return completeness


def test_a_minute_is_complete_once_every_expected_series_has_arrived():
    completeness = tracker()
    woken = []
    completeness.on_complete(lambda: woken.append(True))
    part = samples(minute(1), tables=("A",))
    completeness.observe(minute(1), part)
    assert completeness.latest_complete_minute() == EDGE and not woken
    status = completeness.status(minute(1))
    assert (status.complete, status.by) == (False, None)
    assert status.sources == (MinuteCompleteness("123456789012", "us-east-1", minute(1), 4, 2, 2),)
    completeness.observe(minute(1), samples(minute(1)))  # the minute derived again with all of it
    assert completeness.latest_complete_minute() == minute(1) and woken == [True]
    status = completeness.status(minute(1))
    assert (status.complete, status.by, status.completed_ms) == (True, ALL_ARRIVED, int(NOW_S * 1000))


def test_a_series_that_does_not_report_every_minute_is_not_expected():
    completeness = tracker(history=())
    for offset, metrics in ((-2, ("C", "T")), (-1, ("C",)), (0, ("C", "T"))):
        completeness.observe(minute(offset), samples(minute(offset), metrics=metrics))
    completeness.observe(minute(1), samples(minute(1), metrics=("C",)))  # no throttling this minute
    assert completeness.is_complete(minute(1))


def test_every_account_and_region_must_be_in():
    clock = Clock()
    completeness = Completeness(SETTLE_S, clock, history_minutes=HISTORY)
    for offset in (-2, -1, 0):
        at = minute(offset)
        completeness.observe(at, samples(at) + samples(at, region="eu-west-1"))
    completeness.observe(minute(1), samples(minute(1)))  # us-east-1 only
    assert not completeness.is_complete(minute(1))
    completeness.observe(minute(1), samples(minute(1)) + samples(minute(1), region="eu-west-1"))
    assert completeness.is_complete(minute(1))


def test_completeness_moves_forward_in_order():
    completeness = tracker()
    completeness.observe(minute(2), samples(minute(2)))  # whole, but the minute before is not in
    assert completeness.latest_complete_minute() == EDGE
    assert not completeness.status(minute(2)).complete
    completeness.observe(minute(1), samples(minute(1)))
    assert completeness.latest_complete_minute() == minute(2)


def test_without_history_or_with_a_gap_a_minute_waits_for_its_settle_time():
    clock = Clock()
    no_history = Completeness(SETTLE_S, clock, history_minutes=HISTORY)
    no_history.observe(minute(1), samples(minute(1)))
    gap = tracker(history=(-3, -1, 0), clock=clock)
    gap.observe(minute(1), samples(minute(1)))
    short = tracker(history=(-1, 0), clock=clock)
    short.observe(minute(1), samples(minute(1)))
    for completeness in (no_history, gap, short):
        assert not completeness.is_complete(minute(1))
    clock.now_s += 60  # minute 1 has settled now
    for completeness in (no_history, gap, short):
        status = completeness.status(minute(1))
        assert (status.complete, status.by) == (True, SETTLED)
        assert status.completed_ms == minute(1) + MINUTE_MS + int(SETTLE_S * 1000)


def test_a_short_minute_completes_when_it_settles_and_each_minute_is_counted_once_by_how():
    clock = Clock()
    completeness = tracker(clock=clock)
    completeness.observe(minute(1), samples(minute(1)))
    completeness.observe(minute(2), samples(minute(2), tables=("A",)))  # B never reports minute 2
    assert completeness.latest_complete_minute() == minute(1)
    clock.now_s += 2 * 60
    assert completeness.latest_complete_minute() == minute(2)
    assert completeness.status(minute(2)).by == SETTLED
    # History minutes settled; minute 1 arrived whole; minute 2 settled.
    assert completeness.completed_by == {ALL_ARRIVED: 1, SETTLED: 4}
    completeness.latest_complete_minute()
    assert completeness.completed_by == {ALL_ARRIVED: 1, SETTLED: 4}
