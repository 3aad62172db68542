"""The Firehose HTTP endpoint envelope: limits, request parsing and response bodies.

Follows AWS's "HTTP endpoint delivery request and response specifications": the body is
``{"requestId", "timestamp", "records": [{"data": base64}]}`` and every answer is
``{"requestId", "timestamp"}`` plus ``errorMessage`` on failure.
"""

from __future__ import annotations

import binascii
import re
import time
from dataclasses import dataclass

import orjson
import pybase64

from receiver.model import Pairs

REQUEST_ID_HEADER = "X-Amz-Firehose-Request-Id"
ACCESS_KEY_HEADER = "X-Amz-Firehose-Access-Key"
COMMON_ATTRIBUTES_HEADER = "X-Amz-Firehose-Common-Attributes"
SOURCE_ARN_HEADER = "X-Amz-Firehose-Source-Arn"
PROTOCOL_VERSION_HEADER = "X-Amz-Firehose-Protocol-Version"

MAX_RECORDS = 10_000
MAX_RECORD_BYTES = 1_024_000
"""Firehose's largest record, decoded."""
MAX_BUFFER_BYTES = 64 * 1024 * 1024
"""Firehose's largest buffering size for an HTTP endpoint."""
_PER_RECORD_JSON = len('{"data":""},')
MAX_BODY_BYTES = (MAX_BUFFER_BYTES * 4 + 2) // 3 + 4 * MAX_RECORDS + MAX_RECORDS * _PER_RECORD_JSON + 4096
"""The largest envelope Firehose can send: 64 MiB in base64 (padding included) and the JSON
around 10,000 records. Past it the body cannot be a Firehose delivery."""
_MAX_BASE64_CHARS = 4 * ((MAX_RECORD_BYTES + 2) // 3)


class EnvelopeError(ValueError):
    """A malformed delivery; ``str(e)`` is the errorMessage sent back with the 400."""


@dataclass(frozen=True, slots=True)
class Delivery:
    request_id: str
    timestamp_ms: float
    records: list[bytes]


def parse_delivery(body: bytes | bytearray, header_request_id: str) -> Delivery:
    """Parse and check a request body; raise EnvelopeError naming what is wrong.

    The body as Firehose writes it is read by a scanner that never holds the records'
    base64 text as Python strings (a 64 MiB body would need as much again), and that
    empties a bytearray body as it decodes it; anything else goes through the JSON parser,
    which also words the errors.
    """
    delivery = _scan(body, header_request_id)
    if delivery is not None:
        return delivery
    try:
        envelope = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise EnvelopeError(f"the body is not valid JSON ({exc.args[0]})") from None
    if not isinstance(envelope, dict):
        raise EnvelopeError("the body must be a JSON object with requestId, timestamp and records")

    request_id = envelope.get("requestId")
    if not isinstance(request_id, str):
        raise EnvelopeError("the body's requestId is missing or not a string")
    if request_id != header_request_id:
        raise EnvelopeError(f"the body's requestId does not match the {REQUEST_ID_HEADER} header")
    timestamp = envelope.get("timestamp")
    if isinstance(timestamp, bool) or not isinstance(timestamp, (int, float)):
        raise EnvelopeError("the body's timestamp is missing or not a number")

    records = envelope.get("records")
    if not isinstance(records, list):
        raise EnvelopeError("the body's records is missing or not a list")
    if len(records) > MAX_RECORDS:
        raise EnvelopeError(f"the body has {len(records)} records; Firehose sends at most {MAX_RECORDS}")
    return Delivery(request_id, timestamp, [_record_data(i, r) for i, r in enumerate(records)])


_WS = rb"[ \t\n\r]*"
_HEAD = re.compile(
    _WS
    + rb"\{"
    + _WS
    + rb'"requestId"'
    + _WS
    + rb":"
    + _WS
    + rb'"([^"\\\x00-\x1f]*)"'
    + _WS
    + rb","
    + _WS
    + rb'"timestamp"'
    + _WS
    + rb":"
    + _WS
    + rb"(-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)"
    + _WS
    + rb","
    + _WS
    + rb'"records"'
    + _WS
    + rb":"
    + _WS
    + rb"\["
    + _WS
)
_RECORD_OPEN = re.compile(rb"\{" + _WS + rb'"data"' + _WS + rb":" + _WS + rb'"')
_RECORD_CLOSE = re.compile(_WS + rb"\}" + _WS + rb"(?:(,)" + _WS + rb"|\])")
_TAIL = re.compile(_WS + rb"\}" + _WS)
_EMPTY_LIST_TAIL = re.compile(rb"\]" + _WS + rb"\}" + _WS)


def _scan(body: bytes | bytearray, header_request_id: str) -> Delivery | None:
    """The delivery of a body shaped exactly as Firehose writes it, or None.

    Accepts only ``{"requestId": s, "timestamp": n, "records": [{"data": s}, ...]}`` with
    those keys in that order, strings without escapes and data that is strict base64: then
    the JSON value of each string is its raw bytes, and the result equals the parser's.
    Returns None on anything else, errors included, for parse_delivery's careful path.
    """
    head = _HEAD.match(body)
    if head is None:
        return None
    try:
        request_id = head.group(1).decode("utf-8")
        timestamp = orjson.loads(head.group(2))
    except (UnicodeDecodeError, orjson.JSONDecodeError):
        return None
    if request_id != header_request_id:
        return None
    spans: list[tuple[int, int, bool]] = []  # (start, end, canonical) of each record's base64
    pos = head.end()
    if _EMPTY_LIST_TAIL.fullmatch(body, pos):
        return Delivery(request_id, timestamp, [])
    size = len(body)
    # The records' text is read through a view of the body, not copied out of it; the view
    # is released before _decode_spans shrinks the body (a bytearray cannot be resized
    # while a view of it exists).
    with memoryview(body) as view:
        while True:
            opened = _RECORD_OPEN.match(body, pos)
            if opened is None:
                return None
            start = opened.end()
            end = body.find(b'"', start)
            if end < 0 or end - start > _MAX_BASE64_CHARS:
                return None
            read = _read_base64(view[start:end])
            if read is None:
                return None  # a JSON escape, or not base64: the careful path decides which
            data, canonical = read
            if not data or len(data) > MAX_RECORD_BYTES or len(spans) == MAX_RECORDS:
                return None
            del data  # decoded again below, where the body can shrink as records are taken
            spans.append((start, end, canonical))
            closed = _RECORD_CLOSE.match(body, end + 1)
            if closed is None:
                return None
            pos = closed.end()
            if closed.group(1) is None:
                break
    if pos > size or not _TAIL.fullmatch(body, pos):
        return None
    return Delivery(request_id, timestamp, _decode_spans(body, spans))


def _decode_spans(body: bytes | bytearray, spans: list[tuple[int, int, bool]]) -> list[bytes]:
    """The checked records' data. A bytearray body is decoded from its end and cut short
    behind each record, so the body shrinks while the records grow (CPython gives a
    bytearray's memory back once less than half of it is in use): a 64 MiB delivery is
    never held as body and records both in full. (Checking, above, decoded each record
    once already and dropped it: pybase64 takes ~0.1 ms per MiB. It also learned which
    decoder reads each record, so this pass needs no canonical check.)"""
    records: list[bytes] = [b""] * len(spans)
    cut = body if isinstance(body, bytearray) else None
    for index in range(len(spans) - 1, -1, -1):
        start, end, canonical = spans[index]
        with memoryview(body) as view:
            text = view[start:end]
            records[index] = (
                pybase64.b64decode(text, validate=True) if canonical else binascii.a2b_base64(text, strict_mode=True)
            )
            text.release()
        if cut is not None:
            del cut[start:]
    return records


def _read_base64(text: bytes | bytearray | memoryview) -> tuple[bytes, bool] | None:
    """(data, canonical): canonical base64 decoded with pybase64's SIMD code (some 40 times
    binascii's speed here), else binascii's strict decoder; None if that refuses it too.

    A canonical input is what encoding the result gives again: then every strict decoder
    reads it the same, and whatever is not canonical gets binascii's own judgement.
    """
    try:
        data = pybase64.b64decode(text, validate=True)
        if _encodes_back(data, text):
            return data, True
    except (binascii.Error, ValueError):
        pass
    try:
        return binascii.a2b_base64(text, strict_mode=True), False
    except (binascii.Error, ValueError):
        return None


def _encodes_back(data: bytes, text: bytes | bytearray | memoryview) -> bool:
    """Whether ``text``, which pybase64 decoded strictly into ``data``, is what encoding
    ``data`` gives. Strict decoding took only whole groups of four characters with padding
    at the end alone, and every group but the last maps three bytes to four characters and
    back one to one; so only the last group, where a padded group's unused bits may be set,
    can differ. Encoding that group alone decides, without encoding a record again."""
    if not data:
        return not text
    last_group_bytes = len(data) % 3 or 3
    return pybase64.b64encode(data[-last_group_bytes:]) == text[-4:]


def _record_data(index: int, record: object) -> bytes:
    if not isinstance(record, dict):
        raise EnvelopeError(f"record {index}: must be an object with a data field")
    data = record.get("data")
    if not isinstance(data, str):
        raise EnvelopeError(f"record {index}: data is missing or not a string")
    if len(data) > _MAX_BASE64_CHARS:
        raise EnvelopeError(f"record {index}: larger than Firehose's {MAX_RECORD_BYTES} bytes per record")
    try:
        decoded = binascii.a2b_base64(data, strict_mode=True)
    except (binascii.Error, ValueError):
        raise EnvelopeError(f"record {index}: data is not valid base64") from None
    if not decoded:
        raise EnvelopeError(f"record {index}: the record is empty")
    if len(decoded) > MAX_RECORD_BYTES:
        raise EnvelopeError(f"record {index}: larger than Firehose's {MAX_RECORD_BYTES} bytes per record")
    return decoded


def parse_common_attributes(header: str | None) -> Pairs:
    """The X-Amz-Firehose-Common-Attributes header as sorted label pairs."""
    if header is None:
        return ()
    try:
        parsed = orjson.loads(header)
    except orjson.JSONDecodeError:
        raise EnvelopeError(f"the {COMMON_ATTRIBUTES_HEADER} header is not valid JSON") from None
    attributes = parsed.get("commonAttributes") if isinstance(parsed, dict) else None
    if not isinstance(attributes, dict) or not all(isinstance(value, str) for value in attributes.values()):
        raise EnvelopeError(
            f'the {COMMON_ATTRIBUTES_HEADER} header must be {{"commonAttributes": '
            '{"name": "value", ...}} with string values'
        )
    return tuple(sorted(attributes.items()))


def response_body(request_id: str, error: str | None = None) -> bytes:
    """The JSON answer Firehose expects; errorMessage only on failure."""
    answer: dict[str, object] = {"requestId": request_id, "timestamp": int(time.time() * 1000)}
    if error is not None:
        answer["errorMessage"] = error
    return orjson.dumps(answer)
