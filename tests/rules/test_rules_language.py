"""What each construct of the MAL subset means, one behaviour per test."""

from __future__ import annotations

import pytest

from receiver.rules import nodes as n
from receiver.rules.closures import accepts, retag
from receiver.rules.families import build, family_name, java_double, quantile_of
from receiver.rules.parser import parse_closure, parse_expression
from receiver.rules.source import Source
from tests.rules.rulekit import ACCOUNT, rules_from, sample

NS = "T/N"  # families amazonaws_com_T_N_<metric>
BY_ACCOUNT = ".service(['cloud_account_id'], Layer.T)"


def run(tmp_path, exp, *samples, scope=BY_ACCOUNT):
    """{service or (service, endpoint): value} of one rule over ``samples``."""
    rules = rules_from(tmp_path, f"metricPrefix: t\nmetricsRules:\n  - name: m\n    exp: |-\n      ({exp}){scope}\n")
    return {(d.service if d.endpoint is None else (d.service, d.endpoint)): d.value for d in rules.evaluate(samples)}


def s(metric, total, count=1.0, **dims):
    return sample(metric, total, count, namespace=NS, **dims)


# ---- tag filters ----


def test_tag_not_equal_keeps_points_without_the_label(tmp_path):
    got = run(
        tmp_path,
        "amazonaws_com_T_N_X_sum.tagNotEqual('Op', 'Query').sum(['cloud_account_id'])",
        s("X", 1.0, Op="Query"),
        s("X", 2.0, Op="Scan"),
        s("X", 4.0),
    )
    assert got == {ACCOUNT: 6.0}


def test_tag_equal_to_empty_selects_points_without_the_label(tmp_path):
    got = run(
        tmp_path,
        "amazonaws_com_T_N_X_sum.tagEqual('Op', '').sum(['cloud_account_id'])",
        s("X", 1.0, Op="Query"),
        s("X", 4.0),
    )
    assert got == {ACCOUNT: 4.0}


def test_tag_match_must_match_the_whole_value(tmp_path):
    got = run(
        tmp_path,
        "amazonaws_com_T_N_X_sum.tagMatch('Op', 'Get').sum(['cloud_account_id'])",
        s("X", 1.0, Op="Get"),
        s("X", 2.0, Op="GetItem"),
    )
    assert got == {ACCOUNT: 1.0}


def test_tag_not_match(tmp_path):
    got = run(
        tmp_path,
        "amazonaws_com_T_N_X_sum.tagNotMatch('Op', 'Get.*').sum(['cloud_account_id'])",
        s("X", 1.0, Op="Get"),
        s("X", 2.0, Op="GetItem"),
        s("X", 4.0, Op="Put"),
    )
    assert got == {ACCOUNT: 4.0}


def test_several_pairs_must_all_hold(tmp_path):
    got = run(
        tmp_path,
        "amazonaws_com_T_N_X_sum.tagEqual('Op', 'Get', 'T', 'a').sum(['cloud_account_id'])",
        s("X", 1.0, Op="Get", T="a"),
        s("X", 2.0, Op="Get", T="b"),
    )
    assert got == {ACCOUNT: 1.0}


# ---- aggregation ----


@pytest.mark.parametrize("how, expected", [("sum", 9.0), ("avg", 3.0), ("max", 5.0), ("min", 1.0)])
def test_aggregations_group_by_the_listed_labels(tmp_path, how, expected):
    got = run(
        tmp_path,
        f"amazonaws_com_T_N_X_sum.{how}(['cloud_account_id', 'T'])",
        s("X", 1.0, T="a"),
        s("X", 3.0, T="a", Op="x"),
        s("X", 5.0, T="a", Op="y"),
        s("X", 7.0, T="b"),
        scope=".endpoint(['cloud_account_id'], ['T'], Layer.T)",
    )
    assert got[(ACCOUNT, "a")] == expected and got[(ACCOUNT, "b")] == 7.0


# ---- arithmetic ----


def test_families_combine_point_by_point_on_equal_labels(tmp_path):
    got = run(
        tmp_path,
        "amazonaws_com_T_N_X_sum / amazonaws_com_T_N_X_count",
        s("X", 10.0, 4, T="a"),
        s("X", 9.0, 3, T="b"),
        scope=".endpoint(['cloud_account_id'], ['T'], Layer.T)",
    )
    assert got == {(ACCOUNT, "a"): 2.5, (ACCOUNT, "b"): 3.0}


def test_points_without_a_partner_are_dropped(tmp_path):
    got = run(
        tmp_path,
        "amazonaws_com_T_N_X_sum.sum(['cloud_account_id', 'T'])"
        " * amazonaws_com_T_N_Y_sum.sum(['cloud_account_id', 'T'])",
        s("X", 2.0, T="a"),
        s("Y", 3.0, T="a"),
        s("X", 5.0, T="b"),
        scope=".endpoint(['cloud_account_id'], ['T'], Layer.T)",
    )
    assert got == {(ACCOUNT, "a"): 6.0}


def test_plus_with_an_absent_family_keeps_the_other_side(tmp_path):
    got = run(tmp_path, "amazonaws_com_T_N_X_sum.plus(amazonaws_com_T_N_Absent_sum)", s("X", 2.0))
    assert got == {ACCOUNT: 2.0}


def test_minus_with_an_absent_left_side_negates_the_right(tmp_path):
    got = run(tmp_path, "amazonaws_com_T_N_Absent_sum.minus(amazonaws_com_T_N_X_sum)", s("X", 2.0))
    assert got == {ACCOUNT: -2.0}


def test_multiply_with_an_absent_family_gives_nothing(tmp_path):
    assert run(tmp_path, "amazonaws_com_T_N_X_sum.multiply(amazonaws_com_T_N_Absent_sum)", s("X", 2.0)) == {}


def test_numbers_combine_on_either_side_and_negate(tmp_path):
    got = run(tmp_path, "100 - amazonaws_com_T_N_X_sum * 2 + -amazonaws_com_T_N_X_count", s("X", 10.0, 4))
    assert got == {ACCOUNT: 100 - 10 * 2 - 4}


def test_division_by_zero_gives_no_value(tmp_path):
    assert run(tmp_path, "amazonaws_com_T_N_X_sum / amazonaws_com_T_N_X_count", s("X", 1.0, 0)) == {}
    assert run(tmp_path, "amazonaws_com_T_N_X_sum.div(0)", s("X", 1.0)) == {}


# ---- closures ----


def test_filter_method_keeps_the_points_its_closure_accepts(tmp_path):
    got = run(
        tmp_path,
        "amazonaws_com_T_N_X_sum.filter({tags -> tags.Op != 'Get' && !tags.Skip}).sum(['cloud_account_id'])",
        s("X", 1.0, Op="Get"),
        s("X", 2.0, Op="Put"),
        s("X", 4.0, Op="Put", Skip="y"),
    )
    assert got == {ACCOUNT: 2.0}


def closure(text):
    return parse_closure(Source.at(text))


def test_concatenation_reads_a_missing_label_as_null_as_groovy_does():
    assert retag(closure("{tags -> tags.a = 'x:' + tags.missing}"), {}) == {"a": "x:null"}


def test_ternary_picks_by_groovy_truth():
    rule = closure("{tags -> tags.a = tags.b ? 'yes' : 'no'}")
    assert retag(rule, {"b": "1"})["a"] == "yes"
    assert retag(rule, {"b": ""})["a"] == "no"
    assert retag(rule, {})["a"] == "no"


def test_assignments_run_in_order_and_can_read_earlier_ones():
    rule = closure("{tags -> tags.a = 'x'; tags.b = tags.a + 'y'\n tags.c = tags.b}")
    assert retag(rule, {}) == {"a": "x", "b": "xy", "c": "xy"}


def test_assigning_null_removes_the_label():
    assert retag(closure("{tags -> tags.a = null}"), {"a": "x", "b": "y"}) == {"b": "y"}


@pytest.mark.parametrize(
    "condition, labels, expected",
    [
        ("tags.a == 'x'", {"a": "x"}, True),
        ("tags.a != 'x'", {"a": "x"}, False),
        ("tags.a == null", {}, True),
        ("tags.a || tags.b", {"b": "y"}, True),
        ("tags.a && tags.b", {"a": "x"}, False),
        ("!tags.a", {"a": ""}, True),
        ("(tags.a == 'x' || tags.a == 'y') && !(tags.b == 'z')", {"a": "y", "b": "w"}, True),
        ("{ tags.a == 'x' }", {"a": "x"}, True),  # SkyWalking's braced body
    ],
)
def test_conditions_follow_groovy(condition, labels, expected):
    assert accepts(closure("{ tags -> " + condition + " }"), labels) is expected


# ---- entities ----


def test_several_points_of_one_entity_give_their_mean(tmp_path):
    # SkyWalking keeps an arbitrary one; we take the mean so order cannot matter.
    got = run(tmp_path, "amazonaws_com_T_N_X_sum", s("X", 2.0, Op="a"), s("X", 4.0, Op="b"))
    assert got == {ACCOUNT: 3.0}


def test_an_entity_with_an_empty_name_is_left_out(tmp_path):
    got = run(
        tmp_path,
        "amazonaws_com_T_N_X_sum",
        s("X", 2.0, T="a"),
        s("X", 4.0),
        scope=".endpoint(['cloud_account_id'], ['T'], Layer.T)",
    )
    assert got == {(ACCOUNT, "a"): 2.0}


def test_entity_names_join_non_empty_labels_with_the_delimiter(tmp_path):
    got = run(
        tmp_path,
        "amazonaws_com_T_N_X_sum",
        s("X", 2.0, T="a", I="i"),
        s("X", 4.0, T="a"),
        scope=".endpoint(['cloud_account_id'], ['T', 'I'], '/', Layer.T)",
    )
    assert got == {(ACCOUNT, "a/i"): 2.0, (ACCOUNT, "a"): 4.0}


# ---- families from CloudWatch samples ----


def test_a_sample_gives_sum_count_and_one_point_per_quantile():
    data = build(
        [
            sample(
                "Latency",
                12.0,
                4,
                low=1.0,
                high=6.0,
                stats=(("p99", 5.5), ("p99.9", 5.9), ("TM(10%:90%)", 3.0)),
                TableName="T",
            )
        ]
    )
    base = "amazonaws_com_AWS_DynamoDB_Latency"
    assert [p.value for p in data[base + "_sum"]] == [12.0]
    assert [p.value for p in data[base + "_count"]] == [4.0]
    assert [(dict(p.labels)["quantile"], p.value) for p in data[base]] == [
        ("0.0", 1.0),
        ("0.99", 5.5),
        ("0.999", 5.9),
        ("1.0", 6.0),
    ]


def test_labels_are_resource_attributes_then_namespace_metric_and_dimensions():
    data = build(
        [
            sample(
                "Latency",
                1.0,
                1,
                region="eu-west-1",
                TableName="T",
                Operation="Query",
                labels=(("aws.exporter.arn", "arn:x"), ("cloud.provider", "aws")),
            )
        ]
    )
    labels = dict(data["amazonaws_com_AWS_DynamoDB_Latency_sum"][0].labels)
    assert labels == {
        "aws_exporter_arn": "arn:x",
        "cloud_provider": "aws",
        "cloud_account_id": ACCOUNT,
        "cloud_region": "eu-west-1",
        "Namespace": "AWS/DynamoDB",
        "MetricName": "Latency",
        "TableName": "T",
        "Operation": "Query",
    }


def test_cloud_provider_defaults_to_aws():
    data = build([sample("Latency", 1.0, 1)])
    assert dict(data["amazonaws_com_AWS_DynamoDB_Latency_sum"][0].labels)["cloud_provider"] == "aws"


def test_family_names_follow_the_stream_metric_name():
    assert (
        family_name("AWS/DynamoDB", "ConsumedReadCapacityUnits")
        == "amazonaws_com_AWS_DynamoDB_ConsumedReadCapacityUnits"
    )
    assert family_name("AWS/ApiGateway", "4XXError") == "amazonaws_com_AWS_ApiGateway_4XXError"


@pytest.mark.parametrize(
    "value, text",
    [
        (0.0, "0.0"),
        (1.0, "1.0"),
        (0.5, "0.5"),
        (0.99, "0.99"),
        (0.999, "0.999"),
        (0.0001, "1.0E-4"),
        (0.00015, "1.5E-4"),
    ],
)
def test_quantile_labels_are_javas_double_to_string(value, text):
    assert java_double(value) == text


@pytest.mark.parametrize(
    "statistic, quantile",
    [("p50", 0.5), ("p99", 0.99), ("p99.9", 0.999), ("p99.99", 0.9999), ("TM(10%:90%)", None), ("IQM", None)],
)
def test_percentile_statistics_become_quantiles(statistic, quantile):
    assert quantile_of(statistic) == quantile


# ---- parsing ----


def test_multiplication_binds_tighter_than_addition():
    tree = parse_expression(Source.at("a + b * c"))
    assert isinstance(tree, n.Binary) and tree.op == "+"
    assert isinstance(tree.right, n.Binary) and tree.right.op == "*"


def test_method_calls_bind_tighter_than_arithmetic():
    tree = parse_expression(Source.at("a / b.sum(['x'])"))
    assert isinstance(tree, n.Binary) and isinstance(tree.right, n.Call)


def test_every_node_knows_its_line_and_column():
    tree = parse_expression(Source.at("a\n  .sum(['x'])"))
    assert isinstance(tree, n.Call)
    assert (tree.pos.line, tree.pos.column) == (2, 4)
    assert (tree.receiver.pos.line, tree.receiver.pos.column) == (1, 1)


def test_numbers_parse_with_fractions_and_exponents():
    tree = parse_expression(Source.at("a * 1.5e3"))
    assert isinstance(tree, n.Binary) and tree.right == n.Number(1500.0, tree.right.pos)


def test_a_closure_that_fails_gives_no_value_and_warns_once(tmp_path, caplog):
    rules = rules_from(
        tmp_path,
        "metricPrefix: t\nmetricsRules:\n  - name: m\n    exp: |-\n"
        "      amazonaws_com_T_N_X_sum.tag({tags -> tags.a = tags.x + tags.y})"
        f"{BY_ACCOUNT}\n",
    )
    assert rules.evaluate([s("X", 1.0)]) == []
    rules.evaluate([s("X", 1.0)])
    assert caplog.text.count("cannot add null and null") == 1
