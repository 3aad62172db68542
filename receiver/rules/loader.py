"""Rule files (SkyWalking's ``otel-rules`` layout) into a RuleSet.

A file holds ``metricPrefix``, ``metricsRules: [{name, exp}]`` and optionally ``filter``,
``expPrefix`` and ``expSuffix``. Each rule's metric is ``<metricPrefix>_<name>``; its
expression is composed as SkyWalking's ``MetricConvert.formatExp`` does, by text:

* with ``expPrefix`` P, an expression ``a.rest`` becomes ``((a.P).rest)`` — P applies to
  whatever comes before the first dot (the whole expression if it has none);
* with ``expSuffix`` S, the result R becomes ``(R).S``.

``filter`` is a closure over labels, applied to every input family of every rule in the
file before the rule runs. Rule entries may also carry ``unit`` and ``description``, our
extension for ``/api/v1/metrics``.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from receiver.rules.checker import check, check_condition
from receiver.rules.errors import Pos, RuleError
from receiver.rules.parser import parse_closure, parse_expression
from receiver.rules.ruleset import Rule, RuleSet
from receiver.rules.source import FileText, Source

SUFFIXES = (".yaml", ".yml")
_FILE_KEYS = ("filter", "expPrefix", "expSuffix", "metricPrefix", "metricsRules")
_RULE_KEYS = ("name", "exp", "unit", "description")
_METRIC = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NULL = "tag:yaml.org,2002:null"


def load_rules(directory: Path) -> RuleSet:
    """Every rule file under ``directory`` (recursively, in name order) as one RuleSet.

    Raises RuleError naming the file, line and column of the first problem.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise RuleError(f"the rules directory {directory} does not exist or is not a directory.")
    paths = sorted(p for p in directory.rglob("*") if p.suffix in SUFFIXES and p.is_file())
    if not paths:
        raise RuleError(f"the rules directory {directory} holds no rule files (*.yaml).")
    rules: list[Rule] = []
    seen: dict[str, Rule] = {}
    for path in paths:
        for rule in load_file(path):
            first = seen.setdefault(rule.metric, rule)
            if first.shape.scope.kind != rule.shape.scope.kind or first.shape.scope.layer != rule.shape.scope.layer:
                raise RuleError(
                    f"the metric {rule.metric} is already defined at {first.file}:{first.pos} "
                    f"for a {first.shape.scope.kind} of layer {first.shape.scope.layer}; one "
                    "metric has one scope and layer.",
                    rule.file,
                    rule.pos,
                )
            rules.append(rule)
    return RuleSet(rules, [str(p) for p in paths])


def load_file(path: Path) -> list[Rule]:
    """The rules of one file; RuleError (with this file's name) if it is not valid."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise RuleError(f"the file cannot be read ({error}).", name) from None
    try:
        return _rules(FileText(text), name)
    except RuleError as error:
        raise error.located(name) from None


def _rules(file: FileText, name: str) -> list[Rule]:
    try:
        root = yaml.compose(file.text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        pos = Pos(mark.line + 1, mark.column + 1) if mark else None
        raise RuleError(f"the file is not valid YAML: {error.problem or error}.", pos=pos) from None
    except yaml.YAMLError as error:
        raise RuleError(f"the file is not valid YAML: {error}.") from None
    if root is None:
        raise RuleError("the file is empty; a rule file needs metricPrefix and metricsRules.", pos=Pos(1, 1))
    entries = _mapping(root, _FILE_KEYS, "a rule file")
    if "metricPrefix" not in entries or _text(entries["metricPrefix"]) is None:
        raise RuleError(
            "the file has no metricPrefix; SkyWalking names every metric <metricPrefix>_<name>.", pos=_pos(root)
        )
    prefix_name = _text(entries["metricPrefix"])
    assert prefix_name is not None
    rules_node = entries.get("metricsRules")
    if rules_node is None or not isinstance(rules_node, yaml.SequenceNode) or not rules_node.value:
        raise RuleError("the file needs metricsRules, a list of {name, exp} entries.", pos=_pos(rules_node or root))

    exp_prefix = _source(entries.get("expPrefix"), file)
    exp_suffix = _source(entries.get("expSuffix"), file)
    filter_source = _source(entries.get("filter"), file)
    file_filter = None
    if filter_source is not None:
        file_filter = parse_closure(filter_source)
        check_condition(file_filter, "the filter")

    rules = []
    for item in rules_node.value:
        fields = _mapping(item, _RULE_KEYS, "a metricsRules entry")
        for required in ("name", "exp"):
            if required not in fields or _text(fields[required]) is None:
                raise RuleError(f"this metricsRules entry has no {required}.", pos=_pos(item))
        rule_name = _text(fields["name"])
        metric = f"{prefix_name}_{rule_name}"
        if not _METRIC.fullmatch(metric):
            raise RuleError(
                f"the metric name {metric!r} may hold only letters, digits and _.", pos=_pos(fields["name"])
            )
        exp = _source(fields["exp"], file)
        assert exp is not None
        composed = _compose(exp, exp_prefix, exp_suffix)
        expression = parse_expression(composed)
        rules.append(
            Rule(
                metric=metric,
                expression=expression,
                filter=file_filter,
                shape=check(expression),
                unit=_text(fields.get("unit")) or "",
                description=" ".join((_text(fields.get("description")) or "").split()),
                file=name,
                pos=_pos(fields["exp"]),
                text=composed.text,
            )
        )
    return rules


def _compose(exp: Source, prefix: Source | None, suffix: Source | None) -> Source:
    """SkyWalking's formatExp, by text, keeping each character's file position."""

    def our(text: str) -> Source:
        return Source.synthetic(text)

    composed = exp
    if prefix is not None:
        dot = exp.find(".")
        before, after = (exp, None) if dot < 0 else (exp[:dot], exp[dot + 1 :])
        composed = our("(") + before + our(".") + prefix + our(")")
        if after is not None and after.text:
            composed = our("(") + composed + our(".") + after + our(")")
    if suffix is not None:
        composed = our("(") + composed + our(").") + suffix
    return composed


# ---- YAML nodes ----


def _pos(node: yaml.Node) -> Pos:
    return Pos(node.start_mark.line + 1, node.start_mark.column + 1)


def _mapping(node: yaml.Node, allowed: tuple[str, ...], what: str) -> dict[str, yaml.Node]:
    if not isinstance(node, yaml.MappingNode):
        raise RuleError(f"{what} must be a mapping of keys to values.", pos=_pos(node))
    entries: dict[str, yaml.Node] = {}
    for key, value in node.value:
        name = _text(key)
        if name in entries:
            raise RuleError(f"the key {name} appears twice.", pos=_pos(key))
        if name == "initExp":
            raise RuleError(
                "initExp is not supported: it runs code at load time, and no rule here needs it.", pos=_pos(key)
            )
        if name not in allowed:
            raise RuleError(f"unknown key {name!r} in {what}; the keys are {', '.join(allowed)}.", pos=_pos(key))
        entries[name] = value
    return entries


def _text(node: yaml.Node | None) -> str | None:
    """A scalar's text; None for an absent or null value. SkyWalking treats '' as absent."""
    if node is None or node.tag == _NULL:
        return None
    if not isinstance(node, yaml.ScalarNode):
        raise RuleError("this value must be text, not a list or mapping.", pos=_pos(node))
    return node.value or None


def _source(node: yaml.Node | None, file: FileText) -> Source | None:
    value = _text(node)
    if value is None or not value.strip():
        return None
    assert isinstance(node, yaml.ScalarNode)
    return file.scalar(value, node.start_mark.index, node.end_mark.index, quoted=node.style in ("'", '"'))
