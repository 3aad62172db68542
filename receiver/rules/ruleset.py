"""A loaded set of rules, and the one function that turns stored samples into metrics.

``RuleSet.evaluate`` is a pure function of the *set* of samples it is given: duplicates
(equal identity) collapse, the last one winning; samples are grouped by their period's
start and sorted by identity before any rule sees them; sums are exact. So however
Firehose split, ordered, delayed or repeated the deliveries, the same stored samples give
the same values.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from receiver.model import DerivedValue, Pairs, Sample, Series
from receiver.rules import closures, evaluator
from receiver.rules import families as f
from receiver.rules import nodes as n
from receiver.rules.checker import Scope, Shape
from receiver.rules.errors import Pos

log = logging.getLogger(__name__)
_warned: set[tuple[str, Pos, str]] = set()


@dataclass(frozen=True, slots=True)
class MetricInfo:
    """What ``/api/v1/metrics`` says of a metric."""

    name: str
    scope: str
    """'service', 'instance' or 'endpoint'."""
    unit: str
    description: str
    layer: str
    downsampling: str
    """How minutes merge into hours: AVG, SUM, LATEST, MAX, MIN or SUM_PER_MIN."""


@dataclass(frozen=True, slots=True)
class Evaluation:
    """What ``RuleSet.evaluation`` gives: the values, and the values it could not compute."""

    values: list[DerivedValue]
    not_computed: dict[str, int]
    """metric -> how many of its entity values could not be computed (an overflow; see
    families.NOT_COMPUTED) and are left out of ``values``; only metrics with some."""


@dataclass(frozen=True, slots=True)
class Rule:
    """One ``metricsRules`` entry, composed with its file's prefix, suffix and filter."""

    metric: str
    expression: n.Expr
    filter: n.Closure | None
    shape: Shape
    unit: str
    description: str
    file: str
    pos: Pos
    text: str
    """The composed expression, as SkyWalking would run it."""


class RuleSet:
    """Rules loaded from a directory; immutable, so a reload swaps the whole set."""

    def __init__(self, rules: Sequence[Rule], files: Sequence[str] = ()) -> None:
        self.rules: tuple[Rule, ...] = tuple(rules)
        self.files: tuple[str, ...] = tuple(files)
        infos: dict[str, MetricInfo] = {}
        for rule in self.rules:
            if rule.metric not in infos:
                scope = rule.shape.scope
                infos[rule.metric] = MetricInfo(
                    rule.metric, scope.kind, rule.unit, rule.description, scope.layer, rule.shape.downsampling
                )
        self._infos = infos
        # Closures' answers per label values, shared by every later evaluation.
        self.answers: f.Answers = {}

    @property
    def metrics(self) -> list[MetricInfo]:
        """Every metric defined, once each, in the order the files define them."""
        return list(self._infos.values())

    def metric(self, name: str) -> MetricInfo | None:
        return self._infos.get(name)

    def families(self, metrics: Collection[str] | None = None) -> frozenset[str]:
        """The sample families the rules (of ``metrics``, or all) read."""
        return frozenset().union(*(r.shape.families for r in self.select(metrics)))

    def select(self, metrics: Collection[str] | None) -> list[Rule]:
        if metrics is None:
            return list(self.rules)
        return [r for r in self.rules if r.metric in metrics]

    def evaluate(self, samples: Iterable[Sample], *, metrics: Collection[str] | None = None) -> list[DerivedValue]:
        """Every metric's value (or those of ``metrics``) for every entity and minute.

        Sorted by metric, scope, service, endpoint/instance and minute. A value that cannot
        be computed is left out (``evaluation`` says which metrics lost some).
        """
        return self.evaluation(samples, metrics=metrics).values

    def evaluation(self, samples: Iterable[Sample], *, metrics: Collection[str] | None = None) -> Evaluation:
        """``evaluate``'s values, with the count of values not computed per metric.

        A value that cannot be computed (a sum past the largest float) is absent for its
        entity only: every other entity's value is computed as ever.
        """
        rules = self.select(metrics)
        if not rules:
            return Evaluation([], {})
        wanted = self.families(metrics)
        minutes = by_start(samples, wanted)
        # Keyed in output order; '' stands for no endpoint or instance (no entity has an
        # empty name), so the keys sort as they are.
        found: dict[tuple[str, str, str, str, str, str, int], list[float]] = {}
        not_computed: Counter[str] = Counter()
        for minute, group in sorted(minutes.items()):
            data = f.build(group, wanted)
            filtered: dict[tuple[int, str], f.Family] = {}
            memo = f.Memo(self.answers)
            for rule in rules:
                named, lost = self._run(rule, data, filtered, memo)
                if lost:
                    not_computed[rule.metric] += lost
                metric, scope, layer = rule.metric, rule.shape.scope.kind, rule.shape.scope.layer
                for service, endpoint, instance, value in named:
                    key = (metric, scope, service, endpoint or "", instance or "", layer, minute)
                    found.setdefault(key, []).append(value)
        values = []
        for (metric, scope, service, endpoint, instance, layer, minute), parts in sorted(found.items()):
            # Rules of one metric naming one entity: their mean (finite, as the parts are).
            value = f.mean(parts)
            if math.isfinite(value):
                values.append(
                    DerivedValue(metric, scope, service, endpoint or None, layer, minute, value, instance or None)
                )
            else:
                not_computed[metric] += 1
        return Evaluation(values, dict(not_computed))

    @staticmethod
    def _run(
        rule: Rule, data: dict[str, f.Family], filtered: dict[tuple[int, str], f.Family], memo: f.Memo
    ) -> tuple[list[tuple[str, str | None, str | None, float]], int]:
        """The entities the rule names with their values, and how many it could not compute."""
        inputs = rule_inputs(rule, data, filtered, memo)
        if not inputs:  # as SkyWalking: a rule whose families are all absent says nothing
            return [], 0
        result, lost = run_rule(rule, rule.expression, inputs, memo)
        if result is None:
            return [], lost
        return entities(result, rule.shape.scope, memo)


def by_start(samples: Iterable[Sample], wanted: frozenset[str]) -> dict[int, list[Sample]]:
    """The samples some rule reads (of the ``wanted`` families, decided once per series),
    the last of each identity, sorted by identity and grouped by period start: so what
    follows sees the set, not the arrival order."""
    reads: dict[Series, bool] = {}
    unique: dict[tuple[str, str, str, str, Pairs, int, int], Sample] = {}
    for sample in samples:
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
    return starts


def rule_inputs(
    rule: Rule, data: dict[str, f.Family], filtered: dict[tuple[int, str], f.Family], memo: f.Memo
) -> dict[str, f.Family]:
    """The non-empty families ``rule`` reads from ``data``, through its file's filter."""
    inputs: dict[str, f.Family] = {}
    for name in rule.shape.families:
        family = data.get(name)
        if not family:
            continue
        if rule.filter is not None:
            # One file's rules share its filter: filter each family once per minute.
            key = (id(rule.filter), name)
            if key not in filtered:
                filtered[key] = f.keep(family, rule.filter, memo)
            family = filtered[key]
        if family:
            inputs[name] = family
    return inputs


def run_rule(
    rule: Rule,
    expr: n.Expr,
    inputs: dict[str, f.Family],
    memo: f.Memo,
    given: dict[int, f.Family] | None = None,
) -> tuple[f.Family | None, int]:
    """The family ``expr`` (the rule's expression or a part of it) gives over ``inputs``
    (and ``given``, see evaluator.evaluate); None where a closure or the arithmetic fails,
    with 1 value not computed for an arithmetic failure and 0 for a closure's."""
    try:
        result = evaluator.evaluate(expr, inputs, memo, given)
    except closures.ClosureFailure as failure:
        # Once per rule and reason: evaluation runs per query, the data repeats.
        reason = (rule.file, rule.pos, str(failure))
        if reason not in _warned:
            _warned.add(reason)
            log.warning(
                "rule %s (%s:%s) gives no value where its closure fails: %s",
                rule.metric,
                rule.file,
                rule.pos,
                failure,
            )
        return None, 0
    except ArithmeticError as error:
        # Families keep values not computed as NOT_COMPUTED rather than raise; should an
        # arithmetic error get through anyway, it costs this rule's values this minute,
        # counted as one, never the other rules' (and so never the other accounts').
        reason = (rule.file, rule.pos, f"{type(error).__name__}: {error}")
        if reason not in _warned:
            _warned.add(reason)
            log.warning(
                "rule %s (%s:%s) gives no value where its arithmetic fails: %s",
                rule.metric,
                rule.file,
                rule.pos,
                reason[2],
            )
        return None, 1
    assert isinstance(result, tuple), "the checker guarantees a family"
    return result, 0


def _dim(values: tuple[str, ...], delimiter: str) -> str:
    # SkyWalking joins the non-empty values of the keys with the delimiter.
    return delimiter.join(v for v in values if v)


def entities(
    family: f.Family,
    scope: Scope,
    memo: f.Memo | None = None,
) -> tuple[list[tuple[str, str | None, str | None, float]], int]:
    """(service, endpoint, instance, value) for each entity the family's points name, and
    how many entities' values could not be computed (left out).

    Points group by the scope's label values. Where a group holds more than one point,
    SkyWalking keeps an arbitrary one (the first); we take their mean, which does not
    depend on order and equals that point when they agree. An entity whose name would be
    empty is left out; so is one with a point not computed (families.NOT_COMPUTED).
    """
    return named_groups(entity_groups(family, scope, memo), scope)


def entity_groups(
    family: f.Family, scope: Scope, memo: f.Memo | None = None, apart: tuple[str, ...] = ()
) -> dict[tuple[str, ...], list[float]]:
    """The values of the family's points by the scope's label values ('' where absent),
    followed by those of the ``apart`` labels, which keep points apart that would otherwise
    name one entity together."""
    keys = scope.service_keys + scope.entity_keys + apart
    # An absent label reads as '', as f.label has it.
    columns = [["" if v is None else v for v in f.column(family, k, memo)] for k in keys]
    groups: dict[tuple[str, ...], list[float]] = {}
    for point, group in zip(family, zip(*columns) if keys else ((),) * len(family)):
        groups.setdefault(group, []).append(point.value)
    return groups


def named_groups(
    groups: Mapping[tuple[str, ...], list[float]], scope: Scope
) -> tuple[list[tuple[str, str | None, str | None, float]], int]:
    """``entities`` of groups from ``entity_groups``."""
    result: list[tuple[str, str | None, str | None, float]] = []
    lost = 0
    for service, endpoint, instance, values in group_names(groups, scope):
        value = f.mean(values)
        if math.isfinite(value):
            result.append((service, endpoint, instance, value))
        else:
            lost += 1
    return result, lost


def group_names(
    groups: Mapping[tuple[str, ...], list[float]], scope: Scope
) -> Iterator[tuple[str, str | None, str | None, list[float]]]:
    """(service, endpoint, instance, values) of each group from ``entity_groups`` whose
    names are not empty (any ``apart`` values past the scope's are not part of them)."""
    split = len(scope.service_keys)
    end = split + len(scope.entity_keys)
    for group, values in groups.items():
        service = _dim(group[:split], scope.delimiter)
        entity = _dim(group[split:end], scope.delimiter) if scope.entity_keys else None
        if not service or (scope.entity_keys and not entity):
            continue
        if scope.kind == "endpoint":
            yield service, entity, None, values
        elif scope.kind == "instance":
            yield service, None, entity, values
        else:
            yield service, None, None, values
