"""Small builders for hand-made records in the format tests."""

from __future__ import annotations

from collections.abc import Iterable

from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as otel10_service

from receiver.formats import SeriesCache
from receiver.formats.framing import frame
from receiver.proto.otel07 import metrics_service_pb2 as otel07_service

ACCOUNT = "123456789012"
REGION = "us-east-1"
START_NS = 1_700_000_040_000_000_000
END_NS = START_NS + 60_000_000_000
NOW_MS = START_NS // 1_000_000 + 3_600_000
"""A fixed "now" for tests that pass ``now_ms``: an hour after START_NS."""
CACHE = SeriesCache()
"""The format tests' series cache, shared by them as a receiver's is by its deliveries; tests
of a cache's own behaviour make their own."""

RESOURCE = (
    ("cloud.provider", "aws"),
    ("cloud.account.id", ACCOUNT),
    ("cloud.region", REGION),
    ("aws.exporter.arn", f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:metric-stream/S"),
)
DYNAMODB = (("Namespace", "AWS/DynamoDB"), ("MetricName", "ConsumedReadCapacityUnits"))
QUANTILES = ((0.0, 1.0), (1.0, 3.0))


def otel07_message(
    labels: Iterable[tuple[str, str]] = (*DYNAMODB, ("TableName", "T")),
    quantiles: Iterable[tuple[float, float]] = QUANTILES,
    resource: Iterable[tuple[str, str]] = RESOURCE,
    *,
    start: int = START_NS,
    end: int = END_NS,
    count: int = 2,
    total: float = 4.0,
    unit: str = "{Count}",
    points: int = 1,
    name: str | None = None,
) -> otel07_service.ExportMetricsServiceRequest:
    """One message of one metric; ``name`` None names it as CloudWatch would from the labels."""
    labels, quantiles = tuple(labels), tuple(quantiles)
    request = otel07_service.ExportMetricsServiceRequest()
    resource_metrics = request.resource_metrics.add()
    for key, value in resource:
        attribute = resource_metrics.resource.attributes.add()
        attribute.key, attribute.value.string_value = key, value
    metric = resource_metrics.instrumentation_library_metrics.add().metrics.add()
    metric.name, metric.unit = cloudwatch_name(labels) if name is None else name, unit
    for _ in range(points):
        point = metric.double_summary.data_points.add()
        for key, value in labels:
            label = point.labels.add()
            label.key, label.value = key, value
        point.start_time_unix_nano, point.time_unix_nano = start, end
        point.count, point.sum = count, total
        for quantile, value in quantiles:
            value_at = point.quantile_values.add()
            value_at.quantile, value_at.value = quantile, value
    return request


def otel10_message(
    attributes: Iterable[tuple[str, str]] = DYNAMODB,
    dimensions: Iterable[tuple[str, str]] | None = (("TableName", "T"),),
    quantiles: Iterable[tuple[float, float]] = QUANTILES,
    *,
    start: int = START_NS,
    end: int = END_NS,
    total: float = 4.0,
    name: str | None = None,
    points: int = 1,
) -> otel10_service.ExportMetricsServiceRequest:
    """One message of one metric; ``name`` None names it as CloudWatch would from the attributes."""
    attributes, quantiles = tuple(attributes), tuple(quantiles)
    dimensions = None if dimensions is None else tuple(dimensions)
    request = otel10_service.ExportMetricsServiceRequest()
    resource_metrics = request.resource_metrics.add()
    for key, value in RESOURCE:
        attribute = resource_metrics.resource.attributes.add()
        attribute.key, attribute.value.string_value = key, value
    metric = resource_metrics.scope_metrics.add().metrics.add()
    metric.name, metric.unit = cloudwatch_name(attributes) if name is None else name, "{Count}"
    for _ in range(points):
        point = metric.summary.data_points.add()
        for key, value in attributes:
            attribute = point.attributes.add()
            attribute.key, attribute.value.string_value = key, value
        if dimensions is not None:
            nested = point.attributes.add()
            nested.key = "Dimensions"
            nested.value.kvlist_value.SetInParent()
            for key, value in dimensions:
                dimension = nested.value.kvlist_value.values.add()
                dimension.key, dimension.value.string_value = key, value
        point.start_time_unix_nano, point.time_unix_nano = start, end
        point.count, point.sum = 2, total
        for quantile, value in quantiles:
            value_at = point.quantile_values.add()
            value_at.quantile, value_at.value = quantile, value
    return request


def cloudwatch_name(labels: Iterable[tuple[str, str]]) -> str:
    """``amazonaws.com/<Namespace>/<MetricName>`` of these labels; empty without both."""
    found = dict(labels)
    if "Namespace" in found and "MetricName" in found:
        return f"amazonaws.com/{found['Namespace']}/{found['MetricName']}"
    return ""


def record(*messages: object) -> bytes:
    """A delimited record of the given messages."""
    return b"".join(frame(message.SerializeToString()) for message in messages)  # type: ignore[attr-defined]
