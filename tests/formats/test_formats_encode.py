"""encode_records frames samples as CloudWatch does and keeps records within the limit."""

from __future__ import annotations

import math

import orjson
import pytest

from receiver.formats import FORMATS, decode_record, encode_records
from receiver.formats.framing import split_frames
from receiver.model import PERIOD_MS, Sample, Series
from receiver.proto.otel07 import metrics_service_pb2
from tests.builders import T0

from .helpers import CACHE, otel07_message, record

LABELS = (("aws.exporter.arn", "arn:aws:cloudwatch:us-east-1:1:metric-stream/S"), ("cloud.provider", "aws"))


def samples(n: int, *, metrics: int = 3, labels: tuple = LABELS) -> list[Sample]:
    out = []
    for i in range(n):
        series = Series(
            "123456789012",
            "us-east-1",
            "AWS/DynamoDB",
            f"Metric{i % metrics}",
            (("TableName", f"T{i % 7}"),),
            "Milliseconds",
        )
        start = T0 + PERIOD_MS * (i // 21)
        out.append(
            Sample(
                series, start, start + PERIOD_MS, float(i % 5 + 1), 2.5 * i, 0.5, 9.0 + i, (("p99", 8.0 + i),), labels
            )
        )
    return out


def decode_all(records: list[bytes], fmt: str) -> list[Sample]:
    return [sample for data in records for sample in decode_record(data, fmt, cache=CACHE)]


def test_a_record_of_several_messages_decodes_them_all() -> None:
    data = record(otel07_message(points=2), otel07_message(points=3))
    assert len(split_frames(data)) == 2
    assert len(decode_record(data, cache=CACHE)) == 5


def test_encoded_records_hold_several_messages() -> None:
    batch = samples(250)
    records = encode_records(batch, "opentelemetry0.7")
    assert len(records) == 1
    assert len(split_frames(records[0])) == 3
    assert decode_all(records, "opentelemetry0.7") == batch


@pytest.mark.parametrize("fmt", FORMATS)
def test_records_are_split_to_fit_the_limit(fmt: str) -> None:
    batch = samples(400, labels=(("metric_stream_name", "S"),))
    records = encode_records(batch, fmt, max_record_bytes=5_000)
    assert len(records) > 1
    assert all(len(data) <= 5_000 for data in records)
    assert decode_all(records, fmt) == batch


def test_a_message_too_big_for_the_limit_is_halved() -> None:
    batch = samples(100)
    records = encode_records(batch, "opentelemetry1.0", max_record_bytes=2_000)
    assert all(len(data) <= 2_000 for data in records)
    assert sum(len(split_frames(data)) for data in records) > 1
    assert decode_all(records, "opentelemetry1.0") == batch


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_datapoint_larger_than_a_record_is_refused(fmt: str) -> None:
    with pytest.raises(ValueError, match="more than the 100-byte record limit"):
        encode_records(samples(1), fmt, max_record_bytes=100)


def test_json_is_one_newline_terminated_object_per_line() -> None:
    batch = samples(3, labels=(("metric_stream_name", "S"),))
    (data,) = encode_records(batch, "json")
    lines = data.split(b"\n")
    assert lines[-1] == b"" and len(lines) == 4
    first = orjson.loads(lines[0])
    assert list(first) == [
        "metric_stream_name",
        "account_id",
        "region",
        "namespace",
        "metric_name",
        "dimensions",
        "timestamp",
        "value",
        "unit",
    ]
    assert first["value"] == {"count": 1.0, "sum": 0.0, "max": 9.0, "min": 0.5, "p99": 8.0}
    assert first["timestamp"] == T0 and first["unit"] == "Milliseconds"


def test_json_writes_only_the_stream_name_label() -> None:
    batch = samples(1, labels=(("metric_stream_name", "S"), ("team", "db")))
    assert decode_all(encode_records(batch, "json"), "json")[0].labels == (("metric_stream_name", "S"),)


def test_consecutive_samples_share_resource_and_metric() -> None:
    batch = samples(6, metrics=1)
    (data,) = encode_records(batch, "opentelemetry0.7")
    message = metrics_service_pb2.ExportMetricsServiceRequest.FromString(split_frames(data)[0])
    assert len(message.resource_metrics) == 1
    (metric,) = message.resource_metrics[0].instrumentation_library_metrics[0].metrics
    assert metric.name == "amazonaws.com/AWS/DynamoDB/Metric0"
    assert metric.unit == "ms"
    assert len(metric.double_summary.data_points) == 6


def test_interleaved_input_keeps_its_order() -> None:
    batch = samples(30, metrics=4)
    batch = batch[::2] + batch[1::2]
    for fmt in FORMATS:
        labels_kept = [s if fmt != "json" else Sample(**{**_fields(s), "labels": ()}) for s in batch]
        assert decode_all(encode_records(batch, fmt), fmt) == labels_kept


def _fields(sample: Sample) -> dict:
    return sample._asdict()


@pytest.mark.parametrize("fmt", ["opentelemetry0.7", "opentelemetry1.0"])
@pytest.mark.parametrize(
    "change, message",
    [
        ({"count": 1.5}, "whole counts"),
        ({"count": -1.0}, "whole counts"),
        ({"stats": (("TM(10%:90%)", 1.0),)}, "only percentile statistics"),
        ({"sum": math.nan}, "non-finite"),
        ({"max": math.inf}, "non-finite"),
        ({"end_ms": T0}, "non-empty"),
    ],
)
def test_otel_refuses_what_it_cannot_carry(fmt: str, change: dict, message: str) -> None:
    sample = Sample(**{**_fields(samples(1)[0]), **change})
    with pytest.raises(ValueError, match=message):
        encode_records([sample], fmt)


def test_otel07_refuses_a_dimension_named_like_its_labels() -> None:
    series = Series("1", "r", "N", "M", (("Namespace", "x"),), "Count")
    with pytest.raises(ValueError, match="dimension named 'Namespace'"):
        encode_records([Sample(series, 0, 60_000, 1.0, 1.0, 1.0, 1.0)], "opentelemetry0.7")


@pytest.mark.parametrize(
    "change, message",
    [
        ({"end_ms": T0 + 1}, "60000 ms periods"),
        ({"min": math.nan}, "non-finite"),
        ({"stats": (("count", 1.0),)}, "may not be named 'count'"),
    ],
)
def test_json_refuses_what_it_cannot_carry(change: dict, message: str) -> None:
    sample = Sample(**{**_fields(samples(1)[0]), **change})
    with pytest.raises(ValueError, match=message):
        encode_records([sample], "json")


def test_unknown_format_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown record format 'csv'"):
        encode_records([], "csv")
    with pytest.raises(ValueError, match="unknown record format 'csv'"):
        decode_record(b"x", "csv", cache=CACHE)


def test_nothing_to_encode_gives_no_records() -> None:
    assert all(encode_records([], fmt) == [] for fmt in FORMATS)
