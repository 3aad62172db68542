"""Encoding a minute's derived values as OTLP requests, and reading OTLP/HTTP answers."""

from __future__ import annotations

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsPartialSuccess,
    ExportMetricsServiceResponse,
)

from receiver.exporters.otlp_encode import (
    encode_minute,
    failure_message,
    partial_success,
    ucum_unit,
)
from receiver.model import DerivedValue
from receiver.rules import MetricInfo

MINUTE_MS = 1_700_000_040_000
SERVICE = "aws-dynamodb::123456789012"
OTHER = "aws-dynamodb::210987654321"
LAYER = "AWS_DYNAMODB"
INFOS = {
    "aws_dynamodb_consumed_read_capacity_units": MetricInfo(
        "aws_dynamodb_consumed_read_capacity_units", "service", "units/s", "Read units per second.", LAYER, "AVG"
    ),
    "aws_dynamodb_endpoint_get_successful_request_latency": MetricInfo(
        "aws_dynamodb_endpoint_get_successful_request_latency", "endpoint", "ms", "GetItem latency.", LAYER, "AVG"
    ),
}


def service_value(service: str, value: float) -> DerivedValue:
    return DerivedValue("aws_dynamodb_consumed_read_capacity_units", "service", service, None, LAYER, MINUTE_MS, value)


def endpoint_value(table: str, value: float) -> DerivedValue:
    return DerivedValue(
        "aws_dynamodb_endpoint_get_successful_request_latency", "endpoint", SERVICE, table, LAYER, MINUTE_MS, value
    )


def attributes(key_values) -> dict[str, str]:
    return {kv.key: kv.value.string_value for kv in key_values}


def test_each_service_is_one_resource_naming_the_service_and_layer():
    [request] = encode_minute([service_value(SERVICE, 1.0), service_value(OTHER, 2.0)], INFOS.get)
    resources = [attributes(rm.resource.attributes) for rm in request.resource_metrics]
    assert resources == [
        {"service.name": SERVICE, "service.layer": LAYER},
        {"service.name": OTHER, "service.layer": LAYER},
    ]


def test_a_metric_is_a_gauge_with_its_name_ucum_unit_and_description():
    [request] = encode_minute([service_value(SERVICE, 1.5)], INFOS.get)
    [metric] = request.resource_metrics[0].scope_metrics[0].metrics
    assert metric.WhichOneof("data") == "gauge"
    assert (metric.name, metric.unit, metric.description) == (
        "aws_dynamodb_consumed_read_capacity_units",
        "{unit}/s",
        "Read units per second.",
    )
    [point] = metric.gauge.data_points
    assert point.as_double == 1.5


def test_a_point_carries_its_endpoint_and_the_minute_start():
    [request] = encode_minute([endpoint_value("Orders", 4.0), endpoint_value("GameScores", 5.0)], INFOS.get)
    [metric] = request.resource_metrics[0].scope_metrics[0].metrics
    points = {
        attributes(p.attributes)["endpoint"]: (p.time_unix_nano, p.start_time_unix_nano, p.as_double)
        for p in metric.gauge.data_points
    }
    assert points == {"GameScores": (MINUTE_MS * 1_000_000, 0, 5.0), "Orders": (MINUTE_MS * 1_000_000, 0, 4.0)}


def test_a_metric_the_rules_no_longer_define_is_sent_without_unit():
    value = DerivedValue("retired_metric", "service", SERVICE, None, LAYER, MINUTE_MS, 1.0)
    [request] = encode_minute([value], INFOS.get)
    [metric] = request.resource_metrics[0].scope_metrics[0].metrics
    assert (metric.name, metric.unit, metric.description) == ("retired_metric", "", "")


def test_a_large_minute_splits_into_requests_of_bounded_size():
    values = [endpoint_value(f"Table{i}", float(i)) for i in range(5)]
    requests = encode_minute(values, INFOS.get, max_points=2)
    sizes = [
        sum(len(m.gauge.data_points) for rm in r.resource_metrics for sm in rm.scope_metrics for m in sm.metrics)
        for r in requests
    ]
    assert sizes == [2, 2, 1]
    sent = sorted(
        p.as_double
        for r in requests
        for rm in r.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        for p in m.gauge.data_points
    )
    assert sent == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_the_same_values_in_another_order_give_the_same_bytes():
    values = [endpoint_value("A", 1.0), service_value(OTHER, 2.0), endpoint_value("B", 3.0)]
    first = [r.SerializeToString(deterministic=True) for r in encode_minute(values, INFOS.get)]
    second = [r.SerializeToString(deterministic=True) for r in encode_minute(values[::-1], INFOS.get)]
    assert first == second


@pytest.mark.parametrize(
    ("unit", "ucum"),
    [
        ("ms", "ms"),
        ("%", "%"),
        ("units", "{unit}"),
        ("units/s", "{unit}/s"),
        ("requests", "{request}"),
        ("items", "{item}"),
        ("records", "{record}"),
        ("events", "{event}"),
        ("bytes", "By"),
        ("", ""),
        ("widgets", "{widgets}"),
        ("widgets/s", "{widgets}/s"),
        ("kB per s", "kB per s"),
    ],
)
def test_rule_units_map_to_ucum(unit, ucum):
    assert ucum_unit(unit) == ucum


def test_a_partial_success_gives_the_rejected_points_and_reason():
    body = ExportMetricsServiceResponse(
        partial_success=ExportMetricsPartialSuccess(rejected_data_points=3, error_message="too old")
    ).SerializeToString()
    found = partial_success(body)
    assert (found.rejected_points, found.message) == (3, "too old")


@pytest.mark.parametrize(
    "body",
    [b"", ExportMetricsServiceResponse(partial_success=ExportMetricsPartialSuccess()).SerializeToString(), b"\xff\xff"],
    ids=["no-field", "empty-partial-success", "not-protobuf"],
)
def test_an_unset_empty_or_unreadable_partial_success_is_none(body):
    assert partial_success(body) is None


def test_a_protobuf_failure_answer_gives_its_status_message():
    message = b"metric name is invalid"
    status = b"\x08\x03" + b"\x12" + bytes([len(message)]) + message  # Status{code: 3, message}
    assert failure_message(status, "application/x-protobuf") == "metric name is invalid"


def test_a_text_failure_answer_gives_its_text_on_one_printable_line():
    assert failure_message(b"upstream\x00 connect\n error", "text/plain") == "upstream connect error"
