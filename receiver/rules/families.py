"""Sample families, the values MAL computes with, and the operations on them.

A family is a tuple of points, each a label set and a value; the empty tuple is
SkyWalking's ``EMPTY``. Operations follow SkyWalking's ``SampleFamily``: tag filters keep
matching points, binary operations pair points with equal label sets, aggregations group by
the listed labels (a missing label groups as ''). Two deliberate differences, both because
a value here must be a pure function of the samples: sums use ``math.fsum`` (exact, so no
dependence on order), and values that are not finite never come out as numbers.

* A division by zero is no value (NaN): the point is dropped, as SkyWalking drops NaN.
* A value that cannot be computed (a sum or product past the largest float, ~1.8e308)
  stays in its family as ±inf, ``NOT_COMPUTED``: whatever is computed from it cannot be
  computed either (an aggregation over it, its maximum, a quotient by it), so it poisons
  what it flows into, down to the entity. ``ruleset.entities`` then leaves that entity's
  value out and counts it, rather than store a total that silently misses a part. Other
  entities are not affected: one account's overflow never costs another its values.
"""

from __future__ import annotations

import math
import operator
import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
from decimal import Decimal
from functools import lru_cache
from typing import NamedTuple

from receiver.model import Pairs, Sample, Series
from receiver.rules import closures
from receiver.rules import nodes as n

Labels = tuple[tuple[str, str], ...]
"""Label names and values, sorted by name."""


class Point(NamedTuple):
    """One sample of a family (a named tuple: a minute builds hundreds of thousands)."""

    labels: Labels
    value: float


Family = tuple[Point, ...]
EMPTY: Family = ()


def lookup(labels: Labels, key: str) -> str | None:
    """A label's value, None when absent; as ``dict(labels).get(key)``, without the dict.

    Labels are sorted, so a binary search finds the last pair named ``key`` (the one a
    dict would keep): every (key, value) sorts below (key + NUL,), every later name above.
    """
    index = bisect_left(labels, (key + "\0",)) - 1
    if index >= 0 and labels[index][0] == key:
        return labels[index][1]
    return None


def label(labels: Labels, key: str) -> str:
    """A label's value, '' when absent (SkyWalking's ``getOrDefault(key, "")``)."""
    found = lookup(labels, key)
    return "" if found is None else found


NOT_COMPUTED = math.inf
"""The value of a point that could not be computed (see the module docstring); a point
whose value is -inf (a negated one) is not computed either: test with ``math.isinf``."""


def _valued(points: Iterable[Point]) -> Family:
    """The points that have a value: NaN (no value) dropped, ±inf (not computed) kept."""
    return tuple(p for p in points if p.value == p.value)


Answer = tuple[dict[str, str], closures.Value]
"""What a closure leaves: the labels after it, and its last value."""
Answers = dict[n.Closure, dict[tuple[str | None, ...], Answer]]
"""Each closure's answer by the values of the labels it reads."""


class Memo:
    """What evaluating one minute remembers, so that work is done once, not per point.

    ``answers`` outlives the minute (a RuleSet keeps one for all its evaluations): a
    closure's answer for each combination of the label values it reads, so a file's
    filter and the ``tag`` closures run once per table, not once per point and minute.
    ``families`` holds this minute's tag filters and aggregations of each family, and
    ``columns`` its label columns: a file's rules share their input families and filter and
    group them alike. Their keys use ``id(family)`` and each entry holds the family, so the
    id cannot pass to another object while the entry lives.
    """

    ANSWERS_LIMIT = 100_000
    """Answers kept per closure; past it that closure starts over (bounds memory)."""

    def __init__(self, answers: Answers | None = None) -> None:
        self.answers: Answers = {} if answers is None else answers
        self.families: dict[tuple[object, ...], tuple[Family, Family]] = {}
        """Results of tag filters and aggregations by (operation, id(input), arguments)."""
        self.columns: dict[tuple[object, ...], tuple[Family, list[str | None]]] = {}
        """Label columns by ("column", id(family), label name)."""
        self.partitions: dict[tuple[object, ...], tuple[Family, dict[str, Family]]] = {}
        """A family's points by their value of a label ('' where absent), by (id(family), label)."""
        self.relabelled: dict[tuple[Labels, int], tuple[Answer, Labels]] = {}
        """Labels after a ``tag`` closure, by (labels before, id(the closure's answer))."""

    def closure_answers(self, closure: n.Closure) -> dict[tuple[str | None, ...], Answer]:
        found = self.answers.get(closure)
        if found is None or len(found) > self.ANSWERS_LIMIT:
            found = self.answers[closure] = {}
        return found


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


def match_tags(family: Family, method: str, pairs: tuple[tuple[str, str], ...], memo: Memo | None = None) -> Family:
    """``tagEqual`` & co: the points whose labels pass every (name, value) test.

    Every test must pass, so filtering by one pair after another keeps the same points in
    the same order; and rules that share a first test share its result (see ``Memo``).
    """
    for name, wanted in pairs:
        if memo is None:
            family = _match_one(family, method, name, wanted)
            continue
        key = ("match", id(family), method, name, wanted)
        entry = memo.families.get(key)
        if entry is None:
            entry = memo.families[key] = (family, _match_one(family, method, name, wanted, memo))
        family = entry[1]
    return family


def _match_one(family: Family, method: str, name: str, wanted: str, memo: Memo | None = None) -> Family:
    if method == "tagEqual" and memo is not None:
        # Rules pick one operation, quantile, ... after another from the same family: one
        # pass splits it by the label's value, and each pick is then a lookup.
        return partition(family, name, memo).get(wanted, ())
    # A test depends on the label's value only: decide each distinct value once.
    test = _TESTS[method]
    values = column(family, name, memo)
    answers = {v: test("" if v is None else v, wanted) for v in set(values)}
    return tuple([p for p, v in zip(family, values) if answers[v]])


def partition(family: Family, name: str, memo: Memo) -> dict[str, Family]:
    """The family's points by their value of the label ``name`` ('' where absent, which is
    what ``tagEqual`` takes a missing label for), each part in the family's order."""
    key = (id(family), name)
    entry = memo.partitions.get(key)
    if entry is None:
        parts: dict[str, list[Point]] = {}
        for point, value in zip(family, column(family, name, memo)):
            parts.setdefault(value or "", []).append(point)
        entry = memo.partitions[key] = (family, {value: tuple(points) for value, points in parts.items()})
    return entry[1]


def column(family: Family, name: str, memo: Memo | None = None) -> list[str | None]:
    """Each point's value of the label ``name``, None where absent.

    With ``memo``, made once per family and label this minute: rules filter, group and
    name entities of the same families by the same few labels.
    """
    if memo is None:
        return _column(family, name)
    key = ("column", id(family), name)
    entry = memo.columns.get(key)
    if entry is None:
        entry = memo.columns[key] = (family, _column(family, name))
    return entry[1]


def _column(family: Family, name: str) -> list[str | None]:
    # ``lookup`` for every point, written out: this loop runs for every point and label.
    probe = (name + "\0",)
    values: list[str | None] = []
    append = values.append
    for point in family:
        labels = point.labels
        index = bisect_left(labels, probe) - 1
        if index >= 0:
            pair = labels[index]
            append(pair[1] if pair[0] == name else None)
        else:
            append(None)
    return values


# ---- closures ----


@lru_cache(maxsize=256)
def _reads(closure: n.Closure) -> tuple[str, ...]:
    """The label names a closure reads: all that its answer and assignments depend on."""
    names: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, n.TagRead):
            names.add(node.name)
        elif isinstance(node, (n.Not, n.Op, n.Ternary, n.Assign)):
            for child in (getattr(node, a) for a in node.__slots__):
                walk(child)

    for statement in closure.body:
        walk(statement)
    return tuple(sorted(names))


def _closure_results(closure: n.Closure, family: Family, memo: Memo) -> list[tuple[dict[str, str], closures.Value]]:
    """``closures.run`` for each point, on the labels the closure reads.

    The closure sees nothing but those labels, so what it assigns and answers is a
    function of their values: run once per combination (remembered in ``memo``). A
    failure is not remembered, and fails again next time.
    """
    names = _reads(closure)
    answers = memo.closure_answers(closure)
    results: list[Answer] = []
    for values in zip(*(column(family, k, memo) for k in names)) if names else ((),) * len(family):
        found = answers.get(values)
        if found is None:
            read = {k: v for k, v in zip(names, values) if v is not None}
            found = answers[values] = closures.run(closure, read)
        results.append(found)
    return results


def retag(family: Family, closure: n.Closure, memo: Memo | None = None) -> Family:
    """``tag({tags -> ...})``: each point with the labels the closure leaves."""
    if memo is None:
        return tuple(Point(tuple(sorted(closures.retag(closure, dict(p.labels)).items())), p.value) for p in family)
    assigned = _assigned(closure)
    # Rules of one file retag families of the same few label sets: each set and answer
    # is worked out once (the entry holds the answer, so its id stays its own).
    relabelled = memo.relabelled
    retagged = []
    for point, answer in zip(family, _closure_results(closure, family, memo)):
        key = (point.labels, id(answer))
        entry = relabelled.get(key)
        if entry is None:
            after, tags = answer[0], dict(point.labels)
            for name in assigned:  # labels the closure set or removed; the rest stay
                if name in after:
                    tags[name] = after[name]
                else:
                    tags.pop(name, None)
            entry = relabelled[key] = (answer, tuple(sorted(tags.items())))
        retagged.append(Point(entry[1], point.value))
    return tuple(retagged)


@lru_cache(maxsize=256)
def _assigned(closure: n.Closure) -> tuple[str, ...]:
    return tuple(sorted({s.name for s in closure.body if isinstance(s, n.Assign)}))


def keep(family: Family, closure: n.Closure, memo: Memo | None = None) -> Family:
    """``filter({tags -> ...})`` and a file's ``filter``: the points it accepts.

    With ``memo`` the answer is worked out once per combination of the label values the
    closure reads (a file's filter sees every point of every minute).
    """
    if memo is None:
        return tuple(p for p in family if closures.accepts(closure, dict(p.labels)))
    results = _closure_results(closure, family, memo)
    return tuple(p for p, (_, value) in zip(family, results) if closures.truthy(value))


# ---- arithmetic ----


def _divide(a: float, b: float) -> float:
    if not b:
        return math.nan  # 0/0 and x/0 are no value, not an error
    if math.isinf(b):
        return NOT_COMPUTED  # a quotient by a value not computed is not computed (a / inf is 0)
    return a / b


_ARITHMETIC: dict[str, Callable[[float, float], float]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": _divide,
}


def _results(op: str, operands: Iterable[tuple[Labels, float, float]]) -> Family:
    """``a op b`` for each (labels, a, b): a division by zero gives no point; a result that
    is not finite otherwise (an overflow, or an operand not computed) is ``NOT_COMPUTED``."""
    apply = _ARITHMETIC[op]
    isfinite = math.isfinite
    points = []
    for labels, a, b in operands:
        value = apply(a, b)
        if not isfinite(value):
            if op == "/" and not b:
                continue
            value = NOT_COMPUTED  # inf - inf and inf * 0 give NaN: still not computed
        points.append(Point(labels, value))
    return tuple(points)


def with_number(family: Family, op: str, number: float, number_first: bool = False) -> Family:
    """Each point combined with a number; ``number_first`` for ``2 - family``."""
    if math.isnan(number):  # a constant divided by zero: no value, for every point
        return EMPTY
    if number_first:
        return _results(op, ((p.labels, number, p.value) for p in family))
    return _results(op, ((p.labels, p.value, number) for p in family))


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
    partners: dict[Labels, float] = {}
    for point in right:
        partners.setdefault(point.labels, point.value)  # the first, as SkyWalking's find()
    return _results(op, ((p.labels, p.value, partners[p.labels]) for p in left if p.labels in partners))


# ---- aggregation ----


def not_computed(values: list[float]) -> bool:
    """Whether any of ``values`` could not be computed (±inf)."""
    return math.inf in values or -math.inf in values


def total(values: list[float]) -> float:
    """The exact sum, or ``NOT_COMPUTED`` when it is past the largest float or a part is."""
    try:
        return math.fsum(values)  # ±inf when a part is not computed
    except (OverflowError, ValueError):  # an overflow; or parts not computed of both signs
        return NOT_COMPUTED


def mean(values: list[float]) -> float:
    """The mean, or ``NOT_COMPUTED`` when a part is. The mean of finite values is always
    within range, even where their sum is not: then it is the sum of each value's share."""
    if len(values) == 1 and math.isfinite(values[0]):
        return values[0]  # what the sum over one would give, at a fraction of the cost
    whole = total(values)
    if math.isfinite(whole):
        return whole / len(values)
    if not_computed(values):
        return NOT_COMPUTED
    try:
        return math.fsum([value / len(values) for value in values])
    except OverflowError:  # not reachable with finite shares; a guard, not a path
        return NOT_COMPUTED


def _largest(values: list[float]) -> float:
    return NOT_COMPUTED if not_computed(values) else max(values)


def _smallest(values: list[float]) -> float:
    return NOT_COMPUTED if not_computed(values) else min(values)


AGGREGATES: dict[str, Callable[[list[float]], float]] = {
    "sum": total,
    "avg": mean,
    "max": _largest,
    "min": _smallest,
}


def aggregate(family: Family, how: str, by: tuple[str, ...], memo: Memo | None = None) -> Family:
    """``sum/avg/max/min(by)``: one point per distinct value of the ``by`` labels.

    With ``memo``, rules that aggregate the same family alike share one result.
    """
    if memo is None:
        memo = Memo()
    key = ("aggregate", id(family), how, by)
    entry = memo.families.get(key)
    if entry is None:
        entry = memo.families[key] = (family, _aggregate(family, how, by, memo))
    return entry[1]


def _aggregate(family: Family, how: str, by: tuple[str, ...], memo: Memo) -> Family:
    names = sorted(set(by))  # the key's pairs in name order, as sorted() would put them
    columns = [column(family, k, memo) for k in names]
    keys: dict[tuple[str | None, ...], Labels] = {}
    groups: dict[Labels, list[float]] = {}
    for point, values in zip(family, zip(*columns) if names else ((),) * len(family)):
        key = keys.get(values)
        if key is None:
            key = keys[values] = tuple([(k, v or "") for k, v in zip(names, values)])
        groups.setdefault(key, []).append(point.value)
    fold = AGGREGATES[how]  # never NaN: finite, or NOT_COMPUTED
    return tuple([Point(key, fold(values)) for key, values in groups.items()])


# ---- from CloudWatch samples ----

_NOT_NAME = re.compile(r"[^A-Za-z0-9_]")
_PERCENTILE = re.compile(r"p(\d+(?:\.\d+)?)")


@lru_cache(maxsize=4096)
def family_name(namespace: str, metric: str) -> str:
    """The family of a CloudWatch metric: ``AWS/DynamoDB`` + ``SystemErrors`` gives
    ``amazonaws_com_AWS_DynamoDB_SystemErrors`` (the stream's OpenTelemetry metric name
    ``amazonaws.com/AWS/DynamoDB/SystemErrors`` with every other character made '_')."""
    return _NOT_NAME.sub("_", f"amazonaws.com/{namespace}/{metric}")


@lru_cache(maxsize=4096)
def family_names(namespace: str, metric: str) -> tuple[str, str, str]:
    """The sum, count and quantile family names of a CloudWatch metric."""
    base = family_name(namespace, metric)
    return base + "_sum", base + "_count", base


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


@lru_cache(maxsize=1024)
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
    return [Point(_with_quantile(labels, ("quantile", java_double(q))), v) for q, v in sorted(quantiles.items())]


def _with_quantile(labels: Labels, pair: tuple[str, str]) -> Labels:
    # sorted((*labels, pair)) of sorted labels: the pair goes after every pair <= it.
    index = bisect_right(labels, pair)
    return (*labels[:index], pair, *labels[index:])


LabelsCache = dict[tuple[Series, Pairs], Labels]
"""``sample_labels`` by (series, stream labels): what a series' samples are labelled with
from minute to minute."""
LABELS_CACHE_MAX = 200_000


def build(
    samples: Iterable[Sample], wanted: frozenset[str] | None = None, labels_cache: LabelsCache | None = None
) -> dict[str, Family]:
    """The families of some samples, as SkyWalking builds them from a summary metric:
    ``X_sum`` (the sum), ``X_count`` (the sample count) and ``X`` (one point per quantile).

    ``wanted``: family names to build (others are skipped, to save time); None for all.
    ``labels_cache``: labels kept from earlier calls, so that the points of one series
    share one labels tuple across minutes (who keeps points of many minutes saves memory).
    """
    points: dict[str, list[Point]] = {}
    for sample in samples:
        total, count, base = family_names(sample.series.namespace, sample.series.metric)
        want = [wanted is None or name in wanted for name in (total, count, base)]
        if not any(want):
            continue
        if labels_cache is None:
            labels = sample_labels(sample)
        else:
            key = (sample.series, sample.labels)
            found = labels_cache.get(key)
            if found is None:
                if len(labels_cache) >= LABELS_CACHE_MAX:
                    labels_cache.clear()
                found = labels_cache[key] = sample_labels(sample)
            labels = found
        if want[0]:
            points.setdefault(total, []).append(Point(labels, float(sample.sum)))
        if want[1]:
            points.setdefault(count, []).append(Point(labels, float(sample.count)))
        if want[2]:
            points.setdefault(base, []).extend(quantile_points(sample, labels))
    # Stored samples are finite (the stores refuse others); an hour's rolled-up sum past the
    # largest float comes as inf, and is NOT_COMPUTED here like any other.
    return {name: _valued(found) for name, found in points.items()}
