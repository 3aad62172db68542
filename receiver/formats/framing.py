"""Protobuf wire-level helpers: varints, the length-delimited framing, a field walker.

A metric-stream record in an OpenTelemetry format is one or more messages, each preceded
by its length as an unsigned varint ("delimited" framing, as ``writeDelimitedTo`` makes).
"""

from __future__ import annotations

from collections.abc import Iterator

from .errors import EMPTY_FRAME, EMPTY_RECORD, TOO_MUCH_WORK, DecodeError
from .limits import MAX_FRAMES_PER_RECORD

_MAX_VARINT_BYTES = 10


def read_varint(data: bytes | memoryview, pos: int, end: int | None = None) -> tuple[int, int]:
    """The varint at ``pos`` and the position after it (reading stops at ``end``).

    Raises DecodeError if the varint is cut short or longer than 10 bytes.
    """
    end = len(data) if end is None else end
    result = 0
    for shift in range(0, 7 * _MAX_VARINT_BYTES, 7):
        if pos >= end:
            raise DecodeError("the data ends inside a varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
    raise DecodeError("a varint is longer than 10 bytes")


def write_varint(value: int) -> bytes:
    """The unsigned varint encoding of ``value``."""
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def split_frames(data: bytes) -> list[memoryview]:
    """The messages of a delimited record, as views into ``data`` (no copies).

    Raises DecodeError for an empty record, a cut-short varint, a length that runs past the
    record's end (``malformed``), a frame of length 0 (``empty_frame``: no valid message is
    empty, and a record of zero bytes would otherwise be a million frames), and more than
    MAX_FRAMES_PER_RECORD frames (``too_much_work``), each at the first one found.
    """
    if not data:
        raise DecodeError("the record is empty", EMPTY_RECORD)
    view = memoryview(data)
    frames: list[memoryview] = []
    pos = 0
    size = len(data)
    while pos < size:
        try:
            length, start = read_varint(data, pos, size)
        except DecodeError:
            raise DecodeError("the record ends inside a message's length prefix") from None
        if length == 0:
            raise DecodeError(f"the message at byte {pos} has length 0", EMPTY_FRAME)
        pos = start + length
        if pos > size:
            raise DecodeError(f"a message's length prefix says {length} bytes but only {size - start} remain")
        if len(frames) == MAX_FRAMES_PER_RECORD:
            raise DecodeError(f"the record holds more than {MAX_FRAMES_PER_RECORD} messages", TOO_MUCH_WORK)
        frames.append(view[start:pos])
    return frames


def frame(message: bytes) -> bytes:
    """``message`` with its varint length prefix."""
    return write_varint(len(message)) + message


def is_delimited(data: bytes) -> bool:
    """Whether ``data`` splits exactly into length-prefixed frames."""
    try:
        split_frames(data)
    except DecodeError:
        return False
    return True


_FIXED64, _LEN, _FIXED32 = 1, 2, 5


def length_delimited_fields(
    data: bytes | memoryview, start: int = 0, end: int | None = None
) -> Iterator[tuple[int, int, int]]:
    """Walk one message: yields (field number, value start, value end) of each
    length-delimited field (sub-messages, strings, bytes) and skips the others.

    Raises DecodeError on anything that is not protobuf wire format.
    """
    end = len(data) if end is None else end
    pos = start
    while pos < end:
        key, pos = read_varint(data, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise DecodeError("the data is not protobuf (field number 0)")
        if wire == 0:
            _, pos = read_varint(data, pos, end)
            continue
        if wire == _LEN:
            length, pos = read_varint(data, pos, end)
            if pos + length > end:
                raise DecodeError("the data is not protobuf (a field runs past its message)")
            yield number, pos, pos + length
            pos += length
            continue
        if wire == _FIXED64:
            pos += 8
        elif wire == _FIXED32:
            pos += 4
        else:
            raise DecodeError(f"the data is not protobuf (wire type {wire})")
        if pos > end:
            raise DecodeError("the data is not protobuf (a number runs past its message)")
