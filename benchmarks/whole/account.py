"""The account a whole-receiver run streams, cut into deliveries as Firehose would send them.

The tables use every feature of the seeded workload (``receiver_tools/workload.py``), so
each minute holds every DynamoDB metric the rule pack reads: indexes, provisioned and
on-demand capacity, TTL, transactions, PartiQL, streams, Kinesis change data capture,
index builds, throttling by cause, and global tables replicating to a second region.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import groupby

from receiver.formats import encode_records
from receiver.model import PERIOD_MS, Sample
from receiver_tools.firehose_request import build_request
from receiver_tools.workload import TableSpec, Workload
from receiver_tools.workload_features import ON_DEMAND_CAUSES, PROVISIONED_CAUSES

SERVICE_PREFIX = "aws-dynamodb::"
RECORD_BYTES = 1_024_000
"""Firehose's largest record (1,000 KiB); CloudWatch fills records up to it."""
FORMAT = "opentelemetry0.7"
"""The stack's default output format (stacks/settings.py)."""


def account_tables(count: int) -> list[TableSpec]:
    """``count`` tables; every feature of the workload shows up once there are a few dozen."""
    tables = []
    for index in range(count):
        provisioned = (200.0, 100.0) if index % 2 else None
        tables.append(
            TableSpec(
                f"table-{index:05d}",
                regions=("us-east-1", "eu-west-1") if index % 10 == 3 else ("us-east-1",),
                indexes=("ByCustomer", "ByDate")[: index % 3],
                provisioned=provisioned,
                ttl=index % 5 == 0,
                transactions=index % 7 == 0,
                partiql=index % 11 == 0,
                stream=index % 13 == 0,
                kinesis=index % 5 == 1,
                new_index="ByStatus" if index % 19 == 0 else None,
                global_version="2017.11.29" if index % 20 == 3 else "2019.11.21",
                throttle_causes=(PROVISIONED_CAUSES if provisioned else ON_DEMAND_CAUSES) if index % 7 == 2 else (),
                reads_per_s=20.0 + index % 50,
                writes_per_s=5.0 + index % 20,
            )
        )
    return tables


class Account:
    """The minutes of one seeded account. Each minute is generated once and moved to the
    timestamps a run needs, so several runs stream the same datapoints."""

    def __init__(self, tables: int, seed: int = 7) -> None:
        self.workload = Workload(seed=seed, tables=account_tables(tables), pipeline=False)
        self.tables = tables
        self._generated: dict[int, list[Sample]] = {}

    @property
    def service(self) -> str:
        return SERVICE_PREFIX + self.workload.account

    def minute(self, index: int, first_minute_ms: int) -> list[Sample]:
        """Minute ``index`` of the stream, its timestamps starting at ``first_minute_ms`` +
        ``index`` minutes (negative indexes are the warm-up minutes before the stream)."""
        template = self._generated.get(index)
        if template is None:
            # Generated at a fixed time, so the same index is the same datapoints in every run.
            template = self._generated[index] = self.workload.minute(_TEMPLATE_MS + index * PERIOD_MS)
        shift = first_minute_ms - _TEMPLATE_MS
        return [sample._replace(start_ms=sample.start_ms + shift, end_ms=sample.end_ms + shift) for sample in template]


_TEMPLATE_MS = 1_767_268_800_000
"""2026-01-01 12:00 UTC: the minutes are generated as of midday, when the workload's daily
load is above its mean."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """One Firehose request: part of one minute, whole tables only."""

    minute_ms: int
    headers: dict[str, str]
    body: bytes
    datapoints: int
    record_bytes: int
    probe: str
    """A table whose datapoints of this minute are all in this delivery: once its value of
    the minute can be queried, a deriver pass has read this delivery's samples."""
    tables: tuple[str, ...] = field(repr=False, default=())


def deliveries(samples: list[Sample], body_bytes: int, compress: bool) -> list[Delivery]:
    """One minute's samples cut into deliveries of at most ``body_bytes`` of records (the
    Firehose buffer size), each holding whole tables; the account-wide samples go with the
    last. Sample order is kept: the workload lists a table's samples together."""
    tables: list[Table] = []
    account_wide: list[Sample] = []
    for name, members in groupby(samples, key=_table_of):
        if name:
            tables.append((name, list(members)))
        else:
            account_wide += members
    names = [name for name, _ in tables]
    if len(set(names)) != len(names):
        raise ValueError("a table's samples must come together to be delivered whole")
    if not tables:
        raise ValueError("a minute without tables cannot be cut into deliveries")
    probe = samples[:2000]
    sample_bytes = sum(map(len, _encode(probe))) / len(probe)
    # A tenth to spare: tables differ in how large their samples are.
    chunks = list(_chunks(tables, 0.9 * body_bytes / sample_bytes))
    out: list[Delivery] = []
    for chunk in chunks:
        extra = account_wide if chunk is chunks[-1] else []
        out += _fitting(chunk, extra, body_bytes, compress)
    return out


Table = tuple[str, list[Sample]]
"""A table's name and its samples of the minute (every region)."""


def _fitting(chunk: list[Table], extra: list[Sample], body_bytes: int, compress: bool) -> list[Delivery]:
    """``chunk`` (and ``extra``) as one delivery, or as several if its records pass ``body_bytes``."""
    members = [sample for _, group in chunk for sample in group] + extra
    records = _encode(members)
    record_bytes = sum(map(len, records))
    if record_bytes > body_bytes:
        if len(chunk) == 1:
            raise ValueError(f"table {chunk[0][0]} alone passes {body_bytes} bytes of records; use larger bodies")
        half = len(chunk) // 2
        return _fitting(chunk[:half], [], body_bytes, compress) + _fitting(chunk[half:], extra, body_bytes, compress)
    request = build_request(records, compress=compress, user_agent="receiver-bench-whole")
    names = tuple(name for name, _ in chunk)
    return [
        Delivery(
            minute_ms=members[0].start_ms,
            headers=request.headers,
            body=request.body,
            datapoints=len(members),
            record_bytes=record_bytes,
            probe=names[len(names) // 2],
            tables=names,
        )
    ]


def _table_of(sample: Sample) -> str:
    return dict(sample.series.dimensions).get("TableName", "")


def _encode(samples: list[Sample]) -> list[bytes]:
    return encode_records(samples, FORMAT, max_record_bytes=RECORD_BYTES)


def _chunks(tables: list[Table], samples_per_body: float) -> Iterator[list[Table]]:
    """Consecutive tables, as many as keep a body under ``samples_per_body`` samples."""
    chunk: list[Table] = []
    size = 0
    for table in tables:
        if chunk and size + len(table[1]) > samples_per_body:
            yield chunk
            chunk, size = [], 0
        chunk.append(table)
        size += len(table[1])
    yield chunk


def datapoints(batch: Iterable[Delivery]) -> int:
    return sum(delivery.datapoints for delivery in batch)
