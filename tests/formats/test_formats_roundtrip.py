"""decode(encode(samples)) == samples, for samples each format can carry."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from receiver.formats import decode_record, encode_records
from receiver.formats.limits import OLDEST_MS
from receiver.formats.units import CLOUDWATCH_UNITS, to_ucum
from receiver.model import PERIOD_MS, Sample, Series, percentile_name

from .helpers import CACHE, NOW_MS

UCUM_CODES = {to_ucum(name) for name in CLOUDWATCH_UNITS}
ROUND_TRIP = settings(max_examples=100, deadline=None)

names = st.text(min_size=1, max_size=12)
units = st.sampled_from(CLOUDWATCH_UNITS) | st.text(max_size=8).filter(lambda u: u not in UCUM_CODES)
numbers = st.floats(allow_nan=False, allow_infinity=False)
percentiles = st.integers(1, 999_999).map(lambda k: percentile_name(k / 1_000_000))


def sorted_pairs(pairs: dict) -> tuple:
    return tuple(sorted(pairs.items()))


@st.composite
def samples(draw: st.DrawFn, *, fmt: str) -> Sample:
    reserved = {"Namespace", "MetricName"} if fmt == "opentelemetry0.7" else set()
    dimensions = draw(st.dictionaries(names.filter(lambda n: n not in reserved), st.text(max_size=12), max_size=4))
    series = Series(draw(names), draw(names), draw(names), draw(names), sorted_pairs(dimensions), draw(units))
    start = draw(st.integers(OLDEST_MS, NOW_MS - 10**7))  # the periods a decoder takes
    if fmt == "json":
        end = start + PERIOD_MS
        count = draw(numbers)
        stats = draw(
            st.dictionaries(names.filter(lambda n: n not in {"count", "sum", "min", "max"}), numbers, max_size=3)
        )
        labels = draw(
            st.one_of(st.just({}), st.builds(lambda name: {"metric_stream_name": name}, st.text(max_size=12)))
        )
    else:
        end = start + draw(st.integers(1, 10**7))
        count = float(draw(st.integers(0, 2**53)))
        stats = draw(st.dictionaries(percentiles, numbers, max_size=3))
        labels = draw(
            st.dictionaries(
                st.text(max_size=12).filter(lambda n: n not in {"cloud.account.id", "cloud.region"}),
                st.text(max_size=12),
                max_size=3,
            )
        )
    return Sample(
        series,
        start,
        end,
        count,
        draw(numbers),
        draw(numbers),
        draw(numbers),
        sorted_pairs(stats),
        sorted_pairs(labels),
    )


def round_trip(batch: list[Sample], fmt: str, max_record_bytes: int = 1_024_000) -> list[Sample]:
    return [
        sample
        for data in encode_records(batch, fmt, max_record_bytes=max_record_bytes)
        for sample in decode_record(data, fmt, now_ms=NOW_MS, cache=CACHE)
    ]


@ROUND_TRIP
@given(st.lists(samples(fmt="opentelemetry0.7"), max_size=20))
def test_otel07_round_trip(batch: list[Sample]) -> None:
    assert round_trip(batch, "opentelemetry0.7") == batch


@ROUND_TRIP
@given(st.lists(samples(fmt="opentelemetry1.0"), max_size=20))
def test_otel10_round_trip(batch: list[Sample]) -> None:
    assert round_trip(batch, "opentelemetry1.0") == batch


@ROUND_TRIP
@given(st.lists(samples(fmt="json"), max_size=20))
def test_json_round_trip(batch: list[Sample]) -> None:
    assert round_trip(batch, "json") == batch


@ROUND_TRIP
@given(st.lists(samples(fmt="opentelemetry0.7"), min_size=1, max_size=20))
def test_round_trip_with_detection_and_small_records(batch: list[Sample]) -> None:
    records = encode_records(batch, "opentelemetry0.7", max_record_bytes=4_000)
    assert [s for data in records for s in decode_record(data, now_ms=NOW_MS, cache=CACHE)] == batch
