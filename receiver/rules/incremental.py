"""A minute's evaluation kept per partition, so that after a commit only the partitions it
touched are evaluated again (receiver/rules/partitions.py says how a rule is taken apart).

``PartitionedEvaluation.update`` takes every sample of some partitions and evaluates the
units of each rule (the rule, or its cuts) over them. Of a local rule it keeps, per
partition, the values of each entity's group of points; of a cut, the cut's points.
``changes`` then works out again what the update touched: an entity's value from its
groups (several partitions' groups where their points name one entity together), and what
is left of a cut rule: from the aggregation above each cut, kept per group from every
partition's part (receiver/rules/gathered.py), or, for a cut with no aggregation above it,
over the union of every partition's cut points. The values are those
``RuleSet.evaluation`` gives over all the samples at once: a unit's points are the same
whichever partitions run together, the rest of a rule runs over the same points (or their
aggregation), and nothing depends on their order.

A minute of 2,000 tables keeps about a quarter of a million values, so the state is lean:
a group's values are a float (one point, the usual case) or a tuple; a metric defined by
one rule keeps its value as a float; labels come from a cache shared across minutes.

A rule that cannot be taken apart (``Split.whole``) makes the whole set unsplittable:
``PartitionedEvaluation.supported`` says so, and the caller evaluates whole minutes.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from receiver.model import DerivedValue, Pairs, Sample
from receiver.rules import families as f
from receiver.rules import nodes as n
from receiver.rules.gathered import Gathered, aggregation_above
from receiver.rules.layouts import Layout, Layouts, Selection, numbered
from receiver.rules.partitions import ACCOUNT_LABEL, Partition, Split, partition_of, split
from receiver.rules.ruleset import (
    Evaluation,
    Named,
    Rule,
    RuleSet,
    by_start,
    entities,
    rule_inputs,
    run_rule,
)

Identity = tuple[str, str, str, str, Pairs, int, int]

Key = tuple[str, str, str, str, str, str]
"""(metric, scope, service, endpoint or '', instance or '', layer): one entity's value of a
metric in one period, as ``RuleSet.evaluation`` keys them."""

Values = float | tuple[float, ...]
"""The values of a group's points: one, or several (the entity's value is their mean)."""

Group = tuple[Partition, Values] | dict[Partition, Values]
"""Who names a local rule's key: one partition (the usual case) or several."""


@dataclass(slots=True)
class _Found:
    """What evaluating some rules over one partition's samples (of one period) gave."""

    points: dict[tuple[int, int], f.Family] = field(default_factory=dict)
    """(cut rule index, unit index) -> the cut's points from this partition (none: absent)."""
    named: dict[int, dict[Key, Values]] = field(default_factory=dict)
    """local rule index -> the groups its points form here, by the key they name."""
    failed: dict[int, int] = field(default_factory=dict)
    """rule index -> values lost (0 or 1, as ``run_rule``) where a unit failed here."""


@dataclass(slots=True)
class _Held:
    """What one partition holds in one period: a ``_Found`` whose groups went into the
    period's (``_Period.groups``), so only their keys stay here."""

    points: dict[tuple[int, int], f.Family] = field(default_factory=dict)
    keys: dict[int, tuple[Key, ...]] = field(default_factory=dict)
    """local rule index -> the keys its groups here name."""
    failed: dict[int, int] = field(default_factory=dict)


@dataclass(slots=True)
class _Period:
    """Every partition's part in the values of one period start."""

    helds: dict[Partition, _Held] = field(default_factory=dict)
    groups: dict[int, dict[Key, Group]] = field(default_factory=dict)
    """local rule index -> key -> the groups naming it."""
    failures: dict[int, dict[Partition, int]] = field(default_factory=dict)
    """rule index -> the partitions where a unit of it failed, and the values lost there (the
    ``failed`` of each partition's ``_Held``, gathered so a pass need not visit every partition)."""
    lost: dict[int, set[Key]] = field(default_factory=dict)
    """local rule index -> the keys whose value it could not compute."""
    upper: dict[int, tuple[list[Key], int]] = field(default_factory=dict)
    """cut rule index -> (the keys its last run named, the values it could not compute)."""
    cuts: dict[tuple[int, int], dict[Partition, f.Family]] = field(default_factory=dict)
    """(cut rule index, unit index) -> each partition's cut points. A partition updated
    again keeps its place, so that the union of a unit's points has the layout it had (and
    what was worked out from it: receiver/rules/layouts.py) while its partitions stay."""
    gathered: dict[tuple[int, int], Gathered] = field(default_factory=dict)
    """(cut rule index, unit index) -> the aggregation above the cut, kept from each
    partition's cut points (receiver/rules/gathered.py), for the cuts that have one."""
    forgotten: set[tuple[tuple[int, int], Partition]] = field(default_factory=set)
    """Cut points forgotten by an update and not given again (yet): dropped from ``cuts``
    when the values are next worked out."""
    parts: dict[Key, float | dict[int, float]] = field(default_factory=dict)
    """key -> its rule's value (a metric of one rule) or each rule's (the value is their mean)."""
    stale_rules: set[int] = field(default_factory=set)
    """Rules whose values must be worked out again before they are read."""
    stale_keys: set[tuple[int, Key]] = field(default_factory=set)
    """(local rule index, key) whose value must be worked out again."""
    dirty: set[Key] = field(default_factory=set)
    """Keys whose value may have changed since ``changes`` last looked."""
    infinite: set[Key] = field(default_factory=set)
    """Keys whose mean of parts ``changes`` last found not computed."""


class PartitionedEvaluation:
    """The rules (or ``metrics``' rules) over a changing set of samples, a partition at a time."""

    def __init__(
        self, rules: RuleSet, metrics: Collection[str] | None = None, labels_cache: f.LabelsCache | None = None
    ) -> None:
        self.rules = rules
        self.selected: list[Rule] = rules.select(metrics)
        self.wanted = rules.families(metrics)
        self.splits: list[Split] = [split(rule.expression) for rule in self.selected]
        self.supported = not any(s.whole for s in self.splits)
        self._above: list[tuple[n.Call | None, ...]] = [
            () if parts.local else tuple(aggregation_above(rule.expression, unit.expr) for unit in parts.units)
            for rule, parts in zip(self.selected, self.splits)
        ]
        """Each cut's aggregation above it, where its points are gathered (None: not)."""
        per_metric = Counter(rule.metric for rule in self.selected)
        self._sole = [per_metric[rule.metric] == 1 for rule in self.selected]
        """Whether each rule is the only one of its metric (its value is the key's)."""
        self._labels = labels_cache if labels_cache is not None else {}
        self._periods: dict[int, _Period] = {}
        self._gone: dict[int, set[Key]] = {}
        """Keys of periods that lost every sample, until ``changes`` reports them."""

    @staticmethod
    def by_partition(samples: Iterable[Sample]) -> dict[Partition, list[Sample]]:
        """Samples grouped by partition, for ``update``."""
        grouped: dict[Partition, list[Sample]] = {}
        for sample in samples:
            grouped.setdefault(partition_of(sample), []).append(sample)
        return grouped

    def update(
        self,
        samples: Mapping[Partition, Iterable[Sample]],
        families: Mapping[Partition, Collection[str]] | None = None,
    ) -> None:
        """Make each partition of ``samples`` hold exactly its samples there (none: forget it).

        Every sample must belong to the partition it is listed under (``by_partition``).
        ``families``: for each partition, the families whose samples changed since its last
        update (``changed_families``), so that only the rules reading them run again; None
        runs every rule.
        """
        if not self.supported:
            raise ValueError("these rules cannot be evaluated a partition at a time")
        if families is None:
            indices = list(range(len(self.selected)))
        else:
            changed = set().union(*families.values())
            indices = [i for i, rule in enumerate(self.selected) if not changed.isdisjoint(rule.shape.families)]
        if not indices:
            return  # no rule reads what changed
        chosen = frozenset(indices)
        wanted = frozenset().union(*(self.selected[i].shape.families for i in indices))
        for period in self._periods.values():
            for partition in samples:
                self._forget(period, partition, chosen)
        starts = by_start(itertools.chain.from_iterable(samples.values()), wanted)  # as RuleSet.evaluation
        for start, group in starts.items():
            period = self._periods.setdefault(start, _Period())
            for partition, held in self._evaluate_units(group, indices, wanted).items():
                self._keep(period, partition, held)

    # -- evaluating units ------------------------------------------------------------------

    def _evaluate_units(
        self, samples: list[Sample], indices: list[int], wanted: frozenset[str]
    ) -> dict[Partition, _Found]:
        """The units of rules ``indices`` over ``samples`` (of one period), by partition."""
        helds: dict[Partition, _Found] = {}
        data = f.build(samples, wanted, self._labels, self.rules.layouts)
        filtered: dict[tuple[int, str], f.Family] = {}
        memo = f.Memo(self.rules.answers, self.rules.layouts)
        for index in indices:
            rule, parts = self.selected[index], self.splits[index]
            inputs = rule_inputs(rule, data, filtered, memo)
            if not inputs:
                continue
            results, _ = _run_units(rule, parts, inputs, memo)
            if results is None:
                # Which partition failed is unknown: each runs on its own to find out.
                self._evaluate_alone(samples, index, helds)
            else:
                self._hold_results(index, results, memo, helds)
        return helds

    def _hold_results(self, index: int, results: list[f.Family], memo: f.Memo, helds: dict[Partition, _Found]) -> None:
        """Keep rule ``index``'s unit results by partition: a local rule's groups, a cut's points."""
        parts = self.splits[index]
        if parts.local:
            for partition, named in self._groups_apart(index, results[0], memo).items():
                helds.setdefault(partition, _Found()).named[index] = named
            return
        for unit_index, (unit, result) in enumerate(zip(parts.units, results)):
            for partition, points in _attributed(result, unit.label, memo).items():
                helds.setdefault(partition, _Found()).points[(index, unit_index)] = points

    def _evaluate_alone(self, samples: list[Sample], index: int, helds: dict[Partition, _Found]) -> None:
        """Rule ``index``'s units over each partition's samples on its own (after a failure)."""
        rule, parts = self.selected[index], self.splits[index]
        for partition, group in self.by_partition(samples).items():
            memo = f.Memo(self.rules.answers, self.rules.layouts)
            inputs = rule_inputs(rule, f.build(group, self.wanted, self._labels, self.rules.layouts), {}, memo)
            if not inputs:
                continue
            results, lost = _run_units(rule, parts, inputs, memo)
            if results is None:
                helds.setdefault(partition, _Found()).failed[index] = lost
            else:
                self._hold_results(index, results, memo, helds)

    def _groups_apart(self, index: int, points: f.Family, memo: f.Memo) -> dict[Partition, dict[Key, Values]]:
        """A local rule's groups of points by the key they name, each partition's apart."""
        rule, (unit,) = self.selected[index], self.splits[index].units
        scope = rule.shape.scope
        apart = (ACCOUNT_LABEL,) if unit.label is None else (ACCOUNT_LABEL, unit.label)
        named = Named.of(points, scope, apart)
        found: dict[Partition, dict[Key, Values]] = {}
        keys = named.keys_of(rule.metric, scope.kind, scope.layer)
        for key, tail, values in zip(keys, named.tails, named.parts(points)):
            partition = (tail[0], unit.label or "", tail[1] if unit.label is not None else "")
            # A partition is there even where none of its groups names an entity.
            by_key = found.setdefault(partition, {})
            if key is not None:
                by_key[key] = values
        return found

    # -- what each partition holds, and what a change marks stale --------------------------

    def _forget(self, period: _Period, partition: Partition, indices: frozenset[int]) -> None:
        """Drop what rules ``indices`` hold of ``partition``, marking what it took part in."""
        held = period.helds.get(partition)
        if held is None:
            return
        for unit in [unit for unit in held.points if unit[0] in indices]:
            period.stale_rules.add(unit[0])
            gathered = period.gathered.get(unit)
            if gathered is not None:
                gathered.remove(partition, held.points[unit])
            del held.points[unit]
            period.forgotten.add((unit, partition))
        for index in [index for index in held.keys if index in indices]:
            groups = period.groups[index]
            for key in held.keys.pop(index):
                period.stale_keys.add((index, key))
                found = groups[key]
                if isinstance(found, tuple):
                    del groups[key]
                else:
                    del found[partition]
                    if len(found) == 1:
                        groups[key] = next(iter(found.items()))
        for index in [index for index in held.failed if index in indices]:
            period.stale_rules.add(index)
            del held.failed[index]
            failures = period.failures[index]
            del failures[partition]
            if not failures:
                del period.failures[index]
        if not (held.points or held.keys or held.failed):
            del period.helds[partition]

    def _keep(self, period: _Period, partition: Partition, new: _Found) -> None:
        """Add what rules give from ``partition`` (their earlier part forgotten first)."""
        held = period.helds.setdefault(partition, _Held())
        for unit, points in new.points.items():
            period.stale_rules.add(unit[0])
            held.points[unit] = points
            period.cuts.setdefault(unit, {})[partition] = points
            period.forgotten.discard((unit, partition))
            above = self._above[unit[0]][unit[1]]
            if above is not None:
                gathered = period.gathered.get(unit)
                if gathered is None:
                    by = above.args[0]
                    assert isinstance(by, n.StringList)
                    gathered = period.gathered[unit] = Gathered(above.method, by.items)
                gathered.add(partition, points)
        for index, named in new.named.items():
            held.keys[index] = tuple(named)
            groups = period.groups.setdefault(index, {})
            for key, values in named.items():
                period.stale_keys.add((index, key))
                found = groups.get(key)
                if found is None:
                    groups[key] = (partition, values)
                elif isinstance(found, tuple):
                    groups[key] = {found[0]: found[1], partition: values}
                else:
                    found[partition] = values
        held.failed.update(new.failed)
        period.stale_rules.update(new.failed)
        for index, lost in new.failed.items():
            period.failures.setdefault(index, {})[partition] = lost

    # -- the values --------------------------------------------------------------------------

    def evaluation(self) -> Evaluation:
        """The values of every rule over every sample held (as ``RuleSet.evaluation``)."""
        found: list[tuple[str, str, str, str, str, str, int, float]] = []
        not_computed = self._refresh_all()
        for start, period in self._periods.items():
            found.extend((*key, start, _mean(part)) for key, part in period.parts.items())
        values = []
        # Sorted as RuleSet.evaluation sorts: by metric, scope, service, entity, layer, time.
        found.sort(key=lambda entry: entry[:7])
        for metric, scope, service, endpoint, instance, layer, start, value in found:
            if math.isfinite(value):
                values.append(
                    DerivedValue(metric, scope, service, endpoint or None, layer, start, value, instance or None)
                )
            else:
                not_computed[metric] += 1
        return Evaluation(values, dict(not_computed))

    def value(self, start: int, key: Key) -> float | None:
        """The value of ``key`` in the period starting at ``start`` as ``changes`` last found
        it; None for none (or one not computed)."""
        period = self._periods.get(start)
        part = None if period is None else period.parts.get(key)
        if part is None:
            return None
        value = _mean(part)
        return value if math.isfinite(value) else None

    def changes(self) -> tuple[set[tuple[int, Key]], dict[str, int]]:
        """What changed since the last call (since the start at the first): each (period
        start, key) whose value may have changed (``value`` says what it is now); and every
        value not computed now, per metric, as ``evaluation`` counts."""
        not_computed = self._refresh_all()
        changed: set[tuple[int, Key]] = set()
        for start, keys in self._gone.items():
            changed.update((start, key) for key in keys)
        self._gone.clear()
        for start, period in self._periods.items():
            for key in period.dirty:
                part = period.parts.get(key)
                if part is not None and not math.isfinite(_mean(part)):
                    period.infinite.add(key)
                else:
                    period.infinite.discard(key)
                changed.add((start, key))
            period.dirty.clear()
            for key in period.infinite:
                not_computed[key[0]] += 1
        return changed, dict(not_computed)

    def _refresh_all(self) -> Counter[str]:
        """Work out every stale value; the values not computed by rule (failures, entities)."""
        for start in [start for start, period in self._periods.items() if not period.helds]:
            # A period with no samples left: every value it had is gone.
            self._gone[start] = set(self._periods.pop(start).parts)
        not_computed: Counter[str] = Counter()
        for period in self._periods.values():
            failing = self._failing(period)
            self._refresh(period, failing)
            for index, lost in failing.items():
                if lost:
                    not_computed[self.selected[index].metric] += lost
            for index, (_, lost) in period.upper.items():
                if lost:
                    not_computed[self.selected[index].metric] += lost
            for index, keys in period.lost.items():
                if keys:
                    not_computed[self.selected[index].metric] += len(keys)
        return not_computed

    @staticmethod
    def _failing(period: _Period) -> dict[int, int]:
        """rule index -> values lost, for the rules a unit failed for in some partition."""
        return {index: max(failures.values()) for index, failures in period.failures.items()}

    def _refresh(self, period: _Period, failing: dict[int, int]) -> None:
        """Work out again the values marked stale."""
        for unit, partition in period.forgotten:
            del period.cuts[unit][partition]
        period.forgotten.clear()
        for index in sorted(period.stale_rules):
            self._drop(period, index)
            if index in failing:
                continue  # as over the whole minute: a failure anywhere costs the rule its values
            if self.splits[index].local:
                period.stale_keys.update((index, key) for key in period.groups.get(index, ()))
            else:
                self._run_upper(period, index)
        for index, key in period.stale_keys:
            if index in failing:
                self._set(period, key, index, None)
                continue
            value = self._local_value(period, index, key)
            lost = period.lost.setdefault(index, set())
            if value is not None and not math.isfinite(value):
                lost.add(key)
                value = None
            else:
                lost.discard(key)
            self._set(period, key, index, value)
        period.stale_rules.clear()
        period.stale_keys.clear()

    @staticmethod
    def _local_value(period: _Period, index: int, key: Key) -> float | None:
        """A local rule's value for ``key``: the mean of its group's values, over every
        partition whose points name it (as over the whole minute); None for no group."""
        found = period.groups.get(index, {}).get(key)
        if found is None:
            return None
        if isinstance(found, tuple):
            values = found[1]
            return f.mean(list(values)) if isinstance(values, tuple) else f.mean([values])
        together = [v for values in found.values() for v in (values if isinstance(values, tuple) else (values,))]
        return f.mean(together)

    def _run_upper(self, period: _Period, index: int) -> None:
        """A cut rule's remaining part: from the aggregation above each cut, kept from
        every partition's part, or else over the union of every partition's cut points."""
        rule, parts = self.selected[index], self.splits[index]
        memo = f.Memo(self.rules.answers, self.rules.layouts)
        given: dict[int, f.Family] = {}
        for u, (unit, above) in enumerate(zip(parts.units, self._above[index])):
            gathered = period.gathered.get((index, u))
            folded = None if above is None else f.EMPTY if gathered is None else gathered.family(memo)
            if above is not None and folded is not None:
                given[id(above)] = folded
            else:  # no aggregation above, or one only the points in order decide
                given[id(unit.expr)] = f.join(list(period.cuts.get((index, u), {}).values()), memo)
        if not any(given.values()):
            return
        result, lost = run_rule(rule, rule.expression, {}, memo, given)
        keys: list[Key] = []
        if result is not None:
            named, lost = entities(result, rule.shape.scope, memo)
            scope, layer = rule.shape.scope.kind, rule.shape.scope.layer
            for service, endpoint, instance, value in named:
                key = (rule.metric, scope, service, endpoint or "", instance or "", layer)
                keys.append(key)
                self._set(period, key, index, value)
        period.upper[index] = (keys, lost)

    def _drop(self, period: _Period, index: int) -> None:
        """Remove rule ``index``'s values (before they are worked out again)."""
        keys, _ = period.upper.pop(index, ((), 0))
        for key in keys:
            self._set(period, key, index, None)
        for key in period.groups.get(index, ()):
            self._set(period, key, index, None)
        period.lost.pop(index, None)

    def _set(self, period: _Period, key: Key, index: int, value: float | None) -> None:
        """Set rule ``index``'s part in ``key`` (None: it has none); a change marks the key."""
        part = period.parts.get(key)
        if self._sole[index]:
            assert not isinstance(part, dict)
            if value is None:
                if part is not None:
                    del period.parts[key]
                    period.dirty.add(key)
            elif part is None or not _same(part, value):
                period.parts[key] = value
                period.dirty.add(key)
            return
        by_rule = part if isinstance(part, dict) else {}
        old = by_rule.get(index)
        if value is None:
            if old is not None:
                del by_rule[index]
                if not by_rule:
                    del period.parts[key]
                period.dirty.add(key)
        elif old is None or not _same(old, value):
            by_rule[index] = value
            period.parts[key] = by_rule
            period.dirty.add(key)


def _mean(part: float | dict[int, float]) -> float:
    """A key's value from its parts: the one rule's, or the mean of several rules'."""
    return f.mean(list(part.values())) if isinstance(part, dict) else part


def _run_units(
    rule: Rule, parts: Split, inputs: dict[str, f.Family], memo: f.Memo
) -> tuple[list[f.Family] | None, int]:
    """Each unit's result over ``inputs``; None, with the values lost, when one fails."""
    results = []
    for unit in parts.units:
        result, lost = run_rule(rule, unit.expr, inputs, memo)
        if result is None:
            return None, lost
        results.append(result)
    return results, 0


def _same(a: float, b: float) -> bool:
    """Equal to the last bit: 0.0 and -0.0 differ (values are never NaN)."""
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


def changed_families(before: Iterable[Sample], after: Iterable[Sample]) -> set[str]:
    """The families whose samples differ between two sample sets of one partition."""
    metrics: set[tuple[str, str]] = set()
    old = _by_metric(before)
    new = _by_metric(after)
    for metric in old.keys() | new.keys():
        was, now = old.get(metric, {}), new.get(metric, {})
        if was.keys() != now.keys() or not all(same_sample(was[key], now[key]) for key in was):
            metrics.add(metric)
    return {name for namespace, metric in metrics for name in f.family_names(namespace, metric)}


def same_sample(a: Sample, b: Sample) -> bool:
    """Whether two samples are the same to the bit: ``==``, and the signs of their zeros,
    which ``==`` does not compare but a value can show (a Minimum of -0.0 gives -0.0)."""
    return a == b and _zero_signs(a) == _zero_signs(b)


def _zero_signs(sample: Sample) -> tuple[float, ...]:
    numbers = (sample.count, sample.sum, sample.min, sample.max, *(value for _, value in sample.stats))
    return tuple(math.copysign(1.0, number) for number in numbers if number == 0)


def _by_metric(samples: Iterable[Sample]) -> dict[tuple[str, str], dict[Identity, Sample]]:
    found: dict[tuple[str, str], dict[Identity, Sample]] = {}
    for sample in samples:
        found.setdefault((sample.series.namespace, sample.series.metric), {})[sample.identity] = sample
    return found


def _attributed(points: f.Family, label: str | None, memo: f.Memo) -> dict[Partition, f.Family]:
    """A unit's points by the partition they come from: read from their account and resource
    labels, which a local point still carries (receiver/rules/partitions.py)."""
    key = ("attributed", label)
    found = points.layout.derived.get(key)
    if found is None:
        found = points.layout.derived[key] = _attribution(points.layout, label, memo.layouts)
    assert isinstance(found, dict)
    return {partition: f.select(points, part) for partition, part in found.items()}


def _attribution(layout: Layout, label: str | None, layouts: Layouts) -> dict[Partition, Selection]:
    accounts = f.column(layout, ACCOUNT_LABEL)
    resources = f.column(layout, label) if label is not None else [None] * len(layout)
    grouped: dict[tuple[str | None, str | None], list[int]] = {}
    for index, (account, resource) in numbered(zip(accounts, resources), len(layout)):
        grouped.setdefault((account, resource), []).append(index)
    found = {
        (account or "", label or "", resource or ""): Selection(layout, indexes)
        for (account, resource), indexes in grouped.items()
    }
    for part in found.values():
        # A partition's points have one layout whichever partitions they were evaluated
        # with, so their union with the others' finds what was worked out for it before.
        part.layout = layouts.root(part.layout.labels)
    return found
