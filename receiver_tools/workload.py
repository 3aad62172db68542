"""A seeded, reproducible DynamoDB workload, as a CloudWatch metric stream would report it.

Every minute of every table gives the datapoints CloudWatch publishes for it in the
``AWS/DynamoDB`` namespace: consumed and provisioned capacity (tables and global secondary
indexes), successful request latency by operation (with percentiles), returned items,
throttled requests and throttle events (in bursts), system errors, conditional check
failures, transaction conflicts and TTL deletions; per account and region: user errors,
the account's capacity quotas and their utilization. Together they cover every metric the
rules in ``rules/aws-dynamodb`` read.

Each minute is generated from (seed, minute) alone, so any minute can be produced again in
any order (backfill, then stream) and gives the same samples. Statistics are consistent
as CloudWatch's are: counts are whole numbers, Minimum <= Sum / SampleCount <= Maximum,
and Minimum <= p50 <= p90 <= p95 <= p99 <= p99.9 <= Maximum.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from receiver.model import PERIOD_MS, Sample, Series

NAMESPACE = "AWS/DynamoDB"
DEFAULT_ACCOUNT = "123456789012"
READ_OPERATIONS = ("GetItem", "BatchGetItem", "Query", "Scan")
WRITE_OPERATIONS = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem")
PERCENTILES = (("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99), ("p99.9", 0.999))

# Share of a table's reads / writes per operation.
_READ_MIX = {"GetItem": 0.55, "BatchGetItem": 0.10, "Query": 0.30, "Scan": 0.05}
_WRITE_MIX = {"PutItem": 0.50, "UpdateItem": 0.30, "DeleteItem": 0.10, "BatchWriteItem": 0.10}
# Median latency (ms) and capacity units per request of each operation.
_MEDIAN_MS = {
    "GetItem": 3.0,
    "BatchGetItem": 8.0,
    "Query": 6.0,
    "Scan": 40.0,
    "PutItem": 5.0,
    "UpdateItem": 6.0,
    "DeleteItem": 5.0,
    "BatchWriteItem": 12.0,
}
_UNITS_PER_REQUEST = {
    "GetItem": 1.0,
    "BatchGetItem": 4.0,
    "Query": 3.0,
    "Scan": 25.0,
    "PutItem": 1.0,
    "UpdateItem": 1.5,
    "DeleteItem": 1.0,
    "BatchWriteItem": 6.0,
}
_LATENCY_DRAWS = 60
"""Latency statistics come from at most this many simulated requests, scaled to the count."""
_BURST_WINDOW_MS = 15 * PERIOD_MS


@dataclass(frozen=True, slots=True)
class TableSpec:
    """One DynamoDB table of the workload."""

    name: str
    regions: tuple[str, ...] = ("us-east-1",)
    """More than one region: a global table (one endpoint, summed over regions)."""
    indexes: tuple[str, ...] = ()
    """Global secondary indexes; each reports its own capacity and throttle events."""
    provisioned: tuple[float, float] | None = None
    """(read, write) capacity units; None for an on-demand table."""
    ttl: bool = False
    reads_per_s: float = 50.0
    writes_per_s: float = 10.0
    transactions: bool = False
    """Whether the table sees TransactWriteItems (and so transaction conflicts)."""


@dataclass(frozen=True, slots=True)
class RegionQuotas:
    """An account's DynamoDB capacity quotas in one region."""

    max_reads: float = 80_000.0
    max_writes: float = 80_000.0
    max_table_reads: float = 40_000.0
    max_table_writes: float = 40_000.0


DEFAULT_TABLES: tuple[TableSpec, ...] = (
    TableSpec(
        "GameScores",
        indexes=("GameTitleIndex", "TopScoreIndex"),
        provisioned=(900.0, 300.0),
        reads_per_s=180.0,
        writes_per_s=60.0,
    ),
    TableSpec(
        "Orders",
        indexes=("CustomerIndex",),
        provisioned=(400.0, 200.0),
        reads_per_s=90.0,
        writes_per_s=40.0,
        transactions=True,
    ),
    TableSpec("Sessions", regions=("us-east-1", "eu-west-1"), ttl=True, reads_per_s=120.0, writes_per_s=80.0),
    TableSpec("AuditLog", ttl=True, reads_per_s=5.0, writes_per_s=70.0),
)
DEFAULT_QUOTAS: dict[str, RegionQuotas] = {
    "us-east-1": RegionQuotas(),
    "eu-west-1": RegionQuotas(max_reads=40_000.0, max_writes=40_000.0),
}


class Workload:
    """The samples of a seeded DynamoDB workload, minute by minute."""

    def __init__(
        self,
        seed: int = 7,
        account: str = DEFAULT_ACCOUNT,
        tables: Sequence[TableSpec] = DEFAULT_TABLES,
        quotas: dict[str, RegionQuotas] | None = None,
    ) -> None:
        if not tables:
            raise ValueError("a workload needs at least one table")
        names = [table.name for table in tables]
        if len(set(names)) != len(names):
            raise ValueError("table names of a workload must be unique")
        self.seed = seed
        self.account = account
        self.tables = tuple(tables)
        self.quotas = dict(quotas if quotas is not None else DEFAULT_QUOTAS)
        self.regions = tuple(sorted({region for table in tables for region in table.regions}))
        self._series: dict[tuple, Series] = {}

    def endpoints(self) -> list[str]:
        """Every endpoint the workload's samples make: tables and ``table/index``."""
        names = [t.name for t in self.tables] + [f"{t.name}/{i}" for t in self.tables for i in t.indexes]
        return sorted(names)

    def minute(self, start_ms: int) -> list[Sample]:
        """Every datapoint of the minute starting at ``start_ms`` (a minute boundary)."""
        if start_ms % PERIOD_MS:
            raise ValueError(f"{start_ms} is not the start of a minute (epoch ms divisible by 60000)")
        rng = random.Random(f"{self.seed}:{start_ms}")
        out: list[Sample] = []
        for table in self.tables:
            for region in table.regions:
                _TableMinute(self, table, region, start_ms, rng, out).generate()
        for region in self.regions:
            self._account_minute(region, start_ms, rng, out)
        return out

    def minutes(self, first_ms: int, count: int) -> Iterator[list[Sample]]:
        """``count`` consecutive minutes from ``first_ms``."""
        for index in range(count):
            yield self.minute(first_ms + index * PERIOD_MS)

    # -- account-wide series ------------------------------------------------------

    def _account_minute(self, region: str, start_ms: int, rng: random.Random, out: list[Sample]) -> None:
        quotas = self.quotas.get(region, RegionQuotas())
        provisioned = [
            (t.provisioned, 1 + len(t.indexes))
            for t in self.tables
            if t.provisioned is not None and region in t.regions
        ]
        # Indexes provision as much as their table here (see _TableMinute), so count them too.
        total_reads = sum(p[0] * copies for p, copies in provisioned)
        total_writes = sum(p[1] * copies for p, copies in provisioned)
        top_reads = max((p[0] for p, _ in provisioned), default=0.0)
        top_writes = max((p[1] for p, _ in provisioned), default=0.0)
        gauges = (
            ("AccountMaxReads", quotas.max_reads, "Count"),
            ("AccountMaxWrites", quotas.max_writes, "Count"),
            ("AccountMaxTableLevelReads", quotas.max_table_reads, "Count"),
            ("AccountMaxTableLevelWrites", quotas.max_table_writes, "Count"),
            ("AccountProvisionedReadCapacityUtilization", 100.0 * total_reads / quotas.max_reads, "Percent"),
            ("AccountProvisionedWriteCapacityUtilization", 100.0 * total_writes / quotas.max_writes, "Percent"),
            ("MaxProvisionedTableReadCapacityUtilization", 100.0 * top_reads / quotas.max_table_reads, "Percent"),
            ("MaxProvisionedTableWriteCapacityUtilization", 100.0 * top_writes / quotas.max_table_writes, "Percent"),
        )
        for metric, value, unit in gauges:
            out.append(self.sample(region, metric, (), unit, start_ms, *_gauge(value)))
        # Client errors (HTTP 400) are counted per account and region, not per table.
        user_errors = _whole(rng.expovariate(1 / 3.0))
        if user_errors:
            out.append(self.sample(region, "UserErrors", (), "Count", start_ms, *_ones(user_errors)))

    def sample(
        self,
        region: str,
        metric: str,
        dimensions: tuple[tuple[str, str], ...],
        unit: str,
        start_ms: int,
        count: float,
        total: float,
        low: float,
        high: float,
        stats: tuple[tuple[str, float], ...] = (),
    ) -> Sample:
        """One datapoint of this workload's account; ``dimensions`` sorted by name."""
        key = (region, metric, dimensions, unit)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = Series(self.account, region, NAMESPACE, metric, dimensions, unit)
        return Sample(series, start_ms, start_ms + PERIOD_MS, count, total, low, high, stats)


class _TableMinute:
    """The datapoints of one table in one region for one minute."""

    def __init__(
        self, workload: Workload, table: TableSpec, region: str, start_ms: int, rng: random.Random, out: list[Sample]
    ) -> None:
        self.workload = workload
        self.table = table
        self.region = region
        self.start_ms = start_ms
        self.rng = rng
        self.out = out
        self.burst = _burst(workload.seed, table.name, region, start_ms)
        self.table_dims = (("TableName", table.name),)

    def generate(self) -> None:
        load = _daily_load(self.start_ms) * self.rng.uniform(0.9, 1.1)
        reads = {op: self._requests(self.table.reads_per_s * share * load) for op, share in _READ_MIX.items()}
        writes = {op: self._requests(self.table.writes_per_s * share * load) for op, share in _WRITE_MIX.items()}
        if self.table.transactions:
            writes["TransactWriteItems"] = self._requests(self.table.writes_per_s * 0.05 * load)
        for op, n in (reads | writes).items():
            self._latency(op, n)
        self._capacity("ConsumedReadCapacityUnits", reads, self.table_dims)
        self._capacity("ConsumedWriteCapacityUnits", writes, self.table_dims)
        if self.table.provisioned:
            self._provisioned(self.table_dims, *self.table.provisioned)
        for index in self.table.indexes:
            self._index(index, reads, writes)
        self._returned_items("Query", reads["Query"], 12.0)
        self._returned_items("Scan", reads["Scan"], 200.0)
        self._throttling(reads, writes)
        self._errors(reads, writes)
        if self.table.ttl:
            self._ttl_deletions()

    def _requests(self, per_s: float) -> int:
        return _whole(max(0.0, self.rng.gauss(per_s * 60, math.sqrt(max(per_s * 60, 1.0)))))

    def _emit(
        self,
        metric: str,
        dims: tuple[tuple[str, str], ...],
        unit: str,
        count: float,
        total: float,
        low: float,
        high: float,
        stats: tuple[tuple[str, float], ...] = (),
    ) -> None:
        self.out.append(
            self.workload.sample(self.region, metric, dims, unit, self.start_ms, count, total, low, high, stats)
        )

    def _latency(self, op: str, n: int) -> None:
        if n == 0:
            return  # CloudWatch publishes no datapoint for a minute without requests
        median = _MEDIAN_MS.get(op, 10.0) * (1.6 if self.burst else 1.0)
        draws = sorted(round(self.rng.lognormvariate(math.log(median), 0.45), 3) for _ in range(min(n, _LATENCY_DRAWS)))
        total = math.fsum(draws) if n == len(draws) else round(math.fsum(draws) / len(draws) * n, 3)
        stats = tuple((name, draws[max(0, math.ceil(q * len(draws)) - 1)]) for name, q in PERCENTILES)
        dims = tuple(sorted((("Operation", op), *self.table_dims)))
        self._emit("SuccessfulRequestLatency", dims, "Milliseconds", n, total, draws[0], draws[-1], stats)

    def _capacity(
        self, metric: str, requests: dict[str, int], dims: tuple[tuple[str, str], ...], share: float = 1.0
    ) -> None:
        count = sum(requests.values())
        if count == 0:
            return
        units = round(
            share
            * sum(n * _UNITS_PER_REQUEST.get(op, 2.0) for op, n in requests.items())
            * self.rng.uniform(0.95, 1.05),
            1,
        )
        largest = max(_UNITS_PER_REQUEST.get(op, 2.0) for op, n in requests.items() if n)
        low = 0.5
        high = round(max(units / count, largest) * self.rng.uniform(1.5, 3.0), 1)
        self._emit(metric, dims, "Count", count, max(units, low * count), low, high)

    def _provisioned(self, dims: tuple[tuple[str, str], ...], read: float, write: float) -> None:
        # CloudWatch may report a provisioned value more than once in a minute:
        # the definitions use Sum ÷ SampleCount for that reason.
        for metric, value in (("ProvisionedReadCapacityUnits", read), ("ProvisionedWriteCapacityUnits", write)):
            count = self.rng.choice((1, 1, 2))
            self._emit(metric, dims, "Count", count, value * count, value, value)

    def _index(self, index: str, reads: dict[str, int], writes: dict[str, int]) -> None:
        dims = (("GlobalSecondaryIndexName", index), ("TableName", self.table.name))
        queries = {"Query": _whole(reads["Query"] * self.rng.uniform(0.2, 0.5))}
        self._capacity("ConsumedReadCapacityUnits", queries, dims)
        # Every table write that touches the index's keys is written to the index too.
        self._capacity("ConsumedWriteCapacityUnits", writes, dims, share=self.rng.uniform(0.3, 0.8))
        if self.table.provisioned:
            self._provisioned(dims, *self.table.provisioned)
        if self.burst and self.rng.random() < 0.5:
            self._emit("WriteThrottleEvents", dims, "Count", *_ones(_whole(self.rng.uniform(1, 40))))

    def _returned_items(self, op: str, n: int, mean_items: float) -> None:
        if n == 0:
            return
        total = _whole(n * mean_items * self.rng.uniform(0.8, 1.2))
        high = _whole(max(total / n, mean_items) * self.rng.uniform(2.0, 5.0))
        dims = tuple(sorted((("Operation", op), *self.table_dims)))
        self._emit("ReturnedItemCount", dims, "Count", n, total, 0.0, high)

    def _throttling(self, reads: dict[str, int], writes: dict[str, int]) -> None:
        if not self.burst:
            return
        throttled_reads = throttled_writes = 0
        for op, n in (reads | writes).items():
            throttled = _whole(n * self.rng.uniform(0.01, 0.08))
            if not throttled:
                continue
            dims = tuple(sorted((("Operation", op), *self.table_dims)))
            self._emit("ThrottledRequests", dims, "Count", *_ones(throttled))
            if op in _READ_MIX:
                throttled_reads += throttled
            else:
                throttled_writes += throttled
        # A throttled request is one or more throttle events (a batch has several items).
        for metric, requests in (("ReadThrottleEvents", throttled_reads), ("WriteThrottleEvents", throttled_writes)):
            if requests:
                self._emit(metric, self.table_dims, "Count", *_ones(_whole(requests * self.rng.uniform(1.0, 1.5))))

    def _errors(self, reads: dict[str, int], writes: dict[str, int]) -> None:
        rng = self.rng
        if rng.random() < 0.05:  # a rare server-side error
            op = rng.choice((*READ_OPERATIONS, *WRITE_OPERATIONS, "TransactGetItems", "TransactWriteItems"))
            dims = tuple(sorted((("Operation", op), *self.table_dims)))
            self._emit("SystemErrors", dims, "Count", *_ones(_whole(rng.uniform(1, 4))))
        failed = _whole(sum(writes.values()) * rng.uniform(0.0, 0.02))
        if failed:
            self._emit("ConditionalCheckFailedRequests", self.table_dims, "Count", *_ones(failed))
        if self.table.transactions:
            conflicts = _whole(writes.get("TransactWriteItems", 0) * rng.uniform(0.0, 0.1))
            if conflicts:
                self._emit("TransactionConflict", self.table_dims, "Count", *_ones(conflicts))

    def _ttl_deletions(self) -> None:
        batches = self.rng.randint(0, 4)
        if batches == 0:
            return
        sizes = [self.rng.randint(1, 250) for _ in range(batches)]
        self._emit(
            "TimeToLiveDeletedItemCount",
            self.table_dims,
            "Count",
            batches,
            float(sum(sizes)),
            float(min(sizes)),
            float(max(sizes)),
        )


def _whole(value: float) -> int:
    return round(value)


def _ones(n: int) -> tuple[float, float, float, float]:
    """count, sum, min, max of ``n`` events each reported as 1 (throttles, errors)."""
    return float(n), float(n), 1.0, 1.0


def _gauge(value: float) -> tuple[float, float, float, float]:
    value = round(value, 6)
    return 1.0, value, value, value


def _daily_load(start_ms: int) -> float:
    """Traffic follows the day: lowest around 04:00 UTC, highest around 16:00 UTC."""
    hours = (start_ms / 3_600_000) % 24
    return 1.0 + 0.5 * math.sin((hours - 10) / 24 * 2 * math.pi)


def _burst(seed: int, table: str, region: str, start_ms: int) -> bool:
    """Whether a throttling burst is on: in about a third of 15-minute windows, for 3 to 5 minutes."""
    window = start_ms // _BURST_WINDOW_MS
    rng = random.Random(f"{seed}:burst:{table}:{region}:{window}")
    if rng.random() >= 0.35:
        return False
    first = rng.randrange(0, 11)
    length = rng.randint(3, 5)
    minute = (start_ms - window * _BURST_WINDOW_MS) // PERIOD_MS
    return first <= minute < first + length
