"""``sqlite:///path``: the embedded store, a SQLite file driven from one worker thread.

sqlite3 calls block, and the receiver must keep answering while a large request commits,
so every database call runs on a single-thread executor that owns the connection. One
thread also serializes the calls: SQLite has one writer at a time anyway, and the
connection never crosses threads.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from os import PathLike
from pathlib import Path
from typing import Any, TypeVar

from receiver.model import Sample
from receiver.store.base import DEFAULT_REQUEST_TTL_S, PRUNE_INTERVAL_S, StoreConfigError, StoreError
from receiver.store.sqlite_db import SQLiteDB

T = TypeVar("T")

SYNCHRONOUS_MODES = ("FULL", "NORMAL")
"""The durability levels offered; see SQLiteDB._setup for what each means and the default."""


class SQLiteStore:
    """The Store protocol over one SQLite file (created with its folder if missing)."""

    def __init__(
        self,
        path: str | PathLike[str],
        *,
        request_ttl_s: float = DEFAULT_REQUEST_TTL_S,
        synchronous: str = "FULL",
        busy_timeout_ms: int = 5000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        mode = synchronous.upper()
        if mode not in SYNCHRONOUS_MODES:
            raise StoreConfigError(
                f"synchronous={synchronous!r} is not a durability level of the sqlite store; "
                "use full or normal"
            )
        # Resolved now so a later chdir cannot move the store.
        self.path = Path(path).expanduser().absolute()
        self._db = SQLiteDB(self.path, synchronous=mode, busy_timeout_ms=busy_timeout_ms)
        self._ttl_ms = int(request_ttl_s * 1000)
        self._clock = clock
        self._executor: ThreadPoolExecutor | None = None
        self._next_prune_ms = -1  # the first commit prunes

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    async def open(self) -> None:
        if self._executor is not None:
            return
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-store")
        try:
            await asyncio.get_running_loop().run_in_executor(executor, self._db.connect)
        except BaseException:
            # The job is done (it raised), so the thread is idle and exits at once.
            executor.shutdown(wait=False)
            raise
        self._executor = executor

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        try:
            # Queued behind any commit still running: that commit finishes first.
            await asyncio.get_running_loop().run_in_executor(executor, self._db.close)
        except sqlite3.Error as exc:
            raise StoreError(f"the sqlite store at {self.path} failed to close cleanly: {exc}") from exc
        finally:
            executor.shutdown(wait=False)

    async def ping(self) -> None:
        await self._call(self._db.ping)

    async def commit(self, request_id: str, samples: Sequence[Sample]) -> None:
        now_ms = int(self._clock() * 1000)
        prune = now_ms >= self._next_prune_ms
        await self._call(self._db.commit, request_id, samples, now_ms, now_ms - self._ttl_ms if prune else None)
        if prune:
            self._next_prune_ms = now_ms + int(PRUNE_INTERVAL_S * 1000)

    async def is_committed(self, request_id: str) -> bool:
        since = int(self._clock() * 1000) - self._ttl_ms
        return await self._call(self._db.is_committed, request_id, since)

    async def samples(
        self,
        start_ms: int,
        end_ms: int,
        *,
        namespace: str | None = None,
        metrics: Collection[str] | None = None,
    ) -> list[Sample]:
        if isinstance(metrics, str):
            raise TypeError("metrics must be a collection of metric names, not one str")
        return await self._call(self._db.samples, start_ms, end_ms, namespace, metrics)

    async def count_samples(self) -> int:
        return await self._call(self._db.count_samples)

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        executor = self._executor
        if executor is None:
            raise StoreError(f"the sqlite store at {self.path} is not open")
        try:
            job = asyncio.get_running_loop().run_in_executor(executor, fn, *args)
        except RuntimeError as exc:
            # close() shut the executor down since the check above.
            raise StoreError(f"the sqlite store at {self.path} is closed") from exc
        try:
            return await job
        except sqlite3.Error as exc:
            raise StoreError(f"the sqlite store at {self.path} failed: {exc}") from exc
