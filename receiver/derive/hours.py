"""An hour's derived values: the rules over its rolled samples (receiver/derive/rollup.py),
with the metrics whose minutes merge by SUM multiplied by 60 to give the hour's total.

``derive_hour_values`` says what they are; ``HourValues`` keeps them in step a partition at a
time, as ``MinuteValues`` keeps a minute's (receiver/derive/partitioned.py), with the totals
applied to what changed: a total past the largest float is left out and counted, as
``hour_totals`` leaves it out, and removed if it was stored.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Collection, Mapping, Sequence

from receiver.derive.partitioned import Changes, MinuteStates
from receiver.derive.regions import evaluate_by_region
from receiver.derive.rollup import MINUTES_PER_HOUR, rollup_hour
from receiver.model import DerivedKey, DerivedValue, Sample, derived_key
from receiver.rules import Evaluation, RuleSet
from receiver.rules.incremental import changed_families, same_sample
from receiver.rules.partitions import Partition


def derive_hour_values(rules: RuleSet, samples: Sequence[Sample], hour_ms: int) -> list[DerivedValue]:
    """The hour's derived values from its minute samples (see receiver/derive/deriver.py)."""
    return hour_totals(rules, evaluate_by_region(rules, rollup_hour(samples, hour_ms))).values


def hour_totals(rules: RuleSet, evaluation: Evaluation) -> Evaluation:
    """The values of the rules over an hour's 'average minutes', with SUM metrics × 60.

    An hour's total past the largest float is not computed: left out, and counted.
    """
    merge = {info.name: info.downsampling for info in rules.metrics}
    values: list[DerivedValue] = []
    not_computed = Counter(evaluation.not_computed)
    for v in evaluation.values:
        if merge.get(v.metric) == "SUM":
            total = v.value * MINUTES_PER_HOUR
            if not math.isfinite(total):
                not_computed[v.metric] += 1
                continue
            v = dataclasses.replace(v, value=total)
        values.append(v)
    return Evaluation(values, dict(not_computed))


def rolled_changes(
    seen: Mapping[Partition, Sequence[Sample]], groups: Mapping[Partition, Sequence[Sample]]
) -> tuple[dict[Partition, Sequence[Sample]], dict[Partition, set[str]]]:
    """The partitions whose rolled samples differ from those seen (none: gone), with the
    families that differ in each. 0.0 and -0.0 differ here, as they do in the values (a
    Minimum or a statistic of -0.0 gives a value of -0.0), though ``==`` finds them equal."""
    changed: dict[Partition, Sequence[Sample]] = {}
    families: dict[Partition, set[str]] = {}
    for partition in groups.keys() | seen.keys():
        old, new = seen.get(partition, ()), groups.get(partition, ())
        if not _same_samples(old, new):
            changed[partition] = new
            families[partition] = changed_families(old, new)
    return changed, families


def _same_samples(old: Sequence[Sample], new: Sequence[Sample]) -> bool:
    return len(old) == len(new) and all(map(same_sample, old, new))


class HourTotals:
    """``hour_totals`` applied to the changes of one hour's values, as they come."""

    def __init__(self, rules: RuleSet) -> None:
        self._summed = {info.name for info in rules.metrics if info.downsampling == "SUM"}
        self._left_out: dict[DerivedKey, str] = {}
        """The values whose total is past the largest float (not stored), with their metric."""

    def apply(self, changes: Changes) -> Changes:
        """The changes of the hour's stored values, from those of its 'average minute' values."""
        upserts: list[DerivedValue] = []
        removals: list[DerivedKey] = []
        for key in changes.removals:
            if self._left_out.pop(key, None) is None:
                removals.append(key)
        for value in changes.upserts:
            if value.metric in self._summed:
                key = derived_key(value)
                total = value.value * MINUTES_PER_HOUR
                if not math.isfinite(total):
                    if key not in self._left_out:
                        removals.append(key)  # its earlier total may be stored
                    self._left_out[key] = value.metric
                    continue
                self._left_out.pop(key, None)
                value = dataclasses.replace(value, value=total)
            upserts.append(value)
        not_computed = Counter(changes.not_computed)
        not_computed.update(self._left_out.values())
        return Changes(upserts, removals, dict(not_computed), changes.total - len(self._left_out))


class HourStates:
    """The values of the hours being derived, kept where the rules run (as ``MinuteStates``
    keeps minutes): an hour's rolled samples go in a partition at a time."""

    def __init__(self) -> None:
        self._values = MinuteStates()
        self._totals: dict[int, HourTotals] = {}
        self._rules: RuleSet | None = None

    def update(
        self,
        rules: RuleSet,
        hour_ms: int,
        changed: Mapping[Partition, Sequence[Sample]],
        families: Mapping[Partition, Collection[str]] | None,
        live: Collection[int],
    ) -> Changes | None:
        """``MinuteStates.update`` of the hour's rolled samples, totals applied; None when the
        hour is not held and this is no fresh start (the caller sends every partition)."""
        if rules is not self._rules:
            self._rules = rules
            self._totals.clear()
        for hour in [hour for hour in self._totals if hour not in live]:
            del self._totals[hour]
        changes = self._values.update(rules, hour_ms, changed, families, live)
        if families is None:
            self._totals[hour_ms] = HourTotals(rules)
        totals = self._totals.get(hour_ms)
        if changes is None or totals is None:
            self._totals.pop(hour_ms, None)
            return None
        return totals.apply(changes)
