"""The workload's DynamoDB in depth: every operation, throttling by cause, global table
replication, a stream, Kinesis change data capture and an online index build, with
CloudWatch's dimensions; and the datapoints the workload made before all of them, unchanged."""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from itertools import groupby
from statistics import median

import pytest

from receiver.model import PERIOD_MS
from receiver_tools.workload import DEFAULT_TABLES, TableSpec, Workload

HOUR_MS = 60 * PERIOD_MS
FIRST = 1_699_999_200_000
"""2023-11-14 22:00 UTC, the start of an hour."""
HOURS = 2
CAUSES = ("ProvisionedThroughput", "AccountLimit", "KeyRangeThroughput", "MaxOnDemandThroughput")
CAUSE_METRICS = {f"{kind}{cause}ThrottleEvents" for kind in ("Read", "Write") for cause in CAUSES}
TABLES = {t.name: t for t in DEFAULT_TABLES}


@pytest.fixture(scope="module")
def samples():
    return [s for minute in Workload(seed=11).minutes(FIRST, HOURS * 60) for s in minute]


def dims(s) -> dict[str, str]:
    return dict(s.series.dimensions)


def minute_of(s) -> int:
    return (s.start_ms - FIRST) // PERIOD_MS


def of(samples, metric: str, table: str | None = None) -> list:
    return [s for s in samples if s.series.metric == metric and (table is None or dims(s).get("TableName") == table)]


def runs(minutes) -> list[int]:
    """Lengths of the runs of consecutive minutes."""
    return [len(list(run)) for _, run in groupby(enumerate(sorted(minutes)), lambda p: p[1] - p[0])]


# -- every operation ---------------------------------------------------------------

PARTIQL = {
    ("ExecuteStatement", "Verb", "PartiQLSelect"),
    ("ExecuteStatement", "Verb", "PartiQLInsert"),
    ("ExecuteStatement", "Verb", "PartiQLUpdate"),
    ("ExecuteStatement", "Verb", "PartiQLDelete"),
    ("BatchExecuteStatement", "OperationType", "Read"),
    ("BatchExecuteStatement", "OperationType", "Write"),
    ("ExecuteTransaction", "OperationType", "Read"),
    ("ExecuteTransaction", "OperationType", "Write"),
}


def operations(samples, metric: str, table: str) -> set[tuple[str, ...]]:
    """(Operation,) or (Operation, second dimension, its value) of every series of ``metric``."""
    found = set()
    for s in of(samples, metric, table):
        rest = {k: v for k, v in dims(s).items() if k not in ("TableName", "Operation")}
        found.add((dims(s)["Operation"], *(x for item in rest.items() for x in item)))
    return found


def test_every_operation_reports_its_latency_with_cloudwatch_dimensions(samples):
    basic = {(op,) for op in ("GetItem", "BatchGetItem", "Query", "Scan", "PutItem", "UpdateItem", "DeleteItem")}
    basic |= {("BatchWriteItem",)}
    orders = operations(samples, "SuccessfulRequestLatency", "Orders")
    label = next(s for s in of(samples, "ReturnedRecordsCount", "Orders"))
    stream = ("GetRecords", "StreamLabel", dims(label)["StreamLabel"])
    assert orders == basic | {("TransactWriteItems",), ("TransactGetItems",), stream} | PARTIQL
    assert operations(samples, "SuccessfulRequestLatency", "Carts") == basic | PARTIQL
    assert operations(samples, "SuccessfulRequestLatency", "Sessions") == basic  # no PartiQL, no transactions
    latency = [s for s in of(samples, "SuccessfulRequestLatency") if dims(s)["Operation"] != "GetRecords"]
    assert all([name for name, _ in s.stats] == ["p50", "p90", "p95", "p99", "p99.9"] for s in latency)


def test_partiql_selects_report_returned_items(samples):
    returned = operations(samples, "ReturnedItemCount", "Orders")
    assert returned == {("Query",), ("Scan",), ("ExecuteStatement", "Verb", "PartiQLSelect")}


def test_the_new_operations_are_throttled_and_fail_too(samples):
    throttled = operations(samples, "ThrottledRequests", "Carts")
    assert PARTIQL <= throttled
    errors = {op for table in ("Orders", "Carts") for op in operations(samples, "SystemErrors", table)}
    assert errors & (PARTIQL | {("GetRecords",)})
    get_records_errors = [s for s in of(samples, "SystemErrors") if dims(s)["Operation"] == "GetRecords"]
    assert all(set(dims(s)) == {"Operation", "TableName"} for s in get_records_errors)


# -- throttling by cause -----------------------------------------------------------


def hours_without(samples, metrics: set[str], first: int = FIRST) -> dict[int, set[str]]:
    """The hours from ``first`` on of ``samples`` lacking one of ``metrics``, with what they lack."""
    seen: dict[int, set[str]] = {hour: set() for hour in range(HOURS)}
    for s in samples:
        if s.series.metric in metrics:
            seen[(s.start_ms - first) // HOUR_MS].add(s.series.metric)
    return {hour: metrics - found for hour, found in seen.items() if found != metrics}


def test_each_throttle_cause_shows_in_every_hour(samples):
    assert hours_without(samples, CAUSE_METRICS) == {}
    later = FIRST + 5 * HOUR_MS
    another = [s for minute in Workload(seed=3).minutes(later, HOURS * 60) for s in minute]
    assert hours_without(another, CAUSE_METRICS, later) == {}


def test_throttle_causes_match_the_capacity_mode(samples):
    for s in samples:
        if s.series.metric in CAUSE_METRICS:
            provisioned = TABLES[dims(s)["TableName"]].provisioned is not None
            allowed = ("ProvisionedThroughput", "KeyRangeThroughput") if provisioned else CAUSES[1:]
            assert any(cause in s.series.metric for cause in allowed), s
            assert set(dims(s)) <= {"TableName", "GlobalSecondaryIndexName"}
            assert s.series.unit == "Count"


def test_throttle_events_by_cause_add_up_to_the_throttle_events(samples):
    events: dict[tuple, float] = defaultdict(float)
    by_cause: dict[tuple, float] = defaultdict(float)
    throttled_requests = {(s.series.region, dims(s)["TableName"], s.start_ms) for s in of(samples, "ThrottledRequests")}
    for s in samples:
        key = (s.series.region, s.series.dimensions, s.start_ms)
        if s.series.metric in ("ReadThrottleEvents", "WriteThrottleEvents"):
            events[(s.series.metric[:4], *key)] += s.sum
        elif s.series.metric in CAUSE_METRICS:
            by_cause[(s.series.metric[:4], *key)] += s.sum
            if "GlobalSecondaryIndexName" not in dims(s):  # a table throttled by a cause throttled requests
                assert (s.series.region, dims(s)["TableName"], s.start_ms) in throttled_requests
    assert by_cause and by_cause == events


# -- global tables -----------------------------------------------------------------


def test_a_global_table_reports_replication_to_each_other_region(samples):
    for metric in ("ReplicationLatency", "PendingReplicationCount"):
        pairs = {(s.series.region, dims(s)["ReceivingRegion"]) for s in of(samples, metric)}
        assert pairs == {("us-east-1", "eu-west-1"), ("eu-west-1", "us-east-1")}, metric
        assert {dims(s)["TableName"] for s in of(samples, metric)} == {"Sessions"}
        assert all(set(dims(s)) == {"ReceivingRegion", "TableName"} for s in of(samples, metric))
    assert {s.series.unit for s in of(samples, "ReplicationLatency")} == {"Milliseconds"}
    assert len(of(samples, "ReplicationLatency")) == 2 * HOURS * 60  # every minute, both ways


def test_replication_lags_for_some_minutes_every_hour(samples):
    for hour in range(HOURS):
        lagging = set()
        for (region, series), points in _by_series(of(samples, "ReplicationLatency"), hour).items():
            usual = median(s.sum / s.count for s in points)
            lagging |= {(region, series, minute_of(s)) for s in points if s.sum / s.count > 10 * usual}
        assert len({(region, series) for region, series, _ in lagging}) == 1, hour  # one pair lags
        assert max(runs(m for *_, m in lagging)) >= 4, hour
        pending = {
            (s.series.region, s.series.dimensions, minute_of(s)): s.sum for s in of(samples, "PendingReplicationCount")
        }
        assert all(pending[key] > 100 for key in lagging)


def _by_series(points, hour: int) -> dict[tuple, list]:
    found = defaultdict(list)
    for s in points:
        if minute_of(s) // 60 == hour:
            found[(s.series.region, s.series.dimensions)].append(s)
    return found


def test_a_current_version_global_table_reports_no_pending_replication():
    table = TableSpec("Profiles", regions=("us-east-1", "eu-west-1", "us-west-2"))
    minute = Workload(seed=5, tables=[table]).minute(FIRST)
    receiving = {(s.series.region, dims(s)["ReceivingRegion"]) for s in of(minute, "ReplicationLatency")}
    assert len(receiving) == 6  # three replicas, each to the two others
    assert not of(minute, "PendingReplicationCount")


# -- streams, Kinesis, index builds -------------------------------------------------


def test_a_stream_reports_get_records_by_stream_label(samples):
    for metric, unit in (("ReturnedRecordsCount", "Count"), ("ReturnedBytes", "Bytes")):
        points = of(samples, metric)
        assert {dims(s)["TableName"] for s in points} == {"Orders"}
        assert all(set(dims(s)) == {"Operation", "StreamLabel", "TableName"} for s in points)
        assert all(dims(s)["Operation"] == "GetRecords" and s.series.unit == unit for s in points)
        assert len(points) == HOURS * 60
    labels = {dims(s)["StreamLabel"] for s in of(samples, "SuccessfulRequestLatency") if "StreamLabel" in dims(s)}
    assert len(labels) == 1 and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}", labels.pop())


def test_kinesis_change_data_capture_backs_up_once_an_hour(samples):
    for metric in ("AgeOfOldestUnreplicatedRecord", "ThrottledPutRecordCount", "FailedToReplicateRecordCount"):
        points = of(samples, metric)
        assert {dims(s)["TableName"] for s in points} == {"AuditLog"}, metric
        assert all(set(dims(s)) == {"DelegatedOperation", "TableName"} for s in points)
        assert {minute_of(s) // 60 for s in points} == set(range(HOURS)), metric  # in every hour
    age = {minute_of(s): s.max for s in of(samples, "AgeOfOldestUnreplicatedRecord")}
    assert len(age) == HOURS * 60
    throttled = {minute_of(s) for s in of(samples, "ThrottledPutRecordCount")}
    assert min(runs(throttled)) >= 3
    assert min(age[m] for m in throttled) > 10 * median(age.values())


def test_an_index_is_built_online_every_hour(samples):
    progress = of(samples, "OnlineIndexPercentageProgress")
    assert {tuple(s.series.dimensions) for s in progress} == {
        (("GlobalSecondaryIndexName", "PlayerLevelIndex"), ("TableName", "GameScores"))
    }
    for hour in range(HOURS):
        build = sorted((minute_of(s), s.max) for s in progress if minute_of(s) // 60 == hour)
        values = [value for _, value in build]
        assert runs(m for m, _ in build) == [len(build)] and len(build) >= 12
        assert values[0] == 0.0 and values[-1] == 100.0 and values == sorted(values)
    for metric in ("OnlineIndexConsumedWriteCapacity", "OnlineIndexThrottleEvents"):
        assert {(s.series.dimensions, s.start_ms) for s in of(samples, metric)} == {
            (s.series.dimensions, s.start_ms) for s in progress
        }
    assert "GameScores/PlayerLevelIndex" in Workload().endpoints()


# -- determinism and the datapoints made before --------------------------------------


def test_a_table_of_its_own_stream_leaves_the_others_alone():
    carts = TABLES["Carts"]
    alone = Workload(seed=9, tables=[carts]).minute(FIRST + 7 * PERIOD_MS)
    among = Workload(seed=9).minute(FIRST + 7 * PERIOD_MS)
    assert [s for s in alone if dims(s).get("TableName") == "Carts"] == [
        s for s in among if dims(s).get("TableName") == "Carts"
    ]


def test_throttle_causes_must_suit_the_capacity_mode():
    with pytest.raises(ValueError, match="cannot throttle an on-demand table"):
        Workload(tables=[TableSpec("T", throttle_causes=("ProvisionedThroughput",))])
    with pytest.raises(ValueError, match="cannot throttle a provisioned table"):
        Workload(tables=[TableSpec("T", provisioned=(5.0, 5.0), throttle_causes=("AccountLimit",))])
    with pytest.raises(ValueError, match="global_version"):
        Workload(tables=[TableSpec("T", global_version="2020")])


LEGACY_TABLES = {"GameScores", "Orders", "Sessions", "AuditLog"}
LEGACY_METRICS = {
    "AccountMaxReads",
    "AccountMaxTableLevelReads",
    "AccountMaxTableLevelWrites",
    "AccountMaxWrites",
    "AccountProvisionedReadCapacityUtilization",
    "AccountProvisionedWriteCapacityUtilization",
    "ConditionalCheckFailedRequests",
    "ConsumedReadCapacityUnits",
    "ConsumedWriteCapacityUnits",
    "MaxProvisionedTableReadCapacityUtilization",
    "MaxProvisionedTableWriteCapacityUtilization",
    "ProvisionedReadCapacityUnits",
    "ProvisionedWriteCapacityUnits",
    "ReadThrottleEvents",
    "ReturnedItemCount",
    "SuccessfulRequestLatency",
    "SystemErrors",
    "ThrottledRequests",
    "TimeToLiveDeletedItemCount",
    "TransactionConflict",
    "UserErrors",
    "WriteThrottleEvents",
}


def made_before(s) -> bool:
    """Whether the workload made this series before it reported DynamoDB in depth."""
    d = dims(s)
    return (
        s.series.region != "us-west-2"
        and d.get("TableName", "GameScores") in LEGACY_TABLES
        and s.series.metric in LEGACY_METRICS
        and set(d) <= {"TableName", "Operation", "GlobalSecondaryIndexName"}
        and not (s.series.metric == "SuccessfulRequestLatency" and d["Operation"] == "TransactGetItems")
    )


@pytest.mark.parametrize(
    ("seed", "count", "digest"),
    [
        (11, 6589, "92339b2e8f35e2198fdd3f22b7c081c558b7f798b2b39825daf3e84f52aa2bc2"),
        (4, 6512, "cd2ce770691327baa7658cf4d95169346ae6f4e4198d4813bf7446eb04687062"),
    ],
)
def test_the_datapoints_made_before_keep_their_values(seed, count, digest):
    # The digests are of an hour of the workload as it was before (commit 09afca2): the series it
    # made then must be made again, datapoint for datapoint, bursts of throttling included.
    lines = sorted(
        repr(
            (
                s.series.region,
                s.series.metric,
                s.series.dimensions,
                s.series.unit,
                s.start_ms,
                float(s.count),
                float(s.sum),
                float(s.min),
                float(s.max),
                tuple((name, float(value)) for name, value in s.stats),
            )
        )
        for minute in Workload(seed=seed).minutes(FIRST, 60)
        for s in minute
        if made_before(s)
    )
    assert len(lines) == count
    assert hashlib.sha256("\n".join(lines).encode()).hexdigest() == digest
