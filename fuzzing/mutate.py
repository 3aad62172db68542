"""Byte- and structure-level mutations of a valid input, driven by one seeded random.Random."""

from __future__ import annotations

import base64
import random
from collections.abc import Callable

import orjson

_INTERESTING = (
    b"\x00",
    b"\xff",
    b"\x7f",
    b"\x80",
    b"\xff\xff\xff\xff\x0f",
    b"{",
    b"}",
    b'"',
    b"\n",
    b"\\u0000",
    b"-1",
    b"1e309",
    b"NaN",
    b"[]",
    b"null",
)


def _flip_bit(data: bytearray, rng: random.Random) -> None:
    if data:
        i = rng.randrange(len(data))
        data[i] ^= 1 << rng.randrange(8)


def _set_byte(data: bytearray, rng: random.Random) -> None:
    if data:
        data[rng.randrange(len(data))] = rng.randrange(256)


def _insert(data: bytearray, rng: random.Random) -> None:
    at = rng.randrange(len(data) + 1)
    data[at:at] = rng.choice(_INTERESTING)


def _delete(data: bytearray, rng: random.Random) -> None:
    if data:
        at = rng.randrange(len(data))
        del data[at : at + rng.randint(1, 16)]


def _truncate(data: bytearray, rng: random.Random) -> None:
    if data:
        del data[rng.randrange(len(data)) :]


def _duplicate(data: bytearray, rng: random.Random) -> None:
    if data:
        at = rng.randrange(len(data))
        piece = data[at : at + rng.randint(1, 64)]
        to = rng.randrange(len(data) + 1)
        data[to:to] = piece


def _varint(data: bytearray, rng: random.Random) -> None:
    """Overwrite a few bytes with a large or negative protobuf varint (lengths, tags)."""
    if data:
        at = rng.randrange(len(data))
        data[at : at + 1] = rng.choice((b"\xff\xff\xff\xff\x07", b"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01", b"\x00"))


_BYTE_MUTATIONS: tuple[Callable[[bytearray, random.Random], None], ...] = (
    _flip_bit,
    _set_byte,
    _insert,
    _delete,
    _truncate,
    _duplicate,
    _varint,
)


def mutate_bytes(data: bytes, rng: random.Random, max_steps: int = 4) -> bytes:
    """``data`` with one to ``max_steps`` random byte-level mutations."""
    out = bytearray(data)
    for _ in range(rng.randint(1, max_steps)):
        rng.choice(_BYTE_MUTATIONS)(out, rng)
    return bytes(out)


_ODD_VALUES: tuple[object, ...] = (
    None,
    True,
    0,
    -1,
    1.5,
    "",
    "x",
    [],
    {},
    [None],
    {"data": 1},
    2**64 - 1,
    -(2**63),
    1e308,
    "A" * 5,
    "====",
    "\u0000",
)


def mutate_envelope(body: bytes, rng: random.Random) -> bytes:
    """A structural mutation of a Firehose envelope: wrong types, odd records, changed data.

    Half the time a record's data keeps valid base64 of a mutated record, so the decoders
    behind the envelope see the mutations too.
    """
    envelope = orjson.loads(body)
    records = envelope["records"]
    choice = rng.randrange(6)
    if choice == 0:
        envelope[rng.choice(("requestId", "timestamp", "records"))] = rng.choice(_ODD_VALUES)
    elif choice == 1:
        del envelope[rng.choice(("requestId", "timestamp", "records"))]
    elif choice == 2 and records:
        records[rng.randrange(len(records))] = rng.choice(_ODD_VALUES)
    elif choice == 3 and records:
        record = records[rng.randrange(len(records))]
        record["data"] = mutate_bytes(record["data"].encode(), rng).decode("latin-1")
    elif records:
        record = records[rng.randrange(len(records))]
        raw = base64.b64decode(record["data"])
        record["data"] = base64.b64encode(mutate_bytes(raw, rng)).decode()
    return orjson.dumps(envelope)


def mutate_json_record(record: bytes, rng: random.Random) -> bytes:
    """A ``json`` record with one field of one line (top level, in dimensions or in value)
    given an odd value or removed: the decoder's type checks, not its JSON parser."""
    lines = record.split(b"\n")
    index = rng.randrange(len(lines))
    if not lines[index]:
        return record
    item = orjson.loads(lines[index])
    target = item
    if rng.random() < 0.5:
        nested = item.get(rng.choice(("value", "dimensions")))
        if isinstance(nested, dict):
            target = nested
    key = rng.choice([*target.keys(), "p99", "count", "timestamp"])
    if rng.random() < 0.2:
        target.pop(key, None)
    else:
        target[key] = rng.choice(_ODD_VALUES)
    lines[index] = orjson.dumps(item)
    return b"\n".join(lines)
