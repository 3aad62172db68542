"""The aiohttp application: routes, the store's lifecycle, and graceful serving."""

from __future__ import annotations

import asyncio
import logging
import resource
import signal
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web
from yarl import URL

from receiver.alarms import api as alarms_api
from receiver.alarms.metrics import alarm_families
from receiver.alarms.runtime import Alarms
from receiver.config import ConfigError, ServeConfig, access_problem
from receiver.connections import AcceptErrors, Connection, ConnectionLimit
from receiver.derive.deriver import Deriver
from receiver.derive.worker import Evaluator, ProcessEvaluator
from receiver.firehose.body import InflightBudget
from receiver.firehose.handler import AccessKeys, IngestSettings, handle_delivery
from receiver.model import DAY_MS
from receiver.rules import RuleError, RuleHolder
from receiver.store import Store, StoreError
from receiver.telemetry import Telemetry
from receiver.views import api, dashboard, prometheus, quarantine
from receiver.views.otlp import OtlpExporter

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

FD_RESERVE = 64
"""Open files the receiver needs besides its connections: the store's, the rules worker's
pipes, outgoing connections (DynamoDB, OTLP, alarm webhooks), logs."""


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


CONFIG = web.AppKey("config", ServeConfig)
IN_FLIGHT = web.AppKey("in_flight", InFlight)
RULES = web.AppKey("rules", RuleHolder)
DERIVER = web.AppKey("deriver", Deriver)
STORE = web.AppKey("store", Store)
INGEST = web.AppKey("ingest", IngestSettings)
TELEMETRY = web.AppKey("telemetry", Telemetry)
OTLP_EXPORTER = web.AppKey("otlp_exporter", OtlpExporter)
ALARMS = web.AppKey("alarms", Alarms)


def create_app(
    config: ServeConfig, store: Store, rules: RuleHolder | None = None, evaluator: Evaluator | None = None
) -> web.Application:
    """The receiver's application; the store is opened on startup and closed on cleanup.

    ``rules`` defaults to the rules loaded from ``config.rules_dir`` (RuleError if broken);
    ``evaluator`` to evaluating them in a thread (``serve`` uses a worker process).
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
    app[DERIVER] = Deriver(
        store,
        app[RULES],
        minute_retention_days=config.minute_retention_days,
        interval_s=config.derive_interval_s,
        hour_interval_s=config.hour_interval_s,
        evaluator=evaluator,
    )
    app[INGEST] = IngestSettings(
        keys=AccessKeys(config.access_keys),
        budget=InflightBudget(config.max_inflight_bytes),
        record_format=config.record_format,
        read_timeout_s=config.read_timeout_s,
    )
    app[TELEMETRY] = Telemetry()
    if config.otlp_export is not None:
        app[OTLP_EXPORTER] = OtlpExporter(config.otlp_export, store, app[RULES])
        app[DERIVER].on_derived(app[OTLP_EXPORTER].on_derived)
    if config.alarms is not None:
        # RuleError (file, line, reason) for a broken alarm file.
        app[ALARMS] = Alarms(
            config.alarms, store, {m.name: m.scope for m in app[RULES].current.metrics},
            settle_s=config.metrics_settle_s,
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
    api.add_routes(
        app,
        store=lambda request: request.app[STORE],
        rules=lambda request: request.app[RULES],
        entity_window_ms=int(config.minute_retention_days * DAY_MS),
    )
    prometheus.add_routes(
        app,
        store=lambda request: request.app[STORE],
        rules=lambda request: request.app[RULES],
        telemetry=lambda request: request.app[TELEMETRY],
        budget=lambda request: request.app[INGEST].budget,
        window=prometheus.MinuteWindow(settle_s=config.metrics_settle_s),
        extra=lambda request: [
            *prometheus.deriver_families(request.app[DERIVER].counts()),
            *(alarm_families(request.app[ALARMS].counters.snapshot()) if ALARMS in request.app else []),
        ],
    )
    alarms_api.add_routes(
        app,
        store=lambda request: request.app[STORE],
        rules=lambda request: request.app[ALARMS].rules if ALARMS in request.app else [],
    )
    quarantine.add_routes(app, store=lambda request: request.app[STORE])
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


def _alarm_reloader(app: web.Application) -> Callable[[], Awaitable[object]] | None:
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
        return web.json_response({"status": "unavailable", "error": str(exc)}, status=503)
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
    """Routing errors (404, 405, ...) as ``{"error": ...}`` instead of aiohttp's text pages."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return web.json_response(
            {"error": exc.reason}, status=exc.status, headers=_allow_header(exc)
        )


def _allow_header(exc: web.HTTPException) -> dict[str, str]:
    allow = exc.headers.get("Allow")
    return {"Allow": allow} if allow else {}


class ReceiverSite(web.BaseSite):
    """aiohttp's TCPSite with the receiver's connections (receiver/connections.py): read
    deadlines, the idle timeout and the connection limit of ``config``."""

    def __init__(self, runner: web.AppRunner, config: ServeConfig, ssl_context: ssl.SSLContext | None = None) -> None:
        super().__init__(runner, ssl_context=ssl_context)
        self._config = config
        self.limit = ConnectionLimit(config.max_connections, config.accept_log_interval_s)

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        return str(URL.build(scheme=scheme, host=self._config.host, port=self.port))

    @property
    def port(self) -> int:
        """The bound port (the configured one until started)."""
        # aiohttp types BaseSite._server as asyncio.AbstractServer, which has no sockets;
        # loop.create_server (start, below) sets an asyncio.Server, which does.
        if self._server is not None and self._server.sockets:  # type: ignore[attr-defined]
            bound: int = self._server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
            return bound
        return self._config.port

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        server = self._runner.server
        assert server is not None
        options = {k: v for k, v in RUNNER_OPTIONS.items() if k != "handler_cancellation"}
        config = self._config

        def connection() -> Connection:
            return Connection(
                server, loop=loop, limit=self.limit, read_timeout_s=config.read_timeout_s,
                keepalive_timeout=config.idle_timeout_s, **options,
            )

        self._server = await loop.create_server(
            connection, config.host, config.port, ssl=self._ssl_context, backlog=self._backlog)

    async def stop(self) -> None:
        await super().stop()
        self.limit.close()


def _check_open_file_limit(config: ServeConfig) -> None:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and config.max_connections + FD_RESERVE > soft:
        log.warning(
            "--max-connections leaves too few of the open files this process may have; "
            "lower it or raise the limit (ulimit -n)",
            extra={"max_connections": config.max_connections, "open_file_limit": soft},
        )


async def _drain(runner: web.AppRunner, site: web.BaseSite, timeout: float) -> None:
    """Stop accepting connections, then wait for the requests in flight to finish.

    aiohttp's own shutdown stops reading from open connections at once, which would cut off
    a delivery whose body is still arriving; so the listening socket is closed first and
    running requests get up to ``timeout`` seconds before the runner cleans up.
    """
    in_flight = runner.app[IN_FLIGHT]
    log.info("stopping: finishing in-flight requests", extra={"in_flight": in_flight.count})
    listener = site._server  # the asyncio server: closing it only stops accepting
    if listener is not None:
        listener.close()
    if not await in_flight.wait_idle(timeout):
        log.warning("shutdown timeout: requests still in flight are cut off", extra={"in_flight": in_flight.count})


def tls_context(config: ServeConfig) -> ssl.SSLContext | None:
    """A server TLS context (TLS 1.2 and newer), or ConfigError naming the unreadable file."""
    if config.tls_cert is None or config.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(config.tls_cert, config.tls_key)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)
        raise ConfigError(
            f"cannot load the TLS certificate {config.tls_cert} with key {config.tls_key}: {reason}"
        ) from None
    return context


async def serve(config: ServeConfig, store: Store, ready: Callable[[int], None] | None = None) -> None:
    """Serve until SIGTERM or SIGINT, then stop accepting, finish in-flight requests, return.

    ``ready`` gets the bound port (useful with port 0).
    """
    context = tls_context(config)
    try:
        rules = RuleHolder(config.rules_dir)
    except RuleError as exc:
        raise ConfigError(f"the rules in {config.rules_dir} cannot be loaded: {exc}") from None
    evaluator = ProcessEvaluator()
    try:
        app = create_app(config, store, rules, evaluator)
    except RuleError as exc:
        raise ConfigError(f"the alarm rules cannot be loaded: {exc}") from None
    runner = web.AppRunner(
        app,
        shutdown_timeout=config.shutdown_timeout_s,
        handle_signals=False,
        **RUNNER_OPTIONS,
    )
    await runner.setup()
    # Before "listening" is logged: whoever waits for that line may signal at once.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    accept_errors = AcceptErrors(loop, config.accept_log_interval_s)
    accept_errors.install()
    _check_open_file_limit(config)
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    # SIGHUP re-reads the rules, then the alarm rules (checked against the metrics now in
    # force); a broken file keeps the old ones of its kind and logs why.
    rules.install_sighup(loop, then=_alarm_reloader(app))
    try:
        site = ReceiverSite(runner, config, ssl_context=context)
        try:
            await site.start()
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {config.host}:{config.port}: {exc.strerror or exc}"
            ) from None
        port = site.port
        scheme = "https" if context else "http"
        log.info("listening", extra={"url": f"{scheme}://{config.host}:{port}"})
        if ready is not None:
            ready(port)
        await stop.wait()
        await _drain(runner, site, config.shutdown_timeout_s)
    finally:
        await runner.cleanup()  # the deriver's last pass included
        evaluator.close()
        accept_errors.close()
    log.info("stopped")
