"""Log lines cannot be forged or lost: text logs escape control characters, JSON logs
survive values orjson refuses."""

from __future__ import annotations

import json
import logging
import socket
import sys

import pytest

from receiver.firehose.envelope import SOURCE_ARN_HEADER
from receiver.logs import JsonFormatter, PlainFormatter
from receiver.server.app import INGEST_PATH
from tests.builders import Delivery, make_samples
from tests.processes import ReceiverProcess


def record(message: str = "delivery", *args: object, exc_info=None, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("receiver.ingest", logging.WARNING, __file__, 1, message, args, exc_info)
    for key, value in extra.items():
        setattr(made, key, value)
    return made


def test_text_logs_escape_control_characters_in_fields_and_message():
    forged = "Games\n2026-01-01 00:00:00,000 INFO receiver.ingest: delivery status=200"
    line = PlainFormatter().format(record("table %s", "a\rb", table=forged, header="x\x00y\x1b[31m", sep="p\u2028q"))
    assert "\n" not in line and "\r" not in line
    assert "table=Games\\n2026-01-01" in line
    assert "table a\\rb" in line
    assert "header=x\\x00y\\x1b[31m" in line
    assert "sep=p\\u2028q" in line


def test_text_logs_show_undecodable_header_bytes_as_escapes():
    line = PlainFormatter().format(record(source_arn="arn\udcff"))
    assert "source_arn=arn\\xff" in line


def test_text_logs_keep_tracebacks_below_the_line_and_indented():
    try:
        raise ValueError("bad value\n2026-01-01 00:00:00,000 INFO forged: line")
    except ValueError:
        line = PlainFormatter().format(record("failed", exc_info=sys.exc_info(), request_id="r-1"))
    first, *rest = line.split("\n")
    assert first.endswith("failed request_id=r-1")
    assert rest and all(part.startswith(" ") for part in rest)


def test_json_logs_keep_a_line_whose_values_orjson_refuses():
    line = JsonFormatter().format(
        record(
            "delivery from %s",
            "arn\udcff",
            source_arn="arn:aws:firehose\udcff",
            big=2**80,
            nested={"k\udcfe": ["v\udcff"]},
        )
    )
    entry = json.loads(line)
    assert entry["message"] == "delivery from arn\\xff"
    assert entry["source_arn"] == "arn:aws:firehose\\xff"
    assert entry["big"] == str(2**80)
    assert entry["nested"] == {"k\\xfe": ["v\\xff"]}
    line.encode("utf-8")  # valid UTF-8, no lone surrogates


def test_json_logs_are_unchanged_for_ordinary_values():
    entry = json.loads(JsonFormatter().format(record(status=200, ms=1.5, table="Games\nX")))
    assert (entry["status"], entry["ms"], entry["table"]) == (200, 1.5, "Games\nX")


@pytest.mark.slow
def test_a_delivery_with_an_undecodable_source_arn_is_still_logged_as_json():
    key = "json-logs-key-0123456789"
    with ReceiverProcess("--store", "memory://", "--access-key", key, env={"RECEIVER_LOG_FORMAT": "json"}) as receiver:
        receiver.wait_listening()
        delivery = Delivery(make_samples(2), access_key=key)
        head = [
            f"POST {INGEST_PATH} HTTP/1.1",
            "Host: 127.0.0.1",
            f"Content-Length: {len(delivery.body)}",
            "Connection: close",
        ]
        head += [f"{k}: {v}" for k, v in delivery.headers.items() if k.lower() != SOURCE_ARN_HEADER.lower()]
        raw = ("\r\n".join(head) + "\r\n").encode() + SOURCE_ARN_HEADER.encode() + b": arn:aws:firehose:\xff\r\n\r\n"
        with socket.create_connection(("127.0.0.1", receiver.port), timeout=30) as sock:
            sock.sendall(raw + delivery.body)
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        # 200, or 400 should ingest refuse a header that is not UTF-8: either way, logged.
        assert answer.startswith((b"HTTP/1.1 200 ", b"HTTP/1.1 400 ")), answer[:200]
        receiver.terminate()
        assert receiver.wait() == 0
    assert "Logging error" not in receiver.log
    entries = [json.loads(line) for line in receiver.lines]
    [entry] = [e for e in entries if e.get("message") == "delivery"]
    assert entry["source_arn"] == "arn:aws:firehose:\\xff"
