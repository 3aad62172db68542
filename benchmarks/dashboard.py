"""The account page of a large account in headless Chromium: API requests and time to draw.

A SQLite store is filled straight with ``put_derived``: an hour of minute values of every
metric the account page's table shows, for each of ``tables`` tables, and of the account's
own (service) metrics. The receiver serves it on 127.0.0.1; Chromium (driven by Playwright,
as tests/dashboard does) opens the account page ``loads`` times, each in a fresh browser
context, and the figures are the API requests the page made and the seconds from navigation
until the page is drawn (its charts and the table's first rows: the table draws
TABLE_ROWS_AT_FIRST rows until asked for all); then the seconds from pressing "Show all"
until every row is drawn.

Before /api/v1/summary the page asked /api/v1/query for each of the table's metrics of each
row (read and write consumed, provisioned, utilization, throttled requests and system
errors: ten per row). That count is worked out from the requests measured here: the summary
request gives way to ten per row.

    .venv/bin/python -m benchmarks.dashboard [--tables 2000] [--loads 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import statistics
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
    """Rows of the account page's table drawn at first."""
    listed: int
    """Rows the table holds (a table per region, and its indexes): drawn by "Show all"."""
    requests: int
    """API requests the page made (GET /api/v1/...), the summary included (first load)."""
    by_path: dict[str, int]
    draw_s: float
    """From navigation until the page is drawn: the median of the loads."""
    draws_s: list[float]
    """Each load's."""
    show_all_s: float
    """From pressing "Show all" until every row is drawn."""
    requests_before: int
    """The requests of the page before /api/v1/summary: ten /api/v1/query per row instead."""
    load_average: float
    """The machine's one-minute load average as the loads began (2 cores: above 2, others ran)."""

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


DRAWN = (
    "() => document.getElementById('view').dataset.shown === location.hash"
    " && document.querySelectorAll('table[data-table=\"tables\"] tbody tr[data-row]').length > 0"
)
ROWS = 'table[data-table="tables"] tbody tr[data-row]'


async def measure_async(tables: int, work: Path, loads: int = 3) -> DashboardFigures:
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
        load_average = os.getloadavg()[0]
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                draws: list[float] = []
                for load in range(loads):
                    context = await browser.new_context(viewport={"width": 1280, "height": 900})
                    page = await context.new_page()
                    page.set_default_timeout(600_000)
                    paths: Counter[str] = Counter()
                    page.on(
                        "request",
                        lambda request, paths=paths: (
                            paths.update([urlsplit(request.url).path]) if "/api/v1/" in request.url else None
                        ),
                    )
                    started = time.perf_counter()
                    await page.goto(f"http://127.0.0.1:{port}/#/account/{SERVICE}")
                    await page.wait_for_function(DRAWN)
                    draws.append(time.perf_counter() - started)
                    if load == 0:
                        first_paths = paths
                        rows = await page.locator(ROWS).count()
                        listed, show_all_s = await _show_all(page, rows)
                    await context.close()
            finally:
                await browser.close()
    finally:
        await runner.cleanup()
    requests = sum(first_paths.values())
    summaries = first_paths.get("/api/v1/summary", 0)
    return DashboardFigures(
        tables=tables,
        rows=rows,
        listed=listed,
        requests=requests,
        by_path=dict(sorted(first_paths.items())),
        draw_s=statistics.median(draws),
        draws_s=[round(draw, 3) for draw in draws],
        show_all_s=show_all_s,
        requests_before=requests - summaries + len(FIGURES) * listed,
        load_average=load_average,
    )


async def _show_all(page: Any, rows: int) -> tuple[int, float]:
    """(rows listed, seconds from pressing "Show all" until they are drawn); (rows, 0.0) when
    every row is drawn already."""
    foot = page.locator('table[data-table="tables"] tfoot td.more')
    if not await foot.count():
        return rows, 0.0
    listed = int(await foot.get_attribute("data-total"))
    started = time.perf_counter()
    await foot.get_by_role("button").click()
    await page.wait_for_function(f"() => document.querySelectorAll('{ROWS}').length === {listed}")
    return listed, time.perf_counter() - started


def measure(tables: int, work: Path | None = None, loads: int = 3) -> DashboardFigures:
    if work is not None:
        work.mkdir(parents=True, exist_ok=True)
        return asyncio.run(measure_async(tables, work, loads))
    with tempfile.TemporaryDirectory() as folder:
        return asyncio.run(measure_async(tables, Path(folder), loads))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dashboard", description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=2000)
    parser.add_argument("--loads", type=int, default=3, help="page loads timed (the median is reported)")
    args = parser.parse_args(argv)
    if args.loads < 1:
        parser.error("--loads must be at least 1")
    figures = measure(args.tables, loads=args.loads)
    print(
        f"account page of {figures.tables:,} tables: drawn in {figures.draw_s:.2f} s (median of {figures.draws_s}), "
        f"{figures.rows:,} of {figures.listed:,} rows, all rows {figures.show_all_s:.2f} s after 'Show all'; "
        f"{figures.requests} API requests ({figures.by_path}); before /api/v1/summary: "
        f"{figures.requests_before:,} requests; load average {figures.load_average:.1f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
