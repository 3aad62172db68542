"""`python -m receiver probe` against the local TLS chain, and against a receiver that answers wrongly."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from aiohttp import web

from tests.apps import serve_app
from tests.chain.nginx import NginxGateway
from tests.chain.workload import ACCESS_KEY, INGEST_PATH
from tests.processes import ReceiverProcess, run_cli

pytestmark = pytest.mark.slow


async def probe(*args: str) -> tuple[int, str]:
    """`python -m receiver probe ARGS` in a thread, while the test's app serves on this loop."""
    done = await asyncio.to_thread(run_cli, "probe", *args, timeout=120)
    return done.returncode, done.stdout + done.stderr


async def test_probe_passes_against_the_tls_chain(tmp_path, tls):
    with ReceiverProcess("--store", "memory://", "--access-key", ACCESS_KEY) as receiver:
        receiver.wait_listening()
        with NginxGateway(tmp_path / "nginx", f"127.0.0.1:{receiver.port}", tls) as gateway:
            code, out = await probe(gateway.url, "--access-key", ACCESS_KEY, "--ca-file", str(tls.ca_cert))
    assert code == 0, out
    assert "FAIL" not in out
    assert out.count("PASS") == 7
    assert "7 of 7 checks passed" in out


def wrong_receiver() -> web.Application:
    """Accepts anything and answers 200 with a body Firehose cannot use."""

    async def ingest(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=200, body=orjson.dumps({"status": "ok"}), content_type="application/json")

    app = web.Application(client_max_size=1 << 24)
    app.router.add_post(INGEST_PATH, ingest)
    return app


async def test_probe_fails_with_a_table_against_a_receiver_that_answers_wrongly():
    async with serve_app(wrong_receiver()) as client:
        code, out = await probe(client.base + INGEST_PATH, "--access-key", ACCESS_KEY)
    assert code == 1, out
    rows = {line.split("  ")[0].strip(): line for line in out.splitlines() if "PASS" in line or "FAIL" in line}
    assert "FAIL" in rows["valid delivery is acknowledged"]
    assert "requestId is missing" in rows["valid delivery is acknowledged"]
    assert "expected 401, got 200" in rows["wrong access key is refused with 401"]
    assert "PASS" in rows["answers well within Firehose's 3 minutes"]
    assert "the endpoint does not behave as Firehose requires" in out
