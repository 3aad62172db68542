"""Family operations on columns (their fast paths over whole lists included) give, to the
bit, what their point-by-point definitions give: for any values, signed zeros, values past
the largest float, ±inf and NaN among them, and again once the layout has remembered its
work."""

from __future__ import annotations

import math
import operator

from hypothesis import given, settings
from hypothesis import strategies as st

from receiver.rules import families as f

NAMES = ("a", "b", "quantile")
VALUES = st.one_of(
    st.sampled_from([0.0, -0.0, 1.0, -1.0, 5e-324, 1e308, -1e308, math.inf, -math.inf]),
    st.floats(allow_nan=False),
)


@st.composite
def families(draw, least=0):
    points = []
    for _ in range(draw(st.integers(least, 12))):
        names = draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=3))
        labels = tuple(sorted((name, draw(st.sampled_from(["", "x", "y"]))) for name in names))
        points.append(f.Point(labels, draw(VALUES)))
    return tuple(points)


def bits(points: tuple[f.Point, ...]) -> list[tuple[object, str]]:
    """The points with their values' bits (0.0 and -0.0 differ)."""
    return [(labels, value.hex()) for labels, value in points]


def result(a: float, op: str, b: float) -> float | None:
    """``a op b`` as the rules define it: None for no value (a division by zero)."""
    if op == "/":
        if not b:
            return None
        value = f.NOT_COMPUTED if math.isinf(b) else a / b
    else:
        value = {"+": operator.add, "-": operator.sub, "*": operator.mul}[op](a, b)
    return value if math.isfinite(value) else f.NOT_COMPUTED


def point_by_point(pairs):
    return tuple(f.Point(labels, value) for labels, value in pairs if value is not None)


@settings(max_examples=300, deadline=None)
@given(families(), st.sampled_from("+-*/"), VALUES, st.booleans())
def test_arithmetic_with_a_number(family, op, number, number_first):
    expected = point_by_point(
        (p.labels, result(number, op, p.value) if number_first else result(p.value, op, number)) for p in family
    )
    assert bits(f.with_number(family, op, number, number_first)) == bits(expected)


@settings(max_examples=300, deadline=None)
@given(families(), st.sampled_from("+-*/"), families())
def test_arithmetic_between_families(left, op, right):
    partners = {}
    for point in right:
        partners.setdefault(point.labels, point.value)
    if not left or not right:
        return  # SkyWalking's rules for an empty side: tests/rules/test_rules_language.py
    expected = point_by_point((p.labels, result(p.value, op, partners[p.labels])) for p in left if p.labels in partners)
    assert bits(f.combine(left, op, right)) == bits(expected)


@settings(max_examples=300, deadline=None)
@given(families(), st.sampled_from(["sum", "avg", "max", "min"]), st.lists(st.sampled_from(NAMES), max_size=3))
def test_aggregations(family, how, by):
    groups: dict[tuple[tuple[str, str], ...], list[float]] = {}
    for p in family:
        key = tuple(sorted((k, dict(p.labels).get(k, "")) for k in set(by)))
        groups.setdefault(key, []).append(p.value)
    expected = tuple(f.Point(k, f.AGGREGATES[how](v)) for k, v in groups.items())
    assert bits(f.aggregate(family, how, tuple(by))) == bits(expected)


@settings(max_examples=200, deadline=None)
@given(families(least=1), st.data())
def test_a_remembered_layout_gives_what_a_new_one_gives(family, data):
    """The second minute of a series set: same layout, other values."""
    memo = f.Memo()
    layout = f.Family.of(family).layout
    again = tuple(f.Point(p.labels, data.draw(VALUES)) for p in family)
    for values in (family, again):
        columns_family = f.Family(layout, [p.value for p in values])
        fresh = f.Family.of(values)
        for by in ((), ("a",), ("a", "b")):
            for how in ("sum", "avg", "max", "min"):
                assert bits(f.aggregate(columns_family, how, by, memo).points()) == bits(
                    f.aggregate(fresh, how, by).points()
                )
        for op in "+-*/":
            assert bits(f.combine(columns_family, op, columns_family).points()) == bits(
                f.combine(fresh, op, fresh).points()
            )
        assert bits(f.match_tags(columns_family, "tagEqual", (("a", "x"),), memo).points()) == bits(
            f.match_tags(fresh, "tagEqual", (("a", "x"),)).points()
        )
