"""End to end: the receiver as its own process (``python -m receiver serve``), deliveries
POSTed over loopback by senders in this process, each answered 200 once SQLite committed."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
_LISTENING = re.compile(r"listening.*?https?://[\d.]+:(?P<port>\d+)")


def peak_rss_bytes(pid: int | str = "self") -> int:
    """VmHWM: the most resident memory a process has had."""
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"/proc/{pid}/status has no VmHWM line")
    return int(match[1]) * 1024


class Receiver:
    """One ``python -m receiver serve`` on a free loopback port with its own SQLite file."""

    def __init__(self, database: Path, *options: str) -> None:
        database.parent.mkdir(parents=True, exist_ok=True)
        for stale in database.parent.glob(database.name + "*"):
            stale.unlink()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "receiver",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--store",
                f"sqlite:///{database}",
                "--allow-unauthenticated",
                *options,
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self.port = 0
        self._listening = threading.Event()
        threading.Thread(target=self._collect, daemon=True).start()

    def _collect(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))
            match = _LISTENING.search(line)
            if match and not self._listening.is_set():
                self.port = int(match["port"])
                self._listening.set()

    def wait_listening(self, timeout: float = 60) -> Receiver:
        deadline = time.monotonic() + timeout
        while not self._listening.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the receiver did not start:\n" + "\n".join(self.lines[-20:]))
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/aws/firehose/metrics"

    def peak_rss_bytes(self) -> int:
        return peak_rss_bytes(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def __enter__(self) -> Receiver:
        return self.wait_listening()

    def __exit__(self, *exc: object) -> None:
        self.stop()


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
    with Receiver(database) as receiver:
        return asyncio.run(_send(receiver.url, warmup, per_sender))


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
    with Receiver(database, "--max-inflight-mib", str(budget_mib)) as receiver:
        statuses = asyncio.run(_statuses(receiver.url, requests))
        return receiver.peak_rss_bytes(), statuses


def peak_rss(database: Path, request: Request) -> tuple[int, int]:
    """(VmHWM after start-up, VmHWM after taking ``request``) of a fresh receiver, bytes."""
    with Receiver(database) as receiver:
        time.sleep(0.5)  # let start-up work settle before the baseline
        before = receiver.peak_rss_bytes()
        asyncio.run(_send(receiver.url, None, [[request]]))
        return before, receiver.peak_rss_bytes()
