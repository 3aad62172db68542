"""The storage interface every backend implements, and its two errors.

The HTTP handler commits one Firehose request at a time and acks only after ``commit``
returned; the rules engine reads back what a time range holds. Backends speak only in
``Sample``s and their identity (no row ids, no SQL), so a key-value backend such as DynamoDB
can implement the same interface with the identity as its key.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from typing import Protocol, runtime_checkable

from receiver.model import Sample

DEFAULT_REQUEST_TTL_S = 24 * 3600.0
"""How long a committed request id is remembered (Firehose retries for at most a few hours)."""

PRUNE_INTERVAL_S = 60.0
"""Forgotten request ids are deleted at most once per this interval, by the next commit."""


class StoreError(Exception):
    """The store failed (disk full, locked, I/O error, closed): answer 503 so Firehose retries."""


class StoreConfigError(ValueError):
    """A bad store URL or an unusable path; ``str(e)`` is one sentence naming the problem and the fix."""


@runtime_checkable
class Store(Protocol):
    """Samples upserted by identity, committed one Firehose request at a time."""

    async def open(self) -> None:
        """Create the schema if needed and check the store is usable.

        Raises StoreConfigError when the configuration cannot work (bad path, not a store
        file), StoreError when the store fails for a reason that may pass (locked, I/O).
        """

    async def close(self) -> None:
        """Finish queued work and release the store; later calls raise StoreError."""

    async def ping(self) -> None:
        """A cheap check that the store answers (for /readyz); raises StoreError if not."""

    async def commit(self, request_id: str, samples: Sequence[Sample]) -> None:
        """Upsert every sample by identity and remember ``request_id``, all in one transaction.

        A sample whose identity is already stored replaces it (last write wins). On failure
        this raises StoreError and nothing of the request is stored, its id included.
        """

    async def is_committed(self, request_id: str) -> bool:
        """Whether ``request_id`` was committed within the request TTL."""

    async def samples(
        self,
        start_ms: int,
        end_ms: int,
        *,
        namespace: str | None = None,
        metrics: Collection[str] | None = None,
    ) -> list[Sample]:
        """The stored samples whose ``start_ms`` lies in ``[start_ms, end_ms)``, by ascending start.

        ``namespace`` and ``metrics`` narrow the result to that namespace and those metric
        names; ``None`` means no narrowing, an empty ``metrics`` selects nothing. Samples
        with equal starts come in no particular order.
        """

    async def count_samples(self) -> int:
        """How many samples are stored."""


def check_finite(samples: Sequence[Sample]) -> None:
    """Raise StoreError if any statistic of ``samples`` is NaN or infinite.

    Such values cannot round-trip (SQLite turns NaN into NULL, JSON has neither, NaN is not
    equal to itself), so a store refuses the whole request instead of storing something else.
    """
    isfinite = math.isfinite
    for sample in samples:
        if not (
            isfinite(sample.count)
            and isfinite(sample.sum)
            and isfinite(sample.min)
            and isfinite(sample.max)
            and all(isfinite(value) for _, value in sample.stats)
        ):
            raise StoreError(non_finite_message(sample))


def non_finite_message(sample: Sample) -> str:
    """The StoreError text for a sample holding a NaN or infinite statistic."""
    series = sample.series
    return (
        f"sample {series.namespace}/{series.metric} {dict(series.dimensions)} at {sample.start_ms} "
        f"has a NaN or infinite statistic (count={sample.count}, sum={sample.sum}, "
        f"min={sample.min}, max={sample.max}, stats={dict(sample.stats)}); the store keeps "
        "finite numbers only, so the request was not stored"
    )
