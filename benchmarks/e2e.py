"""End to end: the receiver as its own process (``python -m receiver serve``), deliveries
POSTed over loopback by senders in this process, each answered 200 once SQLite committed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from receiver.server.app import INGEST_PATH

from .processes import Serve, peak_rss_bytes


def _receiver(database: Path, *options: str) -> Serve:
    """``python -m receiver serve`` on a fresh SQLite file (enter it to wait until it listens)."""
    database.parent.mkdir(parents=True, exist_ok=True)
    for stale in database.parent.glob(database.name + "*"):
        stale.unlink()
    return Serve("e2e", f"sqlite:///{database}", *options)


@dataclass(frozen=True, slots=True)
class Run:
    """What a set of senders measured."""

    datapoints: int
    seconds: float
    latencies_s: list[float]

    @property
    def datapoints_per_s(self) -> float:
        return self.datapoints / self.seconds

    def percentile_s(self, fraction: float) -> float:
        """Nearest-rank percentile of the request latencies."""
        ordered = sorted(self.latencies_s)
        rank = max(1, -(-int(fraction * 1000) * len(ordered) // 1000))
        return ordered[min(rank, len(ordered)) - 1]


Request = tuple[dict[str, str], bytes, int]
"""(headers, wire body, datapoints it carries)."""


async def _post(session: aiohttp.ClientSession, url: str, request: Request) -> float:
    headers, body, _ = request
    started = time.perf_counter()
    async with session.post(url, data=body, headers=headers) as response:
        answer = await response.read()
        if response.status != 200:
            raise RuntimeError(f"the receiver answered {response.status}: {answer[:300]!r}")
    return time.perf_counter() - started


async def _send(url: str, warmup: Request | None, per_sender: Sequence[Sequence[Request]]) -> Run:
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        if warmup is not None:
            await _post(session, url, warmup)
        latencies: list[float] = []

        async def sender(requests: Sequence[Request]) -> None:
            for request in requests:
                latencies.append(await _post(session, url, request))

        started = time.perf_counter()
        await asyncio.gather(*(sender(requests) for requests in per_sender))
        seconds = time.perf_counter() - started
    datapoints = sum(request[2] for requests in per_sender for request in requests)
    return Run(datapoints, seconds, latencies)


def measure(database: Path, warmup: Request | None, per_sender: Sequence[Sequence[Request]]) -> Run:
    """Start a fresh receiver, warm it with one delivery, then time the senders."""
    with _receiver(database) as receiver:
        return asyncio.run(_send(receiver.base_url + INGEST_PATH, warmup, per_sender))


async def _statuses(url: str, requests: Sequence[Request]) -> list[int]:
    """Send ``requests`` at once; the status each was answered with."""

    async def one(session: aiohttp.ClientSession, request: Request) -> int:
        headers, body, _ = request
        async with session.post(url, data=body, headers=headers) as response:
            await response.read()
            return response.status

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as session:
        return list(await asyncio.gather(*(one(session, request) for request in requests)))


def peak_rss_concurrent(database: Path, requests: Sequence[Request], budget_mib: int) -> tuple[int, list[int]]:
    """(VmHWM, statuses) of a fresh receiver with ``--max-inflight-mib budget_mib`` sent
    ``requests`` all at once: those past the budget are answered 503, as Firehose retries."""
    with _receiver(database, "--max-inflight-mib", str(budget_mib)) as receiver:
        statuses = asyncio.run(_statuses(receiver.base_url + INGEST_PATH, requests))
        return peak_rss_bytes(receiver.pid), statuses


def peak_rss(database: Path, request: Request) -> tuple[int, int]:
    """(VmHWM after start-up, VmHWM after taking ``request``) of a fresh receiver, bytes."""
    with _receiver(database) as receiver:
        time.sleep(0.5)  # let start-up work settle before the baseline
        before = peak_rss_bytes(receiver.pid)
        asyncio.run(_send(receiver.base_url + INGEST_PATH, None, [[request]]))
        return before, peak_rss_bytes(receiver.pid)
