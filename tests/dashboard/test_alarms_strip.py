"""The alarms strip on every page of the dashboard, in Debian's Chromium."""

from __future__ import annotations

import time
from urllib.parse import quote

import pytest

from receiver.keys import STORE
from receiver.model import FIRING, RESOLVED, AlarmEvent
from tests.apps import AppClient, receiver_app, serve_app
from tests.dashboard.conftest import SCREENSHOTS, Tab

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

SERVICE = "aws-dynamodb::123456789012"
STRIP = "#alarms"


async def open_at(tab: Tab, client: AppClient, hash: str) -> None:
    await tab.page.goto(f"{client.base}/{hash}")
    await tab.page.wait_for_function("() => document.getElementById('view').dataset.shown === location.hash")


def event(rule: str, endpoint: str | None, seq: int, kind: str, message: str) -> AlarmEvent:
    minute_ms = (int(time.time()) // 60 - 3 + seq) * 60_000
    return AlarmEvent(rule, SERVICE, endpoint, seq, kind, minute_ms, 4.0, 0.0, message, minute_ms + 60_000)


async def test_no_alarm_on_shows_a_quiet_line(tab):
    async with serve_app(receiver_app()) as client:
        await open_at(tab, client, "#/")
        assert await tab.page.text_content(STRIP) == "No alarms on."
    assert tab.errors == []


async def test_active_alarms_are_listed_on_every_page_and_link_to_their_entity(tab):
    async with serve_app(receiver_app()) as client:
        store = client.app[STORE]
        for e in (
            event("throttled", "GameScores", 1, FIRING, "GameScores: 4 writes throttled"),
            event("user_errors", None, 1, FIRING, "account: 40 user errors"),
            event("conflicts", "Orders", 1, FIRING, "Orders: conflicts"),
            event("conflicts", "Orders", 2, RESOLVED, "Orders: conflicts"),
        ):
            assert await store.put_alarm_event(e)
        for hash in ("#/", f"#/account/{quote(SERVICE, safe='')}"):
            await open_at(tab, client, hash)
            items = tab.page.locator(f"{STRIP} li.alarm")
            assert await items.all_text_contents() != []
            assert [await a.text_content() for a in await tab.page.locator(f"{STRIP} li.alarm a").all()] == [
                "GameScores: 4 writes throttled",
                "account: 40 user errors",
            ]
            assert (await tab.page.text_content(f"{STRIP} strong")) == "2 alarms on:"
        await tab.page.screenshot(path=str(SCREENSHOTS / "alarms-strip.png"))
        await tab.page.click(f"{STRIP} li.alarm a >> text=GameScores: 4 writes throttled")
        await tab.page.wait_for_function("() => document.getElementById('view').dataset.shown === location.hash")
        assert tab.page.url.endswith(f"#/table/{quote(SERVICE, safe='')}/GameScores")
    assert tab.errors == []


async def test_a_failing_alarms_api_is_said_in_the_strip(tab):
    async with serve_app(receiver_app()) as client:
        await tab.page.route(
            "**/api/v1/alarms",
            lambda route: route.fulfill(
                status=503, content_type="application/json", body='{"error": "the store failed"}'
            ),
        )
        await open_at(tab, client, "#/")
        assert (
            "Alarms could not be loaded: /api/v1/alarms answered 503: the store failed"
            == await tab.page.text_content(STRIP)
        )


async def test_an_alarm_on_the_metric_pipeline_links_to_the_pipeline_page(tab):
    async with serve_app(receiver_app()) as client:
        minute_ms = (int(time.time()) // 60 - 2) * 60_000
        pipeline = AlarmEvent(
            "delivery_failing", "aws-metric-stream::123456789012", "firehose:demo-firehose", 1, FIRING,
            minute_ms, 50.0, 99.0, "demo-firehose: 50 % of deliveries succeeded", minute_ms + 60_000,
        )  # fmt: skip
        assert await client.app[STORE].put_alarm_event(pipeline)
        await open_at(tab, client, "#/")
        await tab.page.click(f"{STRIP} li.alarm a")
        await tab.page.wait_for_function("() => document.getElementById('view').dataset.shown === location.hash")
        assert tab.page.url.endswith("#/pipeline")
    assert tab.errors == []
