"""``sqlite:///path``: the embedded store, a SQLite file driven from five worker threads.

sqlite3 calls block, and the receiver must keep answering while a large request commits,
so every database call runs on a single-thread executor that owns its connection:

- the writer's thread takes the writes and the calls that must see them at once
  (versions); SQLite has one writer at a time anyway. Nothing decodes on it: a
  delivery's slices come to it decoded, each a short transaction of its own;
- the reader's thread takes the reads that may be long: the deriver's samples (an hour of
  2,000 tables is seconds) and the queries of the API and views;
- the lookup thread takes only quick point reads: a delivery's request id, and the
  readiness probe, so neither waits behind a commit or a long read;
- the two reducers' threads take the summary's reductions (``endpoint_totals``, about
  45 ms a metric at 2,000 tables, and ``endpoint_latest``), so the dashboard's other reads
  of the same page run beside them instead of after them, and two metrics are reduced at
  once (SQLite lets go of the GIL while it steps; the bench machine has two cores).

In WAL mode readers and the writer never wait for each other. A read starts after the
call that precedes it returned, so it sees every commit made by then.
"""

from __future__ import annotations

import asyncio
import itertools
import operator
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from os import PathLike
from pathlib import Path
from typing import Any, TypeVar

from receiver.model import (
    HOUR_MS,
    MINUTE_MS,
    AlarmEvent,
    DerivedKey,
    DerivedValue,
    InventoryItem,
    QuarantinedRecord,
    Sample,
)
from receiver.store.base import (
    DEFAULT_HOUR_RETENTION_DAYS,
    DEFAULT_MINUTE_RETENTION_DAYS,
    DEFAULT_REQUEST_TTL_S,
    PRUNE_INTERVAL_S,
    Datapoints,
    Entity,
    StoreConfigError,
    StoreError,
    Totals,
    Written,
    batch_of,
    check_metric_names,
    retention_cutoffs,
)
from receiver.store.sqlite.db import SQLiteDB

T = TypeVar("T")

SERIES_PER_CHUNK = 500
"""Series per chunk of samples_by_series: an hour of them is at most 30,000 samples (about
20 MiB as objects), which the hour pass holds beside its rollup."""

BLOCKS_HELD = 96 << 20
"""The most bytes of one metric's blocks samples_by_series holds to decode its chunks from.
A latency metric of 2,000 tables has about 70 MiB an hour: reading it again for each of its
four chunks would cost 1.5 to 2 s of CPU, and holding it costs the hour pass less than what
comes after the rollup (the rolled hour sent to the worker, its values stored)."""

REDUCERS = 2
"""Threads (each with its own connection) taking the summary's reductions, one call at a time each."""

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
        minute_retention_days: float = DEFAULT_MINUTE_RETENTION_DAYS,
        hour_retention_days: float = DEFAULT_HOUR_RETENTION_DAYS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._retention_days = (minute_retention_days, hour_retention_days)
        mode = synchronous.upper()
        if mode not in SYNCHRONOUS_MODES:
            raise StoreConfigError(
                f"synchronous={synchronous!r} is not a durability level of the sqlite store; use full or normal"
            )
        # Resolved now so a later chdir cannot move the store.
        self.path = Path(path).expanduser().absolute()
        self._db = SQLiteDB(self.path, synchronous=mode, busy_timeout_ms=busy_timeout_ms)
        self._reader_db = SQLiteDB(self.path, synchronous=mode, busy_timeout_ms=busy_timeout_ms)
        self._lookup_db = SQLiteDB(self.path, synchronous=mode, busy_timeout_ms=busy_timeout_ms)
        self._reducer_dbs = [
            SQLiteDB(self.path, synchronous=mode, busy_timeout_ms=busy_timeout_ms) for _ in range(REDUCERS)
        ]
        self._next_reducer = itertools.cycle(range(REDUCERS))
        self._ttl_ms = int(request_ttl_s * 1000)
        self._clock = clock
        self._executor: ThreadPoolExecutor | None = None
        self._reader: ThreadPoolExecutor | None = None
        self._lookup: ThreadPoolExecutor | None = None
        self._reducers: tuple[ThreadPoolExecutor, ...] = ()
        self._next_prune_ms = -1  # the first commit prunes

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    async def open(self) -> None:
        if self._executor is not None:
            return
        loop = asyncio.get_running_loop()
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-store")
        reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-reader")
        lookup = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-lookup")
        reducers = tuple(
            ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sqlite-reducer-{n}") for n in range(REDUCERS)
        )
        pools = (executor, reader, lookup, *reducers)
        opened: list[tuple[ThreadPoolExecutor, SQLiteDB]] = []
        try:
            # The writer sets the file up first.
            for pool, db, connect in (
                (executor, self._db, self._db.connect),
                (reader, self._reader_db, self._reader_db.connect_reader),
                (lookup, self._lookup_db, self._lookup_db.connect_reader),
                *((pool, db, db.connect_reader) for pool, db in zip(reducers, self._reducer_dbs)),
            ):
                await loop.run_in_executor(pool, connect)
                opened.append((pool, db))
        except BaseException:
            for pool, db in reversed(opened):
                await loop.run_in_executor(pool, db.close)
            # The jobs are done (one raised), so the threads are idle and exit at once.
            for pool in pools:
                pool.shutdown(wait=False)
            raise
        self._executor, self._reader, self._lookup, self._reducers = executor, reader, lookup, reducers

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        reader, self._reader = self._reader, None
        lookup, self._lookup = self._lookup, None
        reducers, self._reducers = self._reducers, ()
        if executor is None or reader is None or lookup is None:
            return
        loop = asyncio.get_running_loop()
        try:
            # Each queued behind any call still running on its thread: that call finishes
            # first. The writer closes even if a reader failed to.
            try:
                for pool, db in zip(reducers, self._reducer_dbs):
                    await loop.run_in_executor(pool, db.close)
                await loop.run_in_executor(lookup, self._lookup_db.close)
                await loop.run_in_executor(reader, self._reader_db.close)
            finally:
                await loop.run_in_executor(executor, self._db.close)
        except sqlite3.Error as exc:
            raise StoreError(f"the sqlite store at {self.path} failed to close cleanly: {exc}") from exc
        finally:
            for pool in (executor, reader, lookup, *reducers):
                pool.shutdown(wait=False)

    async def ping(self) -> None:
        # On the lookup thread: a probe queued behind a 64 MiB commit or an hour's read
        # would call a busy store down.
        await self._look_up(self._lookup_db.probe)

    async def write_samples(self, samples: Datapoints) -> None:
        await self._call(self._db.write_samples, batch_of(samples))

    async def commit(self, request_id: str, samples: Datapoints, quarantined: Sequence[QuarantinedRecord] = ()) -> None:
        now_ms = int(self._clock() * 1000)
        prune = now_ms >= self._next_prune_ms
        await self._call(
            self._db.commit,
            request_id,
            batch_of(samples),
            quarantined,
            now_ms,
            now_ms - self._ttl_ms if prune else None,
        )
        if prune:
            self._next_prune_ms = now_ms + int(PRUNE_INTERVAL_S * 1000)

    async def is_committed(self, request_id: str) -> bool:
        # On the lookup thread: it sees every commit that returned, and a delivery's first
        # question waits behind neither commits nor long reads.
        since = int(self._clock() * 1000) - self._ttl_ms
        return await self._look_up(self._lookup_db.is_committed, request_id, since)

    async def quarantined(self, limit: int = 1000) -> list[QuarantinedRecord]:
        return await self._read(self._reader_db.quarantined, limit)

    async def count_quarantined(self) -> int:
        return await self._read(self._reader_db.count_quarantined)

    async def delete_quarantined(self, keys: Collection[tuple[str, int]]) -> None:
        await self._call(self._db.delete_quarantined, list(keys))

    async def samples(
        self,
        start_ms: int,
        end_ms: int,
        *,
        namespace: str | None = None,
        metrics: Collection[str] | None = None,
    ) -> list[Sample]:
        check_metric_names(metrics)
        return await self._read(self._reader_db.samples, start_ms, end_ms, namespace, metrics)

    async def written_since(self, start_ms: int, end_ms: int, mark: object | None = None) -> Written:
        return await self._read(self._reader_db.written_since, start_ms, end_ms, mark)

    async def samples_by_series(self, start_ms: int, end_ms: int) -> AsyncIterator[list[Sample]]:
        """``samples(start_ms, end_ms)`` in chunks of up to SERIES_PER_CHUNK series, each
        chunk holding every sample of its series (empty chunks skipped).

        Each chunk is its own read, so other reads get their turn in between; each sees
        every commit made before its metric's blocks were read. A metric's blocks of up to
        BLOCKS_HELD bytes are read once for all its chunks (reading them again for each
        would cost more than decoding them); larger ones again for each chunk.
        """
        reader = self._reader_db
        groups = await self._read(reader.series_groups, SERIES_PER_CHUNK)
        for metric_id, in_groups in itertools.groupby(groups, key=operator.itemgetter(0)):
            of_metric = list(in_groups)
            if len(of_metric) == 1 or await self._read(reader.block_bytes, metric_id, start_ms, end_ms) > BLOCKS_HELD:
                for group in of_metric:
                    chunk = await self._read(reader.samples_of_series, group, start_ms, end_ms)
                    if chunk:
                        yield chunk
                continue
            blocks = await self._read(reader.blocks_of_metric, metric_id, start_ms, end_ms)
            for _, first, last in of_metric:
                chunk = await self._read(reader.samples_in_blocks, blocks, first, last)
                if chunk:
                    yield chunk
            del blocks  # not held beside the next metric's

    async def count_samples(self) -> int:
        return await self._read(self._reader_db.count_samples)

    async def versions(self, step_ms: int, buckets: Collection[int]) -> dict[int, int]:
        return await self._call(self._db.versions, step_ms, list(buckets))

    async def stale_buckets(self, step_ms: int, since_ms: int) -> list[int]:
        return await self._call(self._db.stale_buckets, step_ms, since_ms)

    async def put_derived(self, step_ms: int, bucket_ms: int, version: int, values: Sequence[DerivedValue]) -> bool:
        return await self._call(self._db.put_derived, step_ms, bucket_ms, version, values)

    async def put_derived_changes(
        self,
        step_ms: int,
        bucket_ms: int,
        base_version: int,
        version: int,
        upserts: Sequence[DerivedValue],
        removals: Collection[DerivedKey],
        total: int,
    ) -> bool:
        return await self._call(
            self._db.put_derived_changes, step_ms, bucket_ms, base_version, version, upserts, removals
        )

    async def derived(
        self,
        metric: str,
        step_ms: int,
        start_ms: int,
        end_ms: int,
        *,
        service: str | None = None,
        endpoint: str | None = None,
        region: str | None = None,
    ) -> list[DerivedValue]:
        return await self._read(self._reader_db.derived, metric, step_ms, start_ms, end_ms, service, endpoint, region)

    async def endpoint_totals(
        self, metric: str, step_ms: int, start_ms: int, end_ms: int, *, service: str, region: str | None = None
    ) -> dict[str, Totals]:
        lane = self._reducer_lane()
        reduce = self._reducer_dbs[lane].endpoint_totals
        return await self._on(self._reducers[lane], reduce, metric, step_ms, start_ms, end_ms, service, region)

    async def endpoint_latest(
        self, metric: str, step_ms: int, start_ms: int, end_ms: int, *, service: str, region: str | None = None
    ) -> dict[str, float]:
        lane = self._reducer_lane()
        reduce = self._reducer_dbs[lane].endpoint_latest
        return await self._on(self._reducers[lane], reduce, metric, step_ms, start_ms, end_ms, service, region)

    def _reducer_lane(self) -> int:
        """The reducer to take the next reduction: in turn, so the summary's many run two at a time."""
        if not self._reducers:
            raise StoreError(f"the sqlite store at {self.path} is not open")
        return next(self._next_reducer)

    async def bucket_values(self, step_ms: int, bucket_ms: int) -> list[DerivedValue]:
        return await self._read(self._reader_db.bucket_values, step_ms, bucket_ms)

    async def latest_bucket(self, step_ms: int, before_ms: int) -> int | None:
        return await self._read(self._reader_db.latest_bucket, step_ms, before_ms)

    async def entities(self, since_ms: int) -> list[Entity]:
        return await self._read(self._reader_db.entities, since_ms)

    async def prune(self, now_ms: int) -> None:
        # Many small transactions rather than one long one: commits queued on the worker
        # thread get their turn between them.
        cutoffs = retention_cutoffs(now_ms, *self._retention_days)
        for metric_id in await self._call(self._db.metric_ids):
            await self._call(self._db.prune_metric, metric_id, cutoffs[MINUTE_MS])
        for step_ms, cutoff_ms in cutoffs.items():
            await self._call(self._db.prune_buckets, step_ms, cutoff_ms)
        await self._call(self._db.prune_quarantined, cutoffs[HOUR_MS])
        await self._call(self._db.prune_alarm_events, cutoffs[HOUR_MS])
        await self._call(self._db.prune_inventory, cutoffs[HOUR_MS])
        await self._call(self._db.prune_entities, cutoffs[HOUR_MS])

    async def put_alarm_event(self, event: AlarmEvent) -> bool:
        return await self._call(self._db.put_alarm_event, event)

    async def alarm_events(self, since_ms: int) -> list[AlarmEvent]:
        return await self._read(self._reader_db.alarm_events, since_ms)

    async def alarm_heads(self) -> list[AlarmEvent]:
        return await self._read(self._reader_db.alarm_heads)

    async def put_inventory(self, items: Sequence[InventoryItem]) -> None:
        await self._call(self._db.put_inventory, list(items))

    async def inventory(self, kind: str | None = None) -> list[InventoryItem]:
        return await self._read(self._reader_db.inventory, kind)

    async def take_lease(self, name: str, holder: str, now_ms: int, duration_ms: int) -> bool:
        return await self._call(self._db.take_lease, name, holder, now_ms, duration_ms)

    async def release_lease(self, name: str, holder: str) -> None:
        await self._call(self._db.release_lease, name, holder)

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the writer's thread."""
        return await self._on(self._executor, fn, *args)

    async def _look_up(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the lookup thread, which runs only quick point reads."""
        return await self._on(self._lookup, fn, *args)

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the reader's thread."""
        return await self._on(self._reader, fn, *args)

    async def _on(self, executor: ThreadPoolExecutor | None, fn: Callable[..., T], *args: Any) -> T:
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
