"""An hour pass runs beside the minute passes: a minute's values are stored while an hour
of the same deriver is still being evaluated (an hour of 2,000 tables takes seconds)."""

from __future__ import annotations

import asyncio

from receiver.derive.deriver import Deriver
from receiver.derive.worker import ThreadEvaluator
from receiver.model import HOUR_MS, MINUTE_MS
from receiver.store import MemoryStore
from tests.builders import T0, make_sample


class HeldHours(ThreadEvaluator):
    """Hours wait until released; minutes are kept in step as ever."""

    def __init__(self) -> None:
        super().__init__()
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def update(self, step_ms, rules, bucket_ms, changed, families, live):
        if step_ms == HOUR_MS:
            self.started.set()
            await self.release.wait()
        return await super().update(step_ms, rules, bucket_ms, changed, families, live)


async def test_a_minute_is_stored_while_an_hour_pass_is_under_way(rules):
    store = MemoryStore()
    await store.open()
    evaluator = HeldHours()
    deriver = Deriver(store, rules, minute_retention_days=100_000, evaluator=evaluator, stale_scan_s=0.05)
    first = [make_sample("A", minute=0)]
    await store.commit("a", first)
    deriver.touch(first)
    task = asyncio.create_task(deriver.run())
    try:
        async with asyncio.timeout(10):
            await evaluator.started.wait()  # the hour pass is under way, and held
        later = [make_sample("B", minute=1)]
        await store.commit("b", later)
        deriver.touch(later)
        async with asyncio.timeout(10):
            while not await store.bucket_values(MINUTE_MS, T0 + MINUTE_MS):
                await asyncio.sleep(0.02)
        assert not evaluator.release.is_set()
        evaluator.release.set()
        async with asyncio.timeout(10):
            while not await store.bucket_values(HOUR_MS, T0 - T0 % HOUR_MS):
                await asyncio.sleep(0.02)  # and the hour pass ends with its values
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await store.close()
