"""Streaming deliveries to running receivers and timing when their values can be queried.

Deliveries go out either at real time (each minute's deliveries spread over a wall minute,
as Firehose sends them) or accelerated (one after another, each as soon as the one before
was acknowledged). After each acknowledgement a poller asks the store for the delivery's
probe table's value of its minute; the delay is from the 200 to the first answer that holds
the value. The poller reads through the Store protocol in this process, which is the read
``GET /api/v1/query`` makes: asking a receiver over HTTP would count the benchmark's own
queries in the receiver's CPU, and at 2,000 tables each costs it about 0.18 s. One HTTP query
at the end checks that the API answers the same.

The CPU time of each receiver's process tree is read when the measured minutes start and
again at the end.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import aiohttp

from receiver.model import MINUTE_MS
from receiver.store import Store, open_store_from_url

from ..processes import Serve, cpu_seconds, peak_rss_bytes
from .account import Delivery

INGEST_PATH = "/aws/firehose/metrics"
PROBE_METRIC = "aws_dynamodb_endpoint_consumed_read_capacity_units"
"""Every table of the account reads, so every probe table has this value once derived."""
POLL_S = 0.25
"""How often the poller asks about the oldest delivery whose values it has not yet seen."""
QUERYABLE_TIMEOUT_S = 900.0
"""A delivery whose values cannot be queried this long after its ack fails the run."""
QUIET_CPU_S = 0.1
QUIET_WINDOW_S = 3.0
QUIET_TIMEOUT_S = 120.0
RETRY_503_S = 1.0
"""Wait before sending again a delivery answered 503 without Retry-After (as Firehose retries)."""
MAX_ATTEMPTS = 20
REAL_TIME_S = 60.0


@dataclass(slots=True)
class Sent:
    """One delivery and what happened to it."""

    delivery: Delivery
    replica: int
    acked_at: float = 0.0
    queryable_at: float = 0.0
    attempts: int = 0

    @property
    def delay_s(self) -> float:
        return self.queryable_at - self.acked_at


@dataclass(slots=True)
class Outcome:
    """What one stream measured."""

    sent: list[Sent]
    cpu_s: list[float]
    """Per receiver: CPU seconds of its process tree from the first delivery to the end."""
    wall_s: float
    peak_rss: list[int]
    worker_peak_rss: list[int]
    extra_cpu_s: dict[str, float] = field(default_factory=dict)
    """CPU seconds of other processes over the same span (dynalite)."""


CpuReading = tuple[list[float], dict[str, float]]
"""CPU seconds so far of each receiver's process tree, and of each other process by name."""


@dataclass(frozen=True, slots=True)
class _Span:
    """The measured part of a run: its deliveries, CPU readings at its ends, and wall time."""

    sent: list[Sent]
    before: CpuReading
    after: CpuReading
    wall_s: float


@dataclass(frozen=True, slots=True)
class Pace:
    """``minute_s`` wall seconds per emulated minute (60: real time), or None: accelerated."""

    minute_s: float | None

    @property
    def name(self) -> str:
        if self.minute_s is None:
            return "accelerated"
        if self.minute_s == REAL_TIME_S:
            return "real time"
        return f"a minute per {self.minute_s:g} s"


class Stream:
    """Sends deliveries to ``receivers`` (delivery i to receiver i mod their number) and
    polls the store at ``store_url`` (theirs) for their values. ``others`` are further
    processes whose CPU is also read and whose death fails the run (dynalite): name ->
    (pid, check)."""

    def __init__(
        self,
        receivers: Sequence[Serve],
        service: str,
        store_url: str,
        others: dict[str, tuple[int, Callable[[], None]]] | None = None,
    ) -> None:
        self.receivers = list(receivers)
        self.service = service
        self.store_url = store_url
        self.others = others or {}
        self._pending: list[Sent] = []
        self._arrived = asyncio.Event()
        self._poller: asyncio.Task[None] | None = None

    def check_alive(self) -> None:
        """Raise if a process ended, or the poller failed (a query answered an error)."""
        if self._poller is not None and self._poller.done() and not self._poller.cancelled():
            self._poller.result()
        for receiver in self.receivers:
            receiver.check_alive()
        for _, check in self.others.values():
            check()

    async def run(
        self, warmup: Sequence[Sequence[Delivery]], minutes: Sequence[Sequence[Delivery]], pace: Pace
    ) -> Outcome:
        """Stream the warm-up minutes (every series, so the receivers have seen them all, as
        receivers that have run a while have), then ``minutes``, at ``pace``; measure from
        the first of ``minutes`` to the last one's values."""
        timeout = aiohttp.ClientTimeout(total=600)
        store = open_store_from_url(self.store_url)
        await store.open()
        async with aiohttp.ClientSession(timeout=timeout) as session:
            self._poller = asyncio.create_task(self._poll(store))
            try:
                if pace.minute_s is None:
                    span = await self._accelerated(session, warmup, minutes)
                else:
                    span = await self._real_time(session, warmup, minutes, pace.minute_s)
                await self._check_api(session, span.sent[-1])
            finally:
                self._poller.cancel()
                await store.close()
        return Outcome(
            sent=span.sent,
            cpu_s=[b - a for a, b in zip(span.before[0], span.after[0], strict=True)],
            wall_s=span.wall_s,
            peak_rss=[peak_rss_bytes(r.pid) for r in self.receivers],
            worker_peak_rss=[max((peak_rss_bytes(w) for w in r.worker_pids()), default=0) for r in self.receivers],
            extra_cpu_s={name: span.after[1][name] - span.before[1][name] for name in self.others},
        )

    async def _accelerated(
        self,
        session: aiohttp.ClientSession,
        warmup: Sequence[Sequence[Delivery]],
        minutes: Sequence[Sequence[Delivery]],
    ) -> _Span:
        """The warm-up minutes sent and derived, and the receivers quiet; then every delivery
        as soon as the one before was acknowledged. The span ends when the last values are
        queryable and the receivers are quiet again: a deriver catching up is part of the
        cost. (A deriver that rests after a pass in proportion to it may still be resting
        from the warm-up's when the stream starts: its first values wait for that too.)"""
        warm = self._assign([delivery for minute in warmup for delivery in minute])
        await self._send_in_turn(session, warm)
        await self._until_queryable(warm)
        await self._until_quiet()
        before = self._cpu()
        started = time.monotonic()
        sent = self._assign([delivery for minute in minutes for delivery in minute], first=len(warm))
        await self._send_in_turn(session, sent)
        await self._until_queryable(sent)
        await self._until_quiet()
        return _Span(sent, before, self._cpu(), time.monotonic() - started)

    async def _real_time(
        self,
        session: aiohttp.ClientSession,
        warmup: Sequence[Sequence[Delivery]],
        minutes: Sequence[Sequence[Delivery]],
        minute_s: float,
    ) -> _Span:
        """The warm-up minutes streamed at the pace as the minutes before the others, so the
        receivers are mid-stream when the span starts, with the first minute. The span is
        the stream's wall minutes, or up to the last values if they come later."""
        warm = self._assign([delivery for minute in warmup for delivery in minute])
        sent = self._assign([delivery for minute in minutes for delivery in minute], first=len(warm))
        started = time.monotonic() + 0.5
        first = started + minute_s * len(warmup)
        before = asyncio.create_task(self._cpu_at(first))
        per_minute = [len(m) for m in warmup] + [len(m) for m in minutes]
        await self._send_on_time(session, per_minute, warm + sent, minute_s, started)
        await self._until_queryable(warm + sent)
        await self._sleep_until(first + minute_s * len(minutes))
        return _Span(sent, await before, self._cpu(), time.monotonic() - first)

    async def _cpu_at(self, at: float) -> CpuReading:
        await self._sleep_until(at)
        return self._cpu()

    def _assign(self, batch: Sequence[Delivery], first: int = 0) -> list[Sent]:
        """The n-th delivery of the run (counting from ``first``) goes to receiver n mod their number."""
        count = len(self.receivers)
        return [Sent(delivery, (first + index) % count) for index, delivery in enumerate(batch)]

    def _cpu(self) -> CpuReading:
        self.check_alive()
        return (
            [cpu_seconds(r.pid) for r in self.receivers],
            {name: cpu_seconds(pid) for name, (pid, _) in self.others.items()},
        )

    async def _send_in_turn(self, session: aiohttp.ClientSession, batch: Sequence[Sent]) -> None:
        for item in batch:
            await self._deliver(session, item)

    async def _send_on_time(
        self,
        session: aiohttp.ClientSession,
        per_minute: Sequence[int],
        sent: Sequence[Sent],
        minute_s: float,
        started: float,
    ) -> None:
        """Minute m's deliveries spread over wall minute m: delivery j of B at
        (j + 0.5 ± 0.3) / B of the minute, as Firehose flushes a buffer when it fills."""
        jitter = random.Random(19)
        tasks = []
        position = 0
        for index, count in enumerate(per_minute):
            for j in range(count):
                at = started + minute_s * (index + (j + 0.5 + jitter.uniform(-0.3, 0.3)) / count)
                tasks.append(asyncio.create_task(self._deliver_at(session, sent[position], at)))
                position += 1
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()

    async def _deliver_at(self, session: aiohttp.ClientSession, item: Sent, at: float) -> None:
        await self._sleep_until(at)
        await self._deliver(session, item)

    async def _sleep_until(self, at: float) -> None:
        while (left := at - time.monotonic()) > 0:
            self.check_alive()
            await asyncio.sleep(min(left, 1.0))

    async def _deliver(self, session: aiohttp.ClientSession, item: Sent) -> None:
        receiver = self.receivers[item.replica]
        delivery = item.delivery
        while True:
            item.attempts += 1
            try:
                async with session.post(
                    receiver.base_url + INGEST_PATH, data=delivery.body, headers=delivery.headers
                ) as response:
                    answer = await response.read()
                    status, retry_after = response.status, response.headers.get("Retry-After")
            except aiohttp.ClientError as error:
                self.check_alive()
                raise RuntimeError(f"receiver {receiver.name} failed a delivery: {error}") from error
            if status == 200:
                item.acked_at = time.monotonic()
                self._pending.append(item)
                self._arrived.set()
                return
            if status != 503 or item.attempts >= MAX_ATTEMPTS:
                raise RuntimeError(
                    f"receiver {receiver.name} answered {status} after {item.attempts} attempts: {answer[:300]!r}"
                )
            await asyncio.sleep(float(retry_after) if retry_after and retry_after.isdigit() else RETRY_503_S)

    async def _poll(self, store: Store) -> None:
        """Asks about acknowledged deliveries in the order of their acks; a later one is
        asked about once the earlier ones' values were seen."""
        while True:
            if not self._pending:
                self._arrived.clear()
                await self._arrived.wait()
            item = self._pending[0]
            if await self._values(store, item.delivery):
                item.queryable_at = time.monotonic()
                self._pending.pop(0)
                continue
            await asyncio.sleep(POLL_S)

    async def _values(self, store: Store, delivery: Delivery) -> bool:
        """Whether the store holds the probe table's value of the delivery's minute, as
        the query API reads it (the merged value of every region)."""
        minute_ms = delivery.minute_ms
        found = await store.derived(
            PROBE_METRIC, MINUTE_MS, minute_ms, minute_ms, service=self.service, endpoint=delivery.probe
        )
        return bool(found)

    async def _check_api(self, session: aiohttp.ClientSession, item: Sent) -> None:
        """The query API answers the value the poller found in the store."""
        minute_s = item.delivery.minute_ms // 1000
        params = {
            "metric": PROBE_METRIC,
            "service": self.service,
            "endpoint": item.delivery.probe,
            "start": str(minute_s),
            "end": str(minute_s),
        }
        receiver = self.receivers[item.replica]
        async with session.get(receiver.base_url + "/api/v1/query", params=params) as response:
            answer = await response.json()
        if response.status != 200 or not answer.get("points"):
            raise RuntimeError(
                f"receiver {receiver.name} answered {response.status} {answer} to a query of table "
                f"{item.delivery.probe} at minute {minute_s}, whose value its store holds"
            )

    async def _until_queryable(self, batch: Sequence[Sent]) -> None:
        while True:
            waiting = [item for item in batch if not item.queryable_at]
            if not waiting:
                return
            oldest = waiting[0]
            if oldest.acked_at and time.monotonic() - oldest.acked_at > QUERYABLE_TIMEOUT_S:
                logs = "\n".join(f"receiver {r.name}'s log ends:\n{r.log_tail()}" for r in self.receivers)
                raise RuntimeError(
                    f"the values of table {oldest.delivery.probe} for minute {oldest.delivery.minute_ms // 1000} "
                    f"were not queryable {QUERYABLE_TIMEOUT_S:.0f} s after its delivery was acknowledged\n{logs}"
                )
            self.check_alive()
            await asyncio.sleep(POLL_S)

    async def _until_quiet(self) -> None:
        """Until the receivers' trees used under QUIET_CPU_S in the last QUIET_WINDOW_S
        (at most QUIET_TIMEOUT_S): the work of what came before is done."""
        deadline = time.monotonic() + QUIET_TIMEOUT_S
        readings = [(time.monotonic(), self._total_cpu())]
        while time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            now, total = time.monotonic(), self._total_cpu()
            readings.append((now, total))
            older = [cpu for at, cpu in readings if at <= now - QUIET_WINDOW_S]
            if older and total - older[-1] < QUIET_CPU_S:
                return

    def _total_cpu(self) -> float:
        mine, others = self._cpu()
        return sum(mine) + sum(others.values())
