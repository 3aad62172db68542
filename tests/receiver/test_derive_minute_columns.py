"""An open minute kept as columns gives back, to the bit, the samples it was given: the
last of each period, -0.0 and NaN kept, statistics in their order, a key added twice."""

from __future__ import annotations

import math
import pickle

from receiver.derive.minute_columns import MinuteColumns
from tests.builders import T0, make_sample

MINUTE = T0 - T0 % 60_000


def bits(samples) -> bytes:
    return pickle.dumps(sorted(samples, key=repr))


def test_the_samples_come_back_bit_for_bit():
    given = [
        make_sample("A", start_ms=MINUTE, value=-0.0, count=0.0, low=math.nan, high=5e-324),
        make_sample("A", start_ms=MINUTE + 30_000, value=1.5, stats=(("p99", -0.0), ("p50", 2.0), ("p99", 3.0))),
        make_sample("B", start_ms=MINUTE, value=1.7e308, stats=(("p50", math.inf),), labels=(("request", "7"),)),
    ]
    columns = MinuteColumns.of(given)
    assert len(columns) == 2
    found = [s for key in columns for s in columns.samples(key)]
    assert bits(found) == bits(given)
    assert math.copysign(1.0, columns.samples(given[0].series.key)[0].sum) == -1.0


def test_the_last_sample_of_a_period_is_the_one_kept():
    first = make_sample("A", start_ms=MINUTE, value=1.0)
    last = first._replace(sum=2.0)
    columns = MinuteColumns.of([first, last])
    assert columns.samples(first.series.key) == [last]


def test_a_key_added_again_keeps_its_earlier_samples_and_rows_read_as_samples():
    a = make_sample("A", start_ms=MINUTE, value=1.0, stats=(("p50", 4.0),))
    b = make_sample("A", start_ms=MINUTE + 30_000, value=2.0)
    c = make_sample("C", start_ms=MINUTE, value=3.0)
    columns = MinuteColumns()
    columns.add(a.series.key, [a])
    columns.add(c.series.key, [c])
    columns.add(a.series.key, [b])
    assert bits(columns.samples(a.series.key)) == bits([a, b])
    rows = list(columns.rows(a.series.key))
    assert [(row[1], row[3], row[7], list(row[8])) for row in rows] == [
        (a.start_ms, a.count, ("p50",), [4.0]),
        (b.start_ms, b.count, (), []),
    ]
    assert columns.samples(make_sample("Z").series.key) == []
    assert c.series.key in columns and make_sample("Z").series.key not in columns
