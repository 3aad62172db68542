"""`GET /metrics` over HTTP: which minute it exposes, what the store's failures leave, and the
receiver's own counters as deliveries through the Firehose endpoint move them."""

from __future__ import annotations

import asyncio
import gzip

import pytest
from aiohttp import web

from receiver.config import REPOSITORY_RULES, ServeConfig
from receiver.derive.deriver import Deriver
from receiver.firehose.body import InflightBudget
from receiver.firehose.handler import AccessKeys, IngestSettings
from receiver.firehose.telemetry import Telemetry
from receiver.formats import SeriesCache
from receiver.keys import DERIVER, INGEST, RULES, SCRAPE, STORE, TELEMETRY
from receiver.model import MINUTE_MS, DerivedValue
from receiver.rules import RuleHolder
from receiver.server.app import INGEST_PATH, create_app
from receiver.store import open_store_from_url
from receiver.views import prometheus
from tests.apps import serve_app
from tests.builders import Delivery, make_sample

SERVICE = "aws-dynamodb::123456789012"
METRIC = "aws_dynamodb_endpoint_consumed_read_capacity_units"
SETTLE_S = 300
STALE_AFTER_S = 600
MINUTE = 1_000 * MINUTE_MS  # a minute start, far from the epoch
PLAIN = {"Accept-Encoding": "identity"}


def samples_of(text: str) -> dict[str, str]:
    """``name{labels}`` -> value for every sample line of an exposition."""
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    return dict(line.rsplit(" ", 1) for line in lines)


def gauge(metric: str, endpoint: str = "GameScores") -> str:
    return f'{metric}{{service="{SERVICE}",endpoint="{endpoint}",layer="AWS_DYNAMODB"}}'


def consumed(minute_ms: int, value: float) -> DerivedValue:
    return DerivedValue(METRIC, "endpoint", SERVICE, "GameScores", "AWS_DYNAMODB", minute_ms, value)


class Clock:
    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def __call__(self) -> float:
        return self.now_ms / 1000


class Scrape:
    """/metrics alone on an app, over a memory store the test fills, with a clock it sets."""

    def __init__(self, store, clock: Clock, budget: InflightBudget, telemetry: Telemetry) -> None:
        self.store = store
        self.clock = clock
        self.budget = budget
        self.telemetry = telemetry
        self.client = None

    async def get(self, headers: dict[str, str] | None = None):
        return await self.client.get(prometheus.PATH, headers=headers or PLAIN)

    async def samples(self) -> dict[str, str]:
        response = await self.get()
        assert response.status == 200
        return samples_of(await response.text())


@pytest.fixture
async def scrape():
    store = open_store_from_url("memory://", minute_retention_days=3650, hour_retention_days=3650)
    rules = RuleHolder(REPOSITORY_RULES)
    scrape = Scrape(store, Clock(0), InflightBudget(1000), Telemetry())
    app = web.Application()
    app[STORE] = store
    app[RULES] = rules
    app[TELEMETRY] = scrape.telemetry
    app[INGEST] = IngestSettings(
        keys=AccessKeys(()), budget=scrape.budget, record_format=None, series_cache=SeriesCache()
    )
    app[DERIVER] = Deriver(store, rules, minute_retention_days=3650)
    app[SCRAPE] = prometheus.ScrapeSettings(
        prometheus.MinuteWindow(settle_s=SETTLE_S, stale_after_s=STALE_AFTER_S), clock=scrape.clock
    )
    prometheus.add_routes(app)
    await store.open()
    try:
        async with serve_app(app) as client:
            scrape.client = client
            yield scrape
    finally:
        await store.close()


async def test_the_latest_complete_minute_is_exposed_not_a_newer_one_still_settling(scrape) -> None:
    await scrape.store.put_derived(MINUTE_MS, MINUTE, 1, [consumed(MINUTE, 1.5)])
    newer = MINUTE + MINUTE_MS
    await scrape.store.put_derived(MINUTE_MS, newer, 1, [consumed(newer, 9.0)])
    scrape.clock.now_ms = newer + MINUTE_MS + SETTLE_S * 1000 - 1  # the newer one is 1 ms short
    found = await scrape.samples()
    assert found[gauge(METRIC)] == "1.5"
    assert found["metric_stream_receiver_latest_complete_minute_timestamp_seconds"] == str(MINUTE // 1000)


async def test_past_the_stale_after_time_the_derived_gauges_go_but_the_minute_stays(scrape) -> None:
    await scrape.store.put_derived(MINUTE_MS, MINUTE, 1, [consumed(MINUTE, 1.5)])
    scrape.clock.now_ms = MINUTE + MINUTE_MS + (SETTLE_S + STALE_AFTER_S) * 1000
    found = await scrape.samples()
    assert not [name for name in found if name.startswith("aws_dynamodb_")]
    assert found["metric_stream_receiver_latest_complete_minute_timestamp_seconds"] == str(MINUTE // 1000)


async def test_with_no_complete_minute_yet_there_is_no_minute_timestamp(scrape) -> None:
    found = await scrape.samples()
    assert "metric_stream_receiver_latest_complete_minute_timestamp_seconds" not in found
    assert found["metric_stream_receiver_store_up"] == "1"


async def test_the_content_type_is_the_text_format_version_0_0_4(scrape) -> None:
    response = await scrape.get()
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"


async def test_the_body_is_gzipped_for_a_scraper_that_accepts_it(scrape) -> None:
    plain = await (await scrape.get()).read()
    response = await scrape.get({"Accept-Encoding": "gzip"})
    assert response.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(await response.read()) == plain


async def test_a_failing_store_leaves_the_receivers_own_metrics_and_store_up_0(scrape) -> None:
    await scrape.store.put_derived(MINUTE_MS, MINUTE, 1, [consumed(MINUTE, 1.5)])
    scrape.clock.now_ms = MINUTE + MINUTE_MS + SETTLE_S * 1000
    await scrape.store.close()  # every call now raises StoreError
    found = await scrape.samples()
    assert found["metric_stream_receiver_store_up"] == "0"
    assert gauge(METRIC) not in found
    assert "metric_stream_receiver_firehose_samples_total" in found


async def test_a_hanging_store_is_given_up_on_so_the_scrape_still_answers(scrape, monkeypatch) -> None:
    monkeypatch.setattr(prometheus, "STORE_TIMEOUT_S", 0.05)

    async def hang() -> None:
        await asyncio.sleep(3600)

    monkeypatch.setattr(scrape.store, "ping", hang)
    found = await scrape.samples()
    assert found["metric_stream_receiver_store_up"] == "0"


async def test_a_store_up_but_slow_to_read_is_up_and_only_its_gauges_are_left_out(scrape, monkeypatch) -> None:
    """Its reads queue behind the deriver's: busy, not broken (before, store_up said 0)."""
    await scrape.store.put_derived(MINUTE_MS, MINUTE, 1, [consumed(MINUTE, 1.5)])
    scrape.clock.now_ms = MINUTE + MINUTE_MS + SETTLE_S * 1000
    monkeypatch.setattr(prometheus, "STORE_TIMEOUT_S", 0.05)

    async def slow(*args) -> None:
        await asyncio.sleep(3600)

    monkeypatch.setattr(scrape.store, "bucket_values", slow)
    found = await scrape.samples()
    assert found["metric_stream_receiver_store_up"] == "1"
    assert gauge(METRIC) not in found


async def test_in_flight_bytes_and_their_budget_are_gauges(scrape) -> None:
    scrape.budget.reserve(0, 300)
    found = await scrape.samples()
    assert found["metric_stream_receiver_inflight_body_bytes"] == "300"
    assert found["metric_stream_receiver_inflight_body_bytes_limit"] == "1000"


# -- the receiver's own counters, moved by real deliveries ------------------------------

KEY = "secret"


@pytest.fixture
async def receiver():
    config = ServeConfig(access_keys=(KEY,), derive_interval_s=0.01)
    app = create_app(config, open_store_from_url("memory://"))
    async with serve_app(app) as client:
        yield client


async def deliver(client, body: bytes, headers: dict[str, str]) -> int:
    response = await client.post(INGEST_PATH, data=body, headers=headers)
    return response.status


async def own_metrics(client) -> dict[str, str]:
    response = await client.get(prometheus.PATH, headers=PLAIN)
    return samples_of(await response.text())


async def test_deliveries_are_counted_by_status_and_refusals_by_reason(receiver) -> None:
    good = Delivery([make_sample()], access_key=KEY)
    bad_record = Delivery(records=[b"\x00\x01 not a record"], access_key=KEY)
    envelope = Delivery([make_sample()], access_key=KEY)
    body = Delivery([make_sample()], access_key=KEY)
    statuses = [
        await deliver(receiver, good.body, good.headers),
        await deliver(receiver, good.body, good.headers),  # a retry: a duplicate
        await deliver(receiver, bad_record.body, bad_record.headers),
        await deliver(receiver, b"{not json", envelope.headers),
        await deliver(receiver, b"not gzip", {**body.headers, "Content-Encoding": "gzip"}),
        await deliver(receiver, good.body, {**good.headers, "X-Amz-Firehose-Access-Key": "wrong"}),
    ]
    assert statuses == [200, 200, 200, 400, 400, 401]  # the bad record is quarantined, the rest taken
    found = await own_metrics(receiver)
    prefix = "metric_stream_receiver_firehose_"
    assert found[prefix + 'requests_total{status="200"}'] == "3"
    assert found[prefix + 'requests_total{status="400"}'] == "2"
    assert found[prefix + 'requests_total{status="401"}'] == "1"
    assert found[prefix + "duplicate_requests_total"] == "1"
    assert [found[prefix + f'decode_errors_total{{reason="{r}"}}'] for r in ("body", "envelope")] == ["1", "1"]
    assert found['metric_stream_receiver_records_quarantined_total{reason="empty_frame"}'] == "1"
    assert found[prefix + "request_duration_seconds_count"] == "6"
    assert found[prefix + 'request_duration_seconds_bucket{le="+Inf"}'] == "6"


async def test_records_and_samples_count_what_was_stored_and_bytes_every_body_read(receiver) -> None:
    plain = Delivery([make_sample("A"), make_sample("B")], access_key=KEY)
    zipped = Delivery([make_sample("C")], access_key=KEY, compress=True)
    quarantined = Delivery(records=[b"\x00\x01 not a record"], access_key=KEY)
    for delivery in (plain, zipped, quarantined):
        await deliver(receiver, delivery.body, delivery.headers)
    found = await own_metrics(receiver)
    prefix = "metric_stream_receiver_firehose_"
    assert found[prefix + "samples_total"] == "3"
    # Every record of a committed delivery, the quarantined one included.
    assert found[prefix + "records_total"] == str(len(plain.records) + len(zipped.records) + 1)
    assert found[prefix + "received_bytes_total"] == str(len(plain.body) + len(zipped.body) + len(quarantined.body))


async def test_a_failure_in_telemetry_never_fails_a_delivery(receiver, monkeypatch, caplog) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("telemetry bug")

    monkeypatch.setattr(receiver.app[TELEMETRY]._latency, "observe", broken)
    delivery = Delivery([make_sample()], access_key=KEY)
    assert await deliver(receiver, delivery.body, delivery.headers) == 200
    assert await receiver.app[STORE].count_samples() == 1
    assert "could not record a delivery's telemetry" in caplog.text
