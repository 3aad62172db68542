"""Alarm files into AlarmRules, refusing a broken file with its name, line and reason.

A file (SkyWalking's ``alarm-settings.yml`` in spirit)::

    rules:
      table_write_throttled:
        expression: aws_dynamodb_endpoint_write_throttled_requests
        scope: endpoint
        exclude-names-regex: "load-test-.*"
        op: ">"
        threshold: 0
        period: 5
        count: 2
        silence-period: 30
        explain: write_throttle_cause
        message: "{endpoint} of {service}: {value} writes throttled in a minute; {cause}"

Rule names are unique across the directory. The metrics an expression or an explanation
(receiver/alarms/explain.py) reads are checked against the metric rules
(``check_metrics``): each must exist and have the rule's scope.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml

from receiver.alarms.explain import EXPLANATIONS, Explanation
from receiver.alarms.expression import ExpressionError, parse_expression
from receiver.alarms.rules import OPERATORS, SCOPES, AlarmRule, template_fields, template_problem, threshold_problem
from receiver.rules.errors import Pos, RuleError

SUFFIXES = (".yaml", ".yml")
_KEYS = (
    "expression", "scope", "include-names-regex", "exclude-names-regex", "op", "threshold",
    "period", "count", "silence-period", "message", "explain",
)  # fmt: skip
_REQUIRED = ("expression", "scope", "op", "threshold", "period")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
MAX_PERIOD = 24 * 60
_Fail = Callable[[str, str], RuleError]
"""Builds the RuleError naming one setting of the rule being loaded."""


def default_alarms_dir() -> Path:
    """The repository's ``alarms/`` directory."""
    return Path(__file__).resolve().parents[2] / "alarms"


def load_alarms(directory: Path) -> list[AlarmRule]:
    """Every alarm file under ``directory`` (recursively, in name order).

    Raises RuleError naming the file and line of the first problem. An empty directory
    holds no rules (alarms are optional); a missing one is an error.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise RuleError(f"the alarms directory {directory} does not exist or is not a directory.")
    rules: list[AlarmRule] = []
    seen: dict[str, AlarmRule] = {}
    for path in sorted(p for p in directory.rglob("*") if p.suffix in SUFFIXES and p.is_file()):
        for rule in load_alarm_file(path):
            first = seen.setdefault(rule.name, rule)
            if first is not rule:
                raise RuleError(
                    f"the alarm rule {rule.name} is already defined at {first.file}:{first.line}; "
                    "give each rule its own name.",
                    rule.file,
                    Pos(rule.line, 1),
                )
            rules.append(rule)
    return rules


def load_alarm_file(path: Path) -> list[AlarmRule]:
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleError(f"cannot read the alarm file: {exc}", file) from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        pos = Pos(mark.line + 1, mark.column + 1) if mark else None
        raise RuleError(f"the file is not valid YAML: {exc.problem}.", file, pos) from None
    except yaml.YAMLError as exc:
        raise RuleError(f"the file is not valid YAML: {exc}.", file) from None
    if root is None:
        return []
    if not isinstance(root, yaml.MappingNode):
        raise RuleError("an alarm file is a mapping with the key rules.", file, _pos(root))
    rules_node = None
    for key, value in root.value:
        if key.value != "rules":
            raise RuleError(f"unknown key {key.value!r}; an alarm file has only rules.", file, _pos(key))
        rules_node = value
    if rules_node is None or not isinstance(rules_node, yaml.MappingNode):
        raise RuleError("rules must be a mapping of rule names to rules.", file, _pos(rules_node or root))
    return [_rule(key, value, file) for key, value in rules_node.value]


def check_metrics(rules: Iterable[AlarmRule], scopes: dict[str, str]) -> None:
    """Raise RuleError unless every metric a rule reads is defined with the rule's scope.

    ``scopes`` maps each metric of the metric rules to its scope.
    """
    for rule in rules:
        for metric in sorted(rule.metrics):
            scope = scopes.get(metric)
            if scope is None:
                reads = (
                    f"reads {metric}"
                    if metric in rule.expression.metrics or rule.explain is None
                    else f"explains with {rule.explain.name}, which reads {metric}"
                )
                raise RuleError(
                    f"the alarm rule {rule.name} {reads}, which no metric rule defines; check-rules lists the metrics.",
                    rule.file,
                    Pos(rule.line, 1),
                )
            if scope != rule.scope:
                raise RuleError(
                    f"the alarm rule {rule.name} has scope {rule.scope} but {metric} is a {scope} "
                    "metric; an expression reads metrics of its rule's scope.",
                    rule.file,
                    Pos(rule.line, 1),
                )


def _rule(name_node: yaml.Node, node: yaml.Node, file: str) -> AlarmRule:
    name = name_node.value if isinstance(name_node, yaml.ScalarNode) else ""
    if not _NAME.fullmatch(name):
        raise RuleError(
            f"{name!r} is not a rule name; use letters, digits, _ . and -, starting with a letter.",
            file,
            _pos(name_node),
        )
    if not isinstance(node, yaml.MappingNode):
        raise RuleError(f"the alarm rule {name} must be a mapping of settings.", file, _pos(node))
    fields: dict[str, yaml.ScalarNode] = {}
    for key, value in node.value:
        if key.value not in _KEYS:
            raise RuleError(
                f"unknown setting {key.value!r} in the alarm rule {name}; the settings are {', '.join(_KEYS)}.",
                file,
                _pos(key),
            )
        if not isinstance(value, yaml.ScalarNode):
            raise RuleError(f"{key.value} of the alarm rule {name} must be a single value.", file, _pos(value))
        fields[key.value] = value
    for key in _REQUIRED:
        if key not in fields:
            raise RuleError(f"the alarm rule {name} has no {key}.", file, _pos(node))

    def fail(key: str, reason: str) -> RuleError:
        return RuleError(f"{key} of the alarm rule {name}: {reason}.", file, _pos(fields[key]))

    values = {key: yaml.safe_load(yaml.serialize(value)) for key, value in fields.items()}
    try:
        expression = parse_expression(str(values["expression"]))
    except ExpressionError as exc:
        raise fail("expression", str(exc)) from None
    scope = values["scope"]
    if scope not in SCOPES:
        raise fail("scope", f"{scope!r} is not one of {', '.join(SCOPES)}")
    op = str(values["op"])
    if op not in OPERATORS:
        raise fail("op", f"{op!r} is not one of {' '.join(OPERATORS)}")
    if problem := threshold_problem(values["threshold"]):
        raise fail("threshold", problem)
    period = _whole(values, "period", 1, MAX_PERIOD, fail, default=None)
    count = _whole(values, "count", 1, period, fail, default=1)
    silence = _whole(values, "silence-period", 0, MAX_PERIOD * 7, fail, default=period)
    patterns = {key: _pattern(values, key, fail) for key in ("include-names-regex", "exclude-names-regex")}
    explain = _explanation(values, fail)
    message = values.get("message")
    if message is None:
        message = f"{{rule}}: {expression.text} {op} {{threshold}} for {{service}} {{endpoint}}, value {{value}}"
        message += "; {cause}" if explain is not None else ""
    message = str(message)
    if problem := template_problem(message):
        raise fail("message", problem)
    if explain is None and "cause" in template_fields(message):
        raise fail("message", "the message names {cause}, which only a rule with explain fills")
    if explain is not None and "cause" not in template_fields(message):
        raise fail("message", f"the rule explains with {explain.name}, so its message must say where, with {{cause}}")
    return AlarmRule(
        name=name, expression=expression, scope=scope, include=patterns["include-names-regex"],
        exclude=patterns["exclude-names-regex"], op=op, threshold=float(values["threshold"]), period=period,
        count=count, silence=silence, message=message, explain=explain, file=file,
        line=name_node.start_mark.line + 1,
    )  # fmt: skip


def _explanation(values: dict[str, Any], fail: _Fail) -> Explanation | None:
    name = values.get("explain")
    if name is None:
        return None
    explanation = EXPLANATIONS.get(str(name))
    if explanation is None:
        raise fail("explain", f"{name!r} is not an explanation; use one of {', '.join(sorted(EXPLANATIONS))}")
    return explanation


def _whole(values: dict[str, Any], key: str, low: int, high: int, fail: _Fail, default: int | None) -> int:
    value = values.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise fail(key, f"must be a whole number of minutes from {low} to {high}, not {value!r}")
    return value


def _pattern(values: dict[str, Any], key: str, fail: _Fail) -> re.Pattern[str] | None:
    text = values.get(key)
    if text is None:
        return None
    try:
        return re.compile(str(text))
    except re.error as exc:
        raise fail(key, f"{text!r} is not a regular expression ({exc})") from None


def _pos(node: yaml.Node) -> Pos:
    return Pos(node.start_mark.line + 1, node.start_mark.column + 1)
