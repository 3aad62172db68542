"""Scripted HTTP endpoints the emulator and the probe talk to in tests."""

from __future__ import annotations

import base64
import contextlib
import gzip
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import orjson
from aiohttp import web

from receiver.firehose.envelope import MAX_BODY_BYTES
from tests.apps import serve_app

INGEST_PATH = "/aws/firehose/metrics"


@dataclass(frozen=True, slots=True)
class Received:
    """One request as the endpoint saw it."""

    headers: dict[str, str]
    raw_body: bytes

    @property
    def envelope(self) -> dict:
        body = self.raw_body
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        return orjson.loads(body)

    @property
    def records(self) -> list[bytes]:
        return [base64.b64decode(r["data"]) for r in self.envelope["records"]]


Answer = tuple[int, dict[str, str], bytes]
Script = Callable[[int, Received], Answer]
"""(index of the request, the request) -> (status, headers, body)."""


def firehose_ok(index: int, received: Received) -> Answer:
    """The answer a correct endpoint gives."""
    request_id = received.headers.get("X-Amz-Firehose-Request-Id", "")
    return 200, {"Content-Type": "application/json"}, orjson.dumps({"requestId": request_id, "timestamp": 1})


def failing(status: int) -> Script:
    def answer(index: int, received: Received) -> Answer:
        request_id = received.headers.get("X-Amz-Firehose-Request-Id", "")
        body = orjson.dumps({"requestId": request_id, "timestamp": 1, "errorMessage": "no"})
        return status, {"Content-Type": "application/json"}, body

    return answer


def fail_then_ok(failures: int, status: int = 503) -> Script:
    def answer(index: int, received: Received) -> Answer:
        return failing(status)(index, received) if index < failures else firehose_ok(index, received)

    return answer


@dataclass
class ScriptedEndpoint:
    script: Script = firehose_ok
    received: list[Received] = field(default_factory=list)
    url: str = ""

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_post(INGEST_PATH, self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.Response:
        received = Received(dict(request.headers), await request.read())
        index = len(self.received)
        self.received.append(received)
        status, headers, body = self.script(index, received)
        return web.Response(status=status, headers=headers, body=body)


@contextlib.asynccontextmanager
async def scripted(
    script: Script = firehose_ok, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[ScriptedEndpoint]:
    endpoint = ScriptedEndpoint(script)
    async with serve_app(endpoint.app(), ssl_context=ssl_context) as client:
        endpoint.url = client.base + INGEST_PATH
        yield endpoint
