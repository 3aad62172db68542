"""A value that cannot be computed (past the largest float) is left out for its entity only,
and counted; it never makes a whole evaluation fail, nor another entity's value wrong."""

from __future__ import annotations

import math

import pytest

from receiver.rules.families import NOT_COMPUTED, Point, aggregate, combine, mean, total, with_number
from tests.rules.rulekit import rules_from, sample

NS = "T/N"  # families amazonaws_com_T_N_<metric>
BIG = 1.7e308
ONE, TWO = "111111111111", "222222222222"
BY_ACCOUNT = ".service(['cloud_account_id'], Layer.T)"
BY_TABLE = ".endpoint(['cloud_account_id'], ['T'], Layer.T)"


def s(metric, value, account=ONE, **dims):
    return sample(metric, value, 1.0, low=value, high=value, namespace=NS, account=account, **dims)


def evaluate(tmp_path, exp, *samples, scope=BY_ACCOUNT):
    """({service or (service, endpoint): value}, not_computed) of one rule ``t_m``."""
    rules = rules_from(tmp_path, f"metricPrefix: t\nmetricsRules:\n  - name: m\n    exp: |-\n      ({exp}){scope}\n")
    evaluation = rules.evaluation(samples)
    assert all(math.isfinite(d.value) for d in evaluation.values)
    assert rules.evaluate(samples) == evaluation.values
    got = {(d.service if d.endpoint is None else (d.service, d.endpoint)): d.value for d in evaluation.values}
    return got, evaluation.not_computed


def test_a_sum_past_the_largest_float_is_left_out_for_its_entity_only(tmp_path):
    got, lost = evaluate(
        tmp_path,
        "amazonaws_com_T_N_X_sum.sum(['cloud_account_id'])",
        s("X", BIG, T="a"),
        s("X", BIG, T="b"),
        s("X", 1.0, TWO, T="a"),
        s("X", 2.0, TWO, T="b"),
    )
    assert got == {TWO: 3.0}
    assert lost == {"t_m": 1}


def test_a_part_not_computed_poisons_what_it_flows_into(tmp_path):
    # Table a's product overflows: the account total is not a total without it.
    samples = [s("X", 1e10, T="a"), s("X", 1.0, T="b"), s("X", 1.0, TWO, T="a")]
    for aggregation in ("sum", "avg", "max", "min"):
        got, lost = evaluate(
            tmp_path, f"(amazonaws_com_T_N_X_sum * 1e300).{aggregation}(['cloud_account_id'])", *samples
        )
        assert got == {TWO: 1e300}, aggregation
        assert lost == {"t_m": 1}, aggregation
    # Per table: only table a is left out.
    got, lost = evaluate(
        tmp_path, "(amazonaws_com_T_N_X_sum * 1e300).sum(['cloud_account_id', 'T'])", *samples, scope=BY_TABLE
    )
    assert got == {(ONE, "b"): 1e300, (TWO, "a"): 1e300}
    assert lost == {"t_m": 1}


def test_a_quotient_by_a_value_not_computed_is_not_zero(tmp_path):
    got, lost = evaluate(
        tmp_path,
        "amazonaws_com_T_N_X_sum.sum(['cloud_account_id']) / amazonaws_com_T_N_Y_sum.sum(['cloud_account_id'])",
        s("X", 1.0),
        s("Y", BIG, T="a"),
        s("Y", BIG, T="b"),
        s("X", 1.0, TWO),
        s("Y", 4.0, TWO),
    )
    assert got == {TWO: 0.25}
    assert lost == {"t_m": 1}


def test_a_division_by_zero_is_still_no_value_and_not_counted(tmp_path):
    got, lost = evaluate(tmp_path, "amazonaws_com_T_N_X_sum.div(0)", s("X", 1.0))
    assert (got, lost) == ({}, {})
    got, lost = evaluate(tmp_path, "amazonaws_com_T_N_X_sum * (1 / 0)", s("X", 1.0))
    assert (got, lost) == ({}, {})


def test_a_mean_of_large_values_is_computed_where_their_sum_is_not(tmp_path):
    got, lost = evaluate(
        tmp_path, "amazonaws_com_T_N_X_sum.avg(['cloud_account_id'])", s("X", BIG, T="a"), s("X", BIG, T="b")
    )
    assert got == {ONE: pytest.approx(BIG)}
    assert lost == {}
    # Two points naming one entity: their mean, as ever.
    got, lost = evaluate(tmp_path, "amazonaws_com_T_N_X_sum", s("X", BIG, T="a"), s("X", BIG, T="b"))
    assert got == {ONE: pytest.approx(BIG)}
    assert lost == {}


def test_the_repository_rules_lose_one_account_not_the_minute(tmp_path):
    from tests.rules.rulekit import pack

    samples = [
        sample("UserErrors", BIG, account=ONE, region=region, low=BIG, high=BIG)
        for region in ("us-east-1", "eu-west-1")
    ]
    samples += [sample("UserErrors", 3.0, account=TWO, region=region) for region in ("us-east-1", "eu-west-1")]
    samples.append(sample("ConsumedReadCapacityUnits", 120.0, 4.0, account=ONE, TableName="GameScores"))
    evaluation = pack().evaluation(samples)
    assert evaluation.not_computed == {"aws_dynamodb_user_errors": 1}
    errors = {d.service: d.value for d in evaluation.values if d.metric == "aws_dynamodb_user_errors"}
    assert errors == {f"aws-dynamodb::{TWO}": 6.0}
    assert any(d.service == f"aws-dynamodb::{ONE}" for d in evaluation.values)


def test_family_operations_keep_not_computed_points_and_drop_no_value_points():
    a = (("T", "a"),)
    b = (("T", "b"),)
    family = (Point(a, BIG), Point(b, 1.0))
    assert with_number(family, "*", 10.0) == (Point(a, NOT_COMPUTED), Point(b, 10.0))
    assert with_number(family, "/", 0.0) == ()
    assert with_number(family, "-", math.nan) == ()
    poisoned = (Point(a, -NOT_COMPUTED), Point(b, 2.0))
    # inf - inf and inf * 0 give NaN in floats: still not computed, never a dropped point.
    assert combine(poisoned, "-", poisoned) == (Point(a, NOT_COMPUTED), Point(b, 0.0))
    assert with_number(poisoned, "*", 0.0) == (Point(a, NOT_COMPUTED), Point(b, 0.0))
    assert combine(family, "/", poisoned) == (Point(a, NOT_COMPUTED), Point(b, 0.5))
    assert aggregate(poisoned, "min", ()) == (Point((), NOT_COMPUTED),)
    assert total([BIG, BIG]) == NOT_COMPUTED and total([math.inf, -math.inf]) == NOT_COMPUTED
    assert total([1.0, 2.0]) == 3.0
    assert mean([BIG, BIG]) == pytest.approx(BIG) and math.isinf(mean([1.0, -math.inf]))


def test_an_arithmetic_error_that_gets_through_costs_only_its_rule(tmp_path, monkeypatch, caplog):
    from receiver.rules import families

    def broken(values):
        raise ZeroDivisionError("a bug")

    monkeypatch.setitem(families.AGGREGATES, "max", broken)
    rules = rules_from(
        tmp_path,
        "metricPrefix: t\nmetricsRules:\n"
        f"  - name: broken\n    exp: amazonaws_com_T_N_X_sum.max(['cloud_account_id']){BY_ACCOUNT}\n"
        f"  - name: fine\n    exp: amazonaws_com_T_N_X_sum.sum(['cloud_account_id']){BY_ACCOUNT}\n",
    )
    evaluation = rules.evaluation([s("X", 1.0), s("X", 2.0, TWO)])
    assert {(d.metric, d.service) for d in evaluation.values} == {("t_fine", ONE), ("t_fine", TWO)}
    assert evaluation.not_computed == {"t_broken": 1}
    assert "gives no value where its arithmetic fails: ZeroDivisionError: a bug" in caplog.text
