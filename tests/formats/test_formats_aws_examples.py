"""AWS's documented examples decode to exactly the samples they describe."""

from __future__ import annotations

import pytest
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as otel10_service

from receiver.formats import DecodeError, decode_record
from receiver.formats.framing import frame, split_frames
from receiver.model import Sample, Series

from .helpers import CACHE
from .make_fixtures import DATA, SOURCES, record_from_text

ARN = "arn:aws:cloudwatch:us-east-1:123456789012:metric-stream/MyMetricStream"
OTEL_LABELS = (("aws.exporter.arn", ARN), ("cloud.provider", "aws"))


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_binary_fixture_is_its_text_source(name: str) -> None:
    assert (DATA / f"{name}.bin").read_bytes() == record_from_text(name)


def test_otel07_example() -> None:
    samples = decode_record((DATA / "aws-otel07-example.bin").read_bytes(), "opentelemetry0.7", cache=CACHE)
    series = Series(
        "2345678901", "us-east-1", "AWS/DynamoDB", "ConsumedReadCapacityUnits", (("TableName", "MyTable"),), "None"
    )
    assert samples == [
        Sample(
            series,
            1604948400000,
            1604948460000,
            count=1.0,
            sum=1.0,
            min=1.0,
            max=1.0,
            stats=(("p95", 1.0), ("p99", 1.0)),
            labels=OTEL_LABELS,
        ),
        Sample(
            series, 1604948460000, 1604948520000, count=2.0, sum=5.0, min=2.0, max=3.0, stats=(), labels=OTEL_LABELS
        ),
    ]
    assert samples[0].series is samples[1].series
    assert samples[0].labels is samples[1].labels


SHIFT_MS = 1_604_948_400_000
"""The 1.0 example's periods start a minute after the epoch, which the receiver refuses
(before 2000); shifted by this much (to the 0.7 example's time) it shows the mapping."""


def otel10_example(shift_ms: int = SHIFT_MS) -> bytes:
    """The 1.0 example record with every period moved ``shift_ms`` later."""
    [message] = split_frames((DATA / "aws-otel10-example.bin").read_bytes())
    request = otel10_service.ExportMetricsServiceRequest.FromString(bytes(message))
    for point in request.resource_metrics[0].scope_metrics[0].metrics[0].summary.data_points:
        point.start_time_unix_nano += shift_ms * 1_000_000
        point.time_unix_nano += shift_ms * 1_000_000
    return frame(request.SerializeToString())


def test_otel10_example_as_published_is_refused_for_its_1970_period() -> None:
    with pytest.raises(DecodeError) as info:
        decode_record((DATA / "aws-otel10-example.bin").read_bytes(), "opentelemetry1.0", cache=CACHE)
    assert info.value.reason == "timestamp_out_of_range"


def test_otel10_example() -> None:
    samples = decode_record(otel10_example(), "opentelemetry1.0", cache=CACHE)
    series = Series(
        "123456789012",
        "us-east-1",
        "AWS/DynamoDB",
        "ConsumedReadCapacityUnits",
        (("TableName", "MyTable"),),
        "NoneTranslated",
    )
    assert samples == [
        Sample(
            series,
            SHIFT_MS + 60000,
            SHIFT_MS + 120000,
            count=1.0,
            sum=1.0,
            min=1.0,
            max=1.0,
            stats=(("p99", 1.0),),
            labels=OTEL_LABELS,
        ),
    ]


def test_json_example() -> None:
    samples = decode_record((DATA / "aws-json-example.jsonl").read_bytes(), "json", cache=CACHE)
    series = Series(
        "1234567890", "us-east-1", "AWS/EC2", "DiskWriteOps", (("InstanceId", "i-123456789012"),), "Seconds"
    )
    assert samples == [
        Sample(
            series,
            1611929698000,
            1611929758000,
            count=3.0,
            sum=20.0,
            min=0.0,
            max=18.0,
            stats=(("TM(25%:75%)", 16.43), ("p99", 17.56), ("p99.9", 17.8764)),
            labels=(("metric_stream_name", "MyMetricStream"),),
        ),
    ]


@pytest.mark.parametrize("fixture", ["aws-otel07-example.bin", "aws-otel10-example.bin"])
def test_extra_labels_merge_sorted_and_the_stream_wins(fixture: str) -> None:
    extra = (("cloud.provider", "from-request"), ("zone", "z1"), ("aaa", "first"))
    data = otel10_example() if "10" in fixture else (DATA / fixture).read_bytes()
    samples = decode_record(data, extra_labels=tuple(sorted(extra)), cache=CACHE)
    assert samples[0].labels == (
        ("aaa", "first"),
        ("aws.exporter.arn", ARN),
        ("cloud.provider", "aws"),
        ("zone", "z1"),
    )


def test_extra_labels_merge_into_json_samples() -> None:
    extra = (("metric_stream_name", "from-request"), ("team", "db"))
    samples = decode_record((DATA / "aws-json-example.jsonl").read_bytes(), extra_labels=extra, cache=CACHE)
    assert samples[0].labels == (("metric_stream_name", "MyMetricStream"), ("team", "db"))
