"""The syntax tree of a rule expression; every node knows where it was written."""

from __future__ import annotations

from dataclasses import dataclass

from receiver.rules.errors import Pos

# ---- expressions over sample families ----


@dataclass(frozen=True, slots=True)
class Number:
    value: float
    pos: Pos


@dataclass(frozen=True, slots=True)
class Family:
    """A sample family by name, e.g. ``amazonaws_com_AWS_DynamoDB_SystemErrors_sum``."""

    name: str
    pos: Pos


@dataclass(frozen=True, slots=True)
class EnumRef:
    """``Layer.AWS_DYNAMODB``, ``DownsamplingType.SUM``."""

    type: str
    name: str
    pos: Pos


@dataclass(frozen=True, slots=True)
class String:
    value: str
    pos: Pos


@dataclass(frozen=True, slots=True)
class StringList:
    items: tuple[str, ...]
    pos: Pos


@dataclass(frozen=True, slots=True)
class Negate:
    operand: Expr
    pos: Pos


@dataclass(frozen=True, slots=True)
class Binary:
    """``left op right`` with op one of + - * /."""

    op: str
    left: Expr
    right: Expr
    pos: Pos


@dataclass(frozen=True, slots=True)
class Call:
    """``receiver.method(args)``."""

    receiver: Expr
    method: str
    args: tuple[Arg, ...]
    pos: Pos


# ---- closures: { tags -> ... } ----


@dataclass(frozen=True, slots=True)
class TagRead:
    """``tags.name``: a label's value, or null when the sample has no such label."""

    name: str
    pos: Pos


@dataclass(frozen=True, slots=True)
class Literal:
    """A string, ``null``, ``true`` or ``false`` inside a closure."""

    value: str | bool | None
    pos: Pos


@dataclass(frozen=True, slots=True)
class Not:
    operand: CExpr
    pos: Pos


@dataclass(frozen=True, slots=True)
class Op:
    """``left op right`` with op one of + == != && ||."""

    op: str
    left: CExpr
    right: CExpr
    pos: Pos


@dataclass(frozen=True, slots=True)
class Ternary:
    condition: CExpr
    then: CExpr
    otherwise: CExpr
    pos: Pos


@dataclass(frozen=True, slots=True)
class Assign:
    """``tags.name = value``."""

    name: str
    value: CExpr
    pos: Pos


@dataclass(frozen=True, slots=True)
class Closure:
    param: str
    body: tuple[Stmt, ...]
    pos: Pos


Expr = Number | Family | EnumRef | Negate | Binary | Call
Arg = Expr | String | StringList | Closure
CExpr = TagRead | Literal | Not | Op | Ternary
Stmt = CExpr | Assign
