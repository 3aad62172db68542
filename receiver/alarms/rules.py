"""An alarm rule, as loaded from an alarm file (receiver/alarms/loader.py)."""

from __future__ import annotations

import math
import operator
import re
import string
from collections.abc import Callable
from dataclasses import dataclass

from receiver.alarms.explain import Explanation
from receiver.alarms.expression import Expression

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
SCOPES = ("service", "endpoint")
TEMPLATE_FIELDS = frozenset({"rule", "service", "endpoint", "value", "threshold", "cause"})
NUMBER_FIELDS = frozenset({"value", "threshold"})


class Shown(float):
    """A value as a message shows it: ``{value}`` is short (``12.5``, not ``12.500000001``),
    ``{value:.1f}`` formats as any float does."""

    __slots__ = ()

    def __format__(self, spec: str) -> str:
        return f"{float(self):.6g}" if not spec else float.__format__(self, spec)


@dataclass(frozen=True, slots=True)
class AlarmRule:
    name: str
    expression: Expression
    scope: str
    """'service' or 'endpoint': the entities the rule is evaluated for."""
    include: re.Pattern[str] | None
    """Only entities whose name matches it in full (the service name, or the table's)."""
    exclude: re.Pattern[str] | None
    """No entity whose name matches it in full."""
    op: str
    threshold: float
    period: int
    """Minutes looked at, ending with the evaluated minute."""
    count: int
    """How many of them must breach for the alarm to be on."""
    silence: int
    """Minutes after a firing notification before the next one (a reminder, or a new firing)."""
    message: str
    explain: Explanation | None = None
    """What fills the message's ``{cause}`` (receiver/alarms/explain.py), or None."""
    file: str = ""
    line: int = 0

    def breaches(self, value: float) -> bool:
        return OPERATORS[self.op](value, self.threshold)

    def applies_to(self, name: str) -> bool:
        if self.include is not None and not self.include.fullmatch(name):
            return False
        return not (self.exclude is not None and self.exclude.fullmatch(name))

    @property
    def metrics(self) -> frozenset[str]:
        """Every metric the rule reads: its expression's and its explanation's."""
        explained = self.explain.metrics(self.scope) if self.explain is not None else frozenset()
        return self.expression.metrics | explained

    def render(self, service: str, endpoint: str | None, value: float, cause: str = "") -> str:
        return self.message.format(
            rule=self.name, service=service, endpoint=endpoint or "", value=Shown(value),
            threshold=Shown(self.threshold), cause=cause,
        )  # fmt: skip


def template_fields(template: str) -> set[str]:
    """The fields a valid template names."""
    return {field for _, field, _, _ in string.Formatter().parse(template) if field is not None}


def template_problem(template: str) -> str | None:
    """Why ``template`` cannot be a message template, or None."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        return f"the message is not a valid template ({exc}); write literal braces as {{{{ and }}}}"
    for _, field, spec, conversion in parts:
        if field is None:
            continue
        if field not in TEMPLATE_FIELDS:
            allowed = ", ".join("{" + f + "}" for f in sorted(TEMPLATE_FIELDS))
            return f"the message names {{{field}}}; it may use {allowed}"
        if conversion or (spec and "{" in spec):
            return f"the message field {{{field}}} takes only a format such as {{value:.1f}}"
        if spec and field in NUMBER_FIELDS:
            try:
                format(1.5, spec)
            except ValueError:
                return f"{{{field}:{spec}}} is not a number format"
        elif spec:
            try:
                format("text", spec)
            except ValueError:
                return f"{{{field}:{spec}}} is not a format for text, such as {{{field}:>20}}"
    return None


def threshold_problem(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return "the threshold must be a finite number"
    return None
