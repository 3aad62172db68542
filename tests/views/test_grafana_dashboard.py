"""The Grafana dashboard: its structure, and every panel's PromQL run against a real Prometheus."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from receiver.config import REPOSITORY_RULES
from receiver.rules import RuleHolder
from tests.views.test_prometheus_server import SERVICE, TABLES, PrometheusError, Stack, running_stack

DASHBOARD_PATH = Path(__file__).resolve().parents[2] / "dashboards" / "grafana" / "aws-dynamodb.json"
DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
ENDPOINT = "Orders"
LABEL_VALUES = re.compile(r"label_values\((?P<match>.+),\s*(?P<label>[a-zA-Z_][a-zA-Z0-9_]*)\)\s*$")
DERIVED_SELECTOR = re.compile(r"\b(aws_dynamodb_\w+)(\{[^}]*\})?")
METRIC_NAME = re.compile(r"\b(aws_dynamodb_\w+|metric_stream_receiver_\w+)")
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def load() -> dict[str, Any]:
    return json.loads(DASHBOARD_PATH.read_text(encoding="utf-8"))


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel that shows data, those inside collapsed rows included."""

    def walk(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for item in items:
            if item["type"] == "row":
                yield from walk(item.get("panels", []))
            else:
                yield item

    yield from walk(dashboard["panels"])


def targets(dashboard: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for panel in panels(dashboard):
        for target in panel["targets"]:
            yield panel, target


def variables(dashboard: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {variable["name"]: variable for variable in dashboard["templating"]["list"]}


def variable_query(variable: dict[str, Any]) -> str:
    query = variable["query"]
    return query["query"] if isinstance(query, dict) else query


def substitute(expr: str, **values: str) -> str:
    """Grafana's interpolation of ``$name`` and ``${name}`` for single-valued variables."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in values:
            raise AssertionError(f"{expr} uses ${name}, which the test does not know")
        return values[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", replace, expr)


def referenced_metrics(expr: str) -> set[str]:
    names = set()
    for name in METRIC_NAME.findall(expr):
        for suffix in HISTOGRAM_SUFFIXES:
            if name.startswith("metric_stream_receiver_") and name.endswith(suffix):
                name = name.removesuffix(suffix)
                break
        names.add(name)
    return names


def dynamodb_metrics() -> set[str]:
    rules = RuleHolder(REPOSITORY_RULES).current
    return {info.name for info in rules.metrics if info.layer == "AWS_DYNAMODB"}


# -- structure -------------------------------------------------------------------------


def test_the_dashboard_is_grafana_json_of_schema_39() -> None:
    dashboard = load()
    assert dashboard["schemaVersion"] == 39
    assert dashboard["uid"] and dashboard["title"]
    assert list(panels(dashboard))


def test_the_prometheus_data_source_is_a_variable() -> None:
    source = variables(load())["DS_PROMETHEUS"]
    assert source["type"] == "datasource"
    assert source["query"] == "prometheus"


def test_every_panel_and_target_uses_the_data_source_variable() -> None:
    dashboard = load()
    for panel in panels(dashboard):
        assert panel["datasource"] == DATASOURCE, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]


def test_every_panel_has_targets_with_an_expression_and_distinct_ref_ids() -> None:
    for panel in panels(load()):
        assert panel["targets"], panel["title"]
        assert all(target["expr"].strip() for target in panel["targets"]), panel["title"]
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(set(ref_ids)) == len(ref_ids), panel["title"]


def test_every_panel_has_a_unit() -> None:
    for panel in panels(load()):
        assert panel["fieldConfig"]["defaults"].get("unit"), panel["title"]


def test_panel_ids_are_distinct_and_panels_fit_the_grid() -> None:
    dashboard = load()

    def everything(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for item in items:
            yield item
            yield from everything(item.get("panels", []))

    ids = [item["id"] for item in everything(dashboard["panels"])]
    assert len(set(ids)) == len(ids)
    for item in everything(dashboard["panels"]):
        grid = item["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24, item["title"]


def test_service_and_endpoint_variables_are_label_values_queries() -> None:
    found = variables(load())
    for name in ("service", "endpoint"):
        variable = found[name]
        assert variable["type"] == "query"
        assert variable["datasource"] == DATASOURCE
        match = LABEL_VALUES.match(variable_query(variable))
        assert match is not None and match["label"] == name
    assert "$service" in variable_query(found["endpoint"])


def test_every_dynamodb_metric_the_rules_define_is_on_a_panel() -> None:
    shown = set().union(*(referenced_metrics(target["expr"]) for _, target in targets(load())))
    assert dynamodb_metrics() - shown == set()


def test_every_derived_metric_a_panel_names_exists_and_is_filtered_by_account() -> None:
    defined = dynamodb_metrics()
    for panel, target in targets(load()):
        for name, labels in DERIVED_SELECTOR.findall(target["expr"]):
            assert name in defined, f"{panel['title']}: {name}"
            assert 'service="$service"' in labels, f"{panel['title']}: {target['expr']}"


# -- against Prometheus ----------------------------------------------------------------


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("prometheus-grafana")) as running:
        yield running


def exposed_metrics(stack: Stack) -> set[str]:
    """Metric families the receiver exposes with at least one sample."""
    lines = [line for line in stack.exposition().splitlines() if line and not line.startswith("#")]
    return referenced_metrics(" ".join(re.split(r"[{ ]", line, maxsplit=1)[0] for line in lines))


@pytest.mark.slow
def test_the_variables_find_the_fed_account_and_its_tables(stack: Stack) -> None:
    found = variables(load())
    service = LABEL_VALUES.match(variable_query(found["service"]))
    assert stack.prometheus.label_values("service", service["match"]) == [SERVICE]
    endpoint = LABEL_VALUES.match(substitute(variable_query(found["endpoint"]), service=SERVICE))
    assert stack.prometheus.label_values("endpoint", endpoint["match"]) == sorted(TABLES)


@pytest.mark.slow
def test_every_metric_the_dashboard_names_has_data_in_the_test_prometheus(stack: Stack) -> None:
    # Without this, the next test's "has data, so returns series" could check nothing.
    named = set().union(*(referenced_metrics(target["expr"]) for _, target in targets(load())))
    assert named - exposed_metrics(stack) == set()


@pytest.mark.slow
def test_every_panel_query_runs_and_returns_series_for_metrics_with_data(stack: Stack) -> None:
    with_data = exposed_metrics(stack)
    problems = []
    for panel, target in targets(load()):
        expr = substitute(target["expr"], service=SERVICE, endpoint=ENDPOINT, __rate_interval="1m")
        try:
            if target.get("instant"):
                result = stack.prometheus.query(expr)
            else:
                result = stack.prometheus.query_range(expr, seconds=120)
        except PrometheusError as exc:
            problems.append(f"{panel['title']} {target['refId']}: {exc}")
            continue
        if referenced_metrics(expr) <= with_data and not result:
            problems.append(f"{panel['title']} {target['refId']}: no series for {expr}")
    assert problems == []
