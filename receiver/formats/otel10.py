"""The ``opentelemetry1.0`` format: delimited OTLP 1.x ExportMetricsServiceRequests.

CloudWatch writes one Summary metric per CloudWatch metric; each datapoint's attributes are
``Namespace``, ``MetricName`` and ``Dimensions``, a nested key-value list (kvlist_value)
with one string pair per dimension. Any other datapoint attribute is kept as a label of its
samples (walk.label_text says how a non-string value reads), never dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from google.protobuf.message import DecodeError as ProtobufDecodeError
from google.protobuf.message import Message
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.common.v1 import common_pb2

from receiver.model import Pairs, Sample, Series

from . import otel, walk
from .errors import TOO_MUCH_WORK, DecodeError
from .limits import MAX_LABELS_PER_DATAPOINT
from .series import SeriesCache

NAME = "opentelemetry1.0"
NAMESPACE_ATTRIBUTE = "Namespace"
METRIC_ATTRIBUTE = "MetricName"
DIMENSIONS_ATTRIBUTE = "Dimensions"

_parse_attribute = common_pb2.KeyValue.FromString


def parse_attributes(raw: Sequence[bytes]) -> tuple[str, str, Pairs, Pairs]:
    """Serialized KeyValue attributes -> (namespace, metric name, sorted dimensions, sorted
    other attributes as labels)."""
    if len(raw) > MAX_LABELS_PER_DATAPOINT:
        raise DecodeError(f"a datapoint has {len(raw)} attributes, more than {MAX_LABELS_PER_DATAPOINT}", TOO_MUCH_WORK)
    namespace = metric = ""
    dimensions: dict[str, str] = {}
    others: dict[str, str] = {}
    for data in raw:
        try:
            attribute = _parse_attribute(data)
        except ProtobufDecodeError as exc:
            raise DecodeError(f"a datapoint attribute is not a valid KeyValue ({exc})") from None
        key, value = attribute.key, attribute.value
        if key == NAMESPACE_ATTRIBUTE:
            namespace = _string(value, key)
        elif key == METRIC_ATTRIBUTE:
            metric = _string(value, key)
        elif key == DIMENSIONS_ATTRIBUTE:
            kind = value.WhichOneof("value")
            if kind is None:
                continue  # an unset value: no dimensions
            if kind != "kvlist_value":
                raise DecodeError(f"a datapoint's {DIMENSIONS_ATTRIBUTE} attribute is not a key-value list")
            listed = value.kvlist_value.values
            if len(listed) > MAX_LABELS_PER_DATAPOINT:
                raise DecodeError(
                    f"a datapoint has {len(listed)} dimensions, more than {MAX_LABELS_PER_DATAPOINT}",
                    TOO_MUCH_WORK,
                )
            for dimension in listed:
                if dimension.key in dimensions:
                    raise DecodeError(f"a datapoint repeats the dimension {dimension.key!r}")
                dimensions[dimension.key] = _string(dimension.value, f"dimension {dimension.key!r}")
        elif key in others:
            raise DecodeError(f"a datapoint repeats the attribute {key!r}")
        else:
            others[key] = walk.label_text(value, f"datapoint attribute {key!r}")
    if not namespace:
        raise DecodeError(f"a datapoint has no {NAMESPACE_ATTRIBUTE} attribute")
    if not metric:
        raise DecodeError(f"a datapoint of namespace {namespace} has no {METRIC_ATTRIBUTE} attribute")
    return namespace, metric, tuple(sorted(dimensions.items())), tuple(sorted(others.items()))


def _string(value: Any, what: str) -> str:
    if value.WhichOneof("value") != "string_value":
        raise DecodeError(f"a datapoint's {what} is not a string")
    text: str = value.string_value
    return text


FLAVOR = walk.Flavor(NAME, walk.raw_field("attributes"), parse_attributes, common_pb2.KeyValue, label_tag=0x3A)


def decode(data: bytes, extra_labels: Pairs = (), now_ms: int | None = None, *, cache: SeriesCache) -> list[Sample]:
    """Decode one ``opentelemetry1.0`` record (``now_ms``, ``cache``: see decode_record)."""
    return otel.decode(data, extra_labels, FLAVOR, now_ms, cache=cache)


class _Builder:
    """otel.MessageBuilder for this format's generated classes."""

    def new_request(self) -> Message:
        return metrics_service_pb2.ExportMetricsServiceRequest()

    def add_resource(self, request: Any, attributes: Pairs) -> Any:
        resource_metrics = request.resource_metrics.add()
        for key, value in attributes:
            attribute = resource_metrics.resource.attributes.add()
            attribute.key = key
            attribute.value.string_value = value
        return resource_metrics.scope_metrics.add()

    def add_metric(self, scope: Any, series: Series) -> Any:
        metric = scope.metrics.add()
        metric.name = otel.metric_name(series)
        metric.unit = otel.metric_unit(series)
        return metric.summary.data_points

    def set_labels(self, point: Any, series: Series) -> None:
        attributes = point.attributes
        for key, text in ((NAMESPACE_ATTRIBUTE, series.namespace), (METRIC_ATTRIBUTE, series.metric)):
            attribute = attributes.add()
            attribute.key = key
            attribute.value.string_value = text
        nested = attributes.add()
        nested.key = DIMENSIONS_ATTRIBUTE
        nested.value.kvlist_value.SetInParent()  # an empty list stays a list on the wire
        values = nested.value.kvlist_value.values
        for key, text in series.dimensions:
            dimension = values.add()
            dimension.key = key
            dimension.value.string_value = text


def encode(samples: Iterable[Sample], max_record_bytes: int) -> list[bytes]:
    """Encode samples as ``opentelemetry1.0`` records (see otel.encode)."""
    return otel.encode(samples, max_record_bytes, _Builder())
