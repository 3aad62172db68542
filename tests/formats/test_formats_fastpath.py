"""The OpenTelemetry fast path reads exactly what the careful path reads, or declines.

Every test decodes a record twice, with the fast path and with the careful walk alone, and
compares: the same samples, or the same DecodeError (reason and words) for a bad value the
fast path judges itself; tests of realistic records also check that the fast path took them.
"""

from __future__ import annotations

import contextlib
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from receiver.formats import DecodeError, decode_record, encode_records, fastpath, otel, otel07, otel10
from receiver.formats.limits import latest_end_ms
from receiver.model import Pairs, Sample, Series
from receiver_tools.workload import TableSpec, Workload

from .helpers import CACHE, END_NS, NOW_MS, START_NS, otel07_message, otel10_message, record

FLAVORS = {otel07.NAME: otel07.FLAVOR, otel10.NAME: otel10.FLAVOR}
EXTRA: Pairs = (("stream", "S"),)


def fast(data: bytes, fmt: str) -> list[Sample] | None:
    """The fast path alone: samples, None when it declines, or its DecodeError."""
    flavor = FLAVORS[fmt]
    return fastpath.decode(data, EXTRA, flavor, latest_end_ms(NOW_MS), cache=CACHE)


def careful(data: bytes, fmt: str, monkeypatch: pytest.MonkeyPatch) -> list[Sample]:
    with monkeypatch.context() as patch:
        patch.setattr(otel, "fast_decode", lambda *args, **kwargs: None)
        return otel.decode(data, EXTRA, FLAVORS[fmt], NOW_MS, cache=CACHE)


def outcome(decode: object, *args: object) -> list[Sample] | tuple[str, str] | None:
    """What a decode gives: its samples (or None), or (reason, message) of its DecodeError."""
    try:
        return decode(*args)  # type: ignore[operator]
    except DecodeError as exc:
        return exc.reason, str(exc)


def same_as_careful(data: bytes, fmt: str, monkeypatch: pytest.MonkeyPatch) -> list[Sample] | tuple[str, str] | None:
    """The fast outcome (None if declined) after checking the careful walk gives the same:
    equal samples, or a DecodeError with the same reason and words."""
    got = outcome(fast, data, fmt)
    if got is not None:
        assert got == outcome(careful, data, fmt, monkeypatch)
    return got


@pytest.mark.parametrize("fmt", FLAVORS)
def test_a_workload_minute_takes_the_fast_path(fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    tables = [
        TableSpec(f"t{i}", indexes=("ByDate",)[: i % 2], provisioned=(5.0, 5.0) if i % 3 else None) for i in range(12)
    ]
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
        (4.0, 1.0, 3.0, 2.0, ()),
        (0.0, 1.0, 3.0, 2.0, ()),
        (4.0, 0.0, 3.0, 2.0, ()),
        (0.0, 0.0, 0.0, 0.0, ()),
        (4.0, 1.0, 3.0, 2.0, (("p50", 0.0),)),
        (5.0, 1.0, 3.0, 2.0, ()),
    ]


def test_several_minutes_and_namespaces_in_one_record(monkeypatch: pytest.MonkeyPatch) -> None:
    minute = 60_000_000_000
    messages07 = [
        otel07_message(
            start=START_NS + k * minute,
            end=END_NS + k * minute,
            labels=(("Namespace", f"N{k % 2}"), ("MetricName", "M"), ("TableName", "T")),
        )
        for k in range(4)
    ]
    got = same_as_careful(record(*messages07), otel07.NAME, monkeypatch)
    assert got is not None and [s.start_ms for s in got] == [(START_NS + k * minute) // 10**6 for k in range(4)]
    messages10 = [otel10_message(attributes=(("Namespace", f"N{k}"), ("MetricName", "M"))) for k in range(3)]
    got = same_as_careful(record(*messages10), otel10.NAME, monkeypatch)
    assert got is not None and [s.series.namespace for s in got] == ["N0", "N1", "N2"]


def test_many_points_of_one_metric_unpack_together(monkeypatch: pytest.MonkeyPatch) -> None:
    got = same_as_careful(
        record(otel07_message(points=500), otel07_message(points=3, unit="ms")), otel07.NAME, monkeypatch
    )
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
    assert len(otel.decode(data, EXTRA, otel07.FLAVOR, cache=CACHE)) == 2


@pytest.mark.parametrize(
    "message",
    [
        otel07_message(quantiles=((0.0, 1.0), (0.0, 2.0), (1.0, 3.0))),  # min twice: the last wins
        otel07_message(quantiles=((0.0, 1.0), (0.9, 2.0), (0.9, 2.5), (1.0, 3.0))),
        otel07_message(quantiles=((0.0, 1.0),)),
        otel07_message(quantiles=((0.0, 1.0), (1.5, 2.0), (1.0, 3.0))),
        otel07_message(quantiles=((0.0, 1.0), (math.nan, 2.0), (1.0, 3.0))),
        otel07_message(labels=(("MetricName", "M"),)),
        otel07_message(resource=()),
        otel07_message(points=0),
        otel07_message(
            labels=(("Namespace", "AWS/DynamoDB"), ("MetricName", "Other")),
            name="amazonaws.com/AWS/DynamoDB/ConsumedReadCapacityUnits",
        ),
        otel07_message(labels=(("Namespace", "N"), ("MetricName", "M"), *((f"d{i}", "v") for i in range(70)))),
        otel07_message(quantiles=((0.0, 1.0), *((k / 100, 2.0) for k in range(1, 70)), (1.0, 3.0))),
    ],
    ids=lambda m: "",
)
def test_what_the_fast_path_declines_the_careful_path_judges(message: object, monkeypatch: pytest.MonkeyPatch) -> None:
    data = record(otel07_message(), message)
    assert fast(data, otel07.NAME) is None
    # The careful path words the error; the fast path must not have said anything.
    with contextlib.suppress(DecodeError):
        careful(data, otel07.NAME, monkeypatch)


@pytest.mark.parametrize(
    "message, reason",
    [
        (otel07_message(total=math.inf), "non_finite"),
        (otel07_message(total=math.nan), "non_finite"),
        (otel07_message(quantiles=((0.0, math.nan), (1.0, 3.0))), "non_finite"),
        (otel07_message(quantiles=((0.0, 1.0), (1.0, -math.inf))), "non_finite"),
        (otel07_message(quantiles=((0.0, 1.0), (0.99, math.inf), (1.0, 3.0))), "non_finite"),
        (otel07_message(start=END_NS, end=START_NS), "malformed"),
        (otel07_message(start=START_NS, end=START_NS), "malformed"),
        (otel07_message(start=60_000_000_000, end=120_000_000_000), "timestamp_out_of_range"),
        (otel07_message(start=START_NS, end=(NOW_MS + 86_400_001) * 10**6), "timestamp_out_of_range"),
        (otel07_message(start=2**64 - 2, end=2**64 - 1), "timestamp_out_of_range"),
    ],
    ids=lambda m: m if isinstance(m, str) else "",
)
def test_a_bad_value_is_judged_by_the_fast_path_as_the_careful_path_judges_it(
    message: object, reason: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Sound records apart from one value: the fast path names the fault itself, in the careful
    # walk's words, rather than having the careful walk re-read the whole record.
    data = record(otel07_message(points=30), otel07_message(points=3), message, otel07_message(total=math.nan))
    got = same_as_careful(data, otel07.NAME, monkeypatch)
    assert isinstance(got, tuple) and got[0] == reason


def test_the_first_bad_value_in_record_order_is_the_one_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    # The fast path checks datapoints grouped by layout (here: by their value bytes' length),
    # not in record order; it must still report the record's first fault, as the careful walk.
    late = otel07_message(start=60_000_000_000, end=120_000_000_000)  # 1970: out of range
    nan_min = otel07_message(quantiles=((0.0, math.nan), (0.5, 2.0), (1.0, 3.0)))  # another layout
    for messages, reason in (([nan_min, late], "non_finite"), ([late, nan_min], "timestamp_out_of_range")):
        got = same_as_careful(record(otel07_message(points=5), *messages), otel07.NAME, monkeypatch)
        assert isinstance(got, tuple) and got[0] == reason


def test_a_bad_value_before_an_unreadable_layout_is_left_to_the_careful_path(monkeypatch: pytest.MonkeyPatch) -> None:
    # Which fault comes first is the careful walk's to say when the fast path cannot read all.
    odd = otel07_message()
    point = odd.resource_metrics[0].instrumentation_library_metrics[0].metrics[0].double_summary.data_points[0]
    point.MergeFromString(b"\x78\x05")  # an unknown field: a layout the fast path declines
    data = record(otel07_message(total=math.nan), odd)
    assert fast(data, otel07.NAME) is None
    assert outcome(careful, data, otel07.NAME, monkeypatch)[0] == "non_finite"  # type: ignore[index]


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
        series = Series(
            "123456789012",
            "us-east-1",
            draw(st.sampled_from(["AWS/DynamoDB", "X"])),
            draw(st.sampled_from(["M1", "M2"])),
            (("TableName", table),),
            draw(st.sampled_from(["Count", "Milliseconds"])),
        )
        start = draw(st.sampled_from([START_NS // 10**6, START_NS // 10**6 + 60_000, 0]))
        stats = draw(st.sampled_from([(), (("p50", 0.0),), (("p90", 2.0), ("p99", 3.5))]))
        out.append(
            Sample(
                series,
                start,
                start + 60_000,
                float(draw(st.integers(0, 3))),
                draw(st.sampled_from([0.0, 1.5, -2.0])) if draw(st.booleans()) else draw(finite),
                draw(st.sampled_from([0.0, 1.0])),
                draw(finite),
                stats,
            )
        )
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


@st.composite
def faulty_messages(draw: st.DrawFn, fmt: str) -> object:
    """A message that is sound or carries one of the faults a record may have: a bad value,
    a period out of range, a metric name at odds with its labels, no datapoints, too many
    labels or quantiles."""
    value = st.sampled_from([4.0, 0.0, -1.5, math.nan, math.inf, -math.inf])
    minute = 60_000_000_000
    start = draw(
        st.sampled_from(
            [START_NS, START_NS + minute, 60_000_000_000, (NOW_MS + 86_400_000) * 10**6, 2**64 - minute - 1]
        )
    )
    end = start + draw(st.sampled_from([minute, 0, -minute, 1]))
    quantiles = [(0.0, draw(value)), (1.0, draw(value))]
    quantiles[1:1] = [
        (q, draw(value)) for q in draw(st.sampled_from([(), (0.5,), (0.9, 0.99), tuple(k / 100 for k in range(1, 64))]))
    ]
    table = draw(st.sampled_from(["A", "B"]))
    dimensions = draw(st.sampled_from([(("TableName", table),), tuple((f"D{i}", table) for i in range(70))]))
    metric = draw(st.sampled_from(["M1", "M2"]))
    name = draw(st.sampled_from([None, None, "", "amazonaws.com/AWS/DynamoDB/M3"]))
    kwargs = {
        "quantiles": quantiles,
        "start": max(0, min(start, 2**64 - 1)),
        "end": max(0, min(end, 2**64 - 1)),
        "total": draw(value),
        "name": name,
        "points": draw(st.sampled_from([1, 1, 3, 0])),
    }
    labels = (("Namespace", "AWS/DynamoDB"), ("MetricName", metric))
    if fmt == otel07.NAME:
        return otel07_message(labels=labels + dimensions, **kwargs)
    return otel10_message(attributes=labels, dimensions=dimensions, **kwargs)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), fmt=st.sampled_from(sorted(FLAVORS)))
def test_fast_equals_careful_on_records_with_any_fault(data: st.DataObject, fmt: str) -> None:
    messages = data.draw(st.lists(faulty_messages(fmt), min_size=1, max_size=5))
    encoded = record(*messages)
    patch = pytest.MonkeyPatch()
    try:
        got = same_as_careful(encoded, fmt, patch)
        expected = outcome(careful, encoded, fmt, patch)
    finally:
        patch.undo()
    # decode_record says what the careful walk says, whichever path took the record.
    assert outcome(lambda: decode_record(encoded, fmt, extra_labels=EXTRA, now_ms=NOW_MS, cache=CACHE)) == expected
    assert got is None or got == expected
