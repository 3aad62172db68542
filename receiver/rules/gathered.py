"""A cut's points folded by the aggregation above it, kept up to date a partition at a time.

Most cut rules are an account's total: the cut (one table's points) is the receiver of an
aggregation whose ``by`` drops the table, ``X.sum(['cloud_account_id'])``. Evaluated over
the union of every partition's cut points, that aggregation costs the whole account on every
pass. ``Gathered`` keeps, per output group, what each partition gives to it, and the fold of
those gifts: a pass that changes a few partitions takes their old part out of the groups
they touched and puts their new one in, and the rest of the rule then runs over one point
per group (``aggregation_above``: which cuts can be gathered so).

The values are those ``families.aggregate`` gives over the union, to the bit:

* a sum is the exact sum rounded once (``families.total``): kept here as an exact integer
  in units of 2^-1074 (every float is a whole number of them), its float the same correctly
  rounded one (0.0 for a zero sum, as fsum gives for -0.0s);
* a mean is that sum over the count, the one value itself where the group holds one;
* a maximum or minimum is the largest or smallest of each partition's own (0.0 is the
  larger zero, as the folds have it, so the order of the points does not matter);
* a point not computed (±inf) gives what the folds give it (families.AGGREGATES).

One case is left to the union of the points (``value`` gives ``UNDECIDED``): a mean whose
sum is past the largest float, which the folds work out from each value's share.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from receiver.rules import families as f
from receiver.rules import nodes as n
from receiver.rules.checker import AGGREGATIONS
from receiver.rules.layouts import Labels
from receiver.rules.partitions import Partition

UNDECIDED = None
"""What ``Gathered.value`` gives where the union of the points must decide (module docstring)."""


def aggregation_above(expr: n.Expr, unit: n.Expr) -> n.Call | None:
    """The aggregation whose receiver is ``unit`` (a cut of ``expr``), when that is the one
    place ``unit`` is used; None otherwise (the cut's points go elsewhere as they are)."""
    parents: list[n.Expr] = []
    _parents_of(expr, unit, parents)
    if len(parents) != 1:
        return None
    parent = parents[0]
    if isinstance(parent, n.Call) and parent.method in AGGREGATIONS and parent.receiver is unit:
        return parent
    return None


def _parents_of(expr: n.Expr, unit: n.Expr, found: list[n.Expr]) -> None:
    children: list[n.Expr] = []
    match expr:
        case n.Negate(operand=operand):
            children = [operand]
        case n.Binary(left=left, right=right):
            children = [left, right]
        case n.Call(receiver=receiver, args=args):
            children = [receiver, *(a for a in args if isinstance(a, n.Expr))]
    for child in children:
        if child is unit:
            found.append(expr)
        else:
            _parents_of(child, unit, found)


@dataclass(slots=True)
class _Part:
    """One partition's points in one group, where they are not one finite value."""

    count: int
    exact: int
    """Sum (and mean): Σ of its finite values in units of 2^-1074."""
    extreme: float
    """Maximum or minimum: its finite values' (nan where it has none)."""
    up: int
    """Values +inf (not computed)."""
    down: int
    """Values -inf."""
    single: float
    """The value when ``count`` is 1."""


Part = float | _Part
"""One partition's points in one group: a float for one finite value (the usual case: a
partition gives a group one point), so that a minute keeps no more than a float for it."""


@dataclass(slots=True)
class _Group:
    """Every partition's part in one group, and their running totals (sum and mean)."""

    parts: dict[Partition, Part] = field(default_factory=dict)
    count: int = 0
    exact: int = 0
    up: int = 0
    down: int = 0

    def add(self, partition: Partition, part: Part) -> None:
        self.parts[partition] = part
        self._count(part, 1)

    def remove(self, partition: Partition) -> None:
        self._count(self.parts.pop(partition), -1)

    def _count(self, part: Part, sign: int) -> None:
        if isinstance(part, float):
            self.count += sign
            self.exact += sign * f.exact(part)
            return
        self.count += sign * part.count
        self.exact += sign * part.exact
        self.up += sign * part.up
        self.down += sign * part.down


class Gathered:
    """One cut's points aggregated ``how`` by ``by``, kept per group from each partition's
    part (see the module docstring). Who puts a partition's points in takes them out with
    the same points (``remove``): they say which groups it is in, so nothing else is kept
    per partition."""

    __slots__ = ("by", "groups", "how")

    def __init__(self, how: str, by: tuple[str, ...]) -> None:
        self.how = how
        self.by = by
        self.groups: dict[Labels, _Group] = {}

    def add(self, partition: Partition, points: f.Family) -> None:
        """Put ``partition``'s points in (it has none in yet)."""
        layout, indexes, pick = f.groups_by(points.layout, self.by)
        values = points.values
        extremes, largest = self.how in ("max", "min"), self.how == "max"
        if pick is not None:
            members: Sequence[Sequence[float]] = [(value,) for value in pick(values)]
        else:
            members = [[values[i] for i in group] for group in indexes]
        for labels, group in zip(layout.labels, members):
            found = self.groups.get(labels)
            if found is None:
                found = self.groups[labels] = _Group()
            found.add(partition, _part(group, extremes, largest))

    def remove(self, partition: Partition, points: f.Family) -> None:
        """Take ``partition``'s points out: those it was last given with ``add``."""
        layout, _, _ = f.groups_by(points.layout, self.by)
        for labels in layout.labels:
            group = self.groups[labels]
            group.remove(partition)
            if not group.parts:
                del self.groups[labels]

    def family(self, memo: f.Memo) -> f.Family | None:
        """The aggregation's points over every partition's; None where some group's value
        is ``UNDECIDED``."""
        if not self.groups:
            return f.EMPTY
        values = []
        for group in self.groups.values():
            value = self.value(group)
            if value is UNDECIDED:
                return None
            values.append(value)
        return f.Family(memo.layouts.root(tuple(self.groups)), values)

    def value(self, group: _Group) -> float | None:
        """One group's value as ``families.AGGREGATES[how]`` gives it over its points."""
        if self.how == "sum":
            if group.up and group.down:
                return f.NOT_COMPUTED  # fsum of inf and -inf: no sum
            if group.up or group.down:
                return math.inf if group.up else -math.inf
            return f.rounded(group.exact)
        if group.up or group.down:
            return f.NOT_COMPUTED  # a mean, maximum or minimum over a value not computed
        if self.how == "avg":
            if group.count == 1:
                (part,) = group.parts.values()
                return part if isinstance(part, float) else part.single
            whole = f.rounded(group.exact)
            return whole / group.count if math.isfinite(whole) else UNDECIDED
        extremes = [
            part if isinstance(part, float) else part.extreme
            for part in group.parts.values()
            if isinstance(part, float) or not math.isnan(part.extreme)
        ]
        return _extreme(extremes, self.how == "max")


def _part(values: Sequence[float], extremes: bool, largest: bool) -> Part:
    """One partition's part in a group from its values there."""
    if len(values) == 1 and math.isfinite(values[0]):
        return float(values[0])
    finite = [value for value in values if math.isfinite(value)]
    up = sum(1 for value in values if value == math.inf)
    down = len(values) - len(finite) - up
    single = values[0] if len(values) == 1 else math.nan
    if extremes:
        extreme = _extreme(finite, largest) if finite else math.nan
        return _Part(len(values), 0, extreme, up, down, single)
    return _Part(len(values), sum(map(f.exact, finite)), math.nan, up, down, single)


def _extreme(values: list[float], largest: bool) -> float:
    """The maximum (or minimum) of finite values, as the folds give it."""
    return f.larger_zero(max(values), values) if largest else f.smaller_zero(min(values), values)
