"""Which of the three formats a record is in.

The rule, per record (a Firehose request may mix formats only if several streams share it):

1. Empty: none of them (DecodeError).
2. First byte ``{``: ``json``. The one exception: ``{`` is also the varint 123, the length
   prefix of a 123-byte protobuf message, and such a message starts with the byte 0x0A
   (field 1, resource_metrics). So ``{`` then 0x0A (a newline, which CloudWatch never
   writes there, putting each JSON object on one line) is protobuf if the whole record
   splits exactly into length-prefixed frames, else JSON.
3. Otherwise protobuf: the record must split exactly into length-prefixed frames. Walking
   resource_metrics (1) -> instrumentation_library_metrics / scope_metrics (2) -> metrics (2)
   -> double_summary / summary (11) -> data_points (1), the first datapoint that has field 1
   (0.7 ``labels``) makes it ``opentelemetry0.7``; one with field 7 (1.x ``attributes``)
   makes it ``opentelemetry1.0``. Only field tags are read, and only up to that datapoint.
   A record with no such datapoint (e.g. a valid, empty message) is ``opentelemetry1.0``:
   both protobuf decoders give it the same result.
"""

from __future__ import annotations

from . import jsonfmt, otel07, otel10
from .errors import DecodeError
from .framing import is_delimited, length_delimited_fields, split_frames

_TO_DATAPOINTS = (1, 2, 2, 11, 1)
_LABELS_07, _ATTRIBUTES_10 = 1, 7


def detect_format(data: bytes) -> str:
    """The format of one record: ``opentelemetry0.7``, ``opentelemetry1.0`` or ``json``
    (rule in this module's docstring); DecodeError if it is none of them."""
    if not data:
        raise DecodeError("the record is empty")
    if data[:1] == b"{" and not (data[1:2] == b"\n" and is_delimited(data)):
        return jsonfmt.NAME
    try:
        for message in split_frames(data):
            field = _label_field(message, 0, len(message), 0)
            if field == _LABELS_07:
                return otel07.NAME
            if field == _ATTRIBUTES_10:
                return otel10.NAME
    except DecodeError as exc:
        raise DecodeError(
            f"the record is neither JSON nor length-prefixed OpenTelemetry protobuf: {exc}"
        ) from None
    return otel10.NAME


def _label_field(data: memoryview, start: int, end: int, depth: int) -> int | None:
    """The label field number of the first datapoint below ``data[start:end]`` that has one."""
    if depth == len(_TO_DATAPOINTS):
        for number, _, _ in length_delimited_fields(data, start, end):
            if number in (_LABELS_07, _ATTRIBUTES_10):
                return number
        return None
    wanted = _TO_DATAPOINTS[depth]
    for number, inner_start, inner_end in length_delimited_fields(data, start, end):
        if number == wanted:
            found = _label_field(data, inner_start, inner_end, depth + 1)
            if found is not None:
                return found
    return None
