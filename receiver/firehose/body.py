"""Reading a request body within a size cap and an in-flight memory budget.

aiohttp's own body limit answers 413, which Firehose treats as a permanent failure and
drops the batch without S3 backup; its own gzip handling has no cap we control. So the
body is read here: chunk by chunk, gunzipped incrementally, never past ``limit`` bytes.

aiohttp has no read deadline on a server's request body either, so a client that stops
sending half way would hold its connection and its share of the budget forever: a body
that makes no progress for ``stall_timeout_s`` ends with BodyStalled.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterable, AsyncIterator

DEFAULT_STALL_TIMEOUT_S = 60.0
"""How long a body may go without a single byte arriving (``serve --read-timeout``)."""

JOIN_MAX_BYTES = 16 << 20
"""The largest plain body read as a list of chunks joined once (see BodyReader._read_plain)."""

_GZIP = ("gzip", "x-gzip")
"""RFC 9110 8.4.1: x-gzip is gzip; codings are case-insensitive."""
_IDENTITY = ("", "identity")


class BodyTooLarge(ValueError):
    """The (decompressed) body passed the cap: a 400 that says to lower the buffering size."""


class BadEncoding(ValueError):
    """The body cannot be read as sent (not what its Content-Encoding says, or it stopped
    arriving): a 400."""


class BodyStalled(BadEncoding):
    """No part of the body arrived for the stall timeout: the request ends with a 400 (an
    answer Firehose retries); aiohttp closes the connection after it, the body being unread."""


class OverBudget(Exception):
    """Taking this body would pass the receiver's in-flight byte budget: a 503."""


class InflightBudget:
    """Bytes of request bodies held in memory at once, across all requests.

    A request is always admitted when nothing else is in flight, so a budget smaller than
    one body can slow the receiver down but never wedge it.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_use = 0

    def reserve(self, held: int, more: int) -> None:
        """Grow a request's reservation from ``held`` by ``more`` bytes, or raise OverBudget."""
        others = self.in_use - held
        if others > 0 and self.in_use + more > self.limit:
            raise OverBudget(f"over the in-flight budget of {self.limit} bytes")
        self.in_use += more

    def release(self, held: int) -> None:
        self.in_use -= held


class BodyReader:
    """Accumulates one request body; ``held`` is what it has reserved from the budget."""

    def __init__(self, budget: InflightBudget, limit: int, stall_timeout_s: float = DEFAULT_STALL_TIMEOUT_S) -> None:
        self.budget = budget
        self.limit = limit
        self.held = 0
        # No overall deadline, only one between chunks: Firehose's largest body (about 90 MB)
        # at whatever steady pace AWS's network gives is legitimate, and a deadline long
        # enough for it would not stop a slow client anyway. A client that trickles costs one
        # connection (bounded by --max-connections) and only the bytes it has sent (bounded
        # by the budget); one that stops is cut off here.
        self.stall_timeout_s = stall_timeout_s

    def _take(self, size: int) -> None:
        self.budget.reserve(self.held, size)
        self.held += size

    async def read(self, chunks: AsyncIterable[bytes], encoding: str | None) -> bytearray:
        """The whole body, decompressed, in one buffer."""
        coding = (encoding or "").strip().lower()
        if coding in _IDENTITY:
            return await self._read_plain(aiter(chunks))
        if coding in _GZIP:
            return await self._read_gzip(aiter(chunks))
        raise BadEncoding(f"Content-Encoding {encoding!r} is not supported; use gzip or none")

    async def _next(self, chunks: AsyncIterator[bytes]) -> bytes | None:
        """The next chunk, None at the end, or BodyStalled when none comes in time."""
        try:
            async with asyncio.timeout(self.stall_timeout_s):
                return await anext(chunks)
        except StopAsyncIteration:
            return None
        except TimeoutError:
            raise BodyStalled(
                f"no part of the body arrived for {self.stall_timeout_s:g} s; the request is ended"
            ) from None

    async def _read_plain(self, chunks: AsyncIterator[bytes]) -> bytearray:
        # The chunks as they came, joined once at the end into a buffer of the body's size:
        # a buffer grown chunk by chunk is copied again at each of its ~60 growths (CPython
        # grows a bytearray by an eighth) unless malloc can extend it where it lies, which a
        # busy receiver's heap seldom allows. Joining holds the body twice for a moment, so
        # past JOIN_MAX_BYTES the chunks go into a growing buffer instead.
        pieces: list[bytes] = []
        body: bytearray | None = None
        total = 0
        while (chunk := await self._next(chunks)) is not None:
            total += len(chunk)
            if total > self.limit:
                raise BodyTooLarge(self._too_large())
            self._take(len(chunk))
            if body is not None:
                body += chunk
            elif total <= JOIN_MAX_BYTES:
                pieces.append(chunk)
            else:
                body = bytearray().join(pieces)
                body += chunk
                pieces.clear()
        return body if body is not None else bytearray().join(pieces)

    async def _read_gzip(self, chunks: AsyncIterator[bytes]) -> bytearray:
        body = bytearray()
        total = compressed = 0
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            while (chunk := await self._next(chunks)) is not None:
                compressed += len(chunk)
                if compressed > self.limit:
                    raise BodyTooLarge(self._too_large())
                self._take(len(chunk))
                pending = chunk
                while pending:
                    if inflater.eof:
                        # Another gzip member follows: concatenated members are one stream.
                        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
                    # Never inflate more than one byte past the cap, however small the input.
                    out = inflater.decompress(pending, self.limit - total + 1)
                    total += len(out)
                    if total > self.limit:
                        raise BodyTooLarge(self._too_large())
                    self._take(len(out))
                    body += out
                    pending = inflater.unused_data if inflater.eof else inflater.unconsumed_tail
        except zlib.error as exc:
            raise BadEncoding(f"the body is not valid gzip ({exc})") from None
        if not inflater.eof:
            raise BadEncoding("the gzip body is truncated")
        return body

    def _too_large(self) -> str:
        return (
            f"the decompressed body is larger than {self.limit} bytes, more than Firehose's "
            "largest delivery; lower the delivery stream's buffering size"
        )
