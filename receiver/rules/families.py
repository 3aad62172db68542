"""Sample families, the values MAL computes with, and the operations on them.

A family is a sequence of points, each a label set and a value, held as two columns: the
label sets (a ``Layout``, interned, with what operations worked out from it remembered:
receiver/rules/layouts.py) and the values. An empty family is SkyWalking's ``EMPTY``.
Operations follow SkyWalking's ``SampleFamily``: tag filters keep matching points, binary
operations pair points with equal label sets, aggregations group by the listed labels (a
missing label groups as ''). Two deliberate differences, both because
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
from collections.abc import Callable, Iterable, Iterator, Sequence
from decimal import Decimal
from functools import lru_cache, wraps
from typing import Any, NamedTuple, TypeVar, cast

from receiver.model import Pairs, Sample, Series
from receiver.rules import closures
from receiver.rules import nodes as n
from receiver.rules.layouts import EMPTY_LAYOUT, Layout, Layouts, Pick, Selection, numbered, picker
from receiver.rules.layouts import Labels as Labels  # a family's label sets, defined with the layouts


class Point(NamedTuple):
    """One sample of a family, as a label set and a value."""

    labels: Labels
    value: float


class Family:
    """A family's points as two columns: their label sets (an interned ``Layout``, see
    receiver/rules/layouts.py) and their values, in the same order. Never changed once made.

    Iterating gives ``Point``s, for who reads a few (tests, tools); the rules never do.
    """

    __slots__ = ("layout", "values")

    def __init__(self, layout: Layout, values: Sequence[float]) -> None:
        self.layout = layout
        self.values = values

    @staticmethod
    def of(points: Iterable[tuple[Labels, float]]) -> Family:
        """A family of the given points (its layout is not interned)."""
        pairs = list(points)
        return Family(Layout(tuple(p[0] for p in pairs)), [p[1] for p in pairs])

    def points(self) -> tuple[Point, ...]:
        return tuple(map(Point, self.layout.labels, self.values))

    def __len__(self) -> int:
        return len(self.values)

    def __bool__(self) -> bool:
        return bool(self.values)

    def __iter__(self) -> Iterator[Point]:
        return iter(self.points())

    def __getitem__(self, index: int) -> Point:
        return Point(self.layout.labels[index], self.values[index])

    def __repr__(self) -> str:
        return f"Family({self.points()!r})"


EMPTY = Family(EMPTY_LAYOUT, ())

Operation = TypeVar("Operation", bound=Callable[..., "Family"])


def _on_points(operation: Operation) -> Operation:
    """Let ``operation`` also take and give a tuple of points where it is given one (the
    point-by-point definitions the tests compare with are written over points). Typed code
    passes families, so its type stays the operation's."""

    @wraps(operation)
    def adapted(family: Family | tuple[Point, ...], *args: Any, **kwargs: Any) -> Any:
        if isinstance(family, Family):
            return operation(family, *args, **kwargs)
        given = tuple(_family(a) for a in args)
        result = operation(Family.of(family), *given, **kwargs)
        return result.points() if isinstance(result, Family) else result

    return cast(Operation, adapted)


def _family(argument: object) -> object:
    if isinstance(argument, tuple) and argument and all(isinstance(p, Point) for p in argument):
        return Family.of(argument)
    return argument


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


Answer = tuple[dict[str, str], closures.Value]
"""What a closure leaves: the labels after it, and its last value."""
Answers = dict[n.Closure, dict[tuple[str | None, ...], Answer]]
"""Each closure's answer by the values of the labels it reads."""


class Memo:
    """What evaluating remembers, so that work is done once, not per point.

    ``answers`` and ``layouts`` outlive the minute (a RuleSet keeps them for all its
    evaluations): a closure's answer for each combination of the label values it reads,
    so a file's filter and the ``tag`` closures run once per table, not once per point and
    minute; and the layouts of families with what was worked out from them
    (receiver/rules/layouts.py), so a minute of the same series as one before only moves
    values. ``relabelled`` is this minute's labels after a ``tag`` closure, by (labels
    before, id(the closure's answer)); each entry holds the answer, so its id stays its own.
    """

    ANSWERS_LIMIT = 100_000
    """Answers kept per closure; past it that closure starts over (bounds memory)."""

    def __init__(self, answers: Answers | None = None, layouts: Layouts | None = None) -> None:
        self.answers: Answers = {} if answers is None else answers
        self.layouts = Layouts() if layouts is None else layouts
        self.relabelled: dict[tuple[Labels, int], tuple[Answer, Labels]] = {}

    def closure_answers(self, closure: n.Closure) -> dict[tuple[str | None, ...], Answer]:
        found = self.answers.get(closure)
        if found is None or len(found) > self.ANSWERS_LIMIT:
            found = self.answers[closure] = {}
        return found


def select(family: Family, selection: Selection) -> Family:
    """The points of ``family`` that ``selection`` (made from its layout) takes."""
    pick = selection.pick
    return Family(selection.layout, family.values if pick is None else pick(family.values))


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


@_on_points
def match_tags(family: Family, method: str, pairs: tuple[tuple[str, str], ...], memo: Memo | None = None) -> Family:
    """``tagEqual`` & co: the points whose labels pass every (name, value) test.

    Every test must pass, so filtering by one pair after another keeps the same points in
    the same order; and each test's selection is worked out once per layout.
    """
    for name, wanted in pairs:
        family = select(family, _match_one(family.layout, method, name, wanted))
    return family


def _match_one(layout: Layout, method: str, name: str, wanted: str) -> Selection:
    if method == "tagEqual":
        # Rules pick one operation, quantile, ... after another from the same family: one
        # pass splits it by the label's value, and each pick is then a lookup.
        return partition(layout, name).get(wanted) or _nothing(layout)
    key = ("match", method, name, wanted)
    found = layout.derived.get(key)
    if found is None:
        # A test depends on the label's value only: decide each distinct value once.
        test = _TESTS[method]
        values = column(layout, name)
        answers = {v: test("" if v is None else v, wanted) for v in set(values)}
        found = layout.derived[key] = Selection(layout, [i for i, v in numbered(values, len(values)) if answers[v]])
    assert isinstance(found, Selection)
    return found


def _nothing(layout: Layout) -> Selection:
    """No point of ``layout``."""
    found = layout.derived.get("none")
    if found is None:
        found = layout.derived["none"] = Selection(layout, ())
    assert isinstance(found, Selection)
    return found


def partition(layout: Layout, name: str) -> dict[str, Selection]:
    """The layout's points by their value of the label ``name`` ('' where absent, which is
    what ``tagEqual`` takes a missing label for), each part in the layout's order."""
    key = ("partition", name)
    found = layout.derived.get(key)
    if found is None:
        parts: dict[str, list[int]] = {}
        for index, value in numbered(column(layout, name), len(layout)):
            parts.setdefault(value or "", []).append(index)
        found = layout.derived[key] = {value: Selection(layout, indexes) for value, indexes in parts.items()}
    assert isinstance(found, dict)
    return found


def column(family: Family | Layout, name: str, memo: Memo | None = None) -> list[str | None]:
    """Each point's value of the label ``name``, None where absent: made once per layout
    (rules filter, group and name entities of the same families by the same few labels)."""
    layout = family.layout if isinstance(family, Family) else family
    key = ("column", name)
    found = layout.derived.get(key)
    if found is None:
        found = layout.derived[key] = _column(layout.labels, name)
    assert isinstance(found, list)
    return found


def _column(labelsets: Sequence[Labels], name: str) -> list[str | None]:
    # ``lookup`` for every point, written out: this loop runs for every point and label.
    probe = (name + "\0",)
    values: list[str | None] = []
    append = values.append
    for labels in labelsets:
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


def _closure_results(closure: n.Closure, layout: Layout, memo: Memo) -> list[Answer]:
    """``closures.run`` for each point, on the labels the closure reads.

    The closure sees nothing but those labels, so what it assigns and answers is a
    function of their values: run once per combination (remembered in ``memo``). A
    failure is not remembered, and fails again next time.
    """
    names = _reads(closure)
    answers = memo.closure_answers(closure)
    results: list[Answer] = []
    for values in zip(*(column(layout, k) for k in names)) if names else ((),) * len(layout):
        found = answers.get(values)
        if found is None:
            read = {k: v for k, v in zip(names, values) if v is not None}
            found = answers[values] = closures.run(closure, read)
        results.append(found)
    return results


def _remembered(layout: Layout, key: tuple[str, n.Closure]) -> object | None:
    """What ``layout`` remembers for a closure: entries are keyed by its id and hold it, so
    that another closure given the same id later is not taken for it."""
    found = layout.derived.get((key[0], id(key[1])))
    if isinstance(found, tuple) and found[0] is key[1]:
        remembered: object = found[1]
        return remembered
    return None


@_on_points
def retag(family: Family, closure: n.Closure, memo: Memo | None = None) -> Family:
    """``tag({tags -> ...})``: each point with the labels the closure leaves."""
    layout = family.layout
    found = _remembered(layout, ("retag", closure))
    if found is None:
        found = _retagged(layout, closure, Memo() if memo is None else memo)
        layout.derived[("retag", id(closure))] = (closure, found)
    assert isinstance(found, Layout)
    return Family(found, family.values)


def _retagged(layout: Layout, closure: n.Closure, memo: Memo) -> Layout:
    assigned = _assigned(closure)
    # Rules of one file retag families of the same few label sets: each set and answer
    # is worked out once.
    relabelled = memo.relabelled
    retagged = []
    for labels, answer in zip(layout.labels, _closure_results(closure, layout, memo)):
        key = (labels, id(answer))
        entry = relabelled.get(key)
        if entry is None:
            after, tags = answer[0], dict(labels)
            for name in assigned:  # labels the closure set or removed; the rest stay
                if name in after:
                    tags[name] = after[name]
                else:
                    tags.pop(name, None)
            entry = relabelled[key] = (answer, tuple(sorted(tags.items())))
        retagged.append(entry[1])
    return Layout(tuple(retagged))


@lru_cache(maxsize=256)
def _assigned(closure: n.Closure) -> tuple[str, ...]:
    return tuple(sorted({s.name for s in closure.body if isinstance(s, n.Assign)}))


@_on_points
def keep(family: Family, closure: n.Closure, memo: Memo | None = None) -> Family:
    """``filter({tags -> ...})`` and a file's ``filter``: the points it accepts, worked out
    once per layout from the closure's answer per combination of the label values it reads."""
    layout = family.layout
    found = _remembered(layout, ("keep", closure))
    if found is None:
        results = _closure_results(closure, layout, Memo() if memo is None else memo)
        found = Selection(layout, [i for i, (_, value) in numbered(results, len(results)) if closures.truthy(value)])
        layout.derived[("keep", id(closure))] = (closure, found)
    assert isinstance(found, Selection)
    return select(family, found)


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
_PLAIN: dict[str, Callable[[float, float], float]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
}


def _results(layout: Layout, op: str, left: Sequence[float], right: Sequence[float]) -> Family:
    """``a op b`` for each pair of values: a division by zero gives no point; a result
    that is not finite otherwise (an overflow, or an operand not computed) is
    ``NOT_COMPUTED``."""
    isfinite = math.isfinite
    if op != "/" or (0.0 not in right and isfinite(sum(right))):
        # No divisor is zero or not computed: the plain operation gives every value, and
        # their sum is finite exactly when each is (else the careful loop below decides).
        values = list(map(_PLAIN[op], left, right))
        if isfinite(sum(values)):
            return Family(layout, values)
    return _careful(layout, op, left, right)


def _careful(layout: Layout, op: str, left: Sequence[float], right: Sequence[float]) -> Family:
    apply = _ARITHMETIC[op]
    isfinite = math.isfinite
    values = []
    kept = []
    for index, (a, b) in enumerate(zip(left, right)):
        value = apply(a, b)
        if not isfinite(value):
            if op == "/" and not b:
                continue
            value = NOT_COMPUTED  # inf - inf and inf * 0 give NaN: still not computed
        values.append(value)
        kept.append(index)
    if len(kept) == len(layout):
        return Family(layout, values)
    return Family(_kept(layout, kept), values)


def _kept(layout: Layout, kept: list[int]) -> Layout:
    """The layout of some of ``layout``'s points (those a division by zero did not drop)."""
    key = ("kept", tuple(kept))
    found = layout.derived.get(key)
    if found is None:
        found = layout.derived[key] = Selection(layout, kept).layout
    assert isinstance(found, Layout)
    return found


@_on_points
def with_number(family: Family, op: str, number: float, number_first: bool = False) -> Family:
    """Each point combined with a number; ``number_first`` for ``2 - family``."""
    if math.isnan(number):  # a constant divided by zero: no value, for every point
        return EMPTY
    numbers = [number] * len(family)
    if number_first:
        return _results(family.layout, op, numbers, family.values)
    return _results(family.layout, op, family.values, numbers)


@_on_points
def negate(family: Family) -> Family:
    return Family(family.layout, list(map(operator.neg, family.values)))


@_on_points
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
    chosen, partners = _pairs(left.layout, right.layout)
    a = select(left, chosen).values
    b = right.values if partners.pick is None else partners.pick(right.values)
    return _results(chosen.layout, op, a, b)


def _pairs(left: Layout, right: Layout) -> tuple[Selection, Selection]:
    """The points of ``left`` with a partner in ``right``, and their partners in order."""
    key = ("pairs", id(right))
    found = left.derived.get(key)
    if isinstance(found, tuple) and found[0] is right:
        return found[1], found[2]
    first: dict[Labels, int] = {}
    for index, labels in numbered(right.labels, len(right)):
        first.setdefault(labels, index)  # the first, as SkyWalking's find()
    chosen = [i for i, labels in numbered(left.labels, len(left)) if labels in first]
    partners = [first[left.labels[i]] for i in chosen]
    pairs = (Selection(left, chosen), Selection(right, partners))
    left.derived[key] = (right, *pairs)
    return pairs


# ---- aggregation ----


def not_computed(values: list[float]) -> bool:
    """Whether any of ``values`` could not be computed (±inf)."""
    return math.inf in values or -math.inf in values


def total(values: list[float]) -> float:
    """The exact sum rounded once, or ``NOT_COMPUTED`` when it is past the largest float or
    a part is (a part of -inf alone gives -inf)."""
    try:
        return math.fsum(values)  # ±inf when a part is not computed
    except ValueError:  # parts not computed of both signs
        return NOT_COMPUTED
    except OverflowError:
        # fsum overflows part-way through or not depending on the order of the values: the
        # exact sum decides, so that the total is one of the set (the partitions' parts
        # are added up in another order than the whole minute's).
        return exact_total(values)


EXACT_UNITS = 1074
"""Every float is a whole number of 2^-1074, the smallest subnormal."""


def exact(value: float) -> int:
    """A finite float as a whole number of 2^-1074 (``EXACT_UNITS``)."""
    numerator, denominator = value.as_integer_ratio()
    return numerator << (EXACT_UNITS + 1 - denominator.bit_length())


def rounded(units: int) -> float:
    """A whole number of 2^-1074 as the nearest float (ties to even, as fsum rounds), or
    ``NOT_COMPUTED`` past the largest float."""
    try:
        return units / (1 << EXACT_UNITS)  # int / int: correctly rounded
    except OverflowError:
        return NOT_COMPUTED


def exact_total(values: list[float]) -> float:
    """``total`` worked out from exact integers."""
    up, down = math.inf in values, -math.inf in values
    if up or down:
        return NOT_COMPUTED if up else -math.inf
    return rounded(sum(map(exact, values)))


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
    return NOT_COMPUTED if not_computed(values) else larger_zero(max(values), values)


def _smallest(values: list[float]) -> float:
    return NOT_COMPUTED if not_computed(values) else smaller_zero(min(values), values)


def larger_zero(found: float, values: Iterable[float]) -> float:
    """The maximum ``found`` of ``values``, 0.0 rather than -0.0 where both are among them:
    ``max`` keeps the first of equals, and the maximum must not depend on the order."""
    if found == 0 and math.copysign(1.0, found) < 0 and any(v == 0 and math.copysign(1.0, v) > 0 for v in values):
        return 0.0
    return found


def smaller_zero(found: float, values: Iterable[float]) -> float:
    """The minimum ``found`` of ``values``, -0.0 rather than 0.0 where both are among them."""
    if found == 0 and math.copysign(1.0, found) > 0 and any(v == 0 and math.copysign(1.0, v) < 0 for v in values):
        return -0.0
    return found


AGGREGATES: dict[str, Callable[[list[float]], float]] = {
    "sum": total,
    "avg": mean,
    "max": _largest,
    "min": _smallest,
}


@_on_points
def aggregate(family: Family, how: str, by: tuple[str, ...], memo: Memo | None = None) -> Family:
    """``sum/avg/max/min(by)``: one point per distinct value of the ``by`` labels, in the
    order each first appears. The groups are worked out once per layout."""
    layout, groups, pick = groups_by(family.layout, by)
    fold = AGGREGATES[how]  # never NaN: finite, or NOT_COMPUTED
    values = family.values
    if pick is None:
        return Family(layout, [fold([values[i] for i in group]) for group in groups])
    picked = pick(values)
    if fold in _OF_ONE and math.isfinite(sum(picked)):  # every value finite
        return Family(layout, _OF_ONE[fold](picked))
    return Family(layout, [fold([value]) for value in picked])


_OF_ONE: dict[Callable[[list[float]], float], Callable[[Sequence[float]], list[float]]] = {
    total: lambda values: [value + 0.0 for value in values],  # fsum([-0.0]) is 0.0, as is -0.0 + 0.0
    mean: list,
    _largest: list,
    _smallest: list,
}
"""What each fold gives over groups of one finite value each, for all groups at once."""


def groups_by(layout: Layout, by: tuple[str, ...]) -> tuple[Layout, list[list[int]], Pick | None]:
    """What ``aggregate`` groups a layout's points into: the layout of the groups, and each
    group's indexes or (where every group holds one point) what takes their values."""
    key = ("aggregate", by)
    found = layout.derived.get(key)
    if found is None:
        names = sorted(set(by))  # the key's pairs in name order, as sorted() would put them
        columns = [column(layout, k) for k in names]
        keys: dict[tuple[str | None, ...], list[int]] = {}
        groups: dict[Labels, list[int]] = {}  # a missing label and '' group together
        labels: Labels
        for index, values in numbered(zip(*columns) if names else ((),) * len(layout), len(layout)):
            group = keys.get(values)
            if group is None:
                labels = tuple([_pair(k, v or "") for k, v in zip(names, values)])
                group = keys[values] = groups.setdefault(labels, [])
            group.append(index)
        single = all(len(group) == 1 for group in groups.values())
        pick = picker([group[0] for group in groups.values()]) if single else None
        # Where ``pick`` takes each group's value, the groups' lists are not kept (memory).
        found = layout.derived[key] = (Layout(tuple(groups)), [] if single else list(groups.values()), pick)
    assert isinstance(found, tuple)
    return found


@lru_cache(maxsize=65_536)
def _pair(name: str, value: str) -> tuple[str, str]:
    """One (name, value) tuple for every group an aggregation makes with it (memory)."""
    return (name, value)


def groups(layout: Layout, keys: tuple[str, ...]) -> dict[tuple[str, ...], list[int]]:
    """The indexes of a layout's points by their values of ``keys`` ('' where absent), in
    the order each group first appears (who calls it keeps what it needs of them)."""
    # An absent label reads as '', as ``label`` has it.
    columns = [["" if v is None else v for v in column(layout, k)] for k in keys]
    found: dict[tuple[str, ...], list[int]] = {}
    for index, group in numbered(zip(*columns) if keys else ((),) * len(layout), len(layout)):
        found.setdefault(group, []).append(index)
    return found


def join(families: Sequence[Family], memo: Memo) -> Family:
    """The points of ``families`` one after another (a union of partitions' points)."""
    parts = tuple(family for family in families if family)
    if not parts:
        return EMPTY
    if len(parts) == 1:
        return parts[0]
    layout = memo.layouts.joined(tuple(part.layout for part in parts))
    return Family(layout, [value for part in parts for value in part.values])


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


def quantile_points(sample: Sample, labels: Labels, cache: QuantileLabels | None = None) -> list[Point]:
    """The summary's quantiles: minimum as 0.0, maximum as 1.0, percentiles between.

    ``cache``: the labels with each quantile, kept from earlier calls (by ``id(labels)``;
    each entry holds ``labels``, so the id stays its own)."""
    stats = sample.stats
    if cache is None:
        known: dict[float, Labels] = {}
    else:
        entry = cache.get(id(labels))
        if entry is None or entry[0] is not labels:
            entry = cache[id(labels)] = (labels, {})
        known = entry[1]
    points = []
    for quantile, source in _quantile_plan(tuple([statistic for statistic, _ in stats])):
        found = known.get(quantile)
        if found is None:
            found = known[quantile] = _with_quantile(labels, ("quantile", java_double(quantile)))
        value = sample.min if source == _MINIMUM else sample.max if source == _MAXIMUM else stats[source][1]
        points.append(Point(found, value))
    return points


_MINIMUM = -2
_MAXIMUM = -1


@lru_cache(maxsize=1024)
def _quantile_plan(statistics: tuple[str, ...]) -> tuple[tuple[float, int], ...]:
    """The quantiles of a sample with these statistics, in order, and where each value is:
    ``_MINIMUM``, ``_MAXIMUM`` or the index of its statistic (a repeated quantile's last)."""
    where = {0.0: _MINIMUM, 1.0: _MAXIMUM}
    for index, statistic in enumerate(statistics):
        quantile = quantile_of(statistic)
        if quantile is not None and 0.0 < quantile < 1.0:
            where[quantile] = index
    return tuple(sorted(where.items()))


def _with_quantile(labels: Labels, pair: tuple[str, str]) -> Labels:
    # sorted((*labels, pair)) of sorted labels: the pair goes after every pair <= it.
    index = bisect_right(labels, pair)
    return (*labels[:index], pair, *labels[index:])


LabelsCache = dict[tuple[Series, Pairs], Labels]
"""``sample_labels`` by (series, stream labels): what a series' samples are labelled with
from minute to minute."""
LABELS_CACHE_MAX = 200_000
QuantileLabels = dict[int, tuple[Labels, dict[float, Labels]]]
"""Labels with each quantile, by id(labels without): see ``quantile_points``."""


def build(
    samples: Iterable[Sample],
    wanted: frozenset[str] | None = None,
    labels_cache: LabelsCache | None = None,
    layouts: Layouts | None = None,
) -> dict[str, Family]:
    """The families of some samples, as SkyWalking builds them from a summary metric:
    ``X_sum`` (the sum), ``X_count`` (the sample count) and ``X`` (one point per quantile).

    ``wanted``: family names to build (others are skipped, to save time); None for all.
    ``labels_cache``: labels kept from earlier calls, so that the points of one series
    share one labels tuple across minutes (who keeps points of many minutes saves memory).
    ``layouts``: where the families' layouts are interned (receiver/rules/layouts.py), so
    that a later minute of the same series finds what was worked out for this one.
    """
    labelsets: dict[str, list[Labels]] = {}
    values: dict[str, list[float]] = {}
    quantiles = None if layouts is None else layouts.quantiles
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
            labelsets.setdefault(total, []).append(labels)
            values.setdefault(total, []).append(float(sample.sum))
        if want[1]:
            labelsets.setdefault(count, []).append(labels)
            values.setdefault(count, []).append(float(sample.count))
        if want[2]:
            for point in quantile_points(sample, labels, quantiles):
                labelsets.setdefault(base, []).append(point[0])
                values.setdefault(base, []).append(point[1])
    # Stored samples are finite (the stores refuse others); an hour's rolled-up sum past the
    # largest float comes as inf, and is NOT_COMPUTED here like any other.
    return {name: _valued(found, values[name], layouts) for name, found in labelsets.items()}


def _valued(labelsets: list[Labels], values: list[float], layouts: Layouts | None) -> Family:
    """The points that have a value: NaN (no value) dropped, ±inf (not computed) kept."""
    whole = sum(values)
    if whole != whole:  # some NaN (or inf and -inf, which the check below keeps)
        kept = [i for i, value in enumerate(values) if value == value]
        labelsets = [labelsets[i] for i in kept]
        values = [values[i] for i in kept]
    if not values:
        return EMPTY
    order = tuple(labelsets)
    return Family(Layout(order) if layouts is None else layouts.root(order), values)
