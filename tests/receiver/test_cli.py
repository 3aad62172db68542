"""`python -m receiver serve` as users run it: options, environment, errors, TLS, SIGTERM."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import time

import pytest

from receiver.config import ServeConfig
from receiver.server.app import INGEST_PATH
from receiver.server.site import tls_context
from receiver.store import open_store_from_url
from tests.builders import Delivery, make_samples
from tests.processes import ReceiverProcess, one_sentence_error, post, run_cli

pytestmark = pytest.mark.slow


def test_bad_store_url_is_one_sentence(tmp_path):
    line = one_sentence_error(run_cli("serve", "--port", "0", "--store", "postgres://db/metrics"))
    assert "postgres://db/metrics" in line


def test_bad_port_from_the_environment_is_one_sentence():
    line = one_sentence_error(run_cli("serve", env={"RECEIVER_PORT": "eighty"}))
    assert "RECEIVER_PORT" in line


def test_unreadable_tls_file_is_one_sentence(tmp_path):
    line = one_sentence_error(
        run_cli(
            "serve",
            "--port",
            "0",
            "--store",
            "memory://",
            "--tls-cert",
            str(tmp_path / "none.pem"),
            "--tls-key",
            str(tmp_path / "none.key"),
        )
    )
    assert "none.pem" in line


def test_tls_cert_without_key_is_one_sentence():
    line = one_sentence_error(run_cli("serve", "--store", "memory://", "--tls-cert", "cert.pem"))
    assert "--tls-key" in line


def test_unknown_format_is_one_sentence():
    line = one_sentence_error(run_cli("serve", "--store", "memory://", "--format", "csv"))
    assert "opentelemetry0.7" in line


def test_port_in_use_is_one_sentence():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("serve", "--host", "127.0.0.1", "--port", str(port), "--store", "memory://")
    assert result.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_environment_configures_store_and_keys(tmp_path):
    db = tmp_path / "metrics.db"
    env = {"RECEIVER_STORE": f"sqlite:///{db}", "RECEIVER_ACCESS_KEYS": "key-one, key-two"}
    with ReceiverProcess(env=env) as receiver:
        receiver.wait_listening()
        assert post(receiver.url, Delivery(make_samples(2), access_key="key-two"))[0] == 200
        assert post(receiver.url, Delivery(make_samples(2), access_key="key-three"))[0] == 401
        receiver.terminate()
        assert receiver.wait() == 0
    assert db.exists()
    assert "without authentication" not in receiver.log


def test_json_logs_are_one_object_per_line():
    with ReceiverProcess(
        "--store", "memory://", "--allow-unauthenticated", env={"RECEIVER_LOG_FORMAT": "json"}
    ) as receiver:
        receiver.wait_listening()
        delivery = Delivery(make_samples(3))
        assert post(receiver.url, delivery)[0] == 200
        receiver.terminate()
        receiver.wait()
    entries = [json.loads(line) for line in receiver.lines]
    [entry] = [e for e in entries if e["message"] == "delivery"]
    assert entry["request_id"] == delivery.request_id
    assert (entry["status"], entry["records"], entry["samples"]) == (200, 1, 3)
    assert "ms" in entry


def test_serves_https_with_a_certificate(tls):
    with ReceiverProcess("--store", "memory://", "--allow-unauthenticated", tls=tls) as receiver:
        receiver.wait_listening()
        assert receiver.url.startswith("https://")
        context = ssl.create_default_context(cafile=str(tls.ca_cert))
        status, answer = post(receiver.url, Delivery(make_samples(2)), context)
        assert status == 200
        assert answer["requestId"]


def test_tls_context_refuses_versions_before_1_2(tls):
    context = tls_context(ServeConfig(tls_cert=tls.server_cert, tls_key=tls.server_key))
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2


def test_sigterm_finishes_the_delivery_in_flight_then_exits_0(tmp_path):
    db = tmp_path / "metrics.db"
    with ReceiverProcess("--store", f"sqlite:///{db}", "--allow-unauthenticated") as receiver:
        receiver.wait_listening()
        delivery = Delivery(make_samples(20))
        sock = socket.create_connection(("127.0.0.1", receiver.port))
        head = [
            f"POST {INGEST_PATH} HTTP/1.1",
            "Host: 127.0.0.1",
            f"Content-Length: {len(delivery.body)}",
            "Connection: close",
        ]
        head += [f"{k}: {v}" for k, v in delivery.headers.items()]
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + delivery.body[:100])
        time.sleep(0.5)  # the handler is now waiting for the rest of the body
        receiver.terminate()
        time.sleep(0.5)
        # New connections are refused while the old one is being finished.
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", receiver.port), timeout=2).close()
        sock.sendall(delivery.body[100:])
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        sock.close()
        assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
        assert receiver.wait() == 0
    assert asyncio.run(count_stored(f"sqlite:///{db}")) == 20


async def count_stored(url: str) -> int:
    store = open_store_from_url(url)
    await store.open()
    try:
        return await store.count_samples()
    finally:
        await store.close()


def test_bad_metrics_settle_seconds_is_one_sentence():
    line = one_sentence_error(run_cli("serve", "--store", "memory://", "--metrics-settle-seconds", "soon"))
    assert "--metrics-settle-seconds" in line


def test_create_store_without_a_table_name_still_names_the_url():
    line = one_sentence_error(
        run_cli("serve", "--port", "0", "--store", "dynamodb://?region=us-east-1", "--create-store")
    )
    assert "dynamodb://?region=us-east-1" in line or "table" in line
