"""Alarm files: the shipped defaults load and check; a broken file is refused with file, line, reason."""

from __future__ import annotations

import io

import pytest

from receiver.alarms.expression import ExpressionError, parse_expression
from receiver.alarms.loader import check_metrics, default_alarms_dir, load_alarms
from receiver.rules import RuleError, check_rules_main
from receiver.rules.cli import default_rules_dir
from receiver.rules.loader import load_rules

SCOPES = {m.name: m.scope for m in load_rules(default_rules_dir()).metrics}

GOOD = """\
rules:
  ok:
    expression: aws_dynamodb_endpoint_write_throttled_requests
    scope: endpoint
    op: ">"
    threshold: 0
    period: 5
"""


def test_the_shipped_rules_load_and_read_defined_metrics_of_their_scope():
    rules = load_alarms(default_alarms_dir())
    check_metrics(rules, SCOPES)
    names = {r.name for r in rules}
    assert {
        "table_read_throttled",
        "table_system_errors",
        "account_user_errors",
        "table_transaction_conflicts",
        "table_read_capacity_high",
        "table_read_near_ceiling",
        "table_write_near_ceiling",
        "table_get_latency_high",
    } <= names


def test_defaults_fill_count_silence_and_message(tmp_path):
    (tmp_path / "a.yaml").write_text(GOOD)
    (rule,) = load_alarms(tmp_path)
    assert (rule.count, rule.silence, rule.line) == (1, 5, 2)
    assert rule.render("svc", "T", 2.5).endswith("for svc T, value 2.5")


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        (GOOD.replace('">"', '"=>"'), 5, "op of the alarm rule ok: '=>' is not one of"),
        (GOOD.replace("period: 5", "period: 0"), 7, "period of the alarm rule ok: must be a whole number"),
        (GOOD + "    count: 6\n", 8, "count of the alarm rule ok: must be a whole number of minutes from 1 to 5"),
        (GOOD.replace("scope: endpoint", "scope: table"), 4, "'table' is not one of service, endpoint"),
        (GOOD + "    thershold: 1\n", 8, "unknown setting 'thershold'"),
        (GOOD.replace("threshold: 0", "threshold: high"), 6, "the threshold must be a finite number"),
        (GOOD + '    message: "{table} is slow"\n', 8, "the message names {table}"),
        (GOOD + '    include-names-regex: "(["\n', 8, "is not a regular expression"),
        (GOOD.replace("throttled_requests", "throttled_requests.sum()"), 3, "is not allowed in an alarm expression"),
        (GOOD.replace("    period: 5\n", ""), 3, "the alarm rule ok has no period"),
        (GOOD.replace("scope: endpoint", "scope: [endpoint"), 5, "not valid YAML"),
        ("alarms: []\n", 1, "unknown key 'alarms'"),
        (
            GOOD + "    explain: why\n",
            8,
            "explain of the alarm rule ok: 'why' is not an explanation; "
            "use one of read_throttle_cause, throttle_cause, write_throttle_cause.",
        ),
        (GOOD + '    message: "{cause}"\n', 8, "the message names {cause}, which only a rule with explain fills."),
        (
            GOOD + '    explain: throttle_cause\n    message: "throttled"\n',
            9,
            "the rule explains with throttle_cause, so its message must say where, with {cause}.",
        ),
        (GOOD + '    message: "{endpoint:.1f}"\n', 8, "{endpoint:.1f} is not a format for text"),
    ],
)
def test_a_broken_file_is_refused_with_file_line_and_reason(tmp_path, text, line, reason):
    (tmp_path / "broken.yaml").write_text(text)
    with pytest.raises(RuleError) as caught:
        load_alarms(tmp_path)
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'broken.yaml'}:{line}:"), message
    assert reason in message


def test_a_rule_name_used_twice_in_a_directory_is_refused(tmp_path):
    (tmp_path / "a.yaml").write_text(GOOD)
    (tmp_path / "b.yaml").write_text(GOOD)
    with pytest.raises(RuleError, match="already defined at .*a.yaml:2"):
        load_alarms(tmp_path)


def test_an_unknown_metric_or_a_metric_of_the_other_scope_is_refused(tmp_path):
    (tmp_path / "a.yaml").write_text(GOOD.replace("endpoint_write", "endpoint_wrote"))
    with pytest.raises(RuleError, match="which no metric rule defines"):
        check_metrics(load_alarms(tmp_path), SCOPES)
    (tmp_path / "a.yaml").write_text(GOOD.replace("scope: endpoint", "scope: service"))
    with pytest.raises(RuleError, match="has scope service but .* is a endpoint metric"):
        check_metrics(load_alarms(tmp_path), SCOPES)


def test_an_explained_rule_gets_cause_in_its_default_message_and_reads_the_explanations_metrics(tmp_path):
    (tmp_path / "a.yaml").write_text(GOOD + "    explain: write_throttle_cause\n")
    (rule,) = load_alarms(tmp_path)
    assert rule.render("svc", "T", 1, cause="cause not reported").endswith("value 1; cause not reported")
    assert "aws_dynamodb_endpoint_write_key_range_throughput_throttle_events" in rule.metrics
    with pytest.raises(RuleError) as caught:
        check_metrics([rule], {"aws_dynamodb_endpoint_write_throttled_requests": "endpoint"})
    assert str(caught.value) == (
        f"{tmp_path / 'a.yaml'}:2:1: the alarm rule ok explains with write_throttle_cause, which reads "
        "aws_dynamodb_endpoint_write_account_limit_throttle_events, which no metric rule defines; "
        "check-rules lists the metrics."
    )


def test_the_shipped_throttling_rules_explain_their_cause_and_replication_lag_is_watched():
    rules = {r.name: r for r in load_alarms(default_alarms_dir())}
    assert rules["table_read_throttled"].explain is not None
    assert rules["table_read_throttled"].explain.name == "read_throttle_cause"
    assert rules["table_write_throttled"].explain is not None
    assert rules["table_write_throttled"].explain.name == "write_throttle_cause"
    lag = rules["table_replication_lag"]
    assert lag.expression.metrics == {"aws_dynamodb_endpoint_replication_latency"}
    assert (lag.scope, lag.op, lag.threshold, lag.period, lag.count) == ("endpoint", ">", 60_000, 10, 10)


def test_check_rules_checks_the_alarm_directory_too(tmp_path):
    out, err = io.StringIO(), io.StringIO()
    assert check_rules_main(None, out, err, alarms_dir=default_alarms_dir()) == 0
    assert (
        out.getvalue().splitlines()[-1]
        == f"{len(load_alarms(default_alarms_dir()))} alarm rules in {default_alarms_dir()}"
    )
    (tmp_path / "a.yaml").write_text(GOOD.replace("period: 5", "period: x"))
    out, err = io.StringIO(), io.StringIO()
    assert check_rules_main(None, out, err, alarms_dir=tmp_path) == 1
    assert err.getvalue().startswith(f"{tmp_path / 'a.yaml'}:7:")


def lookup_from(table: dict[tuple[str, int], float]):
    return lambda metric, at: table.get((metric, at))


def test_expressions_compute_and_have_no_value_without_data_or_on_division_by_zero():
    ratio = parse_expression("100 * used / (limit - 0)")
    assert ratio.metrics == {"used", "limit"}
    assert ratio.evaluate(lookup_from({("used", 0): 30.0, ("limit", 0): 40.0}), 0) == 75.0
    assert ratio.evaluate(lookup_from({("used", 0): 30.0}), 0) is None
    assert ratio.evaluate(lookup_from({("used", 0): 30.0, ("limit", 0): 0.0}), 0) is None


def test_baseline_is_the_mean_of_the_minutes_before_that_have_values():
    expression = parse_expression("latency / baseline(latency, 3)")
    values = {
        ("latency", 0): 30.0,
        ("latency", -60_000): 10.0,
        ("latency", -180_000): 20.0,
        ("latency", -240_000): 1000.0,
    }
    assert expression.lookback_minutes == 3
    assert expression.evaluate(lookup_from(values), 0) == 2.0


@pytest.mark.parametrize("text", ["__import__('os')", "a.b", "a ** 2", "baseline(a, 0)", "a if b else c", "'x'"])
def test_anything_beyond_the_small_language_is_refused(text):
    with pytest.raises(ExpressionError):
        parse_expression(text)
