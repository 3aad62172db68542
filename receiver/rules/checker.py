"""Load-time checks: every method is in the subset, every argument has the right kind,
and the expression ends in exactly one entity (service, instance or endpoint).

What passes here cannot fail at evaluation for a reason the rule file could have shown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from receiver.rules import nodes as n
from receiver.rules.errors import Pos, RuleError
from receiver.rules.families import compile_regex

DOWNSAMPLING = ("AVG", "SUM", "LATEST", "MAX", "MIN", "SUM_PER_MIN")
DEFAULT_DOWNSAMPLING = "AVG"  # SkyWalking's default
TAG_FILTERS = ("tagEqual", "tagNotEqual", "tagMatch", "tagNotMatch")
AGGREGATIONS = ("sum", "avg", "max", "min")
ARITHMETIC = {"plus": "+", "minus": "-", "multiply": "*", "div": "/"}
SCOPES = ("service", "instance", "endpoint")
SUPPORTED = (*TAG_FILTERS, "tag", "filter", *AGGREGATIONS, *ARITHMETIC, "downsampling", *SCOPES)

_WHY_NOT = {
    "increase": "CloudWatch sends each period's statistics, not a running counter, so there "
    "is nothing to take an increase of; use the _sum family",
    "rate": "CloudWatch sends each period's statistics, not a running counter; for a "
    "per-second rate divide the _sum family by the period, 60",
    "irate": "CloudWatch sends each period's statistics, not a running counter; for a "
    "per-second rate divide the _sum family by the period, 60",
    "histogram": "CloudWatch streams summaries (sum, count, quantiles), not histograms",
    "histogram_percentile": "CloudWatch streams summaries (sum, count, quantiles), not "
    "histograms; select a quantile with tagEqual('quantile', '0.99')",
}
_LAYER = re.compile(r"[A-Z][A-Z0-9_]*")


@dataclass(frozen=True, slots=True)
class Scope:
    """The entity a rule's values belong to, from its last service/instance/endpoint."""

    kind: str
    """'service', 'instance' or 'endpoint'."""
    service_keys: tuple[str, ...]
    entity_keys: tuple[str, ...]
    """Instance or endpoint label names; empty for a service."""
    delimiter: str
    layer: str


@dataclass(frozen=True, slots=True)
class Shape:
    """What the checker learned about a valid rule expression."""

    scope: Scope
    downsampling: str
    families: frozenset[str]


def check(expr: n.Expr) -> Shape:
    """The shape of a rule expression, or RuleError (with position) saying what is wrong."""
    _all_supported(expr)
    families: set[str] = set()
    downsampling: list[tuple[str, Pos]] = []
    scope = _tail_scope(expr, families, downsampling)
    kinds = {kind for kind, _ in downsampling}
    if len(kinds) > 1:
        last = max((pos for _, pos in downsampling), key=lambda p: (p.line, p.column))
        raise RuleError(f"downsampling is given twice, as {' and '.join(sorted(kinds))}; a rule has one.", pos=last)
    return Shape(scope, kinds.pop() if kinds else DEFAULT_DOWNSAMPLING, frozenset(families))


def check_condition(closure: n.Closure, what: str) -> None:
    """A closure used as a condition (a file's filter, filter(...)) must be one expression."""
    if len(closure.body) != 1 or isinstance(closure.body[0], n.Assign):
        raise RuleError(
            f"{what} must be a single condition such as "
            f"{{{closure.param} -> {closure.param}.Namespace == 'AWS/DynamoDB'}}, "
            "without assignments.",
            pos=closure.pos,
        )


def _all_supported(expr: n.Arg) -> None:
    """Refuse the first method outside the subset, in reading order, before other checks."""
    match expr:
        case n.Call(receiver=receiver, method=method, args=args, pos=pos):
            _all_supported(receiver)
            if method not in SUPPORTED:
                why = _WHY_NOT.get(method)
                detail = f": {why}" if why else f"; the supported methods are {', '.join(SUPPORTED)}"
                raise RuleError(f"the method {method}(...) is not supported{detail}.", pos=pos)
            for arg in args:
                _all_supported(arg)
        case n.Binary(left=left, right=right):
            _all_supported(left)
            _all_supported(right)
        case n.Negate(operand=operand):
            _all_supported(operand)


def _tail_scope(expr: n.Expr, families: set[str], downsampling: list[tuple[str, Pos]]) -> Scope:
    # Walk down the receiver chain from the end: downsampling and scope calls may sit there,
    # the last scope call written wins (as SkyWalking's context keeps the last one).
    node: n.Expr = expr
    scope: Scope | None = None
    while isinstance(node, n.Call) and node.method in (*SCOPES, "downsampling"):
        _check_args(node, families, downsampling)
        if node.method in SCOPES and scope is None:
            scope = _scope(node)
        node = node.receiver
    if scope is None:
        raise RuleError(
            "the expression must end with service(...), instance(...) or "
            "endpoint(...) to say which entity its values belong to.",
            pos=expr.pos,
        )
    if _kind(node, families, downsampling) != "family":
        raise RuleError(
            "the expression computes a number, not a sample family; it needs "
            "at least one family such as amazonaws_com_AWS_DynamoDB_UserErrors_sum.",
            pos=node.pos,
        )
    return scope


def _kind(expr: n.Arg, families: set[str], downsampling: list[tuple[str, Pos]]) -> str:
    """'family' or 'number' for an expression; RuleError for anything else."""
    match expr:
        case n.Number():
            return "number"
        case n.Family(name=name):
            families.add(name)
            return "family"
        case n.Negate(operand=operand):
            return _kind(operand, families, downsampling)
        case n.Binary(left=left, right=right):
            kinds = {_kind(left, families, downsampling), _kind(right, families, downsampling)}
            return "family" if "family" in kinds else "number"
        case n.Call(receiver=receiver, method=method, pos=pos):
            if method in SCOPES:
                raise RuleError(
                    f"{method}(...) must come last in the expression, after every other operation.", pos=pos
                )
            if _kind(receiver, families, downsampling) != "family":
                raise RuleError(f"{method}(...) needs a sample family, not a number, before the dot.", pos=pos)
            _check_args(expr, families, downsampling)
            return "family"
        case n.EnumRef(type=type_, name=name, pos=pos):
            raise RuleError(f"{type_}.{name} can only be a method argument.", pos=pos)
        case n.String(pos=pos) | n.StringList(pos=pos) | n.Closure(pos=pos):
            raise RuleError("this argument cannot be used in arithmetic.", pos=pos)
    raise AssertionError(f"unknown node {expr!r}")


def _check_args(call: n.Call, families: set[str], downsampling: list[tuple[str, Pos]]) -> None:
    method, args, pos = call.method, call.args, call.pos
    if method in TAG_FILTERS:
        if not args or len(args) % 2 or not all(isinstance(a, n.String) for a in args):
            raise RuleError(
                f"{method} takes pairs of strings: label name, then value, as in {method}('Operation', 'Query').",
                pos=pos,
            )
        if method in ("tagMatch", "tagNotMatch"):
            for pattern in args[1::2]:
                assert isinstance(pattern, n.String)
                try:
                    compile_regex(pattern.value)
                except re.error as error:
                    raise RuleError(
                        f"the pattern {pattern.value!r} is not a valid regular expression ({error}).", pos=pattern.pos
                    ) from None
    elif method in ("tag", "filter"):
        if len(args) != 1 or not isinstance(args[0], n.Closure):
            raise RuleError(f"{method} takes one closure, as in {method}({{tags -> ...}}).", pos=pos)
        if method == "filter":
            check_condition(args[0], "the closure of filter(...)")
    elif method in AGGREGATIONS:
        if len(args) != 1 or not isinstance(args[0], n.StringList):
            raise RuleError(f"{method} takes a list of label names, as in {method}(['TableName']).", pos=pos)
    elif method in ARITHMETIC:
        if len(args) != 1 or isinstance(args[0], (n.String, n.StringList, n.Closure)):
            raise RuleError(f"{method} takes one sample family or number.", pos=pos)
        _kind(args[0], families, downsampling)
    elif method == "downsampling":
        downsampling.append((_downsampling_type(call), pos))
    else:
        _scope(call)


def _downsampling_type(call: n.Call) -> str:
    args = call.args
    name = None
    if len(args) == 1:
        arg = args[0]
        if isinstance(arg, n.Family) or (isinstance(arg, n.EnumRef) and arg.type == "DownsamplingType"):
            name = arg.name
    if name not in DOWNSAMPLING:
        raise RuleError(f"downsampling takes one of {', '.join(DOWNSAMPLING)}.", pos=call.pos)
    return name


def _scope(call: n.Call) -> Scope:
    """The entity a scope call describes, checking its arguments."""
    args, method, pos = call.args, call.method, call.pos
    shapes = {
        "service": (
            "[labels], Layer.X or [labels], 'delimiter', Layer.X",
            ((n.StringList, n.EnumRef), (n.StringList, n.String, n.EnumRef)),
        ),
        "instance": ("[service labels], [instance labels], Layer.X", ((n.StringList, n.StringList, n.EnumRef),)),
        "endpoint": (
            "[service labels], [endpoint labels], Layer.X or [service labels], [endpoint labels], 'delimiter', Layer.X",
            ((n.StringList, n.StringList, n.EnumRef), (n.StringList, n.StringList, n.String, n.EnumRef)),
        ),
    }
    usage, accepted = shapes[method]
    if not any(len(args) == len(kinds) and all(isinstance(a, k) for a, k in zip(args, kinds)) for kinds in accepted):
        raise RuleError(f"{method} takes {usage}.", pos=pos)
    layer = args[-1]
    assert isinstance(layer, n.EnumRef)
    if layer.type != "Layer" or not _LAYER.fullmatch(layer.name):
        raise RuleError(f"the last argument of {method} must be a layer such as Layer.AWS_DYNAMODB.", pos=layer.pos)
    lists = [a.items for a in args if isinstance(a, n.StringList)]
    if not all(lists):
        raise RuleError(f"the label lists of {method} must not be empty.", pos=pos)
    delimiter = next((a.value for a in args if isinstance(a, n.String)), ".")
    return Scope(method, lists[0], lists[1] if len(lists) > 1 else (), delimiter or ".", layer.name)
