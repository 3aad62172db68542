"""The table page in depth (issue 16): every operation, why throttled, replication, streams,
Kinesis change data capture and index builds, in Chromium.

A receiver of its own holds the busy account and the deep one (fill.py): "Ledger" reports
everything, "Plain" nothing of it. What the page shows is compared with what the query API
answers, so the tests hold whatever the rules compute.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import quote

import pytest
import pytest_asyncio
from playwright.async_api import expect

from tests.apps import AppClient, receiver_app, serve_app
from tests.dashboard.conftest import Tab, query_points, screenshot_pages, show
from tests.dashboard.fill import (
    BUILDING_INDEX,
    DEEP_SERVICE,
    RECEIVING_REGIONS,
    SERVICE,
    busy_account,
    current_minute_ms,
    deep_account,
)

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

PREFIX = "aws_dynamodb_endpoint_"
OPERATIONS = [
    "get", "put", "query", "scan", "update", "delete", "batch_get", "batch_write", "transact_get",
    "transact_write", "execute_statement", "batch_execute_statement", "execute_transaction", "get_records",
]  # fmt: skip
CAUSES = {
    "provisioned": "provisioned_throughput_throttle_events",
    "account_limit": "account_limit_throttle_events",
    "key_range": "key_range_throughput_throttle_events",
    "max_on_demand": "max_on_demand_throughput_throttle_events",
}
FEATURE_PANELS = {"replication", "stream", "kinesis", "index-builds"}
IN_DEPTH_PANELS = {"operations", "why-throttled"} | FEATURE_PANELS


def table_hash(service: str, endpoint: str) -> str:
    return f"#/table/{quote(service, safe='')}/{quote(endpoint, safe='')}"


LEDGER = table_hash(DEEP_SERVICE, "Ledger")
PLAIN = table_hash(DEEP_SERVICE, "Plain")

# The charts of the page (or of one panel): each series' metric and entity, and the
# vertices its line has.
CHARTS = """(panel) => [...document.querySelectorAll(
    panel ? `section[data-panel="${panel}"] figure.chart` : "figure.chart")].map((figure) => ({
  id: figure.dataset.chart,
  state: figure.dataset.state,
  series: [...figure.querySelectorAll(".legend li")].map((item) => ({
    metric: item.dataset.metric, endpoint: item.dataset.endpoint ?? null, label: item.textContent })),
  vertices: [...figure.querySelectorAll("path.line")].map((path) => ({
    metric: path.dataset.metric, endpoint: path.dataset.endpoint ?? null,
    count: (path.getAttribute("d").match(/[ML]/g) || []).length })),
}))"""
PANELS = "() => [...document.querySelectorAll('section[data-panel]')].map((section) => section.dataset.panel)"
ROWS = """(table) => [...document.querySelectorAll(`table[data-table="${table}"] tbody tr`)].map((row) => ({
  id: row.dataset.row,
  cells: Object.fromEntries([...row.cells].map((cell) => [cell.dataset.column,
    { value: cell.dataset.value, text: cell.textContent }])),
}))"""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def receiver() -> AsyncIterator[AppClient]:
    async with serve_app(receiver_app()) as client:
        minute_ms = current_minute_ms()
        await client.deliver(busy_account(minute_ms) + deep_account(minute_ms))
        yield client


async def api_points(receiver: AppClient, metric: str, service: str, endpoint: str | None) -> list[list[float]]:
    return await query_points(receiver, metric, service, endpoint)


async def assert_every_line_is_the_api(tab: Tab, receiver: AppClient, service: str, endpoint: str, panel: str) -> list:
    charts = await tab.page.evaluate(CHARTS, panel)
    assert charts, panel
    for chart in charts:
        assert chart["state"] == "data", chart
        for line in chart["vertices"]:
            points = await api_points(receiver, line["metric"], service, line["endpoint"] or endpoint)
            assert line["count"] == len(points), (chart["id"], line)
    return charts


async def test_the_in_depth_panels_appear_for_a_table_that_reports_them(tab, receiver):
    await show(tab, receiver, LEDGER)
    assert IN_DEPTH_PANELS <= set(await tab.page.evaluate(PANELS))
    for panel in IN_DEPTH_PANELS:
        await assert_every_line_is_the_api(tab, receiver, DEEP_SERVICE, "Ledger", panel)
    assert tab.errors == []


@pytest.mark.parametrize(
    ("hash", "absent"),
    [(PLAIN, IN_DEPTH_PANELS), (table_hash(SERVICE, "GameScores"), FEATURE_PANELS)],
)
async def test_the_in_depth_panels_are_absent_for_a_table_that_does_not_report_them(tab, receiver, hash, absent):
    await show(tab, receiver, hash)
    # The fixed groups are there; the panels of what the table does not report are not.
    await expect(tab.page.locator('figure[data-chart="read-capacity"]')).to_have_attribute("data-state", "data")
    assert not absent & set(await tab.page.evaluate(PANELS))
    assert tab.errors == []


async def test_every_operation_that_reported_has_a_row_equal_to_the_api(tab, receiver):
    await show(tab, receiver, LEDGER)
    rows = {row["id"]: row["cells"] for row in await tab.page.evaluate(ROWS, "operations")}
    reported = set()
    for operation in OPERATIONS:
        latency, p99, throttled, errors = [
            await api_points(receiver, f"{PREFIX}{operation}_{suffix}", DEEP_SERVICE, "Ledger")
            for suffix in (
                "successful_request_latency",
                "successful_request_latency_p99",
                "throttled_requests",
                "system_errors",
            )
        ]
        if not (latency or p99 or throttled or errors):
            continue
        reported.add(operation)
        cells = rows[operation]
        expected = {
            "latency": sum(v for _, v in latency) / len(latency) if latency else None,
            "p99": max(v for _, v in p99) if p99 else None,
            "throttled": sum(v for _, v in throttled) if throttled else None,
            "system_errors": sum(v for _, v in errors) if errors else None,
        }
        for column, value in expected.items():
            shown = cells[column]["value"]
            if value is None:
                assert shown == "", (operation, column)
            else:
                assert float(shown) == pytest.approx(value, rel=1e-12), (operation, column)
    # Operations without data have no row; those beyond the fixed four with latency have a chart.
    assert set(rows) == reported
    assert {"update", "delete", "transact_write", "execute_statement", "get_records"} <= reported
    charts = {chart["id"] for chart in await tab.page.evaluate(CHARTS, "operations")}
    assert {"update-latency", "delete-latency", "transact_write-latency", "execute_statement-latency"} <= charts
    assert "batch_get-latency" not in charts
    # GetRecords' latency is the stream panel's.
    assert "get_records-latency" not in charts
    assert "stream-latency" in {chart["id"] for chart in await tab.page.evaluate(CHARTS, "stream")}


async def expected_dominant(receiver: AppClient, service: str, endpoint: str) -> dict[str, set[str]]:
    """Each bucket's causes with the most throttle events (read + write), from the API."""
    totals: dict[str, dict[str, float]] = {}
    for cause, suffix in CAUSES.items():
        for direction in ("read", "write"):
            for t, value in await api_points(receiver, f"{PREFIX}{direction}_{suffix}", service, endpoint):
                bucket = totals.setdefault(str(int(t)), {})
                bucket[cause] = bucket.get(cause, 0.0) + value
    return {t: {cause for cause, n in causes.items() if n == max(causes.values())} for t, causes in totals.items()}


@pytest.mark.parametrize(("service", "endpoint"), [(DEEP_SERVICE, "Ledger"), (SERVICE, "GameScores")])
async def test_why_throttled_names_the_dominant_cause_of_each_throttled_minute(tab, receiver, service, endpoint):
    await show(tab, receiver, table_hash(service, endpoint))
    panel = tab.page.locator('section[data-panel="why-throttled"]')
    # One line per cause: what it means and what fixes it.
    for cause, fix in [
        ("provisioned", "auto scaling"),
        ("account_limit", "account quota"),
        ("key_range", "partition key"),
        ("max_on_demand", "on-demand maximum"),
    ]:
        await expect(panel.locator(f'li[data-cause="{cause}"]')).to_contain_text(fix)
    rows = await tab.page.evaluate(ROWS, "throttled-buckets")
    expected = await expected_dominant(receiver, service, endpoint)
    assert rows
    assert {row["id"] for row in rows} >= set(expected)
    for row in rows:
        assert set(row["cells"]["dominant"]["value"].split()) == expected.get(row["id"], set()), row
    if endpoint == "Ledger":
        # fill.py's three throttled minutes, oldest first, each led by one write cause.
        oldest_first = [row["cells"]["dominant"]["text"] for row in sorted(rows, key=lambda row: int(row["id"]))]
        assert oldest_first == ["provisioned throughput (write)", "account limit (write)", "max on-demand (write)"]
    await assert_every_line_is_the_api(tab, receiver, service, endpoint, "why-throttled")


async def test_replication_draws_a_series_for_each_receiving_region(tab, receiver):
    entities = await (await receiver.get("/api/v1/entities")).json()
    endpoints = next(entry["endpoints"] for entry in entities["services"] if entry["name"] == DEEP_SERVICE)
    regions = {f"Ledger→{region}" for region in RECEIVING_REGIONS}
    assert regions <= set(endpoints)

    await show(tab, receiver, LEDGER)
    charts = {chart["id"]: chart for chart in await tab.page.evaluate(CHARTS, "replication")}
    for chart_id in ("replication-latency", "pending-replication"):
        series = charts[chart_id]["series"]
        assert {item["endpoint"] for item in series} == regions | {None}, series
        assert {item["label"] for item in series if item["endpoint"]} == {
            f"to {region}" for region in RECEIVING_REGIONS
        }
        assert all(line["count"] > 0 for line in charts[chart_id]["vertices"])


async def test_the_account_lists_tables_and_indexes_but_not_receiving_regions(tab, receiver):
    await show(tab, receiver, f"#/account/{quote(DEEP_SERVICE, safe='')}")
    rows = tab.page.locator('table[data-table="tables"] tbody td[data-column="endpoint"]')
    await expect(rows).to_have_text(sorted(["Ledger", BUILDING_INDEX, "Plain"]))
    panels = set(await tab.page.evaluate(PANELS))
    assert {"operations", "why-throttled"} <= panels
    for panel in panels:
        await assert_every_line_is_the_api(tab, receiver, DEEP_SERVICE, None, panel)
    assert tab.errors == []


async def test_an_index_page_shows_its_own_build(tab, receiver):
    await show(tab, receiver, table_hash(DEEP_SERVICE, BUILDING_INDEX))
    charts = await assert_every_line_is_the_api(tab, receiver, DEEP_SERVICE, BUILDING_INDEX, "index-builds")
    progress = next(chart for chart in charts if chart["id"] == "index-build-progress")
    assert [item["label"] for item in progress["series"]] == ["ByDate"]
    assert "replication" not in await tab.page.evaluate(PANELS)


async def test_the_in_depth_pages_log_no_errors_and_are_screenshotted(tab, receiver):
    pages = {
        "table-in-depth": LEDGER,
        "table-plain": PLAIN,
        "account-in-depth": f"#/account/{quote(DEEP_SERVICE, safe='')}",
        "table-in-depth-7d": LEDGER + "?range=7d",
    }
    await screenshot_pages(tab, receiver, pages)
