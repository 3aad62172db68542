"""The Pipeline page (issue 18): how each account's metric stream and Firehose stream deliver,
what the stream costs and which minutes are complete, in Chromium.

A receiver of its own holds the busy DynamoDB account and the quiet one (fill.py) and the
pipeline's own metrics of two accounts: 123456789012 (the busy account: one Firehose stream and
one metric stream, in two regions) and 444455556666 (two metric streams and no DynamoDB data).
The charts are compared with what the query API answers; the cost with arithmetic on the
samples below; the completeness table with what GET /api/v1/pipeline answers.

The receiver's own GET /api/v1/pipeline lists the minutes its deriver saw, complete or not as
its history makes them; so that every state shows (waiting, complete by arrival, complete by
the settle time), a middleware on the test's app answers it instead (``stub_pipeline``) with
the minutes below. One test reads the receiver's own answer.
"""

from __future__ import annotations

import math
import re
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from playwright.async_api import Route, expect

from receiver.model import MINUTE_MS, Sample, Series
from tests.apps import AppClient, receiver_app, serve_app
from tests.builders import make_sample
from tests.dashboard.conftest import Tab, query_points, screenshot_pages, show
from tests.dashboard.fill import ACCOUNT, OTHER_ACCOUNT, busy_account, current_minute_ms, quiet_account

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

PIPE_ONLY = "444455556666"
"""An account with pipeline metrics and no DynamoDB data."""
PRICE = 0.003
SETTLE_S = 300
FIREHOSE = "AWS/Firehose"
STREAMS = "AWS/CloudWatch/MetricStreams"
MINUTES = 10
EAST, WEST = "us-east-1", "eu-west-1"
GAP = 4
"""The metric stream of 123456789012 sends nothing in us-east-1 at this minute index."""
PIPELINE = "#/pipeline"
# The cost table's rows of each account (row id -> stream): one stream has no row of all streams.
COST_ROWS = {
    ACCOUNT: {"metric-stream:demo-metric-stream": "demo-metric-stream"},
    PIPE_ONLY: {"metric-stream:alpha": "alpha", "metric-stream:beta": "beta", "all": None},
}
FILLED_MS: list[int] = []
"""The present minute when the receiver was filled."""

CHARTS = """(account) => [...document.querySelectorAll(
    `section[data-account="${account}"] figure.chart`)].map((figure) => ({
  id: figure.dataset.chart,
  state: figure.dataset.state,
  series: [...figure.querySelectorAll(".legend li")].map((item) => [item.dataset.metric, item.dataset.endpoint]),
  vertices: [...figure.querySelectorAll("path.line")].map((path) => ({
    metric: path.dataset.metric, endpoint: path.dataset.endpoint,
    count: (path.getAttribute("d").match(/[ML]/g) || []).length })),
}))"""
ROWS = """(table) => [...document.querySelectorAll(`table[data-table="${table}"] tbody tr`)].map((row) => ({
  id: row.dataset.row,
  cells: Object.fromEntries([...row.cells].map((cell) => [cell.dataset.column,
    { value: cell.dataset.value, text: cell.textContent }])),
}))"""


# -- the pipeline's samples ---------------------------------------------------------------


def _sample(
    account: str, region: str, namespace: str, metric: str, dims: dict[str, str], start: int, total: float, **kw: Any
) -> Sample:
    series = Series(account, region, namespace, metric, tuple(sorted(dims.items())), "Count")
    return make_sample(series=series, start_ms=start, value=total, labels=(), **kw)


def _firehose(region: str, start: int, metric: str, total: float, **kw: Any) -> Sample:
    """A datapoint of 123456789012's demo-firehose (SampleCount 1 unless ``count`` says)."""
    kw.setdefault("count", 1)
    return _sample(ACCOUNT, region, FIREHOSE, metric, {"DeliveryStreamName": "demo-firehose"}, start, total, **kw)


def billed(i: int, region: str) -> float:
    """TotalMetricUpdate of demo-metric-stream at minute index ``i`` (MetricUpdate is less)."""
    return 140.0 + 9 * i if region == EAST else 60.0 + i


def pipeline_samples(minute_ms: int) -> list[Sample]:
    """123456789012: demo-firehose and demo-metric-stream in us-east-1 for MINUTES minutes (the
    metric stream silent at GAP) and in eu-west-1 for the last four; a failed request and two
    records backed up at minute 6, a throttled record and publish errors at minute 8.
    444455556666: metric streams alpha and beta and Firehose stream fh-b, three minutes."""
    samples: list[Sample] = []
    for i in range(MINUTES):
        start = minute_ms - (MINUTES - i) * MINUTE_MS
        for region in (EAST, WEST) if i >= MINUTES - 4 else (EAST,):
            records = 5.0 + i
            delivered = records - (2 if i == 6 else 0)
            samples += [
                _firehose(
                    region, start, "DeliveryToHttpEndpoint.Success", 1.0, count=2 if i == 6 else 1, low=0.0, high=1.0
                ),
                _firehose(
                    region,
                    start,
                    "DeliveryToHttpEndpoint.DataFreshness",
                    6 * (60.0 + 3 * i),
                    count=6,
                    low=50.0,
                    high=70.0 + 3 * i,
                ),
                _firehose(region, start, "IncomingRecords", records),
                _firehose(region, start, "IncomingBytes", records * 5200),
                _firehose(region, start, "DeliveryToHttpEndpoint.Records", delivered),
                _firehose(region, start, "DeliveryToHttpEndpoint.Bytes", delivered * 5200),
                _firehose(region, start, "ThrottledRecords", 1.0 if i == 8 else 0.0),
            ]
            if i == 6:
                samples.append(_firehose(region, start, "DeliveryToS3.Records", 2.0))
            if region == EAST and i == GAP:
                continue
            for dims in ({"MetricStreamName": "demo-metric-stream"}, {}):
                samples += [
                    _sample(ACCOUNT, region, STREAMS, "MetricUpdate", dims, start, billed(i, region) - 40, count=1),
                    _sample(ACCOUNT, region, STREAMS, "TotalMetricUpdate", dims, start, billed(i, region), count=1),
                ]
                if i == 8:
                    samples.append(_sample(ACCOUNT, region, STREAMS, "PublishErrorRate", dims, start, 0.1, count=1))
    for i in range(3):
        start = minute_ms - (3 - i) * MINUTE_MS
        for name, updates in (("alpha", 1000.0 + i), ("beta", 30.0)):
            dims = {"MetricStreamName": name}
            samples.append(_sample(PIPE_ONLY, EAST, STREAMS, "TotalMetricUpdate", dims, start, updates, count=1))
        samples.append(
            _sample(PIPE_ONLY, EAST, FIREHOSE, "IncomingRecords", {"DeliveryStreamName": "fh-b"}, start, 9.0, count=1)
        )
    return samples


def expected_billed(account: str, stream: str | None) -> dict[int, float]:
    """Minute index -> billed updates of one metric stream (None: all of the account's), from the
    definitions: Σ Sum of TotalMetricUpdate over the stream's series of the minute."""
    out: dict[int, float] = defaultdict(float)
    if account == ACCOUNT:
        for i in range(MINUTES):
            for region in (EAST, WEST) if i >= MINUTES - 4 else (EAST,):
                if not (region == EAST and i == GAP):
                    out[i] += billed(i, region)
    else:
        for i in range(3):
            out[i] += (1000.0 + i if stream in ("alpha", None) else 0.0) + (30.0 if stream in ("beta", None) else 0.0)
    return dict(out)


# -- GET /api/v1/pipeline, stubbed ------------------------------------------------------------


def completeness(minute_ms: int) -> list[dict[str, Any]]:
    """Twelve minutes of 123456789012 in each region (the newest waiting, the one before complete
    by the settle time, the rest by all arriving) and three of 210987654321."""
    minutes = []
    for account, regions, count in ((ACCOUNT, (EAST, WEST), 12), (OTHER_ACCOUNT, (EAST,), 3)):
        for region in regions:
            expected = 130 if region == EAST else 36
            for k in range(1, count + 1):
                start = (minute_ms - k * MINUTE_MS) // 1000
                waiting, settled = k == 1, k == 2
                arrived = expected * 2 // 3 if waiting else expected - 2 if settled else expected
                minutes.append(
                    {
                        "account": account,
                        "region": region,
                        "minute": start,
                        "expected": expected,
                        "arrived": arrived,
                        "complete": not waiting,
                        "completed": None if waiting else start + 60 + (SETTLE_S if settled else 7 + k),
                        "by": None if waiting else "settled" if settled else "all_arrived",
                    }
                )
    return minutes


def stub_pipeline(app: web.Application, minutes: Callable[[], list[dict[str, Any]]]) -> None:
    """Answer GET /api/v1/pipeline with ``minutes()`` within ?start=&end= (epoch seconds)."""

    @web.middleware
    async def pipeline_api(request: web.Request, handler):
        if request.path != "/api/v1/pipeline":
            return await handler(request)
        start, end = int(request.query["start"]), int(request.query["end"])
        return web.json_response(
            {
                "metric_update_price_per_1000": PRICE,
                "settle_seconds": SETTLE_S,
                "minutes": [m for m in minutes() if start <= m["minute"] <= end],
            }
        )

    app.middlewares.append(pipeline_api)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def receiver() -> AsyncIterator[AppClient]:
    minute_ms = current_minute_ms()
    FILLED_MS[:] = [minute_ms]
    app = receiver_app()
    stub_pipeline(app, lambda: completeness(minute_ms))
    async with serve_app(app) as client:
        await client.deliver(busy_account(minute_ms) + quiet_account(minute_ms) + pipeline_samples(minute_ms))
        yield client


@pytest_asyncio.fixture(loop_scope="module")
async def without_pipeline() -> AsyncIterator[AppClient]:
    """DynamoDB data only, and no minute in the completeness API."""
    app = receiver_app()
    stub_pipeline(app, list)
    async with serve_app(app) as client:
        await client.deliver(busy_account(current_minute_ms()))
        yield client


# -- the page ---------------------------------------------------------------------------------


async def test_each_account_with_pipeline_metrics_or_minutes_has_a_section(tab, receiver):
    await show(tab, receiver, PIPELINE)
    await expect(tab.page.get_by_role("heading", level=1, name="Pipeline")).to_be_visible()
    sections = tab.page.locator("section[data-account]")
    await expect(sections).to_have_count(3)
    assert [await s.get_attribute("data-account") for s in await sections.all()] == sorted(
        [ACCOUNT, OTHER_ACCOUNT, PIPE_ONLY]
    )
    # 210987654321 has complete minutes but no pipeline metrics: its stream leaves the namespaces out.
    other = tab.page.locator(f'section[data-account="{OTHER_ACCOUNT}"]')
    await expect(other.locator('[data-empty="pipeline"]')).to_contain_text(
        "AWS/Firehose and AWS/CloudWatch/MetricStreams"
    )
    await expect(other.locator("figure.chart")).to_have_count(0)
    await expect(tab.page.locator("#crumbs a[aria-current=page]")).to_have_text("Pipeline")
    await expect(tab.page.locator("#pipeline-link")).to_have_attribute("aria-current", "page")
    assert tab.errors == []


@pytest.mark.parametrize("account", [ACCOUNT, PIPE_ONLY])
async def test_every_chart_draws_exactly_the_api_points(tab, receiver, account):
    await show(tab, receiver, PIPELINE)
    service = f"aws-metric-stream::{account}"
    charts = await tab.page.evaluate(CHARTS, account)
    assert charts
    for chart in charts:
        points = {}
        for metric, endpoint in chart["series"]:
            assert endpoint.startswith(("firehose:", "metric-stream:")), chart
            points[(metric, endpoint)] = await query_points(receiver, metric, service, endpoint)
        assert chart["state"] == ("data" if any(points.values()) else "empty"), chart
        if chart["state"] == "data":
            assert {(line["metric"], line["endpoint"]): line["count"] for line in chart["vertices"]} == {
                key: len(value) for key, value in points.items()
            }, chart["id"]
    if account == ACCOUNT:
        # pipeline_samples gives the account every metric the charts draw.
        assert {chart["id"] for chart in charts if chart["state"] == "data"} == {
            "delivery-success", "data-freshness", "records", "bytes", "backup", "metric-updates", "publish-errors",
            "throttled",
        }  # fmt: skip
        # us-east-1 misses a minute that eu-west-1 does not report either: the line has a gap.
        updates = next(chart for chart in charts if chart["id"] == "metric-updates")
        lines = {line["metric"]: line["count"] for line in updates["vertices"]}
        assert lines["aws_metric_stream_endpoint_total_metric_updates"] == MINUTES - 1
    assert tab.errors == []


@pytest.mark.parametrize(("range_", "step_s"), [("1h", 60), ("7d", 3600)])
async def test_the_cost_is_billed_updates_times_the_price(tab, receiver, range_, step_s):
    await show(tab, receiver, PIPELINE + ("" if range_ == "1h" else f"?range={range_}"))
    await expect(tab.page.locator(f'section[data-account="{ACCOUNT}"] [data-price]')).to_have_attribute(
        "data-price", str(PRICE)
    )
    for account, streams in COST_ROWS.items():
        shown = {row["id"]: row["cells"] for row in await tab.page.evaluate(ROWS, f"cost-{account}")}
        assert set(shown) == set(streams)
        for row_id, stream in streams.items():
            by_minute = expected_billed(account, stream)
            total = sum(by_minute.values())
            # The buckets that have a value: minutes, or the hours those minutes fall in.
            buckets = len(by_minute) if step_s == 60 else len({m // 60 for m in bucket_minutes(account, by_minute)})
            per_minute = total / (buckets * step_s / 60)
            cells = shown[row_id]
            # Hours hold the mean minute × 60 (receiver/derive/deriver.py): equal up to rounding.
            assert float(cells["updates"]["value"]) == pytest.approx(total, rel=1e-12)
            assert float(cells["per_minute"]["value"]) == pytest.approx(per_minute, rel=1e-12)
            for column, minutes in (("minute", 1), ("day", 1440), ("month", 43200)):
                cost = per_minute * minutes * PRICE / 1000
                assert float(cells[column]["value"]) == pytest.approx(cost, rel=1e-12), (row_id, column)
                assert cells[column]["text"].startswith("$")
            assert cells["stream"]["text"] == (stream or "all streams")
    assert tab.errors == []


def bucket_minutes(account: str, by_minute: dict[int, float]) -> list[int]:
    """The minutes since 1970 of the minute indexes that have values."""
    first = FILLED_MS[0] // MINUTE_MS - (MINUTES if account == ACCOUNT else 3)
    return [first + i for i in by_minute]


async def last_hour(receiver: AppClient) -> list[dict[str, Any]]:
    """The minutes GET /api/v1/pipeline lists for the last hour, as the page asks for them."""
    end = int(time.time())
    response = await receiver.get("/api/v1/pipeline", params={"start": end - 3600, "end": end})
    assert response.status == 200, await response.text()
    return (await response.json())["minutes"]


def latest(api: list[dict[str, Any]], account: str) -> list[dict[str, Any]]:
    """Each region's latest ten minutes of one account."""
    out = []
    for region in sorted({m["region"] for m in api if m["account"] == account}):
        mine = [m for m in api if m["account"] == account and m["region"] == region]
        out += sorted(mine, key=lambda m: -m["minute"])[:10]
    return out


async def assert_the_table_is(tab: Tab, account: str, expected: list[dict[str, Any]]) -> None:
    rows = await tab.page.evaluate(ROWS, f"completeness-{account}")
    assert {row["id"] for row in rows} == {f"{m['region']} {m['minute']}" for m in expected}
    by_id = {row["id"]: row["cells"] for row in rows}
    for minute in expected:
        cells = by_id[f"{minute['region']} {minute['minute']}"]
        assert int(cells["minute"]["value"]) == minute["minute"]
        assert cells["region"]["text"] == minute["region"]
        assert int(cells["expected"]["value"]) == minute["expected"]
        assert int(cells["arrived"]["value"]) == minute["arrived"]
        assert cells["complete"]["text"] == ("complete" if minute["complete"] else "waiting")
        assert cells["by"]["text"] == {"all_arrived": "all arrived", "settled": "settle time", None: "—"}[minute["by"]]
        completed = minute["completed"]
        assert (float(cells["completed"]["value"]) if cells["completed"]["value"] else None) == completed
    # Newest first.
    minutes = [int(row["cells"]["minute"]["value"]) for row in rows]
    assert minutes == sorted(minutes, reverse=True)


async def test_the_completeness_table_is_the_api(tab, receiver):
    await show(tab, receiver, PIPELINE)
    api = await last_hour(receiver)
    for account in (ACCOUNT, OTHER_ACCOUNT):
        expected = latest(api, account)
        # Every state shows: waiting, complete by the settle time, complete by arrival.
        assert {m["by"] for m in expected} == {None, "settled", "all_arrived"}
        await assert_the_table_is(tab, account, expected)
    # 444455556666 reports pipeline metrics but the completeness API has no minute of it.
    section = tab.page.locator(f'section[data-account="{PIPE_ONLY}"]')
    await expect(section.locator('[data-empty="completeness"]')).to_be_visible()
    assert tab.errors == []


async def test_the_completeness_table_is_the_receivers_own_api(tab):
    async with serve_app(receiver_app()) as own:
        minute_ms = current_minute_ms()
        await own.deliver(busy_account(minute_ms) + pipeline_samples(minute_ms))
        # The page and the test ask a moment apart: compare once both saw the same answer.
        for _ in range(3):
            before = await last_hour(own)
            await show(tab, own, PIPELINE)
            if await last_hour(own) == before:
                break
        assert {m["account"] for m in before} == {ACCOUNT, PIPE_ONLY}
        for account in (ACCOUNT, PIPE_ONLY):
            await assert_the_table_is(tab, account, latest(before, account))
        assert tab.errors == []


async def test_the_accounts_page_lists_no_pipeline_service_and_links_to_the_pipeline(tab, receiver):
    entities = (await (await receiver.get("/api/v1/entities")).json())["services"]
    pipeline_services = {s["name"] for s in entities if s["layer"] == "AWS_METRIC_STREAM"}
    assert pipeline_services == {f"aws-metric-stream::{ACCOUNT}", f"aws-metric-stream::{PIPE_ONLY}"}

    await show(tab, receiver, "")
    rows = tab.page.locator('table[data-table="accounts"] tbody tr')
    await expect(rows).to_have_count(2)
    ids = {await row.get_attribute("data-row") for row in await rows.all()}
    assert ids == {f"aws-dynamodb::{ACCOUNT}", f"aws-dynamodb::{OTHER_ACCOUNT}"}
    await expect(tab.page.locator("table[data-table=accounts]")).not_to_contain_text(PIPE_ONLY)
    note = tab.page.locator("p.pipeline-note")
    await expect(note).to_have_attribute("data-pipelines", "2")
    await note.get_by_role("link", name="the Pipeline page").click()
    await expect(tab.page.get_by_role("heading", level=1, name="Pipeline")).to_be_visible()
    assert tab.page.url.endswith(PIPELINE)
    # The header's link keeps the range.
    await show(tab, receiver, "#/?range=6h")
    await expect(tab.page.locator("#pipeline-link")).to_have_attribute("href", "#/pipeline?range=6h")
    assert tab.errors == []


async def test_a_receiver_without_pipeline_metrics_says_what_the_stream_must_include(tab, without_pipeline):
    await show(tab, without_pipeline, PIPELINE)
    await expect(tab.page.locator('main > [data-empty="pipeline"]')).to_have_text(
        "no pipeline metrics — the metric stream must include the namespaces AWS/Firehose and "
        "AWS/CloudWatch/MetricStreams"
    )
    await expect(tab.page.locator("figure.chart")).to_have_count(0)
    await show(tab, without_pipeline, "")
    await expect(tab.page.locator("p.pipeline-note")).to_have_attribute("data-pipelines", "0")
    assert tab.errors == []


async def test_without_the_pipeline_api_the_charts_stay_and_the_cost_is_unknown(tab, receiver):
    async def answer_503(route: Route) -> None:
        await route.fulfill(status=503, content_type="application/json", body='{"error": "the store is down"}')

    await tab.page.route(re.compile(r"/api/v1/pipeline\?"), answer_503)
    await show(tab, receiver, PIPELINE)
    await expect(tab.page.locator("#alert")).to_contain_text("/api/v1/pipeline answered 503: the store is down")
    section = tab.page.locator(f'section[data-account="{ACCOUNT}"]')
    await expect(section.locator('figure[data-chart="delivery-success"]')).to_have_attribute("data-state", "data")
    await expect(section.locator('[data-price=""]')).to_contain_text("The price is not known")
    cost = {row["id"]: row["cells"] for row in await tab.page.evaluate(ROWS, f"cost-{ACCOUNT}")}
    assert cost["metric-stream:demo-metric-stream"]["minute"]["text"] == "—"
    assert float(cost["metric-stream:demo-metric-stream"]["updates"]["value"]) == math.fsum(
        expected_billed(ACCOUNT, "demo-metric-stream").values()
    )
    await expect(section.locator('section[data-panel="completeness"] p.error')).to_contain_text("503")


async def test_the_pipeline_pages_log_no_errors_and_are_screenshotted(tab, receiver, without_pipeline):
    await screenshot_pages(tab, receiver, {"pipeline": PIPELINE, "pipeline-24h": PIPELINE + "?range=24h"})
    await screenshot_pages(tab, without_pipeline, {"pipeline-empty": PIPELINE})
