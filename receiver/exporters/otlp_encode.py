"""One minute of derived values as OTLP metrics requests, and what an OTLP/HTTP answer says.

The mapping (opentelemetry-proto 1.x):

- one ``ResourceMetrics`` per service, with resource attributes ``service.name`` (the
  service entity, e.g. ``aws-dynamodb::123456789012``) and ``service.layer`` (e.g.
  ``AWS_DYNAMODB``; SkyWalking's own resource attribute for the layer);
- in it one ``ScopeMetrics`` naming this receiver, and one ``Gauge`` metric per derived
  metric, named as the rules name it, with the rule's description and its unit in UCUM;
- one ``NumberDataPoint`` per entity: a ``double`` value, an ``endpoint`` attribute for an
  endpoint metric (the table), an ``instance`` attribute for an instance metric, a
  ``cloud.region`` attribute for a value of one region (a table reporting from several
  regions is one point per region: derive/regions.py ``by_region``), and
  ``time_unix_nano`` the minute's *start*. The start is the time CloudWatch gives the
  period, the ``t`` of ``/api/v1/query`` and the minute SkyWalking files the value under,
  so a point means the same minute everywhere. ``start_time_unix_nano`` stays unset: a
  Gauge ignores it (metrics.proto).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from itertools import groupby

from google.protobuf import message
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from receiver.derive.regions import by_region
from receiver.formats.errors import DecodeError
from receiver.formats.framing import length_delimited_fields
from receiver.inventory.tags import Labeller, no_tags, otlp_attribute
from receiver.model import DerivedValue
from receiver.rules import MetricInfo

SERVICE_NAME = "service.name"
SERVICE_LAYER = "service.layer"
ENDPOINT = "endpoint"
INSTANCE = "instance"
REGION = "cloud.region"

SCOPE_NAME = "dynamodb-metric-stream-receiver"
MAX_POINTS_PER_REQUEST = 20_000
"""About 1.2 MB of protobuf before gzip, well inside collectors' default request limits."""

UCUM_UNITS = {
    "": "",
    "ms": "ms",
    "s": "s",
    "%": "%",
    "bytes": "By",
    "units": "{unit}",
    "requests": "{request}",
    "events": "{event}",
    "items": "{item}",
    "records": "{record}",
    "count": "{count}",
}
"""The rules' units in UCUM; a count of things is a UCUM annotation in braces, as in
OpenTelemetry's semantic conventions (``{request}``)."""

_TIME_UNITS = frozenset({"ms", "s", "min", "h"})


def ucum_unit(unit: str) -> str:
    """The UCUM form of a rule's unit: known ones from the table, ``X/s`` as a rate of X,
    another single word as an annotation (``{word}``); anything else is kept as written."""
    known = UCUM_UNITS.get(unit)
    if known is not None:
        return known
    counted, slash, per = unit.partition("/")
    if slash and per in _TIME_UNITS and counted and "/" not in per:
        return f"{ucum_unit(counted)}/{per}"
    if unit.isalpha():
        return "{" + unit + "}"
    return unit


def _scope_version() -> str:
    try:
        return metadata.version(SCOPE_NAME)
    except metadata.PackageNotFoundError:
        return ""


SCOPE = InstrumentationScope(name=SCOPE_NAME, version=_scope_version())


def _text(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


def _order(value: DerivedValue) -> tuple[str, str, str, str, str, str]:
    return (value.service, value.layer, value.metric, value.endpoint or "", value.instance or "", value.region)


def encode_minute(
    values: Sequence[DerivedValue],
    describe: Callable[[str], MetricInfo | None],
    max_points: int = MAX_POINTS_PER_REQUEST,
    tags: Labeller = no_tags,
) -> list[ExportMetricsServiceRequest]:
    """The values as requests of at most ``max_points`` data points each, in a fixed order
    (so equal values give equal bytes). ``describe`` gives a metric's unit and description;
    a metric it does not know (rules reloaded since) gets neither. ``tags`` gives a value's
    table tags, each the data point attribute ``tag.<key>`` (receiver/inventory/tags.py)."""
    if max_points < 1:
        raise ValueError("max_points must be at least 1")
    ordered = sorted(by_region(values), key=_order)
    return [
        _request(ordered[start : start + max_points], describe, tags) for start in range(0, len(ordered), max_points)
    ]


def _request(
    values: Sequence[DerivedValue], describe: Callable[[str], MetricInfo | None], tags: Labeller
) -> ExportMetricsServiceRequest:
    request = ExportMetricsServiceRequest()
    for (service, layer), of_service in groupby(values, key=lambda v: (v.service, v.layer)):
        resource_metrics = ResourceMetrics(
            resource=Resource(attributes=[_text(SERVICE_NAME, service), _text(SERVICE_LAYER, layer)])
        )
        scope_metrics = ScopeMetrics(scope=SCOPE)
        for name, of_metric in groupby(of_service, key=lambda v: v.metric):
            info = describe(name)
            metric = Metric(
                name=name,
                unit=ucum_unit(info.unit) if info else "",
                description=info.description if info else "",
                gauge=Gauge(data_points=[_point(value, tags) for value in of_metric]),
            )
            scope_metrics.metrics.append(metric)
        resource_metrics.scope_metrics.append(scope_metrics)
        request.resource_metrics.append(resource_metrics)
    return request


def _point(value: DerivedValue, tags: Labeller) -> NumberDataPoint:
    attributes = []
    if value.endpoint is not None:
        attributes.append(_text(ENDPOINT, value.endpoint))
    if value.instance is not None:
        attributes.append(_text(INSTANCE, value.instance))
    if value.region:
        attributes.append(_text(REGION, value.region))
    attributes += [_text(otlp_attribute(key), tag) for key, tag in tags(value)]
    return NumberDataPoint(
        attributes=attributes,
        time_unix_nano=value.time_ms * 1_000_000,
        as_double=value.value,
    )


@dataclass(frozen=True, slots=True)
class PartialSuccess:
    """What a 200 answer's ``partial_success`` says: points refused, and why."""

    rejected_points: int
    message: str


def partial_success(body: bytes) -> PartialSuccess | None:
    """The ``partial_success`` of an ``ExportMetricsServiceResponse`` body; None when it is
    unset or empty (which the spec counts as full success) or the body is not one."""
    try:
        response = ExportMetricsServiceResponse.FromString(body)
    except message.DecodeError:
        return None
    if not response.HasField("partial_success"):
        return None
    partial = response.partial_success
    if partial.rejected_data_points == 0 and not partial.error_message:
        return None
    return PartialSuccess(partial.rejected_data_points, partial.error_message)


STATUS_MESSAGE_FIELD = 2
"""``google.rpc.Status.message``, the text an OTLP/HTTP failure answer carries."""

_EXCERPT_CHARS = 300


def failure_message(body: bytes, content_type: str) -> str:
    """A short, printable reason from a failure answer: ``Status.message`` of a protobuf
    body, else the start of a text body; empty if there is nothing readable."""
    if content_type == "application/x-protobuf":
        try:
            for number, start, end in length_delimited_fields(body):
                if number == STATUS_MESSAGE_FIELD:
                    return _printable(body[start:end].decode("utf-8", "replace"))
        except DecodeError:
            pass
        return ""
    return _printable(body[: _EXCERPT_CHARS * 4].decode("utf-8", "replace"))


def _printable(text: str) -> str:
    cleaned = "".join(ch if ch.isprintable() else " " for ch in text)
    return " ".join(cleaned.split())[:_EXCERPT_CHARS]
