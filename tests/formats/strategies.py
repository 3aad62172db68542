"""Hypothesis strategies for the OpenTelemetry decoder tests: batches of samples the encoder
writes, and messages (built with the generated classes) that are sound or carry one fault."""

from __future__ import annotations

import math

from hypothesis import strategies as st

from receiver.formats import otel07
from receiver.model import Sample, Series

from .helpers import NOW_MS, START_NS, otel07_message, otel10_message

finite = st.floats(allow_nan=False, allow_infinity=False)


@st.composite
def batches(draw: st.DrawFn) -> list[Sample]:
    """Up to 12 samples of a few series, minutes and statistics, with any finite values."""
    count = draw(st.integers(1, 12))
    out = []
    for _ in range(count):
        table = draw(st.sampled_from(["a", "b", "c"]))
        series = Series(
            "123456789012",
            "us-east-1",
            draw(st.sampled_from(["AWS/DynamoDB", "X"])),
            draw(st.sampled_from(["M1", "M2"])),
            (("TableName", table),),
            draw(st.sampled_from(["Count", "Milliseconds"])),
        )
        start = draw(st.sampled_from([START_NS // 10**6, START_NS // 10**6 + 60_000, 0]))
        stats = draw(st.sampled_from([(), (("p50", 0.0),), (("p90", 2.0), ("p99", 3.5))]))
        out.append(
            Sample(
                series,
                start,
                start + 60_000,
                float(draw(st.integers(0, 3))) if draw(st.booleans()) else float(draw(st.integers(0, 2**64 - 2048))),
                draw(st.sampled_from([0.0, -0.0, 1.5, -2.0])) if draw(st.booleans()) else draw(finite),
                draw(st.sampled_from([0.0, 1.0])),
                draw(finite),
                stats,
            )
        )
    return out


@st.composite
def faulty_messages(draw: st.DrawFn, fmt: str) -> object:
    """A message that is sound or carries one of the faults a record may have: a bad value,
    a period out of range, a metric name at odds with its labels, no datapoints, too many
    labels or quantiles."""
    value = st.sampled_from([4.0, 0.0, -1.5, math.nan, math.inf, -math.inf])
    minute = 60_000_000_000
    start = draw(
        st.sampled_from(
            [START_NS, START_NS + minute, 60_000_000_000, (NOW_MS + 86_400_000) * 10**6, 2**64 - minute - 1]
        )
    )
    end = start + draw(st.sampled_from([minute, 0, -minute, 1]))
    quantiles = [(0.0, draw(value)), (1.0, draw(value))]
    quantiles[1:1] = [
        (q, draw(value)) for q in draw(st.sampled_from([(), (0.5,), (0.9, 0.99), tuple(k / 100 for k in range(1, 64))]))
    ]
    table = draw(st.sampled_from(["A", "B"]))
    dimensions = draw(st.sampled_from([(("TableName", table),), tuple((f"D{i}", table) for i in range(70))]))
    metric = draw(st.sampled_from(["M1", "M2"]))
    name = draw(st.sampled_from([None, None, "", "amazonaws.com/AWS/DynamoDB/M3"]))
    kwargs = {
        "quantiles": quantiles,
        "start": max(0, min(start, 2**64 - 1)),
        "end": max(0, min(end, 2**64 - 1)),
        "total": draw(value),
        "name": name,
        "points": draw(st.sampled_from([1, 1, 3, 0])),
    }
    labels = (("Namespace", "AWS/DynamoDB"), ("MetricName", metric))
    if fmt == otel07.NAME:
        return otel07_message(labels=labels + dimensions, **kwargs)
    return otel10_message(attributes=labels, dimensions=dimensions, **kwargs)
