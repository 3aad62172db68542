"""Sends notifications in the background, with retries, so evaluation and ingest never wait.

The evaluator hands over each event it won; a worker task delivers it to every channel
(concurrently), retrying a failed delivery with exponential backoff and jitter. A delivery
that still fails, or an event that finds the queue full, is logged and counted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from receiver.alarms.channels import Channel, DeliveryError
from receiver.alarms.counters import AlarmCounters
from receiver.alarms.rules import AlarmRule
from receiver.backoff import Backoff
from receiver.model import AlarmEvent

log = logging.getLogger("receiver.alarms")

QUEUE_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often one notification is tried on one channel, and how far apart."""

    attempts: int = 5
    backoff: Backoff = Backoff(1.0, 60.0, jitter=(0.8, 1.2))
    """1 s doubling to 60 s, ±20 %: channels that failed together do not retry in step."""


class Notifier:
    def __init__(
        self, channels: Sequence[Channel], counters: AlarmCounters, retry: RetryPolicy = RetryPolicy()
    ) -> None:
        self.channels = list(channels)
        self._counters = counters
        self._retry = retry
        self._queue: asyncio.Queue[tuple[AlarmEvent, AlarmRule]] = asyncio.Queue(QUEUE_LIMIT)

    def submit(self, event: AlarmEvent, rule: AlarmRule) -> None:
        """Queue ``event`` for delivery; never blocks."""
        if not self.channels:
            return
        try:
            self._queue.put_nowait((event, rule))
        except asyncio.QueueFull:
            log.error("alarm notification dropped: the queue is full", extra={"rule": event.rule})
            for channel in self.channels:
                self._counters.delivery(channel.name, False)

    async def run(self) -> None:
        while True:
            event, rule = await self._queue.get()
            try:
                await self.deliver(event, rule)
            finally:
                self._queue.task_done()

    async def drain(self, timeout_s: float) -> bool:
        """Wait until the queue is delivered (or given up on); False after ``timeout_s``."""
        try:
            await asyncio.wait_for(self._queue.join(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def deliver(self, event: AlarmEvent, rule: AlarmRule) -> None:
        await asyncio.gather(*(self._deliver_one(channel, event, rule) for channel in self.channels))

    async def _deliver_one(self, channel: Channel, event: AlarmEvent, rule: AlarmRule) -> None:
        for attempt in range(1, self._retry.attempts + 1):
            try:
                await channel.send(event, rule)
            except DeliveryError as exc:
                last = attempt == self._retry.attempts or exc.permanent
                log.warning(
                    "alarm notification not delivered" + ("" if last else ", will retry"),
                    extra={"channel": channel.name, "rule": event.rule, "attempt": attempt, "error": str(exc)},
                )
                if last:
                    self._counters.delivery(channel.name, False)
                    return
                await asyncio.sleep(self._retry.backoff.delay_s(attempt))
            except Exception:  # a bug in a channel must not stop the worker
                log.exception("alarm notification failed", extra={"channel": channel.name, "rule": event.rule})
                self._counters.delivery(channel.name, False)
                return
            else:
                self._counters.delivery(channel.name, True)
                return
