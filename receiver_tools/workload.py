"""A seeded, reproducible DynamoDB workload, as a CloudWatch metric stream would report it.

Every minute of every table gives the datapoints CloudWatch publishes for it in the
``AWS/DynamoDB`` namespace: consumed and provisioned capacity (tables and global secondary
indexes), successful request latency by operation (with percentiles), returned items,
throttled requests and throttle events (in bursts, and by cause), system errors, conditional
check failures, transaction conflicts and TTL deletions; per account and region: user errors,
the account's capacity quotas and their utilization. Tables that use them also report
TransactGetItems and PartiQL, global table replication, a DynamoDB stream, Kinesis change data
capture and an online index build (``workload_features.py``). Together they cover every metric
the rules in ``rules/aws-dynamodb`` read. Each minute also holds what the metric stream and its
Firehose stream report about themselves (``workload_pipeline.py``), unless ``pipeline=False``.

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
from receiver_tools.workload_features import (
    EXTRA_READ_OPERATIONS,
    GLOBAL_TABLE_VERSIONS,
    ON_DEMAND_CAUSES,
    PROVISIONED_CAUSES,
    TableExtras,
    episode_causes,
    gauge,
    latency_statistics,
    ones,
    operation_dimensions,
    returned_items,
    whole,
)
from receiver_tools.workload_features import PERCENTILES as PERCENTILES
from receiver_tools.workload_pipeline import pipeline_minute

NAMESPACE = "AWS/DynamoDB"
DEFAULT_ACCOUNT = "123456789012"
READ_OPERATIONS = ("GetItem", "BatchGetItem", "Query", "Scan")
WRITE_OPERATIONS = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem")

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
    """Whether the table sees TransactWriteItems (and so transaction conflicts) and TransactGetItems."""
    partiql: bool = False
    """Whether the table is also used through PartiQL: ExecuteStatement (by Verb),
    BatchExecuteStatement and ExecuteTransaction (by OperationType)."""
    stream: bool = False
    """A DynamoDB stream read by a consumer: GetRecords latency, records and bytes by StreamLabel."""
    kinesis: bool = False
    """Change data capture into a Kinesis data stream (with an hourly backlog episode)."""
    new_index: str | None = None
    """A global secondary index built online, again every hour (progress 0 to 100 %)."""
    global_version: str = "2019.11.21"
    """With more than one region: "2017.11.29" (legacy) also reports PendingReplicationCount."""
    throttle_causes: tuple[str, ...] = ()
    """Throttling causes that hit the table for 2 or 3 minutes every hour, each (reads and
    writes): ProvisionedThroughput or KeyRangeThroughput if provisioned; AccountLimit,
    KeyRangeThroughput or MaxOnDemandThroughput if on demand."""
    independent: bool = False
    """Draw the table's values from a random stream of its own instead of the minute's shared
    one, so that adding (or removing) it leaves every other table's values as they were."""


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
        new_index="PlayerLevelIndex",
    ),
    TableSpec(
        "Orders",
        indexes=("CustomerIndex",),
        provisioned=(400.0, 200.0),
        reads_per_s=90.0,
        writes_per_s=40.0,
        transactions=True,
        partiql=True,
        stream=True,
    ),
    TableSpec(
        "Sessions",
        regions=("us-east-1", "eu-west-1"),
        ttl=True,
        reads_per_s=120.0,
        writes_per_s=80.0,
        global_version="2017.11.29",
    ),
    TableSpec("AuditLog", ttl=True, reads_per_s=5.0, writes_per_s=70.0, kinesis=True),
    # Tables added later draw from streams of their own, so the four above keep their values.
    TableSpec(
        "Carts",
        ttl=True,
        reads_per_s=40.0,
        writes_per_s=25.0,
        partiql=True,
        throttle_causes=ON_DEMAND_CAUSES,
        independent=True,
    ),
    TableSpec(
        # In a region of its own: the account's provisioned capacity elsewhere stays as it was.
        "Inventory",
        regions=("us-west-2",),
        indexes=("BySku",),
        provisioned=(300.0, 150.0),
        reads_per_s=70.0,
        writes_per_s=30.0,
        throttle_causes=PROVISIONED_CAUSES,
        independent=True,
    ),
)
DEFAULT_QUOTAS: dict[str, RegionQuotas] = {
    "us-east-1": RegionQuotas(),
    "eu-west-1": RegionQuotas(max_reads=40_000.0, max_writes=40_000.0),
    "us-west-2": RegionQuotas(),
}


class Workload:
    """The samples of a seeded DynamoDB workload, minute by minute."""

    def __init__(
        self,
        seed: int = 7,
        account: str = DEFAULT_ACCOUNT,
        tables: Sequence[TableSpec] = DEFAULT_TABLES,
        quotas: dict[str, RegionQuotas] | None = None,
        pipeline: bool = True,
    ) -> None:
        if not tables:
            raise ValueError("a workload needs at least one table")
        names = [table.name for table in tables]
        if len(set(names)) != len(names):
            raise ValueError("table names of a workload must be unique")
        for table in tables:
            _check(table)
        self.seed = seed
        self.account = account
        self.tables = tuple(tables)
        self.quotas = dict(quotas if quotas is not None else DEFAULT_QUOTAS)
        self.regions = tuple(sorted({region for table in tables for region in table.regions}))
        self.pipeline = pipeline
        """Whether minutes also hold the metric stream's and Firehose's own datapoints (workload_pipeline.py)."""
        self._series: dict[tuple[str, str, tuple[tuple[str, str], ...], str], Series] = {}

    def endpoints(self) -> list[str]:
        """Every endpoint the workload's samples make: tables and ``table/index``."""
        indexes = [(t.name, i) for t in self.tables for i in (*t.indexes, *filter(None, (t.new_index,)))]
        return sorted([t.name for t in self.tables] + [f"{table}/{index}" for table, index in indexes])

    def minute(self, start_ms: int) -> list[Sample]:
        """Every datapoint of the minute starting at ``start_ms`` (a minute boundary)."""
        if start_ms % PERIOD_MS:
            raise ValueError(f"{start_ms} is not the start of a minute (epoch ms divisible by 60000)")
        rng = random.Random(f"{self.seed}:{start_ms}")
        out: list[Sample] = []
        for table in self.tables:
            for region in table.regions:
                own = random.Random(f"{self.seed}:{start_ms}:{table.name}:{region}") if table.independent else rng
                _TableMinute(self, table, region, start_ms, own, out).generate()
        for region in self.regions:
            self._account_minute(region, start_ms, rng, out)
        if self.pipeline:
            out += pipeline_minute(self.seed, self.account, start_ms, out)
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
            out.append(self.sample(region, metric, (), unit, start_ms, *gauge(value)))
        # Client errors (HTTP 400) are counted per account and region, not per table.
        user_errors = whole(rng.expovariate(1 / 3.0))
        if user_errors:
            out.append(self.sample(region, "UserErrors", (), "Count", start_ms, *ones(user_errors)))

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
        self.episode = (
            episode_causes(workload.seed, table.name, region, start_ms, table.throttle_causes)
            if table.throttle_causes
            else ()
        )
        self.extras = TableExtras(workload.seed, table, region, start_ms, self.burst, self._emit)

    def generate(self) -> None:
        load = _daily_load(self.start_ms) * self.rng.uniform(0.9, 1.1)
        reads = {op: self._requests(self.table.reads_per_s * share * load) for op, share in _READ_MIX.items()}
        writes = {op: self._requests(self.table.writes_per_s * share * load) for op, share in _WRITE_MIX.items()}
        if self.table.transactions:
            writes["TransactWriteItems"] = self._requests(self.table.writes_per_s * 0.05 * load)
        # The later operations (workload_features.py) add nothing to the consumed capacity,
        # which stays as it was: read it as covering them too.
        more_reads, more_writes = self.extras.operations(load)
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
        self._throttling(reads, writes, more_reads | more_writes)
        self._errors(reads, writes)
        if self.table.ttl:
            self._ttl_deletions()
        self.extras.generate(more_reads, more_writes, sum(writes.values()) + sum(more_writes.values()))

    def _requests(self, per_s: float) -> int:
        return whole(max(0.0, self.rng.gauss(per_s * 60, math.sqrt(max(per_s * 60, 1.0)))))

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
        dims = tuple(sorted((("Operation", op), *self.table_dims)))
        self._emit("SuccessfulRequestLatency", dims, "Milliseconds", *latency_statistics(self.rng, median, n))

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
        queries = {"Query": whole(reads["Query"] * self.rng.uniform(0.2, 0.5))}
        self._capacity("ConsumedReadCapacityUnits", queries, dims)
        # Every table write that touches the index's keys is written to the index too.
        self._capacity("ConsumedWriteCapacityUnits", writes, dims, share=self.rng.uniform(0.3, 0.8))
        if self.table.provisioned:
            self._provisioned(dims, *self.table.provisioned)
        if self.burst and self.rng.random() < 0.5:
            events = whole(self.rng.uniform(1, 40))
            self._emit("WriteThrottleEvents", dims, "Count", *ones(events))
            self.extras.throttle_events_by_cause("Write", events, self._causes(index=True), dims)

    def _returned_items(self, op: str, n: int, mean_items: float) -> None:
        if n == 0:
            return
        dims = tuple(sorted((("Operation", op), *self.table_dims)))
        self._emit("ReturnedItemCount", dims, "Count", *returned_items(self.rng, n, mean_items))

    def _throttling(self, reads: dict[str, int], writes: dict[str, int], more: dict[str, int]) -> None:
        if not self.burst and not self.episode:
            return
        # The later operations (``more``) are throttled in the hourly episodes only, so that the
        # bursts keep the values they had before those operations were added.
        requests = reads | writes | (more if self.episode else {})
        throttled_reads = throttled_writes = 0
        for op, n in requests.items():
            throttled = whole(n * self.rng.uniform(0.01, 0.08))
            if not throttled:
                continue
            dims = tuple(sorted((*operation_dimensions(op), *self.table_dims)))
            self._emit("ThrottledRequests", dims, "Count", *ones(throttled))
            if op in _READ_MIX or op in EXTRA_READ_OPERATIONS:
                throttled_reads += throttled
            else:
                throttled_writes += throttled
        # A throttled request is one or more throttle events (a batch has several items),
        # each counted again under the cause that throttled it.
        causes = self._causes()
        for kind, throttled in (("Read", throttled_reads), ("Write", throttled_writes)):
            if throttled:
                events = whole(throttled * self.rng.uniform(1.0, 1.5))
                self._emit(f"{kind}ThrottleEvents", self.table_dims, "Count", *ones(events))
                self.extras.throttle_events_by_cause(kind, events, causes, self.table_dims)

    def _causes(self, index: bool = False) -> list[str]:
        """What throttles the table (or, ``index``, its indexes) this minute: the burst's cause
        and, for the table, the causes of its hourly episodes."""
        causes = [_burst_cause(self.workload.seed, self.table, self.region, self.start_ms)] if self.burst else []
        return causes if index else list(dict.fromkeys(causes + list(self.episode)))

    def _errors(self, reads: dict[str, int], writes: dict[str, int]) -> None:
        rng = self.rng
        if rng.random() < 0.05:  # a rare server-side error
            op = rng.choice((*READ_OPERATIONS, *WRITE_OPERATIONS, "TransactGetItems", "TransactWriteItems"))
            dims = tuple(sorted((("Operation", op), *self.table_dims)))
            self._emit("SystemErrors", dims, "Count", *ones(whole(rng.uniform(1, 4))))
        failed = whole(sum(writes.values()) * rng.uniform(0.0, 0.02))
        if failed:
            self._emit("ConditionalCheckFailedRequests", self.table_dims, "Count", *ones(failed))
        if self.table.transactions:
            conflicts = whole(writes.get("TransactWriteItems", 0) * rng.uniform(0.0, 0.1))
            if conflicts:
                self._emit("TransactionConflict", self.table_dims, "Count", *ones(conflicts))

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


def _check(table: TableSpec) -> None:
    """One sentence naming what is wrong with ``table`` and the fix."""
    causes = PROVISIONED_CAUSES if table.provisioned else ON_DEMAND_CAUSES
    wrong = [cause for cause in table.throttle_causes if cause not in causes]
    if wrong:
        mode = "a provisioned" if table.provisioned else "an on-demand"
        raise ValueError(
            f"table {table.name!r}: throttle cause {wrong[0]!r} cannot throttle {mode} table; use {', '.join(causes)}"
        )
    if table.global_version not in GLOBAL_TABLE_VERSIONS:
        raise ValueError(
            f"table {table.name!r}: global_version {table.global_version!r} is not a global tables version; "
            f"use {' or '.join(GLOBAL_TABLE_VERSIONS)}"
        )


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


def _burst_cause(seed: int, table: TableSpec, region: str, start_ms: int) -> str:
    """What throttles a burst (one cause per burst): mostly the capacity provisioned, else a hot
    partition; on demand, mostly a hot partition, else the account's per-table quota."""
    rng = random.Random(f"{seed}:burst-cause:{table.name}:{region}:{start_ms // _BURST_WINDOW_MS}")
    if table.provisioned:
        return "ProvisionedThroughput" if rng.random() < 0.7 else "KeyRangeThroughput"
    return "KeyRangeThroughput" if rng.random() < 0.6 else "AccountLimit"
