"""Ingest decodes records slice by slice into the SQLite store's one transaction."""

from __future__ import annotations

import contextlib

import orjson
import pytest

from receiver.config import ServeConfig
from receiver.formats import encode_records
from receiver.ingest import Decoded, RecordError, commit_delivery, decode_slices
from receiver.server import INGEST_PATH, create_app
from receiver.store.sqlite import SQLiteStore
from tests.apps import serve_app
from tests.builders import Delivery, make_samples

FORMAT = "opentelemetry0.7"


@pytest.fixture
async def sqlite_store(tmp_path):
    store = SQLiteStore(tmp_path / "stream.db")
    await store.open()
    yield store
    await store.close()


def records_of(count: int, per_record: int = 5) -> list[bytes]:
    samples = make_samples(count * per_record)
    return [encode_records(samples[i:i + per_record], FORMAT)[0] for i in range(0, len(samples), per_record)]


def test_each_record_is_dropped_once_decoded():
    records = records_of(3)
    decoded = Decoded()
    slices = decode_slices(records, FORMAT, (), decoded)
    first = next(slices)
    assert len(first) == 5 and records[0] == b"" and records[1] != b""
    assert sum(map(len, slices)) == 10
    assert records == [b"", b"", b""]
    assert decoded.samples == 15 and decoded.starts == {s.start_ms for s in make_samples(15)}


async def test_a_bad_record_after_good_ones_rolls_the_whole_delivery_back(sqlite_store):
    records = [*records_of(2), b"\x05\x0a\x03", *records_of(1)]
    with pytest.raises(RecordError, match="^record 2:"):
        await commit_delivery(sqlite_store, "req-bad", records, FORMAT, ())
    assert await sqlite_store.count_samples() == 0
    assert not await sqlite_store.is_committed("req-bad")
    decoded = await commit_delivery(sqlite_store, "req-good", records_of(2), FORMAT, ())
    assert decoded.samples == 10
    assert await sqlite_store.count_samples() == 10
    assert await sqlite_store.is_committed("req-good")


async def test_over_http_a_bad_record_is_a_400_and_stores_nothing(sqlite_store):
    async with contextlib.AsyncExitStack() as stack:
        client = await stack.enter_async_context(serve_app(create_app(ServeConfig(), sqlite_store)))
        delivery = Delivery(records=[*records_of(3), b"\x05\x0a\x03"])
        response = await client.post(INGEST_PATH, data=delivery.body, headers=delivery.headers)
        answer = orjson.loads(await response.read())
        assert response.status == 400 and answer["errorMessage"].startswith("record 3:")
        assert await sqlite_store.count_samples() == 0
        good = Delivery(records=records_of(3))
        response = await client.post(INGEST_PATH, data=good.body, headers=good.headers)
        assert response.status == 200
        stored = await sqlite_store.samples(0, 2**62)
        assert sorted(s.identity for s in stored) == sorted(s.identity for s in make_samples(15))
