"""Walks a checked expression tree over the families of one minute. No eval, no exec."""

from __future__ import annotations

import math

from receiver.rules import families as f
from receiver.rules import nodes as n
from receiver.rules.checker import AGGREGATIONS, ARITHMETIC, TAG_FILTERS

Value = f.Family | float


def evaluate(
    expr: n.Expr, data: dict[str, f.Family], memo: f.Memo | None = None, given: dict[int, f.Family] | None = None
) -> Value:
    """The family (or, for a constant part, the number) ``expr`` gives over ``data``.

    A family that ``data`` lacks is EMPTY, as in SkyWalking. ``memo``: what the rules of
    one minute share, and closure answers kept for later minutes (see ``families.Memo``).
    ``given``: the results of some nodes of ``expr``, by ``id(node)``, worked out already
    (the parts evaluated per partition: receiver/rules/partitions.py).
    """
    if given is not None and id(expr) in given:
        return given[id(expr)]
    match expr:
        case n.Number(value=value):
            return value
        case n.Family(name=name):
            return data.get(name, f.EMPTY)
        case n.Negate(operand=operand):
            inner = evaluate(operand, data, memo, given)
            return -inner if isinstance(inner, float) else f.negate(inner)
        case n.Binary(op=op, left=left, right=right):
            return _arithmetic(evaluate(left, data, memo, given), op, evaluate(right, data, memo, given))
        case n.Call(receiver=receiver, method=method, args=args):
            family = evaluate(receiver, data, memo, given)
            assert isinstance(family, f.Family), "the checker lets methods apply to families only"
            return _call(family, method, args, data, memo, given)
    raise AssertionError(f"not an expression: {expr!r}")


def _arithmetic(left: Value, op: str, right: Value) -> Value:
    if isinstance(left, float) and isinstance(right, float):
        if op == "/":
            return left / right if right else math.nan
        return {"+": left + right, "-": left - right, "*": left * right}[op]
    if isinstance(right, float):
        assert isinstance(left, f.Family)
        return f.with_number(left, op, right)
    if isinstance(left, float):
        return f.with_number(right, op, left, number_first=True)
    return f.combine(left, op, right)


def _call(
    family: f.Family,
    method: str,
    args: tuple[n.Arg, ...],
    data: dict[str, f.Family],
    memo: f.Memo | None,
    given: dict[int, f.Family] | None,
) -> f.Family:
    if method in TAG_FILTERS:
        values = [a.value for a in args if isinstance(a, n.String)]
        return f.match_tags(family, method, tuple(zip(values[::2], values[1::2])), memo)
    if method == "tag":
        closure = args[0]
        assert isinstance(closure, n.Closure)
        return f.retag(family, closure, memo)
    if method == "filter":
        closure = args[0]
        assert isinstance(closure, n.Closure)
        return f.keep(family, closure, memo)
    if method in AGGREGATIONS:
        by = args[0]
        assert isinstance(by, n.StringList)
        return f.aggregate(family, method, by.items, memo)
    if method in ARITHMETIC:
        operand = args[0]
        assert not isinstance(operand, (n.String, n.StringList, n.Closure))
        result = _arithmetic(family, ARITHMETIC[method], evaluate(operand, data, memo, given))
        assert isinstance(result, f.Family)
        return result
    # downsampling(...) tells the rollup how to merge minutes; service(...), instance(...)
    # and endpoint(...) name the entity, which the rule set reads from the checked shape.
    return family
