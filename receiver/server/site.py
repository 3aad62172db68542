"""Serving the app: the listening site with the receiver's connections, TLS, signals, and a
graceful stop that lets the deliveries in flight finish."""

from __future__ import annotations

import asyncio
import logging
import resource
import signal
import ssl
from collections.abc import Callable

from aiohttp import web
from yarl import URL

from receiver.config import ConfigError, ServeConfig
from receiver.derive.worker import ProcessEvaluator
from receiver.formats import otel
from receiver.keys import IN_FLIGHT
from receiver.rules import RuleError, RuleHolder
from receiver.server.app import RUNNER_OPTIONS, alarm_reloader, create_app
from receiver.server.connections import AcceptErrors, Connection, ConnectionLimit
from receiver.store import Store

log = logging.getLogger("receiver.server")

FD_RESERVE = 64
"""Open files the receiver needs besides its connections: the store's, the rules worker's
pipes, outgoing connections (DynamoDB, OTLP, alarm webhooks), logs."""


class ReceiverSite(web.BaseSite):
    """aiohttp's TCPSite with the receiver's connections (receiver/server/connections.py): read
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
                server,
                loop=loop,
                limit=self.limit,
                read_timeout_s=config.read_timeout_s,
                keepalive_timeout=config.idle_timeout_s,
                **options,
            )

        self._server = await loop.create_server(
            connection, config.host, config.port, ssl=self._ssl_context, backlog=self._backlog
        )

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
    rules.install_sighup(loop, then=alarm_reloader(app))
    try:
        site = ReceiverSite(runner, config, ssl_context=context)
        try:
            await site.start()
        except OSError as exc:
            raise ConfigError(f"cannot listen on {config.host}:{config.port}: {exc.strerror or exc}") from None
        port = site.port
        scheme = "https" if context else "http"
        log.info("listening", extra={"url": f"{scheme}://{config.host}:{port}", "decoder": otel.DECODER})
        if ready is not None:
            ready(port)
        await stop.wait()
        await _drain(runner, site, config.shutdown_timeout_s)
    finally:
        await runner.cleanup()  # the deriver's last pass included
        evaluator.close()
        accept_errors.close()
    log.info("stopped")
