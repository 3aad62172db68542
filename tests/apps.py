"""Serving an aiohttp app in-process on a free loopback port, with the receiver's runner options.

aiohttp's TestServer drops the options given to its constructor (auto_decompress among
them), so tests run the app through an AppRunner as `serve` does.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from receiver.server.app import RUNNER_OPTIONS


class AppClient:
    """A ClientSession bound to one running app."""

    def __init__(self, app: web.Application, session: aiohttp.ClientSession, host: str, port: int) -> None:
        self.app = app
        self.session = session
        self.host = host
        self.port = port
        self.base = f"http://{host}:{port}"

    def request(self, method: str, path: str, **kwargs):
        return self.session.request(method, self.base + path, **kwargs)

    def get(self, path: str, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs):
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs):
        return self.request("PUT", path, **kwargs)


@contextlib.asynccontextmanager
async def serve_app(app: web.Application) -> AsyncIterator[AppClient]:
    runner = web.AppRunner(app, **RUNNER_OPTIONS)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        # auto_decompress off on the client too: tests send and read bodies byte for byte.
        async with aiohttp.ClientSession(auto_decompress=False) as session:
            yield AppClient(app, session, "127.0.0.1", port)
    finally:
        await runner.cleanup()
