"""Realistic Firehose bodies from the seeded workload: thousands of tables, every metric.

Generating a minute of thousands of tables takes seconds, so a few real minutes are made
once and later minutes repeat their values at later timestamps: every datapoint of the
corpus still has its own identity, so the store inserts rather than overwrites.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

from receiver.formats import encode_records
from receiver.model import PERIOD_MS, Sample
from receiver_tools.firehose_request import build_request
from receiver_tools.workload import TableSpec, Workload

MIB = 1 << 20
RECENT_MS = (int(time.time()) // 60 - 180) * 60_000
"""Three hours ago: inside the store's retention, so the receiver derives what it stores."""
OUTSIDE_RETENTION_MS = RECENT_MS - 30 * 86_400_000
"""Thirty days earlier: past the minute retention, so the deriver leaves it alone by design
and a run measures the ingest path (read, decode, commit) by itself."""
RECORD_BYTES = 1_024_000
"""Firehose's largest record (1,000 KiB); CloudWatch fills records up to it."""
_REAL_MINUTES = 2


def bench_tables(count: int) -> list[TableSpec]:
    """``count`` tables with the mix a real account has: indexes, provisioned, TTL, transactions."""
    return [
        TableSpec(
            f"table-{index:05d}",
            indexes=("ByCustomer", "ByDate")[: index % 3],
            provisioned=(200.0, 100.0) if index % 2 else None,
            ttl=index % 5 == 0,
            transactions=index % 7 == 0,
            reads_per_s=20.0 + index % 50,
            writes_per_s=5.0 + index % 20,
        )
        for index in range(count)
    ]


class SampleSource:
    """An endless stream of distinct datapoints, minute after minute."""

    def __init__(self, tables: int, first_minute_ms: int = RECENT_MS, seed: int = 7) -> None:
        workload = Workload(seed=seed, tables=bench_tables(tables), pipeline=False)  # DynamoDB only, as before
        self._templates = [workload.minute(first_minute_ms + i * PERIOD_MS) for i in range(_REAL_MINUTES)]
        self._stream = itertools.chain.from_iterable(self._minute(i) for i in itertools.count())

    def take(self, count: int) -> list[Sample]:
        """The next ``count`` datapoints, each with an identity not taken before."""
        return list(itertools.islice(self._stream, count))

    def every_series(self) -> list[Sample]:
        """One datapoint of every series, an hour before the stream: a receiver's warm-up."""
        shift = -60 * PERIOD_MS
        return [
            Sample(s.series, s.start_ms + shift, s.end_ms + shift, s.count, s.sum, s.min, s.max, s.stats, s.labels)
            for minute in self._templates
            for s in minute
        ]

    def _minute(self, index: int) -> list[Sample]:
        template = self._templates[index % _REAL_MINUTES]
        shift = (index - index % _REAL_MINUTES) * PERIOD_MS
        return [
            Sample(s.series, s.start_ms + shift, s.end_ms + shift, s.count, s.sum, s.min, s.max, s.stats, s.labels)
            for s in template
        ]


@dataclass(frozen=True, slots=True)
class Body:
    """One delivery's records and the request(s) carrying them."""

    fmt: str
    records: list[bytes]
    datapoints: int

    @property
    def record_bytes(self) -> int:
        return sum(map(len, self.records))


def make_body(source: SampleSource, fmt: str, target_bytes: int) -> Body:
    """Records of ``fmt`` whose data adds up to about ``target_bytes`` (Firehose's buffer size)."""
    probe = source.take(2000)
    per_point = sum(map(len, encode_records(probe, fmt, max_record_bytes=RECORD_BYTES))) / len(probe)
    wanted = max(len(probe), int(target_bytes / per_point))
    samples = probe + source.take(wanted - len(probe))
    records = encode_records(samples, fmt, max_record_bytes=RECORD_BYTES)
    while sum(map(len, records)) > target_bytes and len(samples) > len(probe):
        # Never past the target: at 64 MiB, Firehose's largest buffer, a larger body is refused.
        samples = samples[: int(len(samples) * 0.995)]
        records = encode_records(samples, fmt, max_record_bytes=RECORD_BYTES)
    return Body(fmt, records, len(samples))


def warmup_body(source: SampleSource, fmt: str) -> Body:
    """A body with every series of the workload: what a long-running receiver has seen."""
    samples = source.every_series()
    return Body(fmt, encode_records(samples, fmt, max_record_bytes=RECORD_BYTES), len(samples))


def wire_request(body: Body, compress: bool) -> tuple[dict[str, str], bytes]:
    """The Firehose request for ``body`` (a fresh request id), as (headers, wire bytes)."""
    request = build_request(body.records, compress=compress, user_agent="receiver-bench")
    return request.headers, request.body
