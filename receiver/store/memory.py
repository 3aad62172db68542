"""``memory://``: the store as dicts in this process, for tests and throwaway demos.

Same semantics as the SQLite store: upsert by identity, a request is all-or-nothing,
request ids are forgotten after the TTL. Data lives as long as the object (close/open keep it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence

from receiver.model import Sample
from receiver.store.base import DEFAULT_REQUEST_TTL_S, PRUNE_INTERVAL_S, StoreError, check_finite

Identity = tuple[str, str, str, str, tuple[tuple[str, str], ...], int, int]


class MemoryStore:
    """Samples in dicts keyed by period start, then identity."""

    def __init__(
        self,
        *,
        request_ttl_s: float = DEFAULT_REQUEST_TTL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._ttl_s = request_ttl_s
        self._clock = clock
        self._open = False
        # Bucketing by start keeps a time-range read proportional to the minutes it spans.
        self._by_start: dict[int, dict[Identity, Sample]] = {}
        # Insertion order is commit order (a re-commit moves to the end), so pruning stops
        # at the first id that is still fresh.
        self._requests: dict[str, float] = {}
        self._next_prune = float("-inf")

    def __repr__(self) -> str:
        return "MemoryStore()"

    async def open(self) -> None:
        self._open = True

    async def close(self) -> None:
        self._open = False

    async def ping(self) -> None:
        self._check_open()

    async def commit(self, request_id: str, samples: Sequence[Sample]) -> None:
        self._check_open()
        # Everything that can fail happens before the first write: all-or-nothing.
        check_finite(samples)
        by_start = self._by_start
        for sample in samples:
            bucket = by_start.get(sample.start_ms)
            if bucket is None:
                bucket = by_start[sample.start_ms] = {}
            bucket[sample.identity] = sample
        now = self._clock()
        self._requests.pop(request_id, None)
        self._requests[request_id] = now
        if now >= self._next_prune:
            self._prune(now - self._ttl_s)
            self._next_prune = now + PRUNE_INTERVAL_S

    async def is_committed(self, request_id: str) -> bool:
        self._check_open()
        committed = self._requests.get(request_id)
        return committed is not None and self._clock() - committed < self._ttl_s

    async def samples(
        self,
        start_ms: int,
        end_ms: int,
        *,
        namespace: str | None = None,
        metrics: Collection[str] | None = None,
    ) -> list[Sample]:
        self._check_open()
        if isinstance(metrics, str):
            raise TypeError("metrics must be a collection of metric names, not one str")
        wanted = None if metrics is None else frozenset(metrics)
        found: list[Sample] = []
        for start in sorted(s for s in self._by_start if start_ms <= s < end_ms):
            for sample in self._by_start[start].values():
                series = sample.series
                if namespace is not None and series.namespace != namespace:
                    continue
                if wanted is not None and series.metric not in wanted:
                    continue
                found.append(sample)
        return found

    async def count_samples(self) -> int:
        self._check_open()
        return sum(len(bucket) for bucket in self._by_start.values())

    def _check_open(self) -> None:
        if not self._open:
            raise StoreError("the memory store is not open; call open() first")

    def _prune(self, cutoff: float) -> None:
        stale = []
        for request_id, committed in self._requests.items():
            if committed > cutoff:
                break
            stale.append(request_id)
        for request_id in stale:
            del self._requests[request_id]
