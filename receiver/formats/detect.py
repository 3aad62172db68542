"""Which of the three formats a record is in.

The rule, per record (a Firehose request may mix formats only if several streams share it):

1. Empty: none of them (DecodeError ``empty_record``).
2. First byte ``{``: ``json``. The one exception: ``{`` is also the varint 123, the length
   prefix of a 123-byte protobuf message, and such a message starts with the byte 0x0A
   (field 1, resource_metrics). So ``{`` then 0x0A (a newline, which CloudWatch never
   writes there, putting each JSON object on one line) is protobuf if the whole record
   splits exactly into length-prefixed frames, else JSON.
3. Otherwise protobuf: the record must split exactly into length-prefixed frames (else
   ``unknown_format``; an empty frame or too many frames keep their own reason). The first
   datapoint of the first message (first resource_metrics, first scope, first metric, first
   summary datapoint) decides: labels (field 1) make it ``opentelemetry0.7``, attributes
   (field 7, and no labels) make it ``opentelemetry1.0``. A record whose first message has no
   such datapoint, or whose first datapoint has neither, is ``opentelemetry1.0``: both
   protobuf decoders refuse it alike (a message without datapoints, a datapoint without a
   Namespace).

Only the first message is parsed, by upb with the lean summary view, so telling the format
costs the same whatever the rest of the record holds.
"""

from __future__ import annotations

from google.protobuf.message import DecodeError as ProtobufDecodeError

from receiver.proto import summary_view_pb2

from . import jsonfmt, otel07, otel10
from .errors import EMPTY_RECORD, MALFORMED, UNKNOWN_FORMAT, DecodeError
from .framing import is_delimited, split_frames

_parse_request = summary_view_pb2.Request.FromString
_parse_point = summary_view_pb2.DataPoint.FromString
_NEITHER = "the record is neither JSON nor length-prefixed OpenTelemetry protobuf"


def detect_format(data: bytes) -> str:
    """The format of one record: ``opentelemetry0.7``, ``opentelemetry1.0`` or ``json``
    (rule in this module's docstring); DecodeError if it is none of them."""
    if not data:
        raise DecodeError("the record is empty", EMPTY_RECORD)
    if data[:1] == b"{" and not (data[1:2] == b"\n" and is_delimited(data)):
        return jsonfmt.NAME
    try:
        first = split_frames(data)[0]
    except DecodeError as exc:
        if exc.reason != MALFORMED:
            raise  # an empty frame or too many frames: that verdict is more precise
        raise DecodeError(f"{_NEITHER}: {exc}", UNKNOWN_FORMAT) from None
    try:
        point = _first_point(first)
        if point is None:
            return otel10.NAME
        parsed = _parse_point(point)
    except ProtobufDecodeError:
        raise DecodeError(f"{_NEITHER}: its first message is not protobuf", UNKNOWN_FORMAT) from None
    if parsed.labels:
        return otel07.NAME
    return otel10.NAME


def _first_point(message: memoryview) -> bytes | None:
    """The first summary datapoint (serialized) of a message, None if it has none where
    CloudWatch puts it (first resource, scope and metric)."""
    resources = _parse_request(message).resource_metrics
    if not resources or not resources[0].scopes:
        return None
    metrics = resources[0].scopes[0].metrics
    if not metrics or not metrics[0].summary.data_points:
        return None
    point: bytes = metrics[0].summary.data_points[0]
    return point
