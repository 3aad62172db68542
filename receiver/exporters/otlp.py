"""Pushing each completed minute's derived values to an OTLP/HTTP metrics endpoint.

The deriver calls ``on_derived`` after it stored a bucket's values. A minute bucket is then
marked *pending* — a set keyed by minute, so repeated changes of a minute coalesce into one
send — and nothing else happens on the deriver's (or ingest's) path. One background task
sends the pending minutes, oldest first, one minute per request (split past
``max_points_per_request``), reading the values from the store at send time, so a send
carries the newest values of its minute.

- **Complete.** A minute is exported once it is complete: all its expected series arrived,
  or it ended at least ``settle_s`` ago (receiver/derive/completeness.py); a minute that
  changes before that is sent once, when complete. A minute that changes after it was sent
  (late data) is pending again and sent again; a recomputation that gives the same values
  (a Firehose retry, a duplicate) is not sent again.
- **Failures.** 429, 502, 503, 504, a timeout or a connection error are retried, the
  same minute, with exponential backoff and jitter, or after ``Retry-After`` when the
  answer has one. Any other 4xx/5xx is not retried (OTLP/HTTP says so): that minute is
  counted as rejected and logged. A 200 with ``partial_success`` is not retried; its
  rejected points are counted and logged.
- **Bound.** At most ``max_pending`` minutes wait, besides the one being sent. Past it the
  oldest waiting minute (by its start) is dropped, counted in ``dropped_minutes`` and
  logged; its values stay in the store and the query API, and it is queued again only if
  it changes again. The minute on the wire is not in the queue: if its try fails it goes
  back, and is dropped then if it is the oldest of too many.
- **Stop.** ``flush`` sends what is pending, complete or not (after a stop nothing would
  send it), one try per minute, for at most ``flush_timeout_s``; what is left is counted
  in ``unsent_at_stop`` and logged. The queue lives in memory: a crash loses it.
"""

from __future__ import annotations

import asyncio
import email.utils
import gzip
import hashlib
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from urllib.parse import urlsplit

import aiohttp

from receiver.backoff import Backoff
from receiver.derive.completeness import Completeness
from receiver.exporters.otlp_encode import (
    MAX_POINTS_PER_REQUEST,
    encode_minute,
    failure_message,
    partial_success,
)
from receiver.inventory.tags import Labeller, TagLabels, no_tags
from receiver.model import DEFAULT_SETTLE_S, MINUTE_MS, DerivedValue
from receiver.rules import MetricInfo, RuleHolder
from receiver.store import Store, StoreError

log = logging.getLogger("receiver.otlp")

RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
"""The statuses OTLP/HTTP says to retry; every other 4xx and 5xx must not be."""

PROTOBUF = "application/x-protobuf"
MAX_ANSWER_BYTES = 64 * 1024
"""Of an answer body we read at most this much: it is a short status or response message."""


@dataclass(frozen=True, slots=True)
class OtlpExportSettings:
    """Where and how to export; only ``url`` is a serve option, the rest are tuning."""

    url: str
    """The full OTLP/HTTP metrics URL, e.g. ``http://collector:4318/v1/metrics``."""
    settle_s: float = DEFAULT_SETTLE_S
    """A minute is complete once it ended this long ago: the same notion, and default, as
    the "latest complete minute" of ``/metrics`` (see receiver/model.py for why 300 s)."""
    max_pending: int = 1440
    """Minutes waiting to be sent (a day of them); past it the oldest is dropped."""
    timeout_s: float = 10.0
    """Limit of one request, connecting included."""
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 60.0
    retry_after_max_s: float = 600.0
    """A ``Retry-After`` longer than this is cut to it."""
    flush_timeout_s: float = 10.0
    """The most a stop spends sending what is pending."""
    idle_poll_s: float = 1.0
    """How often a waiting exporter re-reads the clock (a minute may have become complete)."""
    compress: bool = True
    """Send request bodies gzip-compressed."""
    max_points_per_request: int = MAX_POINTS_PER_REQUEST

    @property
    def backoff(self) -> Backoff:
        """Waits between tries of a failing minute: a random point in the upper half of the
        doubling ceiling, so exporters that failed together spread out yet none retries at once."""
        return Backoff(self.backoff_initial_s, self.backoff_max_s, jitter=(0.5, 1.0))


def export_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be an OTLP/HTTP export URL, or None if it can."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("http", "https"):
        return "is not an http or https URL"
    if not parts.hostname:
        return "has no host"
    return None


@dataclass(slots=True)
class ExportCounters:
    """What the exporter did since start; read them, never write them."""

    sent_minutes: int = 0
    sent_points: int = 0
    requests: int = 0
    retries: int = 0
    unchanged_minutes: int = 0
    """Minutes recomputed to the values already sent, so not sent again."""
    dropped_minutes: int = 0
    """Pending minutes dropped because more than ``max_pending`` were waiting."""
    rejected_minutes: int = 0
    """Minutes the backend refused with a status that must not be retried."""
    rejected_points: int = 0
    """Points a backend refused in a partial success."""
    unsent_at_stop: int = 0


class _Result(Enum):
    SENT = "sent"
    RETRY = "retry"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class _Answer:
    result: _Result
    detail: str = ""
    retry_after_s: float | None = None


def retry_after_s(header: str | None, now_s: float) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (delay-seconds or HTTP-date), or None."""
    if not header:
        return None
    header = header.strip()
    if header.isdigit():
        return float(header)
    try:
        when = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now_s)


async def _read_capped(content: aiohttp.StreamReader, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await content.read(limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _minute_text(minute_ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(minute_ms // 1000))


@dataclass(frozen=True, slots=True)
class _Prepared:
    bodies: tuple[bytes, ...]
    points: int
    digest: bytes


class OtlpExporter:
    """Sends completed minutes to one OTLP/HTTP endpoint (see the module docstring)."""

    def __init__(
        self,
        settings: OtlpExportSettings,
        store: Store,
        rules: RuleHolder,
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        tags: TagLabels | None = None,
        completeness: Completeness | None = None,
    ) -> None:
        """``tags``: the table tags to add to each data point (``--inventory-tag-labels``).
        ``completeness``: which minutes are complete (receiver/derive/completeness.py); without
        it, those that ended ``settings.settle_s`` ago."""
        self.settings = settings
        self.store = store
        self.rules = rules
        self.tags = tags
        self.clock = clock
        self.counters = ExportCounters()
        self._rng = rng or random.Random()
        self._pending: set[int] = set()
        """Minutes waiting to be sent; the one being sent is not among them."""
        self._sent: dict[int, bytes] = {}
        """Minute -> digest of what was last sent for it, for the newest minutes."""
        self._wake = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None
        self._failures = 0
        self.completeness = completeness if completeness is not None else Completeness(settings.settle_s, clock)
        self.completeness.on_complete(self._wake.set)

    @property
    def pending(self) -> list[int]:
        """The minutes waiting to be sent, ascending."""
        return sorted(self._pending)

    # -- the deriver's side: no I/O, no await ----------------------------------------

    def on_derived(self, step_ms: int, bucket_ms: int) -> None:
        """The deriver's listener: a minute's values were stored; queue it."""
        if step_ms != MINUTE_MS:
            return
        self._queue(bucket_ms)
        self._wake.set()

    def _queue(self, minute: int) -> None:
        self._pending.add(minute)
        if len(self._pending) > self.settings.max_pending:
            oldest = min(self._pending)
            self._pending.discard(oldest)
            self.counters.dropped_minutes += 1
            log.warning(
                "OTLP export queue full: the oldest pending minute is dropped",
                extra={
                    "minute": _minute_text(oldest),
                    "max_pending": self.settings.max_pending,
                    "dropped_minutes": self.counters.dropped_minutes,
                },
            )

    def is_complete(self, minute_ms: int) -> bool:
        """Whether the minute starting at ``minute_ms`` is complete: its expected series are
        in, or it ended at least ``settle_s`` ago."""
        return self.completeness.is_complete(minute_ms, int(self.clock() * 1000))

    # -- the sender --------------------------------------------------------------------

    async def run(self) -> None:
        """Send complete pending minutes until cancelled."""
        if urlsplit(self.settings.url).path in ("", "/"):
            log.warning(
                "the OTLP export URL has no path; OTLP/HTTP metrics usually go to /v1/metrics",
                extra={"url": self.settings.url},
            )
        while True:
            self._wake.clear()
            ready = [minute for minute in self._pending if self.is_complete(minute)]
            if not ready:
                await self._wait_for_work()
                continue
            answer = await self._export(min(ready))
            if answer.result is _Result.RETRY:
                self._failures += 1
                self.counters.retries += 1
                delay = self._retry_delay(answer)
                log.warning(
                    "OTLP export failed, will retry",
                    extra={
                        "reason": answer.detail,
                        "retry_in_s": round(delay, 3),
                        "failures": self._failures,
                        "pending": len(self._pending),
                    },
                )
                await asyncio.sleep(delay)
            elif self._failures:
                log.info("OTLP export works again", extra={"after_failures": self._failures})
                self._failures = 0

    async def flush(self) -> None:
        """Send everything pending, complete or not, one try each, within ``flush_timeout_s``;
        then close the HTTP session. Call it once, after ``run`` was cancelled."""
        try:
            async with asyncio.timeout(self.settings.flush_timeout_s):
                while self._pending:
                    answer = await self._export(min(self._pending))
                    if answer.result is _Result.RETRY:
                        log.warning("OTLP export failed while stopping", extra={"reason": answer.detail})
                        break
        except TimeoutError:
            pass
        finally:
            if self._pending:
                self.counters.unsent_at_stop += len(self._pending)
                log.warning(
                    "stopping with minutes not exported over OTLP",
                    extra={"unsent_minutes": len(self._pending), "oldest": _minute_text(min(self._pending))},
                )
            if self._session is not None:
                await self._session.close()
                self._session = None

    async def _wait_for_work(self) -> None:
        if not self._pending:
            await self._wake.wait()
            return
        next_complete_s = (min(self._pending) + MINUTE_MS) / 1000 + self.settings.settle_s - self.clock()
        timeout = max(0.0, min(next_complete_s, self.settings.idle_poll_s))
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancel that
        # comes as the event is set (CPython gh-86296), and stopping would then hang.
        try:
            async with asyncio.timeout(timeout):
                await self._wake.wait()
        except TimeoutError:
            pass

    def _retry_delay(self, answer: _Answer) -> float:
        settings = self.settings
        if answer.retry_after_s is not None:
            return min(max(answer.retry_after_s, settings.backoff_initial_s), settings.retry_after_max_s)
        return settings.backoff.delay_s(self._failures, self._rng)

    async def _export(self, minute: int) -> _Answer:
        """One try at sending one pending minute. While it is on the wire the minute is out
        of the queue (a change meanwhile queues it again, to be sent again); it goes back
        if the try must be retried or is cut off, unless it is queued already."""
        self._pending.discard(minute)
        try:
            answer = await self._try(minute)
        except Exception:
            # A bug, not the backend: skip the minute rather than stop exporting or loop on it.
            log.exception(
                "exporting a minute failed unexpectedly; it is skipped", extra={"minute": _minute_text(minute)}
            )
            self.counters.rejected_minutes += 1
            return _Answer(_Result.REJECTED, "unexpected error")
        except BaseException:  # cancelled: stopping, or the flush ran out of time
            if minute not in self._pending:
                self._queue(minute)
            raise
        if answer.result is _Result.RETRY and minute not in self._pending:
            self._queue(minute)
        return answer

    async def _try(self, minute: int) -> _Answer:
        try:
            values = await self.store.bucket_values(MINUTE_MS, minute)
        except StoreError as exc:
            return _Answer(_Result.RETRY, f"reading the minute from the store failed: {exc}")
        if not values:
            # Past retention, or every entity of the minute lost its data: nothing to say.
            return _Answer(_Result.SENT)
        tags = await self.tags.labeller() if self.tags is not None else no_tags
        prepared = await asyncio.to_thread(self._prepare, values, self.rules.current.metric, tags)
        if self._sent.get(minute) == prepared.digest:
            self.counters.unchanged_minutes += 1
            return _Answer(_Result.SENT)
        for body in prepared.bodies:
            answer = await self._post(body)
            if answer.result is _Result.RETRY:
                return answer
            if answer.result is _Result.REJECTED:
                self.counters.rejected_minutes += 1
                log.error(
                    "the OTLP endpoint refused a minute; it is not retried",
                    extra={"minute": _minute_text(minute), "reason": answer.detail, "url": self.settings.url},
                )
                return answer
        self.counters.sent_minutes += 1
        self.counters.sent_points += prepared.points
        self._remember(minute, prepared.digest)
        return _Answer(_Result.SENT)

    def _prepare(
        self, values: Sequence[DerivedValue], describe: Callable[[str], MetricInfo | None], tags: Labeller
    ) -> _Prepared:
        """Encode, serialize, digest and compress (on a worker thread: a minute can be large)."""
        requests = encode_minute(values, describe, self.settings.max_points_per_request, tags)
        raw = [request.SerializeToString(deterministic=True) for request in requests]
        digest = hashlib.blake2b(digest_size=16)
        for body in raw:
            digest.update(len(body).to_bytes(8, "big"))
            digest.update(body)
        bodies = tuple(gzip.compress(body, 6) for body in raw) if self.settings.compress else tuple(raw)
        return _Prepared(bodies, len(values), digest.digest())

    async def _post(self, body: bytes) -> _Answer:
        headers = {"Content-Type": PROTOBUF}
        if self.settings.compress:
            headers["Content-Encoding"] = "gzip"
        self.counters.requests += 1
        try:
            async with self._client().post(self.settings.url, data=body, headers=headers) as response:
                answer = await _read_capped(response.content, MAX_ANSWER_BYTES)
                return self._judge(response.status, response.headers, answer)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return _Answer(_Result.RETRY, f"{type(exc).__name__}: {exc}".rstrip(": "))

    def _judge(self, status: int, headers: Mapping[str, str], body: bytes) -> _Answer:
        content_type = headers.get("Content-Type", "").split(";")[0].strip().lower()
        if 200 <= status < 300:
            partial = partial_success(body) if content_type == PROTOBUF else None
            if partial is not None:
                self.counters.rejected_points += partial.rejected_points
                log.warning(
                    "the OTLP endpoint accepted a minute only in part",
                    extra={"rejected_points": partial.rejected_points, "reason": partial.message},
                )
            return _Answer(_Result.SENT)
        reason = f"HTTP {status}"
        message = failure_message(body, content_type)
        if message:
            reason += f": {message}"
        if status in RETRYABLE_STATUSES:
            return _Answer(_Result.RETRY, reason, retry_after_s(headers.get("Retry-After"), self.clock()))
        if status in (404, 405):
            reason += " (is the URL the full metrics path, e.g. /v1/metrics?)"
        return _Answer(_Result.REJECTED, reason)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.settings.timeout_s))
        return self._session

    def _remember(self, minute: int, digest: bytes) -> None:
        self._sent[minute] = digest
        # Late data comes within hours; keep digests for as many minutes as may be pending.
        while len(self._sent) > self.settings.max_pending:
            del self._sent[min(self._sent)]
