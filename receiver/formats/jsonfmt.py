"""The ``json`` format: newline-separated JSON objects, one datapoint each.

Each object: ``metric_stream_name``, ``account_id``, ``region``, ``namespace``,
``metric_name``, ``dimensions`` (object of strings), ``timestamp`` (epoch ms, the period's
start), ``value`` (``count``, ``sum``, ``max``, ``min`` and any further statistics by
CloudWatch name, e.g. ``p99``, ``TM(10%:90%)``), ``unit`` (a CloudWatch unit name).
Numbers must be finite: orjson, strict JSON, refuses the rest.
``metric_stream_name``, ``dimensions`` and ``unit`` may be absent (no label, no dimensions,
``None``); the rest is required. The period's end is start + PERIOD_MS.
"""

from __future__ import annotations

from collections.abc import Iterable
from math import isfinite
from typing import Any

import orjson

from receiver.model import PERIOD_MS, Pairs, Sample, Series

from . import series as interning
from .errors import DecodeError
from .packing import pack
from .series import merge_labels, new_sample

NAME = "json"
STREAM_LABEL = "metric_stream_name"
_REQUIRED = ("account_id", "region", "namespace", "metric_name", "timestamp", "value")
_BASIC = ("count", "sum", "min", "max")
_NUMBER = (int, float)


def decode(data: bytes, extra_labels: Pairs = ()) -> list[Sample]:
    """Decode one ``json`` record."""
    if not data:
        raise DecodeError("the record is empty")
    out: list[Sample] = []
    labels_by_stream: dict[Any, Pairs] = {}
    for line in data.split(b"\n"):
        if not line or line.isspace():
            continue  # the newline after the last object, or a blank line
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise DecodeError(f"a line is not valid JSON ({exc})") from None
        if type(item) is not dict:
            raise DecodeError("a line is a JSON value but not an object")
        try:
            series = _series(item)
            stream = item.get(STREAM_LABEL)
            if stream is not None and type(stream) is not str:
                raise DecodeError(f"the {STREAM_LABEL!r} of a metric object is not a string")
            labels = labels_by_stream.get(stream)
            if labels is None:
                labels = labels_by_stream[stream] = _labels(stream, extra_labels)
            start = item["timestamp"]
            value = item["value"]
        except KeyError as exc:
            raise DecodeError(f"a metric object has no {exc.args[0]!r} key") from None
        if type(start) is not int or start < 0:
            raise DecodeError(f"the timestamp of {_name(series)} is not epoch milliseconds: {start!r}")
        out.append(_sample(series, start, value, labels))
    return out


def _series(item: dict[str, Any]) -> Series:
    dimensions = item.get("dimensions", {})
    unit = item.get("unit", "None")
    try:
        key = (NAME, item["account_id"], item["region"], item["namespace"], item["metric_name"],
               unit, tuple(dimensions.items()))
        series = interning.lookup(key)
    except (AttributeError, TypeError):
        key, series = None, None  # dimensions not an object or unhashable: _check says so
    if series is None:
        _check(item, dimensions, unit)
        if key is None:  # cannot happen once _check passed; keeps the cache key honest
            key = (NAME, item["account_id"], item["region"], item["namespace"],
                   item["metric_name"], unit, tuple(dimensions.items()))
        series = interning.remember(key, Series(
            item["account_id"], item["region"], item["namespace"], item["metric_name"],
            tuple(sorted(dimensions.items())), unit,
        ))
    return series


def _check(item: dict[str, Any], dimensions: Any, unit: Any) -> None:
    """DecodeError unless a new series' fields have the types CloudWatch sends."""
    for key in _REQUIRED[:4]:
        text = item[key]
        if type(text) is not str or not text:
            raise DecodeError(f"the {key!r} of a metric object is not a non-empty string")
    if type(dimensions) is not dict or not all(type(v) is str for v in dimensions.values()):
        raise DecodeError(f"the dimensions of {item['namespace']}/{item['metric_name']} are not an object of strings")
    if type(unit) is not str:
        raise DecodeError(f"the unit of {item['namespace']}/{item['metric_name']} is not a string")


def _labels(stream: str | None, extra_labels: Pairs) -> Pairs:
    return merge_labels({} if stream is None else {STREAM_LABEL: stream}, extra_labels)


def _sample(series: Series, start: int, value: Any, labels: Pairs) -> Sample:
    if type(value) is not dict:
        raise DecodeError(f"the value of {_name(series)} is not an object")
    basic = []
    for key in _BASIC:
        number = value.get(key)
        if type(number) not in _NUMBER:
            state = "has no" if number is None else "has a non-numeric"
            raise DecodeError(f"the value of {_name(series)} {state} {key!r}")
        basic.append(float(number))
    count, total, low, high = basic
    stats: tuple[tuple[str, float], ...] = ()
    if len(value) > 4:
        more = []
        for key, number in value.items():
            if key in _BASIC:
                continue
            if type(number) not in _NUMBER:
                raise DecodeError(f"the statistic {key!r} of {_name(series)} is not a number")
            more.append((key, float(number)))
        more.sort()
        stats = tuple(more)
    # No finiteness check: orjson rejects NaN, Infinity and numbers that overflow a double.
    return new_sample(series, start, start + PERIOD_MS, count, total, low, high, stats, labels)


def _name(series: Series) -> str:
    return f"{series.namespace}/{series.metric}"


def encode(samples: Iterable[Sample], max_record_bytes: int) -> list[bytes]:
    """Encode samples as ``json`` records: one object per line, each line newline-ended,
    lines packed in order into records of at most ``max_record_bytes``.

    The format carries one label, ``metric_stream_name``; a sample's other labels are not
    written. ValueError for what JSON cannot carry unchanged (a period other than
    PERIOD_MS, a non-finite number).
    """
    return pack((_line(sample) for sample in samples), max_record_bytes)


def _line(sample: Sample) -> bytes:
    series = sample.series
    if sample.end_ms - sample.start_ms != PERIOD_MS:
        raise ValueError(f"the json format carries only {PERIOD_MS} ms periods")
    value = {"count": sample.count, "sum": sample.sum, "max": sample.max, "min": sample.min}
    for name, number in sample.stats:
        if name in value:
            raise ValueError(f"a statistic may not be named {name!r} in the json format")
        value[name] = number
    if not all(isfinite(number) for number in value.values()):
        raise ValueError("JSON cannot carry a non-finite statistic")
    item: dict[str, Any] = {}
    stream = dict(sample.labels).get(STREAM_LABEL)
    if stream is not None:
        item[STREAM_LABEL] = stream
    item.update(
        account_id=series.account, region=series.region, namespace=series.namespace,
        metric_name=series.metric, dimensions=dict(series.dimensions),
        timestamp=sample.start_ms, value=value, unit=series.unit,
    )
    return orjson.dumps(item) + b"\n"
