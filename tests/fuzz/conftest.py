"""A receiver app (memory store) served on a loopback port from its own thread, for sync hypothesis tests.

Hypothesis drives plain functions, so the app runs on an event loop in a background thread and
the tests talk to it with http.client and read its store through that loop.
"""

from __future__ import annotations

import asyncio
import http.client
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from receiver.server.app import INGEST_PATH
from receiver.store import MemoryStore
from tests.apps import receiver_app, serve_app


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes


class ThreadedReceiver:
    def __init__(self) -> None:
        self.store = MemoryStore()
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self._started = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self.loop.run_until_complete, args=(self._main(),), daemon=True)

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        async with serve_app(receiver_app(self.store)) as client:
            self.port = client.port
            self._started.set()
            await self._stop.wait()

    def start(self) -> None:
        self._thread.start()
        if not self._started.wait(30):
            raise RuntimeError("the receiver app did not start")

    def stop(self) -> None:
        assert self._stop is not None
        self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        self.loop.close()

    def call(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(30)

    def stored(self) -> list[tuple]:
        """Everything stored, comparable: identity and values of each sample."""
        samples = self.call(self.store.samples(0, 2**62))
        return sorted((s.identity, s.sum, s.count, s.min, s.max, s.stats) for s in samples)

    def post(self, body: bytes, headers: dict[str, str], path: str = INGEST_PATH) -> Answer:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            return Answer(response.status, response.read())
        finally:
            connection.close()


@pytest.fixture(scope="module")
def receiver() -> Iterator[ThreadedReceiver]:
    running = ThreadedReceiver()
    running.start()
    yield running
    running.stop()
