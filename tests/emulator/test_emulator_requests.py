"""The requests the Firehose emulator sends: headers, body, records, buffering, TLS."""

from __future__ import annotations

import asyncio
import ssl

import orjson
import pytest

from receiver.formats import FORMATS, SeriesCache, decode_record
from receiver_tools.emulator import EmulatorConfig, FirehoseEmulator, RetryPolicy
from tests.builders import make_samples
from tests.certs import make_tls_files
from tests.emulator.endpoints import scripted


def config(url: str, **changes) -> EmulatorConfig:
    return EmulatorConfig(url=url, seed=1, **changes)


async def test_request_carries_firehose_headers_and_envelope():
    async with scripted() as endpoint:
        cfg = config(
            endpoint.url,
            access_key="secret",
            common_attributes=(("team", "storage"),),
            stream_name="my-stream",
            source_account="210987654321",
        )
        async with FirehoseEmulator(cfg) as stream:
            await stream.put_samples(make_samples(3))
    (request,) = endpoint.received
    headers = request.headers
    assert headers["X-Amz-Firehose-Access-Key"] == "secret"
    assert headers["X-Amz-Firehose-Protocol-Version"] == "1.0"
    assert headers["X-Amz-Firehose-Source-Arn"] == "arn:aws:firehose:us-east-1:210987654321:deliverystream/my-stream"
    assert orjson.loads(headers["X-Amz-Firehose-Common-Attributes"]) == {"commonAttributes": {"team": "storage"}}
    assert headers["Content-Type"] == "application/json"
    assert "Content-Encoding" not in headers
    envelope = request.envelope
    assert envelope["requestId"] == headers["X-Amz-Firehose-Request-Id"]
    assert isinstance(envelope["timestamp"], int)
    assert int(headers["Content-Length"]) == len(request.raw_body)


async def test_gzip_body_inflates_to_the_same_records():
    samples = make_samples(20)
    async with scripted() as endpoint:
        async with FirehoseEmulator(config(endpoint.url, gzip=True)) as stream:
            await stream.put_samples(samples)
    (request,) = endpoint.received
    assert request.headers["Content-Encoding"] == "gzip"
    decoded = [s for record in request.records for s in decode_record(record, cache=SeriesCache())]
    assert [s.identity for s in decoded] == [s.identity for s in samples]


@pytest.mark.parametrize("fmt", FORMATS)
async def test_records_carry_the_stream_labels_cloudwatch_adds(fmt):
    async with scripted() as endpoint:
        cfg = config(endpoint.url, record_format=fmt, metric_stream_name="dynamo-stream")
        async with FirehoseEmulator(cfg) as stream:
            await stream.put_samples(make_samples(2, labels=()))  # the stream's labels only
    decoded = [s for record in endpoint.received[0].records for s in decode_record(record, fmt, cache=SeriesCache())]
    labels = dict(decoded[0].labels)
    if fmt == "json":
        assert labels == {"metric_stream_name": "dynamo-stream"}
    else:
        assert labels["aws.exporter.arn"] == "arn:aws:cloudwatch:us-east-1:123456789012:metric-stream/dynamo-stream"


async def test_batches_stay_within_the_buffer_size():
    samples = make_samples(400)
    async with scripted() as endpoint:
        cfg = config(endpoint.url, buffer_bytes=8 * 1024, max_record_bytes=2 * 1024)
        async with FirehoseEmulator(cfg) as stream:
            await stream.put_samples(samples)
    sizes = [sum(map(len, r.records)) for r in endpoint.received]
    assert len(sizes) > 3
    assert max(sizes) <= 8 * 1024
    assert [
        s.identity for r in endpoint.received for rec in r.records for s in decode_record(rec, cache=SeriesCache())
    ] == [s.identity for s in samples]


async def test_a_request_holds_at_most_10000_records():
    record = (
        b'{"account_id":"1","region":"r","namespace":"n","metric_name":"m","timestamp":0,'
        b'"value":{"count":1,"sum":1,"min":1,"max":1}}\n'
    )
    async with scripted() as endpoint:
        async with FirehoseEmulator(config(endpoint.url, buffer_bytes=64 * 1024 * 1024)) as stream:
            await stream.put_records([record] * 10_001)
    assert [len(r.envelope["records"]) for r in endpoint.received] == [10_000, 1]


async def test_buffer_interval_delivers_without_a_flush():
    async with scripted() as endpoint:
        cfg = config(endpoint.url, buffer_interval_s=60, time_scale=0.005)  # 0.3 s
        async with FirehoseEmulator(cfg) as stream:
            await stream.put_samples(make_samples(2))
            for _ in range(100):
                if endpoint.received:
                    break
                await asyncio.sleep(0.05)
            assert stream.buffered_records == 0
    assert len(endpoint.received) == 1


async def test_https_delivery_verifies_the_server_against_the_given_ca(tmp_path):
    server_files = make_tls_files(tmp_path / "server")
    other_ca = make_tls_files(tmp_path / "other").ca_cert
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(server_files.server_cert, server_files.server_key)
    async with scripted(ssl_context=context) as endpoint:
        async with FirehoseEmulator(config(endpoint.url, ca_file=server_files.ca_cert)) as trusted:
            await trusted.put_samples(make_samples(1))
        async with FirehoseEmulator(
            config(endpoint.url, ca_file=other_ca, retry=RetryPolicy(duration_s=0))
        ) as untrusted:
            await untrusted.put_samples(make_samples(1))
    assert trusted.results[0].outcome == "delivered"
    assert untrusted.results[0].error_code == "HttpEndpoint.SSLHandshakeFailure"
    assert len(endpoint.received) == 1


def test_a_bad_configuration_is_refused_with_a_sentence():
    with pytest.raises(ValueError, match="buffer size"):
        EmulatorConfig(url="http://127.0.0.1:1/", buffer_bytes=65 * 1024 * 1024)
    with pytest.raises(ValueError, match="http:// or https://"):
        EmulatorConfig(url="ftp://example.com/")
    with pytest.raises(ValueError, match="retry duration"):
        EmulatorConfig(url="https://example.com/", retry=RetryPolicy(duration_s=7201))
