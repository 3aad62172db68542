"""Content codings are case-insensitive (RFC 9110 8.4.1), x-gzip is gzip; a stalled body ends."""

from __future__ import annotations

import asyncio
import gzip

import pytest

from receiver.firehose.body import BadEncoding, BodyReader, BodyStalled, InflightBudget

DATA = b"metrics " * 500


async def chunks_of(data: bytes, size: int = 1000):
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def read(data: bytes, encoding: str | None, stall_timeout_s: float | None = None) -> bytearray:
    return await BodyReader(InflightBudget(1 << 30), 1 << 20, stall_timeout_s=stall_timeout_s).read(
        chunks_of(data), encoding
    )


@pytest.mark.parametrize("coding", ["gzip", "GZIP", "Gzip", "x-gzip", "X-GZIP", " gzip "])
async def test_gzip_and_x_gzip_in_any_case(coding):
    assert await read(gzip.compress(DATA), coding) == DATA


@pytest.mark.parametrize("coding", [None, "", "identity", "IDENTITY", "Identity"])
async def test_identity_in_any_case(coding):
    assert await read(DATA, coding) == DATA


@pytest.mark.parametrize("coding", ["br", "deflate", "gzip, br"])
async def test_other_codings_are_still_refused(coding):
    with pytest.raises(BadEncoding, match="not supported"):
        await read(DATA, coding)


async def test_a_body_that_stops_arriving_ends_with_body_stalled():
    async def stalls():
        yield b"{" * 10
        await asyncio.sleep(3600)
        yield b"}"

    reader = BodyReader(InflightBudget(1 << 30), 1 << 20, stall_timeout_s=0.05)
    with pytest.raises(BodyStalled, match="no part of the body arrived for 0.05 s"):
        await reader.read(stalls(), None)
    assert isinstance(BodyStalled("x"), BadEncoding)  # ingest answers it 400, as any unreadable body


async def test_slow_but_steady_chunks_are_not_a_stall():
    async def slow():
        for _ in range(8):  # 0.4 s in all, longer than the timeout; each pause far shorter
            await asyncio.sleep(0.05)
            yield b"x" * 10

    reader = BodyReader(InflightBudget(1 << 30), 1 << 20, stall_timeout_s=0.3)
    assert await reader.read(slow(), None) == b"x" * 80
