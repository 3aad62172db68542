"""The Firehose endpoint's counters: deliveries by status, what they carried, how long they took.

The ingest handler records one report per Firehose delivery; the Prometheus view reads a
snapshot at scrape time (through ``app[TELEMETRY]``). Both run on the event loop's thread, so plain integers need no
lock. Recording never raises: a bug here must not turn a stored delivery into a 500.
"""

from __future__ import annotations

import bisect
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

log = logging.getLogger("receiver.firehose.telemetry")

LATENCY_BUCKETS_S: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)
"""Upper bounds of the delivery latency histogram, in seconds.

A small delivery commits in milliseconds; the largest (64 MiB of records) takes seconds to
decode and store, and Firehose gives up on a request after its timeout (3 minutes at most).
"""

DECODE_ERROR_REASONS: tuple[str, ...] = ("body", "envelope")
"""Why a delivery was refused with 400: its body could not be read (too large, bad gzip,
cut short) or its envelope was malformed (headers, JSON, base64, request id). A record
that does not decode is no longer a 400: it is quarantined, and counted by its reason."""


@dataclass(frozen=True, slots=True)
class HistogramSnapshot:
    bounds: tuple[float, ...]
    """Finite upper bounds, ascending; the implicit last bucket is +Inf."""
    cumulative: tuple[int, ...]
    """Observations less than or equal to each bound (same length as ``bounds``)."""
    count: int
    sum: float


class Histogram:
    """Observations counted into fixed buckets, with their count and sum."""

    def __init__(self, bounds: Sequence[float]) -> None:
        bounds = tuple(float(b) for b in bounds)
        if not bounds or any(not math.isfinite(b) for b in bounds):
            raise ValueError("histogram bounds must be finite numbers, at least one")
        if any(a >= b for a, b in pairwise(bounds)):
            raise ValueError(f"histogram bounds must be strictly ascending, not {bounds}")
        self._bounds = bounds
        self._counts = [0] * (len(bounds) + 1)  # the last one is the +Inf bucket
        self._sum = 0.0

    def observe(self, value: float) -> None:
        # bisect_left: a value equal to a bound belongs to that bound's bucket (le="bound").
        self._counts[bisect.bisect_left(self._bounds, value)] += 1
        self._sum += value

    def snapshot(self) -> HistogramSnapshot:
        cumulative: list[int] = []
        running = 0
        for count in self._counts[:-1]:
            running += count
            cumulative.append(running)
        return HistogramSnapshot(self._bounds, tuple(cumulative), running + self._counts[-1], self._sum)


@dataclass(frozen=True, slots=True)
class TelemetrySnapshot:
    """Every counter since the receiver started, as the Prometheus view reads them."""

    requests_by_status: tuple[tuple[int, int], ...]
    """(HTTP status, deliveries answered with it), by status."""
    duplicates: int
    records: int
    samples: int
    body_bytes: int
    decode_errors: tuple[tuple[str, int], ...]
    """(reason, deliveries refused for it) for every reason in DECODE_ERROR_REASONS."""
    quarantined: tuple[tuple[str, int], ...]
    """(reason, records quarantined for it), by reason; only reasons seen so far."""
    aborted: int
    """Deliveries whose client disconnected before its body was read."""
    latency: HistogramSnapshot


class Telemetry:
    """Counters of the Firehose endpoint; one instance per application."""

    def __init__(self, latency_buckets_s: Sequence[float] = LATENCY_BUCKETS_S) -> None:
        self._by_status: dict[int, int] = {}
        self._duplicates = 0
        self._records = 0
        self._samples = 0
        self._body_bytes = 0
        self._decode_errors = dict.fromkeys(DECODE_ERROR_REASONS, 0)
        self._quarantined: dict[str, int] = {}
        self._aborted = 0
        self._latency = Histogram(latency_buckets_s)

    def record_delivery(
        self,
        *,
        status: int,
        seconds: float,
        body_bytes: int,
        records: int = 0,
        samples: int = 0,
        duplicate: bool = False,
        decode_error: str | None = None,
        quarantined: Sequence[str] = (),
    ) -> None:
        """Count one answered delivery; never raises.

        ``records`` and ``samples`` are what was committed (0 unless it was stored);
        ``body_bytes`` what was read of the body as sent (compressed when gzipped);
        ``decode_error`` the reason of a 400, one of DECODE_ERROR_REASONS;
        ``quarantined`` the reason of each record the delivery had quarantined.
        """
        try:
            self._by_status[status] = self._by_status.get(status, 0) + 1
            self._duplicates += bool(duplicate)
            self._records += records
            self._samples += samples
            self._body_bytes += body_bytes
            if decode_error is not None:
                if decode_error not in self._decode_errors:
                    raise ValueError(f"unknown decode error reason {decode_error!r}")
                self._decode_errors[decode_error] += 1
            for reason in quarantined:
                self._quarantined[reason] = self._quarantined.get(reason, 0) + 1
            self._latency.observe(seconds)
        except Exception:
            log.exception("could not record a delivery's telemetry; the delivery is unaffected")

    def record_aborted(self) -> None:
        """Count a delivery whose client disconnected mid-body (no answer was sent)."""
        self._aborted += 1

    def snapshot(self) -> TelemetrySnapshot:
        return TelemetrySnapshot(
            requests_by_status=tuple(sorted(self._by_status.items())),
            duplicates=self._duplicates,
            records=self._records,
            samples=self._samples,
            body_bytes=self._body_bytes,
            decode_errors=tuple(self._decode_errors.items()),
            quarantined=tuple(sorted(self._quarantined.items())),
            aborted=self._aborted,
            latency=self._latency.snapshot(),
        )
