"""The ``opentelemetry0.7`` format: delimited 0.7.0 ExportMetricsServiceRequests.

CloudWatch writes one DoubleSummary metric per CloudWatch metric, each datapoint with flat
``labels``: ``Namespace``, ``MetricName``, then one per dimension.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from google.protobuf.message import DecodeError as ProtobufDecodeError
from google.protobuf.message import Message

from receiver.model import Pairs, Sample, Series
from receiver.proto.otel07 import common_pb2, metrics_service_pb2

from . import otel, walk
from .errors import TOO_MUCH_WORK, DecodeError
from .limits import MAX_LABELS_PER_DATAPOINT
from .series import SeriesCache

NAME = "opentelemetry0.7"
NAMESPACE_LABEL = "Namespace"
METRIC_LABEL = "MetricName"

_parse_label = common_pb2.StringKeyValue.FromString


def parse_labels(raw: Sequence[bytes]) -> tuple[str, str, Pairs, Pairs]:
    """Serialized StringKeyValue labels -> (namespace, metric name, sorted dimensions, ()):
    every label other than the namespace and the name is a dimension."""
    if len(raw) > MAX_LABELS_PER_DATAPOINT:
        raise DecodeError(f"a datapoint has {len(raw)} labels, more than {MAX_LABELS_PER_DATAPOINT}", TOO_MUCH_WORK)
    namespace = metric = ""
    dimensions: dict[str, str] = {}
    for data in raw:
        try:
            label = _parse_label(data)
        except ProtobufDecodeError as exc:
            raise DecodeError(f"a datapoint label is not a valid StringKeyValue ({exc})") from None
        key = label.key
        if key == NAMESPACE_LABEL:
            namespace = label.value
        elif key == METRIC_LABEL:
            metric = label.value
        elif key in dimensions:
            raise DecodeError(f"a datapoint repeats the label {key!r}")
        else:
            dimensions[key] = label.value
    if not namespace:
        raise DecodeError(f"a datapoint has no {NAMESPACE_LABEL} label")
    if not metric:
        raise DecodeError(f"a datapoint of namespace {namespace} has no {METRIC_LABEL} label")
    return namespace, metric, tuple(sorted(dimensions.items())), ()


FLAVOR = walk.Flavor(NAME, walk.raw_field("labels"), parse_labels, common_pb2.KeyValue, label_tag=0x0A)


def decode(data: bytes, extra_labels: Pairs = (), now_ms: int | None = None, *, cache: SeriesCache) -> list[Sample]:
    """Decode one ``opentelemetry0.7`` record (``now_ms``, ``cache``: see decode_record)."""
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
        return resource_metrics.instrumentation_library_metrics.add()

    def add_metric(self, scope: Any, series: Series) -> Any:
        metric = scope.metrics.add()
        metric.name = otel.metric_name(series)
        metric.unit = otel.metric_unit(series)
        return metric.double_summary.data_points

    def set_labels(self, point: Any, series: Series) -> None:
        labels = point.labels
        for key, value in ((NAMESPACE_LABEL, series.namespace), (METRIC_LABEL, series.metric)):
            label = labels.add()
            label.key = key
            label.value = value
        for key, value in series.dimensions:
            if key in (NAMESPACE_LABEL, METRIC_LABEL):
                # Flat labels: such a dimension would read back as the namespace or name.
                raise ValueError(f"the 0.7 format cannot carry a dimension named {key!r}")
            label = labels.add()
            label.key = key
            label.value = value


def encode(samples: Iterable[Sample], max_record_bytes: int) -> list[bytes]:
    """Encode samples as ``opentelemetry0.7`` records (see otel.encode)."""
    return otel.encode(samples, max_record_bytes, _Builder())
