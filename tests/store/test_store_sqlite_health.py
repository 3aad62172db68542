"""The SQLite store's health: readiness and request ids never wait behind writes, and a
store file deleted, replaced or made read-only while the receiver runs acks nothing."""

from __future__ import annotations

import asyncio
import os
import shutil
import threading

import pytest

from receiver.server.app import INGEST_PATH
from receiver.store import StoreError
from receiver.store.sqlite import SQLiteStore
from tests.apps import receiver_app, serve_app
from tests.builders import Delivery, make_samples

PLAIN = {"Accept-Encoding": "identity"}


@pytest.fixture
async def store(tmp_path):
    opened = SQLiteStore(tmp_path / "health.db")
    await opened.open()
    yield opened
    await opened.close()


def hold_the_writer(store: SQLiteStore) -> threading.Event:
    """Occupy the store's writer thread, as a 64 MiB commit would, until the event is set."""
    release = threading.Event()
    store._executor.submit(release.wait, 60)  # type: ignore[union-attr]
    return release


async def test_ping_and_request_ids_answer_while_the_writer_is_busy(store):
    await store.commit("req-1", make_samples(3))
    release = hold_the_writer(store)
    try:
        writing = asyncio.create_task(store.commit("req-2", make_samples(2)))
        await asyncio.wait_for(store.ping(), 30)
        assert await asyncio.wait_for(store.is_committed("req-1"), 30)
        assert not await asyncio.wait_for(store.is_committed("req-2"), 30)
        assert not writing.done()
    finally:
        release.set()
    await writing
    assert await store.is_committed("req-2")


async def test_readyz_and_metrics_say_up_while_a_commit_holds_the_writer(store):
    async with serve_app(receiver_app(store)) as client:
        release = hold_the_writer(store)
        try:
            ready = await asyncio.wait_for(client.get("/readyz"), 30)
            assert ready.status == 200
            scrape = await asyncio.wait_for(client.get("/metrics", headers=PLAIN), 30)
            assert "metric_stream_receiver_store_up 1" in await scrape.text()
        finally:
            release.set()


def delete(path):
    os.unlink(path)


def make_read_only(path):
    os.chmod(path, 0o444)


def replace(path):
    shutil.copy(path, f"{path}.copy")
    os.replace(f"{path}.copy", path)


@pytest.mark.parametrize("change", [delete, make_read_only, replace], ids=["deleted", "read-only", "replaced"])
async def test_a_store_file_changed_under_the_receiver_acks_nothing(store, change):
    async with serve_app(receiver_app(store)) as client:
        first = Delivery(make_samples(2))
        assert (await client.post(INGEST_PATH, data=first.body, headers=first.headers)).status == 200
        change(store.path)
        with pytest.raises(StoreError, match="sqlite store file"):
            await store.ping()
        assert (await client.get("/readyz")).status == 503
        second = Delivery(make_samples(4))
        response = await client.post(INGEST_PATH, data=second.body, headers=second.headers)
        assert response.status == 503
        assert "sqlite store file" in (await response.json())["errorMessage"]
        assert not await store.is_committed(second.request_id)
