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
from tests.views.test_prometheus_server import (
    INDEX,
    REPLICATED_TABLE,
    SERVICE,
    TABLES,
    PrometheusError,
    Stack,
    running_stack,
)

DASHBOARD_PATH = Path(__file__).resolve().parents[2] / "dashboards" / "grafana" / "aws-dynamodb.json"
DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
ENDPOINT = REPLICATED_TABLE
"""The table the test gives $endpoint: one with every kind of data (replicas, stream, an index being built)."""
LABEL_VALUES = re.compile(r"label_values\((?P<match>.+),\s*(?P<label>[a-zA-Z_][a-zA-Z0-9_]*)\)\s*$")
DERIVED_SELECTOR = re.compile(r"\b(aws_dynamodb_\w+)(\{[^}]*\})?")
METRIC_NAME = re.compile(r"\b(aws_dynamodb_\w+|metric_stream_receiver_\w+)")
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
VARIABLE = re.compile(r"\$\{(?P<braced>\w+)(?::(?P<format>\w+))?\}|\$(?P<plain>\w+)")
GRAFANA_REGEX_SPECIALS = re.compile(r"[\\^$*+?.()|\[\]{}/]")


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


def substitute(expr: str, *, partial: bool = False, **values: str) -> str:
    """Grafana's interpolation of ``$name``, ``${name}`` and ``${name:regex}`` for
    single-valued variables (``:regex`` escapes as Grafana's regex format does). With
    ``partial``, variables not given are left as they are."""

    def replace(match: re.Match[str]) -> str:
        name = match["braced"] or match["plain"]
        if name not in values:
            if partial:
                return match[0]
            raise AssertionError(f"{expr} uses ${name}, which the test does not know")
        if match["format"] is None:
            return values[name]
        if match["format"] == "regex":
            return GRAFANA_REGEX_SPECIALS.sub(lambda special: "\\" + special[0], values[name])
        raise AssertionError(f"{expr} formats ${name} as {match['format']}, which the test does not know")

    return VARIABLE.sub(replace, expr)


def custom_values(variable: dict[str, Any]) -> list[str]:
    """A custom variable's values, as Grafana reads its comma-separated query."""
    assert variable["type"] == "custom", variable["name"]
    return [value.strip() for value in variable["query"].split(",")]


def repeats(dashboard: dict[str, Any], panel: dict[str, Any]) -> list[dict[str, str]]:
    """The values a panel's targets are run with beside the data-source and table
    variables: a panel repeated by a variable is the panel once per value (with every value
    when All is selected, the variable's default), one not repeated is itself."""
    name = panel.get("repeat")
    if not name:
        return [{}]
    return [{name: value} for value in custom_values(variables(dashboard)[name])]


def expressions(dashboard: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any], str, dict[str, str]]]:
    """Every expression Grafana runs for the dashboard: each target of each panel, once per
    repetition, with the repeat variable filled in (the others left as they are)."""
    for panel, target in targets(dashboard):
        for values in repeats(dashboard, panel):
            yield panel, target, substitute(target["expr"], partial=True, **values), values


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


def test_the_operation_variable_is_a_custom_list_of_every_operation_all_selected() -> None:
    operation = variables(load())["operation"]
    values = custom_values(operation)
    assert len(set(values)) == len(values) and all(re.fullmatch(r"[a-z_]+", value) for value in values)
    assert operation["multi"] and operation["includeAll"]
    assert operation["current"]["value"] == ["$__all"]
    assert [option["value"] for option in operation["options"]] == ["$__all", *values]


def test_a_panel_whose_queries_use_a_custom_variable_repeats_by_it() -> None:
    # A multi-valued variable in a query of a panel that does not repeat by it would run
    # once with every value at once, which the metric names cannot take.
    dashboard = load()
    custom = {name for name, variable in variables(dashboard).items() if variable["type"] == "custom"}
    for panel, target in targets(dashboard):
        used = {match["braced"] or match["plain"] for match in VARIABLE.finditer(target["expr"])}
        for name in used & custom:
            assert panel.get("repeat") == name, f"{panel['title']} uses ${name} without repeating by it"


def test_every_dynamodb_metric_the_rules_define_is_on_a_panel() -> None:
    # Metric names as the queries Grafana runs spell them: a repeated panel's once per value
    # of its variable, so a value missing from the variable leaves its metrics off.
    shown = set().union(*(referenced_metrics(expr) for _, _, expr, _ in expressions(load())))
    assert dynamodb_metrics() - shown == set()


def test_every_derived_metric_a_panel_names_exists_and_is_filtered_by_account() -> None:
    defined = dynamodb_metrics()
    for panel, _, expr, _ in expressions(load()):
        for name, labels in DERIVED_SELECTOR.findall(expr):
            assert name in defined, f"{panel['title']}: {name}"
            assert 'service="$service"' in labels, f"{panel['title']}: {expr}"


def test_panels_do_not_overlap_and_collapsed_rows_hold_their_panels() -> None:
    def cells(item: dict[str, Any]) -> set[tuple[int, int]]:
        grid = item["gridPos"]
        return {
            (x, y) for x in range(grid["x"], grid["x"] + grid["w"]) for y in range(grid["y"], grid["y"] + grid["h"])
        }

    def disjoint(items: list[dict[str, Any]]) -> None:
        taken: dict[tuple[int, int], str] = {}
        for item in items:
            for cell in cells(item):
                assert cell not in taken, f"{item['title']} overlaps {taken[cell]}"
                taken[cell] = item["title"]

    top = load()["panels"]
    disjoint(top)
    ordered = sorted(top, key=lambda item: (item["gridPos"]["y"], item["gridPos"]["x"]))
    for index, item in enumerate(ordered):
        if item["type"] != "row":
            continue
        if item["collapsed"]:
            # Grafana gives a row every panel below it up to the next row: a collapsed one
            # keeps its own inside, so the next item must be a row.
            assert index + 1 == len(ordered) or ordered[index + 1]["type"] == "row", item["title"]
            disjoint(item["panels"])
            assert all(panel["gridPos"]["y"] > item["gridPos"]["y"] for panel in item["panels"]), item["title"]
        else:
            assert item["panels"] == [], item["title"]


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
    # Tables and indexes; not the "<table>→<region>" entities of replication by receiving region.
    assert stack.prometheus.label_values("endpoint", endpoint["match"]) == sorted((*TABLES, INDEX))


@pytest.mark.slow
def test_every_metric_the_dashboard_names_has_data_in_the_test_prometheus(stack: Stack) -> None:
    # Without this, the next test's "has data, so returns series" could check nothing.
    named = set().union(*(referenced_metrics(expr) for _, _, expr, _ in expressions(load())))
    assert named - exposed_metrics(stack) == set()


@pytest.mark.slow
def test_every_panel_query_runs_and_returns_series_for_metrics_with_data(stack: Stack) -> None:
    with_data = exposed_metrics(stack)
    problems = []
    for panel, target, expr, repeated in expressions(load()):
        expr = substitute(expr, service=SERVICE, endpoint=ENDPOINT, __rate_interval="1m")
        where = f"{panel['title']} {target['refId']}{''.join(f' {v}' for v in repeated.values())}"
        try:
            if target.get("instant"):
                result = stack.prometheus.query(expr)
            else:
                result = stack.prometheus.query_range(expr, seconds=120)
        except PrometheusError as exc:
            problems.append(f"{where}: {exc}")
            continue
        if referenced_metrics(expr) <= with_data and not result:
            problems.append(f"{where}: no series for {expr}")
    assert problems == []


@pytest.mark.slow
def test_legends_name_the_region_of_every_table_series(stack: Stack) -> None:
    # Endpoint series carry the region they report from; a legend that drops it would
    # show a table's regions as look-alike lines.
    problems = []
    for panel, target, expr, _ in expressions(load()):
        if "aws_dynamodb_endpoint_" not in expr or target.get("format") == "table":
            continue
        result = stack.prometheus.query(substitute(expr, service=SERVICE, endpoint=ENDPOINT, __rate_interval="1m"))
        if any("region" in series["metric"] for series in result) and "{{region}}" not in target["legendFormat"]:
            problems.append(f"{panel['title']} {target['refId']}: {target['legendFormat']!r}")
    assert problems == []
