"""Values per region beside the values over all regions.

A metric stream is regional, and one receiver takes the streams of several regions; a table
is per (account, region, name), while SkyWalking's endpoint names address the account-wide
merge of a name. So the rules run once over a bucket's samples (the merged values, as
ever) and, when the samples come from several regions, once more over each region's
samples: an endpoint value that only one region's samples reach is that region's (one
value, merged and of that region); one that several reach keeps its merged value (region
'') and gains one value per region. A bucket from a single region, the common case, costs
one evaluation, as before.

Account (service) values are always over every region: the account's limits and totals
are what they mean.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from receiver.model import DerivedValue, Sample
from receiver.rules.ruleset import Evaluation, RuleSet

Key = tuple[str, str, str | None, str | None, int]
"""(metric, service, endpoint, instance, time): one value of one entity in one bucket."""


def evaluate_by_region(rules: RuleSet, samples: Sequence[Sample]) -> Evaluation:
    """The rules over ``samples``, with each endpoint value's region (module docstring)."""
    merged = rules.evaluation(samples)
    by_region: dict[str, list[Sample]] = {}
    for sample in samples:
        by_region.setdefault(sample.series.region, []).append(sample)
    if len(by_region) <= 1:
        (region,) = by_region or ("",)
        return Evaluation([_of_region(value, region, True) for value in merged.values], merged.not_computed)
    # Only the metrics that can have a value per region run again.
    regional_metrics = [info.name for info in rules.metrics if info.scope != "service"]
    regional: dict[Key, dict[str, DerivedValue]] = {}
    for region, part in sorted(by_region.items()):
        for value in rules.evaluation(part, metrics=regional_metrics).values:
            regional.setdefault(_key(value), {})[region] = value
    values: list[DerivedValue] = []
    for value in merged.values:
        parts = regional.get(_key(value), {}) if value.scope != "service" else {}
        if len(parts) == 1:
            # Only one region's samples reach it: the merged value is that region's.
            values.append(_of_region(value, next(iter(parts)), True))
            continue
        values.append(value)
        values.extend(_of_region(part, region, False) for region, part in sorted(parts.items()))
    return Evaluation(values, merged.not_computed)


def _key(value: DerivedValue) -> Key:
    return (value.metric, value.service, value.endpoint, value.instance, value.time_ms)


def _of_region(value: DerivedValue, region: str, merged: bool) -> DerivedValue:
    if value.scope == "service":
        return value
    # Every field named (rather than dataclasses.replace): a minute has ~150,000 values.
    v = value
    return DerivedValue(
        v.metric, v.scope, v.service, v.endpoint, v.layer, v.time_ms, v.value, v.instance, region, merged
    )


def by_region(values: Iterable[DerivedValue]) -> list[DerivedValue]:
    """The values that describe each entity region by region, for exports that label a value
    with its region (/metrics, OTLP): an entity's per-region values where it has them, its
    merged value otherwise (one region's, or one of no region, stored before values had
    regions). So no region is counted twice, and sums over the region label give the
    account's totals."""
    values = list(values)
    split = {_key(value) for value in values if not value.merged}
    return [value for value in values if not (value.merged and not value.region and _key(value) in split)]
