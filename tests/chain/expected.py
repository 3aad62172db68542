"""Expected metric values computed from generated samples by the definitions in docs/metrics.md.

Independent of the rules engine on purpose: each metric is written down here as the table
"The DynamoDB metrics" in docs/metrics.md states it (Σ Sum ÷ 60 s, Σ Sum ÷ Σ SampleCount,
Maximum ...), and the end-to-end tests compare the receiver's query API against these values.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import aiohttp

from receiver.model import Sample

READS = ("GetItem", "Scan", "Query", "BatchGetItem", "TransactGetItems")
WRITES = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")
PARTIQL_READS = {"ExecuteStatement": "PartiQLSelect", "BatchExecuteStatement": "Read", "ExecuteTransaction": "Read"}
PARTIQL_WRITES = {
    "ExecuteStatement": ("PartiQLInsert", "PartiQLUpdate", "PartiQLDelete"),
    "BatchExecuteStatement": ("Write",),
    "ExecuteTransaction": ("Write",),
}
PERCENTILES = {"p50": "p50", "p90": "p90", "p95": "p95", "p99": "p99", "p99_9": "p99.9"}

Values = dict[int, float]
"""Epoch second of a minute's start -> value."""


@dataclass(frozen=True, slots=True)
class Spec:
    """One definition: how a value comes from the samples of one entity and minute."""

    name: str
    compute: Callable[[list[Sample]], float | None]
    scopes: tuple[str, ...] = ("service", "endpoint")


Operations = Sequence[str] | Callable[[dict[str, str]], bool]
"""Operation names, or whether a series' dimensions are of the operations meant."""


def _of(samples: Iterable[Sample], metric: str, operations: Operations | None = None) -> list[Sample]:
    def chosen(dims: dict[str, str]) -> bool:
        if operations is None:
            return True
        return operations(dims) if callable(operations) else dims.get("Operation") in operations

    return [s for s in samples if s.series.metric == metric and chosen(dict(s.series.dimensions))]


def reads(dims: dict[str, str]) -> bool:
    """The read grouping: READS, and PartiQL's reads by Verb or OperationType."""
    op = dims.get("Operation", "")
    return op in READS or (op in PARTIQL_READS and PARTIQL_READS[op] in (dims.get("Verb"), dims.get("OperationType")))


def writes(dims: dict[str, str]) -> bool:
    """The write grouping: WRITES, and PartiQL's writes by Verb or OperationType."""
    op = dims.get("Operation", "")
    kind = dims.get("Verb") or dims.get("OperationType")
    return op in WRITES or kind in PARTIQL_WRITES.get(op, ())


def sum_of(metric: str, operations: Operations | None = None, divide: float = 1.0):
    def compute(samples: list[Sample]) -> float | None:
        chosen = _of(samples, metric, operations)
        return math.fsum(s.sum for s in chosen) / divide if chosen else None

    return compute


def mean_of(metric: str, operations: Sequence[str]):
    def compute(samples: list[Sample]) -> float | None:
        chosen = _of(samples, metric, operations)
        count = math.fsum(s.count for s in chosen)
        return math.fsum(s.sum for s in chosen) / count if count else None

    return compute


def provisioned(metric: str):
    def compute(samples: list[Sample]) -> float | None:
        chosen = _of(samples, metric)
        return math.fsum(s.sum / s.count for s in chosen) if chosen else None

    return compute


def utilization(consumed: str, provision: str):
    def compute(samples: list[Sample]) -> float | None:
        used = sum_of(consumed, divide=60)(samples)
        provided = provisioned(provision)(samples)
        if used is None or not provided:
            return None
        return used * 100 / provided

    return compute


def maximum_of(metric: str):
    def compute(samples: list[Sample]) -> float | None:
        chosen = _of(samples, metric)
        return max(s.max for s in chosen) if chosen else None

    return compute


def percentile_of(statistic: str, operations: Sequence[str]):
    def compute(samples: list[Sample]) -> float | None:
        found = [
            dict(s.stats)[statistic]
            for s in _of(samples, "SuccessfulRequestLatency", operations)
            if statistic in dict(s.stats)
        ]
        return max(found) if found else None

    return compute


_LATENCY = {
    "get": ("GetItem", "BatchGetItem"),
    "put": ("PutItem", "BatchWriteItem"),
    "query": ("Query",),
    "scan": ("Scan",),
}

SPECS: tuple[Spec, ...] = (
    Spec("consumed_read_capacity_units", sum_of("ConsumedReadCapacityUnits", divide=60)),
    Spec("consumed_write_capacity_units", sum_of("ConsumedWriteCapacityUnits", divide=60)),
    Spec("provisioned_read_capacity_units", provisioned("ProvisionedReadCapacityUnits")),
    Spec("provisioned_write_capacity_units", provisioned("ProvisionedWriteCapacityUnits")),
    Spec(
        "read_capacity_utilization",
        utilization("ConsumedReadCapacityUnits", "ProvisionedReadCapacityUnits"),
        ("endpoint",),
    ),
    Spec(
        "write_capacity_utilization",
        utilization("ConsumedWriteCapacityUnits", "ProvisionedWriteCapacityUnits"),
        ("endpoint",),
    ),
    *(
        Spec(f"{kind}_successful_request_latency", mean_of("SuccessfulRequestLatency", ops))
        for kind, ops in _LATENCY.items()
    ),
    *(
        Spec(f"{kind}_successful_request_latency_{suffix}", percentile_of(stat, ops), ("endpoint",))
        for kind, ops in _LATENCY.items()
        for suffix, stat in PERCENTILES.items()
    ),
    Spec("query_returned_item_count", sum_of("ReturnedItemCount", ("Query",))),
    Spec("scan_returned_item_count", sum_of("ReturnedItemCount", ("Scan",))),
    Spec("time_to_live_deleted_item_count", sum_of("TimeToLiveDeletedItemCount")),
    Spec("read_throttled_requests", sum_of("ThrottledRequests", reads)),
    Spec("write_throttled_requests", sum_of("ThrottledRequests", writes)),
    Spec("read_throttle_events", sum_of("ReadThrottleEvents")),
    Spec("write_throttle_events", sum_of("WriteThrottleEvents")),
    Spec("read_system_errors", sum_of("SystemErrors", reads)),
    Spec("write_system_errors", sum_of("SystemErrors", writes)),
    Spec("conditional_check_failed_requests", sum_of("ConditionalCheckFailedRequests")),
    Spec("transaction_conflict", sum_of("TransactionConflict")),
)
ACCOUNT_SPECS: tuple[Spec, ...] = (
    Spec("user_errors", sum_of("UserErrors"), ("service",)),
    *(
        Spec(name, maximum_of(metric), ("service",))
        for name, metric in (
            ("account_max_reads", "AccountMaxReads"),
            ("account_max_writes", "AccountMaxWrites"),
            ("account_max_table_level_reads", "AccountMaxTableLevelReads"),
            ("account_max_table_level_writes", "AccountMaxTableLevelWrites"),
            ("account_provisioned_read_capacity_utilization", "AccountProvisionedReadCapacityUtilization"),
            ("account_provisioned_write_capacity_utilization", "AccountProvisionedWriteCapacityUtilization"),
            ("max_provisioned_read_capacity_utilization", "MaxProvisionedTableReadCapacityUtilization"),
            ("max_provisioned_write_capacity_utilization", "MaxProvisionedTableWriteCapacityUtilization"),
        )
    ),
)


@dataclass(frozen=True, slots=True)
class Query:
    """One API query: a metric of one entity."""

    metric: str
    service: str
    endpoint: str | None


def endpoint_of(sample: Sample) -> str | None:
    dims = dict(sample.series.dimensions)
    table = dims.get("TableName")
    if not table:
        return None
    index = dims.get("GlobalSecondaryIndexName")
    return f"{table}/{index}" if index else table


def expected_values(samples: Iterable[Sample]) -> dict[Query, Values]:
    """Every value the definitions in docs/metrics.md give for ``samples``, by query.

    Table metrics read only series with a TableName (also at service scope); the account's
    own series (no TableName) make the account metrics.
    """
    unique = {s.identity: s for s in samples}.values()  # a repeated datapoint is one datapoint
    groups: dict[tuple[str, str | None, int], list[Sample]] = defaultdict(list)
    account_groups: dict[tuple[str, int], list[Sample]] = defaultdict(list)
    for sample in unique:
        service = f"aws-dynamodb::{sample.series.account}"
        minute = sample.start_ms // 1000
        endpoint = endpoint_of(sample)
        if endpoint is None:
            account_groups[(service, minute)].append(sample)
        else:
            groups[(service, None, minute)].append(sample)
            groups[(service, endpoint, minute)].append(sample)
    # Every metric of every entity is listed, those without values too: a value where the
    # definitions give none is as wrong as a missing one.
    out: dict[Query, Values] = {}
    for service, endpoint, _ in groups:
        for spec in SPECS:
            scope = "service" if endpoint is None else "endpoint"
            if scope in spec.scopes:
                out.setdefault(Query(_metric_name(spec, scope), service, endpoint), {})
    for service, _ in account_groups:
        for spec in ACCOUNT_SPECS:
            out.setdefault(Query(_metric_name(spec, "service"), service, None), {})
    for (service, endpoint, minute), members in groups.items():
        scope = "service" if endpoint is None else "endpoint"
        for spec in SPECS:
            if scope in spec.scopes:
                value = spec.compute(members)
                if value is not None and math.isfinite(value):
                    out[Query(_metric_name(spec, scope), service, endpoint)][minute] = value
    for (service, minute), members in account_groups.items():
        for spec in ACCOUNT_SPECS:
            value = spec.compute(members)
            if value is not None:
                out[Query(_metric_name(spec, "service"), service, None)][minute] = value
    return out


def _metric_name(spec: Spec, scope: str) -> str:
    return f"aws_dynamodb_{spec.name}" if scope == "service" else f"aws_dynamodb_endpoint_{spec.name}"


# ---- reading the API back --------------------------------------------------------------


async def query_api(session: aiohttp.ClientSession, base: str, query: Query, start_s: int, end_s: int) -> Values:
    params = {"metric": query.metric, "service": query.service, "start": str(start_s), "end": str(end_s)}
    if query.endpoint is not None:
        params["endpoint"] = query.endpoint
    async with session.get(f"{base}/api/v1/query", params=params) as response:
        answer = await response.json()
        if response.status != 200:
            raise AssertionError(f"{query}: {response.status} {answer}")
    return {int(t): float(v) for t, v in answer["points"]}


def differences(expected: dict[Query, Values], actual: dict[Query, Values], rel: float = 1e-9) -> list[str]:
    """A line per query whose values differ (minutes missing, extra, or not equal)."""
    lines = []
    for query, want in expected.items():
        got = actual.get(query, {})
        if want.keys() != got.keys():
            lines.append(f"{query}: minutes {sorted(want.keys() ^ got.keys())} missing or extra")
            continue
        wrong = [t for t in want if not math.isclose(want[t], got[t], rel_tol=rel, abs_tol=1e-12)]
        if wrong:
            t = wrong[0]
            lines.append(f"{query}: at {t} expected {want[t]!r}, got {got[t]!r} ({len(wrong)} minutes differ)")
    return lines


async def assert_api_matches(
    base: str, expected: dict[Query, Values], start_s: int, end_s: int, timeout: float = 60.0
) -> None:
    """Poll the query API until it answers every expected value, or fail listing what differs.

    The deriver computes values a moment after each commit, hence the polling.
    """
    deadline = time.monotonic() + timeout
    limit = asyncio.Semaphore(8)
    async with aiohttp.ClientSession() as session:

        async def read(query: Query) -> tuple[Query, Values]:
            async with limit:
                return query, await query_api(session, base, query, start_s, end_s)

        while True:
            actual = dict(await asyncio.gather(*(read(q) for q in expected)))
            problems = differences(expected, actual)
            if not problems:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(problems)} of {len(expected)} queries differ:\n" + "\n".join(problems[:15]))
            await asyncio.sleep(0.5)
