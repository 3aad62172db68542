"""One minute's derived values kept in step with its samples a partition at a time.

``MinuteValues.update`` takes the samples of the partitions that changed (one table, delivery
stream or metric stream: receiver/rules/partitions.py) and answers what changed in the
minute's values: exactly what ``evaluate_by_region`` gives over all of its samples, as
upserts and removals. Over one region, each value is that region's; over several, the
rules also run per region (``regional_metrics``), one partitioned evaluation per region,
kept only while the minute has samples from more than one region, as evaluate_by_region
does.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from receiver.model import DerivedKey, DerivedValue, Sample, derived_key
from receiver.rules import RuleSet
from receiver.rules.incremental import Key, PartitionedEvaluation, changed_families
from receiver.rules.partitions import Partition

ValueKey = tuple[int, Key]
"""(period start, the rule set's key of a value): one merged value of the minute."""


@dataclass(frozen=True, slots=True)
class Changes:
    """What one update changed in a minute's values."""

    upserts: list[DerivedValue]
    removals: list[DerivedKey]
    not_computed: dict[str, int]
    """Every value of the minute not computed now, per metric (as ``Evaluation.not_computed``)."""
    total: int
    """How many values the minute has after the changes."""


class MinuteValues:
    """The values of one minute (see the module docstring)."""

    def __init__(self, rules: RuleSet) -> None:
        self.rules = rules
        self.regional_metrics = [info.name for info in rules.metrics if info.scope != "service"]
        self.merged = PartitionedEvaluation(rules)
        self.supported = self.merged.supported
        self.samples: dict[Partition, tuple[Sample, ...]] = {}
        self._regions: Counter[str] = Counter()
        """region -> how many partitions have samples from it."""
        self._regional: dict[str, PartitionedEvaluation] | None = None
        self._merged_values: dict[ValueKey, float] = {}
        self._regional_values: dict[str, dict[ValueKey, float]] = {}
        self._rows: dict[ValueKey, dict[str, DerivedValue]] = {}
        """The values stored for each merged value, by region ('' for the merged one)."""

    def values(self) -> list[DerivedValue]:
        """Every value of the minute now."""
        return [row for rows in self._rows.values() for row in rows.values()]

    def update(self, changed: Mapping[Partition, Sequence[Sample]]) -> Changes:
        """Make each partition of ``changed`` hold exactly its samples there, and say what changed."""
        was_several = len(self._regions) > 1
        before = {partition: self.samples.get(partition, ()) for partition in changed}
        families = {partition: changed_families(before[partition], samples) for partition, samples in changed.items()}
        for partition, samples in changed.items():
            self._regions.subtract(_regions(before[partition]))
            self._regions.update(_regions(samples))
            if samples:
                self.samples[partition] = tuple(samples)
            else:
                self.samples.pop(partition, None)
        self._regions = +self._regions  # drop regions no partition has any more
        self.merged.update(changed, families)
        merged_changes, not_computed = self.merged.changes()
        _apply(self._merged_values, merged_changes)
        dirty = set(merged_changes)
        several = len(self._regions) > 1
        if several:
            dirty |= self._update_regional(changed, before, families, fresh=not was_several)
        else:
            self._regional = None
            self._regional_values.clear()
        if several != was_several:
            dirty |= set(self._rows) | set(self._merged_values)  # every value's region changes
        upserts: list[DerivedValue] = []
        removals: list[DerivedKey] = []
        for key in dirty:
            self._restate(key, upserts, removals)
        return Changes(upserts, removals, not_computed, sum(map(len, self._rows.values())))

    def _update_regional(
        self,
        changed: Mapping[Partition, Sequence[Sample]],
        before: Mapping[Partition, Sequence[Sample]],
        families: Mapping[Partition, Collection[str]] | None,
        fresh: bool,
    ) -> set[ValueKey]:
        """Bring the per-region evaluations up to date; the keys whose regional values changed."""
        if fresh or self._regional is None:
            # The minute has just come to span regions: every partition is evaluated per region.
            self._regional = {}
            self._regional_values = {}
            changed, before, families = self.samples, {}, None
        by_region: dict[str, dict[Partition, list[Sample]]] = {}
        for partition in changed:
            for region in _regions(before.get(partition, ())):
                by_region.setdefault(region, {})[partition] = []
            for sample in changed[partition]:
                by_region.setdefault(sample.series.region, {}).setdefault(partition, []).append(sample)
        dirty: set[ValueKey] = set()
        for region, samples in by_region.items():
            evaluation = self._regional.get(region)
            if evaluation is None:
                evaluation = self._regional[region] = PartitionedEvaluation(self.rules, self.regional_metrics)
            evaluation.update(samples, None if families is None else {p: families[p] for p in samples})
            region_changes, _ = evaluation.changes()
            _apply(self._regional_values.setdefault(region, {}), region_changes)
            dirty |= set(region_changes)
        return dirty

    def _restate(self, key: ValueKey, upserts: list[DerivedValue], removals: list[DerivedKey]) -> None:
        """Work out the stored values of one merged value again, and record what differs."""
        old = self._rows.pop(key, {})
        new = self._stored(key)
        if new:
            self._rows[key] = new
        for region, row in new.items():
            if old.get(region) != row:
                upserts.append(row)
        removals.extend(derived_key(row) for region, row in old.items() if region not in new)

    def _stored(self, key: ValueKey) -> dict[str, DerivedValue]:
        """The values stored for one merged value, as evaluate_by_region states them."""
        merged = self._merged_values.get(key)
        if merged is None:
            return {}
        start, (metric, scope, service, endpoint, instance, layer) = key

        def value(number: float, region: str, is_merged: bool) -> DerivedValue:
            return DerivedValue(
                metric, scope, service, endpoint or None, layer, start, number, instance or None, region, is_merged
            )

        if scope == "service":
            return {"": value(merged, "", True)}  # an account's values span its regions
        if len(self._regions) <= 1:
            (region,) = self._regions or ("",)
            return {region: value(merged, region, True)}
        parts = {region: values[key] for region, values in sorted(self._regional_values.items()) if key in values}
        if len(parts) == 1:
            # Only one region's samples reach it: the merged value is that region's.
            (region,) = parts
            return {region: value(merged, region, True)}
        rows = {"": value(merged, "", True)}
        rows.update((region, value(number, region, False)) for region, number in parts.items())
        return rows


def _regions(samples: Iterable[Sample]) -> set[str]:
    return {sample.series.region for sample in samples}


def _apply(values: dict[ValueKey, float], changes: Mapping[ValueKey, float | None]) -> None:
    for key, number in changes.items():
        if number is None:
            values.pop(key, None)
        else:
            values[key] = number


class MinuteStates:
    """The ``MinuteValues`` of the minutes being derived, wherever the rules run (a thread
    of the receiver, or its worker process)."""

    def __init__(self) -> None:
        self._rules: RuleSet | None = None
        self._minutes: dict[int, MinuteValues] = {}

    def update(
        self,
        rules: RuleSet,
        minute_ms: int,
        changed: Mapping[Partition, Sequence[Sample]],
        fresh: bool,
        live: Collection[int],
    ) -> Changes | None:
        """``MinuteValues.update`` of one minute; ``fresh`` starts the minute over. None,
        changing nothing, when the minute is not held and not ``fresh`` (this worker started
        after it was, or the rules changed): the caller sends every partition again, fresh.
        Minutes not in ``live`` are forgotten."""
        if rules is not self._rules:
            self._rules = rules
            self._minutes.clear()
        for minute in [minute for minute in self._minutes if minute not in live]:
            del self._minutes[minute]
        state = self._minutes.get(minute_ms)
        if fresh or state is None:
            if not fresh:
                return None
            state = self._minutes[minute_ms] = MinuteValues(rules)
        return state.update(changed)
