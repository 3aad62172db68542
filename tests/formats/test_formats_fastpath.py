"""The OpenTelemetry fast path reads exactly what the careful path reads, or declines.

Every test decodes a record twice, with the fast path and with the careful walk alone, and
compares; tests of realistic records also check that the fast path took them.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from receiver.formats import DecodeError, encode_records, fastpath, otel, otel07, otel10
from receiver.model import Pairs, Sample, Series
from receiver.workload import TableSpec, Workload

from .helpers import END_NS, START_NS, otel07_message, otel10_message, record

FLAVORS = {otel07.NAME: otel07.FLAVOR, otel10.NAME: otel10.FLAVOR}
EXTRA: Pairs = (("stream", "S"),)


def fast(data: bytes, fmt: str) -> list[Sample] | None:
    flavor = FLAVORS[fmt]
    return fastpath.decode(data, EXTRA, flavor, otel._resource, otel._new_series)


def careful(data: bytes, fmt: str, monkeypatch: pytest.MonkeyPatch) -> list[Sample]:
    with monkeypatch.context() as patch:
        patch.setattr(fastpath, "decode", lambda *args: None)
        return otel.decode(data, EXTRA, FLAVORS[fmt])


def same_as_careful(data: bytes, fmt: str, monkeypatch: pytest.MonkeyPatch) -> list[Sample] | None:
    """The fast result (None if declined) after checking it equals the careful one."""
    got = fast(data, fmt)
    if got is not None:
        assert got == careful(data, fmt, monkeypatch)
    return got


@pytest.mark.parametrize("fmt", FLAVORS)
def test_a_workload_minute_takes_the_fast_path(fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    tables = [TableSpec(f"t{i}", indexes=("ByDate",)[: i % 2], provisioned=(5.0, 5.0) if i % 3 else None)
              for i in range(12)]
    minute = Workload(seed=3, tables=tables).minute(START_NS // 1_000_000)
    records = encode_records(minute, fmt, max_record_bytes=64_000)
    decoded = []
    for data in records:
        got = same_as_careful(data, fmt, monkeypatch)
        assert got is not None, "a realistic record fell off the fast path"
        decoded.extend(got)
    assert [s._replace(labels=()) for s in decoded] == minute
    assert any(s.stats for s in decoded) and any(not s.stats for s in decoded)


def test_zero_values_left_off_the_wire_read_as_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    # proto3 omits zero fields: each of these has its own layout, and order is kept.
    messages = [
        otel07_message(total=4.0),
        otel07_message(total=0.0),
        otel07_message(quantiles=((0.0, 0.0), (1.0, 3.0))),
        otel07_message(quantiles=((0.0, 0.0), (1.0, 0.0)), total=0.0, count=0),
        otel07_message(quantiles=((0.0, 1.0), (0.5, 0.0), (1.0, 3.0))),
        otel07_message(total=5.0),
    ]
    got = same_as_careful(record(*messages), otel07.NAME, monkeypatch)
    assert got is not None
    assert [(s.sum, s.min, s.max, s.count, s.stats) for s in got] == [
        (4.0, 1.0, 3.0, 2.0, ()), (0.0, 1.0, 3.0, 2.0, ()), (4.0, 0.0, 3.0, 2.0, ()),
        (0.0, 0.0, 0.0, 0.0, ()), (4.0, 1.0, 3.0, 2.0, (("p50", 0.0),)), (5.0, 1.0, 3.0, 2.0, ()),
    ]


def test_several_minutes_and_namespaces_in_one_record(monkeypatch: pytest.MonkeyPatch) -> None:
    minute = 60_000_000_000
    messages07 = [otel07_message(start=START_NS + k * minute, end=END_NS + k * minute,
                                 labels=(("Namespace", f"N{k % 2}"), ("MetricName", "M"), ("TableName", "T")))
                  for k in range(4)]
    got = same_as_careful(record(*messages07), otel07.NAME, monkeypatch)
    assert got is not None and [s.start_ms for s in got] == [(START_NS + k * minute) // 10**6 for k in range(4)]
    messages10 = [otel10_message(attributes=(("Namespace", f"N{k}"), ("MetricName", "M"))) for k in range(3)]
    got = same_as_careful(record(*messages10), otel10.NAME, monkeypatch)
    assert got is not None and [s.series.namespace for s in got] == ["N0", "N1", "N2"]


def test_many_points_of_one_metric_unpack_together(monkeypatch: pytest.MonkeyPatch) -> None:
    got = same_as_careful(record(otel07_message(points=500), otel07_message(points=3, unit="ms")),
                          otel07.NAME, monkeypatch)
    assert got is not None and len(got) == 503
    assert {s.series.unit for s in got} == {"Count", "Milliseconds"}


def test_flags_of_the_1x_format_are_left_to_the_careful_path(monkeypatch: pytest.MonkeyPatch) -> None:
    # flags (8) come after the attributes (7): values, labels, values is not a split it makes.
    message = otel10_message()
    message.resource_metrics[0].scope_metrics[0].metrics[0].summary.data_points[0].flags = 1
    data = record(message, otel10_message())
    assert fast(data, otel10.NAME) is None
    assert len(careful(data, otel10.NAME, monkeypatch)) == 2


def test_a_label_holding_the_split_marker_is_still_read_exactly(monkeypatch: pytest.MonkeyPatch) -> None:
    # The 0.7 marker is the start-time field; a label value that contains those bytes makes
    # bytes.find cut inside the labels, which the label check then refuses.
    marker = b"\x11" + START_NS.to_bytes(8, "little") + b"\x19"
    tricky = otel07_message(labels=(("Namespace", "N"), ("MetricName", "M"), ("Table", marker.decode("latin-1"))))
    data = record(tricky, otel07_message())
    got = same_as_careful(data, otel07.NAME, monkeypatch)
    assert got is None or len(got) == 2
    assert len(otel.decode(data, EXTRA, otel07.FLAVOR)) == 2


@pytest.mark.parametrize("message", [
    otel07_message(quantiles=((0.0, 1.0), (0.0, 2.0), (1.0, 3.0))),  # min twice: the last wins
    otel07_message(quantiles=((0.0, 1.0), (0.9, 2.0), (0.9, 2.5), (1.0, 3.0))),
    otel07_message(quantiles=((0.0, 1.0),)),
    otel07_message(quantiles=((0.0, 1.0), (1.5, 2.0), (1.0, 3.0))),
    otel07_message(quantiles=((0.0, 1.0), (math.nan, 2.0), (1.0, 3.0))),
    otel07_message(total=math.inf),
    otel07_message(quantiles=((0.0, math.nan), (1.0, 3.0))),
    otel07_message(start=END_NS, end=START_NS),
    otel07_message(start=START_NS, end=START_NS),
    otel07_message(labels=(("MetricName", "M"),)),
    otel07_message(resource=()),
], ids=lambda m: "")
def test_what_the_fast_path_declines_the_careful_path_judges(
    message: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = record(otel07_message(), message)
    assert fast(data, otel07.NAME) is None
    try:
        careful(data, otel07.NAME, monkeypatch)
    except DecodeError:
        pass  # the careful path words the error; the fast path must not have said anything


def test_an_unknown_datapoint_field_is_declined(monkeypatch: pytest.MonkeyPatch) -> None:
    message = otel07_message()
    point = message.resource_metrics[0].instrumentation_library_metrics[0].metrics[0].double_summary.data_points[0]
    point.MergeFromString(b"\x78\x05")  # field 15, varint 5: kept as an unknown field
    data = record(message)
    assert b"\x78\x05" in data
    assert fast(data, otel07.NAME) is None
    assert len(careful(data, otel07.NAME, monkeypatch)) == 1


names = st.text(min_size=1, max_size=8)
finite = st.floats(allow_nan=False, allow_infinity=False)


@st.composite
def batches(draw: st.DrawFn) -> list[Sample]:
    count = draw(st.integers(1, 12))
    out = []
    for _ in range(count):
        table = draw(st.sampled_from(["a", "b", "c"]))
        series = Series("123456789012", "us-east-1", draw(st.sampled_from(["AWS/DynamoDB", "X"])),
                        draw(st.sampled_from(["M1", "M2"])), (("TableName", table),),
                        draw(st.sampled_from(["Count", "Milliseconds"])))
        start = draw(st.sampled_from([START_NS // 10**6, START_NS // 10**6 + 60_000, 0]))
        stats = draw(st.sampled_from([(), (("p50", 0.0),), (("p90", 2.0), ("p99", 3.5))]))
        out.append(Sample(series, start, start + 60_000, float(draw(st.integers(0, 3))),
                          draw(st.sampled_from([0.0, 1.5, -2.0])) if draw(st.booleans()) else draw(finite),
                          draw(st.sampled_from([0.0, 1.0])), draw(finite), stats))
    return out


@settings(max_examples=150, deadline=None)
@given(batch=batches(), fmt=st.sampled_from(sorted(FLAVORS)))
def test_fast_equals_careful_on_any_batch(batch: list[Sample], fmt: str) -> None:
    patch = pytest.MonkeyPatch()
    try:
        for data in encode_records(batch, fmt, max_record_bytes=1_000_000):
            same_as_careful(data, fmt, patch)
    finally:
        patch.undo()
