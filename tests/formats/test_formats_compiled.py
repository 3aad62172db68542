"""The compiled decoder (receiver/formats/_decode.pyx) against the reference, the careful walk.

Every input is decoded three ways: by the compiled decoder alone (its samples, None when it
declines, or the DecodeError it raises), by the reference alone, and as the receiver decodes
(``otel.decode``: the compiled decoder, the careful walk taking what it declines). The
receiver must give exactly what the reference gives: equal samples (down to the sign of a
zero) holding the very same interned Series objects, or a DecodeError with the same reason
and words. So must the compiled decoder whenever it does not decline, both on a series it
meets for the first time and on one it knows. Realistic records must be taken by the
compiled decoder, not declined. Skipped where the extension is not built or is switched off.

The same holds for the Batch ingest decodes into (receiver/batch.py): the compiled decoder's
columns (``otel.compiled_fill``) must equal the reference's samples filed by the converter
(``Batch.add_samples``), number for number and bit for bit, with the same Series objects;
and ``otel.decode_into`` on a batch that already holds a record adds exactly that, or leaves
the batch as it was when it raises.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from receiver.batch import Batch
from receiver.formats import DecodeError, SeriesCache, encode_records, otel, otel07, otel10, walk
from receiver.formats.framing import frame
from receiver.formats.limits import latest_end_ms
from receiver.model import Pairs, Sample
from receiver_tools.workload import TableSpec, Workload

from . import wire
from .helpers import END_NS, NOW_MS, START_NS, otel07_message, otel10_message, record
from .realdata import OTEL07, OTEL10, available, corpus_cases
from .strategies import batches, faulty_messages

COMPILED = otel.compiled_decode
COMPILED_FILL = otel.compiled_fill
pytestmark = pytest.mark.skipif(COMPILED is None, reason=f"the compiled decoder does not run here: {otel.DECODER}")

FLAVORS = {otel07.NAME: otel07.FLAVOR, otel10.NAME: otel10.FLAVOR}
EXTRA: Pairs = (("stream", "S"),)
EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "formats"
Outcome = list[Sample] | tuple[str, str] | None
"""What a decode gave: samples, None (declined), or (reason, words) of its DecodeError."""


def outcome(work: Callable[[], list[Sample] | None]) -> Outcome:
    try:
        return work()
    except DecodeError as exc:
        return exc.reason, str(exc)


def compiled(data: bytes, fmt: str, cache: SeriesCache, extra: Pairs = EXTRA, now: int = NOW_MS) -> Outcome:
    assert COMPILED is not None
    return outcome(lambda: COMPILED(data, extra, FLAVORS[fmt], latest_end_ms(now), cache=cache))


def reference(data: bytes, fmt: str, cache: SeriesCache, extra: Pairs = EXTRA, now: int = NOW_MS) -> Outcome:
    return outcome(lambda: walk.walk(data, extra, FLAVORS[fmt], latest_end_ms(now), cache))


def same(got: Outcome, expected: Outcome) -> bool:
    """Equal outcomes, and samples alike down to the sign of a zero and the Series object."""
    if got != expected or repr(got) != repr(expected):
        return False
    if isinstance(got, list) and isinstance(expected, list):
        return all(a.series is b.series for a, b in zip(got, expected))
    return True


BatchOutcome = Batch | tuple[str, str] | None
"""What a decode into a batch gave: the batch, None (declined), or (reason, words) of its DecodeError."""


def compiled_batch(data: bytes, fmt: str, cache: SeriesCache, extra: Pairs = EXTRA, now: int = NOW_MS) -> BatchOutcome:
    assert COMPILED_FILL is not None
    batch = Batch()
    try:
        taken = COMPILED_FILL(batch, data, extra, FLAVORS[fmt], latest_end_ms(now), cache=cache)
    except DecodeError as exc:
        return exc.reason, str(exc)
    return batch if taken else None


def same_batch(got: BatchOutcome, expected: BatchOutcome) -> bool:
    """Equal batches (numbers bit for bit) holding the very same Series objects, or equal errors."""
    if got != expected:
        return False
    if isinstance(got, Batch) and isinstance(expected, Batch):
        return all(
            a is b for mine, theirs in zip(got.groups, expected.groups) for a, b in zip(mine.series, theirs.series)
        )
    return True


def batch_of(expected: Outcome) -> BatchOutcome:
    """The reference's outcome as a batch: its samples filed by the one converter."""
    return Batch.of(expected) if isinstance(expected, list) else expected


def agree(data: bytes, fmt: str, extra: Pairs = EXTRA, now: int = NOW_MS) -> Outcome:
    """Decode ``data`` every way, into samples and into batches, and check each agrees with
    the reference; returns what the compiled decoder alone gave (None if it declined)."""
    cache = SeriesCache()
    expected = reference(data, fmt, cache, extra, now)
    first = compiled(data, fmt, cache, extra, now)  # every series new to the compiled decoder's table
    again = compiled(data, fmt, cache, extra, now)  # every series known
    for got in (first, again):
        assert got is None or same(got, expected), f"compiled {got!r}\nreference {expected!r}"
    assert (first is None) == (again is None)
    receiver = outcome(lambda: otel.decode(data, extra, FLAVORS[fmt], now, cache=cache))
    assert same(receiver, expected), f"receiver {receiver!r}\nreference {expected!r}"
    expected_batch = batch_of(expected)
    fresh = compiled_batch(data, fmt, SeriesCache(), extra, now)  # another cache: equal Series, not the same
    assert (fresh is None) == (first is None)
    assert fresh is None or fresh == expected_batch, f"compiled {fresh!r}\nreference {expected_batch!r}"
    shared = compiled_batch(data, fmt, cache, extra, now)
    assert (shared is None) == (first is None)
    assert shared is None or same_batch(shared, expected_batch), f"compiled {shared!r}\nreference {expected_batch!r}"
    assert_decode_into_adds_or_leaves(data, fmt, extra, now, cache, expected)
    return first


_HELD = record(otel07_message(labels=(("Namespace", "N"), ("MetricName", "Held"), ("TableName", "T"))))
"""A sound record a batch holds before the record under test is decoded into it."""


def assert_decode_into_adds_or_leaves(
    data: bytes, fmt: str, extra: Pairs, now: int, cache: SeriesCache, expected: Outcome
) -> None:
    """``otel.decode_into`` on a batch holding another record: the reference's samples added
    to it, or the batch left as it was with the reference's error."""
    batch = Batch()
    otel.decode_into(batch, _HELD, extra, otel07.FLAVOR, now, cache=cache)
    held = batch.samples()
    got = outcome(lambda: otel.decode_into(batch, data, extra, FLAVORS[fmt], now, cache=cache))
    if isinstance(expected, list):
        assert got is None
        assert batch == Batch.of(held + expected)
    else:
        assert got == expected
        assert batch == Batch.of(held)


def test_the_receiver_runs_the_compiled_decoder_unless_told_not_to() -> None:
    assert otel.DECODER == "compiled"
    assert otel.compiled_decode is not None and otel.compiled_decode.__module__ == "receiver.formats._decode"


def test_receiver_no_extensions_1_runs_the_reference() -> None:
    script = "from receiver.formats import otel; assert otel.compiled_decode is None; print(otel.DECODER)"
    env = {**os.environ, "RECEIVER_NO_EXTENSIONS": "1"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "python (RECEIVER_NO_EXTENSIONS=1)"


@pytest.mark.parametrize("fmt", FLAVORS)
def test_a_workload_minute_is_taken_by_the_compiled_decoder(fmt: str) -> None:
    tables = [
        TableSpec(f"t{i}", indexes=("ByDate",)[: i % 2], provisioned=(5.0, 5.0) if i % 3 else None) for i in range(12)
    ]
    minute = Workload(seed=3, tables=tables).minute(START_NS // 1_000_000)
    decoded: list[Sample] = []
    for data in encode_records(minute, fmt, max_record_bytes=64_000):
        got = agree(data, fmt)
        assert isinstance(got, list), "a realistic record fell off the compiled decoder"
        decoded.extend(got)
    assert [s._replace(labels=()) for s in decoded] == minute
    assert any(s.stats for s in decoded) and any(not s.stats for s in decoded)


def test_zero_values_left_off_the_wire_read_as_zero() -> None:
    # The generated classes leave out a field whose value is zero: each of these datapoints
    # has other fields on the wire, and order is kept.
    messages = [
        otel07_message(total=4.0),
        otel07_message(total=0.0),
        otel07_message(quantiles=((0.0, 0.0), (1.0, 3.0))),
        otel07_message(quantiles=((0.0, 0.0), (1.0, 0.0)), total=0.0, count=0),
        otel07_message(quantiles=((0.0, 1.0), (0.5, 0.0), (1.0, 3.0))),
        otel07_message(total=-0.0),
    ]
    got = agree(record(*messages), otel07.NAME)
    assert isinstance(got, list)
    assert [(s.sum, s.min, s.max, s.count, s.stats) for s in got] == [
        (4.0, 1.0, 3.0, 2.0, ()),
        (0.0, 1.0, 3.0, 2.0, ()),
        (4.0, 0.0, 3.0, 2.0, ()),
        (0.0, 0.0, 0.0, 0.0, ()),
        (4.0, 1.0, 3.0, 2.0, (("p50", 0.0),)),
        (-0.0, 1.0, 3.0, 2.0, ()),
    ]
    assert math.copysign(1.0, got[-1].sum) == -1.0


def test_several_minutes_and_namespaces_in_one_record() -> None:
    minute = 60_000_000_000
    messages07 = [
        otel07_message(
            start=START_NS + k * minute,
            end=END_NS + k * minute,
            labels=(("Namespace", f"N{k % 2}"), ("MetricName", "M"), ("TableName", "T")),
        )
        for k in range(4)
    ]
    got = agree(record(*messages07), otel07.NAME)
    assert isinstance(got, list) and [s.start_ms for s in got] == [(START_NS + k * minute) // 10**6 for k in range(4)]
    messages10 = [otel10_message(attributes=(("Namespace", f"N{k}"), ("MetricName", "M"))) for k in range(3)]
    got = agree(record(*messages10), otel10.NAME)
    assert isinstance(got, list) and [s.series.namespace for s in got] == ["N0", "N1", "N2"]


def test_many_points_of_one_metric_and_another_unit() -> None:
    got = agree(record(otel07_message(points=500), otel07_message(points=3, unit="ms")), otel07.NAME)
    assert isinstance(got, list) and len(got) == 503
    assert {s.series.unit for s in got} == {"Count", "Milliseconds"}


def test_attributes_of_their_own_go_into_the_samples_labels() -> None:
    attributes = (("Namespace", "AWS/DynamoDB"), ("MetricName", "ConsumedReadCapacityUnits"), ("team", "blue"))
    data = record(otel10_message(attributes=attributes, dimensions=(("TableName", "T"),), points=2))
    got = agree(data, otel10.NAME)
    assert isinstance(got, list) and all(("team", "blue") in s.labels for s in got)
    assert all(("stream", "S") in s.labels for s in got)


def test_one_series_under_two_resources_has_each_resources_labels() -> None:
    labels = (("Namespace", "N"), ("MetricName", "M"), ("TableName", "T"))
    resource = (("cloud.account.id", "123456789012"), ("cloud.region", "us-east-1"))
    first = otel07_message(labels=labels, resource=(*resource, ("team", "a")))
    second = otel07_message(labels=labels, resource=(*resource, ("team", "b")))
    got = agree(record(first, second, first), otel07.NAME)
    assert isinstance(got, list) and got[0].series is got[1].series
    assert [dict(s.labels)["team"] for s in got] == ["a", "b", "a"]


class Written:
    """A message written byte for byte (``record`` takes it as a generated one)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def SerializeToString(self) -> bytes:
        return self.data


def _two_resources() -> object:
    # A second, empty, resource field after the first: the parser merges the two.
    resource_metrics = otel07_message().resource_metrics[0].SerializeToString() + b"\x0a\x00"
    return Written(wire.length_field(1, resource_metrics))


def _unknown_point_field() -> object:
    message = otel07_message()
    point = message.resource_metrics[0].instrumentation_library_metrics[0].metrics[0].double_summary.data_points[0]
    point.MergeFromString(b"\x78\x05")  # field 15, varint 5: kept as an unknown field
    return message


def _flags() -> object:
    message = otel10_message()
    message.resource_metrics[0].scope_metrics[0].metrics[0].summary.data_points[0].flags = 1
    return message


@pytest.mark.parametrize(
    "message, fmt, outcome_kind",
    [
        (otel07_message(quantiles=((0.0, 1.0), (0.0, 2.0), (1.0, 3.0))), OTEL07, "samples"),  # the last minimum counts
        (otel07_message(quantiles=((1.0, 3.0), (0.99, 2.0), (0.0, 1.0))), OTEL07, "samples"),  # any order
        (otel07_message(quantiles=((0.0, 1.0), (0.9, 2.0), (0.9, 2.5), (1.0, 3.0))), OTEL07, "error"),
        (otel07_message(quantiles=((0.0, 1.0),)), OTEL07, "error"),
        (otel07_message(quantiles=((0.0, 1.0), (1.5, 2.0), (1.0, 3.0))), OTEL07, "error"),
        (otel07_message(quantiles=((0.0, 1.0), (math.nan, 2.0), (1.0, 3.0))), OTEL07, "error"),
        (otel07_message(labels=(("MetricName", "M"),)), OTEL07, "error"),
        (
            otel07_message(
                labels=(("Namespace", "AWS/DynamoDB"), ("MetricName", "Other")),
                name="amazonaws.com/AWS/DynamoDB/ConsumedReadCapacityUnits",
            ),
            OTEL07,
            "error",
        ),
        (
            otel07_message(labels=(("Namespace", "N"), ("MetricName", "M"), *((f"d{i}", "v") for i in range(70)))),
            OTEL07,
            "error",
        ),
        (otel07_message(quantiles=((0.0, 1.0), *((k / 100, 2.0) for k in range(1, 70)), (1.0, 3.0))), OTEL07, "error"),
        (otel07_message(resource=()), OTEL07, "declined"),
        (otel07_message(points=0), OTEL07, "declined"),
        (_two_resources(), OTEL07, "declined"),
        (_unknown_point_field(), OTEL07, "declined"),
        (_flags(), OTEL10, "declined"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_what_the_compiled_decoder_takes_judges_or_declines(message: object, fmt: str, outcome_kind: str) -> None:
    sound = otel07_message() if fmt == OTEL07 else otel10_message()
    got = agree(record(sound, message), fmt)
    kind = "declined" if got is None else "samples" if isinstance(got, list) else "error"
    assert kind == outcome_kind


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
def test_a_bad_value_is_judged_in_the_references_words(message: object, reason: str) -> None:
    # Sound apart from one value: the compiled decoder has the reference judge that one
    # datapoint rather than read the whole record again.
    data = record(otel07_message(points=30), otel07_message(points=3), message, otel07_message(total=math.nan))
    got = agree(data, otel07.NAME)
    assert isinstance(got, tuple) and got[0] == reason


def test_the_first_fault_in_record_order_is_the_one_reported() -> None:
    late = otel07_message(start=60_000_000_000, end=120_000_000_000)  # 1970: out of range
    nan_min = otel07_message(quantiles=((0.0, math.nan), (0.5, 2.0), (1.0, 3.0)))
    for messages, reason in (([nan_min, late], "non_finite"), ([late, nan_min], "timestamp_out_of_range")):
        got = agree(record(otel07_message(points=5), *messages), otel07.NAME)
        assert isinstance(got, tuple) and got[0] == reason


def test_a_fault_before_a_part_the_compiled_decoder_declines_is_left_to_the_reference() -> None:
    data = record(otel07_message(total=math.nan), _unknown_point_field())
    assert agree(data, otel07.NAME) is None
    assert reference(data, otel07.NAME, SeriesCache())[0] == "non_finite"  # type: ignore[index]


def test_a_fault_then_a_metric_name_that_is_not_utf8_in_one_message_is_the_parsers_error() -> None:
    # The reference parses a whole message before it judges a datapoint, so the broken name
    # later in the message is what it reports, not the bad value before it.
    message = otel07_message(total=math.nan)
    metrics = message.resource_metrics[0].instrumentation_library_metrics[0].metrics
    metrics.add().CopyFrom(otel07_message().resource_metrics[0].instrumentation_library_metrics[0].metrics[0])
    serialized = message.SerializeToString().replace(
        b"amazonaws.com/AWS/DynamoDB/Con", b"amazonaws.com/AWS/DynamoDB/\xffon"
    )
    got = agree(frame(serialized), otel07.NAME)
    expected = reference(frame(serialized), otel07.NAME, SeriesCache())
    assert isinstance(expected, tuple) and expected[0] == "malformed" and "not a valid" in expected[1]
    assert got is None or got == expected


def test_a_latest_time_past_what_64_bits_hold_is_left_to_the_reference() -> None:
    now = 2**64 // 1_000_000
    assert agree(record(otel07_message()), otel07.NAME, now=now) is None


@pytest.mark.parametrize(
    "data",
    [
        wire.varint(5, padding=5) + b"\x0a\x03abc",  # a frame length written in ten bytes: valid
        b"\x85\x80\x80\x80\x80\x80\x80\x80\x80\x80\x00" + b"x" * 5,  # eleven bytes: not a varint
        b"\xff" * 12,
        b"\x00",
        b"\x02\x0a\x00",  # a resource_metrics of zero length
        frame(b"\x0a\x02\x12\x00"),  # a scope of zero length
    ],
)
def test_odd_frames_and_varints(data: bytes) -> None:
    for fmt in FLAVORS:
        agree(data, fmt)


def test_threads_sharing_a_cache_that_keeps_starting_over_decode_as_the_reference() -> None:
    # Three series and a cache for two: every decode starts the cache over, while another
    # thread is finding series in it.
    records = [
        record(
            *(
                otel07_message(labels=(("Namespace", "N"), ("MetricName", "M"), ("TableName", f"T{(i + k) % 3}")))
                for k in range(3)
            )
        )
        for i in range(3)
    ]
    expected = [reference(data, otel07.NAME, SeriesCache()) for data in records]
    cache = SeriesCache(limit=2)
    failures: list[str] = []

    expected_batches = [batch_of(one) for one in expected]

    def work(offset: int) -> None:
        for n in range(300):
            index = (n + offset) % 3
            got = compiled(records[index], otel07.NAME, cache)
            if got is not None and got != expected[index]:
                failures.append(f"record {index}: {got!r}")
            got_batch = compiled_batch(records[index], otel07.NAME, cache)
            if got_batch is not None and got_batch != expected_batches[index]:
                failures.append(f"record {index} into a batch: {got_batch!r}")

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=work, args=(offset,)) for offset in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(switch)
    assert not failures


def examples(count: int) -> settings:
    return settings(
        max_examples=count, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
    )


@examples(150)
@given(batch=batches(), fmt=st.sampled_from(sorted(FLAVORS)))
def test_any_batch_the_encoder_writes(batch: list[Sample], fmt: str) -> None:
    for data in encode_records(batch, fmt, max_record_bytes=1_000_000):
        agree(data, fmt)


@examples(300)
@given(data=st.data(), fmt=st.sampled_from(sorted(FLAVORS)))
def test_records_with_any_fault(data: st.DataObject, fmt: str) -> None:
    agree(record(*data.draw(st.lists(faulty_messages(fmt), min_size=1, max_size=5))), fmt)


@examples(150)
@given(data=st.data(), fmt=st.sampled_from(sorted(FLAVORS)))
def test_records_written_as_the_wire_format_allows(data: st.DataObject, fmt: str) -> None:
    """Fields in any order, unknown fields of every wire type, over-long varints, repeated
    singular fields, split submessages, left-out fields, strings that are not UTF-8."""
    agree(data.draw(wire.records(fmt)), fmt)


def _sound_record(fmt: str) -> bytes:
    if fmt == otel07.NAME:
        return record(otel07_message(points=2), otel07_message(quantiles=((0.0, 1.0), (0.5, 2.0), (1.0, 3.0))))
    return record(otel10_message(points=2), otel10_message(quantiles=((0.0, 1.0), (0.5, 2.0), (1.0, 3.0))))


def mutated(data: st.DataObject, base: bytes) -> bytes:
    """``base`` with up to four bytes flipped, inserted or deleted, or cut short."""
    encoded = bytearray(base)
    for _ in range(data.draw(st.integers(1, 4))):
        kind = data.draw(st.sampled_from(["flip", "insert", "delete", "cut"]))
        at = data.draw(st.integers(0, max(0, len(encoded) - 1)))
        if kind == "flip" and encoded:
            encoded[at] = data.draw(st.integers(0, 255))
        elif kind == "insert":
            encoded[at:at] = bytes([data.draw(st.integers(0, 255))])
        elif kind == "delete" and encoded:
            del encoded[at]
        else:
            del encoded[at:]
    return bytes(encoded)


@examples(200)
@given(data=st.data(), fmt=st.sampled_from(sorted(FLAVORS)))
def test_mutated_and_truncated_records(data: st.DataObject, fmt: str) -> None:
    base = _sound_record(fmt) if data.draw(st.booleans()) else data.draw(wire.records(fmt))
    agree(mutated(data, base), fmt)


def test_the_aws_documentation_examples() -> None:
    now = int(time.time() * 1000)
    for fmt, name in ((OTEL07, "aws-otel07-example.bin"), (OTEL10, "aws-otel10-example.bin")):
        data = (EXAMPLES / name).read_bytes()
        got = agree(data, fmt, (), now)
        assert got is not None, name


REAL = [case for case in corpus_cases() if case.fmt in (OTEL07, OTEL10)] if available() else []
REAL_RECORDS = [(case.fmt, data) for case in REAL for data in case.records]


@pytest.mark.skipif(not available(), reason="../shared/realdata is not here")
@pytest.mark.parametrize("case", REAL, ids=lambda case: case.name)
def test_the_real_records(case: object) -> None:
    """The corpus' OpenTelemetry records: the compiled decoder takes each sound one and gives
    the reference's samples, and refuses what the reference refuses in the same words."""
    now = int(time.time() * 1000)
    for data, expected in zip(case.records, case.expected):  # type: ignore[attr-defined]
        got = agree(data, case.fmt, (), now)  # type: ignore[attr-defined]
        if expected.reason is None:
            assert got == list(expected.samples)
        else:
            assert got is None or (isinstance(got, tuple) and got[0] == expected.reason)


@pytest.mark.skipif(not available(), reason="../shared/realdata is not here")
@examples(300)
@given(data=st.data())
def test_mutated_real_records(data: st.DataObject) -> None:
    fmt, base = data.draw(st.sampled_from(REAL_RECORDS))
    agree(mutated(data, base), fmt, (), int(time.time() * 1000))
