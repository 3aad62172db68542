"""Sample families, the values MAL computes with, and the operations on them.

A family is a tuple of points, each a label set and a value; the empty tuple is
SkyWalking's ``EMPTY``. Operations follow SkyWalking's ``SampleFamily``: tag filters keep
matching points, binary operations pair points with equal label sets, aggregations group by
the listed labels (a missing label groups as ''). Two deliberate differences, both because
a value here must be a pure function of the samples: sums use ``math.fsum`` (exact, so no
dependence on order), and any point whose value is not finite is dropped (SkyWalking drops
NaN; we drop ±Infinity too, which JSON cannot carry).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

from receiver.model import Sample, Series
from receiver.rules import closures
from receiver.rules import nodes as n

Labels = tuple[tuple[str, str], ...]
"""Label names and values, sorted by name."""


@dataclass(frozen=True, slots=True)
class Point:
    """One sample of a family."""

    labels: Labels
    value: float


Family = tuple[Point, ...]
EMPTY: Family = ()


@lru_cache(maxsize=1 << 16)
def as_dict(labels: Labels) -> dict[str, str]:
    """``labels`` as a dict, remembered: the same label sets come back every minute.

    Callers must not change the dict they get.
    """
    return dict(labels)


def label(labels: Labels, key: str) -> str:
    """A label's value, '' when absent (SkyWalking's ``getOrDefault(key, "")``)."""
    return as_dict(labels).get(key, "")


def _finite(points: Iterable[Point]) -> Family:
    return tuple(p for p in points if math.isfinite(p.value))


# ---- tag filters ----


@lru_cache(maxsize=512)
def compile_regex(pattern: str) -> re.Pattern[str]:
    """A tagMatch pattern; like Java's ``String.matches`` it must match the whole value."""
    return re.compile(pattern)


def _equal(actual: str, wanted: str) -> bool:
    # SkyWalking's stringComp: a missing label equals only ''.
    if not actual and not wanted:
        return True
    return bool(actual) and actual == wanted


_TESTS: dict[str, Callable[[str, str], bool]] = {
    "tagEqual": _equal,
    "tagNotEqual": lambda actual, wanted: not _equal(actual, wanted),
    "tagMatch": lambda actual, wanted: compile_regex(wanted).fullmatch(actual) is not None,
    "tagNotMatch": lambda actual, wanted: compile_regex(wanted).fullmatch(actual) is None,
}


def match_tags(family: Family, method: str, pairs: tuple[tuple[str, str], ...]) -> Family:
    """``tagEqual`` & co: the points whose labels pass every (name, value) test."""
    test = _TESTS[method]
    kept = []
    for point in family:
        labels = as_dict(point.labels)
        if all(test(labels.get(k, ""), v) for k, v in pairs):
            kept.append(point)
    return tuple(kept)


# ---- closures ----


def retag(family: Family, closure: n.Closure) -> Family:
    """``tag({tags -> ...})``: each point with the labels the closure leaves."""
    return tuple(Point(tuple(sorted(closures.retag(closure, dict(p.labels)).items())), p.value)
                 for p in family)


def keep(family: Family, closure: n.Closure, memo: dict[Labels, bool] | None = None) -> Family:
    """``filter({tags -> ...})`` and a file's ``filter``: the points it accepts.

    ``memo`` remembers the answer per label set (a sample's _sum, _count and quantile
    points share most labels), for a caller that filters many families with one closure.
    """
    if memo is None:
        memo = {}
    kept = []
    for point in family:
        accepted = memo.get(point.labels)
        if accepted is None:
            accepted = memo[point.labels] = closures.accepts(closure, as_dict(point.labels))
        if accepted:
            kept.append(point)
    return tuple(kept)


# ---- arithmetic ----

_ARITHMETIC: dict[str, Callable[[float, float], float]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b if b else math.nan,  # 0/0 and x/0 are no value, not an error
}


def with_number(family: Family, op: str, number: float, number_first: bool = False) -> Family:
    """Each point combined with a number; ``number_first`` for ``2 - family``."""
    apply = _ARITHMETIC[op]
    if number_first:
        return _finite(Point(p.labels, apply(number, p.value)) for p in family)
    return _finite(Point(p.labels, apply(p.value, number)) for p in family)


def negate(family: Family) -> Family:
    return tuple(Point(p.labels, -p.value) for p in family)


def combine(left: Family, op: str, right: Family) -> Family:
    """``left op right`` between families, with SkyWalking's rules for EMPTY sides.

    Points pair by equal label sets; a point without a partner is dropped. An empty side:
    for + the other side stands; for - the other side (negated on the right); for * the
    result is empty; for / an empty numerator is empty and an empty denominator leaves no
    finite value (SkyWalking divides by 0.0 there).
    """
    if not left or not right:
        if op == "+":
            return left or right
        if op == "-":
            return left if left else negate(right)
        return EMPTY
    apply = _ARITHMETIC[op]
    partners: dict[Labels, float] = {}
    for point in right:
        partners.setdefault(point.labels, point.value)  # the first, as SkyWalking's find()
    return _finite(Point(p.labels, apply(p.value, partners[p.labels]))
                   for p in left if p.labels in partners)


# ---- aggregation ----


def _mean(values: list[float]) -> float:
    return math.fsum(values) / len(values)


AGGREGATES: dict[str, Callable[[list[float]], float]] = {
    "sum": math.fsum,
    "avg": _mean,
    "max": max,
    "min": min,
}


def aggregate(family: Family, how: str, by: tuple[str, ...]) -> Family:
    """``sum/avg/max/min(by)``: one point per distinct value of the ``by`` labels."""
    groups: dict[Labels, list[float]] = {}
    for point in family:
        key = tuple(sorted((k, label(point.labels, k)) for k in set(by)))
        groups.setdefault(key, []).append(point.value)
    fold = AGGREGATES[how]
    return _finite(Point(key, fold(values)) for key, values in groups.items())


# ---- from CloudWatch samples ----

_NOT_NAME = re.compile(r"[^A-Za-z0-9_]")
_PERCENTILE = re.compile(r"p(\d+(?:\.\d+)?)")


def family_name(namespace: str, metric: str) -> str:
    """The family of a CloudWatch metric: ``AWS/DynamoDB`` + ``SystemErrors`` gives
    ``amazonaws_com_AWS_DynamoDB_SystemErrors`` (the stream's OpenTelemetry metric name
    ``amazonaws.com/AWS/DynamoDB/SystemErrors`` with every other character made '_')."""
    return _NOT_NAME.sub("_", f"amazonaws.com/{namespace}/{metric}")


def java_double(value: float) -> str:
    """Java's ``Double.toString``, which SkyWalking uses for the ``quantile`` label:
    0.0 -> '0.0', 0.99 -> '0.99', 1.0 -> '1.0', 0.0001 -> '1.0E-4'."""
    if value == 0 or 1e-3 <= abs(value) < 1e7:
        return repr(float(value))  # Python's shortest form, which Java shares in this range
    sign, digits, exponent = Decimal(repr(float(value))).as_tuple()
    assert isinstance(exponent, int)
    mantissa = "".join(map(str, digits)).rstrip("0") or "0"
    power = exponent + len(digits) - 1
    return f"{'-' if sign else ''}{mantissa[0]}.{mantissa[1:] or '0'}E{power}"


def quantile_of(statistic: str) -> float | None:
    """The quantile of a CloudWatch percentile statistic: 'p99.9' -> 0.999; else None."""
    found = _PERCENTILE.fullmatch(statistic)
    if found is None:
        return None
    # Decimal, so 'p99.9' gives 0.999 exactly as written, not 0.9990000000000001.
    return float(Decimal(found.group(1)) / 100)


def sample_labels(sample: Sample) -> Labels:
    """The labels SkyWalking's OpenTelemetry receiver gives a CloudWatch datapoint.

    Resource attributes first, dots made '_' (``cloud.account.id`` -> ``cloud_account_id``),
    then the datapoint's own labels, which win: ``Namespace``, ``MetricName`` and the
    dimensions. ``cloud_provider`` is 'aws' unless the stream said otherwise.
    """
    series: Series = sample.series
    labels = {"cloud_provider": "aws"}
    labels.update((key.replace(".", "_"), value) for key, value in sample.labels)
    labels["cloud_account_id"] = series.account
    labels["cloud_region"] = series.region
    labels["Namespace"] = series.namespace
    labels["MetricName"] = series.metric
    labels.update(series.dimensions)
    return tuple(sorted(labels.items()))


def quantile_points(sample: Sample, labels: Labels) -> list[Point]:
    """The summary's quantiles: minimum as 0.0, maximum as 1.0, percentiles between."""
    quantiles = {0.0: sample.min, 1.0: sample.max}
    for statistic, value in sample.stats:
        quantile = quantile_of(statistic)
        if quantile is not None and 0.0 < quantile < 1.0:
            quantiles[quantile] = value
    return [Point(tuple(sorted((*labels, ("quantile", java_double(q))))), v)
            for q, v in sorted(quantiles.items())]


def build(samples: Iterable[Sample], wanted: frozenset[str] | None = None) -> dict[str, Family]:
    """The families of some samples, as SkyWalking builds them from a summary metric:
    ``X_sum`` (the sum), ``X_count`` (the sample count) and ``X`` (one point per quantile).

    ``wanted``: family names to build (others are skipped, to save time); None for all.
    """
    points: dict[str, list[Point]] = {}
    label_cache: dict[tuple[Series, tuple[tuple[str, str], ...]], Labels] = {}
    for sample in samples:
        base = family_name(sample.series.namespace, sample.series.metric)
        total, count = base + "_sum", base + "_count"
        want = [wanted is None or name in wanted for name in (total, count, base)]
        if not any(want):
            continue
        key = (sample.series, sample.labels)
        labels = label_cache.get(key)
        if labels is None:
            labels = label_cache[key] = sample_labels(sample)
        if want[0]:
            points.setdefault(total, []).append(Point(labels, float(sample.sum)))
        if want[1]:
            points.setdefault(count, []).append(Point(labels, float(sample.count)))
        if want[2]:
            points.setdefault(base, []).extend(quantile_points(sample, labels))
    return {name: _finite(found) for name, found in points.items()}
