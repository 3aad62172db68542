"""The packed block (receiver/store/packing.py): what goes in comes back, bit for bit, once per identity."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from receiver.model import MINUTE_MS, Sample, Series
from receiver.store import StoreError
from receiver.store.packing import Block, PackError, distinct, latest, pack
from tests.builders import LABELS, T0, make_sample, make_series

SERIES = [make_series(table=f"T{i}") for i in range(6)]
OTHER_UNIT = [make_series(table=f"T{i}", unit="Seconds") for i in range(6)]
LABEL_SETS = [LABELS, (), (("k", "v"),)]


def unpack(blocks) -> list[Sample]:
    """Every block's samples, the series and labels integers mapped back as the test packed them."""
    series_of = {number: SERIES[number] for number in range(len(SERIES))}
    found = []
    for packed in blocks:
        block = Block(packed.data, packed.start_ms)
        found += block.rows(series_of.__getitem__, LABEL_SETS.__getitem__, lambda n, unit: OTHER_UNIT[n])
    return found


def pack_samples(samples, limit=0):
    series = [SERIES.index(s.series) if s.series in SERIES else OTHER_UNIT.index(s.series) for s in samples]
    units = [0 if s.series in SERIES else "Seconds" for s in samples]
    labels = [LABEL_SETS.index(s.labels) for s in samples]
    return pack(
        samples,
        [s.series.metric for s in samples],
        series,
        labels[0] if len(set(labels)) == 1 else labels,
        None if set(units) == {0} else units,
        limit,
    )


def bits(sample: Sample) -> tuple:
    """The sample with every float as its 8 bytes: -0.0 and 0.0 differ, so do NaN payloads."""
    numbers = (sample.count, sample.sum, sample.min, sample.max)
    return (
        sample.series,
        sample.start_ms,
        sample.end_ms,
        tuple(struct.pack("<d", x) for x in numbers),
        tuple((name, struct.pack("<d", x)) for name, x in sample.stats),
        sample.labels,
    )


finite = st.floats(allow_nan=False, allow_infinity=False)
stat_names = st.sampled_from([(), ("p50",), ("p50", "p99"), ("p50", "p90", "p99", "p99.9", "TM(10%:90%)")])


@st.composite
def samples_of_a_request(draw) -> list[Sample]:
    """A request's samples: several metrics, starts and period lengths, every kind of float,
    mixed stats layouts, labels and units, identities repeated."""
    count = draw(st.integers(1, 40))
    found = []
    for _ in range(count):
        number = draw(st.integers(0, len(SERIES) - 1))
        series = draw(st.sampled_from([SERIES[number], OTHER_UNIT[number]]))
        metric = draw(st.sampled_from(["ConsumedReadCapacityUnits", "ThrottledRequests"]))
        series = Series(series.account, series.region, series.namespace, metric, series.dimensions, series.unit)
        start = T0 + draw(st.integers(0, 2)) * MINUTE_MS + draw(st.sampled_from([0, 0, 0, 1]))
        names = draw(stat_names)
        found.append(
            Sample(
                series,
                start,
                start + draw(st.sampled_from([MINUTE_MS, MINUTE_MS, 5 * MINUTE_MS])),
                draw(finite),
                draw(finite),
                draw(finite),
                draw(finite),
                tuple((name, draw(finite)) for name in names),
                draw(st.sampled_from(LABEL_SETS)),
            )
        )
    return found


@settings(max_examples=150, deadline=None)
@given(samples_of_a_request(), st.sampled_from([0, 1, 3]))
def test_blocks_give_back_each_identity_as_the_request_last_had_it(samples, limit):
    numbers = [[s.dimensions for s in SERIES].index(s.series.dimensions) for s in samples]
    units = [0 if s.series.unit == "Count" else s.series.unit for s in samples]
    labels = [LABEL_SETS.index(s.labels) for s in samples]
    metrics = [s.series.metric for s in samples]
    blocks = pack(
        samples,
        metrics,
        numbers,
        labels,
        None if set(units) == {0} else units,
        limit,
    )
    found = []
    for packed in blocks:
        block = Block(packed.data, packed.start_ms)
        metric = packed.metric

        def series_of(number, metric=metric):
            base = SERIES[number]
            return Series(base.account, base.region, base.namespace, metric, base.dimensions, base.unit)

        def with_unit(number, unit, metric=metric):
            base = SERIES[number]
            return Series(base.account, base.region, base.namespace, metric, base.dimensions, unit)

        found += block.rows(series_of, LABEL_SETS.__getitem__, with_unit)
        assert len(packed.series) == len(packed.labels) == len(packed.origin) == block.n
        assert list(block.series) == sorted(block.series) and (not limit or block.n <= limit)
    expected = {sample.identity: sample for sample in samples}  # the later of two equal identities
    assert sorted(map(bits, found), key=repr) == sorted(map(bits, expected.values()), key=repr)


def test_a_block_reads_one_range_of_its_series_alone():
    samples = [make_sample(series=SERIES[i], value=float(i)) for i in range(6)]
    [packed] = pack_samples(samples)
    block = Block(packed.data, packed.start_ms)
    lo, hi = block.span(2, 4)
    assert (lo, hi) == (2, 5)
    rows = block.rows(SERIES.__getitem__, LABEL_SETS.__getitem__, lambda n, u: OTHER_UNIT[n], lo, hi)
    assert rows == samples[2:5]
    assert block.span(7, 9) == (6, 6)


def test_uniform_columns_are_left_out_of_the_block():
    one = [make_sample(series=SERIES[i]) for i in range(6)]
    mixed = [make_sample(series=SERIES[i], labels=LABEL_SETS[i % 2]) for i in range(6)]
    [uniform] = pack_samples(one)
    [varied] = pack_samples(mixed)
    assert len(varied.data) > len(uniform.data)  # one labels integer per datapoint more
    assert unpack([varied]) == mixed


def test_a_later_sample_of_an_identity_in_one_request_replaces_the_earlier():
    first = make_sample(series=SERIES[0], value=1.0)
    again = make_sample(series=SERIES[0], value=2.0, stats=(("p99", 3.0),))
    other = make_sample(series=SERIES[1])
    blocks = pack_samples([first, other, again])
    assert sorted(unpack(blocks), key=repr) == sorted([again, other], key=repr)


def test_a_non_finite_statistic_is_refused_naming_the_sample():
    bad = make_sample(series=SERIES[3], minute=2)._replace(stats=(("p99", math.inf),))
    with pytest.raises(StoreError, match=f"T3.* at {T0 + 2 * MINUTE_MS}"):
        pack_samples([make_sample(series=SERIES[0]), bad])


def test_latest_keeps_each_identity_of_the_last_block_that_has_it():
    older = [make_sample(series=SERIES[i], value=1.0) for i in range(4)]
    newer = [make_sample(series=SERIES[i], value=2.0) for i in (2, 3, 4)]
    parts = []
    for samples in (older, newer):
        [packed] = pack_samples(samples)
        block = Block(packed.data, packed.start_ms)
        parts.append((block, 0, block.n, unpack([packed])))
    merged = latest(parts)
    assert sorted(merged, key=repr) == sorted(older[:2] + newer, key=repr)
    assert distinct(parts) == 5


def test_blocks_of_different_period_lengths_keep_them_apart():
    one = [make_sample(series=SERIES[0], period_minutes=1)]
    five = [make_sample(series=SERIES[0], period_minutes=5), make_sample(series=SERIES[1], period_minutes=5)]
    parts = []
    for samples in (one, five):
        [packed] = pack_samples(samples)
        block = Block(packed.data, packed.start_ms)
        parts.append((block, 0, block.n, unpack([packed])))
    assert distinct(parts) == 3 and len(latest(parts)) == 3


@pytest.mark.parametrize(
    "damage",
    [lambda data: data[:3], lambda data: b"\x09" + data[1:], lambda data: data[:5] + b"{" + data[6:], lambda d: d[:-4]],
    ids=["too-short", "unknown-version", "bad-header", "cut-column"],
)
def test_damaged_bytes_are_a_pack_error(damage):
    [packed] = pack_samples([make_sample(series=SERIES[i], stats=(("p99", 1.0),)) for i in range(3)])
    with pytest.raises(PackError):
        block = Block(damage(packed.data), packed.start_ms)
        block.rows(SERIES.__getitem__, LABEL_SETS.__getitem__, lambda n, u: OTHER_UNIT[n])
