"""OTLP export end to end: Firehose deliveries in, OTLP/HTTP requests out to an in-test
backend that decodes them with opentelemetry-proto and records them."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp import web
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsPartialSuccess,
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)

from receiver.config import REPOSITORY_RULES, ServeConfig
from receiver.derive.deriver import Deriver
from receiver.exporters.otlp import OtlpExporter, OtlpExportSettings
from receiver.exporters.otlp_encode import ucum_unit
from receiver.keys import OTLP_EXPORTER
from receiver.model import DerivedValue, Sample
from receiver.rules import RuleHolder
from receiver.server.app import INGEST_PATH, create_app
from receiver.store import MemoryStore, StoreError, open_store_from_url
from tests.apps import AppClient, serve_app
from tests.builders import T0, Delivery, make_sample
from tests.processes import ReceiverProcess

SERVICE = "aws-dynamodb::123456789012"
LAYER = "AWS_DYNAMODB"
T0_S = T0 // 1000
FAST = {"settle_s": 0.0, "backoff_initial_s": 0.01, "backoff_max_s": 0.05, "idle_poll_s": 0.01, "flush_timeout_s": 5.0}
"""Small intervals so tests stay quick; the builders' samples are from 2023, long complete."""
DEADLINE_S = 20.0
"""How long a test waits for something that should happen before calling it a failure."""


# -- the in-test OTLP/HTTP backend ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Point:
    service: str
    layer: str
    metric: str
    unit: str
    endpoint: str | None
    t: int
    value: float


@dataclass(frozen=True, slots=True)
class Received:
    status: int
    content_type: str
    content_encoding: str
    points: tuple[Point, ...]

    @property
    def minutes(self) -> set[int]:
        return {point.t for point in self.points}


def decode_points(request: ExportMetricsServiceRequest) -> tuple[Point, ...]:
    points = []
    for resource_metrics in request.resource_metrics:
        resource = {kv.key: kv.value.string_value for kv in resource_metrics.resource.attributes}
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                assert metric.WhichOneof("data") == "gauge"
                for point in metric.gauge.data_points:
                    assert point.time_unix_nano % 1_000_000_000 == 0
                    attributes = {kv.key: kv.value.string_value for kv in point.attributes}
                    points.append(
                        Point(
                            resource["service.name"],
                            resource["service.layer"],
                            metric.name,
                            metric.unit,
                            attributes.get("endpoint"),
                            point.time_unix_nano // 1_000_000_000,
                            point.as_double,
                        )
                    )
    return tuple(points)


class OtlpBackend:
    """Answers ``statuses`` in turn, then ``status``; ``hold`` (when set) keeps requests waiting."""

    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.status = 200
        self.headers: dict[str, str] = {}
        self.partial: ExportMetricsPartialSuccess | None = None
        self.hold: asyncio.Event | None = None
        self.entered = asyncio.Event()
        self.received: list[Received] = []
        self._changed = asyncio.Condition()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/metrics", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        encoding = request.headers.get("Content-Encoding", "")
        if encoding == "gzip":
            body = gzip.decompress(body)
        message = ExportMetricsServiceRequest.FromString(body)
        self.entered.set()
        if self.hold is not None:
            await self.hold.wait()
        status = self.statuses.pop(0) if self.statuses else self.status
        async with self._changed:
            self.received.append(Received(status, request.content_type, encoding, decode_points(message)))
            self._changed.notify_all()
        if status == 200:
            answer = ExportMetricsServiceResponse(partial_success=self.partial)
            return web.Response(body=answer.SerializeToString(), content_type="application/x-protobuf")
        status_message = b"\x12\x04busy"  # google.rpc.Status{message: "busy"}
        return web.Response(
            status=status, body=status_message, content_type="application/x-protobuf", headers=self.headers
        )

    @property
    def accepted(self) -> list[Received]:
        return [r for r in self.received if r.status == 200]

    def sends_of(self, minute_s: int) -> list[Received]:
        return [r for r in self.accepted if minute_s in r.minutes]

    def accepted_minutes(self) -> list[int]:
        return sorted(t for r in self.accepted for t in r.minutes)

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        async with asyncio.timeout(DEADLINE_S):
            async with self._changed:
                await self._changed.wait_for(predicate)


@pytest.fixture
async def backend() -> AsyncIterator[tuple[OtlpBackend, str]]:
    otlp = OtlpBackend()
    async with serve_app(otlp.app()) as server:
        try:
            yield otlp, server.base + "/v1/metrics"
        finally:
            if otlp.hold is not None:
                otlp.hold.set()


# -- the receiver -------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def receiver(url: str, **tuning: float) -> AsyncIterator[AppClient]:
    settings = OtlpExportSettings(url, **{**FAST, **tuning})
    config = ServeConfig(
        allow_unauthenticated=True,
        derive_interval_s=0.01,
        minute_retention_days=3650,
        hour_retention_days=3650,
        otlp_export=settings,
        metrics_settle_s=settings.settle_s,  # one notion of a complete minute, as serve has it
    )
    store = open_store_from_url("memory://", minute_retention_days=3650, hour_retention_days=3650)
    async with serve_app(create_app(config, store)) as client:
        yield client


def exporter_of(client: AppClient) -> OtlpExporter:
    return client.app[OTLP_EXPORTER]


def minute_samples(minute: int, tables: Iterable[str] = ("GameScores", "Orders")) -> list[Sample]:
    samples = []
    for table in tables:
        samples.append(make_sample(table, "ConsumedReadCapacityUnits", minute, value=60.0 * (minute + 1), count=3))
        samples.append(
            make_sample(table, "SuccessfulRequestLatency", minute, value=40.0 + minute, count=8, operation="GetItem")
        )
    return samples


def minute_s(minute: int) -> int:
    return T0_S + 60 * minute


async def eventually(predicate: Callable[[], bool]) -> None:
    """Wait until ``predicate`` holds (checked every 10 ms); fail after DEADLINE_S."""
    async with asyncio.timeout(DEADLINE_S):
        while not predicate():
            await asyncio.sleep(0.01)


async def query_api_points(client: AppClient, start_s: int, end_s: int) -> dict[tuple, tuple[float, str]]:
    """Every point ``/api/v1/query`` gives for every metric and entity, keyed like exports."""
    entities = await (await client.get("/api/v1/entities")).json()
    metrics = (await (await client.get("/api/v1/metrics")).json())["metrics"]
    found = {}
    for service in entities["services"]:
        for metric in metrics:
            targets = service["endpoints"] if metric["scope"] == "endpoint" else [None]
            for endpoint in targets:
                params = {"metric": metric["name"], "service": service["name"], "start": start_s, "end": end_s}
                if endpoint is not None:
                    params["endpoint"] = endpoint
                body = await (await client.get("/api/v1/query", params=params)).json()
                for t, value in body["points"]:
                    key = (service["name"], service["layer"], metric["name"], endpoint, t)
                    found[key] = (value, ucum_unit(metric["unit"]))
    return found


def exported_points(received: Iterable[Received]) -> dict[tuple, tuple[float, str]]:
    """The last exported value of each point."""
    return {(p.service, p.layer, p.metric, p.endpoint, p.t): (p.value, p.unit) for r in received for p in r.points}


# -- the tests -------------------------------------------------------------------------


async def test_exported_gauges_equal_the_query_api(backend):
    otlp, url = backend
    async with receiver(url) as client:
        await client.deliver(minute_samples(0) + minute_samples(1))
        await otlp.wait_until(lambda: {minute_s(0), minute_s(1)} <= set(otlp.accepted_minutes()))
        expected = await query_api_points(client, minute_s(0), minute_s(1))
    exported = exported_points(otlp.accepted)
    # Per minute: consumed reads and GetItem latency, for the account and for each of two tables.
    assert len(expected) == 2 * (2 + 2 * 2)
    assert exported == expected
    assert {(r.content_type, r.content_encoding) for r in otlp.received} == {("application/x-protobuf", "gzip")}


async def test_a_backend_answering_503_then_200_gets_each_minute_exactly_once(backend):
    otlp, url = backend
    otlp.statuses = [503, 503, 503]
    async with receiver(url) as client:
        await client.deliver(minute_samples(0) + minute_samples(1) + minute_samples(2))
        wanted = {minute_s(0), minute_s(1), minute_s(2)}
        await otlp.wait_until(lambda: wanted <= set(otlp.accepted_minutes()))
        # A later minute goes out after anything older still pending: then nothing is left.
        await client.deliver(minute_samples(30, ["Sentinel"]))
        await otlp.wait_until(lambda: minute_s(30) in otlp.accepted_minutes())
        assert [r.status for r in otlp.received[:3]] == [503, 503, 503]
        assert otlp.accepted_minutes() == sorted(wanted | {minute_s(30)})
        assert exporter_of(client).counters.retries == 3


async def test_past_the_queue_bound_the_oldest_minutes_are_dropped_and_counted(backend, caplog):
    otlp, url = backend
    otlp.status = 503
    caplog.set_level(logging.WARNING, logger="receiver.otlp")
    async with receiver(url, max_pending=2) as client:
        exporter = exporter_of(client)
        await client.deliver([s for minute in range(5) for s in minute_samples(minute, ["GameScores"])])
        # Once three are dropped no older minute is on the wire: a failed try comes back
        # to the queue before it can be dropped.
        await eventually(lambda: exporter.counters.dropped_minutes == 3)
        assert set(exporter.pending) <= {minute_s(3) * 1000, minute_s(4) * 1000}
        otlp.status = 200  # the backend is back
        await otlp.wait_until(lambda: {minute_s(3), minute_s(4)} <= set(otlp.accepted_minutes()))
        assert exporter.counters.dropped_minutes == 3
        assert otlp.accepted_minutes() == [minute_s(3), minute_s(4)]
    drops = [r for r in caplog.records if "oldest pending minute is dropped" in r.getMessage()]
    assert sorted(r.minute for r in drops) == ["2023-11-14T22:14:00Z", "2023-11-14T22:15:00Z", "2023-11-14T22:16:00Z"]


async def test_late_data_sends_the_changed_minute_again(backend):
    otlp, url = backend
    async with receiver(url) as client:
        await client.deliver(minute_samples(0, ["GameScores"]))
        await otlp.wait_until(lambda: len(otlp.sends_of(minute_s(0))) == 1)
        await client.deliver(minute_samples(0, ["Orders"]))  # the same minute, another table
        await otlp.wait_until(lambda: len(otlp.sends_of(minute_s(0))) == 2)
        expected = await query_api_points(client, minute_s(0), minute_s(0))
        first, second = otlp.sends_of(minute_s(0))
    assert {p.endpoint for p in first.points} == {None, "GameScores"}
    assert exported_points([second]) == expected


async def test_a_recomputation_with_the_same_values_is_not_sent_again(backend):
    otlp, url = backend
    async with receiver(url) as client:
        exporter = exporter_of(client)
        samples = minute_samples(0)
        await client.deliver(samples)
        await otlp.wait_until(lambda: len(otlp.sends_of(minute_s(0))) == 1)
        await client.deliver(samples)  # Firehose delivers the same data again
        await eventually(lambda: exporter.counters.unchanged_minutes + len(otlp.sends_of(minute_s(0))) >= 2)
        assert len(otlp.sends_of(minute_s(0))) == 1
        assert exporter.counters.unchanged_minutes == 1


async def test_ingest_answers_200_while_the_backend_hangs(backend):
    otlp, url = backend
    otlp.hold = asyncio.Event()
    async with receiver(url, timeout_s=3600.0) as client:
        exporter = exporter_of(client)
        await client.deliver(minute_samples(0))
        async with asyncio.timeout(DEADLINE_S):
            await otlp.entered.wait()  # the exporter is stuck in a request
        for minute in (1, 2, 3):
            await client.deliver(minute_samples(minute))  # each answered 200 (asserted in deliver)
        assert exporter.counters.sent_minutes == 0
        assert set(exporter.pending) >= {minute_s(m) * 1000 for m in (1, 2, 3)}
        otlp.hold.set()
        await otlp.wait_until(lambda: {minute_s(m) for m in range(4)} <= set(otlp.accepted_minutes()))


async def test_a_refused_minute_is_not_retried_and_the_next_one_is_sent(backend):
    otlp, url = backend
    otlp.statuses = [400]
    async with receiver(url) as client:
        await client.deliver(minute_samples(0) + minute_samples(1))
        await otlp.wait_until(lambda: minute_s(1) in otlp.accepted_minutes())
        assert [(r.status, sorted(r.minutes)) for r in otlp.received] == [(400, [minute_s(0)]), (200, [minute_s(1)])]
        counters = exporter_of(client).counters
        assert (counters.rejected_minutes, counters.retries) == (1, 0)


async def test_a_partial_success_is_counted_and_not_retried(backend):
    otlp, url = backend
    otlp.partial = ExportMetricsPartialSuccess(rejected_data_points=2, error_message="out of order")
    async with receiver(url) as client:
        await client.deliver(minute_samples(0))
        await otlp.wait_until(lambda: len(otlp.accepted) == 1)
        await client.deliver(minute_samples(1))
        await otlp.wait_until(lambda: len(otlp.accepted) == 2)
        assert [sorted(r.minutes) for r in otlp.accepted] == [[minute_s(0)], [minute_s(1)]]
        await eventually(lambda: exporter_of(client).counters.rejected_points == 4)
        assert exporter_of(client).counters.retries == 0


async def test_retry_after_sets_the_wait_up_to_its_cap(backend, caplog):
    otlp, url = backend
    otlp.statuses = [429]
    otlp.headers = {"Retry-After": "5"}
    caplog.set_level(logging.WARNING, logger="receiver.otlp")
    # Without the header the first wait would be at most backoff_initial_s (0.01 s).
    async with receiver(url, retry_after_max_s=0.02) as client:
        await client.deliver(minute_samples(0))
        await otlp.wait_until(lambda: len(otlp.accepted) == 1)
        [retry] = [r for r in caplog.records if r.getMessage() == "OTLP export failed, will retry"]
    assert retry.retry_in_s == 0.02
    assert retry.reason == "HTTP 429: busy"


async def test_stopping_sends_a_minute_that_is_not_complete_yet(backend):
    otlp, url = backend
    async with receiver(url, settle_s=1e9) as client:  # no minute is ever complete
        exporter = exporter_of(client)
        await client.deliver(minute_samples(0))
        await eventually(lambda: exporter.pending == [minute_s(0) * 1000])
        assert otlp.received == []
    assert otlp.accepted_minutes() == [minute_s(0)]
    assert exporter.counters.unsent_at_stop == 0


async def test_stopping_gives_up_on_a_hanging_backend_after_the_flush_timeout(backend):
    otlp, url = backend
    otlp.hold = asyncio.Event()
    async with asyncio.timeout(DEADLINE_S):  # an unbounded flush would wait for the hour-long request
        async with receiver(url, settle_s=1e9, flush_timeout_s=0.2, timeout_s=3600.0) as client:
            exporter = exporter_of(client)
            await client.deliver(minute_samples(0))
            await eventually(lambda: exporter.pending == [minute_s(0) * 1000])
    assert otlp.entered.is_set() and otlp.received == []  # the request was still held when we gave up
    assert exporter.counters.unsent_at_stop == 1


class FailingReads(MemoryStore):
    """A memory store whose reads of derived values raise ``errors`` in turn, then work."""

    def __init__(self, errors: Iterable[Exception]) -> None:
        super().__init__(minute_retention_days=3650, hour_retention_days=3650)
        self.errors = list(errors)

    async def bucket_values(self, step_ms: int, bucket_ms: int) -> list[DerivedValue]:
        if self.errors:
            raise self.errors.pop(0)
        return await super().bucket_values(step_ms, bucket_ms)


@contextlib.asynccontextmanager
async def bare_exporter(
    url: str, clock: Callable[[], float], store: MemoryStore | None = None, **tuning: float
) -> AsyncIterator[tuple[Callable, OtlpExporter]]:
    """An exporter fed by a deriver, without the HTTP app: ``commit(samples)`` stores and derives."""
    store = store or MemoryStore(minute_retention_days=3650, hour_retention_days=3650)
    await store.open()
    rules = RuleHolder(REPOSITORY_RULES)
    deriver = Deriver(store, rules, minute_retention_days=3650, clock=clock)
    exporter = OtlpExporter(OtlpExportSettings(url, **{**FAST, **tuning}), store, rules, clock=clock)
    deriver.on_derived(exporter.on_derived)

    async def commit(samples: list[Sample]) -> None:
        await store.commit(str(uuid.uuid4()), samples)
        deriver.touch(samples)
        await deriver.derive_pending()

    sender = asyncio.create_task(exporter.run())
    try:
        yield commit, exporter
    finally:
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
        await exporter.flush()
        await store.close()


async def test_a_minute_changing_before_it_is_complete_is_sent_once_when_complete(backend):
    otlp, url = backend
    now = [T0 / 1000 + 30]  # half-way through minute 0
    async with bare_exporter(url, lambda: now[0], settle_s=30.0) as (commit, exporter):
        await commit(minute_samples(0, ["GameScores"]))
        await commit(minute_samples(0, ["Orders"]))
        now[0] = minute_s(1) + 29  # minute 0 ended 29 s ago: not complete yet
        await asyncio.sleep(0.05)  # several of the exporter's wake-ups
        assert otlp.received == [] and exporter.pending == [T0]
        now[0] = minute_s(1) + 30
        await otlp.wait_until(lambda: len(otlp.accepted) == 1)
        now[0] = minute_s(40)
        await commit(minute_samples(5, ["Sentinel"]))  # sent after anything older still pending
        await otlp.wait_until(lambda: minute_s(5) in otlp.accepted_minutes())
        [sent] = otlp.sends_of(minute_s(0))
    assert {p.endpoint for p in sent.points} == {None, "GameScores", "Orders"}


async def test_a_store_failure_while_reading_a_minute_is_retried(backend):
    otlp, url = backend
    store = FailingReads([StoreError("throttled"), StoreError("throttled")])
    async with bare_exporter(url, time.time, store) as (commit, exporter):
        await commit(minute_samples(0))
        await otlp.wait_until(lambda: len(otlp.accepted) == 1)
        assert otlp.accepted_minutes() == [minute_s(0)]
        assert exporter.counters.retries == 2


async def test_an_unexpected_error_skips_the_minute_and_export_goes_on(backend, caplog):
    otlp, url = backend
    caplog.set_level(logging.ERROR, logger="receiver.otlp")
    store = FailingReads([RuntimeError("a bug")])
    async with bare_exporter(url, time.time, store) as (commit, exporter):
        await commit(minute_samples(0))
        await eventually(lambda: exporter.counters.rejected_minutes == 1)
        await commit(minute_samples(1))
        await otlp.wait_until(lambda: len(otlp.accepted) == 1)
        assert otlp.accepted_minutes() == [minute_s(1)]
    assert "exporting a minute failed unexpectedly" in caplog.text


@pytest.mark.slow
async def test_the_serve_command_exports_to_the_url_from_the_environment(backend):
    otlp, url = backend
    process = ReceiverProcess(
        "--store",
        "memory://",
        "--allow-unauthenticated",
        env={"RECEIVER_EXPORT_OTLP": url, "RECEIVER_RETENTION_MINUTES_DAYS": "3650"},
    )
    with process:
        await asyncio.to_thread(process.wait_listening)
        delivery = Delivery(minute_samples(0))
        async with aiohttp.ClientSession() as session:
            async with session.post(process.url + INGEST_PATH, data=delivery.body, headers=delivery.headers) as answer:
                assert answer.status == 200
        await otlp.wait_until(lambda: minute_s(0) in otlp.accepted_minutes())
        process.terminate()
        assert await asyncio.to_thread(process.wait) == 0
