"""The compiled decoder (receiver/formats/_decode.pyx) reads exactly what the careful walk
reads, or declines.

Every test decodes a record with the compiled decoder alone and with the careful walk alone
and compares: the same samples (the same interned Series objects), or the same DecodeError
(reason and words); realistic records must also be taken by the compiled decoder, not
declined. Skipped when the extension is not built (``make extension``).
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from receiver.formats import DecodeError, decode_record, encode_records, otel, otel07, otel10
from receiver.formats.limits import latest_end_ms
from receiver.model import Pairs, Sample
from receiver_tools.workload import TableSpec, Workload

from .helpers import CACHE, NOW_MS, START_NS, otel07_message, otel10_message, record
from .realdata import OTEL07, OTEL10, available, corpus_cases
from .test_formats_fastpath import batches, faulty_messages

try:
    _decode = importlib.import_module("receiver.formats._decode")
except ImportError:
    _decode = None

pytestmark = pytest.mark.skipif(_decode is None, reason="the compiled decoder is not built (run `make extension`)")

FLAVORS = {otel07.NAME: otel07.FLAVOR, otel10.NAME: otel10.FLAVOR}
EXTRA: Pairs = (("stream", "S"),)
Outcome = list[Sample] | tuple[str, str] | None


def outcome(work: object) -> Outcome:
    try:
        return work()  # type: ignore[operator]
    except DecodeError as exc:
        return exc.reason, str(exc)


def compiled(data: bytes, fmt: str, extra: Pairs = EXTRA, now: int = NOW_MS) -> Outcome:
    """The compiled decoder alone: samples, None when it declines, or its DecodeError."""
    assert _decode is not None
    return outcome(lambda: _decode.decode(data, extra, FLAVORS[fmt], latest_end_ms(now), cache=CACHE))


def careful(data: bytes, fmt: str, extra: Pairs = EXTRA, now: int = NOW_MS) -> Outcome:
    """The careful walk alone."""
    patch = pytest.MonkeyPatch()
    try:
        patch.setattr(otel, "fast_decode", lambda *args, **kwargs: None)
        return outcome(lambda: otel.decode(data, extra, FLAVORS[fmt], now, cache=CACHE))
    finally:
        patch.undo()


def same_as_careful(data: bytes, fmt: str, extra: Pairs = EXTRA, now: int = NOW_MS) -> Outcome:
    """The compiled outcome (None if declined) after checking the careful walk gives the same."""
    got = compiled(data, fmt, extra, now)
    if got is not None:
        expected = careful(data, fmt, extra, now)
        assert got == expected
        if isinstance(got, list):
            # Not only equal: the very Series objects the careful walk interns.
            assert all(a.series is b.series for a, b in zip(got, expected))  # type: ignore[union-attr]
    return got


def test_the_receiver_uses_the_compiled_decoder_unless_told_not_to() -> None:
    if os.environ.get("RECEIVER_NO_EXTENSIONS") == "1":
        assert otel.DECODER.startswith("python")
    else:
        assert otel.DECODER == "compiled"
        assert otel.fast_decode is _decode.decode  # type: ignore[union-attr]


def test_receiver_no_extensions_1_runs_the_pure_python_decoder() -> None:
    script = (
        "from receiver.formats import fastpath, otel; "
        "assert otel.fast_decode is fastpath.decode, otel.DECODER; print(otel.DECODER)"
    )
    env = {**os.environ, "RECEIVER_NO_EXTENSIONS": "1"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "python (RECEIVER_NO_EXTENSIONS=1)"


@pytest.mark.parametrize("fmt", FLAVORS)
def test_a_workload_minute_takes_the_compiled_path(fmt: str) -> None:
    tables = [
        TableSpec(f"t{i}", indexes=("ByDate",)[: i % 2], provisioned=(5.0, 5.0) if i % 3 else None) for i in range(12)
    ]
    minute = Workload(seed=3, tables=tables).minute(START_NS // 1_000_000)
    decoded: list[Sample] = []
    for data in encode_records(minute, fmt, max_record_bytes=64_000):
        got = same_as_careful(data, fmt)
        assert isinstance(got, list), "a realistic record fell off the compiled path"
        decoded.extend(got)
    assert [s._replace(labels=()) for s in decoded] == minute
    assert any(s.stats for s in decoded) and any(not s.stats for s in decoded)


def test_zero_values_left_off_the_wire_and_several_layouts_in_one_record() -> None:
    data = record(
        otel07_message(total=4.0),
        otel07_message(total=0.0, count=0),
        otel07_message(quantiles=((0.0, 0.0), (1.0, 0.0))),
        otel07_message(quantiles=((0.0, 1.0), (0.5, 0.0), (0.99, 2.0), (1.0, 3.0)), points=3),
    )
    got = same_as_careful(data, otel07.NAME)
    assert isinstance(got, list) and len(got) == 6


def test_attributes_of_their_own_go_into_the_samples_labels() -> None:
    attributes = (("Namespace", "AWS/DynamoDB"), ("MetricName", "ConsumedReadCapacityUnits"), ("team", "blue"))
    data = record(otel10_message(attributes=attributes, dimensions=(("TableName", "T"),), points=2))
    got = same_as_careful(data, otel10.NAME)
    assert isinstance(got, list) and all(("team", "blue") in s.labels for s in got)
    # Found again through the cache, with the labels remembered under the key.
    assert same_as_careful(data, otel10.NAME) == got


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=batches(), fmt=st.sampled_from(sorted(FLAVORS)))
def test_compiled_equals_careful_on_any_batch(batch: list[Sample], fmt: str) -> None:
    for data in encode_records(batch, fmt, max_record_bytes=1_000_000):
        same_as_careful(data, fmt)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), fmt=st.sampled_from(sorted(FLAVORS)))
def test_compiled_equals_careful_on_records_with_any_fault(data: st.DataObject, fmt: str) -> None:
    messages = data.draw(st.lists(faulty_messages(fmt), min_size=1, max_size=5))
    encoded = record(*messages)
    got = same_as_careful(encoded, fmt)
    expected = careful(encoded, fmt)
    assert outcome(lambda: decode_record(encoded, fmt, extra_labels=EXTRA, now_ms=NOW_MS, cache=CACHE)) == expected
    assert got is None or got == expected


def _sound_record(fmt: str) -> bytes:
    if fmt == otel07.NAME:
        return record(otel07_message(points=2), otel07_message(quantiles=((0.0, 1.0), (0.5, 2.0), (1.0, 3.0))))
    return record(otel10_message(points=2), otel10_message(quantiles=((0.0, 1.0), (0.5, 2.0), (1.0, 3.0))))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), fmt=st.sampled_from(sorted(FLAVORS)))
def test_compiled_equals_careful_on_mutated_bytes(data: st.DataObject, fmt: str) -> None:
    """Flipped, inserted, deleted bytes and cut-short records: whatever the compiled decoder
    gives, the careful walk gives too (and decode_record says what the careful walk says)."""
    encoded = bytearray(_sound_record(fmt))
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
    mutated = bytes(encoded)
    same_as_careful(mutated, fmt)
    whole = outcome(lambda: decode_record(mutated, fmt, extra_labels=EXTRA, now_ms=NOW_MS, cache=CACHE))
    assert whole == careful(mutated, fmt)


REAL = [case for case in corpus_cases() if case.fmt in (OTEL07, OTEL10)] if available() else []


@pytest.mark.skipif(not available(), reason="../shared/realdata is not here")
@pytest.mark.parametrize("case", REAL, ids=lambda case: case.name)
def test_the_real_records_decode_alike(case: object) -> None:
    """The corpus' OpenTelemetry records: the compiled decoder takes each sound one and gives
    the careful walk's samples, and what the careful walk refuses it refuses in the same words."""
    import time

    now = int(time.time() * 1000)
    for data, expected in zip(case.records, case.expected):  # type: ignore[attr-defined]
        got = same_as_careful(data, case.fmt, (), now)  # type: ignore[attr-defined]
        if expected.reason is None:
            assert got == list(expected.samples)
        else:
            assert got is None or (isinstance(got, tuple) and got[0] == expected.reason)
