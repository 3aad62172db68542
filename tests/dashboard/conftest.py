"""A receiver filled with known samples, and Debian's Chromium driven by Playwright.

The receiver runs in-process on the tests' event loop, which is module-wide so that one
browser and one receiver serve every test of a module.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from tests.apps import AppClient, receiver_app, serve_app
from tests.dashboard.fill import busy_account, current_minute_ms, quiet_account

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium dials out at start, and a closed
# network refuses it with errors that have nothing to do with the page.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "out" / "screenshots"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: install it with scripts/debian-packages.sh chromium (make test does)")
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def receiver() -> AsyncIterator[AppClient]:
    """Two accounts: a busy one (two tables, an index) and a quiet one."""
    async with serve_app(receiver_app()) as client:
        minute_ms = current_minute_ms()
        await client.deliver(busy_account(minute_ms) + quiet_account(minute_ms))
        yield client


@dataclass
class Tab:
    """A page in its own browser context, with the errors its console reported."""

    page: Page
    context: BrowserContext
    errors: list[str] = field(default_factory=list)


async def open_tab(browser: Browser) -> Tab:
    # A zone with a half-hour offset: the time axis must follow the local clock.
    context = await browser.new_context(
        viewport={"width": 1280, "height": 900}, locale="en-GB", timezone_id="Asia/Kolkata"
    )
    tab = Tab(await context.new_page(), context)
    tab.page.set_default_timeout(10_000)
    tab.page.on("console", lambda message: tab.errors.append(message.text) if message.type == "error" else None)
    tab.page.on("pageerror", lambda error: tab.errors.append(f"uncaught: {error}"))
    return tab


@pytest_asyncio.fixture(loop_scope="module")
async def tab(browser: Browser) -> AsyncIterator[Tab]:
    opened = await open_tab(browser)
    yield opened
    await opened.context.close()


# -- what the tests do with a tab ---------------------------------------------------------


async def show(tab: Tab, receiver: AppClient, hash: str) -> None:
    """Open the dashboard at ``hash`` and wait until that view is drawn."""
    await tab.page.goto(f"{receiver.base}/{hash}")
    await shown(tab)


async def shown(tab: Tab) -> None:
    await tab.page.wait_for_function("() => document.getElementById('view').dataset.shown === location.hash")


async def screenshot_pages(tab: Tab, receiver: AppClient, pages: dict[str, str]) -> None:
    """Show each page (name -> hash) and save its screenshot; no page may log an error."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for name, hash in pages.items():
        await show(tab, receiver, hash)
        path = SCREENSHOTS / f"{name}.png"
        await tab.page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 0
    assert tab.errors == []


async def query_points(
    receiver: AppClient,
    metric: str,
    service: str,
    endpoint: str | None = None,
    *,
    region: str | None = None,
    seconds: int = 3600,
    step_s: int = 60,
) -> list[list[float]]:
    """What /api/v1/query answers for the last ``seconds``, the dashboard's source of truth."""
    now = int(time.time())
    params = {
        "metric": metric,
        "service": service,
        "start": (now - seconds) // step_s * step_s,
        "end": now,
        "step": "1m" if step_s == 60 else "1h",
    }
    if endpoint is not None:
        params["endpoint"] = endpoint
    if region is not None:
        params["region"] = region
    response = await receiver.get("/api/v1/query", params=params)
    assert response.status == 200, await response.text()
    return (await response.json())["points"]
