"""The ``json`` format: newline-separated JSON objects, one datapoint each.

Each object: ``metric_stream_name``, ``account_id``, ``region``, ``namespace``,
``metric_name``, ``dimensions`` (object of strings), ``timestamp`` (epoch ms, the period's
start), ``value`` (``count``, ``sum``, ``max``, ``min`` and any further statistics by
CloudWatch name, e.g. ``p99``, ``TM(10%:90%)``), ``unit`` (a CloudWatch unit name).
Numbers must be finite: orjson, strict JSON, refuses the rest.
``metric_stream_name``, ``dimensions`` and ``unit`` may be absent (no label, no dimensions,
``None``); the rest is required. The period's end is start + PERIOD_MS, and the period must
lie within 2000-01-01 .. now + 1 day (``timestamp_out_of_range``). A NaN, Infinity or a
number too large for a double is ``non_finite``. A record without any object is
``no_datapoints``; more dimensions or statistics than limits.py allows, ``too_much_work``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Iterable
from math import isfinite
from typing import Any

import orjson

from receiver.model import PERIOD_MS, Pairs, Sample, Series

from .errors import EMPTY_RECORD, NO_DATAPOINTS, NON_FINITE, TIMESTAMP_OUT_OF_RANGE, TOO_MUCH_WORK, DecodeError
from .limits import (
    MAX_LABELS_PER_DATAPOINT,
    MAX_STATISTICS_PER_DATAPOINT,
    OLDEST_MS,
    latest_end_ms,
    now_ms,
    out_of_range_message,
)
from .packing import pack
from .series import SeriesCache, merge_labels, new_sample

NAME = "json"
STREAM_LABEL = "metric_stream_name"
_REQUIRED = ("account_id", "region", "namespace", "metric_name", "timestamp", "value")
_BASIC = ("count", "sum", "min", "max")
_NUMBER = (int, float)
_PAST_64_BITS = float(2**64)


def decode(data: bytes, extra_labels: Pairs = (), now: int | None = None, *, cache: SeriesCache) -> list[Sample]:
    """Decode one ``json`` record (``now``, ``cache``: see decode_record)."""
    if not data:
        raise DecodeError("the record is empty", EMPTY_RECORD)
    latest_start = latest_end_ms(now_ms() if now is None else now) - PERIOD_MS
    out: list[Sample] = []
    labels_by_stream: dict[Any, Pairs] = {}
    lookup, remember = cache.lookup, cache.remember
    for line in data.split(b"\n"):
        if not line or line.isspace():
            continue  # the newline after the last object, or a blank line
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise _invalid_json(line, exc) from None
        if type(item) is not dict:
            raise DecodeError("a line is a JSON value but not an object")
        try:
            series = _series(item, lookup, remember)
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
            if type(start) is float and start >= _PAST_64_BITS:
                # An integer past 64 bits, which orjson reads as a double: far past any time.
                raise DecodeError(
                    f"the timestamp of {_name(series)} is {start:.0f}, past any accepted time", TIMESTAMP_OUT_OF_RANGE
                )
            raise DecodeError(f"the timestamp of {_name(series)} is not epoch milliseconds: {start!r}")
        if not OLDEST_MS <= start <= latest_start:
            raise DecodeError(
                out_of_range_message(_name(series), start, start + PERIOD_MS, latest_start + PERIOD_MS),
                TIMESTAMP_OUT_OF_RANGE,
            )
        out.append(_sample(series, start, value, labels))
    if not out:
        raise DecodeError("the record holds no JSON object", NO_DATAPOINTS)
    return out


def _invalid_json(line: bytes, exc: orjson.JSONDecodeError) -> DecodeError:
    """The error for a line orjson refuses: ``non_finite`` when what it refuses is a NaN,
    an Infinity or a number past a double's range among the statistics (the lenient stdlib
    parser reads those as non-finite floats), else ``malformed``. Runs only for a refused
    record, once."""
    try:
        item = json.loads(line)
    except (ValueError, RecursionError):
        item = None
    if type(item) is dict:
        value, start = item.get("value"), item.get("timestamp")
        if type(value) is dict and any(map(_not_a_finite_double, value.values())):
            return DecodeError(
                "a line holds a non-finite statistic (NaN, Infinity or out of a double's range)", NON_FINITE
            )
        if type(start) is int and start > 0:  # past the 64 bits orjson reads: far in the future
            return DecodeError(f"a line's timestamp {start} is past any accepted time", TIMESTAMP_OUT_OF_RANGE)
    return DecodeError(f"a line is not valid JSON ({exc})")


def _not_a_finite_double(number: Any) -> bool:
    """Whether a number the stdlib parser read is NaN, infinite, or an integer past a double."""
    if type(number) is float:
        return not isfinite(number)
    if type(number) is int:
        try:
            float(number)
        except OverflowError:
            return True
    return False


def _key(item: dict[str, Any], dimensions: dict[str, Any], unit: Any) -> Hashable:
    """The cache key of an object's series: its fields as given, dimensions in their order."""
    return (NAME, item["account_id"], item["region"], item["namespace"], item["metric_name"], unit,
            tuple(dimensions.items()))  # fmt: skip


def _series(
    item: dict[str, Any], lookup: Callable[[Hashable], Series | None], remember: Callable[[Hashable, Series], Series]
) -> Series:
    """The object's interned Series: found by the fields as given (dimensions in their order
    on the line), built and remembered only the first time."""
    dimensions = item.get("dimensions", {})
    unit = item.get("unit", "None")
    try:
        key = _key(item, dimensions, unit)
        series = lookup(key)
    except (AttributeError, TypeError):
        key, series = None, None  # dimensions not an object or unhashable: _check says so
    if series is None:
        _check(item, dimensions, unit)
        if key is None:  # cannot happen once _check passed; keeps the cache key honest
            key = _key(item, dimensions, unit)
        series = remember(
            key,
            Series(
                item["account_id"],
                item["region"],
                item["namespace"],
                item["metric_name"],
                tuple(sorted(dimensions.items())),
                unit,
            ),
        )
    return series


def _check(item: dict[str, Any], dimensions: Any, unit: Any) -> None:
    """DecodeError unless a new series' fields have the types CloudWatch sends."""
    for key in _REQUIRED[:4]:
        text = item[key]
        if type(text) is not str or not text:
            raise DecodeError(f"the {key!r} of a metric object is not a non-empty string")
    if type(dimensions) is dict and len(dimensions) > MAX_LABELS_PER_DATAPOINT:
        raise DecodeError(
            f"the metric object of {item['namespace']}/{item['metric_name']} has {len(dimensions)} "
            f"dimensions, more than {MAX_LABELS_PER_DATAPOINT}",
            TOO_MUCH_WORK,
        )
    if type(dimensions) is not dict or not all(type(v) is str for v in dimensions.values()):
        raise DecodeError(f"the dimensions of {item['namespace']}/{item['metric_name']} are not an object of strings")
    if type(unit) is not str:
        raise DecodeError(f"the unit of {item['namespace']}/{item['metric_name']} is not a string")


def _labels(stream: str | None, extra_labels: Pairs) -> Pairs:
    return merge_labels({} if stream is None else {STREAM_LABEL: stream}, extra_labels)


def _sample(series: Series, start: int, value: Any, labels: Pairs) -> Sample:
    if type(value) is not dict:
        raise DecodeError(f"the value of {_name(series)} is not an object")
    if len(value) > MAX_STATISTICS_PER_DATAPOINT:
        raise DecodeError(
            f"the value of {_name(series)} has {len(value)} statistics, more than {MAX_STATISTICS_PER_DATAPOINT}",
            TOO_MUCH_WORK,
        )
    basic = []
    for key in _BASIC:
        number: Any = value.get(key)  # a JSON value: its type is checked next
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
    # No finiteness check here: orjson refuses NaN, Infinity and numbers that overflow a
    # double (_invalid_json names those non_finite), and a float of a 64-bit int is finite.
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
        account_id=series.account,
        region=series.region,
        namespace=series.namespace,
        metric_name=series.metric,
        dimensions=dict(series.dimensions),
        timestamp=sample.start_ms,
        value=value,
        unit=series.unit,
    )
    return orjson.dumps(item) + b"\n"
