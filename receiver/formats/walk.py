"""The careful walk of an OpenTelemetry record: one datapoint at a time, every fault named.

This is the reference decoder, and the one that runs when the compiled decoder
(``_decode.pyx``) is not built or RECEIVER_NO_EXTENSIONS=1. Each framed message is parsed
with the lean summary view (``receiver/proto/summary_view.proto``), which reads 0.7 and 1.x
alike and leaves a datapoint's labels as raw bytes; the raw label bytes, with the resource's
account and region and the metric's unit and name, key the Series in the caller's
SeriesCache, so a series' labels are parsed and checked only the first time they are seen.
The compiled decoder reuses this module's readers of a resource and of a series' labels, and
its judgement of one datapoint, so both refuse the same input in the same words.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from math import isfinite
from typing import Any

from google.protobuf.message import DecodeError as ProtobufDecodeError
from google.protobuf.message import Message

from receiver.model import Pairs, Sample, Series, percentile_name
from receiver.proto import summary_view_pb2

from .errors import (
    METRIC_NAME_MISMATCH,
    NO_DATAPOINTS,
    NON_FINITE,
    TIMESTAMP_OUT_OF_RANGE,
    TOO_MUCH_WORK,
    DecodeError,
)
from .framing import split_frames
from .limits import (
    MAX_DATAPOINTS_PER_RECORD,
    MAX_PARTS_PER_RECORD,
    MAX_RESOURCE_ATTRIBUTES,
    MAX_STATISTICS_PER_DATAPOINT,
    OLDEST_MS,
    out_of_range_message,
)
from .series import SeriesCache, merge_labels
from .units import from_ucum

ACCOUNT_ATTRIBUTE = "cloud.account.id"
REGION_ATTRIBUTE = "cloud.region"
METRIC_NAME_PREFIX = "amazonaws.com/"
"""CloudWatch names each metric ``amazonaws.com/<Namespace>/<MetricName>``."""
_NS_PER_MS = 1_000_000
_parse_request = summary_view_pb2.Request.FromString
_parse_point = summary_view_pb2.DataPoint.FromString


@dataclass(frozen=True, slots=True)
class Flavor:
    """How one OpenTelemetry format differs from the other."""

    name: str
    raw_labels: Callable[[Any], Sequence[bytes]]
    """A view DataPoint's raw labels (0.7 ``labels``, 1.x ``attributes``)."""
    parse_labels: Callable[[Sequence[bytes]], tuple[str, str, Pairs, Pairs]]
    """Raw labels -> (namespace, metric name, sorted dimensions, sorted other labels);
    raises DecodeError. The other labels (1.0 attributes besides the three CloudWatch
    writes) go into the samples' labels."""
    key_value: type[Message]
    """The format's KeyValue class, for resource attributes."""
    label_tag: int
    """The tag byte of a datapoint's label field, for the compiled decoder: 0x0A (0.7
    ``labels`` = 1) or 0x3A (1.x ``attributes`` = 7)."""


def raw_field(name: str) -> Callable[[Any], Sequence[bytes]]:
    """A getter for a view DataPoint's raw label field."""
    return operator.attrgetter(name)


def walk(data: bytes, extra_labels: Pairs, flavor: Flavor, latest_ms: int, cache: SeriesCache) -> list[Sample]:
    """The samples of one delimited record, walked point by point; DecodeError at the first fault."""
    out: list[Sample] = []
    tally = [0, 0, 0, 0]  # resources, scopes, metrics, datapoints
    for message in split_frames(data):
        for resource, metrics in _read_message(message, flavor, tally):
            account, region, labels = resource_labels(resource, flavor, extra_labels)
            for name, unit, points in metrics:
                decode_points(points, (flavor.name, account, region, unit, name), labels, flavor, latest_ms, out, cache)
    return out


def _read_message(
    message: memoryview, flavor: Flavor, tally: list[int]
) -> list[tuple[Any, list[tuple[str, str, list[Any]]]]]:
    """A message's resources, each with its metrics' names, units and parsed datapoints;
    every datapoint is parsed before anything is judged, as one parse of the whole message
    would.

    First, without parsing a datapoint: DecodeError ``no_datapoints`` if the message, a
    resource, a scope or a metric has no datapoint (CloudWatch never sends one, and each
    would cost work for nothing), ``too_much_work`` once the record (``tally``: resources,
    scopes, metrics and datapoints so far) holds more than limits.py allows. Only lengths are
    read, level by level, so a message of a million empty parts stops at the bound.
    """
    try:
        request = _parse_request(message)
    except ProtobufDecodeError as exc:
        raise DecodeError(f"a message is not a valid {flavor.name} ExportMetricsServiceRequest ({exc})") from None
    resources = request.resource_metrics
    _count(tally, 0, len(resources), "resource_metrics")
    if not resources:
        raise DecodeError("a message holds no resource_metrics", NO_DATAPOINTS)
    for resource_metrics in resources:
        scopes = resource_metrics.scopes
        _count(tally, 1, len(scopes), "scopes")
        if not scopes:
            raise DecodeError("a message's resource_metrics holds no scope", NO_DATAPOINTS)
        for scope in scopes:
            metrics = scope.metrics
            _count(tally, 2, len(metrics), "metrics")
            if not metrics:
                raise DecodeError("a message's resource_metrics holds a scope without metrics", NO_DATAPOINTS)
            for metric in metrics:
                points = len(metric.summary.data_points)
                _count(tally, 3, points, "datapoints")
                if not points:
                    raise DecodeError(f"the metric {metric.name!r} holds no datapoint", NO_DATAPOINTS)
    try:
        return [
            (
                resource_metrics.resource,
                [
                    (metric.name, metric.unit, list(map(_parse_point, metric.summary.data_points)))
                    for scope in resource_metrics.scopes
                    for metric in scope.metrics
                ],
            )
            for resource_metrics in resources
        ]
    except ProtobufDecodeError as exc:
        raise DecodeError(f"a message is not a valid {flavor.name} ExportMetricsServiceRequest ({exc})") from None


_PART_LIMITS = (MAX_PARTS_PER_RECORD, MAX_PARTS_PER_RECORD, MAX_PARTS_PER_RECORD, MAX_DATAPOINTS_PER_RECORD)


def _count(tally: list[int], kind: int, more: int, what: str) -> None:
    """Add ``more`` parts of ``kind`` to the record's tally; too_much_work past its bound."""
    tally[kind] += more
    if tally[kind] > _PART_LIMITS[kind]:
        raise DecodeError(f"the record holds more than {_PART_LIMITS[kind]} {what}", TOO_MUCH_WORK)


def resource_labels(resource: Any, flavor: Flavor, extra_labels: Pairs) -> tuple[str, str, Pairs]:
    """The account, region and sample labels a ResourceMetrics' attributes give.

    Every attribute other than the account and region becomes a label (label_text says how
    a non-string value reads).
    """
    own: dict[str, str] = {}
    account = region = ""
    if len(resource.attributes) > MAX_RESOURCE_ATTRIBUTES:
        raise DecodeError(
            f"a resource has {len(resource.attributes)} attributes, more than {MAX_RESOURCE_ATTRIBUTES}",
            TOO_MUCH_WORK,
        )
    for raw in resource.attributes:
        try:
            attribute = flavor.key_value.FromString(raw)
        except ProtobufDecodeError as exc:
            raise DecodeError(f"a resource attribute is not a valid KeyValue ({exc})") from None
        key, value = attribute.key, attribute.value
        if key in (ACCOUNT_ATTRIBUTE, REGION_ATTRIBUTE):
            if value.WhichOneof("value") != "string_value":
                raise DecodeError(f"a message's resource attribute {key} is not a string")
            if key == ACCOUNT_ATTRIBUTE:
                account = value.string_value
            else:
                region = value.string_value
        else:
            own[key] = label_text(value, f"resource attribute {key!r}")
    if not account:
        raise DecodeError(f"a message's resource has no {ACCOUNT_ATTRIBUTE} attribute")
    if not region:
        raise DecodeError(f"a message's resource has no {REGION_ATTRIBUTE} attribute")
    return account, region, merge_labels(own, extra_labels)


def label_text(value: Any, what: str) -> str:
    """An AnyValue as a label's text: a string as it is, a boolean ``true``/``false``, a
    number in decimal (a double as Python's repr), an unset value empty. DecodeError for an
    array, a key-value list or bytes: no label can hold them, and dropping them would lose
    data silently."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        text: str = value.string_value
        return text
    if kind is None:
        return ""
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind == "int_value":
        return str(value.int_value)
    if kind == "double_value":
        return repr(value.double_value)
    raise DecodeError(f"the {what} is a {kind.removesuffix('_value')}; a label holds only a string, number or boolean")


def decode_points(
    points: Iterable[Any],
    context: tuple[str, str, str, str, str],
    labels: Pairs,
    flavor: Flavor,
    latest_ms: int,
    out: list[Sample],
    cache: SeriesCache,
) -> None:
    """Append one Sample per view DataPoint to ``out``; DecodeError at the first bad one.

    Names are bound locally because every attribute lookup and call here is paid per
    datapoint.
    """
    lookup = cache.lookup
    own_labels = cache.own_labels
    raw_labels = flavor.raw_labels
    append = out.append
    finite = isfinite
    new = tuple.__new__
    oldest_ns, limit_ns = OLDEST_MS * _NS_PER_MS, (latest_ms + 1) * _NS_PER_MS
    with_extras: dict[Pairs, Pairs] = {}
    own: Pairs | None
    for point in points:
        key = (context, tuple(raw_labels(point)))
        series = lookup(key)
        if series is None:
            series, own = series_of(key, flavor, cache)
            series = cache.remember(key, series, own)
        else:
            own = own_labels(key)
        start = point.start_time_unix_nano
        end = point.time_unix_nano
        if not (oldest_ns <= start < limit_ns and oldest_ns <= end < limit_ns):
            raise DecodeError(
                out_of_range_message(
                    f"a datapoint of {_name(series)}",
                    start // _NS_PER_MS,
                    end // _NS_PER_MS,
                    latest_ms,
                ),
                TIMESTAMP_OUT_OF_RANGE,
            )
        if end <= start:
            raise DecodeError(f"a datapoint of {_name(series)} ends ({end} ns) no later than it starts ({start} ns)")
        values = point.quantile_values
        if len(values) > MAX_STATISTICS_PER_DATAPOINT:
            raise DecodeError(
                f"a datapoint of {_name(series)} has {len(values)} quantile values, "
                f"more than {MAX_STATISTICS_PER_DATAPOINT}",
                TOO_MUCH_WORK,
            )
        low = high = more = None
        for value_at in values:
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
            raise DecodeError(f"a datapoint of {_name(series)} has a non-finite sum, minimum or maximum", NON_FINITE)
        point_labels = labels
        if own:
            point_labels = with_extras.get(own) or with_extras.setdefault(own, merge_labels(dict(own), labels))
        append(
            new(
                Sample,
                (
                    series,
                    start // 1_000_000,
                    end // 1_000_000,
                    float(point.count),
                    total,
                    low,
                    high,
                    _percentiles(more, series, cache) if more else (),
                    point_labels,
                ),
            )
        )


def judge_point(
    point: bytes,
    context: tuple[str, str, str, str, str],
    labels: Pairs,
    flavor: Flavor,
    latest_ms: int,
    cache: SeriesCache,
) -> None:
    """Raise the DecodeError the careful walk raises for one datapoint (the compiled decoder
    found a fault there and lets this say what, in the same words)."""
    decode_points([_parse_point(point)], context, labels, flavor, latest_ms, [], cache)


def series_of(
    key: tuple[tuple[str, str, str, str, str], tuple[bytes, ...]], flavor: Flavor, cache: SeriesCache
) -> tuple[Series, Pairs]:
    """The interned Series and other labels of a datapoint's raw labels in a metric's
    context, parsed and checked against the metric's name. Remembering them under a key is
    the caller's: the careful walk and the compiled decoder key a series differently."""
    (_, account, region, unit, name), raw = key
    namespace, metric, dimensions, extras = flavor.parse_labels(raw)
    if name.startswith(METRIC_NAME_PREFIX) and name != f"{METRIC_NAME_PREFIX}{namespace}/{metric}":
        raise DecodeError(f"the metric {name!r} holds a datapoint of {namespace}/{metric}", METRIC_NAME_MISMATCH)
    return cache.intern(Series(account, region, namespace, metric, dimensions, from_ucum(unit))), extras


def _percentiles(
    values: list[tuple[float, float]], series: Series, cache: SeriesCache
) -> tuple[tuple[str, float], ...]:
    """Quantiles strictly between 0 and 1 as CloudWatch percentile statistics, sorted."""
    stats = []
    for quantile, value in values:
        name = cache.percentile(quantile)
        if name is None:
            if not 0.0 < quantile < 1.0:  # also false for NaN
                raise DecodeError(f"a datapoint of {_name(series)} has quantile {quantile}, outside 0..1")
            name = cache.remember_percentile(quantile, percentile_name(quantile))
        if not isfinite(value):
            raise DecodeError(f"a datapoint of {_name(series)} has a non-finite {name}", NON_FINITE)
        stats.append((name, value))
    stats.sort()
    for (first, _), (second, _) in pairwise(stats):
        if first == second:
            raise DecodeError(f"a datapoint of {_name(series)} repeats the statistic {first}")
    return tuple(stats)


def _missing_quantiles(series: Series, start_ns: int, no_low: bool, no_high: bool) -> str:
    missing = " and ".join(text for text, absent in (("0.0 (minimum)", no_low), ("1.0 (maximum)", no_high)) if absent)
    plural = "s" if no_low and no_high else ""
    return (
        f"the datapoint of {_name(series)} starting at {start_ns // _NS_PER_MS} ms lacks the quantile{plural} {missing}"
    )


def _name(series: Series) -> str:
    return f"{series.namespace}/{series.metric}"
