"""What the two OpenTelemetry formats share: decoding, quantiles, and encoding.

Two decoders exist, and give the same samples and the same errors: the compiled one
(``_decode.pyx``, a Cython extension built by ``make setup``) and the careful walk
(``walk.py``), the pure-Python reference. The compiled decoder runs unless it is not built
or RECEIVER_NO_EXTENSIONS=1 (``DECODER`` says which, and ``serve`` logs it at start); it
leaves to the careful walk whatever it declines, from an unusual layout to a malformed
message. Both look a series up in the caller's SeriesCache by what the wire says of it (the
resource's account and region, the metric's unit and name, the datapoint's raw labels), so
a series' labels are parsed (by the format's own generated classes), and checked against the
metric's name, only the first time they are seen.

What a record must satisfy beyond the wire format (each fault is a DecodeError whose reason
is in errors.REASONS):

* every message, resource, scope and metric carries at least one datapoint (``no_datapoints``);
* every statistic is finite (``non_finite``), every period lies within 2000-01-01 .. now + 1
  day (``timestamp_out_of_range``) and ends after it starts (``malformed``);
* a metric named ``amazonaws.com/<rest>`` (CloudWatch's naming) has ``<rest>`` equal to
  ``<Namespace>/<MetricName>`` of each of its datapoints (``metric_name_mismatch``). A metric
  whose name lacks that prefix (unnamed, or named by another producer) is not compared: its
  datapoints' labels alone name the series, as they always have;
* the work bounds of limits.py (``too_much_work``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable, Iterable
from math import isfinite
from typing import Any, Protocol

from google.protobuf.message import Message

from receiver.batch import Batch
from receiver.model import Pairs, Sample, Series, percentile_name

from .framing import frame
from .limits import latest_end_ms, now_ms
from .packing import pack
from .series import SeriesCache
from .units import to_ucum
from .walk import ACCOUNT_ATTRIBUTE, REGION_ATTRIBUTE, Flavor, walk

MESSAGE_MAX_DATAPOINTS = 100
"""How many datapoints the encoder puts in one ExportMetricsServiceRequest at most.

AWS documents only that a record holds one or more messages and that a message may hold
several metrics; this bound makes encoded records carry several messages, as CloudWatch's do.
"""

_NS_PER_MS = 1_000_000
_MAX_FIXED64 = (1 << 64) - 1

CompiledDecode = Callable[..., list[Sample] | None]
"""_decode.decode's signature: (data, extra_labels, flavor, latest_ms, *, cache) -> the
samples, or None when it leaves the record to the careful walk."""

CompiledFill = Callable[..., bool | None]
"""_decode.fill's signature: (batch, data, extra_labels, flavor, latest_ms, *, cache) ->
True once the record's datapoints are in the batch, or None when it leaves the record to
the careful walk."""


def _load_compiled() -> tuple[CompiledDecode | None, CompiledFill | None, str]:
    """The compiled decoder's two entries when it is built and RECEIVER_NO_EXTENSIONS is
    not 1, and how the start line names the decoder that runs."""
    if os.environ.get("RECEIVER_NO_EXTENSIONS") == "1":
        return None, None, "python (RECEIVER_NO_EXTENSIONS=1)"
    try:
        from . import _decode  # built by `make setup` (typed by _decode.pyi)
    except ImportError:
        return None, None, "python (the compiled decoder is not built)"
    return _decode.decode, _decode.fill, "compiled"


compiled_decode, compiled_fill, DECODER = _load_compiled()
"""The compiled decoder, into Samples and into a Batch (None: the careful walk decodes every
record), and the decoder's name in the receiver's start line: ``compiled`` or
``python (<why>)``."""


def decode(
    data: bytes, extra_labels: Pairs, flavor: Flavor, now: int | None = None, *, cache: SeriesCache
) -> list[Sample]:
    """Decode one delimited record of ``flavor``'s format into samples.

    ``now`` (epoch ms, default the clock) sets the latest period end accepted; ``cache``
    holds the series already met. The compiled decoder takes nearly every record CloudWatch
    sends; what it declines, and every record when it is not there, is walked point by point
    (walk.py).
    """
    latest_ms = latest_end_ms(now_ms() if now is None else now)
    if compiled_decode is not None:
        samples = compiled_decode(data, extra_labels, flavor, latest_ms, cache=cache)
        if samples is not None:
            return samples
    return walk(data, extra_labels, flavor, latest_ms, cache)


def decode_into(
    batch: Batch, data: bytes, extra_labels: Pairs, flavor: Flavor, now: int | None = None, *, cache: SeriesCache
) -> None:
    """Append the datapoints of one delimited record of ``flavor``'s format to ``batch``,
    as ``batch.add_samples(decode(...))`` does; on DecodeError the batch is as it was.

    The compiled decoder writes the batch's columns itself; what it declines, and every
    record when it is not there, is walked point by point and its samples filed in.
    """
    latest_ms = latest_end_ms(now_ms() if now is None else now)
    if compiled_fill is not None:
        mark = batch.mark()
        try:
            if compiled_fill(batch, data, extra_labels, flavor, latest_ms, cache=cache):
                return
        except BaseException:
            batch.rollback(mark)
            raise
        batch.rollback(mark)
    batch.add_samples(walk(data, extra_labels, flavor, latest_ms, cache))


def quantile_of(statistic: str) -> float:
    """The quantile of a percentile statistic (``p99.9`` -> 0.999); ValueError otherwise."""
    try:
        quantile = round(float(statistic[1:]) / 100, 12) if statistic[:1] == "p" else -1.0
    except ValueError:
        quantile = -1.0
    if not 0.0 < quantile < 1.0 or percentile_name(quantile) != statistic:
        raise ValueError(f"the OpenTelemetry formats carry only percentile statistics, not {statistic!r}")
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
        chunk = samples[start : start + MESSAGE_MAX_DATAPOINTS]
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
    scope: Any = None  # the builder's protobuf containers
    points: Any = None
    for sample in samples:
        series = sample.series
        key = (series.account, series.region, sample.labels)
        if key != resource_key:
            resource_key, metric_key = key, None
            attributes = (
                *(pair for pair in sample.labels if pair[0] not in (ACCOUNT_ATTRIBUTE, REGION_ATTRIBUTE)),
                (ACCOUNT_ATTRIBUTE, series.account),
                (REGION_ATTRIBUTE, series.region),
            )
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
