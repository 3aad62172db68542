"""The dashboard in Debian's Chromium, against a receiver filled with known samples.

What the page shows is compared with what the query API answers for the same range, so the
tests hold whatever the rules compute.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from playwright.async_api import Route, expect

from tests.apps import AppClient, receiver_app, serve_app
from tests.dashboard.conftest import Tab, query_points, screenshot_pages, show, shown
from tests.dashboard.fill import ACCOUNT, INDEX, OTHER_ACCOUNT, SERVICE, current_minute_ms, quiet_account

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

EMPTY = "no data yet — is the metric stream delivering?"
ACCOUNT_HASH = f"#/account/{quote(SERVICE, safe='')}"
TABLE_HASH = f"#/table/{quote(SERVICE, safe='')}/GameScores"
HOUR = 3600
WEEK = 7 * 86400

# Every chart of the page: its series (from the legend), the vertices drawn per series,
# the axis units and the empty-state text.
CHARTS = """() => [...document.querySelectorAll("figure.chart")].map((figure) => ({
  id: figure.dataset.chart,
  state: figure.dataset.state,
  metrics: [...figure.querySelectorAll(".legend li")].map((item) => item.dataset.metric),
  vertices: Object.fromEntries([...figure.querySelectorAll("path.line")].map(
    (path) => [path.dataset.metric, (path.getAttribute("d").match(/[ML]/g) || []).length])),
  yUnit: figure.querySelector(".y-unit")?.textContent ?? null,
  xUnit: figure.querySelector(".x-unit")?.textContent ?? null,
  message: figure.querySelector(".plot p")?.textContent ?? null,
}))"""


async def api_points(
    receiver: AppClient, metric: str, endpoint: str | None = None, seconds: int = HOUR, step_s: int = 60
) -> list[list[float]]:
    return await query_points(receiver, metric, SERVICE, endpoint, seconds=seconds, step_s=step_s)


async def api_units(receiver: AppClient) -> dict[str, str]:
    response = await receiver.get("/api/v1/metrics")
    return {metric["name"]: metric["unit"] for metric in (await response.json())["metrics"]}


def heading(tab: Tab, name: str):
    return tab.page.get_by_role("heading", level=1, name=name)


async def test_the_accounts_page_lists_every_account(tab, receiver):
    await show(tab, receiver, "")
    accounts = tab.page.locator('table[data-table="accounts"] td[data-column="account"]')
    await expect(accounts).to_have_text([ACCOUNT, OTHER_ACCOUNT])
    assert tab.errors == []


async def test_services_of_other_layers_are_left_out(tab, receiver):
    async def add_a_bucket(route: Route) -> None:
        response = await route.fetch()
        body = await response.json()
        body["services"].append({"name": "aws-s3::123456789012", "layer": "AWS_S3", "endpoints": ["logs"]})
        await route.fulfill(response=response, json=body)

    await tab.page.route(re.compile(r"/api/v1/entities$"), add_a_bucket)
    await show(tab, receiver, "")
    accounts = tab.page.locator('table[data-table="accounts"] tbody tr')
    await expect(accounts).to_have_count(2)
    await expect(tab.page.locator('tr[data-row="aws-s3::123456789012"]')).to_have_count(0)


async def test_links_lead_from_the_accounts_to_an_account_and_a_table(tab, receiver):
    await show(tab, receiver, "")
    await tab.page.get_by_role("link", name=ACCOUNT, exact=True).click()
    await expect(heading(tab, f"Account {ACCOUNT}")).to_be_visible()
    assert urlsplit(tab.page.url).fragment == ACCOUNT_HASH[1:]

    await tab.page.locator('table[data-table="tables"]').get_by_role("link", name="GameScores", exact=True).click()
    await expect(heading(tab, "Table GameScores")).to_be_visible()
    assert urlsplit(tab.page.url).fragment == TABLE_HASH[1:]

    await tab.page.locator("#crumbs").get_by_role("link", name=ACCOUNT).click()
    await expect(heading(tab, f"Account {ACCOUNT}")).to_be_visible()
    assert tab.errors == []


async def test_an_index_page_is_reached_by_its_encoded_name(tab, receiver):
    await show(tab, receiver, ACCOUNT_HASH)
    await tab.page.get_by_role("link", name=INDEX, exact=True).click()
    await expect(heading(tab, "Index TopScores of table GameScores")).to_be_visible()
    assert urlsplit(tab.page.url).fragment.endswith("/GameScores%2FTopScores")
    await expect(tab.page.locator('figure[data-chart="read-capacity"]')).to_have_attribute("data-state", "data")


@pytest.mark.parametrize(("hash", "endpoint"), [(ACCOUNT_HASH, None), (TABLE_HASH, "GameScores")])
async def test_each_chart_draws_every_api_point_or_says_there_is_no_data(tab, receiver, hash, endpoint):
    await show(tab, receiver, hash)
    charts = await tab.page.evaluate(CHARTS)
    assert charts
    for chart in charts:
        points = {metric: await api_points(receiver, metric, endpoint) for metric in chart["metrics"]}
        if any(points.values()):
            assert chart["state"] == "data", chart
            assert chart["vertices"] == {metric: len(found) for metric, found in points.items()}, chart
        else:
            assert chart["state"] == "empty", chart
            assert chart["message"] == EMPTY
    # The samples leave some metrics without data: both cases were seen.
    assert {chart["state"] for chart in charts} == {"data", "empty"}


async def test_pointing_at_a_minute_shows_its_values(tab, receiver):
    await show(tab, receiver, TABLE_HASH)
    chart = tab.page.locator('figure[data-chart="get-latency"]')
    points = await api_points(receiver, "aws_dynamodb_endpoint_get_successful_request_latency", "GameScores")
    # Where the path's last vertex is: the newest minute.
    x, y = await chart.locator('path[data-metric="aws_dynamodb_endpoint_get_successful_request_latency"]').evaluate(
        "(path) => { const [x, y] = path.getAttribute('d').trim().split(/[MLh]/).filter(Boolean).at(-1).split(' ');"
        " const box = path.ownerSVGElement.getBoundingClientRect(); return [box.left + Number(x), box.top + Number(y)]; }"
    )
    await tab.page.mouse.move(x, y)
    tip = chart.locator(".tip")
    await expect(tip).to_be_visible()
    shown = re.search(r"average: ([\d.,]+) ms", await tip.inner_text())
    assert shown is not None
    assert float(shown.group(1)) == pytest.approx(points[-1][1], rel=5e-3)


async def test_charts_follow_the_window_width(tab, receiver):
    await show(tab, receiver, TABLE_HASH)
    svg = tab.page.locator('figure[data-chart="read-capacity"] svg')
    wide = int(await svg.get_attribute("width"))
    await tab.page.set_viewport_size({"width": 700, "height": 900})
    await expect(svg).not_to_have_attribute("width", str(wide))
    plot_width = await tab.page.locator('figure[data-chart="read-capacity"] .plot').evaluate(
        "(plot) => plot.clientWidth"
    )
    await expect(svg).to_have_attribute("width", str(plot_width))


async def test_every_axis_of_a_chart_names_its_unit(tab, receiver):
    await show(tab, receiver, TABLE_HASH)
    units = await api_units(receiver)
    drawn = [chart for chart in await tab.page.evaluate(CHARTS) if chart["state"] == "data"]
    assert drawn
    for chart in drawn:
        for metric in chart["metrics"]:
            assert units[metric] in chart["yUnit"], chart
        # The browser runs in Asia/Kolkata: times are local, and the axis says so.
        assert chart["xUnit"] == "time (UTC+05:30)"


async def test_count_axes_say_per_minute_or_per_hour(tab, receiver):
    await show(tab, receiver, TABLE_HASH)
    throttles = tab.page.locator('figure[data-chart="throttled-requests"] .y-unit')
    await expect(throttles).to_have_text("requests / min")
    await show(tab, receiver, TABLE_HASH + "?range=7d")
    await expect(throttles).to_have_text("requests / h")


async def test_an_accounts_headline_equals_the_api_mean(tab, receiver):
    await show(tab, receiver, "")
    cell = tab.page.locator(f'tr[data-row="{SERVICE}"] td[data-column="consumed_read"]')
    points = await api_points(receiver, "aws_dynamodb_consumed_read_capacity_units")
    expected = sum(value for _, value in points) / len(points)
    assert float(await cell.get_attribute("data-value")) == pytest.approx(expected, rel=1e-12)
    # Shown rounded to three significant digits or two decimals.
    assert float((await cell.inner_text()).replace(",", "")) == pytest.approx(expected, rel=5e-3)


async def test_a_tables_total_equals_the_api_sum_of_read_and_write(tab, receiver):
    await show(tab, receiver, ACCOUNT_HASH)
    cell = tab.page.locator('tr[data-row="GameScores"] td[data-column="throttled"]')
    reads = await api_points(receiver, "aws_dynamodb_endpoint_read_throttled_requests", "GameScores")
    writes = await api_points(receiver, "aws_dynamodb_endpoint_write_throttled_requests", "GameScores")
    expected = sum(value for _, value in reads + writes)
    assert reads
    assert float(await cell.get_attribute("data-value")) == pytest.approx(expected, rel=1e-12)
    assert float(await cell.inner_text()) == pytest.approx(expected, rel=5e-3)


FORMATTED = """async (values) => {
  const { formatNumber } = await import("/static/format.js");
  return values.map((value) => [formatNumber(value), value.toLocaleString("en-US", Number.isInteger(value) ? {}
    : Math.abs(value) >= 100 ? { maximumFractionDigits: 1 } : Math.abs(value) >= 1 ? { maximumFractionDigits: 2 }
    : { maximumSignificantDigits: 3 })]);
}"""


async def test_numbers_read_as_toLocaleString_writes_them(tab, receiver):
    # The formatters are made once; each number reads as toLocaleString("en-US") with the
    # digits of its size would write it.
    await show(tab, receiver, "")
    values = [0, 7, -3, 1234567, 0.5, 0.012345, 1.005, 12.3456, 99.999, 100.04, 1234.56, -0.333333, 1e-7, 123456.789]
    pairs = await tab.page.evaluate(FORMATTED, values)
    assert [shown for shown, _ in pairs] == [expected for _, expected in pairs]
    assert [shown for shown, _ in pairs][:4] == ["0", "7", "-3", "1,234,567"]


async def test_the_tables_sort_by_a_clicked_column(tab, receiver):
    await show(tab, receiver, ACCOUNT_HASH)
    table = tab.page.locator('table[data-table="tables"]')
    header = table.locator('th[data-column="consumed_read"]')

    async def column() -> list[float]:
        values = await table.locator('tbody td[data-column="consumed_read"]').evaluate_all(
            "(cells) => cells.map((cell) => cell.dataset.value)"
        )
        return [float(value) for value in values]

    await header.get_by_role("button").click()
    await expect(header).to_have_attribute("aria-sort", "descending")
    assert await column() == sorted(await column(), reverse=True)
    await header.get_by_role("button").click()
    await expect(header).to_have_attribute("aria-sort", "ascending")
    assert await column() == sorted(await column())
    assert len(await column()) == 3


async def test_a_week_is_drawn_from_hourly_points(tab, receiver):
    await show(tab, receiver, ACCOUNT_HASH)
    steps: list[str] = []
    tab.page.on(
        "request",
        lambda request: (
            steps.extend(parse_qs(urlsplit(request.url).query).get("step", ["?"]))
            if "/api/v1/query" in request.url
            else None
        ),
    )
    await tab.page.locator("#ranges").get_by_role("link", name="7d").click()
    await shown(tab)
    assert urlsplit(tab.page.url).fragment == ACCOUNT_HASH[1:] + "?range=7d"
    assert steps and set(steps) == {"1h"}
    points = await api_points(receiver, "aws_dynamodb_consumed_read_capacity_units", seconds=WEEK, step_s=HOUR)
    chart = next(chart for chart in await tab.page.evaluate(CHARTS) if chart["id"] == "read-capacity")
    assert points
    assert chart["vertices"]["aws_dynamodb_consumed_read_capacity_units"] == len(points)


async def test_a_bookmarked_address_opens_its_view_and_range(tab, receiver):
    await show(tab, receiver, TABLE_HASH + "?range=6h")
    await expect(heading(tab, "Table GameScores")).to_be_visible()
    await expect(tab.page.locator('#ranges a[aria-current="true"]')).to_have_text("6h")
    # Going up keeps the range.
    await expect(tab.page.locator("#crumbs").get_by_role("link", name=ACCOUNT)).to_have_attribute(
        "href", ACCOUNT_HASH + "?range=6h"
    )


async def test_an_unknown_address_says_so(tab, receiver):
    await show(tab, receiver, "#/nowhere/at/all")
    await expect(heading(tab, "No such page")).to_be_visible()


async def _answer_503(route: Route) -> None:
    await route.fulfill(status=503, content_type="application/json", body='{"error": "the store is down"}')


def only_failed_loads(errors: list[str]) -> bool:
    """The browser's own line for each failed request, and nothing from the page's code."""
    return all(error.startswith("Failed to load resource") for error in errors)


async def test_a_failing_query_api_shows_the_error_state(tab, receiver):
    await tab.page.route(re.compile(r"/api/v1/query\?"), _answer_503)
    await show(tab, receiver, ACCOUNT_HASH)
    await expect(tab.page.locator("#alert")).to_contain_text("the store is down")
    assert {chart["state"] for chart in await tab.page.evaluate(CHARTS)} == {"error"}
    assert tab.errors and only_failed_loads(tab.errors)


async def test_the_table_of_tables_comes_from_one_summary_request(tab, receiver):
    asked: list[str] = []
    tab.page.on("request", lambda request: asked.append(request.url) if "/api/v1/" in request.url else None)
    await show(tab, receiver, ACCOUNT_HASH)
    assert len(await tab.page.locator('table[data-table="tables"] tbody tr').all()) == 3
    assert sum("/api/v1/summary?" in url for url in asked) == 1
    # The account's charts query its own series; no row queries a table's.
    queries = [parse_qs(urlsplit(url).query) for url in asked if "/api/v1/query?" in url]
    assert queries and not [query for query in queries if "endpoint" in query]


async def test_a_failing_summary_marks_the_tables_cells_and_the_charts_still_draw(tab, receiver):
    await tab.page.route(re.compile(r"/api/v1/summary\?"), _answer_503)
    await show(tab, receiver, ACCOUNT_HASH)
    await expect(tab.page.locator("#alert")).to_contain_text("/api/v1/summary answered 503: the store is down")
    cells = tab.page.locator('table[data-table="tables"] tbody td[data-column="consumed_read"]')
    assert set(await cells.all_inner_texts()) == {"failed"}
    assert "error" not in {chart["state"] for chart in await tab.page.evaluate(CHARTS)}
    assert only_failed_loads(tab.errors)


async def test_a_failing_entities_api_shows_the_error_state(tab, receiver):
    await tab.page.route(re.compile(r"/api/v1/entities$"), _answer_503)
    await show(tab, receiver, "")
    await expect(tab.page.locator("main p.error")).to_contain_text("/api/v1/entities answered 503: the store is down")
    await expect(tab.page.locator("#alert")).to_be_visible()
    assert only_failed_loads(tab.errors)


async def test_an_empty_receiver_says_so_until_the_minute_refresh_shows_data(tab):
    async with serve_app(receiver_app()) as empty:
        await tab.page.clock.install()
        await show(tab, empty, "")
        await expect(tab.page.locator('[data-empty="accounts"]')).to_have_text(EMPTY)
        await empty.deliver(quiet_account(current_minute_ms()))
        await tab.page.clock.fast_forward(60_000)
        await expect(tab.page.get_by_role("link", name=OTHER_ACCOUNT, exact=True)).to_be_visible()
        assert tab.errors == []


async def test_the_pages_log_no_errors_and_are_screenshotted(tab, receiver):
    pages = {
        "accounts": "",
        "account": ACCOUNT_HASH,
        "table": TABLE_HASH,
        "index": f"#/table/{quote(SERVICE, safe='')}/{quote(INDEX, safe='')}",
        "account-7d": ACCOUNT_HASH + "?range=7d",
    }
    await screenshot_pages(tab, receiver, pages)
