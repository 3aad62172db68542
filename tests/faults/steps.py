"""Shared steps of the store fault tests: a receiver app on a faulty store, the emulator's
retries across the fault, and the check that every datapoint arrived exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson

from receiver.keys import TELEMETRY
from receiver.model import PERIOD_MS, Sample
from receiver.server.app import INGEST_PATH
from receiver.store import Store
from receiver_tools.emulator import EmulatorConfig, FirehoseEmulator, RetryPolicy
from receiver_tools.workload import TableSpec, Workload
from tests.apps import AppClient, receiver_app, serve_app
from tests.builders import Delivery


def workload_samples(minutes: int = 3, tables: int = 6) -> list[Sample]:
    """A few recent minutes (within every store's retention) of a small DynamoDB workload."""
    first_ms = (int(time.time() * 1000) // PERIOD_MS - 10) * PERIOD_MS
    workload = Workload(seed=5, tables=[TableSpec(name=f"Table{i}", indexes=("ByDate",)) for i in range(tables)])
    return [s for m in range(minutes) for s in workload.minute(first_ms + m * PERIOD_MS)]


@contextlib.asynccontextmanager
async def receiver_on(store: Store) -> AsyncIterator[AppClient]:
    async with serve_app(receiver_app(store)) as client:
        yield client


async def post_expecting_503(client: AppClient, samples: list[Sample], cause: str) -> str:
    """One delivery during the fault: 503 with Retry-After and a JSON answer naming ``cause``.

    Returns its request id, for ``assert_stored_exactly`` to check it was never committed
    (the store may not answer while the fault lasts)."""
    delivery = Delivery(samples)
    async with client.post(INGEST_PATH, data=delivery.body, headers=delivery.headers) as response:
        assert response.status == 503, await response.read()
        assert int(response.headers["Retry-After"]) > 0
        answer = orjson.loads(await response.read())
    assert answer["requestId"] == delivery.request_id
    assert "store is unavailable" in answer["errorMessage"] and cause in answer["errorMessage"], answer
    return delivery.request_id


def answered(client: AppClient, status: int) -> int:
    return dict(client.app[TELEMETRY].snapshot().requests_by_status).get(status, 0)


async def deliver_across_fault(
    client: AppClient, samples: list[Sample], clear_fault: Callable[[], Awaitable[None] | None]
) -> list:
    """The emulator sends ``samples`` while the fault lasts; once the receiver has refused a
    retry too, the fault is cleared and the emulator's retries must deliver every batch."""
    config = EmulatorConfig(
        url=client.base + INGEST_PATH,
        buffer_bytes=256 * 1024,
        retry=RetryPolicy(duration_s=3600),
        time_scale=0.02,  # backoff 20 ms doubling to 2.4 s; retries for 72 s
        seed=3,
    )
    refused_before = answered(client, 503)
    async with FirehoseEmulator(config) as stream:
        sending = asyncio.create_task(_send(stream, samples))
        deadline = time.monotonic() + 60
        while answered(client, 503) < refused_before + 2:
            assert time.monotonic() < deadline, "the receiver never refused the emulator's delivery"
            assert not sending.done() or sending.exception() is None, sending
            await asyncio.sleep(0.02)
        outcome = clear_fault()
        if outcome is not None:
            await outcome
        await sending
    assert [r.outcome for r in stream.results] == ["delivered"] * len(stream.results)
    assert any(r.attempts > 1 for r in stream.results)
    return stream.results


async def _send(stream: FirehoseEmulator, samples: list[Sample]) -> None:
    await stream.put_samples(samples)
    await stream.flush()


async def assert_stored_exactly(store: Store, samples: list[Sample], refused_id: str) -> None:
    """Every sample stored once with its values (no loss, nothing twice), and the delivery
    refused during the fault not committed."""
    assert not await store.is_committed(refused_id)
    # The sent minutes' range: the DynamoDB store reads minute partitions one by one.
    stored = await store.samples(min(s.start_ms for s in samples), max(s.start_ms for s in samples) + 1)
    assert len(stored) == len(samples) == await store.count_samples()
    want = {s.identity: (s.count, s.sum, s.min, s.max, s.stats) for s in samples}
    got = {s.identity: (s.count, s.sum, s.min, s.max, s.stats) for s in stored}
    assert got == want
