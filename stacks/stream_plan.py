"""What the metric stream carries: its include filters and extra statistics, read from the rule packs.

The receiver derives its metrics from the sample families the rules under ``rules/`` name
(``amazonaws_com_<Namespace>_<MetricName>`` with an optional ``_sum`` or ``_count``, every
character other than a letter, digit or ``_`` made ``_``; rules/README.md). A metric no rule
reads costs a metric update a minute and shows nowhere, so by default each streamed namespace
the rules read is narrowed to the metric names they read, and percentiles are streamed only for
the metrics whose quantiles they read. ``streamAllMetrics=true`` streams whole namespaces.

The rule files are read as YAML text, as data: nothing here imports the receiver. Like
settings.py, this module imports nothing from aws_cdk.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from stacks.settings import MAX_ADDITIONAL_STATISTICS, Settings, SettingsError, StatisticsConfig

RULES = Path(__file__).resolve().parent.parent / "rules"
FAMILY_PREFIX = "amazonaws_com_"
# CloudWatch's limit on a metric stream's filters: namespaces and metric names together
# (AWS::CloudWatch::MetricStream MetricStreamFilter).
MAX_FILTER_NAMES = 1000
# The quantiles every stream carries as Minimum and Maximum: no extra statistic needed.
MIN_MAX_QUANTILES = (Decimal(0), Decimal(1))

# Metric names with characters a family name turns into "_": a family cannot say whether its
# "_" was a "." or a "_", so these are looked up by their family spelling. From the Amazon Data
# Firehose developer guide, "Monitoring with Amazon CloudWatch Metrics" (data delivery and API
# metrics). A family of a name not listed here streams its whole namespace (with a warning).
KNOWN_METRIC_NAMES: dict[str, tuple[str, ...]] = {
    "AWS/Firehose": tuple(
        f"{prefix}.{suffix}"
        for prefix, suffixes in (
            (
                "DeliveryToHttpEndpoint",
                ("Bytes", "Records", "DataFreshness", "Success", "ProcessedBytes", "ProcessedRecords"),
            ),
            ("DeliveryToS3", ("Bytes", "Records", "DataFreshness", "Success")),
            ("BackupToS3", ("Bytes", "Records", "DataFreshness", "Success")),
            ("PutRecord", ("Bytes", "Latency", "Requests")),
            ("PutRecordBatch", ("Bytes", "Latency", "Records", "Requests")),
            ("DescribeDeliveryStream", ("Latency", "Requests")),
            ("ListDeliveryStreams", ("Latency", "Requests")),
            ("UpdateDeliveryStream", ("Latency", "Requests")),
        )
        for suffix in suffixes
    ),
}

_FAMILY = re.compile(rf"{FAMILY_PREFIX}[A-Za-z0-9_]+")
_TAG_CALL = re.compile(r"\b(tagEqual|tagNotEqual|tagMatch|tagNotMatch)\(([^()]*)\)")
_QUOTED = re.compile(r"'([^']*)'|\"([^\"]*)\"")
_QUANTILE_ALTERNATIVES = re.compile(r"\d+(\\?\.\d+)?(\|\d+(\\?\.\d+)?)*")


@dataclass(frozen=True, slots=True)
class NamespaceFilter:
    namespace: str
    metric_names: tuple[str, ...] | None
    """None: every metric of the namespace."""


@dataclass(frozen=True, slots=True)
class StreamPlan:
    include_filters: tuple[NamespaceFilter, ...]
    statistics: tuple[StatisticsConfig, ...]
    warnings: tuple[str, ...]

    def summary(self) -> str:
        """One line per namespace and per extra statistic: what the stream sends, for the synth output."""
        lines = []
        for entry in self.include_filters:
            if entry.metric_names is None:
                lines.append(f"metric stream: {entry.namespace}: every metric")
            else:
                lines.append(
                    f"metric stream: {entry.namespace}: {len(entry.metric_names)} metrics the rules read "
                    "(streamAllMetrics=true sends every one)"
                )
        for config in self.statistics:
            lines.append(
                f"metric stream: {config.namespace} {config.metric_name}: {', '.join(config.statistics)} "
                f"({-(-len(config.statistics) // 5)} more metric update(s) per update of each of its series)"
            )
        lines.extend(f"metric stream: warning: {warning}" for warning in self.warnings)
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class RuleReads:
    """What the rule packs read: metric names and quantiles, by namespace as the families spell it."""

    families: frozenset[str]
    quantiles: dict[str, frozenset[Decimal]]
    """Quantiles read per bare family (without _sum/_count)."""


def plan_stream(settings: Settings, rules: Path = RULES) -> StreamPlan:
    """The include filters and statistics for ``settings``, from the rule packs under ``rules``."""
    reads = read_rules(rules)
    warnings: list[str] = []
    filters = []
    for namespace in settings.namespaces:
        names = None if settings.stream_all_metrics else _metric_names(namespace, settings, reads, warnings)
        filters.append(NamespaceFilter(namespace, names))
    total = sum(1 + len(entry.metric_names or ()) for entry in filters)
    if total > MAX_FILTER_NAMES:
        raise SettingsError(
            f"the metric stream's filters would name {total} namespaces and metrics, but CloudWatch takes at most "
            f"{MAX_FILTER_NAMES}; set streamAllMetrics=true or stream fewer namespaces"
        )
    return StreamPlan(tuple(filters), _statistics(settings, reads), tuple(warnings))


def read_rules(rules: Path) -> RuleReads:
    families: set[str] = set()
    quantiles: dict[str, set[Decimal]] = {}
    for path in sorted(rules.rglob("*.yaml")):
        for expression in _expressions(path):
            found = set(_FAMILY.findall(expression))
            families |= found
            read = _quantiles(expression, path)
            for family in found:
                if not family.endswith(("_sum", "_count")) and read:
                    quantiles.setdefault(family, set()).update(read)
    return RuleReads(frozenset(families), {family: frozenset(q) for family, q in quantiles.items()})


def family_prefix(namespace: str) -> str:
    return FAMILY_PREFIX + re.sub(r"[^A-Za-z0-9_]", "_", namespace) + "_"


def percentile(quantile: Decimal) -> str:
    """The CloudWatch statistic of a quantile label: 0.5 is p50, 0.999 is p99.9."""
    return "p" + format((quantile * 100).normalize(), "f")


def _expressions(path: Path) -> Iterator[str]:
    """The MAL text of a rule file: each rule's exp, and the file's expPrefix and expSuffix."""
    try:
        document: Any = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise SettingsError(
            f"{_shown(path)} is not valid YAML ({error.__class__.__name__}); fix the rule file"
        ) from None
    if not isinstance(document, dict):
        return
    for key in ("expPrefix", "expSuffix"):
        if isinstance(document.get(key), str):
            yield document[key]
    for rule in document.get("metricsRules") or ():
        if isinstance(rule, dict) and isinstance(rule.get("exp"), str):
            yield rule["exp"]


def _quantiles(expression: str, path: Path) -> set[Decimal]:
    """The quantile label values an expression keeps, as numbers."""
    found: set[Decimal] = set()
    for call, arguments in _TAG_CALL.findall(expression):
        values = [a or b for a, b in _QUOTED.findall(arguments)]
        for key, value in zip(values[::2], values[1::2], strict=False):
            if key != "quantile":
                continue
            if call in ("tagNotEqual", "tagNotMatch") or (
                call == "tagMatch" and not _QUANTILE_ALTERNATIVES.fullmatch(value)
            ):
                raise SettingsError(
                    f"{_shown(path)} selects quantiles with {call}('quantile', {value!r}), from which the stacks "
                    "cannot tell which percentiles to stream; name them with tagEqual, or list them in "
                    "additionalStatistics"
                )
            for text in value.replace("\\.", ".").split("|") if call == "tagMatch" else [value]:
                found.add(_quantile(text, path))
    return found


def _quantile(text: str, path: Path) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = Decimal(-1)
    if not Decimal(0) <= value <= Decimal(1):
        raise SettingsError(f"{_shown(path)} reads quantile {text!r}, which is not a number from 0 to 1; fix the rule")
    return value


def _metric_names(namespace: str, settings: Settings, reads: RuleReads, warnings: list[str]) -> tuple[str, ...] | None:
    """The namespace's metric names the rules read, or None (the whole namespace) when they read none."""
    prefix = family_prefix(namespace)
    # A longer streamed namespace with the same start (AWS/CloudWatch/MetricStreams under a
    # hypothetical AWS/CloudWatch) owns its families.
    longer = [family_prefix(other) for other in settings.namespaces if other != namespace]
    longer = [other for other in longer if other.startswith(prefix) and len(other) > len(prefix)]
    spelled = {
        family.removeprefix(prefix).removesuffix("_sum").removesuffix("_count")
        for family in reads.families
        if family.startswith(prefix) and not any(family.startswith(other) for other in longer)
    }
    if not spelled:
        return None
    known = {_spelling(name): name for name in KNOWN_METRIC_NAMES.get(namespace, ())}
    names = set()
    for spelling in spelled:
        if re.fullmatch(r"[A-Za-z0-9]+", spelling):
            names.add(spelling)  # nothing was replaced: the family spells the metric name itself
        elif spelling in known:
            names.add(known[spelling])
        else:
            warnings.append(
                f"the rules read {prefix}{spelling}, whose CloudWatch metric name the stacks cannot tell from its "
                f"family name, so every metric of {namespace} is streamed; add the name to KNOWN_METRIC_NAMES in "
                "stacks/stream_plan.py"
            )
            return None
    names.update(c.metric_name for c in settings.additional_statistics if c.namespace == namespace)
    return tuple(sorted(names))


def _statistics(settings: Settings, reads: RuleReads) -> tuple[StatisticsConfig, ...]:
    """Percentiles where the rules read quantiles, merged with additionalStatistics."""
    wanted: dict[tuple[str, str], list[str]] = {}
    for namespace in settings.namespaces:
        prefix = family_prefix(namespace)
        known = {_spelling(name): name for name in KNOWN_METRIC_NAMES.get(namespace, ())}
        for family, quantiles in sorted(reads.quantiles.items()):
            if not family.startswith(prefix):
                continue
            spelling = family.removeprefix(prefix)
            metric = known.get(spelling, spelling)
            extra = sorted(q for q in quantiles if q not in MIN_MAX_QUANTILES)
            if extra:
                _merge(wanted, (namespace, metric), (percentile(q) for q in extra))
    for config in settings.additional_statistics:
        _merge(wanted, (config.namespace, config.metric_name), config.statistics)
    configs = []
    for (namespace, metric), statistics in wanted.items():
        if len(statistics) > MAX_ADDITIONAL_STATISTICS:
            raise SettingsError(
                f"the rules and additionalStatistics ask for {len(statistics)} statistics of {namespace} {metric}, "
                f"but CloudFormation takes at most {MAX_ADDITIONAL_STATISTICS} per metric; list fewer"
            )
        configs.append(StatisticsConfig(namespace, metric, tuple(statistics)))
    return tuple(configs)


def _merge(wanted: dict[tuple[str, str], list[str]], key: tuple[str, str], statistics: Iterable[str]) -> None:
    listed = wanted.setdefault(key, [])
    listed.extend(s for s in statistics if s not in listed)


def _spelling(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(RULES.parent))
    except ValueError:
        return str(path)
