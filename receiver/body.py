"""Reading a request body within a size cap and an in-flight memory budget.

aiohttp's own body limit answers 413, which Firehose treats as a permanent failure and
drops the batch without S3 backup; its own gzip handling has no cap we control. So the
body is read here: chunk by chunk, gunzipped incrementally, never past ``limit`` bytes.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator


class BodyTooLarge(ValueError):
    """The (decompressed) body passed the cap: a 400 that says to lower the buffering size."""


class BadEncoding(ValueError):
    """The body is not what its Content-Encoding says: a 400."""


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

    def __init__(self, budget: InflightBudget, limit: int) -> None:
        self.budget = budget
        self.limit = limit
        self.held = 0

    def _take(self, size: int) -> None:
        self.budget.reserve(self.held, size)
        self.held += size

    async def read(self, chunks: AsyncIterator[bytes], encoding: str | None) -> bytearray:
        """The whole body, decompressed. One growing buffer rather than a list of chunks
        joined at the end: joining would hold a 64 MiB body twice for a moment."""
        if encoding in (None, "", "identity"):
            return await self._read_plain(chunks)
        if encoding == "gzip":
            return await self._read_gzip(chunks)
        raise BadEncoding(f"Content-Encoding {encoding!r} is not supported; use gzip or none")

    async def _read_plain(self, chunks: AsyncIterator[bytes]) -> bytearray:
        body = bytearray()
        total = 0
        async for chunk in chunks:
            total += len(chunk)
            if total > self.limit:
                raise BodyTooLarge(self._too_large())
            self._take(len(chunk))
            body += chunk
        return body

    async def _read_gzip(self, chunks: AsyncIterator[bytes]) -> bytearray:
        body = bytearray()
        total = compressed = 0
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            async for chunk in chunks:
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
