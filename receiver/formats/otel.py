"""What the two OpenTelemetry formats share: the datapoint walk, quantiles, and encoding.

Decoding parses each framed message with the lean summary view
(``receiver/proto/summary_view.proto``), which reads 0.7 and 1.x alike and leaves a
datapoint's labels as raw bytes. The raw label bytes, with the resource's account and
region and the metric's unit, key the interned Series, so a series' labels are parsed (by
the format's own generated classes) only the first time it is seen.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from math import isfinite
from typing import Any, Protocol

from google.protobuf.message import DecodeError as ProtobufDecodeError
from google.protobuf.message import Message

from receiver.model import Pairs, Sample, Series, percentile_name
from receiver.proto import summary_view_pb2

from . import fastpath
from . import series as interning
from .errors import DecodeError
from .framing import frame, split_frames
from .packing import pack
from .series import merge_labels
from .units import from_ucum, to_ucum

ACCOUNT_ATTRIBUTE = "cloud.account.id"
REGION_ATTRIBUTE = "cloud.region"
MESSAGE_MAX_DATAPOINTS = 100
"""How many datapoints the encoder puts in one ExportMetricsServiceRequest at most.

AWS documents only that a record holds one or more messages and that a message may hold
several metrics; this bound makes encoded records carry several messages, as CloudWatch's do.
"""

_NS_PER_MS = 1_000_000
_MAX_FIXED64 = (1 << 64) - 1
_parse_request = summary_view_pb2.Request.FromString
_parse_point = summary_view_pb2.DataPoint.FromString


@dataclass(frozen=True, slots=True)
class Flavor:
    """How one OpenTelemetry format differs from the other."""

    name: str
    raw_labels: Callable[[Any], Sequence[bytes]]
    """A view DataPoint's raw labels (0.7 ``labels``, 1.x ``attributes``)."""
    parse_labels: Callable[[Sequence[bytes]], tuple[str, str, Pairs]]
    """Raw labels -> (namespace, metric name, sorted dimensions); raises DecodeError."""
    key_value: type[Message]
    """The format's KeyValue class, for resource attributes."""
    shape: fastpath.Shape
    """Where the format keeps a datapoint's labels, for the fast path."""


def raw_field(name: str) -> Callable[[Any], Sequence[bytes]]:
    """A getter for a view DataPoint's raw label field."""
    return operator.attrgetter(name)


def decode(data: bytes, extra_labels: Pairs, flavor: Flavor) -> list[Sample]:
    """Decode one delimited record of ``flavor``'s format into samples.

    The fast path (fastpath.py) takes nearly every record CloudWatch sends; what it
    declines, from an unusual layout to a malformed message, is walked point by point here.
    """
    fast = fastpath.decode(data, extra_labels, flavor, _resource, _new_series)
    if fast is not None:
        return fast
    out: list[Sample] = []
    for message in split_frames(data):
        for resource, metrics in _read_message(message, flavor):
            account, region, labels = _resource(resource, flavor, extra_labels)
            for unit, points in metrics:
                if points:
                    _decode_points(points, (flavor.name, account, region, unit), labels, flavor, out)
    return out


def _read_message(message: memoryview, flavor: Flavor) -> list[tuple[Any, list[tuple[str, list[Any]]]]]:
    """A message's resources, each with its metrics' units and parsed datapoints; every
    datapoint is parsed before anything is judged, as one parse of the whole message would."""
    try:
        request = _parse_request(message)
        return [
            (resource_metrics.resource,
             [(metric.unit, list(map(_parse_point, metric.summary.data_points)))
              for scope in resource_metrics.scopes for metric in scope.metrics])
            for resource_metrics in request.resource_metrics
        ]
    except ProtobufDecodeError as exc:
        raise DecodeError(
            f"a message is not a valid {flavor.name} ExportMetricsServiceRequest ({exc})"
        ) from None


def _resource(resource: Any, flavor: Flavor, extra_labels: Pairs) -> tuple[str, str, Pairs]:
    """The account, region and sample labels a ResourceMetrics' attributes give."""
    own: dict[str, str] = {}
    account = region = ""
    for raw in resource.attributes:
        try:
            attribute = flavor.key_value.FromString(raw)
        except ProtobufDecodeError as exc:
            raise DecodeError(f"a resource attribute is not a valid KeyValue ({exc})") from None
        value = attribute.value
        if value.WhichOneof("value") != "string_value":
            continue  # CloudWatch sends only strings; anything else cannot be a label
        if attribute.key == ACCOUNT_ATTRIBUTE:
            account = value.string_value
        elif attribute.key == REGION_ATTRIBUTE:
            region = value.string_value
        else:
            own[attribute.key] = value.string_value
    if not account:
        raise DecodeError(f"a message's resource has no {ACCOUNT_ATTRIBUTE} attribute")
    if not region:
        raise DecodeError(f"a message's resource has no {REGION_ATTRIBUTE} attribute")
    return account, region, merge_labels(own, extra_labels)


def _decode_points(
    points: Iterable[Any], context: tuple[str, str, str, str], labels: Pairs,
    flavor: Flavor, out: list[Sample],
) -> None:
    """Append one Sample per view DataPoint to ``out``.

    Names are bound locally because every attribute lookup and call here is paid per
    datapoint.
    """
    lookup = interning.lookup
    raw_labels = flavor.raw_labels
    append = out.append
    finite = isfinite
    new = tuple.__new__
    for point in points:
        key = (context, tuple(raw_labels(point)))
        series = lookup(key)
        if series is None:
            series = _new_series(key, flavor)
        start = point.start_time_unix_nano
        end = point.time_unix_nano
        if end <= start:
            raise DecodeError(
                f"a datapoint of {_name(series)} ends ({end} ns) no later than it starts ({start} ns)"
            )
        low = high = more = None
        for value_at in point.quantile_values:
            quantile = value_at.quantile
            if quantile == 0.0:
                low = value_at.value
            elif quantile == 1.0:
                high = value_at.value
            elif more is None:
                more = [(quantile, value_at.value)]
            else:
                more.append((quantile, value_at.value))
        if low is None or high is None:
            raise DecodeError(_missing_quantiles(series, start, low is None, high is None))
        total = point.sum
        if not (finite(total) and finite(low) and finite(high)):
            raise DecodeError(f"a datapoint of {_name(series)} has a non-finite sum, minimum or maximum")
        append(new(Sample, (series, start // 1_000_000, end // 1_000_000, float(point.count), total,
                            low, high, _percentiles(more, series) if more else (), labels)))


def _new_series(key: tuple[tuple[str, str, str, str], tuple[bytes, ...]], flavor: Flavor) -> Series:
    (_, account, region, unit), raw = key
    namespace, metric, dimensions = flavor.parse_labels(raw)
    return interning.remember(
        key, Series(account, region, namespace, metric, dimensions, from_ucum(unit))
    )


_percentile_names: dict[float, str] = {}


def _percentiles(values: list[tuple[float, float]], series: Series) -> tuple[tuple[str, float], ...]:
    """Quantiles strictly between 0 and 1 as CloudWatch percentile statistics, sorted."""
    stats = []
    for quantile, value in values:
        name = _percentile_names.get(quantile)
        if name is None:
            if not 0.0 < quantile < 1.0:  # also false for NaN
                raise DecodeError(f"a datapoint of {_name(series)} has quantile {quantile}, outside 0..1")
            name = percentile_name(quantile)
            if len(_percentile_names) < 1000:
                _percentile_names[quantile] = name
        if not isfinite(value):
            raise DecodeError(f"a datapoint of {_name(series)} has a non-finite {name}")
        stats.append((name, value))
    stats.sort()
    for (first, _), (second, _) in zip(stats, stats[1:]):
        if first == second:
            raise DecodeError(f"a datapoint of {_name(series)} repeats the statistic {first}")
    return tuple(stats)


def _missing_quantiles(series: Series, start_ns: int, no_low: bool, no_high: bool) -> str:
    missing = " and ".join(
        text for text, absent in (("0.0 (minimum)", no_low), ("1.0 (maximum)", no_high)) if absent
    )
    plural = "s" if no_low and no_high else ""
    return (
        f"the datapoint of {_name(series)} starting at {start_ns // _NS_PER_MS} ms "
        f"lacks the quantile{plural} {missing}"
    )


def _name(series: Series) -> str:
    return f"{series.namespace}/{series.metric}"


def quantile_of(statistic: str) -> float:
    """The quantile of a percentile statistic (``p99.9`` -> 0.999); ValueError otherwise."""
    try:
        quantile = round(float(statistic[1:]) / 100, 12) if statistic[:1] == "p" else -1.0
    except ValueError:
        quantile = -1.0
    if not 0.0 < quantile < 1.0 or percentile_name(quantile) != statistic:
        raise ValueError(
            f"the OpenTelemetry formats carry only percentile statistics, not {statistic!r}"
        )
    return quantile


class MessageBuilder(Protocol):
    """Builds one ExportMetricsServiceRequest of a format (otel07 and otel10 have one each)."""

    def new_request(self) -> Message:
        """An empty ExportMetricsServiceRequest."""
        ...

    def add_resource(self, request: Any, attributes: Pairs) -> Any:
        """Add a ResourceMetrics with these attributes; returns its scope (metrics list holder)."""
        ...

    def add_metric(self, scope: Any, series: Series) -> Any:
        """Add a summary Metric for ``series``; returns its data_points container."""
        ...

    def set_labels(self, point: Any, series: Series) -> None:
        """Write the series' namespace, metric name and dimensions onto a datapoint."""
        ...


def encode(samples: Iterable[Sample], max_record_bytes: int, builder: MessageBuilder) -> list[bytes]:
    """Frame samples as CloudWatch does: delimited ExportMetricsServiceRequests, packed
    into records of at most ``max_record_bytes``.

    Consecutive samples of one resource (account, region, labels) share a ResourceMetrics,
    consecutive samples of one metric (namespace, name, unit) share a Metric, so input grouped
    that way encodes compactly, and order is kept whatever it is.
    """
    samples = list(samples)
    for sample in samples:
        _check_encodable(sample)
    frames: list[bytes] = []
    for start in range(0, len(samples), MESSAGE_MAX_DATAPOINTS):
        chunk = samples[start:start + MESSAGE_MAX_DATAPOINTS]
        frames.extend(_frames_within(chunk, max_record_bytes, builder))
    return pack(frames, max_record_bytes)


def _frames_within(samples: list[Sample], limit: int, builder: MessageBuilder) -> list[bytes]:
    """One framed message of ``samples``, or halves of them until each frame fits ``limit``."""
    framed = frame(_build(samples, builder).SerializeToString())
    if len(framed) <= limit or len(samples) == 1:
        return [framed]  # a lone datapoint too large is reported by pack()
    middle = len(samples) // 2
    return _frames_within(samples[:middle], limit, builder) + _frames_within(samples[middle:], limit, builder)


def _build(samples: list[Sample], builder: MessageBuilder) -> Message:
    request = builder.new_request()
    resource_key: Hashable = None
    metric_key: Hashable = None
    scope = points = None
    for sample in samples:
        series = sample.series
        key = (series.account, series.region, sample.labels)
        if key != resource_key:
            resource_key, metric_key = key, None
            attributes = tuple(
                pair for pair in sample.labels if pair[0] not in (ACCOUNT_ATTRIBUTE, REGION_ATTRIBUTE)
            ) + ((ACCOUNT_ATTRIBUTE, series.account), (REGION_ATTRIBUTE, series.region))
            scope = builder.add_resource(request, attributes)
        if (series.namespace, series.metric, series.unit) != metric_key:
            metric_key = (series.namespace, series.metric, series.unit)
            points = builder.add_metric(scope, series)
        point = points.add()
        builder.set_labels(point, series)
        point.start_time_unix_nano = sample.start_ms * _NS_PER_MS
        point.time_unix_nano = sample.end_ms * _NS_PER_MS
        point.count = int(sample.count)
        point.sum = sample.sum
        quantiles = [(0.0, sample.min)]
        quantiles.extend((quantile_of(name), value) for name, value in sample.stats)
        quantiles.sort()
        quantiles.append((1.0, sample.max))
        for quantile, value in quantiles:
            value_at = point.quantile_values.add()
            value_at.quantile = quantile
            value_at.value = value
    return request


def metric_name(series: Series) -> str:
    """The OpenTelemetry metric name CloudWatch gives a series."""
    return f"amazonaws.com/{series.namespace}/{series.metric}"


def metric_unit(series: Series) -> str:
    return to_ucum(series.unit)


def _check_encodable(sample: Sample) -> None:
    """ValueError unless the OpenTelemetry formats can carry this sample unchanged."""
    count = sample.count
    if not (isfinite(count) and count == int(count) and 0 <= count <= _MAX_FIXED64):
        raise ValueError(f"the OpenTelemetry formats carry whole counts only, not {count!r}")
    if not 0 <= sample.start_ms < sample.end_ms <= _MAX_FIXED64 // _NS_PER_MS:
        raise ValueError(
            f"a sample's period ({sample.start_ms}..{sample.end_ms} ms) must be non-empty and non-negative"
        )
    values = [sample.sum, sample.min, sample.max, *(value for _, value in sample.stats)]
    if not all(isfinite(value) for value in values):
        raise ValueError("CloudWatch never streams non-finite statistics; cannot encode one")
    for name, _ in sample.stats:
        quantile_of(name)
