"""Builders shared by the tests: a clock, series and samples shaped like the decoders' output, and
Firehose deliveries made with the project's encoders."""

from __future__ import annotations

import base64
import gzip
import uuid
from collections.abc import Sequence

import orjson

from receiver.firehose.envelope import ACCESS_KEY_HEADER, REQUEST_ID_HEADER
from receiver.formats import encode_records
from receiver.model import MINUTE_MS, Pairs, Sample, Series, Stats

T0 = 1_700_000_040_000  # a minute boundary


LABELS: Pairs = (("cloud.provider", "aws"), ("metric_stream_name", "dynamodb-stream"))
"""Labels a CloudWatch metric stream puts on its samples."""


class FakeClock:
    """A wall clock (seconds) that moves only when a test says so."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_series(
    metric: str = "ConsumedReadCapacityUnits",
    table: str = "GameScores",
    *,
    account: str = "123456789012",
    region: str = "us-east-1",
    namespace: str = "AWS/DynamoDB",
    unit: str = "Count",
    operation: str | None = None,
) -> Series:
    dimensions = [("TableName", table)] + ([("Operation", operation)] if operation else [])
    return Series(account, region, namespace, metric, tuple(sorted(dimensions)), unit)


def make_sample(
    table: str = "GameScores",
    metric: str = "ConsumedReadCapacityUnits",
    minute: int = 0,
    value: float = 10.0,
    *,
    count: float = 2.0,
    account: str = "123456789012",
    region: str = "us-east-1",
    operation: str | None = None,
    series: Series | None = None,
    stats: Stats = (),
    labels: Pairs = LABELS,
    period_minutes: int = 1,
    start_ms: int | None = None,
    low: float | None = None,
    high: float | None = None,
) -> Sample:
    """One datapoint with Sum ``value`` and SampleCount ``count``, starting ``minute`` minutes
    after T0 (or at ``start_ms``). Its series is ``series`` when given, else made of table,
    metric, account, region and operation; its Minimum and Maximum are ``low`` and ``high``
    when given, else half and twice the mean."""
    if series is None:
        series = make_series(metric, table, account=account, region=region, operation=operation)
    start = T0 + minute * MINUTE_MS if start_ms is None else start_ms
    return Sample(
        series=series,
        start_ms=start,
        end_ms=start + period_minutes * MINUTE_MS,
        count=count,
        sum=value,
        min=value / count / 2 if low is None else low,
        max=value / count * 2 if high is None else high,
        stats=stats,
        labels=labels,
    )


def make_samples(n: int, **kwargs) -> list[Sample]:
    """One sample for each of ``n`` tables."""
    return [make_sample(table=f"Table{i:04d}", **kwargs) for i in range(n)]


def many_samples(n: int, tables: int = 500) -> list[Sample]:
    """``n`` samples over ``tables`` series, one Series object per series as decoders make them."""
    series = [make_series(table=f"Table{i:04d}") for i in range(tables)]
    return [make_sample(series=series[i % tables], minute=i // tables, value=float(i)) for i in range(n)]


def envelope(records: Sequence[bytes], request_id: str, timestamp: int = T0) -> bytes:
    return orjson.dumps(
        {
            "requestId": request_id,
            "timestamp": timestamp,
            "records": [{"data": base64.b64encode(r).decode()} for r in records],
        }
    )


class Delivery:
    """One Firehose request: body and headers, as Firehose would send it."""

    def __init__(
        self,
        samples: Sequence[Sample] = (),
        fmt: str = "opentelemetry0.7",
        request_id: str | None = None,
        access_key: str | None = None,
        compress: bool = False,
        records: Sequence[bytes] | None = None,
    ) -> None:
        self.request_id = request_id or str(uuid.uuid4())
        self.records = list(records) if records is not None else encode_records(samples, fmt)
        body = envelope(self.records, self.request_id)
        self.body = gzip.compress(body) if compress else body
        self.headers = {
            "Content-Type": "application/json",
            REQUEST_ID_HEADER: self.request_id,
            "X-Amz-Firehose-Protocol-Version": "1.0",
            "X-Amz-Firehose-Source-Arn": "arn:aws:firehose:us-east-1:123456789012:deliverystream/test",
        }
        if access_key is not None:
            self.headers[ACCESS_KEY_HEADER] = access_key
        if compress:
            self.headers["Content-Encoding"] = "gzip"
