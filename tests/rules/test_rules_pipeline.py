"""The pipeline pack (rules/aws-pipeline): Firehose and metric stream metrics on hand-built
samples. Expected values are worked out here from the definitions in docs/metrics.md
("The pipeline"), never by the engine."""

from __future__ import annotations

import pytest

from tests.rules.rulekit import ACCOUNT, evaluate, pack, sample, values

SERVICE = f"aws-metric-stream::{ACCOUNT}"
FIREHOSE = "AWS/Firehose"
STREAMS = "AWS/CloudWatch/MetricStreams"
LAYER = "AWS_METRIC_STREAM"

# metric suffix -> (unit, how minutes merge), the same at service and endpoint scope
FIREHOSE_METRICS = {
    "delivery_success": ("%", "AVG"),
    "delivery_data_freshness": ("s", "MAX"),
    "delivery_records": ("records", "SUM"),
    "delivery_bytes": ("bytes", "SUM"),
    "incoming_records": ("records", "SUM"),
    "incoming_bytes": ("bytes", "SUM"),
    "throttled_records": ("records", "SUM"),
    "backup_records": ("records", "SUM"),
}
STREAM_METRICS = {
    "metric_updates": ("updates", "SUM"),
    "total_metric_updates": ("updates", "SUM"),
    "publish_error_rate": ("%", "AVG"),
}
# The CloudWatch metric each count reads (Σ Sum).
FIREHOSE_COUNTS = {
    "delivery_records": "DeliveryToHttpEndpoint.Records",
    "delivery_bytes": "DeliveryToHttpEndpoint.Bytes",
    "incoming_records": "IncomingRecords",
    "incoming_bytes": "IncomingBytes",
    "throttled_records": "ThrottledRecords",
    "backup_records": "DeliveryToS3.Records",
}
STREAM_COUNTS = {"metric_updates": "MetricUpdate", "total_metric_updates": "TotalMetricUpdate"}


def firehose(metric, total, count=1.0, stream="demo-firehose", **kwargs):
    return sample(metric, total, count, namespace=FIREHOSE, DeliveryStreamName=stream, **kwargs)


def stream(metric, total, count=1.0, name="demo-metric-stream", **kwargs):
    return sample(metric, total, count, namespace=STREAMS, MetricStreamName=name, **kwargs)


def endpoint_value(derived, suffix, endpoint, minute=0):
    return values(derived, f"aws_metric_stream_endpoint_{suffix}").get((SERVICE, endpoint, minute))


def service_value(derived, suffix, minute=0, service=SERVICE):
    return values(derived, f"aws_metric_stream_{suffix}").get((service, None, minute))


# ---- the metric list ----


def test_the_pack_defines_each_pipeline_metric_at_both_scopes_with_unit_layer_and_merge():
    defined = {m.name: m for m in pack().metrics if m.name.startswith("aws_metric_stream_")}
    expected = {}
    for suffix, (unit, merge) in (FIREHOSE_METRICS | STREAM_METRICS).items():
        expected[f"aws_metric_stream_{suffix}"] = ("service", unit, merge)
        expected[f"aws_metric_stream_endpoint_{suffix}"] = ("endpoint", unit, merge)
    assert {name: (m.scope, m.unit, m.downsampling) for name, m in defined.items()} == expected
    assert len(expected) == 22
    assert all(m.layer == LAYER and m.description for m in defined.values())


def test_every_other_metric_stays_in_the_dynamodb_layer():
    others = [m for m in pack().metrics if not m.name.startswith("aws_metric_stream_")]
    assert others and all(m.layer == "AWS_DYNAMODB" and m.name.startswith("aws_dynamodb_") for m in others)


# ---- Firehose ----


def test_delivery_success_is_sum_over_sample_count_of_every_request():
    derived = evaluate(
        firehose("DeliveryToHttpEndpoint.Success", 3.0, 4),  # 3 of 4 requests succeeded
        firehose("DeliveryToHttpEndpoint.Success", 1.0, 1, region="eu-west-1"),
        firehose("DeliveryToHttpEndpoint.Success", 0.0, 2, stream="other"),
    )
    assert endpoint_value(derived, "delivery_success", "firehose:demo-firehose") == pytest.approx(100 * 4 / 5)
    assert endpoint_value(derived, "delivery_success", "firehose:other") == 0.0
    # The account's weighted over every request, not a mean of the streams' shares (80 and 0).
    assert service_value(derived, "delivery_success") == pytest.approx(100 * 4 / 7)


def test_delivery_success_without_requests_has_no_value():
    derived = evaluate(firehose("DeliveryToHttpEndpoint.Success", 0.0, 0))
    assert endpoint_value(derived, "delivery_success", "firehose:demo-firehose") is None
    assert service_value(derived, "delivery_success") is None


def test_data_freshness_is_the_largest_maximum():
    derived = evaluate(
        # Sum ÷ SampleCount is 50 and 80: the Maximum, not the mean, is the oldest record's age.
        firehose("DeliveryToHttpEndpoint.DataFreshness", 300.0, 6, low=20.0, high=95.0),
        firehose("DeliveryToHttpEndpoint.DataFreshness", 160.0, 2, low=60.0, high=110.0, region="eu-west-1"),
        firehose("DeliveryToHttpEndpoint.DataFreshness", 900.0, 3, low=100.0, high=700.0, stream="other"),
    )
    assert endpoint_value(derived, "delivery_data_freshness", "firehose:demo-firehose") == 110.0
    assert endpoint_value(derived, "delivery_data_freshness", "firehose:other") == 700.0
    assert service_value(derived, "delivery_data_freshness") == 700.0


@pytest.mark.parametrize(("suffix", "metric"), FIREHOSE_COUNTS.items())
def test_firehose_counts_are_the_sum_of_sums(suffix, metric):
    derived = evaluate(
        firehose(metric, 120.0, 3),
        firehose(metric, 30.0, 1, region="eu-west-1"),
        firehose(metric, 7.0, 7, stream="other"),
        # Without a stream: not one of the account's streams, counted nowhere.
        sample(metric, 1000.0, 1, namespace=FIREHOSE),
    )
    assert endpoint_value(derived, suffix, "firehose:demo-firehose") == 150.0
    assert endpoint_value(derived, suffix, "firehose:other") == 7.0
    assert service_value(derived, suffix) == 157.0


def test_a_namespace_with_the_same_family_name_does_not_count():
    # "AWS/Firehose/DeliveryToHttpEndpoint" + "Records" makes the family of Firehose's
    # "DeliveryToHttpEndpoint.Records": the namespace filter keeps it out.
    derived = evaluate(
        firehose("DeliveryToHttpEndpoint.Records", 5.0),
        sample(
            "Records", 500.0, 1, namespace="AWS/Firehose/DeliveryToHttpEndpoint", DeliveryStreamName="demo-firehose"
        ),
    )
    assert endpoint_value(derived, "delivery_records", "firehose:demo-firehose") == 5.0
    assert service_value(derived, "delivery_records") == 5.0


# ---- metric streams ----


@pytest.mark.parametrize(("suffix", "metric"), STREAM_COUNTS.items())
def test_metric_updates_add_up_per_stream_and_the_dimensionless_series_is_not_counted_again(suffix, metric):
    derived = evaluate(
        stream(metric, 4000.0, 1),
        stream(metric, 1500.0, 1, region="eu-west-1"),
        stream(metric, 250.0, 1, name="audit"),
        # CloudWatch's own sum over every stream (no MetricStreamName): already counted above.
        sample(metric, 5750.0, 1, namespace=STREAMS),
    )
    assert endpoint_value(derived, suffix, "metric-stream:demo-metric-stream") == 5500.0
    assert endpoint_value(derived, suffix, "metric-stream:audit") == 250.0
    assert service_value(derived, suffix) == 5750.0


def test_publish_error_rate_is_sum_over_sample_count_in_percent():
    derived = evaluate(
        stream("PublishErrorRate", 0.06, 3),  # three samples averaging 0.02
        stream("PublishErrorRate", 0.0, 1, region="eu-west-1"),
        stream("PublishErrorRate", 0.5, 1, name="audit"),
        sample("PublishErrorRate", 9.0, 10, namespace=STREAMS),
    )
    assert endpoint_value(derived, "publish_error_rate", "metric-stream:demo-metric-stream") == pytest.approx(
        100 * 0.06 / 4
    )
    assert endpoint_value(derived, "publish_error_rate", "metric-stream:audit") == pytest.approx(50.0)
    assert service_value(derived, "publish_error_rate") == pytest.approx(100 * 0.56 / 5)


# ---- entities ----


def test_a_firehose_stream_and_a_metric_stream_of_one_name_are_two_endpoints():
    derived = evaluate(
        firehose("IncomingRecords", 8.0, stream="metrics"),
        stream("MetricUpdate", 900.0, name="metrics"),
    )
    assert endpoint_value(derived, "incoming_records", "firehose:metrics") == 8.0
    assert endpoint_value(derived, "metric_updates", "metric-stream:metrics") == 900.0
    assert endpoint_value(derived, "incoming_records", "metric-stream:metrics") is None
    assert endpoint_value(derived, "metric_updates", "firehose:metrics") is None
    assert {d.layer for d in derived} == {LAYER}
    assert {d.service for d in derived} == {SERVICE}


def test_each_account_is_its_own_service():
    other = "222222222222"
    derived = evaluate(
        stream("MetricUpdate", 100.0),
        stream("MetricUpdate", 40.0, account=other),
        firehose("DeliveryToHttpEndpoint.Records", 3.0, account=other),
    )
    assert service_value(derived, "metric_updates") == 100.0
    assert service_value(derived, "metric_updates", service=f"aws-metric-stream::{other}") == 40.0
    assert service_value(derived, "delivery_records", service=f"aws-metric-stream::{other}") == 3.0
    assert service_value(derived, "delivery_records") is None


def test_minutes_stay_apart():
    derived = evaluate(
        firehose("DeliveryToHttpEndpoint.Records", 10.0, minute=0),
        firehose("DeliveryToHttpEndpoint.Records", 4.0, minute=1),
    )
    assert service_value(derived, "delivery_records", minute=0) == 10.0
    assert service_value(derived, "delivery_records", minute=1) == 4.0


def test_pipeline_samples_make_no_dynamodb_values_and_dynamodb_samples_no_pipeline_values():
    pipeline = evaluate(
        firehose("DeliveryToHttpEndpoint.Success", 1.0),
        stream("MetricUpdate", 10.0),
        firehose("ThrottledRecords", 0.0),
    )
    assert pipeline and all(d.metric.startswith("aws_metric_stream_") for d in pipeline)
    dynamodb = evaluate(sample("ConsumedReadCapacityUnits", 60.0, 1, TableName="GameScores"))
    assert dynamodb and not any(d.metric.startswith("aws_metric_stream_") for d in dynamodb)
