"""Telling the three formats apart from a record's bytes."""

from __future__ import annotations

import orjson
import pytest

from receiver.formats import DecodeError, decode_record, detect_format
from receiver.proto.otel07 import metrics_service_pb2 as otel07_service

from .helpers import CACHE, otel07_message, otel10_message, record
from .make_fixtures import DATA


@pytest.mark.parametrize(
    "fixture, expected",
    [
        ("aws-otel07-example.bin", "opentelemetry0.7"),
        ("aws-otel10-example.bin", "opentelemetry1.0"),
        ("aws-json-example.jsonl", "json"),
    ],
)
def test_each_documented_example_is_recognised(fixture: str, expected: str) -> None:
    assert detect_format((DATA / fixture).read_bytes()) == expected


def test_otel07_and_otel10_with_the_same_content_are_told_apart() -> None:
    assert detect_format(record(otel07_message())) == "opentelemetry0.7"
    assert detect_format(record(otel10_message())) == "opentelemetry1.0"


def test_only_the_first_message_decides_and_one_without_datapoints_is_refused_either_way() -> None:
    # Detection parses the first message only, so its cost never depends on the rest of the
    # record; a first message without datapoints is refused by both protobuf decoders.
    empty = otel07_service.ExportMetricsServiceRequest()
    empty.resource_metrics.add()
    data = record(empty, otel07_message())
    assert detect_format(data) == "opentelemetry1.0"
    for fmt in (None, "opentelemetry0.7", "opentelemetry1.0"):
        with pytest.raises(DecodeError) as info:
            decode_record(data, fmt, cache=CACHE)
        assert info.value.reason == "no_datapoints"


def test_an_empty_message_is_an_empty_frame() -> None:
    data = record(otel07_service.ExportMetricsServiceRequest())
    assert data == b"\x00"
    with pytest.raises(DecodeError) as info:
        detect_format(data)
    assert info.value.reason == "empty_frame"


def test_a_123_byte_message_whose_length_prefix_reads_as_a_brace_is_protobuf() -> None:
    # The varint 123 is the byte "{": such a record must not be taken for JSON.
    message = otel07_message(
        labels=(("Namespace", "N"), ("MetricName", "MM")),
        resource=(("cloud.account.id", "1"), ("cloud.region", "r")),
        quantiles=((0.0, 0.0), (1.0, 0.0)),
        count=0,
        total=0.0,
        unit="",
    )
    metric = message.resource_metrics[0].instrumentation_library_metrics[0].metrics[0]
    metric.name = ""  # what is left is exactly 123 bytes
    assert message.ByteSize() == 123
    data = record(message)
    assert data[:2] == b"{\n"
    assert detect_format(data) == "opentelemetry0.7"
    assert decode_record(data, cache=CACHE)[0].series.metric == "MM"


def test_pretty_printed_json_is_json() -> None:
    item = orjson.loads((DATA / "aws-json-example.jsonl").read_bytes())
    data = orjson.dumps(item, option=orjson.OPT_INDENT_2)
    assert data[:2] == b"{\n"
    assert detect_format(data) == "json"


def test_an_empty_record_is_no_format() -> None:
    with pytest.raises(DecodeError, match="empty") as info:
        detect_format(b"")
    assert info.value.reason == "empty_record"


@pytest.mark.parametrize("data", [b"\x05\xff\xff\xff\xff\xff", b"hello world", b"\x03\x0a\x05\x01"])
def test_garbage_is_no_format(data: bytes) -> None:
    with pytest.raises(DecodeError, match="neither JSON nor length-prefixed OpenTelemetry") as info:
        detect_format(data)
    assert info.value.reason == "unknown_format"
