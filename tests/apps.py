"""Serving an aiohttp app in-process on a free loopback port, with the receiver's runner options,
and the receiver's app to serve.

aiohttp's TestServer drops the options given to its constructor (auto_decompress among
them), so tests run the app through an AppRunner as `serve` does.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import ssl
from collections.abc import AsyncIterator, Sequence
from typing import Any

import aiohttp
from aiohttp import web

from receiver.config import REPOSITORY_RULES, ServeConfig
from receiver.keys import DERIVER
from receiver.model import Sample
from receiver.rules import RuleHolder, RuleSet, load_rules
from receiver.server.app import INGEST_PATH, RUNNER_OPTIONS, create_app
from receiver.server.site import ReceiverSite
from receiver.store import Store, open_store_from_url
from tests.builders import Delivery


@functools.cache
def repository_rules() -> RuleSet:
    """The repository's rule pack, loaded once for the whole run: parsing its few hundred
    rules takes a quarter of a second, and a RuleSet is immutable."""
    return load_rules(REPOSITORY_RULES)


def receiver_app(store: Store | None = None, **settings: Any) -> web.Application:
    """The receiver's app over ``store`` (a fresh memory store by default) with ``settings`` as
    ServeConfig fields; without access keys it accepts every delivery."""
    settings.setdefault("allow_unauthenticated", not settings.get("access_keys"))
    config = ServeConfig(**settings)
    # The repository's rules come from the one loaded copy; another rules_dir is loaded as given.
    rules = RuleHolder(config.rules_dir, repository_rules()) if config.rules_dir == REPOSITORY_RULES else None
    return create_app(config, store if store is not None else open_store_from_url("memory://"), rules)


class AppClient:
    """A ClientSession bound to one running app."""

    def __init__(
        self, app: web.Application, session: aiohttp.ClientSession, host: str, port: int, scheme: str = "http"
    ) -> None:
        self.app = app
        self.session = session
        self.host = host
        self.port = port
        self.base = f"{scheme}://{host}:{port}"

    def request(self, method: str, path: str, **kwargs):
        return self.session.request(method, self.base + path, **kwargs)

    def get(self, path: str, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs):
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs):
        return self.request("PUT", path, **kwargs)

    async def deliver(self, samples: Sequence[Sample]) -> None:
        """``samples`` through the Firehose endpoint in one delivery, then derived at once (minutes
        and hours)."""
        delivery = Delivery(list(samples))
        response = await self.post(INGEST_PATH, data=delivery.body, headers=delivery.headers)
        assert response.status == 200, await response.text()
        await self.app[DERIVER].derive_pending()


@contextlib.asynccontextmanager
async def serve_app(
    app: web.Application, *, ssl_context: ssl.SSLContext | None = None, config: ServeConfig | None = None
) -> AsyncIterator[AppClient]:
    """Runs ``app`` on 127.0.0.1 at a free port until the block ends.

    ``ssl_context`` serves HTTPS; ``config`` serves through the site `serve` uses (its read
    deadlines, idle timeout and connection limit) instead of aiohttp's TCPSite.
    """
    runner = web.AppRunner(app, **RUNNER_OPTIONS)
    await runner.setup()
    try:
        if config is not None:
            site: web.BaseSite = ReceiverSite(
                runner, dataclasses.replace(config, host="127.0.0.1", port=0), ssl_context=ssl_context
            )
        else:
            site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        scheme = "https" if ssl_context else "http"
        # auto_decompress off on the client too: tests send and read bodies byte for byte.
        async with aiohttp.ClientSession(auto_decompress=False) as session:
            yield AppClient(app, session, "127.0.0.1", port, scheme)
    finally:
        await runner.cleanup()
