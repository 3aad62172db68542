"""Builders shared by the tests: samples and Firehose deliveries made with the project's encoders."""

from __future__ import annotations

import base64
import gzip
import uuid
from collections.abc import Sequence

import orjson

from receiver.firehose.envelope import ACCESS_KEY_HEADER, REQUEST_ID_HEADER
from receiver.formats import encode_records
from receiver.model import MINUTE_MS, Sample, Series

T0 = 1_700_000_040_000  # a minute boundary


def make_sample(
    table: str = "GameScores",
    metric: str = "ConsumedReadCapacityUnits",
    minute: int = 0,
    value: float = 10.0,
    count: float = 2.0,
    account: str = "123456789012",
    region: str = "us-east-1",
    operation: str | None = None,
    labels: tuple[tuple[str, str], ...] = (),
) -> Sample:
    dimensions = [("TableName", table)]
    if operation:
        dimensions.append(("Operation", operation))
    series = Series(account, region, "AWS/DynamoDB", metric, tuple(sorted(dimensions)), "Count")
    start = T0 + minute * MINUTE_MS
    return Sample(
        series=series,
        start_ms=start,
        end_ms=start + MINUTE_MS,
        count=count,
        sum=value,
        min=value / count / 2,
        max=value / count * 2,
        stats=(),
        labels=labels,
    )


def make_samples(n: int, **kwargs) -> list[Sample]:
    return [make_sample(table=f"Table{i:04d}", **kwargs) for i in range(n)]


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
