"""OpenTelemetry quantiles <-> CloudWatch statistics."""

from __future__ import annotations

import pytest

from receiver.formats import decode_record, encode_records
from receiver.formats.otel import quantile_of
from receiver.model import Sample, Series

from .helpers import CACHE, otel07_message, otel10_message, record


def test_quantile_zero_is_min_one_is_max_others_percentiles() -> None:
    quantiles = ((0.0, 1.0), (0.5, 2.0), (0.99, 4.0), (0.999, 5.0), (1.0, 6.0))
    for message in (otel07_message(quantiles=quantiles), otel10_message(quantiles=quantiles)):
        (sample,) = decode_record(record(message), cache=CACHE)
        assert (sample.min, sample.max) == (1.0, 6.0)
        assert sample.stats == (("p50", 2.0), ("p99", 4.0), ("p99.9", 5.0))


def test_quantile_order_on_the_wire_does_not_matter() -> None:
    quantiles = ((1.0, 6.0), (0.99, 4.0), (0.0, 1.0), (0.95, 3.0))
    (sample,) = decode_record(record(otel07_message(quantiles=quantiles)), cache=CACHE)
    assert (sample.min, sample.max, sample.stats) == (1.0, 6.0, (("p95", 3.0), ("p99", 4.0)))


@pytest.mark.parametrize("name, quantile", [("p99", 0.99), ("p99.9", 0.999), ("p50", 0.5), ("p0.1", 0.001)])
def test_percentile_names_give_their_quantile(name: str, quantile: float) -> None:
    assert quantile_of(name) == quantile


@pytest.mark.parametrize("name", ["TM(10%:90%)", "p0", "p100", "p", "pxx", "avg", "p99.90"])
def test_other_statistics_have_no_quantile(name: str) -> None:
    with pytest.raises(ValueError, match="only percentile statistics"):
        quantile_of(name)


def test_encoded_quantiles_are_strictly_increasing_with_min_and_max_at_the_ends() -> None:
    from receiver.formats.framing import split_frames
    from receiver.proto.otel07 import metrics_service_pb2

    series = Series("1", "r", "N", "M", (), "Count")
    sample = Sample(series, 0, 60_000, 1.0, 1.0, 0.5, 2.0, (("p50", 1.0), ("p99.9", 1.9), ("p99", 1.8)))
    (record_bytes,) = encode_records([sample], "opentelemetry0.7")
    message = metrics_service_pb2.ExportMetricsServiceRequest.FromString(split_frames(record_bytes)[0])
    point = message.resource_metrics[0].instrumentation_library_metrics[0].metrics[0].double_summary.data_points[0]
    assert [(q.quantile, q.value) for q in point.quantile_values] == [
        (0.0, 0.5),
        (0.5, 1.0),
        (0.99, 1.8),
        (0.999, 1.9),
        (1.0, 2.0),
    ]
