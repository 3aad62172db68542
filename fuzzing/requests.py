"""Mutated Firehose HTTP requests (headers and body) made from real deliveries."""

from __future__ import annotations

import gzip
import random
import uuid
from dataclasses import dataclass

import orjson

from receiver.firehose import envelope
from tests.builders import Delivery

from .corpus import plain_body
from .mutate import mutate_bytes, mutate_envelope


@dataclass(frozen=True, slots=True)
class FuzzRequest:
    request_id: str
    headers: dict[str, str]
    body: bytes


def _with_request_id(body: bytes, request_id: str) -> bytes:
    parsed = orjson.loads(body)
    parsed["requestId"] = request_id
    return orjson.dumps(parsed)


_ODD_HEADERS: tuple[tuple[str, str | None], ...] = (
    ("Content-Encoding", "gzip"),
    ("Content-Encoding", "br"),
    ("Content-Encoding", None),
    (envelope.COMMON_ATTRIBUTES_HEADER, '{"commonAttributes": {"team": "a"}}'),
    (envelope.COMMON_ATTRIBUTES_HEADER, '{"commonAttributes": {"team": 1}}'),
    (envelope.COMMON_ATTRIBUTES_HEADER, "[1, 2"),
    (envelope.REQUEST_ID_HEADER, None),
    (envelope.REQUEST_ID_HEADER, "not-the-body-id"),
    ("Content-Type", "text/plain"),
)


def mutated_request(seed: Delivery, rng: random.Random) -> FuzzRequest:
    """A request from ``seed``: a fresh request id, then body and sometimes header mutations.

    The body is mutated before compression (so the gunzipped envelope is what changes) or,
    now and then, after it (so the gzip stream itself is damaged).
    """
    request_id = str(uuid.UUID(int=rng.getrandbits(128)))
    body = _with_request_id(plain_body(seed), request_id)
    compress = seed.headers.get("Content-Encoding") == "gzip"
    kind = rng.randrange(10)
    if kind < 5:
        body = mutate_envelope(body, rng)
    elif kind < 8:
        body = mutate_bytes(body, rng)
    if compress:
        body = gzip.compress(body, compresslevel=1)
        if kind == 8:
            body = mutate_bytes(body, rng)
    headers = {**seed.headers, envelope.REQUEST_ID_HEADER: request_id}
    if rng.random() < 0.15:
        name, value = rng.choice(_ODD_HEADERS)
        if value is None:
            headers.pop(name, None)
        else:
            headers[name] = value
    return FuzzRequest(request_id, headers, body)
