"""A stand-in for the AWS side: a CloudWatch metric stream delivered by Amazon Data Firehose.

It follows AWS's "HTTP endpoint delivery request and response specifications" and the
documented delivery-failure handling for HTTP endpoint destinations:

* Samples are encoded in the stream's format as CloudWatch frames them (with the labels
  CloudWatch adds: the exporter ARN in the OpenTelemetry formats, the stream name in
  ``json``) into records of at most 1,024,000 bytes. Records are buffered and sent when the
  buffer reaches its size hint or 10,000 records, or when its oldest record is older than the
  interval hint; ``flush`` sends what is buffered.
* A request carries ``X-Amz-Firehose-Request-Id`` (kept across retries, as the body is),
  ``-Access-Key``, ``-Source-Arn``, ``-Protocol-Version: 1.0`` and ``-Common-Attributes``;
  the body may be gzipped. HTTPS verifies the server against a given CA (TLS 1.2+).
* Only a 200 whose body is JSON (``Content-Type: application/json``, not content-encoded,
  under 1 MiB) with the request's ``requestId`` and a numeric ``timestamp`` is a success.
  413 is a permanent failure: the batch is dropped without backup. Anything else is
  retried with a backoff of 1 s doubling, ±15 % jitter, capped at 2 minutes, until the retry
  duration (counted from the first failure) runs out; then every record of the batch is
  written as Firehose's S3 error output to a folder or an ``s3://bucket/prefix``.
* ``time_scale`` multiplies every duration of Firehose's clock (backoff, retry duration,
  buffer interval) so tests can run a five-minute retry window in a fraction of a second.

Deliveries go one at a time, in order.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp

from receiver.backoff import Backoff
from receiver.firehose import envelope
from receiver.formats import FORMATS, encode_records
from receiver.model import Pairs, Sample
from receiver_tools.error_output import ErrorOutput, error_documents
from receiver_tools.firehose_request import (
    RESPONSE_TIMEOUT_S,
    Attempt,
    ProgressHook,
    Request,
    build_request,
    client_ssl_context,
    send_once,
)

log = logging.getLogger("receiver_tools.emulator")

MIB = 1024 * 1024
DEFAULT_BUFFER_BYTES = 5 * MIB
"""Firehose's default buffering size for HTTP endpoints (1 to 64 MiB)."""
DEFAULT_BUFFER_INTERVAL_S = 300.0
"""Firehose's default buffering interval for HTTP endpoints (0 to 900 s)."""
DEFAULT_RETRY_DURATION_S = 300.0
"""Firehose's default retry duration for HTTP endpoints (0 to 7200 s)."""


# ---- configuration ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Firehose's retries for an HTTP endpoint: exponential backoff within a retry window."""

    duration_s: float = DEFAULT_RETRY_DURATION_S
    backoff: Backoff = Backoff(1.0, jitter=(0.85, 1.15))
    """1 s doubling, ±15 %, uncapped: the cap below bounds the jittered wait."""
    max_backoff_s: float = 120.0
    """No wait is longer than 2 minutes, jitter included, so the cap comes after the jitter."""

    def backoff_s(self, failures: int, rng: random.Random) -> float:
        """The wait after the ``failures``-th failed attempt (1 for the first)."""
        return min(self.backoff.delay_s(failures, rng), self.max_backoff_s)


@dataclass(frozen=True, slots=True)
class EmulatorConfig:
    """A Firehose delivery stream with an HTTP endpoint destination."""

    url: str
    """The full endpoint URL (``https://host/aws/firehose/metrics``; ``http://`` for local use)."""
    access_key: str | None = None
    record_format: str = "opentelemetry0.7"
    buffer_bytes: int = DEFAULT_BUFFER_BYTES
    """Buffering size hint. Firehose allows 1 to 64 MiB; smaller values are for tests."""
    buffer_interval_s: float = DEFAULT_BUFFER_INTERVAL_S
    gzip: bool = False
    """``ContentEncoding: GZIP`` of the destination."""
    retry: RetryPolicy = RetryPolicy()
    time_scale: float = 1.0
    """Multiplies backoff, retry duration and buffer interval (tests: e.g. 0.01)."""
    response_timeout_s: float = RESPONSE_TIMEOUT_S
    ca_file: Path | None = None
    """Verify HTTPS servers against this CA bundle instead of the system's."""
    common_attributes: Pairs = ()
    stream_name: str = "receiver-emulator"
    """The Firehose stream's name, in the source ARN and in error output object names."""
    metric_stream_name: str = "emulated-metric-stream"
    source_region: str = "us-east-1"
    source_account: str = "123456789012"
    error_output: str | None = None
    """A folder or ``s3://bucket/prefix`` for records that could not be delivered."""
    max_record_bytes: int = envelope.MAX_RECORD_BYTES
    seed: int | None = None
    """Seeds the backoff jitter; None for a random one."""

    def __post_init__(self) -> None:
        scheme = urlsplit(self.url).scheme
        if scheme not in ("http", "https") or not urlsplit(self.url).netloc:
            raise ValueError(f"the endpoint URL {self.url!r} must be an http:// or https:// URL")
        if self.record_format not in FORMATS:
            raise ValueError(f"record format {self.record_format!r} is not one of {', '.join(FORMATS)}")
        if not 0 < self.buffer_bytes <= envelope.MAX_BUFFER_BYTES:
            raise ValueError(f"the buffer size must be from 1 byte to 64 MiB, not {self.buffer_bytes}")
        if not 0 <= self.buffer_interval_s <= 900:
            raise ValueError(f"the buffer interval must be 0 to 900 seconds, not {self.buffer_interval_s}")
        if not 0 <= self.retry.duration_s <= 7200:
            raise ValueError(f"the retry duration must be 0 to 7200 seconds, not {self.retry.duration_s}")
        if not self.time_scale > 0:
            raise ValueError(f"the time scale must be above 0, not {self.time_scale}")
        if not 0 < self.max_record_bytes <= envelope.MAX_RECORD_BYTES:
            raise ValueError(f"records hold 1 to {envelope.MAX_RECORD_BYTES} bytes, not {self.max_record_bytes}")

    @property
    def source_arn(self) -> str:
        return f"arn:aws:firehose:{self.source_region}:{self.source_account}:deliverystream/{self.stream_name}"


# ---- the delivery stream ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What became of one batch of records."""

    request_id: str
    records: int
    body_bytes: int
    attempts: int
    outcome: str
    """``delivered``, ``error-output`` (written after the retries), ``dropped`` (413) or
    ``lost`` (retries ran out and no error output is configured)."""
    error_code: str | None = None
    error_message: str | None = None
    error_object: str | None = None


@dataclass(slots=True)
class _Buffered:
    records: list[bytes] = field(default_factory=list)
    arrivals_ms: list[int] = field(default_factory=list)
    size: int = 0
    first_at: float = 0.0


@dataclass(frozen=True, slots=True)
class Hooks:
    """Observation points, e.g. for a test that interrupts a delivery half-way."""

    body_progress: ProgressHook | None = None


class FirehoseEmulator:
    """A Firehose delivery stream: ``async with FirehoseEmulator(config) as stream: ...``.

    Leaving the block normally delivers what is still buffered.
    """

    def __init__(self, config: EmulatorConfig, hooks: Hooks = Hooks()) -> None:
        self.config = config
        self.hooks = hooks
        self.results: list[BatchResult] = []
        self._rng = random.Random(config.seed)
        self._buffer = _Buffered()
        self._lock = asyncio.Lock()
        self._session: aiohttp.ClientSession | None = None
        self._ssl = client_ssl_context(config.ca_file) if config.url.startswith("https:") else None
        self._error_output = ErrorOutput(config.error_output) if config.error_output else None
        self._timer: asyncio.Task[None] | None = None
        self._arrived = asyncio.Event()
        self._labels: dict[tuple[str, str], Pairs] = {}

    async def __aenter__(self) -> FirehoseEmulator:
        await self.start()
        return self

    async def __aexit__(self, exc_type: object, *exc: object) -> None:
        try:
            if exc_type is None:
                await self.flush()
        finally:
            await self.close()

    async def start(self) -> None:
        if self._session is None:
            # Firehose reads the answer as sent: no transparent decompression.
            self._session = aiohttp.ClientSession(auto_decompress=False)
            self._timer = asyncio.create_task(self._interval_flusher(), name="firehose-buffer-interval")

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            await asyncio.gather(self._timer, return_exceptions=True)
            self._timer = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- input --------------------------------------------------------------------------

    async def put_samples(self, samples: Iterable[Sample]) -> int:
        """Encode ``samples`` as the metric stream would and buffer them; return the records made."""
        records = encode_records(
            (self._with_stream_labels(s) for s in samples),
            self.config.record_format,
            max_record_bytes=self.config.max_record_bytes,
        )
        await self.put_records(records)
        return len(records)

    async def put_records(self, records: Iterable[bytes]) -> None:
        """Buffer records, delivering whenever the buffer reaches its size or record limit."""
        for record in records:
            if not 0 < len(record) <= envelope.MAX_RECORD_BYTES:
                raise ValueError(f"a Firehose record holds 1 to {envelope.MAX_RECORD_BYTES} bytes, not {len(record)}")
            buffered = self._buffer
            if buffered.records and (
                buffered.size + len(record) > self.config.buffer_bytes or len(buffered.records) >= envelope.MAX_RECORDS
            ):
                await self._ship()
                buffered = self._buffer
            if not buffered.records:
                buffered.first_at = time.monotonic()
                self._arrived.set()
            buffered.records.append(record)
            buffered.arrivals_ms.append(int(time.time() * 1000))
            buffered.size += len(record)
        if self._buffer.size >= self.config.buffer_bytes:
            await self._ship()

    async def flush(self) -> None:
        """Deliver everything buffered now; return when no delivery is in flight."""
        while True:
            await self._ship()  # takes the lock, so a delivery the interval timer began ends first
            if not self._buffer.records:
                return

    @property
    def buffered_records(self) -> int:
        return len(self._buffer.records)

    def _with_stream_labels(self, sample: Sample) -> Sample:
        series = sample.series
        key = (series.account, series.region)
        labels = self._labels.get(key)
        if labels is None:
            if self.config.record_format == "json":
                own: dict[str, str] = {"metric_stream_name": self.config.metric_stream_name}
            else:
                own = {
                    "aws.exporter.arn": f"arn:aws:cloudwatch:{series.region}:{series.account}:"
                    f"metric-stream/{self.config.metric_stream_name}",
                    "cloud.provider": "aws",
                }
            labels = self._labels[key] = tuple(sorted(own.items()))
        if sample.labels:
            merged = dict(labels) | dict(sample.labels)
            return sample._replace(labels=tuple(sorted(merged.items())))
        return sample._replace(labels=labels)

    # -- delivery -----------------------------------------------------------------------

    async def _interval_flusher(self) -> None:
        interval = self.config.buffer_interval_s * self.config.time_scale
        while True:
            if not self._buffer.records:
                self._arrived.clear()
                await self._arrived.wait()
                continue
            due = self._buffer.first_at + interval - time.monotonic()
            if due > 0:
                await asyncio.sleep(due)  # the buffer may be sent by size meanwhile: look again
                continue
            try:
                await self._ship()
            except Exception:
                log.exception("delivery on the buffer interval failed")

    async def _ship(self) -> None:
        async with self._lock:
            buffered = self._buffer
            if not buffered.records:
                return
            self._buffer = _Buffered()
            self.results.append(await self._deliver(buffered.records, buffered.arrivals_ms))

    async def _deliver(self, records: list[bytes], arrivals_ms: list[int]) -> BatchResult:
        if self._session is None:
            raise RuntimeError("the emulator is not started; use it with 'async with'")
        config = self.config
        request = build_request(
            records,
            access_key=config.access_key,
            source_arn=config.source_arn,
            common_attributes=config.common_attributes,
            compress=config.gzip,
        )
        attempts = 0
        deadline: float | None = None
        while True:
            attempts += 1
            attempt = await send_once(
                self._session,
                config.url,
                request,
                timeout_s=config.response_timeout_s,
                ssl_context=self._ssl,
                progress=self._progress(request.request_id, attempts, len(request.body)),
            )
            if attempt.ok:
                return BatchResult(request.request_id, len(records), len(request.body), attempts, "delivered")
            log.warning(
                "delivery attempt failed",
                extra={
                    "request_id": request.request_id,
                    "attempt": attempts,
                    "error_code": attempt.error_code,
                    "error": attempt.error_message,
                },
            )
            if attempt.permanent:
                return BatchResult(
                    request.request_id,
                    len(records),
                    len(request.body),
                    attempts,
                    "dropped",
                    attempt.error_code,
                    attempt.error_message,
                )
            now = time.monotonic()
            if deadline is None:  # the retry duration starts when the first attempt fails
                deadline = now + config.retry.duration_s * config.time_scale
            wait = config.retry.backoff_s(attempts, self._rng) * config.time_scale
            if now + wait > deadline:
                break
            await asyncio.sleep(wait)
        return await self._give_up(request, records, arrivals_ms, attempts, attempt)

    async def _give_up(
        self, request: Request, records: list[bytes], arrivals_ms: list[int], attempts: int, last: Attempt
    ) -> BatchResult:
        where = None
        if self._error_output is not None:
            documents = error_documents(records, arrivals_ms, attempts, last, int(time.time() * 1000))
            where = await self._error_output.write(self.config.stream_name, documents)
        outcome = "error-output" if where else "lost"
        log.warning(
            "retry duration ran out",
            extra={"request_id": request.request_id, "records": len(records), "outcome": outcome},
        )
        return BatchResult(
            request.request_id,
            len(records),
            len(request.body),
            attempts,
            outcome,
            last.error_code,
            last.error_message,
            where,
        )

    def _progress(self, request_id: str, attempt: int, total: int) -> Callable[[int], Awaitable[None]] | None:
        hook = self.hooks.body_progress
        if hook is None:
            return None

        async def report(sent: int) -> None:
            await hook(request_id, attempt, sent, total)

        return report
