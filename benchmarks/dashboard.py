"""The account page of a large account in headless Chromium: API requests and time to draw.

A SQLite store is filled straight with ``put_derived``: an hour of minute values of every
metric the account page's table shows, for each of ``tables`` tables, and of the account's
own (service) metrics. The receiver serves it on 127.0.0.1; Chromium (driven by Playwright,
as tests/dashboard does) opens the account page and the figures are the API requests the
page made and the seconds from navigation until the table's rows are drawn.

Before /api/v1/summary the page asked /api/v1/query for each of the table's metrics of each
row (read and write consumed, provisioned, utilization, throttled requests and system
errors: ten per row). That count is worked out from the requests measured here: the summary
request gives way to ten per row.

    .venv/bin/python -m benchmarks.dashboard [--tables 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from receiver.config import REPOSITORY_RULES, ServeConfig
from receiver.model import MINUTE_MS, DerivedValue
from receiver.rules import RuleHolder, load_rules
from receiver.server.app import create_app
from receiver.store.sqlite import SQLiteStore
from receiver.views.summary import FIGURES

ACCOUNT = "123456789012"
SERVICE = f"aws-dynamodb::{ACCOUNT}"
REGION = "eu-west-1"
MINUTES = 60
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass(frozen=True, slots=True)
class DashboardFigures:
    tables: int
    rows: int
    """Rows of the account page's table, as drawn."""
    requests: int
    """API requests the page made (GET /api/v1/...), the summary included."""
    by_path: dict[str, int]
    draw_s: float
    """From navigation to the table's rows on the page."""
    requests_before: int
    """The requests of the page before /api/v1/summary: ten /api/v1/query per row instead."""

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


def hour_of_values(tables: int, now_ms: int, seed: int = 1) -> dict[int, list[DerivedValue]]:
    """Minute bucket -> its values: the table's figures for every table, the account's metrics."""
    rules = load_rules(REPOSITORY_RULES)
    layer = next(m.layer for m in rules.metrics if m.name == FIGURES[0][0])
    service_metrics = [m for m in rules.metrics if m.scope == "service" and m.name.startswith("aws_dynamodb_")]
    rng = random.Random(seed)
    last = now_ms - now_ms % MINUTE_MS - MINUTE_MS
    buckets: dict[int, list[DerivedValue]] = {}
    for k in range(MINUTES):
        minute = last - k * MINUTE_MS
        values = [
            DerivedValue(
                name, "endpoint", SERVICE, f"table-{i:05d}", layer, minute, round(rng.uniform(0, 500), 3), region=REGION
            )
            for name, _ in FIGURES
            for i in range(tables)
        ]
        values += [
            DerivedValue(m.name, "service", SERVICE, None, m.layer, minute, round(rng.uniform(0, 500), 3))
            for m in service_metrics
        ]
        buckets[minute] = values
    return buckets


async def fill(path: Path, tables: int) -> None:
    store = SQLiteStore(path=str(path))
    await store.open()
    try:
        for minute, values in hour_of_values(tables, int(time.time() * 1000)).items():
            await store.put_derived(MINUTE_MS, minute, 1, values)
    finally:
        await store.close()


async def measure_async(tables: int, work: Path) -> DashboardFigures:
    from playwright.async_api import async_playwright

    if shutil.which(CHROMIUM) is None:
        raise SystemExit(f"{CHROMIUM} is missing: install it with scripts/debian-packages.sh chromium")
    database = work / "dashboard.db"
    database.unlink(missing_ok=True)
    await fill(database, tables)
    config = ServeConfig(allow_unauthenticated=True, store_url=f"sqlite:///{database}")
    app = create_app(
        config, SQLiteStore(path=str(database)), RuleHolder(REPOSITORY_RULES, load_rules(REPOSITORY_RULES))
    )
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                page = await browser.new_page(viewport={"width": 1280, "height": 900})
                page.set_default_timeout(600_000)
                paths: Counter[str] = Counter()
                page.on(
                    "request",
                    lambda request: paths.update([urlsplit(request.url).path]) if "/api/v1/" in request.url else None,
                )
                started = time.perf_counter()
                await page.goto(f"http://127.0.0.1:{port}/#/account/{SERVICE}")
                await page.wait_for_function(
                    "() => document.getElementById('view').dataset.shown === location.hash"
                    " && document.querySelectorAll('table[data-table=\"tables\"] tbody tr').length > 0"
                )
                draw_s = time.perf_counter() - started
                rows = await page.locator('table[data-table="tables"] tbody tr').count()
            finally:
                await browser.close()
    finally:
        await runner.cleanup()
    requests = sum(paths.values())
    summaries = paths.get("/api/v1/summary", 0)
    return DashboardFigures(
        tables=tables,
        rows=rows,
        requests=requests,
        by_path=dict(sorted(paths.items())),
        draw_s=draw_s,
        requests_before=requests - summaries + len(FIGURES) * rows,
    )


def measure(tables: int, work: Path | None = None) -> DashboardFigures:
    if work is not None:
        work.mkdir(parents=True, exist_ok=True)
        return asyncio.run(measure_async(tables, work))
    with tempfile.TemporaryDirectory() as folder:
        return asyncio.run(measure_async(tables, Path(folder)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dashboard", description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=2000)
    args = parser.parse_args(argv)
    figures = measure(args.tables)
    print(
        f"account page of {figures.tables:,} tables: {figures.rows:,} rows drawn in {figures.draw_s:.2f} s "
        f"with {figures.requests} API requests ({figures.by_path}); "
        f"before /api/v1/summary: {figures.requests_before:,} requests"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
