"""The small expression language of alarm rules: metrics, numbers, + - * /, and baseline().

    aws_dynamodb_endpoint_get_successful_request_latency
        / baseline(aws_dynamodb_endpoint_get_successful_request_latency, 60)

The text is parsed with Python's ``ast`` in ``eval`` mode and only the node types below are
accepted; nothing of it is ever executed. A value is computed per entity and minute from the
stored derived values; a metric without a value in that minute, or a division by zero,
makes the whole expression have no value there (which never breaches).
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from receiver.model import MINUTE_MS

MAX_BASELINE_MINUTES = 24 * 60


class ExpressionError(ValueError):
    """An expression that cannot be used; ``str(e)`` is one sentence."""


Lookup = Callable[[str, int], "float | None"]
"""(metric, minute start ms) -> the entity's value, or None."""


@dataclass(frozen=True, slots=True)
class Number:
    value: float

    def evaluate(self, lookup: Lookup, minute_ms: int) -> float | None:
        return self.value


@dataclass(frozen=True, slots=True)
class Metric:
    name: str

    def evaluate(self, lookup: Lookup, minute_ms: int) -> float | None:
        return lookup(self.name, minute_ms)


@dataclass(frozen=True, slots=True)
class Baseline:
    """The mean of a metric over the ``minutes`` minutes before the evaluated one (those with values)."""

    metric: str
    minutes: int

    def evaluate(self, lookup: Lookup, minute_ms: int) -> float | None:
        found = [
            v for i in range(1, self.minutes + 1) if (v := lookup(self.metric, minute_ms - i * MINUTE_MS)) is not None
        ]
        return sum(found) / len(found) if found else None


@dataclass(frozen=True, slots=True)
class Negate:
    operand: Node

    def evaluate(self, lookup: Lookup, minute_ms: int) -> float | None:
        value = self.operand.evaluate(lookup, minute_ms)
        return None if value is None else -value


@dataclass(frozen=True, slots=True)
class Binary:
    op: str
    left: Node
    right: Node

    def evaluate(self, lookup: Lookup, minute_ms: int) -> float | None:
        a = self.left.evaluate(lookup, minute_ms)
        b = self.right.evaluate(lookup, minute_ms)
        if a is None or b is None:
            return None
        if self.op == "+":
            return a + b
        if self.op == "-":
            return a - b
        if self.op == "*":
            return a * b
        return None if b == 0 else a / b


Node = Number | Metric | Baseline | Negate | Binary

_BINARY = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}


@dataclass(frozen=True, slots=True)
class Expression:
    text: str
    root: Node

    def evaluate(self, lookup: Lookup, minute_ms: int) -> float | None:
        return self.root.evaluate(lookup, minute_ms)

    @property
    def metrics(self) -> frozenset[str]:
        """Every metric name the expression reads."""
        return frozenset(_metrics(self.root))

    @property
    def lookback_minutes(self) -> int:
        """How many minutes before the evaluated one baseline() reads."""
        return max((n.minutes for n in _walk(self.root) if isinstance(n, Baseline)), default=0)


def parse_expression(text: str) -> Expression:
    """Parse ``text``; raises ExpressionError naming what is not allowed."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"the expression {text!r} is not valid: {exc.msg}") from None
    return Expression(text.strip(), _convert(tree.body, text))


def _convert(node: ast.AST, text: str) -> Node:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
        return Number(float(node.value))
    if isinstance(node, ast.Name):
        return Metric(node.id)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        operand = _convert(node.operand, text)
        return Negate(operand) if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return Binary(_BINARY[type(node.op)], _convert(node.left, text), _convert(node.right, text))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "baseline":
        return _baseline(node, text)
    shown = ast.get_source_segment(text.strip(), node) or type(node).__name__
    raise ExpressionError(
        f"{shown!r} is not allowed in an alarm expression; use metric names, numbers, "
        "+ - * / and baseline(metric, minutes)"
    )


def _baseline(node: ast.Call, text: str) -> Baseline:
    args = node.args
    if (
        node.keywords
        or len(args) != 2
        or not isinstance(args[0], ast.Name)
        or not (isinstance(args[1], ast.Constant) and type(args[1].value) is int)
        or not 1 <= args[1].value <= MAX_BASELINE_MINUTES
    ):
        raise ExpressionError(
            f"baseline takes a metric name and a whole number of minutes from 1 to {MAX_BASELINE_MINUTES}, "
            f"as in baseline(aws_dynamodb_endpoint_get_successful_request_latency, 60)"
        )
    return Baseline(args[0].id, args[1].value)


def _walk(node: Node) -> Iterator[Node]:
    yield node
    if isinstance(node, Negate):
        yield from _walk(node.operand)
    elif isinstance(node, Binary):
        yield from _walk(node.left)
        yield from _walk(node.right)


def _metrics(node: Node) -> set[str]:
    found: set[str] = set()
    for n in _walk(node):
        if isinstance(n, Metric):
            found.add(n.name)
        elif isinstance(n, Baseline):
            found.add(n.metric)
    return found
