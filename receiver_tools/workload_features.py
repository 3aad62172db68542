"""What the workload's tables report beyond their reads and writes ("DynamoDB in depth").

Every operation CloudWatch names: TransactGetItems beside TransactWriteItems, and PartiQL
(ExecuteStatement by ``Verb``; BatchExecuteStatement and ExecuteTransaction by
``OperationType``); throttle events by cause; a global table's replication latency (and, for
version 2017.11.29, its pending replication count) per receiving region; a DynamoDB stream
read by GetRecords; change data capture into a Kinesis data stream; the online build of a new
global secondary index. Names, dimensions and units are those of AWS's "DynamoDB Metrics and
dimensions" page.

All of it is drawn from a random stream of its own per (seed, minute, table, region), never
from the minute's shared one, so every datapoint the workload made before these were added
keeps its value; episodes (throttling, replication lag, Kinesis backlog, index builds) are
planned per hour from the seed, so a minute is still the same whenever it is generated.
"""

from __future__ import annotations

import math
import random
import time
import zlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from receiver.model import PERIOD_MS

if TYPE_CHECKING:
    from receiver_tools.workload import TableSpec

HOUR_MS = 60 * PERIOD_MS
PERCENTILES = (("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99), ("p99.9", 0.999))
LATENCY_DRAWS = 60
"""Latency statistics come from at most this many simulated requests, scaled to the count."""

THROTTLE_CAUSES = ("ProvisionedThroughput", "AccountLimit", "KeyRangeThroughput", "MaxOnDemandThroughput")
"""The causes CloudWatch counts throttle events by: ``Read<cause>ThrottleEvents`` and
``Write<cause>ThrottleEvents``."""
PROVISIONED_CAUSES = ("ProvisionedThroughput", "KeyRangeThroughput")
"""What throttles a provisioned table: its provisioned capacity, or a hot partition."""
ON_DEMAND_CAUSES = ("AccountLimit", "KeyRangeThroughput", "MaxOnDemandThroughput")
"""What throttles an on-demand table: the account's per-table quota, a hot partition, or the
maximum throughput configured on it."""
GLOBAL_TABLE_VERSIONS = ("2019.11.21", "2017.11.29")
"""Both report ReplicationLatency; only the legacy 2017.11.29 reports PendingReplicationCount."""
KINESIS_DELEGATED_OPERATION = "KinesisDataStreamReplication"
"""The ``DelegatedOperation`` value of the Kinesis change data capture metrics. AWS documents the
dimension (operations DynamoDB performs on your behalf) but not its value: a stand-in."""

# The operations beside the eight of the workload's read and write mixes, as shares of the
# table's reads or writes per second. A key is the operation, or "operation/value" for the
# PartiQL ones, reported with the Verb or OperationType dimension.
TRANSACTION_READS = {"TransactGetItems": 0.04}
PARTIQL_READS = {
    "ExecuteStatement/PartiQLSelect": 0.08,
    "BatchExecuteStatement/Read": 0.02,
    "ExecuteTransaction/Read": 0.01,
}
PARTIQL_WRITES = {
    "ExecuteStatement/PartiQLInsert": 0.05,
    "ExecuteStatement/PartiQLUpdate": 0.05,
    "ExecuteStatement/PartiQLDelete": 0.02,
    "BatchExecuteStatement/Write": 0.02,
    "ExecuteTransaction/Write": 0.02,
}
EXTRA_READ_OPERATIONS = frozenset(TRANSACTION_READS) | frozenset(PARTIQL_READS)
_MEDIAN_MS = {
    "TransactGetItems": 9.0,
    "ExecuteStatement/PartiQLSelect": 5.0,
    "ExecuteStatement/PartiQLInsert": 6.0,
    "ExecuteStatement/PartiQLUpdate": 7.0,
    "ExecuteStatement/PartiQLDelete": 6.0,
    "BatchExecuteStatement/Read": 10.0,
    "BatchExecuteStatement/Write": 14.0,
    "ExecuteTransaction/Read": 12.0,
    "ExecuteTransaction/Write": 18.0,
    "GetRecords": 15.0,
}
_SECOND_DIMENSION = {
    "ExecuteStatement": "Verb",
    "BatchExecuteStatement": "OperationType",
    "ExecuteTransaction": "OperationType",
}
_SELECT = "ExecuteStatement/PartiQLSelect"

Emit = Callable[..., None]
"""``emit(metric, dimensions, unit, count, sum, min, max, stats=())``: one datapoint of the table."""


def operation_dimensions(op: str) -> tuple[tuple[str, str], ...]:
    """The dimensions beside TableName an operation key is reported under."""
    name, _, value = op.partition("/")
    if not value:
        return (("Operation", name),)
    return (("Operation", name), (_SECOND_DIMENSION[name], value))


def whole(value: float) -> int:
    return round(value)


def ones(n: int) -> tuple[float, float, float, float]:
    """count, sum, min, max of ``n`` events each reported as 1 (throttles, errors)."""
    return float(n), float(n), 1.0, 1.0


def gauge(value: float) -> tuple[float, float, float, float]:
    value = round(value, 6)
    return 1.0, value, value, value


def latency_statistics(
    rng: random.Random, median: float, n: int
) -> tuple[int, float, float, float, tuple[tuple[str, float], ...]]:
    """count, sum, min, max and percentiles of ``n`` request latencies around ``median`` ms."""
    draws = sorted(round(rng.lognormvariate(math.log(median), 0.45), 3) for _ in range(min(n, LATENCY_DRAWS)))
    total = math.fsum(draws) if n == len(draws) else round(math.fsum(draws) / len(draws) * n, 3)
    stats = tuple((name, draws[max(0, math.ceil(q * len(draws)) - 1)]) for name, q in PERCENTILES)
    return n, total, draws[0], draws[-1], stats


def returned_items(rng: random.Random, n: int, mean_items: float) -> tuple[int, float, float, float]:
    """count, sum, min, max of the items ``n`` requests returned, ``mean_items`` each on average."""
    total = whole(n * mean_items * rng.uniform(0.8, 1.2))
    high = whole(max(total / n, mean_items) * rng.uniform(2.0, 5.0))
    return n, total, 0.0, high


def episode_causes(seed: int, table: str, region: str, start_ms: int, causes: Sequence[str]) -> tuple[str, ...]:
    """The causes throttling ``table`` this minute: each of ``causes`` once an hour, 2 or 3 minutes."""
    minute = (start_ms % HOUR_MS) // PERIOD_MS
    plan = random.Random(f"{seed}:throttle-episodes:{table}:{region}:{start_ms // HOUR_MS}")
    active = []
    for cause in causes:
        length = plan.randint(2, 3)
        first = plan.randrange(0, 60 - length + 1)
        if first <= minute < first + length:
            active.append(cause)
    return tuple(active)


def split(total: int, causes: Sequence[str], rng: random.Random) -> list[tuple[str, int]]:
    """``total`` events shared among ``causes``: each gets at least one when there are enough."""
    if len(causes) == 1:
        return [(causes[0], total)]
    floor = 1 if total >= len(causes) else 0
    weights = [rng.uniform(0.5, 1.5) for _ in causes]
    rest = total - floor * len(causes)
    shares = [rest * w / sum(weights) for w in weights]
    counts = [floor + math.floor(s) for s in shares]
    # Hand what rounding down left over to the largest remainders.
    for index in sorted(range(len(causes)), key=lambda i: shares[i] - math.floor(shares[i]), reverse=True):
        if sum(counts) == total:
            break
        counts[index] += 1
    return list(zip(causes, counts, strict=True))


def stream_label(table: str, region: str) -> str:
    """The StreamLabel of the table's stream: when it was enabled, ISO 8601 to the millisecond."""
    enabled_ms = 1_704_067_200_000 + zlib.crc32(f"{table}:{region}".encode()) % (365 * 86_400_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(enabled_ms // 1000)) + f".{enabled_ms % 1000:03d}"


def _triangle(minute: int, first: int, length: int) -> float:
    """0 outside ``[first, first + length)``; inside, rising to 1 in the middle and falling again."""
    if not first <= minute < first + length:
        return 0.0
    position = (minute - first + 1) / (length + 1)
    return 1.0 - abs(2.0 * position - 1.0)


class TableExtras:
    """The datapoints of this module for one table in one region and minute."""

    def __init__(self, seed: int, table: TableSpec, region: str, start_ms: int, burst: bool, emit: Emit) -> None:
        self.seed = seed
        self.table = table
        self.region = region
        self.start_ms = start_ms
        self.burst = burst
        self.emit = emit
        self.table_dims = (("TableName", table.name),)
        self.minute_of_hour = (start_ms % HOUR_MS) // PERIOD_MS
        self._rng: random.Random | None = None

    @property
    def rng(self) -> random.Random:
        # Made on first use: most tables of a large workload never need it.
        if self._rng is None:
            self._rng = random.Random(f"{self.seed}:{self.start_ms}:{self.table.name}:{self.region}:extras")
        return self._rng

    def _plan(self, kind: str, region: str = "") -> random.Random:
        """This hour's plan of an episode of ``kind`` (the same for every minute of the hour)."""
        return random.Random(f"{self.seed}:{kind}:{self.table.name}:{region}:{self.start_ms // HOUR_MS}")

    # -- operations ---------------------------------------------------------------

    def operations(self, load: float) -> tuple[dict[str, int], dict[str, int]]:
        """Requests this minute of the operations above: (reads, writes) by operation key."""
        reads: dict[str, int] = {}
        writes: dict[str, int] = {}
        mixes = []
        if self.table.transactions:
            mixes.append((TRANSACTION_READS, reads, self.table.reads_per_s))
        if self.table.partiql:
            mixes += [(PARTIQL_READS, reads, self.table.reads_per_s), (PARTIQL_WRITES, writes, self.table.writes_per_s)]
        for mix, into, per_s in mixes:
            for op, share in mix.items():
                mean = per_s * share * load * 60
                into[op] = whole(max(0.0, self.rng.gauss(mean, math.sqrt(max(mean, 1.0)))))
        return reads, writes

    def generate(self, reads: dict[str, int], writes: dict[str, int], written: int) -> None:
        """Everything but throttling; ``written``: the items the table's writes changed this minute."""
        for op, n in (reads | writes).items():
            self._latency(op, n)
        if reads.get(_SELECT):
            self._emit_op("ReturnedItemCount", _SELECT, "Count", *returned_items(self.rng, reads[_SELECT], 6.0))
        # TransactGetItems is left out: the table's own errors may name it already.
        failing = [op for op, n in (reads | writes).items() if n and op not in TRANSACTION_READS]
        if len(self.table.regions) > 1 and written:
            self._replication(written)
        if self.table.stream:
            self._stream(written)
            failing.append("GetRecords")
        if self.table.kinesis:
            self._kinesis(written)
        if self.table.new_index:
            self._index_build(self.table.new_index)
        if failing and self.rng.random() < 0.03:  # a rare server-side error
            self._emit_op("SystemErrors", self.rng.choice(failing), "Count", *ones(self.rng.randint(1, 3)))

    def _emit_op(
        self,
        metric: str,
        op: str,
        unit: str,
        count: float,
        total: float,
        low: float,
        high: float,
        stats: tuple[tuple[str, float], ...] = (),
    ) -> None:
        dims = tuple(sorted((*operation_dimensions(op), *self.table_dims)))
        self.emit(metric, dims, unit, count, total, low, high, stats)

    def _latency(self, op: str, n: int) -> None:
        if n:
            median = _MEDIAN_MS[op] * (1.6 if self.burst else 1.0)
            self._emit_op("SuccessfulRequestLatency", op, "Milliseconds", *latency_statistics(self.rng, median, n))

    # -- throttling by cause -----------------------------------------------------

    def throttle_events_by_cause(
        self, kind: str, events: int, causes: Sequence[str], dims: tuple[tuple[str, str], ...]
    ) -> None:
        """``events`` Read or Write throttle events of ``dims`` (a table or an index), by cause."""
        for cause, n in split(events, causes, self.rng):
            if n:
                self.emit(f"{kind}{cause}ThrottleEvents", dims, "Count", *ones(n))

    # -- global tables ------------------------------------------------------------

    def _replication(self, written: int) -> None:
        """Latency to every other replica; once an hour one pair lags for 6 to 10 minutes."""
        plan = self._plan("replication-lag")  # one plan for the table: every replica agrees on it
        regions = self.table.regions
        pairs = [(source, receiving) for source in regions for receiving in regions if source != receiving]
        lagging = pairs[plan.randrange(len(pairs))]
        length = plan.randint(6, 10)
        first = plan.randrange(0, 60 - length + 1)
        peak_ms = plan.uniform(30_000.0, 90_000.0)
        for receiving in regions:
            if receiving == self.region:
                continue
            lag = _triangle(self.minute_of_hour, first, length) if (self.region, receiving) == lagging else 0.0
            mean = max(self.rng.uniform(600.0, 1400.0), peak_ms * lag * self.rng.uniform(0.85, 1.15))
            dims = (("ReceivingRegion", receiving), ("TableName", self.table.name))
            low = round(mean * self.rng.uniform(0.3, 0.7), 3)
            high = round(mean * self.rng.uniform(1.5, 3.0), 3)
            self.emit("ReplicationLatency", dims, "Milliseconds", written, round(mean * written, 3), low, high)
            if self.table.global_version == "2017.11.29":
                pending = written * lag * self.rng.uniform(0.5, 1.0) + self.rng.randint(0, 20)
                self.emit("PendingReplicationCount", dims, "Count", *gauge(whole(pending)))

    # -- DynamoDB Streams ---------------------------------------------------------

    def _stream(self, written: int) -> None:
        """A consumer polling every shard four times a second; each change is one stream record."""
        rng = self.rng
        shards = 1 + int(self.table.writes_per_s // 100)
        calls = whole(shards * 240 * rng.uniform(0.95, 1.0))
        records = whole(written * rng.uniform(0.97, 1.03))
        label = stream_label(self.table.name, self.region)
        dims = (("Operation", "GetRecords"), ("StreamLabel", label), *self.table_dims)
        median = _MEDIAN_MS["GetRecords"] * (1.6 if self.burst else 1.0)
        self.emit("SuccessfulRequestLatency", dims, "Milliseconds", *latency_statistics(rng, median, calls))
        most = min(1000, max(math.ceil(records / calls), whole(records / calls * rng.uniform(3.0, 6.0))))
        self.emit("ReturnedRecordsCount", dims, "Count", calls, records, 0.0, most)
        size = rng.uniform(350.0, 900.0)
        self.emit("ReturnedBytes", dims, "Bytes", calls, whole(records * size), 0.0, math.ceil(most * size * 1.1))

    # -- Kinesis Data Streams change data capture ----------------------------------

    def _kinesis(self, written: int) -> None:
        """Changes replicated to a Kinesis data stream; once an hour the stream is short of
        capacity for 5 to 8 minutes (throttled puts, a growing backlog), and one minute of the
        hour has a record or two that fail to replicate."""
        rng = self.rng
        plan = self._plan("kinesis-backlog", self.region)
        length = plan.randint(5, 8)
        first = plan.randrange(0, 60 - length + 1)
        peak_ms = plan.uniform(20_000.0, 120_000.0)
        failing_minute = plan.randrange(60)
        dims = (("DelegatedOperation", KINESIS_DELEGATED_OPERATION), *self.table_dims)
        backlog = _triangle(self.minute_of_hour, first, length)
        age = max(rng.uniform(40.0, 250.0), peak_ms * backlog * rng.uniform(0.85, 1.15))
        low, high = round(age * rng.uniform(0.2, 0.6), 3), round(age * rng.uniform(1.3, 2.5), 3)
        self.emit("AgeOfOldestUnreplicatedRecord", dims, "Milliseconds", 12, round(age * 12, 3), low, high)
        throttled = whole(written * backlog * rng.uniform(0.1, 0.3))
        if throttled:
            puts = min(throttled, rng.randint(3, 12))
            mean = throttled / puts
            few, many = max(1, math.floor(mean * rng.uniform(0.2, 0.8))), math.ceil(mean * rng.uniform(1.2, 2.5))
            self.emit("ThrottledPutRecordCount", dims, "Count", puts, throttled, few, many)
        if self.minute_of_hour == failing_minute:
            self.emit("FailedToReplicateRecordCount", dims, "Count", *ones(rng.randint(1, 3)))

    # -- online index builds ------------------------------------------------------

    def _index_build(self, index: str) -> None:
        """Once an hour the index is built again: 12 to 25 minutes, the first one to three
        allocating resources (0 %), then the backfill up to 100 %."""
        plan = self._plan("index-build", self.region)
        length = plan.randint(12, 25)
        first = plan.randrange(0, 60 - length + 1)
        allocating = plan.randint(1, 3)
        steps = [plan.uniform(0.5, 1.5) for _ in range(length - allocating)]
        step = self.minute_of_hour - first
        if not 0 <= step < length:
            return
        progress = 0.0 if step < allocating else 100.0 * math.fsum(steps[: step - allocating + 1]) / math.fsum(steps)
        progress = 100.0 if step == length - 1 else round(progress, 1)
        dims = (("GlobalSecondaryIndexName", index), *self.table_dims)
        self.emit("OnlineIndexPercentageProgress", dims, "Count", *gauge(progress))
        # AWS: "This metric is expected to show 0 during index builds" (both, since 2025).
        self.emit("OnlineIndexConsumedWriteCapacity", dims, "Count", *gauge(0.0))
        self.emit("OnlineIndexThrottleEvents", dims, "Count", *gauge(0.0))
