"""Running the DynamoDB store's blocking boto3 calls off the event loop.

Two thread pools: a small *control* pool for the single calls the HTTP path waits on
(is_committed, a request id, a bucket pointer) and a *work* pool for the many batches of
a commit and partitions of a read. At most one job per work thread is queued at a time
(``fan_out``), so a 50,000-sample commit never makes another request's duplicate check
wait for more than one call.

The health check has a thread of its own (``probe``): a control call may itself retry
throttling for the whole retry bound, and a probe queued behind two of them would call a
merely busy store down. Concurrent probes share one call, so a hung one never piles up more.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from receiver.store.base import StoreError
from receiver.store.dynamodb.retry import Aborted, describe

T = TypeVar("T")

CONTROL_THREADS = 2
PROBE_THREADS = 1


class Runner:
    """The store's thread pools and the operations in flight on them."""

    def __init__(self, where: str, workers: int) -> None:
        self._where = where
        self._workers = workers
        self._control: ThreadPoolExecutor | None = None
        self._work: ThreadPoolExecutor | None = None
        self._probe: ThreadPoolExecutor | None = None
        self._probing: asyncio.Future[Any] | None = None
        self._accepting = False  # False while closing: operations under way keep the pools
        self._slots = asyncio.Semaphore(workers)
        self._inflight = 0
        self._idle = asyncio.Event()

    @property
    def is_open(self) -> bool:
        return self._accepting

    async def start(self, connect: Callable[[], None]) -> None:
        """Start the pools and run ``connect`` on one; nothing stays started if it raises."""
        if self._control is not None:
            raise StoreError(f"the DynamoDB store for {self._where} is still closing")
        control = ThreadPoolExecutor(max_workers=CONTROL_THREADS, thread_name_prefix="dynamodb-store")
        work = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="dynamodb-store-io")
        probe = ThreadPoolExecutor(max_workers=PROBE_THREADS, thread_name_prefix="dynamodb-store-ping")
        try:
            await asyncio.get_running_loop().run_in_executor(control, connect)
        except BaseException:
            for pool in (control, work, probe):
                pool.shutdown(wait=False)
            raise
        self._control, self._work, self._probe = control, work, probe
        self._probing = None
        # Made here, not in __init__: they belong to the event loop the store is opened in.
        self._slots = asyncio.Semaphore(self._workers)
        self._idle = asyncio.Event()
        self._idle.set()
        self._accepting = True

    async def stop(self) -> bool:
        """Refuse new operations, wait for those under way, stop the pools; False if not started."""
        if not self._accepting:
            return False
        self._accepting = False
        await self._idle.wait()
        pools = (self._control, self._work, self._probe)
        self._control = self._work = self._probe = None
        for pool in pools:
            if pool is not None:
                pool.shutdown(wait=False)
        return True

    @asynccontextmanager
    async def operation(self) -> AsyncIterator[None]:
        """One public store operation: StoreError when closed, counted so ``stop`` waits for it."""
        if not self._accepting:
            raise StoreError(f"the DynamoDB store for {self._where} is not open")
        self._inflight += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._inflight -= 1
            if not self._inflight:
                self._idle.set()

    async def control(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the control pool."""
        return await self._run(self._control, fn, *args)

    async def work(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the work pool (for one long job, such as encoding a request)."""
        return await self._run(self._work, fn, *args)

    async def fan_out(self, jobs: Sequence[Callable[[], T]]) -> list[T | BaseException]:
        """Every job on the work pool, at most one per worker queued at a time; every outcome."""

        async def one(job: Callable[[], T]) -> T:
            async with self._slots:
                return await self._run(self._work, job)

        return await asyncio.gather(*(one(job) for job in jobs), return_exceptions=True)

    async def probe(self, fn: Callable[[], T]) -> T:
        """``fn()`` on the probe thread, outside both pools; callers arriving while one runs share it."""
        probing = self._probing
        if probing is None or probing.done():
            probing = self._probing = asyncio.ensure_future(self._run(self._probe, fn))
            # Retrieved here too: every caller may have been cancelled before it ends.
            probing.add_done_callback(lambda done: done.cancelled() or done.exception())
        # shield: one caller giving up (a scrape's timeout) does not cancel the others' answer.
        return await asyncio.shield(probing)

    async def batches(self, write: Callable[[list[Any], threading.Event], None], items: list[Any], size: int) -> None:
        """``write(batch, abort)`` for every ``size`` items, in parallel on the work pool.

        The first failing batch sets ``abort`` so the others stop early (so does cancelling);
        StoreError once every batch has ended if any failed.
        """
        if not items:
            return
        abort = threading.Event()
        jobs = [functools.partial(write, items[i : i + size], abort) for i in range(0, len(items), size)]
        try:
            await self.gather(jobs)
        except asyncio.CancelledError:
            abort.set()
            raise

    async def gather(self, jobs: Sequence[Callable[[], T]]) -> list[T]:
        """The jobs' results in order; the first failure as StoreError once all have ended.

        Aborted (a job that stopped because another failed) is never the reported cause.
        """
        results = await self.fan_out(jobs)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            cause = next((f for f in failures if not isinstance(f, Aborted)), failures[0])
            raise self.store_error(cause) from cause
        return results  # type: ignore[return-value]

    async def _run(self, pool: ThreadPoolExecutor | None, fn: Callable[..., T], *args: Any) -> T:
        if pool is None:
            raise StoreError(f"the DynamoDB store for {self._where} is closed")
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)
        except (ClientError, BotoCoreError) as exc:
            raise self.store_error(exc) from exc

    def store_error(self, exc: BaseException) -> StoreError:
        """``exc`` as the StoreError the HTTP layer answers 503 for."""
        if isinstance(exc, StoreError):
            return exc
        if isinstance(exc, (ClientError, BotoCoreError)):
            return StoreError(f"{self._where} failed: {describe(exc)}")
        if isinstance(exc, Aborted):
            return StoreError(f"an operation on {self._where} was stopped")
        if isinstance(exc, Exception):
            return StoreError(f"{self._where} failed unexpectedly: {exc!r}")
        raise exc  # cancellation, KeyboardInterrupt: not a store failure
