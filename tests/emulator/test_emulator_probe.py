"""The probe's checks, run in-process against the receiver and against wrong endpoints."""

from __future__ import annotations

import aiohttp
import orjson

from receiver.cli import main
from receiver.store import open_store_from_url
from receiver_tools.probe import PROBE_ACCOUNT, Check, Prober, ProbeSettings, format_table, parse_response
from tests.apps import receiver_app, serve_app
from tests.emulator.endpoints import Received, scripted


async def run_probe(url: str, key: str = "k") -> dict[str, bool]:
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        checks = await Prober(ProbeSettings(url, key), session).run()
    return {c.name: c.passed for c in checks}


async def test_every_check_passes_against_the_receiver():
    store = open_store_from_url("memory://")
    async with serve_app(receiver_app(store, access_keys=("k",))) as client:
        results = await run_probe(client.base + "/aws/firehose/metrics")
        stored = await store.samples(0, 2**62)
    assert all(results.values()), results
    assert len(results) == 7
    assert {s.series.account for s in stored} == {PROBE_ACCOUNT}
    assert all(("receiver_probe", "true") in s.labels for s in stored)


async def test_an_endpoint_that_accepts_everything_fails_the_refusal_checks():
    def accept_all(index: int, received: Received):
        request_id = received.headers.get("X-Amz-Firehose-Request-Id", "")
        return 200, {"Content-Type": "application/json"}, orjson.dumps({"requestId": request_id, "timestamp": 1})

    async with scripted(accept_all) as endpoint:
        results = await run_probe(endpoint.url)
    failed = {name for name, passed in results.items() if not passed}
    assert failed == {"wrong access key is refused with 401", "missing request id is refused with 400"}


async def test_an_endpoint_answering_plain_text_fails_the_delivery_checks():
    async with scripted(lambda i, r: (200, {"Content-Type": "text/plain"}, b"OK")) as endpoint:
        results = await run_probe(endpoint.url)
    assert not results["valid delivery is acknowledged"]
    assert not results["gzip delivery is acknowledged"]
    assert not results["absolute-form request target is acknowledged"]


async def test_an_unreachable_endpoint_fails_every_check():
    results = await run_probe("http://127.0.0.1:9/aws/firehose/metrics")
    assert not any(results.values())


def test_responses_are_parsed_with_length_or_chunks():
    plain = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
    chunked = b'HTTP/1.1 401 Unauthorized\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{"a\r\n4\r\n":1}\r\n0\r\n\r\n'
    assert parse_response(plain)[0] == 200 and parse_response(plain)[2] == b"{}"
    status, _headers, body = parse_response(chunked)
    assert (status, body) == (401, b'{"a":1}')


def test_the_table_marks_each_check():
    table = format_table(
        [
            Check("valid delivery is acknowledged", True, "200 in 3 ms"),
            Check("wrong access key is refused with 401", False, "expected 401, got 200"),
        ]
    )
    lines = table.splitlines()
    assert "PASS" in lines[2] and "FAIL" in lines[3] and "expected 401, got 200" in lines[3]


def test_a_missing_access_key_is_one_sentence(capsys, monkeypatch):
    monkeypatch.delenv("FIREHOSE_ACCESS_KEY", raising=False)
    assert main(["probe", "https://example.com/aws/firehose/metrics"]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line]
    assert len(lines) == 1 and "--access-key" in lines[0]
