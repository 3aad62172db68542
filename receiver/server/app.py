"""The aiohttp application: its state (``receiver.keys``), routes, middlewares and the lifecycle of
what it owns (the store, the deriver, the retention sweep, OTLP export, alarms)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web

from receiver.alarms.runtime import Alarms
from receiver.config import ConfigError, ServeConfig, access_problem
from receiver.derive.completeness import Completeness
from receiver.derive.deriver import Deriver
from receiver.derive.worker import Evaluator
from receiver.errors import HttpError, Kind, http_error
from receiver.exporters.otlp import OtlpExporter
from receiver.firehose.body import InflightBudget
from receiver.firehose.handler import AccessKeys, IngestSettings, handle_delivery
from receiver.firehose.telemetry import Telemetry
from receiver.formats import SeriesCache
from receiver.inventory.poller import InventoryPoller
from receiver.inventory.tags import TagLabels
from receiver.keys import (
    ALARMS,
    COMPLETENESS,
    CONFIG,
    DASHBOARD_FILES,
    DERIVER,
    IN_FLIGHT,
    INGEST,
    INVENTORY,
    OTLP_EXPORTER,
    RULES,
    SCRAPE,
    STORE,
    TAG_LABELS,
    TELEMETRY,
)
from receiver.rules import RuleHolder
from receiver.store import Store, StoreError
from receiver.views import alarms as alarms_view
from receiver.views import api, dashboard, pipeline, prometheus, quarantine, summary, tables

log = logging.getLogger("receiver.server")

INGEST_PATH = "/aws/firehose/metrics"
MAX_HEADER_BYTES = 128 * 1024
"""Common attributes can make a long header; aiohttp's default cap is 8 KiB."""

RUNNER_OPTIONS: dict[str, Any] = {  # keyword arguments of web.AppRunner, of several types
    # We gunzip ourselves, with a cap; aiohttp's own would bypass it.
    "auto_decompress": False,
    "max_field_size": MAX_HEADER_BYTES,
    # Our own per-delivery log line says more than the access log would.
    "access_log": None,
    # A client that disconnects must not interrupt a commit half way (aiohttp's default).
    "handler_cancellation": False,
}
"""Options of every runner of the app, tests' included."""


class InFlight:
    """Counts requests being handled, so shutdown can wait until none is left."""

    def __init__(self) -> None:
        self.count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def enter(self) -> None:
        self.count += 1
        self._idle.clear()

    def leave(self) -> None:
        self.count -= 1
        if self.count == 0:
            self._idle.set()

    async def wait_idle(self, timeout: float) -> bool:
        try:
            async with asyncio.timeout(timeout):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True


def create_app(
    config: ServeConfig,
    store: Store,
    rules: RuleHolder | None = None,
    evaluator: Evaluator | None = None,
    clock: Callable[[], float] = time.time,
) -> web.Application:
    """The receiver's application; the store is opened on startup and closed on cleanup.

    ``rules`` defaults to the rules loaded from ``config.rules_dir`` (RuleError if broken);
    ``evaluator`` to evaluating them in a thread (``serve`` uses a worker process). ``clock``
    is what says when minutes settle and alarms are evaluated (tests move it by hand).
    Authentication fails closed: ConfigError without an access key unless
    ``config.allow_unauthenticated``.
    """
    if (problem := access_problem(config.access_keys, config.allow_unauthenticated)) is not None:
        raise ConfigError(problem)
    app = web.Application(middlewares=[count_in_flight, json_errors])
    app[IN_FLIGHT] = InFlight()
    app[CONFIG] = config
    app[STORE] = store
    app[RULES] = rules if rules is not None else RuleHolder(config.rules_dir)
    # One notion of a complete minute for alarms, /metrics and the OTLP export.
    app[COMPLETENESS] = completeness = Completeness(config.metrics_settle_s, clock)
    app[DERIVER] = Deriver(
        store,
        app[RULES],
        minute_retention_days=config.minute_retention_days,
        interval_s=config.derive_interval_s,
        hour_interval_s=config.hour_interval_s,
        evaluator=evaluator,
        completeness=completeness,
    )
    app[INGEST] = IngestSettings(
        keys=AccessKeys(config.access_keys),
        budget=InflightBudget(config.max_inflight_bytes),
        record_format=config.record_format,
        series_cache=SeriesCache(),
        read_timeout_s=config.read_timeout_s,
    )
    app[TELEMETRY] = Telemetry()
    app[SCRAPE] = prometheus.ScrapeSettings(
        prometheus.MinuteWindow(settle_s=config.metrics_settle_s, completeness=completeness), clock=clock
    )
    app[DASHBOARD_FILES] = dashboard.static_files()
    if config.inventory is not None:
        app[INVENTORY] = InventoryPoller(store, config.inventory)
    if config.inventory is not None and config.inventory.tag_labels:
        app[TAG_LABELS] = TagLabels(store, config.inventory.tag_labels)
    if config.otlp_export is not None:
        app[OTLP_EXPORTER] = OtlpExporter(
            config.otlp_export, store, app[RULES], tags=app.get(TAG_LABELS), completeness=completeness
        )
        app[DERIVER].on_derived(app[OTLP_EXPORTER].on_derived)
    if config.alarms is not None:
        # RuleError (file, line, reason) for a broken alarm file.
        app[ALARMS] = Alarms(
            config.alarms, store, {m.name: m.scope for m in app[RULES].current.metrics},
            settle_s=config.metrics_settle_s, completeness=completeness, clock=clock,
        )  # fmt: skip
    app.cleanup_ctx.append(_store_lifecycle)
    app.on_cleanup.append(_stop_decoding)
    app.cleanup_ctx.append(_background_work)
    app.cleanup_ctx.append(_alarm_lifecycle)
    app.router.add_post(INGEST_PATH, _ingest)
    # Load balancer health checks probe the ingest path with GET or HEAD.
    app.router.add_get(INGEST_PATH, _empty_ok)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    api.add_routes(app)
    summary.add_routes(app)
    tables.add_routes(app)
    pipeline.add_routes(app)
    prometheus.add_routes(app)
    alarms_view.add_routes(app)
    quarantine.add_routes(app)
    dashboard.add_routes(app)
    return app


async def _store_lifecycle(app: web.Application) -> AsyncIterator[None]:
    await app[STORE].open()
    if not app[CONFIG].access_keys:
        log.warning("--allow-unauthenticated and no access key: every delivery is accepted without authentication")
    yield
    await app[STORE].close()


async def _stop_decoding(app: web.Application) -> None:
    app[INGEST].decoding.close()


async def _background_work(app: web.Application) -> AsyncIterator[None]:
    """The deriver and the retention sweep run while the app serves."""
    tasks = [
        asyncio.create_task(app[DERIVER].run(), name="deriver"),
        asyncio.create_task(_prune_forever(app[STORE], app[CONFIG].prune_interval_s), name="prune"),
    ]
    exporter = app.get(OTLP_EXPORTER)
    if exporter is not None:
        tasks.append(asyncio.create_task(exporter.run(), name="otlp-export"))
    if INVENTORY in app:
        tasks.append(asyncio.create_task(app[INVENTORY].run(), name="inventory"))
    yield
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    # What was committed but not yet derived is derived now, so a clean stop leaves
    # nothing stale (a crash is covered by the deriver's recovery at the next start).
    try:
        await app[DERIVER].derive_pending()
    except StoreError as exc:
        log.warning("could not derive the last changes before stopping", extra={"error": str(exc)})
    if exporter is not None:
        # Bounded by its own flush timeout; runs before the store closes.
        await exporter.flush()


async def _alarm_lifecycle(app: web.Application) -> AsyncIterator[None]:
    """Alarm evaluation and notifications, stopped before the store closes."""
    alarms = app.get(ALARMS)
    if alarms is not None:
        await alarms.start()
    yield
    if alarms is not None:
        await alarms.stop()


def alarm_reloader(app: web.Application) -> Callable[[], Awaitable[object]] | None:
    """What reloads the alarm rules on SIGHUP, after the metric rules; None without alarms."""
    alarms = app.get(ALARMS)
    if alarms is None:
        return None
    rules = app[RULES]
    return lambda: alarms.reload_async({metric.name: metric.scope for metric in rules.current.metrics})


async def _prune_forever(store: Store, interval_s: float) -> None:
    while True:
        try:
            await store.prune(int(time.time() * 1000))
        except StoreError as exc:
            log.warning("retention sweep failed, will retry", extra={"error": str(exc)})
        await asyncio.sleep(interval_s)


async def _ingest(request: web.Request) -> web.Response:
    app = request.app
    return await handle_delivery(request, app[INGEST], app[STORE], app[DERIVER], app[TELEMETRY])


async def _empty_ok(request: web.Request) -> web.Response:
    return web.Response(status=200)


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _readyz(request: web.Request) -> web.Response:
    try:
        await request.app[STORE].ping()
    except StoreError as exc:
        return HttpError(Kind.STORE_UNAVAILABLE, str(exc)).response(status="unavailable")
    return web.json_response({"status": "ready"})


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def count_in_flight(request: web.Request, handler: Handler) -> web.StreamResponse:
    in_flight = request.app[IN_FLIGHT]
    in_flight.enter()
    try:
        return await handler(request)
    finally:
        in_flight.leave()


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Failures as ``{"error": ...}`` with their kind's status (receiver/errors.py): the views'
    HttpErrors, a stage's exception that reached here (a StoreError: 503), and the router's
    404 and 405 instead of aiohttp's text pages. Anything else (a bug) is aiohttp's 500."""
    try:
        return await handler(request)
    except Exception as exc:
        error = http_error(exc)
        if error is None:
            raise
        return error.response()
