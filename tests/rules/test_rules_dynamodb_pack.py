"""The DynamoDB pack: every metric on hand-built samples, expected values worked out here
from the issue's definitions (Σ over the entity's series in the minute), not by the engine."""

from __future__ import annotations

import pytest

from tests.rules.rulekit import SERVICE, endpoint_value, evaluate, pack, sample, service_value, values

GSI = "TopScores"
READ_OPS = ("GetItem", "Scan", "Query", "BatchGetItem")
WRITE_OPS = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem")


# ---- the metric list ----

# The operation keys of <op>_successful_request_latency, _throttled_requests, _system_errors.
OPERATIONS = (
    "get",
    "put",
    "query",
    "scan",
    "update",
    "delete",
    "batch_get",
    "batch_write",
    "transact_get",
    "transact_write",
    "execute_statement",
    "batch_execute_statement",
    "execute_transaction",
    "get_records",
)
THROTTLE_CAUSES = ("provisioned_throughput", "account_limit", "key_range_throughput", "max_on_demand_throughput")

ENDPOINT_AND_SERVICE = [
    "consumed_read_capacity_units",
    "consumed_write_capacity_units",
    "provisioned_read_capacity_units",
    "provisioned_write_capacity_units",
    *(f"{op}_successful_request_latency" for op in OPERATIONS),
    *(f"{op}_throttled_requests" for op in OPERATIONS),
    *(f"{op}_system_errors" for op in OPERATIONS),
    "query_returned_item_count",
    "scan_returned_item_count",
    "execute_statement_returned_item_count",
    "time_to_live_deleted_item_count",
    "read_throttled_requests",
    "write_throttled_requests",
    "read_throttle_events",
    "write_throttle_events",
    *(f"{kind}_{cause}_throttle_events" for kind in ("read", "write") for cause in THROTTLE_CAUSES),
    "read_system_errors",
    "write_system_errors",
    "conditional_check_failed_requests",
    "transaction_conflict",
    "replication_latency",
]
SERVICE_ONLY = [
    "account_max_reads",
    "account_max_writes",
    "account_max_table_level_reads",
    "account_max_table_level_writes",
    "account_provisioned_read_capacity_utilization",
    "account_provisioned_write_capacity_utilization",
    "max_provisioned_read_capacity_utilization",
    "max_provisioned_write_capacity_utilization",
    "user_errors",
]
ENDPOINT_ONLY = [
    "read_capacity_utilization",
    "write_capacity_utilization",
    *(f"{side}_{m}" for side in ("read", "write") for m in ("ceiling", "ceiling_utilization")),
    *(f"{side}_{m}" for side in ("read", "write") for m in ("warm_throughput", "warm_utilization")),
    *(f"{op}_successful_request_latency_{p}" for op in OPERATIONS for p in ("p50", "p90", "p95", "p99", "p99_9")),
    "replication_latency_by_region",
    "pending_replication_count",
    "pending_replication_count_by_region",
    "stream_returned_records_count",
    "stream_returned_bytes",
    "kinesis_age_of_oldest_unreplicated_record",
    "kinesis_failed_to_replicate_record_count",
    "kinesis_throttled_put_record_count",
    "online_index_percentage_progress",
    "online_index_consumed_write_capacity",
    "online_index_throttle_events",
]


def test_the_pack_defines_exactly_the_issue_metrics_with_their_scopes():
    expected = {f"aws_dynamodb_{m}": "service" for m in ENDPOINT_AND_SERVICE + SERVICE_ONLY}
    expected |= {f"aws_dynamodb_endpoint_{m}": "endpoint" for m in ENDPOINT_AND_SERVICE + ENDPOINT_ONLY}
    assert {m.name: m.scope for m in pack().metrics if m.layer == "AWS_DYNAMODB"} == expected
    assert len(expected) == 234


def test_every_metric_has_a_unit_a_description_and_the_dynamodb_layer():
    # The pipeline pack (rules/aws-pipeline, layer AWS_METRIC_STREAM) is tested in test_rules_pipeline.py.
    for metric in pack().metrics:
        if metric.name.startswith("aws_metric_stream_"):
            continue
        assert metric.unit and metric.description and metric.layer == "AWS_DYNAMODB", metric


# ---- capacity ----


@pytest.mark.parametrize("kind", ["Read", "Write"])
def test_consumed_capacity_is_units_per_second_per_table_and_index(kind):
    name = f"Consumed{kind}CapacityUnits"
    derived = evaluate(
        sample(name, 600.0, 60, TableName="GameScores"),
        sample(name, 120.0, 60, TableName="GameScores", region="eu-west-1"),
        sample(name, 30.0, 60, TableName="GameScores", GlobalSecondaryIndexName=GSI),
        sample(name, 6.0, 60, TableName="Players"),
    )
    metric = f"aws_dynamodb_endpoint_consumed_{kind.lower()}_capacity_units"
    assert endpoint_value(derived, metric) == pytest.approx((600 + 120) / 60)
    assert endpoint_value(derived, metric, f"GameScores/{GSI}") == pytest.approx(30 / 60)
    assert endpoint_value(derived, metric, "Players") == pytest.approx(6 / 60)
    service = f"aws_dynamodb_consumed_{kind.lower()}_capacity_units"
    assert service_value(derived, service) == pytest.approx((600 + 120 + 30 + 6) / 60)


@pytest.mark.parametrize("kind", ["Read", "Write"])
def test_provisioned_capacity_is_the_sum_of_each_series_average(kind):
    name = f"Provisioned{kind}CapacityUnits"
    derived = evaluate(
        sample(name, 30.0, 3, TableName="GameScores"),  # 10 units
        sample(name, 5.0, 1, TableName="GameScores", region="eu-west-1"),  # 5 units
        sample(name, 8.0, 2, TableName="GameScores", GlobalSecondaryIndexName=GSI),  # 4
    )
    metric = f"aws_dynamodb_endpoint_provisioned_{kind.lower()}_capacity_units"
    assert endpoint_value(derived, metric) == pytest.approx(30 / 3 + 5 / 1)
    assert endpoint_value(derived, metric, f"GameScores/{GSI}") == pytest.approx(8 / 2)
    service = f"aws_dynamodb_provisioned_{kind.lower()}_capacity_units"
    assert service_value(derived, service) == pytest.approx(30 / 3 + 5 / 1 + 8 / 2)


@pytest.mark.parametrize("kind", ["Read", "Write"])
def test_capacity_utilization_is_consumed_per_second_over_provisioned(kind):
    derived = evaluate(
        sample(f"Consumed{kind}CapacityUnits", 600.0, 60, TableName="GameScores"),
        sample(f"Provisioned{kind}CapacityUnits", 40.0, 2, TableName="GameScores"),
        sample(f"Consumed{kind}CapacityUnits", 60.0, 60, TableName="OnDemand"),
    )
    metric = f"aws_dynamodb_endpoint_{kind.lower()}_capacity_utilization"
    assert endpoint_value(derived, metric) == pytest.approx(100 * (600 / 60) / (40 / 2))
    assert endpoint_value(derived, metric, "OnDemand") is None  # nothing provisioned


# ---- latency ----

LATENCY_GROUPS = {
    "get": ("GetItem", "BatchGetItem"),
    "put": ("PutItem", "BatchWriteItem"),
    "query": ("Query",),
    "scan": ("Scan",),
}


@pytest.mark.parametrize("group", LATENCY_GROUPS)
def test_latency_is_sum_over_count_of_the_group_operations(group):
    ops = LATENCY_GROUPS[group]
    samples = [
        sample("SuccessfulRequestLatency", 10.0 * (i + 1), 4.0 * (i + 1) + 1, TableName="GameScores", Operation=op)
        for i, op in enumerate(ops)
    ]
    samples.append(
        sample("SuccessfulRequestLatency", 900.0, 1, TableName="GameScores", Operation="TransactWriteItems")
    )  # in no group
    samples.append(sample("SuccessfulRequestLatency", 50.0, 2, TableName="Players", Operation=ops[0]))
    derived = evaluate(*samples)
    table_sum = sum(10.0 * (i + 1) for i in range(len(ops)))
    table_count = sum(4.0 * (i + 1) + 1 for i in range(len(ops)))
    metric = f"aws_dynamodb_endpoint_{group}_successful_request_latency"
    assert endpoint_value(derived, metric) == pytest.approx(table_sum / table_count)
    assert endpoint_value(derived, metric, "Players") == pytest.approx(50 / 2)
    assert service_value(derived, f"aws_dynamodb_{group}_successful_request_latency") == pytest.approx(
        (table_sum + 50) / (table_count + 2)
    )


def test_latency_weights_by_request_count_not_by_series():
    # 1 request at 100 ms and 99 at 1 ms: the mean is 1.99 ms, not (100 + 1) / 2.
    derived = evaluate(
        sample("SuccessfulRequestLatency", 100.0, 1, TableName="GameScores", Operation="GetItem"),
        sample("SuccessfulRequestLatency", 99.0, 99, TableName="GameScores", Operation="BatchGetItem"),
    )
    assert endpoint_value(derived, "aws_dynamodb_endpoint_get_successful_request_latency") == pytest.approx(199 / 100)


@pytest.mark.parametrize(
    "percentile, statistic", [("p50", "p50"), ("p90", "p90"), ("p95", "p95"), ("p99", "p99"), ("p99_9", "p99.9")]
)
def test_latency_percentiles_of_one_operation_are_the_streamed_percentile(percentile, statistic):
    derived = evaluate(
        sample(
            "SuccessfulRequestLatency",
            40.0,
            4,
            TableName="GameScores",
            Operation="Query",
            stats=((statistic, 17.5), ("p1", 0.5)),
        )
    )
    metric = f"aws_dynamodb_endpoint_query_successful_request_latency_{percentile}"
    assert endpoint_value(derived, metric) == 17.5


@pytest.mark.parametrize("group", ["get", "put"])
def test_latency_percentile_of_two_operations_is_the_larger_one(group):
    first, second = LATENCY_GROUPS[group]
    derived = evaluate(
        sample("SuccessfulRequestLatency", 40.0, 4, TableName="GameScores", Operation=first, stats=(("p99", 12.0),)),
        sample("SuccessfulRequestLatency", 90.0, 3, TableName="GameScores", Operation=second, stats=(("p99", 31.0),)),
    )
    metric = f"aws_dynamodb_endpoint_{group}_successful_request_latency_p99"
    assert endpoint_value(derived, metric) == max(12.0, 31.0)


def test_no_percentile_value_when_the_stream_carries_none():
    derived = evaluate(sample("SuccessfulRequestLatency", 40.0, 4, TableName="GameScores", Operation="Scan"))
    assert endpoint_value(derived, "aws_dynamodb_endpoint_scan_successful_request_latency_p99") is None


# ---- counts: Σ Sum ----

COUNTS = [
    # (metric suffix, CloudWatch metric, operations counted (None: no Operation dimension))
    ("query_returned_item_count", "ReturnedItemCount", ("Query",)),
    ("scan_returned_item_count", "ReturnedItemCount", ("Scan",)),
    ("time_to_live_deleted_item_count", "TimeToLiveDeletedItemCount", None),
    ("read_throttled_requests", "ThrottledRequests", (*READ_OPS, "TransactGetItems")),
    ("write_throttled_requests", "ThrottledRequests", (*WRITE_OPS, "TransactWriteItems")),
    ("read_system_errors", "SystemErrors", (*READ_OPS, "TransactGetItems")),
    ("write_system_errors", "SystemErrors", (*WRITE_OPS, "TransactWriteItems")),
    ("conditional_check_failed_requests", "ConditionalCheckFailedRequests", None),
    ("transaction_conflict", "TransactionConflict", None),
]


@pytest.mark.parametrize("suffix, metric, ops", COUNTS, ids=[c[0] for c in COUNTS])
def test_counts_are_the_sum_of_sums_over_the_matching_operations(suffix, metric, ops):
    samples, expected = [], 0.0
    for i, op in enumerate(ops or (None,)):
        dims = {"TableName": "GameScores"} | ({"Operation": op} if op else {})
        samples.append(sample(metric, float(3 + i), 2, **dims))
        expected += 3 + i
    other_ops = {"Query", "Scan", "PutItem", "GetItem", "TransactGetItems", "TransactWriteItems"} - set(ops or ())
    if ops:  # the same metric for an operation outside the group does not count
        samples.append(sample(metric, 1000.0, 1, TableName="GameScores", Operation=sorted(other_ops)[0]))
    samples.append(sample(metric, 7.0, 1, TableName="Players", **({"Operation": ops[0]} if ops else {})))
    derived = evaluate(*samples)
    assert endpoint_value(derived, f"aws_dynamodb_endpoint_{suffix}") == pytest.approx(expected)
    assert endpoint_value(derived, f"aws_dynamodb_endpoint_{suffix}", "Players") == 7.0
    assert service_value(derived, f"aws_dynamodb_{suffix}") == pytest.approx(expected + 7)


@pytest.mark.parametrize("kind", ["Read", "Write"])
def test_throttle_events_count_tables_and_indexes_apart(kind):
    derived = evaluate(
        sample(f"{kind}ThrottleEvents", 4.0, 2, TableName="GameScores"),
        sample(f"{kind}ThrottleEvents", 9.0, 3, TableName="GameScores", GlobalSecondaryIndexName=GSI),
    )
    metric = f"aws_dynamodb_endpoint_{kind.lower()}_throttle_events"
    assert endpoint_value(derived, metric) == 4.0
    assert endpoint_value(derived, metric, f"GameScores/{GSI}") == 9.0
    assert service_value(derived, f"aws_dynamodb_{kind.lower()}_throttle_events") == 4.0 + 9.0


def test_user_errors_are_the_sum_over_the_account_regions():
    derived = evaluate(sample("UserErrors", 5.0, 2), sample("UserErrors", 6.0, 3, region="eu-west-1"))
    assert service_value(derived, "aws_dynamodb_user_errors") == 11.0
    assert values(derived, "aws_dynamodb_endpoint_user_errors") == {}


def test_an_account_wide_series_of_a_table_metric_is_not_added_to_the_tables():
    # A series without TableName is not a table's: the account sum must not count it twice.
    derived = evaluate(
        sample("ThrottledRequests", 2.0, 1, TableName="A", Operation="GetItem"),
        sample("ThrottledRequests", 2.0, 1, Operation="GetItem"),
    )
    assert service_value(derived, "aws_dynamodb_read_throttled_requests") == 2.0


# ---- account limits: Maximum ----

ACCOUNT_MAXIMA = [
    ("account_max_reads", "AccountMaxReads"),
    ("account_max_writes", "AccountMaxWrites"),
    ("account_max_table_level_reads", "AccountMaxTableLevelReads"),
    ("account_max_table_level_writes", "AccountMaxTableLevelWrites"),
    ("account_provisioned_read_capacity_utilization", "AccountProvisionedReadCapacityUtilization"),
    ("account_provisioned_write_capacity_utilization", "AccountProvisionedWriteCapacityUtilization"),
    ("max_provisioned_read_capacity_utilization", "MaxProvisionedTableReadCapacityUtilization"),
    ("max_provisioned_write_capacity_utilization", "MaxProvisionedTableWriteCapacityUtilization"),
]


@pytest.mark.parametrize("suffix, metric", ACCOUNT_MAXIMA, ids=[m[0] for m in ACCOUNT_MAXIMA])
def test_account_metrics_are_the_maximum(suffix, metric):
    derived = evaluate(
        sample(metric, 120.0, 3, low=10.0, high=70.0), sample(metric, 50.0, 1, low=50.0, high=50.0, region="eu-west-1")
    )
    assert service_value(derived, f"aws_dynamodb_{suffix}") == max(70.0, 50.0)


# ---- entities and time ----


def test_values_carry_the_minute_start_and_each_minute_stands_alone():
    derived = evaluate(
        sample("ConditionalCheckFailedRequests", 2.0, 1, TableName="GameScores", minute=0),
        sample("ConditionalCheckFailedRequests", 5.0, 1, TableName="GameScores", minute=1),
    )
    got = values(derived, "aws_dynamodb_endpoint_conditional_check_failed_requests")
    assert got == {(SERVICE, "GameScores", 0): 2.0, (SERVICE, "GameScores", 1): 5.0}


def test_a_late_datapoint_updates_its_own_minute():
    early = [
        sample("TransactionConflict", 2.0, 1, TableName="T", minute=0),
        sample("TransactionConflict", 4.0, 1, TableName="T", minute=1),
    ]
    late = sample("TransactionConflict", 3.0, 1, TableName="T", region="eu-west-1", minute=0)
    before = values(evaluate(*early), "aws_dynamodb_endpoint_transaction_conflict")
    after = values(evaluate(*early, late), "aws_dynamodb_endpoint_transaction_conflict")
    assert before[(SERVICE, "T", 0)] == 2.0 and after[(SERVICE, "T", 0)] == 5.0
    assert after[(SERVICE, "T", 1)] == before[(SERVICE, "T", 1)] == 4.0


def test_each_account_is_its_own_service():
    derived = evaluate(
        sample("UserErrors", 1.0, 1, account="111111111111"), sample("UserErrors", 2.0, 1, account="222222222222")
    )
    got = values(derived, "aws_dynamodb_user_errors")
    assert got == {("aws-dynamodb::111111111111", None, 0): 1.0, ("aws-dynamodb::222222222222", None, 0): 2.0}


def test_other_namespaces_are_ignored():
    derived = evaluate(sample("UserErrors", 1.0, 1, namespace="AWS/S3"))
    assert derived == []
