"""The code under fuzzing, each wrapped to classify one input: accepted, rejected, or a crash.

A crash is any exception other than the one error type the target documents for bad input.
"""

from __future__ import annotations

from receiver import firehose
from receiver.formats import DecodeError, decode_record
from receiver.records import decode_all

ACCEPTED = "accepted"
REJECTED = "rejected"


def run_envelope(body: bytes, request_id: str) -> str:
    """parse_delivery then decode_all, as the handler does; raises anything unexpected.

    A record that does not decode is quarantined by the handler, not refused: the delivery
    is accepted whatever its records hold."""
    try:
        delivery = firehose.parse_delivery(body, request_id)
        decode_all(delivery.records, None, ())
    except firehose.EnvelopeError:
        return REJECTED
    return ACCEPTED


def run_common_attributes(header: str) -> str:
    try:
        firehose.parse_common_attributes(header)
    except firehose.EnvelopeError:
        return REJECTED
    return ACCEPTED


def run_decoder(data: bytes, fmt: str | None) -> str:
    """One record through one decoder (``None``: detect the format first)."""
    try:
        decode_record(data, fmt)
    except DecodeError:
        return REJECTED
    return ACCEPTED
