"""The account page of an account with more tables than the table of tables draws at first:
the first rows in the sort's order, every row's number from the one summary, and a button
that draws them all."""

from __future__ import annotations

from urllib.parse import quote

import pytest
import pytest_asyncio
from playwright.async_api import expect

from tests.apps import AppClient, receiver_app, serve_app
from tests.builders import make_sample
from tests.dashboard.conftest import Tab, query_points, show
from tests.dashboard.fill import ACCOUNT, SERVICE, current_minute_ms

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

TABLES = 130
FIRST = 100
"""TABLE_ROWS_AT_FIRST of receiver/views/static/layout.js."""
HASH = f"#/account/{quote(SERVICE, safe='')}"
NAMES = [f"T{i:03d}" for i in range(TABLES)]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def receiver():
    """One account of TABLES tables; each reads more than the one before (T000 least)."""
    async with serve_app(receiver_app()) as client:
        minute_ms = current_minute_ms()
        samples = [
            make_sample(name, account=ACCOUNT, start_ms=minute_ms - m * 60_000, value=60.0 * (i + 1), labels=())
            for i, name in enumerate(NAMES)
            for m in (1, 2, 3)
        ]
        await client.deliver(samples)
        yield client


def rows(tab: Tab):
    return tab.page.locator('table[data-table="tables"] tbody tr[data-row]')


async def drawn(tab: Tab) -> list[str]:
    return await rows(tab).evaluate_all("(rows) => rows.map((row) => row.dataset.row)")


async def test_the_first_rows_are_drawn_with_a_button_for_all(tab: Tab, receiver: AppClient) -> None:
    asked: list[str] = []
    tab.page.on("request", lambda request: asked.append(request.url) if "/api/v1/" in request.url else None)
    await show(tab, receiver, HASH)
    assert await drawn(tab) == NAMES[:FIRST]
    foot = tab.page.locator('table[data-table="tables"] tfoot td.more')
    await expect(foot).to_have_attribute("data-drawn", str(FIRST))
    await expect(foot).to_have_attribute("data-total", str(TABLES))
    await expect(foot).to_contain_text(f"{FIRST} of {TABLES} rows drawn")
    assert sum("/api/v1/summary?" in url for url in asked) == 1
    assert not [url for url in asked if "/api/v1/query?" in url and "endpoint=" in url]
    # The numbers are the summary's for every row drawn: here the query API's mean.
    cell = tab.page.locator(f'tr[data-row="{NAMES[FIRST - 1]}"] td[data-column="consumed_read"]')
    points = await query_points(
        receiver, "aws_dynamodb_endpoint_consumed_read_capacity_units", SERVICE, NAMES[FIRST - 1]
    )
    assert len(points) == 3
    assert float(await cell.get_attribute("data-value")) == sum(value for _, value in points) / 3 == FIRST


async def test_a_sort_draws_the_first_rows_of_its_order(tab: Tab, receiver: AppClient) -> None:
    await show(tab, receiver, HASH)
    header = tab.page.locator('table[data-table="tables"] th[data-column="consumed_read"]')
    await header.get_by_role("button").click()
    await expect(header).to_have_attribute("aria-sort", "descending")
    # The largest of all the rows, not of the rows drawn before.
    assert await drawn(tab) == NAMES[::-1][:FIRST]


async def test_the_button_draws_every_row_and_the_choice_stays(tab: Tab, receiver: AppClient) -> None:
    await show(tab, receiver, HASH)
    await tab.page.get_by_role("button", name=f"Show all {TABLES} rows").click()
    await expect(rows(tab)).to_have_count(TABLES)
    await expect(tab.page.locator('table[data-table="tables"] tfoot')).to_have_count(0)
    header = tab.page.locator('table[data-table="tables"] th[data-column="consumed_read"]')
    await header.get_by_role("button").click()
    await expect(header).to_have_attribute("aria-sort", "descending")
    assert await drawn(tab) == NAMES[::-1]
    assert tab.errors == []
