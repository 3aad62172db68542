"""A table per region (issue 16): the account page's row per region of a multi-region table,
and the table page's region switch, in Chromium.

A receiver of its own holds the regional account (fill.py): "Players" and its index
"Players/ByScore" report from two regions, "Sessions" from one. What the page shows is
compared with what the query API answers for the same region, so the tests hold whatever
the rules compute.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import pytest_asyncio
from playwright.async_api import expect

from tests.apps import AppClient, receiver_app, serve_app
from tests.dashboard.conftest import Tab, query_points, screenshot_pages, show, shown
from tests.dashboard.fill import REGIONAL_ACCOUNT, REGIONAL_SERVICE, TABLE_REGIONS, current_minute_ms, regional_account

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

PREFIX = "aws_dynamodb_endpoint_"
ACCOUNT_HASH = f"#/account/{quote(REGIONAL_SERVICE, safe='')}"
WEST, EAST = TABLE_REGIONS

# Each table of numbers' rows: id, and each cell's value and text.
ROWS = """(table) => [...document.querySelectorAll(`table[data-table="${table}"] tbody tr`)].map((row) => ({
  id: row.dataset.row,
  cells: Object.fromEntries([...row.cells].map((cell) => [cell.dataset.column,
    { value: cell.dataset.value, text: cell.textContent }])),
}))"""
# Every line drawn: its chart, metric, entity (when another than the page's) and vertices.
LINES = """() => [...document.querySelectorAll("figure.chart path.line")].map((path) => ({
  chart: path.closest("figure").dataset.chart,
  metric: path.dataset.metric,
  endpoint: path.dataset.endpoint ?? null,
  count: (path.getAttribute("d").match(/[ML]/g) || []).length,
}))"""
# Where a line's newest vertex is on the screen.
LAST_VERTEX = (
    "(path) => { const [x, y] = path.getAttribute('d').trim().split(/[MLh]/).filter(Boolean).at(-1).split(' ');"
    " const box = path.ownerSVGElement.getBoundingClientRect(); return [box.left + Number(x), box.top + Number(y)]; }"
)


def table_hash(endpoint: str, query: str = "") -> str:
    return f"#/table/{quote(REGIONAL_SERVICE, safe='')}/{quote(endpoint, safe='')}{query}"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def receiver() -> AsyncIterator[AppClient]:
    async with serve_app(receiver_app()) as client:
        await client.deliver(regional_account(current_minute_ms()))
        yield client


async def api_points(receiver: AppClient, metric: str, endpoint: str, region: str | None) -> list[list[float]]:
    return await query_points(receiver, metric, REGIONAL_SERVICE, endpoint, region=region)


def region_switch(tab: Tab):
    return tab.page.get_by_role("navigation", name="Region")


async def assert_every_line_is_the_region(tab: Tab, receiver: AppClient, endpoint: str, region: str | None) -> None:
    lines = await tab.page.evaluate(LINES)
    assert lines
    for line in lines:
        points = await api_points(receiver, line["metric"], line["endpoint"] or endpoint, region)
        assert line["count"] == len(points), line


async def shown_consumed_read(tab: Tab) -> float:
    """The newest consumed read rate of the read capacity chart, as its pointer tip says."""
    chart = tab.page.locator('figure[data-chart="read-capacity"]')
    path = chart.locator(f'path[data-metric="{PREFIX}consumed_read_capacity_units"]')
    x, y = await path.evaluate(LAST_VERTEX)
    await tab.page.mouse.move(x, y)
    tip = chart.locator(".tip")
    await expect(tip).to_be_visible()
    found = re.search(r"consumed: ([\d.,]+)", await tip.inner_text())
    assert found is not None
    return float(found.group(1).replace(",", ""))


async def test_the_account_lists_a_multi_region_table_once_per_region(tab, receiver):
    await show(tab, receiver, ACCOUNT_HASH)
    rows = await tab.page.evaluate(ROWS, "tables")
    # By name: a multi-region table's merged row, then its regions; a single-region table once.
    assert [row["id"] for row in rows] == [
        "Players",
        f"Players@{WEST}",
        f"Players@{EAST}",
        "Players/ByScore",
        f"Players/ByScore@{WEST}",
        f"Players/ByScore@{EAST}",
        "Sessions",
    ]
    assert [row["cells"]["region"]["text"] for row in rows] == [
        "all regions", WEST, EAST, "all regions", WEST, EAST, WEST
    ]  # fmt: skip
    columns = {
        "consumed_read": (["consumed_read_capacity_units"], lambda values: sum(values) / len(values)),
        "provisioned_read": (["provisioned_read_capacity_units"], lambda values: values[-1]),
        "throttled": (["read_throttled_requests", "write_throttled_requests"], sum),
    }
    for row in rows:
        endpoint, _, region = row["id"].partition("@")
        for column, (metrics, reduce) in columns.items():
            parts = []
            for metric in metrics:
                points = await api_points(receiver, PREFIX + metric, endpoint, region or None)
                if points:
                    parts.append(reduce([value for _, value in points]))
            shown = row["cells"][column]["value"]
            if parts:
                assert float(shown) == pytest.approx(sum(parts), rel=1e-12), (row["id"], column)
            else:
                assert shown == "", (row["id"], column)
    # The regions' own values: eu-west-1 reads more, and throttles where us-east-1 does not.
    cells = {row["id"]: row["cells"] for row in rows}
    assert float(cells[f"Players@{WEST}"]["consumed_read"]["value"]) > float(
        cells[f"Players@{EAST}"]["consumed_read"]["value"]
    )
    assert float(cells[f"Players@{WEST}"]["throttled"]["value"]) > 0
    assert cells[f"Players@{EAST}"]["throttled"]["value"] == ""
    assert tab.errors == []


async def test_the_rows_of_regions_sort_by_a_clicked_column(tab, receiver):
    await show(tab, receiver, ACCOUNT_HASH)
    table = tab.page.locator('table[data-table="tables"]')

    async def column(key: str) -> list[str]:
        return await table.locator(f'tbody td[data-column="{key}"]').evaluate_all(
            "(cells) => cells.map((cell) => cell.dataset.value)"
        )

    header = table.locator('th[data-column="consumed_read"]')
    await header.get_by_role("button").click()
    await expect(header).to_have_attribute("aria-sort", "descending")
    values = [float(value) for value in await column("consumed_read")]
    assert values == sorted(values, reverse=True)
    assert len(values) == 7

    header = table.locator('th[data-column="region"]')
    await header.get_by_role("button").click()
    await expect(header).to_have_attribute("aria-sort", "ascending")
    # The merged rows first, then each region's.
    assert await column("region") == ["", "", WEST, WEST, WEST, EAST, EAST]


async def test_a_region_row_leads_to_the_table_in_that_region(tab, receiver):
    await show(tab, receiver, ACCOUNT_HASH)
    await tab.page.locator(f'tr[data-row="Players@{EAST}"]').get_by_role("link", name="Players").click()
    await shown(tab)
    assert urlsplit(tab.page.url).fragment == table_hash("Players", f"?region={EAST}")[1:]
    await expect(tab.page.get_by_role("heading", level=1)).to_contain_text(EAST)
    await expect(region_switch(tab).locator('a[aria-current="true"]')).to_have_text(EAST)


async def test_the_switch_charts_the_values_of_the_chosen_region(tab, receiver):
    await show(tab, receiver, table_hash("Players"))
    switch = region_switch(tab)
    await expect(switch.get_by_role("link")).to_have_text(["all regions", *TABLE_REGIONS])
    await expect(switch.locator('a[aria-current="true"]')).to_have_text("all regions")
    await assert_every_line_is_the_region(tab, receiver, "Players", None)
    merged = await api_points(receiver, f"{PREFIX}consumed_read_capacity_units", "Players", None)
    assert await shown_consumed_read(tab) == pytest.approx(merged[-1][1], rel=5e-3)

    queried: list[dict[str, list[str]]] = []
    tab.page.on(
        "request",
        lambda request: (
            queried.append(parse_qs(urlsplit(request.url).query)) if "/api/v1/query" in request.url else None
        ),
    )
    await switch.get_by_role("link", name=WEST).click()
    await shown(tab)
    assert urlsplit(tab.page.url).fragment == table_hash("Players", f"?region={WEST}")[1:]
    await expect(switch.locator('a[aria-current="true"]')).to_have_text(WEST)
    # Every chart of the page was queried again, for the region alone.
    assert queried
    assert all(query.get("region") == [WEST] for query in queried), queried
    await assert_every_line_is_the_region(tab, receiver, "Players", WEST)
    west = await api_points(receiver, f"{PREFIX}consumed_read_capacity_units", "Players", WEST)
    assert west[-1][1] != pytest.approx(merged[-1][1], rel=5e-3)
    assert await shown_consumed_read(tab) == pytest.approx(west[-1][1], rel=5e-3)
    # eu-west-1 replicates to us-east-1 only; the other direction is us-east-1's.
    replication = {
        line["endpoint"] for line in await tab.page.evaluate(LINES) if line["chart"] == "replication-latency"
    }
    assert replication == {None, f"Players→{EAST}"}
    assert tab.errors == []


async def test_an_index_of_a_multi_region_table_has_the_switch_too(tab, receiver):
    await show(tab, receiver, table_hash("Players/ByScore", f"?region={EAST}"))
    await expect(region_switch(tab).locator('a[aria-current="true"]')).to_have_text(EAST)
    await assert_every_line_is_the_region(tab, receiver, "Players/ByScore", EAST)


async def test_a_single_region_table_has_no_switch_and_names_its_region(tab, receiver):
    await show(tab, receiver, table_hash("Sessions"))
    await expect(tab.page.get_by_role("heading", level=1)).to_contain_text(f"account {REGIONAL_ACCOUNT} · {WEST}")
    await expect(tab.page.locator('figure[data-chart="read-capacity"]')).to_have_attribute("data-state", "data")
    await expect(region_switch(tab)).to_have_count(0)
    assert tab.errors == []


async def test_an_address_naming_a_region_the_table_does_not_report_from_says_so(tab, receiver):
    await show(tab, receiver, table_hash("Sessions", f"?region={EAST}"))
    # The switch is there to go back to the table's values; the charts have none for the region.
    switch = region_switch(tab)
    await expect(switch.get_by_role("link")).to_have_text(["all regions", WEST, EAST])
    await expect(switch.locator('a[aria-current="true"]')).to_have_text(EAST)
    await expect(tab.page.locator('figure[data-chart="read-capacity"]')).to_have_attribute("data-state", "empty")


async def test_the_address_keeps_the_region(tab, receiver):
    await show(tab, receiver, table_hash("Players", f"?region={EAST}"))
    switch = region_switch(tab)
    await expect(switch.locator('a[aria-current="true"]')).to_have_text(EAST)
    # Another range keeps the region, and so does a reload.
    await tab.page.locator("#ranges").get_by_role("link", name="6h").click()
    await shown(tab)
    assert urlsplit(tab.page.url).fragment == table_hash("Players", f"?range=6h&region={EAST}")[1:]
    await tab.page.reload()
    await shown(tab)
    await expect(switch.locator('a[aria-current="true"]')).to_have_text(EAST)
    await expect(tab.page.locator('#ranges a[aria-current="true"]')).to_have_text("6h")
    east = await api_points(receiver, f"{PREFIX}consumed_read_capacity_units", "Players", EAST)
    assert await shown_consumed_read(tab) == pytest.approx(east[-1][1], rel=5e-3)
    # The table's crumb keeps it; the account's, whose values span every region, does not.
    crumbs = tab.page.locator("#crumbs")
    await expect(crumbs.get_by_role("link", name="Players")).to_have_attribute(
        "href", table_hash("Players", f"?range=6h&region={EAST}")
    )
    await expect(crumbs.get_by_role("link", name=REGIONAL_ACCOUNT)).to_have_attribute(
        "href", ACCOUNT_HASH + "?range=6h"
    )
    # All regions again: the address names none.
    await switch.get_by_role("link", name="all regions").click()
    await shown(tab)
    assert urlsplit(tab.page.url).fragment == table_hash("Players", "?range=6h")[1:]
    assert tab.errors == []


async def test_the_region_pages_log_no_errors_and_are_screenshotted(tab, receiver):
    pages = {
        "account-regions": ACCOUNT_HASH,
        "table-all-regions": table_hash("Players"),
        "table-one-region": table_hash("Players", f"?region={WEST}"),
    }
    await screenshot_pages(tab, receiver, pages)
