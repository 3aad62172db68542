"""An hour's rollup kept in step with its minutes is, to the bit, ``rollup_hour`` of every
sample its minutes hold now: through replaced minutes, settling, ties of 0.0 and -0.0,
values near overflow, several periods in a minute and series that differ in unit only."""

from __future__ import annotations

import dataclasses
import math
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from receiver.derive.rollup import HourRollup, Unsettled, _units, rollup_hour
from receiver.model import HOUR_MS, MINUTE_MS
from tests.builders import T0, make_sample

HOUR = T0 - T0 % HOUR_MS
MINUTES = 6

finite = st.floats(allow_nan=False, allow_infinity=False)
# Few distinct values, so that ties (0.0 against -0.0 among them) are common.
tied = st.sampled_from([0.0, -0.0, 1.0, -1.0, 2.5, 5e-324, -5e-324])
huge = st.sampled_from([1.7e308, -1.7e308, 9e307])


def same(got, want) -> bool:
    """Equal to the bit: the same samples, each series once, in any order."""
    return pickle.dumps(sorted(got, key=repr)) == pickle.dumps(sorted(want, key=repr))


@st.composite
def minute_of(draw, minute: int):
    """The samples one minute of the hour holds: a few series, some with two periods."""
    found = {}
    for _ in range(draw(st.integers(0, 4))):
        table = draw(st.sampled_from(["A", "B", "C"]))
        numbers = draw(st.sampled_from([tied, finite, huge]))
        sample = make_sample(
            table,
            start_ms=HOUR + minute * MINUTE_MS + draw(st.sampled_from([0, 30_000])),
            value=draw(numbers),
            count=draw(numbers),
            low=draw(numbers),
            high=draw(numbers),
            stats=tuple(
                sorted({name: draw(numbers) for name in draw(st.sets(st.sampled_from(["p50", "p99"])))}.items())
            ),
            labels=(("request", str(draw(st.integers(0, 3)))),),
        )
        if draw(st.booleans()):  # the same key with another unit: one series to the rollup
            sample = sample._replace(series=dataclasses.replace(sample.series, unit="Milliseconds"))
        found[sample.identity] = sample
    return list(found.values())


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_a_rollup_kept_in_step_is_rollup_hour_of_every_minute(data):
    open_minutes = data.draw(st.integers(1, 3))
    minutes: dict[int, list] = {}
    rollup = HourRollup(HOUR, open_minutes)
    for _ in range(data.draw(st.integers(1, 12))):
        minute = data.draw(st.integers(0, MINUTES - 1))
        minutes[minute] = data.draw(minute_of(minute))
        everything = [s for found in minutes.values() for s in found]
        try:
            rollup.replace_minute(HOUR + minute * MINUTE_MS, minutes[minute])
        except Unsettled:
            # As the deriver does: roll the hour up again from every sample, a series at a time.
            assert HOUR + minute * MINUTE_MS in rollup.settled_minutes or any(
                abs(s.sum) > 1e300 or abs(s.count) > 1e300 for s in everything
            )
            rollup = HourRollup(HOUR, open_minutes)
            recent = frozenset(HOUR + m * MINUTE_MS for m in sorted(minutes)[-open_minutes:])
            for key in {s.series.key for s in everything}:
                rollup.add_series([s for s in everything if s.series.key == key], recent)
        assert same(rollup.samples(), rollup_hour(everything, HOUR))


def test_a_settled_minute_that_changes_cannot_be_taken_back_out():
    rollup = HourRollup(HOUR, open_minutes=1)
    first = [make_sample("A", start_ms=HOUR, value=1.0)]
    rollup.replace_minute(HOUR, first)
    rollup.replace_minute(HOUR + MINUTE_MS, [make_sample("A", start_ms=HOUR + MINUTE_MS, value=2.0)])
    assert rollup.settled_minutes == {HOUR}
    with pytest.raises(Unsettled):
        rollup.replace_minute(HOUR, [first[0]._replace(sum=5.0)])


def test_an_open_minute_replaced_takes_its_old_samples_out():
    rollup = HourRollup(HOUR, open_minutes=2)
    a = make_sample("A", start_ms=HOUR, value=1.0, high=9.0)
    b = make_sample("A", start_ms=HOUR + MINUTE_MS, value=2.0, high=3.0)
    rollup.replace_minute(HOUR, [a])
    rollup.replace_minute(HOUR + MINUTE_MS, [b])
    rollup.replace_minute(HOUR, [a._replace(max=1.0)])
    (rolled,) = rollup.samples()
    assert rolled.max == 3.0
    rollup.replace_minute(HOUR, [])
    rollup.replace_minute(HOUR + MINUTE_MS, [])
    assert rollup.samples() == []


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False, max_value=1e300, min_value=-1e300), max_size=70))
def test_exact_sums_round_as_fsum(values):
    assert sum(map(_units, values)) / (1 << 1074) == math.fsum(values)
