"""What the metric stream carries: include filters narrowed to the metrics the rules read, percentiles
only where the rules read quantiles, every metric with streamAllMetrics, and the limits refused."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from stacks.settings import Settings, SettingsError, StatisticsConfig, settings_from_context
from stacks.stream_plan import RULES, NamespaceFilter, percentile, plan_stream
from tests.stacks.synth import BASE_CONTEXT, METRIC_STREAM, Assembly

STREAM = "AWS::CloudWatch::MetricStream"
DEFAULT_NAMESPACES = ("AWS/DynamoDB", "AWS/Firehose", "AWS/CloudWatch/MetricStreams")


def settings(overrides: dict[str, Any] | None = None) -> Settings:
    return settings_from_context({**BASE_CONTEXT, **(overrides or {})}.get)


def stream(assembly: Assembly) -> dict[str, Any]:
    (resource,) = [r for r in assembly.template(METRIC_STREAM)["Resources"].values() if r["Type"] == STREAM]
    return dict(resource["Properties"])


def spelled(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def rule_families() -> set[str]:
    """Every sample family the rule packs' expressions name (read here without the stacks' code)."""
    families: set[str] = set()
    for path in RULES.rglob("*.yaml"):
        document = yaml.safe_load(path.read_text())
        texts = [document.get("expPrefix", ""), document.get("expSuffix", "")]
        texts += [rule["exp"] for rule in document.get("metricsRules") or []]
        for text in texts:
            families.update(re.findall(r"amazonaws_com_\w+", text or ""))
    return families


def read_by_rules(namespace: str) -> set[str]:
    """The metric names of ``namespace`` the rules read, as family names spell them."""
    prefix = f"amazonaws_com_{spelled(namespace)}_"
    longer = [f"amazonaws_com_{spelled(n)}_" for n in DEFAULT_NAMESPACES if n != namespace]
    return {
        re.sub(r"_(sum|count)$", "", family.removeprefix(prefix))
        for family in rule_families()
        if family.startswith(prefix) and not any(family.startswith(o) and len(o) > len(prefix) for o in longer)
    }


def write_rules(directory: Path, *expressions: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    rules = [{"name": f"m{i}", "exp": exp} for i, exp in enumerate(expressions)]
    (directory / "pack.yaml").write_text(yaml.safe_dump({"metricPrefix": "test", "metricsRules": rules}))
    return directory


# -- the default deployment: what the rule packs read ---------------------------------------------


@pytest.mark.parametrize("namespace", DEFAULT_NAMESPACES)
def test_each_namespace_is_narrowed_to_the_metrics_the_rules_read(default: Assembly, namespace: str) -> None:
    filters = {f["Namespace"]: f.get("MetricNames") for f in stream(default)["IncludeFilters"]}
    expected = read_by_rules(namespace)
    assert expected, f"no rule reads {namespace}; the filter would stream all of it"
    # None: a family whose metric name has punctuation the stacks do not know (KNOWN_METRIC_NAMES).
    assert filters[namespace] is not None, f"{namespace} is streamed whole; see synth's warning"
    assert sorted(spelled(name) for name in filters[namespace]) == sorted(expected)


def test_the_default_stream_carries_the_dynamodb_and_pipeline_namespaces(default: Assembly) -> None:
    assert [f["Namespace"] for f in stream(default)["IncludeFilters"]] == list(DEFAULT_NAMESPACES)


def test_dynamodb_names_are_the_metric_names_themselves(default: Assembly) -> None:
    (dynamodb,) = [f for f in stream(default)["IncludeFilters"] if f["Namespace"] == "AWS/DynamoDB"]
    assert {"ConsumedReadCapacityUnits", "SuccessfulRequestLatency", "ThrottledRequests"} <= set(
        dynamodb["MetricNames"]
    )
    assert all(re.fullmatch(r"[A-Za-z]+", name) for name in dynamodb["MetricNames"])


def test_firehose_names_keep_their_dots(default: Assembly) -> None:
    (firehose,) = [f for f in stream(default)["IncludeFilters"] if f["Namespace"] == "AWS/Firehose"]
    assert "DeliveryToHttpEndpoint.Success" in firehose["MetricNames"]
    assert not any("_" in name for name in firehose["MetricNames"])


def test_the_receivers_own_namespace_is_never_streamed(default: Assembly, alternative: Assembly) -> None:
    # Receiver/DynamoDBInventory is made by the receiver (ceilings), not by CloudWatch.
    for assembly in (default, alternative):
        filters = stream(assembly)["IncludeFilters"]
        assert not [f for f in filters if not f["Namespace"].startswith("AWS/")]
        assert not [n for f in filters for n in f.get("MetricNames", []) if "Ceiling" in n or "WarmThroughput" in n]
    assert any(f.startswith("amazonaws_com_Receiver_DynamoDBInventory_") for f in rule_families())


def test_percentiles_are_streamed_where_the_rules_read_quantiles(default: Assembly) -> None:
    # rules/aws-dynamodb/dynamodb-endpoint-percentiles.yaml reads quantiles 0.5 to 0.999.
    assert stream(default)["StatisticsConfigurations"] == [
        {
            "AdditionalStatistics": ["p50", "p90", "p95", "p99", "p99.9"],
            "IncludeMetrics": [{"Namespace": "AWS/DynamoDB", "MetricName": "SuccessfulRequestLatency"}],
        }
    ]


def test_the_default_stream_stays_in_its_own_account(default: Assembly) -> None:
    assert "IncludeLinkedAccountsMetrics" not in stream(default)


# -- streamAllMetrics and linked accounts (the alternative deployment) ---------------------------


def test_stream_all_metrics_sends_whole_namespaces(alternative: Assembly) -> None:
    assert stream(alternative)["IncludeFilters"] == [{"Namespace": "AWS/DynamoDB"}, {"Namespace": "AWS/Lambda"}]


def test_the_rules_percentiles_and_additional_statistics_are_merged(alternative: Assembly) -> None:
    assert stream(alternative)["StatisticsConfigurations"] == [
        {
            "AdditionalStatistics": ["p50", "p90", "p95", "p99", "p99.9", "tm90"],
            "IncludeMetrics": [{"Namespace": "AWS/DynamoDB", "MetricName": "SuccessfulRequestLatency"}],
        },
        {"AdditionalStatistics": ["IQM"], "IncludeMetrics": [{"Namespace": "AWS/Lambda", "MetricName": "Duration"}]},
    ]


def test_linked_accounts_metrics_are_included_in_a_monitoring_account(alternative: Assembly) -> None:
    assert stream(alternative)["IncludeLinkedAccountsMetrics"] is True


# -- the plan from rule packs of our own ------------------------------------------------------------


def test_quantiles_read_with_tag_match_become_percentiles(tmp_path: Path) -> None:
    rules = write_rules(
        tmp_path,
        "amazonaws_com_AWS_DynamoDB_SuccessfulRequestLatency.tagMatch('quantile', '0.99|0\\.999').max(['x'])",
        "amazonaws_com_AWS_DynamoDB_ReturnedBytes_sum.sum(['x'])",
    )
    plan = plan_stream(settings(), rules)
    assert plan.statistics == (StatisticsConfig("AWS/DynamoDB", "SuccessfulRequestLatency", ("p99", "p99.9")),)
    assert plan.include_filters[0] == NamespaceFilter("AWS/DynamoDB", ("ReturnedBytes", "SuccessfulRequestLatency"))


def test_minimum_and_maximum_need_no_extra_statistic(tmp_path: Path) -> None:
    rules = write_rules(
        tmp_path, "amazonaws_com_AWS_Firehose_DeliveryToHttpEndpoint_DataFreshness.tagEqual('quantile', '1.0')"
    )
    plan = plan_stream(settings(), rules)
    assert plan.statistics == ()
    assert NamespaceFilter("AWS/Firehose", ("DeliveryToHttpEndpoint.DataFreshness",)) in plan.include_filters


def test_a_namespace_no_rule_reads_is_streamed_whole(tmp_path: Path) -> None:
    plan = plan_stream(settings(), write_rules(tmp_path, "amazonaws_com_AWS_DynamoDB_UserErrors_sum.sum(['x'])"))
    assert plan.include_filters[1:] == (
        NamespaceFilter("AWS/Firehose", None),
        NamespaceFilter("AWS/CloudWatch/MetricStreams", None),
    )


def test_an_unknown_punctuated_name_streams_its_namespace_whole_with_a_warning(tmp_path: Path) -> None:
    rules = write_rules(tmp_path, "amazonaws_com_AWS_Firehose_SomeNew_Metric_sum.sum(['x'])")
    plan = plan_stream(settings(), rules)
    assert NamespaceFilter("AWS/Firehose", None) in plan.include_filters
    (warning,) = plan.warnings
    assert "amazonaws_com_AWS_Firehose_SomeNew_Metric" in warning and "KNOWN_METRIC_NAMES" in warning
    assert "warning:" in plan.summary()


def test_a_metric_given_extra_statistics_is_streamed(tmp_path: Path) -> None:
    extra = [{"namespace": "AWS/DynamoDB", "metricName": "ReturnedItemCount", "statistics": ["p90"]}]
    rules = write_rules(tmp_path, "amazonaws_com_AWS_DynamoDB_UserErrors_sum.sum(['x'])")
    plan = plan_stream(settings({"additionalStatistics": extra}), rules)
    assert plan.include_filters[0] == NamespaceFilter("AWS/DynamoDB", ("ReturnedItemCount", "UserErrors"))
    assert plan.statistics == (StatisticsConfig("AWS/DynamoDB", "ReturnedItemCount", ("p90",)),)


def test_the_summary_counts_the_metrics_per_namespace() -> None:
    lines = plan_stream(settings()).summary().splitlines()
    assert lines[0] == (
        f"metric stream: AWS/DynamoDB: {len(read_by_rules('AWS/DynamoDB'))} metrics the rules read "
        "(streamAllMetrics=true sends every one)"
    )
    assert lines[-1].startswith("metric stream: AWS/DynamoDB SuccessfulRequestLatency: p50, p90, p95, p99, p99.9")


@pytest.mark.parametrize(("quantile", "statistic"), [("0.5", "p50"), ("0.999", "p99.9"), ("0.9999", "p99.99")])
def test_quantiles_name_their_percentile(quantile: str, statistic: str) -> None:
    assert percentile(Decimal(quantile)) == statistic


# -- what CloudFormation or the stacks would refuse --------------------------------------------------

ERRORS = {
    "quantiles by exclusion": (
        ["amazonaws_com_AWS_DynamoDB_SuccessfulRequestLatency.tagNotEqual('quantile', '0.5')"],
        {},
        "cannot tell which percentiles to stream",
    ),
    "quantiles by a pattern": (
        ["amazonaws_com_AWS_DynamoDB_SuccessfulRequestLatency.tagMatch('quantile', '0\\.9.*')"],
        {},
        "name them with tagEqual",
    ),
    "quantile out of range": (
        ["amazonaws_com_AWS_DynamoDB_SuccessfulRequestLatency.tagEqual('quantile', '99')"],
        {},
        "not a number from 0 to 1",
    ),
    "more than 20 statistics": (
        [
            "amazonaws_com_AWS_DynamoDB_SuccessfulRequestLatency"
            + "".join(f".tagEqual('quantile', '0.{n:02d}')" for n in range(10, 31))
        ],
        {},
        "CloudFormation takes at most 20 per metric",
    ),
    "more than 1000 names": (
        [" + ".join(f"amazonaws_com_AWS_DynamoDB_M{n}_sum" for n in range(1000))],
        {},
        "CloudWatch takes at most 1000",
    ),
}


@pytest.mark.parametrize(("expressions", "overrides", "fragment"), ERRORS.values(), ids=ERRORS.keys())
def test_a_plan_cloudformation_would_refuse_fails_synth_with_one_sentence(
    tmp_path: Path, expressions: list[str], overrides: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        plan_stream(settings(overrides), write_rules(tmp_path, *expressions))
    assert fragment in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_rule_file_that_is_not_yaml_fails_synth_with_one_sentence(tmp_path: Path) -> None:
    tmp_path.joinpath("broken.yaml").write_text("metricsRules: [unclosed\n")
    with pytest.raises(SettingsError, match=r"broken\.yaml is not valid YAML"):
        plan_stream(settings(), tmp_path)
