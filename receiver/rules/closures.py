"""A small interpreter for MAL's label closures, with Groovy's meaning for what it runs.

Values are strings, booleans or null. Groovy truth: null and '' are false, other strings
true. ``+`` with a string on either side concatenates (null reads as 'null', as in Groovy);
``==`` and ``!=`` compare values; ``&&``, ``||`` and ``!`` give booleans.
"""

from __future__ import annotations

from receiver.rules import nodes as n

Value = str | bool | None


class ClosureFailure(Exception):
    """A closure did something its data does not allow (as Groovy would throw)."""


def truthy(value: Value) -> bool:
    """Groovy truth for the values a closure can hold."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    return value != ""


def text(value: Value) -> str:
    """Groovy's string form of a value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def evaluate(expr: n.CExpr, tags: dict[str, str]) -> Value:
    """The value of one closure expression over one sample's labels."""
    match expr:
        case n.TagRead(name=name):
            return tags.get(name)
        case n.Literal(value=value):
            return value
        case n.Not(operand=operand):
            return not truthy(evaluate(operand, tags))
        case n.Ternary(condition=condition, then=then, otherwise=otherwise):
            chosen = then if truthy(evaluate(condition, tags)) else otherwise
            return evaluate(chosen, tags)
        case n.Op(op="&&", left=left, right=right):
            return truthy(evaluate(left, tags)) and truthy(evaluate(right, tags))
        case n.Op(op="||", left=left, right=right):
            return truthy(evaluate(left, tags)) or truthy(evaluate(right, tags))
        case n.Op(op=op, left=left, right=right):
            a, b = evaluate(left, tags), evaluate(right, tags)
            if op == "==":
                return a == b
            if op == "!=":
                return a != b
            if isinstance(a, str) or isinstance(b, str):
                return text(a) + text(b)
            raise ClosureFailure(f"cannot add {text(a)} and {text(b)}")
    raise AssertionError(f"not a closure expression: {expr!r}")


def run(closure: n.Closure, labels: dict[str, str]) -> tuple[dict[str, str], Value]:
    """Run ``closure`` on a copy of ``labels``: the labels after it, and its last value."""
    tags = dict(labels)
    result: Value = None
    for statement in closure.body:
        if isinstance(statement, n.Assign):
            result = evaluate(statement.value, tags)
            if result is None:
                tags.pop(statement.name, None)  # a null label is no label
            else:
                tags[statement.name] = text(result)
        else:
            result = evaluate(statement, tags)
    return tags, result


def retag(closure: n.Closure, labels: dict[str, str]) -> dict[str, str]:
    """``tag({tags -> ...})``: the labels the closure leaves."""
    return run(closure, labels)[0]


def accepts(closure: n.Closure, labels: dict[str, str]) -> bool:
    """``filter``: whether the closure's value is Groovy-true for these labels."""
    return truthy(run(closure, labels)[1])
