"""A receiver filled with known samples, and Debian's Chromium driven by Playwright.

The receiver runs in-process on the tests' event loop, which is module-wide so that one
browser and one receiver serve every test of a module.
"""

from __future__ import annotations

import shutil
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
