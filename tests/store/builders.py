"""Builders for the store tests: a controllable clock and samples shaped like the decoders' output."""

from __future__ import annotations

from receiver.model import MINUTE_MS, Pairs, Sample, Series, Stats
from tests.builders import T0

LABELS: Pairs = (("cloud.provider", "aws"), ("metric_stream_name", "dynamodb-stream"))


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
    series: Series | None = None,
    minute: int = 0,
    value: float = 10.0,
    *,
    count: float = 2.0,
    stats: Stats = (),
    labels: Pairs = LABELS,
    period_minutes: int = 1,
) -> Sample:
    start = T0 + minute * MINUTE_MS
    return Sample(
        series=series or make_series(),
        start_ms=start,
        end_ms=start + period_minutes * MINUTE_MS,
        count=count,
        sum=value,
        min=value / 4,
        max=value / 2,
        stats=stats,
        labels=labels,
    )


def many_samples(n: int, tables: int = 500) -> list[Sample]:
    """``n`` samples over ``tables`` series, one Series object per series as decoders make them."""
    series = [make_series(table=f"Table{i:04d}") for i in range(tables)]
    return [make_sample(series[i % tables], minute=i // tables, value=float(i)) for i in range(n)]
