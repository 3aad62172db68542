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

import math
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from receiver.model import DerivedKey, DerivedValue, Sample, derived_key
from receiver.rules import RuleSet
from receiver.rules.families import LabelsCache
from receiver.rules.incremental import Key, PartitionedEvaluation
from receiver.rules.partitions import Partition


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

    def __init__(self, rules: RuleSet, labels_cache: LabelsCache | None = None) -> None:
        self.rules = rules
        self.regional_metrics = [info.name for info in rules.metrics if info.scope != "service"]
        self._labels = labels_cache if labels_cache is not None else {}
        self.merged = PartitionedEvaluation(rules, labels_cache=self._labels)
        self.supported = self.merged.supported
        self._regions_of: dict[Partition, frozenset[str]] = {}
        """The regions each partition has samples from."""
        self._regions: Counter[str] = Counter()
        """region -> how many partitions have samples from it."""
        self._regional: dict[str, PartitionedEvaluation] | None = None
        self._rows: dict[int, dict[Key, DerivedValue | dict[str, DerivedValue]]] = {}
        """The values stored for each merged value (by period start and key): one, or one per
        region ('' for the merged one)."""
        self._stored_count = 0
        """How many values ``_rows`` holds, kept as they change (a pass counts what it touched)."""

    def values(self) -> list[DerivedValue]:
        """Every value of the minute now."""
        found: list[DerivedValue] = []
        for rows in self._rows.values():
            for row in rows.values():
                found.extend(row.values() if isinstance(row, dict) else (row,))
        return found

    def update(
        self,
        changed: Mapping[Partition, Sequence[Sample]],
        families: Mapping[Partition, Collection[str]] | None = None,
    ) -> Changes:
        """Make each partition of ``changed`` hold exactly its samples there, and say what
        changed. ``families``: the families whose samples changed in each partition
        (``changed_families``; None: any). Raises NeedsEverything when the minute comes to
        span regions after its first update: the per-region evaluations need every
        partition, so the state is of no use, and a new one must be given them all at once."""
        was_several = len(self._regions) > 1
        first = not self._regions_of
        regions_before = {partition: self._regions_of.get(partition, frozenset()) for partition in changed}
        for partition, samples in changed.items():
            regions = frozenset(sample.series.region for sample in samples)
            self._regions.subtract(regions_before[partition])
            self._regions.update(regions)
            if regions:
                self._regions_of[partition] = regions
            else:
                self._regions_of.pop(partition, None)
        self._regions = +self._regions  # drop regions no partition has any more
        several = len(self._regions) > 1
        if several and not was_several and not first:
            raise NeedsEverything()
        self.merged.update(changed, families)
        dirty, not_computed = self.merged.changes()
        if several:
            dirty |= self._update_regional(changed, regions_before, families)
        else:
            self._regional = None
        if several != was_several:  # every value's region changes
            dirty |= {(start, key) for start, rows in self._rows.items() for key in rows}
            dirty |= set(self._merged_keys())
        upserts: list[DerivedValue] = []
        removals: list[DerivedKey] = []
        for start, key in dirty:
            self._restate(start, key, upserts, removals)
        return Changes(upserts, removals, not_computed, self._stored_count)

    def _merged_keys(self) -> list[tuple[int, Key]]:
        evaluation = self.merged.evaluation()
        return [
            (v.time_ms, (v.metric, v.scope, v.service, v.endpoint or "", v.instance or "", v.layer))
            for v in evaluation.values
        ]

    def _update_regional(
        self,
        changed: Mapping[Partition, Sequence[Sample]],
        regions_before: Mapping[Partition, frozenset[str]],
        families: Mapping[Partition, Collection[str]] | None,
    ) -> set[tuple[int, Key]]:
        """Bring the per-region evaluations up to date; the values whose regional parts changed."""
        if self._regional is None:
            self._regional = {}
        by_region: dict[str, dict[Partition, list[Sample]]] = {}
        for partition in changed:
            for region in regions_before[partition]:
                by_region.setdefault(region, {})[partition] = []  # forgotten unless it still has some
            for sample in changed[partition]:
                by_region.setdefault(sample.series.region, {}).setdefault(partition, []).append(sample)
        dirty: set[tuple[int, Key]] = set()
        for region, samples in by_region.items():
            evaluation = self._regional.get(region)
            if evaluation is None:
                evaluation = PartitionedEvaluation(self.rules, self.regional_metrics, self._labels)
                self._regional[region] = evaluation
            evaluation.update(samples, None if families is None else {p: families[p] for p in samples})
            region_changes, _ = evaluation.changes()
            dirty |= region_changes
        return dirty

    def _restate(self, start: int, key: Key, upserts: list[DerivedValue], removals: list[DerivedKey]) -> None:
        """Work out the stored values of one merged value again, and record what differs."""
        rows = self._rows.setdefault(start, {})
        found = rows.pop(key, None)
        old = found if isinstance(found, dict) else {} if found is None else {found.region: found}
        new = self._stored(start, key)
        self._stored_count += len(new) - len(old)
        if len(new) == 1:
            rows[key] = next(iter(new.values()))
        elif new:
            rows[key] = new
        if not rows:
            del self._rows[start]
        for region, row in new.items():
            before = old.get(region)
            # 0.0 and -0.0 are equal to ``!=`` but not the same value.
            if before is None or before != row or math.copysign(1.0, before.value) != math.copysign(1.0, row.value):
                upserts.append(row)
        removals.extend(derived_key(row) for region, row in old.items() if region not in new)

    def _stored(self, start: int, key: Key) -> dict[str, DerivedValue]:
        """The values stored for one merged value, as evaluate_by_region states them."""
        merged = self.merged.value(start, key)
        if merged is None:
            return {}
        metric, scope, service, endpoint, instance, layer = key

        def value(number: float, region: str, is_merged: bool) -> DerivedValue:
            return DerivedValue(
                metric, scope, service, endpoint or None, layer, start, number, instance or None, region, is_merged
            )

        if scope == "service":
            return {"": value(merged, "", True)}  # an account's values span its regions
        if len(self._regions) <= 1:
            (region,) = self._regions or ("",)
            return {region: value(merged, region, True)}
        parts: dict[str, float] = {}
        for region, evaluation in sorted((self._regional or {}).items()):
            number = evaluation.value(start, key)
            if number is not None:
                parts[region] = number
        if len(parts) == 1:
            # Only one region's samples reach it: the merged value is that region's.
            (region,) = parts
            return {region: value(merged, region, True)}
        rows = {"": value(merged, "", True)}
        rows.update((region, value(number, region, False)) for region, number in parts.items())
        return rows


class NeedsEverything(Exception):
    """A minute's state cannot take this update: start it over with every partition."""


class MinuteStates:
    """The ``MinuteValues`` of the minutes being derived, wherever the rules run (a thread
    of the receiver, or its worker process)."""

    def __init__(self) -> None:
        self._rules: RuleSet | None = None
        self._minutes: dict[int, MinuteValues] = {}
        self._labels: LabelsCache = {}
        """Labels of the series, shared by every minute (families.build)."""

    def update(
        self,
        rules: RuleSet,
        minute_ms: int,
        changed: Mapping[Partition, Sequence[Sample]],
        families: Mapping[Partition, Collection[str]] | None,
        live: Collection[int],
    ) -> Changes | None:
        """``MinuteValues.update`` of one minute; ``families`` None starts the minute over
        with ``changed``, every partition of it. None when the minute is not held and this
        is no fresh start (this worker started after it was, the rules changed, or it came
        to span regions): the caller sends every partition again, fresh. Minutes not in
        ``live`` are forgotten."""
        if rules is not self._rules:
            self._rules = rules
            self._minutes.clear()
        for minute in [minute for minute in self._minutes if minute not in live]:
            del self._minutes[minute]
        state = self._minutes.get(minute_ms)
        if families is None:
            state = self._minutes[minute_ms] = MinuteValues(rules, self._labels)
        elif state is None:
            return None
        try:
            return state.update(changed, families)
        except NeedsEverything:
            del self._minutes[minute_ms]
            return None
