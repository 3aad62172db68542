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
import sys
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass

from receiver.model import DerivedValue, Pairs, Sample, Series
from receiver.rules import closures, evaluator
from receiver.rules import families as f
from receiver.rules import nodes as n
from receiver.rules.checker import Scope, Shape
from receiver.rules.errors import Pos
from receiver.rules.layouts import Layout, Layouts, picker

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
        self._caches()

    def _caches(self) -> None:
        # What every later evaluation shares: closures' answers per label values, the
        # layouts of families and what was worked out from them, and each series' labels.
        self.answers: f.Answers = {}
        self.layouts = Layouts()
        self.labels_cache: f.LabelsCache = {}

    def __getstate__(self) -> dict[str, object]:
        # The rules travel (to the worker process) without what evaluations remembered.
        return {"rules": self.rules, "files": self.files, "_infos": self._infos}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._caches()

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
        found: dict[int, dict[Key, list[float]]] = {}
        not_computed: Counter[str] = Counter()
        for minute, group in sorted(minutes.items()):
            data = f.build(group, wanted, self.labels_cache, self.layouts)
            filtered: dict[tuple[int, str], f.Family] = {}
            memo = f.Memo(self.answers, self.layouts)
            parts = found[minute] = {}
            for rule in rules:
                lost = self._run(rule, data, filtered, memo, parts)
                if lost:
                    not_computed[rule.metric] += lost
        values = []
        isfinite = math.isfinite
        for key, minute, parts_of_key in _in_order(found):
            metric, scope, service, endpoint, instance, layer = key
            # Rules of one metric naming one entity: their mean (finite, as the parts are).
            value = parts_of_key[0] if len(parts_of_key) == 1 else f.mean(parts_of_key)
            if isfinite(value):
                values.append(
                    DerivedValue(metric, scope, service, endpoint or None, layer, minute, value, instance or None)
                )
            else:
                not_computed[metric] += 1
        return Evaluation(values, dict(not_computed))

    @staticmethod
    def _run(
        rule: Rule,
        data: dict[str, f.Family],
        filtered: dict[tuple[int, str], f.Family],
        memo: f.Memo,
        parts: dict[Key, list[float]],
    ) -> int:
        """Add the rule's value for each entity it names to ``parts``; how many values it
        could not compute."""
        inputs = rule_inputs(rule, data, filtered, memo)
        if not inputs:  # as SkyWalking: a rule whose families are all absent says nothing
            return 0
        result, lost = run_rule(rule, rule.expression, inputs, memo)
        if result is None:
            return lost
        scope = rule.shape.scope
        named = Named.of(result, scope)
        isfinite = math.isfinite
        for key, value in zip(named.keys_of(rule.metric, scope.kind, scope.layer), named.values(result)):
            if key is None:
                continue
            if isfinite(value):
                parts.setdefault(key, []).append(value)
            else:
                lost += 1
        return lost


def _in_order(found: dict[int, dict[Key, list[float]]]) -> Iterator[tuple[Key, int, list[float]]]:
    """(key, period start, parts) sorted by key, then start."""
    if len(found) == 1:
        ((minute, parts),) = found.items()
        for key, value in sorted(parts.items()):
            yield key, minute, value
        return
    yield from sorted((key, minute, value) for minute, parts in found.items() for key, value in parts.items())


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
    assert isinstance(result, f.Family), "the checker guarantees a family"
    return result, 0


def _dim(values: tuple[str, ...], delimiter: str) -> str:
    # SkyWalking joins the non-empty values of the keys with the delimiter.
    return delimiter.join(v for v in values if v)


Name = tuple[str, str | None, str | None]
"""(service, endpoint, instance) of an entity."""


class Named:
    """The groups a layout's points form under a scope, and the entity each names: worked
    out once per layout (receiver/rules/layouts.py), so a minute of the same series as one
    before only takes each group's values.

    Points group by the scope's label values ('' where absent) followed by those of the
    ``apart`` labels, which keep points apart that would otherwise name one entity
    together; groups in the order each first appears.
    """

    __slots__ = ("groups", "keys", "names", "pick", "tails")

    def __init__(self, layout: Layout, scope: Scope, apart: tuple[str, ...]) -> None:
        labels = scope.service_keys + scope.entity_keys + apart
        found = f.groups(layout, labels)
        split = len(scope.service_keys)
        end = split + len(scope.entity_keys)
        self.names: list[Name | None] = [_name(group[:split], group[split:end], scope) for group in found]
        """Each group's entity; None where its name would be empty (it names none)."""
        self.tails = [group[end:] for group in found]
        """Each group's values of the ``apart`` labels."""
        single = all(len(group) == 1 for group in found.values())
        self.pick = picker([group[0] for group in found.values()]) if single else None
        """Takes the value of each group when each holds one point (the usual case)."""
        self.groups = [] if single else list(found.values())
        """Each group's indexes, unless ``pick`` takes their values."""
        self.keys: dict[tuple[str, str, str], list[Key | None]] = {}
        """Each group's key for a (metric, scope kind, layer), as ``RuleSet.evaluation`` keys values."""

    @staticmethod
    def of(family: f.Family, scope: Scope, apart: tuple[str, ...] = ()) -> Named:
        layout = family.layout
        key = ("named", scope, apart)
        found = layout.derived.get(key)
        if found is None:
            found = layout.derived[key] = Named(layout, scope, apart)
        assert isinstance(found, Named)
        return found

    def values(self, family: f.Family) -> list[float]:
        """Each group's value: the mean of its points' (``NOT_COMPUTED`` where one is not
        computed, as ``families.mean`` has it)."""
        values = family.values
        if self.pick is None:
            return [f.mean([values[i] for i in group]) for group in self.groups]
        picked = self.pick(values)
        if math.isfinite(sum(picked)):  # each is finite: the mean of one is itself
            return list(picked)
        return [v if math.isfinite(v) else f.NOT_COMPUTED for v in picked]

    def parts(self, family: f.Family) -> list[float] | list[float | tuple[float, ...]]:
        """Each group's value, or values where it holds several points."""
        values = family.values
        if self.pick is not None:
            return list(self.pick(values))
        return [values[group[0]] if len(group) == 1 else tuple(values[i] for i in group) for group in self.groups]

    def keys_of(self, metric: str, kind: str, layer: str) -> list[Key | None]:
        found = self.keys.get((metric, kind, layer))
        if found is None:
            found = self.keys[(metric, kind, layer)] = [
                None if name is None else (metric, kind, name[0], name[1] or "", name[2] or "", layer)
                for name in self.names
            ]
        return found


Key = tuple[str, str, str, str, str, str]
"""(metric, scope, service, endpoint or '', instance or '', layer): one entity's value of a
metric, as ``RuleSet.evaluation`` keys them ('' for no endpoint or instance)."""


def _name(service_values: tuple[str, ...], entity_values: tuple[str, ...], scope: Scope) -> Name | None:
    service = _dim(service_values, scope.delimiter)
    entity = _dim(entity_values, scope.delimiter) if scope.entity_keys else None
    if not service or (scope.entity_keys and not entity):
        return None
    # Interned: a name is one object wherever it comes from (whole minutes, partitions), so
    # values are alike to the last byte of their pickles however they were worked out.
    service = sys.intern(service)
    entity = None if entity is None else sys.intern(entity)
    if scope.kind == "endpoint":
        return service, entity, None
    if scope.kind == "instance":
        return service, None, entity
    return service, None, None


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
    named = Named.of(family, scope)
    result: list[tuple[str, str | None, str | None, float]] = []
    lost = 0
    for name, value in zip(named.names, named.values(family)):
        if name is None:
            continue
        if math.isfinite(value):
            result.append((*name, value))
        else:
            lost += 1
    return result, lost
