"""A delivery's records: decoded off the store's thread, written in slices, bad records
quarantined with the rest taken, and one delivery's decoding never holding another's commit."""

from __future__ import annotations

import asyncio
import logging
import threading

import orjson
import pytest

import receiver.firehose.records
from receiver.firehose.records import Decoding, RecordSlicer, store_records
from receiver.formats import DecodeError, SeriesCache, encode_records
from receiver.keys import INGEST
from receiver.server.app import INGEST_PATH
from receiver.store.memory import MemoryStore
from receiver.store.sqlite import SQLiteStore
from tests.apps import receiver_app, serve_app
from tests.builders import Delivery, make_samples

FORMAT = "opentelemetry0.7"
BAD = b"\x05\x0a\x03"
"""A frame that claims 5 bytes and holds 2: never decodes."""


@pytest.fixture
async def decoding():
    pool = Decoding()
    yield pool
    pool.close()


def records_of(count: int, per_record: int = 5, first: int = 0) -> list[bytes]:
    samples = make_samples(first + count * per_record)[first:]
    return [encode_records(samples[i : i + per_record], FORMAT)[0] for i in range(0, len(samples), per_record)]


def test_each_record_is_dropped_once_decoded_and_slices_stop_when_full():
    records = records_of(4)
    slicer = RecordSlicer("r", records, FORMAT, (), 0, slice_samples=10, cache=SeriesCache())
    first = slicer.next_slice()
    assert first.datapoints == 10 and not first.done
    assert records[:2] == [b"", b""] and records[2] != b""
    second = slicer.next_slice()
    assert second.datapoints == 10 and second.done
    assert records == [b"", b"", b"", b""]


def test_a_record_that_does_not_decode_becomes_a_quarantined_record_with_its_bytes():
    labels = (("env", "prod"),)
    result = RecordSlicer("req-1", [*records_of(1), BAD], FORMAT, labels, 1234, cache=SeriesCache()).next_slice()
    assert result.datapoints == len(result.batch) == 5
    [record] = result.quarantined
    assert (record.request_id, record.index, record.received_ms, record.data, record.labels) == (
        "req-1",
        1,
        1234,
        BAD,
        labels,
    )
    assert record.reason and record.detail


async def test_good_records_are_stored_and_a_bad_one_quarantined_in_one_commit(sqlite_store, decoding):
    records = [*records_of(2), BAD, *records_of(1, first=10)]
    stored = await store_records(sqlite_store, decoding, "req-mixed", records, FORMAT, (), cache=SeriesCache())
    assert (stored.records, stored.samples, len(stored.quarantined)) == (4, 15, 1)
    assert await sqlite_store.count_samples() == 15
    assert await sqlite_store.is_committed("req-mixed")
    [kept] = await sqlite_store.quarantined()
    assert (kept.request_id, kept.index, kept.data) == ("req-mixed", 2, BAD)


async def test_a_large_delivery_is_written_a_slice_at_a_time_then_committed(sqlite_store, decoding, monkeypatch):
    monkeypatch.setattr(receiver.firehose.records, "SLICE_SAMPLES", 10)
    calls: list[tuple[str, int]] = []
    write, commit = sqlite_store.write_samples, sqlite_store.commit

    async def counted_write(samples):
        calls.append(("write", len(samples)))
        await write(samples)

    async def counted_commit(request_id, samples, quarantined=()):
        calls.append(("commit", len(samples)))
        await commit(request_id, samples, quarantined)

    monkeypatch.setattr(sqlite_store, "write_samples", counted_write)
    monkeypatch.setattr(sqlite_store, "commit", counted_commit)
    await store_records(sqlite_store, decoding, "req-large", records_of(5), FORMAT, (), cache=SeriesCache())
    assert calls == [("write", 10), ("write", 10), ("commit", 5)]
    assert await sqlite_store.count_samples() == 25


async def test_records_are_decoded_on_a_decode_thread_not_the_store_writer(sqlite_store, decoding, monkeypatch):
    threads: list[str] = []
    decode = receiver.firehose.records.decode_into

    def watched(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return decode(*args, **kwargs)

    monkeypatch.setattr(receiver.firehose.records, "decode_into", watched)
    await store_records(sqlite_store, decoding, "req-threads", records_of(3), FORMAT, (), cache=SeriesCache())
    assert threads and all(name.startswith("decode") for name in threads)


async def test_one_deliverys_decoding_never_holds_up_another_deliverys_commit(sqlite_store, monkeypatch):
    """Before, records decoded on the SQLite writer inside the transaction: a delivery whose
    decoding took minutes (a hostile record) held every other delivery's commit meanwhile."""
    decode = receiver.firehose.records.decode_into
    entered, release = threading.Event(), threading.Event()

    def slow_for_the_marked_record(batch, data, *args, **kwargs):
        if data == BAD:
            entered.set()
            release.wait(30)
            raise DecodeError("slow and bad")
        return decode(batch, data, *args, **kwargs)

    monkeypatch.setattr(receiver.firehose.records, "decode_into", slow_for_the_marked_record)
    async with serve_app(receiver_app(sqlite_store)) as client:
        slow = Delivery(records=[*records_of(1), BAD])
        stuck = asyncio.create_task(client.post(INGEST_PATH, data=slow.body, headers=slow.headers))
        await asyncio.get_running_loop().run_in_executor(None, entered.wait, 30)
        quick = Delivery(records=records_of(2, first=50))
        try:
            response = await client.post(INGEST_PATH, data=quick.body, headers=quick.headers)
            assert response.status == 200
            assert await sqlite_store.is_committed(quick.request_id)
            assert not stuck.done()
        finally:
            release.set()
        assert (await stuck).status == 200
        assert await sqlite_store.count_samples() == 15


@pytest.mark.parametrize("make_store", ["memory", "sqlite"])
async def test_over_http_a_bad_record_is_quarantined_counted_and_logged_and_the_rest_taken(
    make_store, tmp_path, caplog
):
    store = MemoryStore() if make_store == "memory" else SQLiteStore(tmp_path / "http.db")
    caplog.set_level(logging.INFO, logger="receiver.ingest")
    async with serve_app(receiver_app(store)) as client:
        delivery = Delivery(records=[*records_of(3), BAD])
        response = await client.post(INGEST_PATH, data=delivery.body, headers=delivery.headers)
        answer = orjson.loads(await response.read())
        assert response.status == 200 and "errorMessage" not in answer
        assert await store.count_samples() == 15
        [record] = await store.quarantined()
        assert (record.request_id, record.index, record.data) == (delivery.request_id, 3, BAD)
        exposition = await (await client.get("/metrics", headers={"Accept-Encoding": "identity"})).text()
        assert f'metric_stream_receiver_records_quarantined_total{{reason="{record.reason}"}} 1' in exposition
        listed = await (await client.get("/api/v1/quarantine")).json()
        assert listed["total"] == 1
        assert listed["records"][0] | {"received": 0} == {
            "request_id": delivery.request_id,
            "index": 3,
            "received": 0,
            "reason": record.reason,
            "detail": record.detail,
            "bytes": len(BAD),
            "common_attributes": {},
        }
    [line] = [r for r in caplog.records if r.getMessage() == "record quarantined"]
    assert (line.request_id, line.record, line.reason) == (delivery.request_id, 3, record.reason)
    [summary] = [r for r in caplog.records if r.getMessage() == "delivery"]
    assert (summary.status, summary.quarantined) == (200, 1)


async def test_quarantine_api_refuses_a_bad_limit():
    async with serve_app(receiver_app(MemoryStore())) as client:
        response = await client.get("/api/v1/quarantine?limit=0")
        assert response.status == 400 and "limit" in (await response.json())["error"]


async def test_a_client_that_disconnects_mid_body_is_counted_as_aborted_at_info(sqlite_store, caplog):
    caplog.set_level(logging.INFO)
    async with serve_app(receiver_app(sqlite_store)) as client:
        delivery = Delivery(make_samples(20))
        _, writer = await asyncio.open_connection(client.host, client.port)
        head = [f"POST {INGEST_PATH} HTTP/1.1", f"Host: {client.host}", f"Content-Length: {len(delivery.body)}"]
        head += [f"{name}: {value}" for name, value in delivery.headers.items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + delivery.body[:40])
        await writer.drain()
        await asyncio.sleep(0.2)
        writer.transport.abort()
        for _ in range(200):
            if any(r.getMessage().startswith("delivery aborted") for r in caplog.records):
                break
            await asyncio.sleep(0.02)
        exposition = await (await client.get("/metrics", headers={"Accept-Encoding": "identity"})).text()
    assert "metric_stream_receiver_firehose_aborted_requests_total 1" in exposition
    assert 'status="500"' not in exposition
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    [line] = [r for r in caplog.records if r.getMessage().startswith("delivery aborted")]
    assert line.levelno == logging.INFO and line.request_id == delivery.request_id


async def test_a_header_that_is_not_utf8_is_a_json_400_naming_it(sqlite_store, caplog):
    async with serve_app(receiver_app(sqlite_store)) as client:
        reader, writer = await asyncio.open_connection(client.host, client.port)
        writer.write(
            f"POST {INGEST_PATH} HTTP/1.1\r\nHost: {client.host}\r\nContent-Length: 2\r\n".encode()
            + b"X-Amz-Firehose-Request-Id: a\xffb\r\nConnection: close\r\n\r\n{}"
        )
        await writer.drain()
        raw = await reader.read()
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400")
    assert b"application/json" in head
    assert "X-Amz-Firehose-Request-Id header is not valid UTF-8" in orjson.loads(body)["errorMessage"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_records_of_a_million_zero_bytes_are_quarantined_as_empty_frames_and_the_rest_taken(sqlite_store):
    """Each such record was a million empty protobuf frames that decoded to nothing, for
    seconds each, while every other delivery waited on the writer."""
    zeros = bytes(1_024_000)
    async with serve_app(receiver_app(sqlite_store)) as client:
        delivery = Delivery(records=[zeros, *records_of(1), zeros, zeros])
        response = await client.post(INGEST_PATH, data=delivery.body, headers=delivery.headers)
        assert response.status == 200
        assert await sqlite_store.count_samples() == 5
        quarantined = await sqlite_store.quarantined()
        assert [(r.index, r.reason, r.data == zeros) for r in quarantined] == [
            (0, "empty_frame", True),
            (2, "empty_frame", True),
            (3, "empty_frame", True),
        ]


async def test_each_app_decodes_against_its_own_series_cache():
    """The cache is the app's: two receivers in one process share no series, and one
    receiver's deliveries share one cache."""
    first, second = receiver_app(), receiver_app()
    first_cache, second_cache = first[INGEST].series_cache, second[INGEST].series_cache
    assert first_cache is not second_cache
    async with serve_app(first) as client:
        learned = []
        for _ in range(2):
            delivery = Delivery(records=records_of(2))
            response = await client.post(INGEST_PATH, data=delivery.body, headers=delivery.headers)
            assert response.status == 200
            learned.append(len(first_cache))
    assert learned[0] > 0 and learned[1] == learned[0]  # the second delivery's series were known
    assert len(second_cache) == 0
