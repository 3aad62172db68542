"""Field-level mutations of OpenTelemetry records: each framed message is parsed, one to
three of its fields (anywhere in the tree) get odd values or are cleared, and it is framed
again. Byte mutations mostly break the framing; these reach the decoders' value checks."""

from __future__ import annotations

import random
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as otel10_service

from receiver.formats.framing import split_frames, write_varint
from receiver.proto.otel07 import metrics_service_pb2 as otel07_service

MESSAGE_TYPES: dict[str, Any] = {
    "opentelemetry0.7": otel07_service.ExportMetricsServiceRequest,
    "opentelemetry1.0": otel10_service.ExportMetricsServiceRequest,
}
_ODD_FLOATS = (float("nan"), float("inf"), float("-inf"), -0.0, -5.0, 1e308, 0.0)
_ODD_STRINGS = ("", "\x00", "a" * 300, "ü", "{", "TableName")
_SMALL_INTS = (0, 1, 2**31 - 1)
_UNSIGNED_INTS = (0, 1, 2**32 - 1)
_LONG_INTS = (0, -1, 2**63 - 1, -(2**63))
_ULONG_INTS = (0, 1, 2**64 - 1)
_INT32 = {FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SFIXED32}
_UINT32 = {FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32}
_UINT64 = {FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64}


def _fields(message: Any, out: list[tuple[Any, Any]]) -> None:
    for field, value in message.ListFields():
        out.append((message, field))
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            for child in value if field.is_repeated else (value,):
                _fields(child, out)


def _odd_value(field: Any, rng: random.Random) -> object:
    kind = field.type
    if kind == FieldDescriptor.TYPE_STRING:
        return rng.choice(_ODD_STRINGS)
    if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return rng.choice(_ODD_FLOATS)
    if kind == FieldDescriptor.TYPE_BOOL:
        return rng.random() < 0.5
    if kind == FieldDescriptor.TYPE_ENUM:
        return rng.choice((0, 1, 2, 99))
    if kind == FieldDescriptor.TYPE_BYTES:
        return b"\xff\x00"
    if kind in _INT32:
        return rng.choice(_SMALL_INTS)
    if kind in _UINT32:
        return rng.choice(_UNSIGNED_INTS)
    if kind in _UINT64:
        return rng.choice(_ULONG_INTS)
    return rng.choice(_LONG_INTS)


def mutate_message(message: Any, rng: random.Random) -> None:
    found: list[tuple[Any, Any]] = []
    _fields(message, found)
    if not found:
        return
    owner, field = rng.choice(found)
    if field.is_repeated or field.type == FieldDescriptor.TYPE_MESSAGE or rng.random() < 0.1:
        owner.ClearField(field.name)
    else:
        setattr(owner, field.name, _odd_value(field, rng))


def mutate_otel_record(record: bytes, fmt: str, rng: random.Random) -> bytes:
    """``record`` (length-prefixed messages of ``fmt``) with each message's fields mutated."""
    message_type = MESSAGE_TYPES[fmt]
    out = bytearray()
    for frame in split_frames(record):
        message = message_type()
        message.ParseFromString(bytes(frame))
        for _ in range(rng.randint(1, 3)):
            mutate_message(message, rng)
        encoded = message.SerializeToString()
        out += write_varint(len(encoded)) + encoded
    return bytes(out)
