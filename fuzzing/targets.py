"""The code under fuzzing, each wrapped to classify one input: accepted, rejected, or a crash.

A crash is any exception other than the one error type the target documents for bad input.
"""

from __future__ import annotations

from math import isfinite

from receiver.firehose import envelope
from receiver.firehose.records import decode_all
from receiver.formats import REASONS, DecodeError, SeriesCache, decode_record
from receiver.formats.limits import OLDEST_MS, latest_end_ms, now_ms
from receiver.model import Sample

ACCEPTED = "accepted"
REJECTED = "rejected"


def run_envelope(body: bytes, request_id: str, *, cache: SeriesCache) -> str:
    """parse_delivery then decode_all, as the handler does; raises anything unexpected.

    A record that does not decode is quarantined by the handler, not refused: the delivery
    is accepted whatever its records hold. ``cache`` is kept across inputs, as a receiver
    keeps its own across deliveries, so inputs also meet series that earlier ones left."""
    try:
        delivery = envelope.parse_delivery(body, request_id)
        decode_all(delivery.records, None, (), cache=cache)
    except envelope.EnvelopeError:
        return REJECTED
    return ACCEPTED


def run_common_attributes(header: str) -> str:
    try:
        envelope.parse_common_attributes(header)
    except envelope.EnvelopeError:
        return REJECTED
    return ACCEPTED


def run_decoder(data: bytes, fmt: str | None, *, cache: SeriesCache) -> str:
    """One record through one decoder (``None``: detect the format first), with ``cache``
    kept across inputs as in run_envelope.

    Beyond "no exception but DecodeError", the record contract: a refusal names a reason of
    the closed set, and what is accepted is at least one sample, each one a store can keep
    (finite statistics, a non-empty period within the accepted range). A breach raises
    AssertionError, which the fuzzer counts as a crash.
    """
    now = now_ms()
    try:
        samples = decode_record(data, fmt, cache=cache, now_ms=now)
    except DecodeError as exc:
        if exc.reason not in REASONS:
            raise AssertionError(f"a DecodeError with the unknown reason {exc.reason!r}") from exc
        return REJECTED
    if not samples:
        raise AssertionError("a record was accepted with no sample")
    latest = latest_end_ms(now)
    for sample in samples:
        _check_storable(sample, latest)
    return ACCEPTED


def _check_storable(sample: Sample, latest_ms: int) -> None:
    numbers = (sample.count, sample.sum, sample.min, sample.max, *(value for _, value in sample.stats))
    if not all(isfinite(number) for number in numbers):
        raise AssertionError(f"a sample with a non-finite statistic was accepted: {numbers}")
    if not OLDEST_MS <= sample.start_ms < sample.end_ms <= latest_ms:
        raise AssertionError(f"a sample with the period {sample.start_ms}..{sample.end_ms} ms was accepted")
