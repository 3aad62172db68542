"""DynamoDB in depth (issue 16): every operation, throttling by cause, global tables, streams,
Kinesis change data capture and index builds, on hand-built samples. Expected values are
worked out here from the definitions in docs/metrics.md, never by the engine."""

from __future__ import annotations

import pytest

from tests.rules.rulekit import SERVICE, endpoint_value, evaluate, sample, service_value, values

GSI = "TopScores"
ARROW = "\u2192"  # between a table and a receiving region: "<table>→<region>"
VERBS = ("PartiQLSelect", "PartiQLInsert", "PartiQLUpdate", "PartiQLDelete")


# ---- every operation ----

# The series each operation key covers: (region, dimensions besides TableName). Several per
# key, so that every rule has to add up (or take the largest of) more than one series.
SERIES = {
    "get": [("us-east-1", {"Operation": "GetItem"}), ("us-east-1", {"Operation": "BatchGetItem"})],
    "put": [("us-east-1", {"Operation": "PutItem"}), ("us-east-1", {"Operation": "BatchWriteItem"})],
    "query": [("us-east-1", {"Operation": "Query"}), ("eu-west-1", {"Operation": "Query"})],
    "scan": [("us-east-1", {"Operation": "Scan"}), ("eu-west-1", {"Operation": "Scan"})],
    "update": [("us-east-1", {"Operation": "UpdateItem"}), ("eu-west-1", {"Operation": "UpdateItem"})],
    "delete": [("us-east-1", {"Operation": "DeleteItem"}), ("eu-west-1", {"Operation": "DeleteItem"})],
    "batch_get": [("us-east-1", {"Operation": "BatchGetItem"}), ("eu-west-1", {"Operation": "BatchGetItem"})],
    "batch_write": [("us-east-1", {"Operation": "BatchWriteItem"}), ("eu-west-1", {"Operation": "BatchWriteItem"})],
    "transact_get": [
        ("us-east-1", {"Operation": "TransactGetItems"}),
        ("eu-west-1", {"Operation": "TransactGetItems"}),
    ],
    "transact_write": [
        ("us-east-1", {"Operation": "TransactWriteItems"}),
        ("eu-west-1", {"Operation": "TransactWriteItems"}),
    ],
    "execute_statement": [("us-east-1", {"Operation": "ExecuteStatement", "Verb": verb}) for verb in VERBS],
    "batch_execute_statement": [
        ("us-east-1", {"Operation": "BatchExecuteStatement", "OperationType": "Read"}),
        ("us-east-1", {"Operation": "BatchExecuteStatement", "OperationType": "Write"}),
    ],
    "execute_transaction": [
        ("us-east-1", {"Operation": "ExecuteTransaction", "OperationType": "Read"}),
        ("us-east-1", {"Operation": "ExecuteTransaction", "OperationType": "Write"}),
    ],
    "get_records": [
        ("us-east-1", {"Operation": "GetRecords", "StreamLabel": "2024-05-01T00:00:00.000"}),
        ("us-east-1", {"Operation": "GetRecords", "StreamLabel": "2024-06-01T00:00:00.000"}),
    ],
}
OPERATIONS = list(SERIES)


def outsider(op):
    """An operation no series of ``op`` has: its samples must not count."""
    own = {dims["Operation"] for _, dims in SERIES[op]}
    return sorted({dims["Operation"] for series in SERIES.values() for _, dims in series} - own)[0]


@pytest.mark.parametrize("op", OPERATIONS)
def test_operation_latency_is_sum_over_count_of_all_its_series(op):
    samples, table_sum, table_count = [], 0.0, 0.0
    for i, (region, dims) in enumerate(SERIES[op]):
        total, count = 12.0 * (i + 1), 3.0 * i + 2
        samples.append(sample("SuccessfulRequestLatency", total, count, region=region, TableName="GameScores", **dims))
        table_sum, table_count = table_sum + total, table_count + count
    samples.append(sample("SuccessfulRequestLatency", 5000.0, 1, TableName="GameScores", Operation=outsider(op)))
    region, dims = SERIES[op][0]
    samples.append(sample("SuccessfulRequestLatency", 30.0, 6, region=region, TableName="Players", **dims))
    derived = evaluate(*samples)
    metric = f"{op}_successful_request_latency"
    assert endpoint_value(derived, f"aws_dynamodb_endpoint_{metric}") == pytest.approx(table_sum / table_count)
    assert endpoint_value(derived, f"aws_dynamodb_endpoint_{metric}", "Players") == pytest.approx(30 / 6)
    assert service_value(derived, f"aws_dynamodb_{metric}") == pytest.approx((table_sum + 30) / (table_count + 6))


@pytest.mark.parametrize("op", OPERATIONS)
def test_operation_percentile_is_the_largest_of_its_series(op):
    streamed = [7.0 + 5.0 * ((i * 3) % len(SERIES[op])) for i in range(len(SERIES[op]))]
    samples = [
        sample(
            "SuccessfulRequestLatency",
            40.0,
            4,
            region=region,
            stats=(("p50", 1.0), ("p99", p99)),
            TableName="GameScores",
            **dims,
        )
        for (region, dims), p99 in zip(SERIES[op], streamed, strict=True)
    ]
    samples.append(
        sample(
            "SuccessfulRequestLatency", 1.0, 1, stats=(("p99", 999.0),), TableName="GameScores", Operation=outsider(op)
        )
    )
    derived = evaluate(*samples)
    assert endpoint_value(derived, f"aws_dynamodb_endpoint_{op}_successful_request_latency_p99") == max(streamed)
    assert endpoint_value(derived, f"aws_dynamodb_endpoint_{op}_successful_request_latency_p50") == 1.0
    assert endpoint_value(derived, f"aws_dynamodb_endpoint_{op}_successful_request_latency_p95") is None


@pytest.mark.parametrize(
    "percentile, statistic", [("p50", "p50"), ("p90", "p90"), ("p95", "p95"), ("p99", "p99"), ("p99_9", "p99.9")]
)
def test_each_percentile_reads_its_own_statistic(percentile, statistic):
    stats = (("p50", 1.0), ("p90", 2.0), ("p95", 3.0), ("p99", 4.0), ("p99.9", 5.0))
    derived = evaluate(
        sample("SuccessfulRequestLatency", 40.0, 4, stats=stats, TableName="GameScores", Operation="UpdateItem")
    )
    metric = f"aws_dynamodb_endpoint_update_successful_request_latency_{percentile}"
    assert endpoint_value(derived, metric) == dict(stats)[statistic]


@pytest.mark.parametrize("metric", ["ThrottledRequests", "SystemErrors"])
@pytest.mark.parametrize("op", OPERATIONS)
def test_operation_counts_are_the_sum_of_sums_of_all_its_series(op, metric):
    samples, expected = [], 0.0
    for i, (region, dims) in enumerate(SERIES[op]):
        samples.append(sample(metric, 2.0**i, 1, region=region, TableName="GameScores", **dims))
        expected += 2.0**i
    samples.append(sample(metric, 1000.0, 1, TableName="GameScores", Operation=outsider(op)))
    region, dims = SERIES[op][-1]
    samples.append(sample(metric, 64.0, 3, region=region, TableName="Players", **dims))
    derived = evaluate(*samples)
    suffix = f"{op}_{'throttled_requests' if metric == 'ThrottledRequests' else 'system_errors'}"
    assert endpoint_value(derived, f"aws_dynamodb_endpoint_{suffix}") == expected
    assert endpoint_value(derived, f"aws_dynamodb_endpoint_{suffix}", "Players") == 64.0
    assert service_value(derived, f"aws_dynamodb_{suffix}") == expected + 64.0


def test_execute_statement_returned_items_are_the_select_items_and_stay_out_of_query_and_scan():
    derived = evaluate(
        sample(
            "ReturnedItemCount", 40.0, 4, TableName="GameScores", Operation="ExecuteStatement", Verb="PartiQLSelect"
        ),
        sample(
            "ReturnedItemCount",
            6.0,
            2,
            TableName="GameScores",
            Operation="ExecuteStatement",
            Verb="PartiQLSelect",
            region="eu-west-1",
        ),
        sample("ReturnedItemCount", 100.0, 1, TableName="GameScores", Operation="Query"),
        sample("ReturnedItemCount", 9.0, 1, TableName="Players", Operation="ExecuteStatement", Verb="PartiQLSelect"),
    )
    metric = "execute_statement_returned_item_count"
    assert endpoint_value(derived, f"aws_dynamodb_endpoint_{metric}") == 40.0 + 6.0
    assert endpoint_value(derived, f"aws_dynamodb_endpoint_{metric}", "Players") == 9.0
    assert service_value(derived, f"aws_dynamodb_{metric}") == 40.0 + 6.0 + 9.0
    assert endpoint_value(derived, "aws_dynamodb_endpoint_query_returned_item_count") == 100.0
    assert endpoint_value(derived, "aws_dynamodb_endpoint_scan_returned_item_count") is None


# ---- the read and write groupings ----

# Every kind of series CloudWatch gives ThrottledRequests and SystemErrors, and its side.
SIDES = [
    ({"Operation": "GetItem"}, "read"),
    ({"Operation": "Scan"}, "read"),
    ({"Operation": "Query"}, "read"),
    ({"Operation": "BatchGetItem"}, "read"),
    ({"Operation": "TransactGetItems"}, "read"),
    ({"Operation": "ExecuteStatement", "Verb": "PartiQLSelect"}, "read"),
    ({"Operation": "BatchExecuteStatement", "OperationType": "Read"}, "read"),
    ({"Operation": "ExecuteTransaction", "OperationType": "Read"}, "read"),
    ({"Operation": "PutItem"}, "write"),
    ({"Operation": "UpdateItem"}, "write"),
    ({"Operation": "DeleteItem"}, "write"),
    ({"Operation": "BatchWriteItem"}, "write"),
    ({"Operation": "TransactWriteItems"}, "write"),
    ({"Operation": "ExecuteStatement", "Verb": "PartiQLInsert"}, "write"),
    ({"Operation": "ExecuteStatement", "Verb": "PartiQLUpdate"}, "write"),
    ({"Operation": "ExecuteStatement", "Verb": "PartiQLDelete"}, "write"),
    ({"Operation": "BatchExecuteStatement", "OperationType": "Write"}, "write"),
    ({"Operation": "ExecuteTransaction", "OperationType": "Write"}, "write"),
    ({"Operation": "GetRecords"}, None),  # reads the stream, not the table
    ({"Operation": "GetRecords", "StreamLabel": "2024-05-01T00:00:00.000"}, None),
    ({"Operation": "ExecuteStatement"}, None),  # without its Verb: neither side is known
    ({"Operation": "BatchExecuteStatement"}, None),  # without its OperationType
]
OLD_READ = ("GetItem", "Scan", "Query", "BatchGetItem")
OLD_WRITE = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem")
GROUPINGS = [
    ("ThrottledRequests", "throttled_requests"),
    ("SystemErrors", "system_errors"),
]


@pytest.mark.parametrize("metric, suffix", GROUPINGS)
def test_each_series_counts_on_its_side_only(metric, suffix):
    # Each series a distinct power of two: the sums show exactly which series were counted.
    samples = [sample(metric, 2.0**i, 1, TableName="GameScores", **dims) for i, (dims, _) in enumerate(SIDES)]
    derived = evaluate(*samples)
    for side in ("read", "write"):
        expected = sum(2.0**i for i, (_, which) in enumerate(SIDES) if which == side)
        assert endpoint_value(derived, f"aws_dynamodb_endpoint_{side}_{suffix}") == expected, side
        assert service_value(derived, f"aws_dynamodb_{side}_{suffix}") == expected, side


@pytest.mark.parametrize("metric, suffix", GROUPINGS)
def test_without_transactional_or_partiql_operations_the_groupings_keep_their_old_value(metric, suffix):
    samples = [
        sample(metric, 3.0 + i, 1, region=region, TableName="GameScores", Operation=op)
        for i, op in enumerate(OLD_READ + OLD_WRITE)
        for region in ("us-east-1", "eu-west-1")
    ]
    derived = evaluate(*samples)
    old_read = 2 * sum(3.0 + i for i in range(len(OLD_READ)))
    old_write = 2 * sum(3.0 + i for i in range(len(OLD_READ), len(OLD_READ) + len(OLD_WRITE)))
    assert endpoint_value(derived, f"aws_dynamodb_endpoint_read_{suffix}") == old_read
    assert endpoint_value(derived, f"aws_dynamodb_endpoint_write_{suffix}") == old_write


@pytest.mark.parametrize("metric, suffix", GROUPINGS)
def test_the_partiql_operations_split_between_read_and_write(metric, suffix):
    samples = [
        sample(metric, 1.0 + i, 1, TableName="GameScores", **dims)
        for i, (dims, _) in enumerate(SIDES)
        if dims["Operation"] in ("ExecuteStatement", "BatchExecuteStatement", "ExecuteTransaction")
    ]
    derived = evaluate(*samples)
    by_op = {
        op: endpoint_value(derived, f"aws_dynamodb_endpoint_{op}_{suffix}")
        for op in ("execute_statement", "batch_execute_statement", "execute_transaction")
    }
    counted = {}
    for i, (dims, side) in enumerate(SIDES):
        if dims["Operation"] in ("ExecuteStatement", "BatchExecuteStatement", "ExecuteTransaction"):
            counted[side] = counted.get(side, 0.0) + 1.0 + i
    # The operations' own metrics add up every series, with or without the split dimension.
    assert sum(by_op.values()) == counted["read"] + counted["write"] + counted[None]
    assert endpoint_value(derived, f"aws_dynamodb_endpoint_read_{suffix}") == counted["read"]
    assert endpoint_value(derived, f"aws_dynamodb_endpoint_write_{suffix}") == counted["write"]


# ---- throttling by cause ----

CAUSES = [
    (kind, cause, f"{kind}{metric}ThrottleEvents")
    for kind in ("Read", "Write")
    for cause, metric in (
        ("provisioned_throughput", "ProvisionedThroughput"),
        ("account_limit", "AccountLimit"),
        ("key_range_throughput", "KeyRangeThroughput"),
        ("max_on_demand_throughput", "MaxOnDemandThroughput"),
    )
]


@pytest.mark.parametrize("kind, cause, metric", CAUSES, ids=[c[2] for c in CAUSES])
def test_throttle_events_by_cause_add_up_per_table_and_index(kind, cause, metric):
    derived = evaluate(
        sample(metric, 5.0, 2, TableName="GameScores"),
        sample(metric, 7.0, 3, TableName="GameScores", region="eu-west-1"),
        sample(metric, 11.0, 1, TableName="GameScores", GlobalSecondaryIndexName=GSI),
        sample(metric, 13.0, 4, TableName="Players"),
        sample(f"{kind}ThrottleEvents", 1000.0, 1, TableName="GameScores"),  # all causes: another metric
    )
    name = f"{kind.lower()}_{cause}_throttle_events"
    assert endpoint_value(derived, f"aws_dynamodb_endpoint_{name}") == 5.0 + 7.0
    assert endpoint_value(derived, f"aws_dynamodb_endpoint_{name}", f"GameScores/{GSI}") == 11.0
    assert endpoint_value(derived, f"aws_dynamodb_endpoint_{name}", "Players") == 13.0
    assert service_value(derived, f"aws_dynamodb_{name}") == 5.0 + 7.0 + 11.0 + 13.0


def test_each_cause_reads_its_own_metric():
    samples = [sample(metric, 2.0**i, 1, TableName="GameScores") for i, (_, _, metric) in enumerate(CAUSES)]
    derived = evaluate(*samples)
    for i, (kind, cause, _) in enumerate(CAUSES):
        assert endpoint_value(derived, f"aws_dynamodb_endpoint_{kind.lower()}_{cause}_throttle_events") == 2.0**i


# ---- global tables ----


def replication_samples():
    """Table Global in three regions: each replica reports per receiving region."""
    return [
        sample("ReplicationLatency", 300.0, 10, region="us-east-1", TableName="Global", ReceivingRegion="eu-west-1"),
        sample(
            "ReplicationLatency", 900.0, 5, region="us-east-1", TableName="Global", ReceivingRegion="ap-southeast-2"
        ),
        sample("ReplicationLatency", 40.0, 4, region="eu-west-1", TableName="Global", ReceivingRegion="us-east-1"),
        sample(
            "ReplicationLatency", 500.0, 20, region="eu-west-1", TableName="Global", ReceivingRegion="ap-southeast-2"
        ),
        sample("ReplicationLatency", 60.0, 3, region="us-east-1", TableName="Other", ReceivingRegion="eu-west-1"),
        sample("PendingReplicationCount", 8.0, 2, region="us-east-1", TableName="Global", ReceivingRegion="eu-west-1"),
        sample(
            "PendingReplicationCount", 3.0, 1, region="us-east-1", TableName="Global", ReceivingRegion="ap-southeast-2"
        ),
        sample(
            "PendingReplicationCount", 5.0, 1, region="eu-west-1", TableName="Global", ReceivingRegion="ap-southeast-2"
        ),
        sample("ConsumedReadCapacityUnits", 60.0, 60, TableName="Players"),  # not a global table
    ]


def test_replication_latency_is_the_weighted_mean_over_every_receiving_region():
    derived = evaluate(*replication_samples())
    metric = "aws_dynamodb_endpoint_replication_latency"
    assert endpoint_value(derived, metric, "Global") == pytest.approx((300 + 900 + 40 + 500) / (10 + 5 + 4 + 20))
    assert endpoint_value(derived, metric, "Other") == pytest.approx(60 / 3)
    assert service_value(derived, "aws_dynamodb_replication_latency") == pytest.approx(
        (300 + 900 + 40 + 500 + 60) / (10 + 5 + 4 + 20 + 3)
    )


def test_replication_latency_by_region_is_one_endpoint_per_table_and_receiving_region():
    derived = evaluate(*replication_samples())
    got = values(derived, "aws_dynamodb_endpoint_replication_latency_by_region")
    assert got == pytest.approx(
        {
            (SERVICE, f"Global{ARROW}eu-west-1", 0): 300 / 10,
            (SERVICE, f"Global{ARROW}ap-southeast-2", 0): (900 + 500) / (5 + 20),
            (SERVICE, f"Global{ARROW}us-east-1", 0): 40 / 4,
            (SERVICE, f"Other{ARROW}eu-west-1", 0): 60 / 3,
        }
    )


def test_pending_replication_counts_add_up_per_table_and_per_receiving_region():
    derived = evaluate(*replication_samples())
    assert endpoint_value(derived, "aws_dynamodb_endpoint_pending_replication_count", "Global") == 8.0 + 3.0 + 5.0
    assert values(derived, "aws_dynamodb_endpoint_pending_replication_count_by_region") == {
        (SERVICE, f"Global{ARROW}eu-west-1", 0): 8.0,
        (SERVICE, f"Global{ARROW}ap-southeast-2", 0): 3.0 + 5.0,
    }


def test_a_series_without_a_receiving_region_names_no_region_endpoint():
    # The region endpoints are "<table>→<region>" only: never the bare table name.
    derived = evaluate(sample("ReplicationLatency", 10.0, 1, TableName="Global"))
    assert values(derived, "aws_dynamodb_endpoint_replication_latency_by_region") == {}
    assert endpoint_value(derived, "aws_dynamodb_endpoint_replication_latency", "Global") == 10.0


# ---- DynamoDB Streams ----


def test_stream_records_and_bytes_add_up_over_stream_labels():
    labels = ("2024-05-01T00:00:00.000", "2024-06-01T00:00:00.000")
    derived = evaluate(
        *(
            sample(metric, total * (i + 1), 3, TableName="GameScores", Operation="GetRecords", StreamLabel=label)
            for metric, total in (("ReturnedRecordsCount", 40.0), ("ReturnedBytes", 5000.0))
            for i, label in enumerate(labels)
        ),
        sample("ReturnedItemCount", 77.0, 1, TableName="GameScores", Operation="Query"),
    )
    assert endpoint_value(derived, "aws_dynamodb_endpoint_stream_returned_records_count") == 40.0 + 80.0
    assert endpoint_value(derived, "aws_dynamodb_endpoint_stream_returned_bytes") == 5000.0 + 10000.0


# ---- Kinesis Data Streams change data capture ----

CDC = {"DelegatedOperation": "KinesisDataStreams"}


def test_kinesis_age_and_throttled_puts_are_the_largest_maximum_and_failures_add_up():
    derived = evaluate(
        sample("AgeOfOldestUnreplicatedRecord", 90.0, 3, low=10.0, high=70.0, TableName="GameScores", **CDC),
        sample(
            "AgeOfOldestUnreplicatedRecord",
            40.0,
            1,
            low=40.0,
            high=40.0,
            TableName="GameScores",
            region="eu-west-1",
            **CDC,
        ),
        sample("ThrottledPutRecordCount", 9.0, 3, low=1.0, high=6.0, TableName="GameScores", **CDC),
        sample("ThrottledPutRecordCount", 8.0, 1, low=8.0, high=8.0, TableName="GameScores", region="eu-west-1", **CDC),
        sample("FailedToReplicateRecordCount", 4.0, 2, TableName="GameScores", **CDC),
        sample("FailedToReplicateRecordCount", 5.0, 1, TableName="GameScores", region="eu-west-1", **CDC),
    )
    assert endpoint_value(derived, "aws_dynamodb_endpoint_kinesis_age_of_oldest_unreplicated_record") == max(70.0, 40.0)
    assert endpoint_value(derived, "aws_dynamodb_endpoint_kinesis_throttled_put_record_count") == max(6.0, 8.0)
    assert endpoint_value(derived, "aws_dynamodb_endpoint_kinesis_failed_to_replicate_record_count") == 4.0 + 5.0


# ---- online index builds ----


def test_index_build_metrics_belong_to_the_index_being_built():
    index = {"TableName": "GameScores", "GlobalSecondaryIndexName": GSI}
    derived = evaluate(
        sample("OnlineIndexPercentageProgress", 120.0, 3, low=30.0, high=45.5, **index),
        sample("OnlineIndexConsumedWriteCapacity", 600.0, 60, **index),
        sample("OnlineIndexConsumedWriteCapacity", 30.0, 2, region="eu-west-1", **index),
        sample("OnlineIndexThrottleEvents", 7.0, 2, **index),
    )
    endpoint = f"GameScores/{GSI}"
    assert endpoint_value(derived, "aws_dynamodb_endpoint_online_index_percentage_progress", endpoint) == 45.5
    assert endpoint_value(derived, "aws_dynamodb_endpoint_online_index_consumed_write_capacity", endpoint) == 630.0
    assert endpoint_value(derived, "aws_dynamodb_endpoint_online_index_throttle_events", endpoint) == 7.0
    for metric in ("percentage_progress", "consumed_write_capacity", "throttle_events"):
        assert endpoint_value(derived, f"aws_dynamodb_endpoint_online_index_{metric}") is None  # not the table's


# ---- tables without these metrics ----

DEPTH_METRICS = [
    "replication_latency",
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
    "execute_statement_returned_item_count",
    *(f"{kind.lower()}_{cause}_throttle_events" for kind, cause, _ in CAUSES),
    *(f"{op}_successful_request_latency" for op in OPERATIONS if op not in ("get", "put", "query", "scan")),
    *(f"{op}_{suffix}" for op in OPERATIONS for suffix in ("throttled_requests", "system_errors")),
]


def test_a_table_without_these_metrics_gets_no_value_for_them():
    derived = evaluate(
        sample("ConsumedReadCapacityUnits", 60.0, 60, TableName="GameScores"),
        sample("ConsumedWriteCapacityUnits", 30.0, 30, TableName="GameScores", GlobalSecondaryIndexName=GSI),
        sample("SuccessfulRequestLatency", 40.0, 4, stats=(("p99", 9.0),), TableName="GameScores", Operation="GetItem"),
        sample("ReturnedItemCount", 5.0, 1, TableName="GameScores", Operation="Query"),
        sample("ReadThrottleEvents", 2.0, 1, TableName="GameScores"),
    )
    named = {d.metric.removeprefix("aws_dynamodb_").removeprefix("endpoint_") for d in derived}
    assert named & set(DEPTH_METRICS) == set()
    assert {"get_successful_request_latency", "get_successful_request_latency_p99"} <= named
