"""A minute's evaluation kept per partition, so that after a commit only the partitions it
touched are evaluated again (receiver/rules/partitions.py says how a rule is taken apart).

``PartitionedEvaluation.update`` takes every sample of some partitions and evaluates the
units of each rule (the rule, or its cuts) over them, keeping each partition's points;
``evaluation`` puts the points of all partitions together and runs what is left of each
rule once. The values are those ``RuleSet.evaluation`` gives over all the samples at once:
a unit's points are the same whichever partitions run together, the rest of a rule runs
over the same points, and nothing depends on their order.

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
from receiver.rules.partitions import ACCOUNT_LABEL, Partition, Split, partition_of, split
from receiver.rules.ruleset import (
    Evaluation,
    Rule,
    RuleSet,
    entities,
    entity_groups,
    named_groups,
    rule_inputs,
    run_rule,
)

Identity = tuple[str, str, str, str, Pairs, int, int]


Key = tuple[str, str, str, str, str, str]
"""(metric, scope, service, endpoint or '', instance or '', layer): one entity's value of a
metric in one period, as ``RuleSet.evaluation`` keys them."""
Named = tuple[str, str | None, str | None, float]


@dataclass(slots=True)
class _Held:
    """What the samples of one partition, of one period start, give."""

    points: dict[tuple[int, int], f.Family] = field(default_factory=dict)
    """(rule index, unit index) -> the unit's points from this partition (none: absent)."""
    named: dict[int, dict[Key, float]] = field(default_factory=dict)
    """rule index -> the values a local rule names from these points alone."""
    lost: dict[int, int] = field(default_factory=dict)
    """rule index -> the entities a local rule could not compute from these points."""
    failed: dict[int, int] = field(default_factory=dict)
    """rule index -> values lost (0 or 1, as ``run_rule``) where a unit failed here."""


@dataclass(slots=True)
class _Period:
    """Every partition's part in the values of one period start."""

    helds: dict[Partition, _Held] = field(default_factory=dict)
    parts: dict[Key, dict[int, float]] = field(default_factory=dict)
    """key -> rule index -> that rule's value for the key (a key's value is their mean)."""
    owners: dict[tuple[int, Key], set[Partition]] = field(default_factory=dict)
    """(local rule index, key) -> the partitions whose points name the key."""
    upper_keys: dict[int, set[Key]] = field(default_factory=dict)
    """cut rule index -> the keys its last run named."""
    upper_lost: dict[int, int] = field(default_factory=dict)
    """cut rule index -> the values its last run could not compute."""
    stale_rules: set[int] = field(default_factory=set)
    """Rules whose values must be worked out again before they are read."""
    stale_keys: set[tuple[int, Key]] = field(default_factory=set)
    """(local rule index, key) whose value must be worked out again."""
    dirty: set[Key] = field(default_factory=set)
    """Keys whose parts changed since ``changes`` last looked."""
    infinite: set[Key] = field(default_factory=set)
    """Keys whose mean of parts ``changes`` last found not computed."""


class PartitionedEvaluation:
    """The rules (or ``metrics``' rules) over a changing set of samples, a partition at a time."""

    def __init__(self, rules: RuleSet, metrics: Collection[str] | None = None) -> None:
        self.rules = rules
        self.selected: list[Rule] = rules.select(metrics)
        self.wanted = rules.families(metrics)
        self.splits: list[Split] = [split(rule.expression) for rule in self.selected]
        self.supported = not any(s.whole for s in self.splits)
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
        # As RuleSet.evaluation: the samples some rule reads, the last of each identity,
        # sorted, grouped by period start.
        reads: dict[object, bool] = {}
        unique: dict[Identity, Sample] = {}
        for group in samples.values():
            for sample in group:
                read = reads.get(sample.series)
                if read is None:
                    base = f.family_name(sample.series.namespace, sample.series.metric)
                    read = reads[sample.series] = not wanted.isdisjoint((base, base + "_sum", base + "_count"))
                if read:
                    unique[sample.identity] = sample
        starts: dict[int, list[Sample]] = {}
        for identity in sorted(unique):
            sample = unique[identity]
            starts.setdefault(sample.start_ms, []).append(sample)
        for start, group in starts.items():
            period = self._periods.setdefault(start, _Period())
            for partition, held in self._evaluate_units(group, indices, wanted).items():
                self._keep(period, partition, held)

    def _evaluate_units(
        self, samples: list[Sample], indices: list[int], wanted: frozenset[str]
    ) -> dict[Partition, _Held]:
        """The units of rules ``indices`` over ``samples`` (of one period), by the partition
        of their points."""
        helds: dict[Partition, _Held] = {}
        data = f.build(samples, wanted)
        filtered: dict[tuple[int, str], f.Family] = {}
        memo = f.Memo(self.rules.answers)
        for index in indices:
            rule, parts = self.selected[index], self.splits[index]
            inputs = rule_inputs(rule, data, filtered, memo)
            if not inputs:
                continue
            results = []
            for unit in parts.units:
                result, _ = run_rule(rule, unit.expr, inputs, memo)
                if result is None:
                    # Which partition failed is unknown: each runs on its own to find out.
                    self._evaluate_alone(samples, index, helds)
                    break
                results.append(result)
            else:
                for unit_index, (unit, result) in enumerate(zip(parts.units, results)):
                    for partition, points in _attributed(result, unit.label, memo).items():
                        helds.setdefault(partition, _Held()).points[(index, unit_index)] = points
                if parts.local:
                    for partition, (named, lost) in self._named_apart(index, results[0], memo).items():
                        held = helds[partition]
                        held.named[index], held.lost[index] = named, lost
        for held in helds.values():
            # Points kept from a failure (_evaluate_alone) are named here, a partition at a time.
            for (index, _), points in held.points.items():
                if self.splits[index].local and index not in held.named:
                    held.named[index], held.lost[index] = self._named(index, points, memo)
        return helds

    def _evaluate_alone(self, samples: list[Sample], index: int, helds: dict[Partition, _Held]) -> None:
        """Rule ``index``'s units over each partition's samples on its own (after a failure)."""
        rule, parts = self.selected[index], self.splits[index]
        for partition, group in self.by_partition(samples).items():
            memo = f.Memo(self.rules.answers)
            inputs = rule_inputs(rule, f.build(group, self.wanted), {}, memo)
            if not inputs:
                continue
            for unit_index, unit in enumerate(parts.units):
                result, lost = run_rule(rule, unit.expr, inputs, memo)
                if result is None:
                    held = helds.setdefault(partition, _Held())
                    held.failed[index] = lost
                    for unit_before in range(unit_index):
                        held.points.pop((index, unit_before), None)
                    break
                if result:
                    helds.setdefault(partition, _Held()).points[(index, unit_index)] = result

    def _named_apart(self, index: int, points: f.Family, memo: f.Memo) -> dict[Partition, tuple[dict[Key, float], int]]:
        """``_named`` of a local rule's points of several partitions, each partition's
        entities apart (a collision of two partitions on one entity is _local_value's)."""
        rule, (unit,) = self.selected[index], self.splits[index].units
        scope = rule.shape.scope
        apart = (ACCOUNT_LABEL,) if unit.label is None else (ACCOUNT_LABEL, unit.label)
        by_partition: dict[Partition, dict[tuple[str, ...], list[float]]] = {}
        width = len(scope.service_keys) + len(scope.entity_keys)
        for group, values in entity_groups(points, scope, memo, apart).items():
            tail = group[width:]
            partition = (tail[0], unit.label or "", tail[1] if unit.label is not None else "")
            by_partition.setdefault(partition, {})[group] = values
        found = {}
        kind, layer = scope.kind, scope.layer
        for partition, groups in by_partition.items():
            named, lost = named_groups(groups, scope)
            found[partition] = (
                {
                    (rule.metric, kind, service, endpoint or "", instance or "", layer): value
                    for service, endpoint, instance, value in named
                },
                lost,
            )
        return found

    def _named(self, index: int, points: f.Family, memo: f.Memo) -> tuple[dict[Key, float], int]:
        """A local rule's values from ``points`` by key, and the entities it could not compute."""
        rule = self.selected[index]
        named, lost = entities(points, rule.shape.scope, memo)
        scope, layer = rule.shape.scope.kind, rule.shape.scope.layer
        return {
            (rule.metric, scope, service, endpoint or "", instance or "", layer): value
            for service, endpoint, instance, value in named
        }, lost

    # -- what each partition holds, and what a change marks stale --------------------------

    def _forget(self, period: _Period, partition: Partition, indices: frozenset[int]) -> None:
        """Drop what rules ``indices`` hold of ``partition``, marking what it took part in."""
        held = period.helds.get(partition)
        if held is None:
            return
        for unit in [unit for unit in held.points if unit[0] in indices]:
            if not self.splits[unit[0]].local:
                period.stale_rules.add(unit[0])
            del held.points[unit]
        for index in [index for index in held.named if index in indices]:
            for key in held.named.pop(index):
                period.stale_keys.add((index, key))
                owners = period.owners[(index, key)]
                owners.discard(partition)
                if not owners:
                    del period.owners[(index, key)]
        for index in [index for index in held.lost if index in indices]:
            del held.lost[index]
        for index in [index for index in held.failed if index in indices]:
            period.stale_rules.add(index)
            del held.failed[index]
        if not (held.points or held.failed):
            del period.helds[partition]

    def _keep(self, period: _Period, partition: Partition, new: _Held) -> None:
        """Add what rules give from ``partition`` (their earlier part forgotten first)."""
        held = period.helds.setdefault(partition, _Held())
        for unit, points in new.points.items():
            if not self.splits[unit[0]].local:
                period.stale_rules.add(unit[0])
            held.points[unit] = points
        for index, named in new.named.items():
            held.named[index] = named
            for key in named:
                period.stale_keys.add((index, key))
                period.owners.setdefault((index, key), set()).add(partition)
        held.lost.update(new.lost)
        held.failed.update(new.failed)
        period.stale_rules.update(new.failed)

    # -- the values --------------------------------------------------------------------------

    def evaluation(self) -> Evaluation:
        """The values of every rule over every sample held (as ``RuleSet.evaluation``)."""
        found: list[tuple[str, str, str, str, str, str, int, dict[int, float]]] = []
        not_computed = self._refresh_all()
        for start, period in self._periods.items():
            found.extend((*key, start, by_rule) for key, by_rule in period.parts.items())
        values = []
        # Sorted as RuleSet.evaluation sorts: by metric, scope, service, entity, layer, time.
        found.sort(key=lambda entry: entry[:7])
        for metric, scope, service, endpoint, instance, layer, start, by_rule in found:
            value = f.mean(list(by_rule.values()))
            if math.isfinite(value):
                values.append(
                    DerivedValue(metric, scope, service, endpoint or None, layer, start, value, instance or None)
                )
            else:
                not_computed[metric] += 1
        return Evaluation(values, dict(not_computed))

    def changes(self) -> tuple[dict[tuple[int, Key], float | None], dict[str, int]]:
        """What changed since the last call (since the start at the first): the new value of
        each (period start, key) whose value changed, None where it has none now (or one not
        computed); and every value not computed now, per metric, as ``evaluation`` counts."""
        not_computed = self._refresh_all()
        changed: dict[tuple[int, Key], float | None] = {}
        for start, keys in self._gone.items():
            changed.update(((start, key), None) for key in keys)
        self._gone.clear()
        for start, period in self._periods.items():
            for key in period.dirty:
                by_rule = period.parts.get(key)
                value = f.mean(list(by_rule.values())) if by_rule else None
                if value is not None and not math.isfinite(value):
                    period.infinite.add(key)
                    value = None
                else:
                    period.infinite.discard(key)
                changed[(start, key)] = value
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
            for index, lost in period.upper_lost.items():
                not_computed[self.selected[index].metric] += lost
            for held in period.helds.values():
                for index, lost in held.lost.items():
                    if lost and index not in failing:
                        not_computed[self.selected[index].metric] += lost
        return not_computed

    @staticmethod
    def _failing(period: _Period) -> dict[int, int]:
        """rule index -> values lost, for the rules a unit failed for in some partition."""
        failing: dict[int, int] = {}
        for held in period.helds.values():
            for index, lost in held.failed.items():
                failing[index] = max(lost, failing.get(index, 0))
        return failing

    def _refresh(self, period: _Period, failing: dict[int, int]) -> None:
        """Work out again the values marked stale."""
        for index in sorted(period.stale_rules):
            self._drop(period, index)
            if index in failing:
                continue  # as over the whole minute: a failure anywhere costs the rule its values
            if self.splits[index].local:
                period.stale_keys.update(key for key in period.owners if key[0] == index)
            else:
                self._run_upper(period, index)
        for index, key in period.stale_keys:
            self._set(period, key, index, None if index in failing else self._local_value(period, index, key))
        period.stale_rules.clear()
        period.stale_keys.clear()

    def _local_value(self, period: _Period, index: int, key: Key) -> float | None:
        """A local rule's value for ``key``: its one owner's, or, where the points of several
        partitions name it, the value over all of them (as over the whole minute)."""
        owners = period.owners.get((index, key))
        if not owners:
            return None
        if len(owners) == 1:
            (owner,) = owners
            return period.helds[owner].named[index][key]
        points = tuple(itertools.chain.from_iterable(period.helds[p].points[(index, 0)] for p in sorted(owners)))
        named, _ = self._named(index, points, f.Memo(self.rules.answers))
        return named.get(key)

    def _run_upper(self, period: _Period, index: int) -> None:
        """A cut rule's remaining part over the union of every partition's cut points."""
        rule, parts = self.selected[index], self.splits[index]
        unions = [
            tuple(itertools.chain.from_iterable(held.points.get((index, u), ()) for held in period.helds.values()))
            for u in range(len(parts.units))
        ]
        if not any(unions):
            return
        memo = f.Memo(self.rules.answers)
        given = {id(unit.expr): union for unit, union in zip(parts.units, unions)}
        result, lost = run_rule(rule, rule.expression, {}, memo, given)
        if result is not None:
            named, lost = entities(result, rule.shape.scope, memo)
            keys = period.upper_keys[index] = set()
            scope, layer = rule.shape.scope.kind, rule.shape.scope.layer
            for service, endpoint, instance, value in named:
                key = (rule.metric, scope, service, endpoint or "", instance or "", layer)
                keys.add(key)
                self._set(period, key, index, value)
        if lost:
            period.upper_lost[index] = lost

    def _drop(self, period: _Period, index: int) -> None:
        """Remove rule ``index``'s values (before they are worked out again)."""
        period.upper_lost.pop(index, None)
        for key in period.upper_keys.pop(index, ()):
            self._set(period, key, index, None)
        if self.splits[index].local:
            for _, key in [owned for owned in period.owners if owned[0] == index]:
                self._set(period, key, index, None)

    @staticmethod
    def _set(period: _Period, key: Key, index: int, value: float | None) -> None:
        """Set rule ``index``'s part in ``key`` (None: it has none); a change marks the key."""
        by_rule = period.parts.get(key)
        old = None if by_rule is None else by_rule.get(index)
        if value is None:
            if old is not None:
                assert by_rule is not None
                del by_rule[index]
                if not by_rule:
                    del period.parts[key]
                period.dirty.add(key)
        elif old is None or not _same(old, value):
            period.parts.setdefault(key, {})[index] = value
            period.dirty.add(key)


def _same(a: float, b: float) -> bool:
    """Equal to the last bit: 0.0 and -0.0 differ (values are never NaN)."""
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


def changed_families(before: Iterable[Sample], after: Iterable[Sample]) -> set[str]:
    """The families whose samples differ between two sample sets of one partition."""
    metrics: set[tuple[str, str]] = set()
    old = _by_metric(before)
    new = _by_metric(after)
    for metric in old.keys() | new.keys():
        if old.get(metric) != new.get(metric):
            metrics.add(metric)
    return {name for namespace, metric in metrics for name in f.family_names(namespace, metric)}


def _by_metric(samples: Iterable[Sample]) -> dict[tuple[str, str], dict[Identity, Sample]]:
    found: dict[tuple[str, str], dict[Identity, Sample]] = {}
    for sample in samples:
        found.setdefault((sample.series.namespace, sample.series.metric), {})[sample.identity] = sample
    return found


def _attributed(points: f.Family, label: str | None, memo: f.Memo) -> dict[Partition, f.Family]:
    """A unit's points by the partition they come from: read from their account and resource
    labels, which a local point still carries (receiver/rules/partitions.py)."""
    accounts = f.column(points, ACCOUNT_LABEL, memo)
    resources = f.column(points, label, memo) if label is not None else [None] * len(points)
    grouped: dict[tuple[str | None, str | None], list[f.Point]] = {}
    for point, account, resource in zip(points, accounts, resources):
        grouped.setdefault((account, resource), []).append(point)
    return {
        (account or "", label or "", resource or ""): tuple(group) for (account, resource), group in grouped.items()
    }
