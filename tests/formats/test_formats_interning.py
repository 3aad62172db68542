"""Equal series decode to one shared object, from a bounded cache."""

from __future__ import annotations

import pytest

from receiver.formats import decode_record, encode_records
from receiver.formats import series as interning
from receiver.model import Sample, Series

from .helpers import START_NS, otel07_message, record


def test_one_series_is_one_object_across_records_and_formats() -> None:
    series = Series("123456789012", "us-east-1", "AWS/DynamoDB", "ThrottledRequests",
                    (("Operation", "GetItem"), ("TableName", "T")), "Count")
    start = START_NS // 1_000_000
    sample = Sample(series, start, start + 60_000, 1.0, 0.0, 0.0, 0.0)
    decoded = [decode_record(data)[0].series
               for fmt in ("opentelemetry0.7", "opentelemetry1.0", "json", "opentelemetry0.7")
               for data in encode_records([sample], fmt)]
    assert decoded[0] == series
    assert all(other is decoded[0] for other in decoded)


def test_the_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(interning, "MAX_INTERNED", 10)
    for table in range(25):
        decode_record(record(otel07_message(labels=(("Namespace", "N"), ("MetricName", "M"),
                                                   ("TableName", f"T{table}")))))
        assert interning.interned_count() <= 10


def test_new_sample_builds_what_the_constructor_builds() -> None:
    series = Series("a", "r", "n", "m", (("d", "v"),), "Count")
    args = (series, 1, 2, 3.0, 4.0, 5.0, 6.0, (("p99", 5.5),), (("l", "x"),))
    built = interning.new_sample(*args)
    assert type(built) is Sample
    assert built == Sample(*args)
    assert hash(built) == hash(Sample(*args))
    assert built.count == 3.0 and built.labels == (("l", "x"),)
    with pytest.raises(AttributeError):
        built.count = 9.0  # type: ignore[misc]
