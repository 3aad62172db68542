"""Slow and idle clients against the real server on 127.0.0.1: read deadlines, the
connection limit, rate-limited accept errors, and malformed headers answered without
logging their raw bytes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import resource
import socket
import time
import urllib.request
from collections.abc import AsyncIterator

import orjson
import pytest
from aiohttp import web

from receiver.config import ServeConfig
from receiver.firehose.envelope import ACCESS_KEY_HEADER
from receiver.keys import INGEST
from receiver.logs import PlainFormatter
from receiver.server.app import INGEST_PATH, create_app
from receiver.store import open_store_from_url
from tests.apps import serve_app
from tests.builders import Delivery, make_samples
from tests.processes import ReceiverProcess

KEY = "limits-test-key-0123456789"
SHORT = 0.5
"""The read timeout the tests set: long enough for a loaded machine to send a request."""


@contextlib.asynccontextmanager
async def running(**settings) -> AsyncIterator[tuple[int, web.Application]]:
    """The receiver's app behind the site `serve` uses, on a free loopback port."""
    config = ServeConfig(host="127.0.0.1", port=0, access_keys=(KEY,), **settings)
    async with serve_app(create_app(config, open_store_from_url("memory://")), config=config) as client:
        yield client.port, client.app


def request_bytes(delivery: Delivery, keep_alive: bool = True) -> bytes:
    head = [f"POST {INGEST_PATH} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(delivery.body)}"]
    head += [f"{k}: {v}" for k, v in delivery.headers.items()]
    if not keep_alive:
        head.append("Connection: close")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + delivery.body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One HTTP/1.1 response with a Content-Length: status and body."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    status = int(head.split(b" ", 2)[1])
    length = int(re.search(rb"(?i)content-length: *(\d+)", head)[1])
    return status, await asyncio.wait_for(reader.readexactly(length), 10)


async def closed_by_server(reader: asyncio.StreamReader, within: float = 10) -> bool:
    """True when the server closes the connection (EOF or reset) without sending anything."""
    try:
        data = await asyncio.wait_for(reader.read(), within)
    except ConnectionResetError:
        return True
    return data == b""


async def deliver(port: int) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request_bytes(Delivery(make_samples(2), access_key=KEY), keep_alive=False))
        return (await read_response(reader))[0]
    finally:
        writer.close()


async def test_a_connection_that_sends_nothing_is_closed_after_the_read_timeout():
    async with running(read_timeout_s=SHORT) as (port, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        started = time.monotonic()
        assert await closed_by_server(reader)
        assert time.monotonic() - started >= SHORT * 0.9
        writer.close()


async def test_headers_that_never_end_are_closed_after_the_read_timeout():
    async with running(read_timeout_s=SHORT) as (port, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"POST {INGEST_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode())
        for _ in range(3):  # still sending, a header line at a time, but never the blank line
            await asyncio.sleep(SHORT / 3)
            writer.write(b"X-Slow: yes\r\n")
        assert await closed_by_server(reader)
        writer.close()


async def test_an_idle_keep_alive_connection_outlives_the_read_timeout_but_not_a_second_slow_request():
    async with running(read_timeout_s=SHORT, idle_timeout_s=30) as (port, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request_bytes(Delivery(make_samples(1), access_key=KEY)))
        assert (await read_response(reader))[0] == 200
        # Idle between requests is governed by the idle timeout (a proxy's pooled connection).
        await asyncio.sleep(SHORT * 3)
        writer.write(request_bytes(Delivery(make_samples(1), access_key=KEY)))
        assert (await read_response(reader))[0] == 200
        # Once the next request starts, its headers must be complete within the read timeout.
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        assert await closed_by_server(reader)
        writer.close()


async def test_a_half_sent_body_ends_the_request():
    async with running(read_timeout_s=SHORT) as (port, app):
        delivery = Delivery(make_samples(5), access_key=KEY)
        whole = request_bytes(delivery)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(whole[: len(whole) - len(delivery.body) // 2])
        status, body = await read_response(reader)
        assert status == 400
        answer = orjson.loads(body)
        assert answer["requestId"] == delivery.request_id
        assert "no part of the body arrived" in answer["errorMessage"]
        assert app[INGEST].budget.in_use == 0
        writer.close()


async def test_a_body_that_keeps_arriving_is_read_however_long_it_takes():
    async with running(read_timeout_s=SHORT) as (port, _):
        delivery = Delivery(make_samples(20), access_key=KEY)
        whole = request_bytes(delivery)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        pieces = 6
        step = len(whole) // pieces + 1
        for start in range(0, len(whole), step):  # 6 pauses of SHORT / 2: longer than SHORT in all
            writer.write(whole[start : start + step])
            await asyncio.sleep(SHORT / 2)
        assert (await read_response(reader))[0] == 200
        writer.close()


async def test_connections_past_the_limit_are_refused_while_deliveries_go_on(caplog):
    caplog.set_level(logging.WARNING)
    async with running(max_connections=3) as (port, _):
        # A client with a kept-alive connection, and two idle ones: the limit is reached.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request_bytes(Delivery(make_samples(1), access_key=KEY)))
        assert (await read_response(reader))[0] == 200
        idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
        await asyncio.sleep(0.1)

        refused = []
        for _ in range(3):
            extra_reader, extra_writer = await asyncio.open_connection("127.0.0.1", port)
            status, body = await read_response(extra_reader)
            refused.append((status, orjson.loads(body)))
            assert await closed_by_server(extra_reader)
            extra_writer.close()
        assert all(status == 503 for status, _ in refused)
        assert "too many open connections" in refused[0][1]["error"]

        # The admitted client is still served.
        writer.write(request_bytes(Delivery(make_samples(1), access_key=KEY)))
        assert (await read_response(reader))[0] == 200

        # A closed connection frees its place for a new one.
        idle[0][1].close()
        await asyncio.sleep(0.2)
        assert await deliver(port) == 200
        writer.close()
        idle[1][1].close()
    messages = [r for r in caplog.records if "connection limit" in r.getMessage()]
    # Rate-limited: the first refusal, then at most one summary of the others.
    assert 1 <= len(messages) <= 2
    assert not any(r.exc_info for r in caplog.records)


@pytest.mark.parametrize(
    "bad_line",
    [
        f"{ACCESS_KEY_HEADER}: SECRET-{KEY}\x01",  # a control character in the value
        f"{ACCESS_KEY_HEADER} SECRET-{KEY}",  # no colon
        f"{ACCESS_KEY_HEADER}\x7f: SECRET-{KEY}",  # a character not allowed in a name
    ],
)
async def test_a_malformed_header_line_is_a_json_400_and_its_bytes_are_never_logged(caplog, bad_line):
    caplog.set_level(logging.DEBUG)
    async with running() as (port, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            f"POST {INGEST_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n{bad_line}\r\nContent-Length: 2\r\n\r\n{{}}".encode()
        )
        status, body = await read_response(reader)
        writer.close()
        await asyncio.sleep(0.1)
    assert status == 400
    assert "error" in orjson.loads(body)
    assert b"SECRET" not in body
    formatter = PlainFormatter()
    logged = "\n".join(formatter.format(record) for record in caplog.records)
    assert "SECRET" not in logged
    assert "Traceback" not in logged
    assert any("malformed HTTP request" in r.getMessage() for r in caplog.records)


@pytest.mark.slow
def test_running_out_of_file_descriptors_logs_one_line_per_interval_and_recovers():
    with ReceiverProcess("--store", "memory://", "--access-key", KEY) as receiver:
        receiver.wait_listening()
        pid = receiver.proc.pid
        soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
        # Leave the receiver two descriptors: a burst of connections makes accept() fail
        # with EMFILE, which asyncio reports through the loop's exception handler.
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (len(os.listdir(f"/proc/{pid}/fd")) + 2, hard))
        clients = [socket.create_connection(("127.0.0.1", receiver.port)) for _ in range(20)]
        time.sleep(2.5)  # asyncio retries accepting every second, failing again each time
        for client in clients:
            client.close()
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (soft, hard))
        time.sleep(1.5)  # the next retry accepts again
        delivery = Delivery(make_samples(2), access_key=KEY)
        request = urllib.request.Request(
            receiver.url + INGEST_PATH, data=delivery.body, headers=delivery.headers, method="POST"
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200
        receiver.terminate()
        assert receiver.wait() == 0
    lines = [line for line in receiver.lines if "cannot accept" in line]
    assert 1 <= len(lines) <= 2, receiver.log  # the first error, then one summary at stop
    assert "Too many open files" in lines[0]
    suppressed = sum(int(n) for n in re.findall(r"suppressed=(\d+)", "\n".join(lines)))
    assert suppressed > 0, receiver.log
    assert "Traceback" not in receiver.log
