"""POST /aws/firehose/metrics over HTTP: every status the Firehose spec asks for."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib

import orjson
import pytest

from receiver.firehose.envelope import MAX_BODY_BYTES
from receiver.formats import encode_records
from receiver.keys import INGEST
from receiver.server.app import INGEST_PATH
from receiver.store import StoreError, open_store_from_url
from tests.apps import receiver_app, serve_app
from tests.builders import Delivery, envelope, make_sample, make_samples

KEY = "s3cr3t-access-key-0123456789"


@pytest.fixture
def store():
    return open_store_from_url("memory://")


@pytest.fixture
async def start(store):
    async with contextlib.AsyncExitStack() as stack:

        async def start(store=store, **settings):
            return await stack.enter_async_context(serve_app(receiver_app(store, **settings)))

        yield start


async def post(client, delivery: Delivery, path: str = INGEST_PATH):
    response = await client.post(path, data=delivery.body, headers=delivery.headers)
    return response, orjson.loads(await response.read())


@pytest.mark.parametrize("fmt", ["opentelemetry0.7", "opentelemetry1.0", "json"])
async def test_valid_delivery_is_stored_and_acknowledged(start, store, fmt):
    client = await start()
    samples = make_samples(25)
    delivery = Delivery(samples, fmt=fmt)
    response, answer = await post(client, delivery)
    assert response.status == 200
    assert answer["requestId"] == delivery.request_id
    assert isinstance(answer["timestamp"], int)
    assert "errorMessage" not in answer
    stored = await store.samples(0, 2**62)
    assert sorted(s.identity for s in stored) == sorted(s.identity for s in samples)
    assert {(s.identity, s.sum, s.count) for s in stored} == {(s.identity, s.sum, s.count) for s in samples}


async def test_answer_is_plain_json_under_one_mebibyte(start):
    client = await start()
    response = await client.post(INGEST_PATH, data=b"{", headers=Delivery().headers)
    body = await response.read()
    assert response.headers["Content-Type"] == "application/json"
    assert "Content-Encoding" not in response.headers
    assert len(body) < 1024 * 1024


async def test_gzip_delivery_is_stored(start, store):
    client = await start()
    samples = make_samples(40)
    response, _ = await post(client, Delivery(samples, compress=True))
    assert response.status == 200
    assert await store.count_samples() == 40


async def test_absolute_form_request_target_is_accepted(start, store):
    client = await start()
    delivery = Delivery(make_samples(3))
    reader, writer = await asyncio.open_connection(client.host, client.port)
    head = [f"POST https://metrics.example.com{INGEST_PATH} HTTP/1.1", "Host: metrics.example.com"]
    head += [f"{k}: {v}" for k, v in delivery.headers.items()]
    head += [f"Content-Length: {len(delivery.body)}", "Connection: close", "", ""]
    writer.write("\r\n".join(head).encode() + delivery.body)
    await writer.drain()
    raw = await reader.read()
    writer.close()
    assert raw.startswith(b"HTTP/1.1 200 ")
    assert orjson.loads(raw.split(b"\r\n\r\n", 1)[1])["requestId"] == delivery.request_id
    assert await store.count_samples() == 3


async def test_common_attributes_label_every_sample(start, store):
    client = await start()
    delivery = Delivery(make_samples(5))
    delivery.headers["X-Amz-Firehose-Common-Attributes"] = orjson.dumps(
        {"commonAttributes": {"env": "prod", "team": "storage"}}
    ).decode()
    response, _ = await post(client, delivery)
    assert response.status == 200
    for sample in await store.samples(0, 2**62):
        assert ("env", "prod") in sample.labels
        assert ("team", "storage") in sample.labels


async def test_malformed_common_attributes_are_a_400(start, store):
    client = await start()
    delivery = Delivery(make_samples(2))
    delivery.headers["X-Amz-Firehose-Common-Attributes"] = "{broken"
    response, answer = await post(client, delivery)
    assert response.status == 400
    assert "X-Amz-Firehose-Common-Attributes" in answer["errorMessage"]
    assert await store.count_samples() == 0


async def test_missing_request_id_is_a_400(start, store):
    client = await start()
    delivery = Delivery(make_samples(2))
    del delivery.headers["X-Amz-Firehose-Request-Id"]
    response, answer = await post(client, delivery)
    assert response.status == 400
    assert "X-Amz-Firehose-Request-Id header is missing" in answer["errorMessage"]
    assert await store.count_samples() == 0


async def test_header_and_body_request_id_must_match(start, store):
    client = await start()
    delivery = Delivery(make_samples(2))
    delivery.headers["X-Amz-Firehose-Request-Id"] = "another-id"
    response, answer = await post(client, delivery)
    assert response.status == 400
    assert answer["requestId"] == "another-id"
    assert "does not match" in answer["errorMessage"]
    assert await store.count_samples() == 0


@pytest.mark.parametrize(
    "given",
    [None, "wrong-key-of-the-same-length-", "short", KEY + "-and-longer", KEY.upper()],
    ids=["missing", "wrong", "shorter", "longer", "case"],
)
async def test_bad_access_key_is_a_401(start, store, given):
    client = await start(access_keys=(KEY,))
    response, answer = await post(client, Delivery(make_samples(2), access_key=given))
    assert response.status == 401
    assert "X-Amz-Firehose-Access-Key" in answer["errorMessage"]
    assert await store.count_samples() == 0


async def test_any_configured_key_is_accepted(start, store):
    client = await start(access_keys=("first-key", KEY))
    response, _ = await post(client, Delivery(make_samples(2), access_key=KEY))
    assert response.status == 200
    response, _ = await post(client, Delivery(make_samples(2), access_key="first-key"))
    assert response.status == 200


async def test_keys_are_never_logged(start, caplog):
    caplog.set_level(logging.DEBUG)
    client = await start(access_keys=(KEY,))
    await post(client, Delivery(make_samples(2), access_key=KEY))
    await post(client, Delivery(make_samples(2), access_key="a-wrong-key-value"))
    assert KEY not in caplog.text
    assert "a-wrong-key-value" not in caplog.text


async def test_no_configured_key_warns_once_at_start(start, caplog):
    caplog.set_level(logging.WARNING)
    client = await start()
    await post(client, Delivery(make_samples(1)))
    await post(client, Delivery(make_samples(1)))
    warnings = [r for r in caplog.records if "without authentication" in r.getMessage()]
    assert len(warnings) == 1


async def test_source_arn_and_protocol_version_are_logged(start, caplog):
    caplog.set_level(logging.INFO)
    client = await start()
    delivery = Delivery(make_samples(1))
    await post(client, delivery)
    [line] = [r for r in caplog.records if r.getMessage() == "delivery"]
    assert line.source_arn == delivery.headers["X-Amz-Firehose-Source-Arn"]
    assert line.protocol_version == "1.0"
    assert line.request_id == delivery.request_id
    assert (line.status, line.records, line.samples) == (200, 1, 1)


# Each malformed body gives a 400 naming the problem, and stores nothing.
def _records(*records: bytes) -> bytes:
    return envelope(records, "req-bad")


GOOD = encode_records([make_sample()], "opentelemetry0.7")[0]
MALFORMED = {
    "not JSON": (b"this is not json", "not valid JSON"),
    "JSON not an object": (b'["records"]', "must be a JSON object"),
    "records missing": (b'{"requestId": "req-bad", "timestamp": 1}', "records is missing"),
    "records not a list": (
        b'{"requestId": "req-bad", "timestamp": 1, "records": "x"}',
        "records is missing or not a list",
    ),
    "data not a string": (
        b'{"requestId": "req-bad", "timestamp": 1, "records": [{"data": 7}]}',
        "record 0: data is missing or not a string",
    ),
    "bad base64": (
        b'{"requestId": "req-bad", "timestamp": 1, "records": [{"data": "%%%"}]}',
        "record 0: data is not valid base64",
    ),
    "empty record": (
        b'{"requestId": "req-bad", "timestamp": 1, "records": [{"data": "CgA="}, {"data": ""}]}',
        "record 1: the record is empty",
    ),
    "10,001 records": (_records(*([GOOD] * 10_001)), "10001 records"),
    "record over 1,024,000 bytes": (
        _records(GOOD, b"\x0a" * 1_024_001),
        "record 1: larger than Firehose's 1024000 bytes",
    ),
}


@pytest.mark.parametrize("case", list(MALFORMED))
async def test_malformed_body_is_a_400_and_stores_nothing(start, store, case):
    raw, message = MALFORMED[case]
    client = await start()
    headers = Delivery(request_id="req-bad").headers
    response = await client.post(INGEST_PATH, data=raw, headers=headers)
    answer = orjson.loads(await response.read())
    assert response.status == 400, answer
    assert message in answer["errorMessage"]
    assert answer["requestId"] == "req-bad"
    assert await store.count_samples() == 0


async def test_gzip_header_then_garbage_is_a_400(start, store):
    client = await start()
    delivery = Delivery(make_samples(2), compress=True)
    delivery.body = delivery.body[:10] + b"\x00garbage" * 20
    response, answer = await post(client, delivery)
    assert response.status == 400
    assert "gzip" in answer["errorMessage"]
    assert await store.count_samples() == 0


def _gzip_bomb(size: int) -> bytes:
    """Zeros deflate about 1000:1, so 1 GiB of them gzips to about 1 MiB."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b"\0" * (1 << 20)
    parts = [packer.compress(block) for _ in range(size >> 20)]
    parts.append(packer.flush())
    return b"".join(parts)


async def test_gzip_bomb_is_a_400_that_says_to_lower_the_buffering_size(start, store):
    client = await start()
    delivery = Delivery(make_samples(1), compress=True)
    delivery.body = _gzip_bomb(1 << 30)
    assert len(delivery.body) < 2 * 1024 * 1024
    response, answer = await post(client, delivery)
    assert response.status == 400
    assert "lower the delivery stream's buffering size" in answer["errorMessage"]
    assert await store.count_samples() == 0


async def test_body_declared_larger_than_any_delivery_is_a_400_not_413(start):
    client = await start()
    reader, writer = await asyncio.open_connection(client.host, client.port)
    headers = Delivery(request_id="req-huge").headers
    head = [f"POST {INGEST_PATH} HTTP/1.1", "Host: localhost"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    head += [f"Content-Length: {MAX_BODY_BYTES + 1}", "", ""]
    writer.write("\r\n".join(head).encode())
    await writer.drain()
    status_line = await reader.readline()
    writer.close()
    assert status_line.startswith(b"HTTP/1.1 400 ")


async def test_unsupported_content_encoding_is_a_400(start):
    client = await start()
    delivery = Delivery(make_samples(1))
    delivery.headers["Content-Encoding"] = "br"
    response, answer = await post(client, delivery)
    assert response.status == 400
    assert "Content-Encoding 'br' is not supported" in answer["errorMessage"]


async def test_repeated_request_is_stored_once_and_answered_at_once(start, store):
    client = await start()
    delivery = Delivery(make_samples(8))
    first, _ = await post(client, delivery)
    assert first.status == 200
    # The repeat is recognised by its id before the body is read: even a broken body passes.
    delivery.body = b"this body is never read"
    second, answer = await post(client, delivery)
    assert second.status == 200
    assert answer["requestId"] == delivery.request_id
    assert await store.count_samples() == 8


async def test_overlapping_requests_store_each_datapoint_once(start, store):
    client = await start()
    samples = make_samples(30)
    for part in (samples[:20], samples[10:], samples[5:25]):
        response, _ = await post(client, Delivery(part))
        assert response.status == 200
    assert await store.count_samples() == 30


async def test_the_same_datapoint_in_another_format_is_the_same_sample(start, store):
    client = await start()
    samples = make_samples(4)
    for fmt in ("opentelemetry0.7", "opentelemetry1.0", "json"):
        response, _ = await post(client, Delivery(samples, fmt=fmt))
        assert response.status == 200
    assert await store.count_samples() == 4


class FailingStore:
    """A memory store whose commits and pings fail, as a full disk or an outage would."""

    def __init__(self):
        self.inner = open_store_from_url("memory://")

    def __getattr__(self, name):
        return getattr(self.inner, name)

    async def write_samples(self, samples):
        raise StoreError("disk I/O error")

    async def commit(self, request_id, samples, quarantined=()):
        raise StoreError("disk I/O error")

    async def ping(self):
        raise StoreError("disk I/O error")


async def test_store_failure_is_a_503_with_retry_after(start):
    failing = FailingStore()
    client = await start(store=failing)
    delivery = Delivery(make_samples(3))
    response, answer = await post(client, delivery)
    assert response.status == 503
    assert int(response.headers["Retry-After"]) > 0
    assert "store is unavailable" in answer["errorMessage"]
    assert await failing.inner.count_samples() == 0
    assert not await failing.inner.is_committed(delivery.request_id)


async def test_readyz_follows_the_store(start):
    healthy = await start()
    assert (await healthy.get("/readyz")).status == 200
    broken = await start(store=FailingStore())
    response = await broken.get("/readyz")
    assert response.status == 503
    assert "disk I/O error" in (await response.json())["error"]
    assert (await broken.get("/healthz")).status == 200


async def test_over_the_inflight_budget_is_a_503(start, store):
    client = await start(max_inflight_bytes=1024)
    release = asyncio.Event()
    first = Delivery(make_samples(50))

    async def slow_body():
        yield first.body[:2048]
        await release.wait()
        yield first.body[2048:]

    slow = asyncio.create_task(client.post(INGEST_PATH, data=slow_body(), headers=first.headers))
    # Wait until the first request holds its first 2 KiB.
    budget = client.app[INGEST].budget
    for _ in range(500):
        if budget.in_use >= 2048:
            break
        await asyncio.sleep(0.01)
    assert budget.in_use >= 2048
    second = Delivery(make_samples(1))
    response, _answer = await post(client, second)
    assert response.status == 503
    assert response.headers["Retry-After"]
    release.set()
    assert (await slow).status == 200
    assert budget.in_use == 0
    assert await store.count_samples() == 50


@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_health_check_methods_on_the_ingest_path_answer_200_without_body(start, method):
    client = await start()
    response = await client.request(method, INGEST_PATH)
    assert response.status == 200
    assert await response.read() == b""


async def test_unknown_path_is_a_json_404(start):
    client = await start()
    response = await client.get("/nope")
    assert response.status == 404
    assert "error" in await response.json()


async def test_other_methods_on_the_ingest_path_are_a_json_405(start):
    client = await start()
    response = await client.put(INGEST_PATH, data=b"{}")
    assert response.status == 405
    assert "POST" in response.headers["Allow"]
    assert "error" in await response.json()


async def test_an_unexpected_failure_is_a_json_500_that_stores_nothing(start, store, monkeypatch):
    import receiver.firehose.records

    def broken_decoder(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(receiver.firehose.records, "decode_into", broken_decoder)
    client = await start()
    delivery = Delivery(make_samples(2))
    response, answer = await post(client, delivery)
    assert response.status == 500
    assert answer["requestId"] == delivery.request_id
    assert "retried" in answer["errorMessage"]
    assert await store.count_samples() == 0
