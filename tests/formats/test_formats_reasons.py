"""The record contract: every fault is a DecodeError with a reason from one closed set, on the
compiled decoder and the reference (the careful walk) alike, so the ingest layer can quarantine
the record.

Checked here: non-finite statistics, periods out of range (with an injectable "now"), metric
names at odds with their labels, empty frames and empty containers, the work bounds, and
OpenTelemetry attributes kept as labels rather than dropped.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Iterator

import orjson
import pytest

from receiver.formats import REASONS, DecodeError, decode_record
from receiver.formats.errors import MALFORMED
from receiver.formats.framing import frame
from receiver.formats.limits import (
    FUTURE_SLACK_MS,
    MAX_DATAPOINTS_PER_RECORD,
    MAX_FRAMES_PER_RECORD,
    MAX_LABELS_PER_DATAPOINT,
    MAX_PARTS_PER_RECORD,
    MAX_RESOURCE_ATTRIBUTES,
    MAX_STATISTICS_PER_DATAPOINT,
    OLDEST_MS,
)
from receiver.model import PERIOD_MS, Sample
from receiver.proto.otel07 import metrics_service_pb2 as otel07_service

from .helpers import CACHE, DYNAMODB, NOW_MS, RESOURCE, START_NS, otel07_message, otel10_message, record
from .make_fixtures import DATA

OTEL07, OTEL10, JSON = "opentelemetry0.7", "opentelemetry1.0", "json"
NS = 1_000_000
LATEST_NS = (NOW_MS + FUTURE_SLACK_MS) * NS
JSON_ITEM = orjson.loads((DATA / "aws-json-example.jsonl").read_bytes())


def reason_of(data: bytes, fmt: str | None, now_ms: int = NOW_MS) -> str:
    with pytest.raises(DecodeError) as info:
        decode_record(data, fmt, now_ms=now_ms, cache=CACHE)
    message = str(info.value)
    assert message and "\n" not in message and message[0].islower()
    assert info.value.reason in REASONS
    return info.value.reason


def json_line(**changes: object) -> bytes:
    item = {**JSON_ITEM, "timestamp": START_NS // NS, **changes}
    return orjson.dumps(item) + b"\n"


def json_value(**changes: object) -> bytes:
    return json_line(value={**JSON_ITEM["value"], **changes})


def otel_message(fmt: str, **kwargs: object) -> object:
    return otel07_message(**kwargs) if fmt == OTEL07 else otel10_message(**kwargs)


# The reasons themselves


def test_the_reasons_are_a_closed_documented_set_of_label_values() -> None:
    assert {
        "malformed",
        "empty_record",
        "unknown_format",
        "empty_frame",
        "no_datapoints",
        "too_much_work",
        "non_finite",
        "timestamp_out_of_range",
        "metric_name_mismatch",
    } == set(REASONS)
    for reason, meaning in REASONS.items():
        assert reason.isidentifier() and reason == reason.lower()
        assert meaning and "\n" not in meaning


def test_a_decode_error_is_malformed_unless_told_and_only_takes_known_reasons() -> None:
    assert DecodeError("bad").reason == MALFORMED
    assert DecodeError("bad", "non_finite").reason == "non_finite"
    with pytest.raises(ValueError):
        DecodeError("bad", "something_else")
    copy = pickle.loads(pickle.dumps(DecodeError("a sentence", "empty_frame")))
    assert (str(copy), copy.reason) == ("a sentence", "empty_frame")


def test_an_unknown_format_name_is_the_callers_mistake_not_the_records() -> None:
    with pytest.raises(ValueError) as info:
        decode_record(record(otel07_message()), "opentelemetry9", cache=CACHE)
    assert not isinstance(info.value, DecodeError)


# Point 2: values the store cannot keep


@pytest.mark.parametrize("fmt", [OTEL07, OTEL10])
@pytest.mark.parametrize("where", ["sum", "min", "max", "p99"])
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_non_finite_statistic_in_otel(fmt: str, where: str, bad: float, decoder: str) -> None:
    quantiles = (
        (0.0, bad if where == "min" else 1.0),
        (0.99, bad if where == "p99" else 2.0),
        (1.0, bad if where == "max" else 3.0),
    )
    message = otel_message(fmt, quantiles=quantiles, total=bad if where == "sum" else 4.0)
    data = record(otel_message(fmt), message)
    assert reason_of(data, fmt) == "non_finite"
    assert reason_of(data, None) == "non_finite"


@pytest.mark.parametrize("key", ["count", "sum", "min", "max", "p99", "TM(25%:75%)"])
@pytest.mark.parametrize("bad", [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e999", b"1" + b"0" * 400])
def test_a_non_finite_statistic_in_json(key: str, bad: bytes) -> None:
    line = json_value(**{key: 12345.5}).replace(b"12345.5", bad)
    assert reason_of(json_line() + line, JSON) == "non_finite"
    assert reason_of(line, None) == "non_finite"


@pytest.mark.parametrize("fmt", [OTEL07, OTEL10])
@pytest.mark.parametrize(
    "start_ms, end_ms",
    [
        (OLDEST_MS - PERIOD_MS, OLDEST_MS),  # starts in 1999
        (60_000, 120_000),  # AWS's 1.0 example, as published
        (NOW_MS, NOW_MS + FUTURE_SLACK_MS + 1),  # ends a day and a millisecond from now
        (NOW_MS + 2 * FUTURE_SLACK_MS, NOW_MS + 2 * FUTURE_SLACK_MS + PERIOD_MS),
        ((2**64 - 1) // NS - PERIOD_MS, (2**64 - 1) // NS),  # as far as fixed64 nanoseconds go
    ],
)
def test_a_period_out_of_range_in_otel(fmt: str, start_ms: int, end_ms: int, decoder: str) -> None:
    data = record(otel_message(fmt), otel_message(fmt, start=start_ms * NS, end=end_ms * NS))
    assert reason_of(data, fmt) == "timestamp_out_of_range"


@pytest.mark.parametrize("fmt", [OTEL07, OTEL10])
def test_the_range_ends_are_accepted(fmt: str, decoder: str) -> None:
    first = otel_message(fmt, start=OLDEST_MS * NS, end=(OLDEST_MS + PERIOD_MS) * NS)
    last = otel_message(fmt, start=LATEST_NS - PERIOD_MS * NS, end=LATEST_NS + NS - 1)
    samples = decode_record(record(first, last), fmt, now_ms=NOW_MS, cache=CACHE)
    assert [(s.start_ms, s.end_ms) for s in samples] == [
        (OLDEST_MS, OLDEST_MS + PERIOD_MS),
        (NOW_MS + FUTURE_SLACK_MS - PERIOD_MS, NOW_MS + FUTURE_SLACK_MS),
    ]


def test_a_json_timestamp_near_2_to_the_63_is_out_of_range() -> None:
    # It used to reach the store and overflow SQLite's integer arithmetic (a 500).
    assert reason_of(json_line(timestamp=2**63 - 60_000), JSON) == "timestamp_out_of_range"
    assert reason_of(json_line(timestamp=2**63 - 60_000), None) == "timestamp_out_of_range"


@pytest.mark.parametrize("timestamp", [0, OLDEST_MS - 1, NOW_MS + FUTURE_SLACK_MS - PERIOD_MS + 1, 2**64 - 1])
def test_a_json_timestamp_out_of_range(timestamp: int) -> None:
    assert reason_of(json_line() + json_line(timestamp=timestamp), JSON) == "timestamp_out_of_range"


def test_a_json_timestamp_past_64_bits_is_out_of_range_too() -> None:
    for digits in (str(2**70), "1" + "0" * 400):
        line = json_line(timestamp=777777777).replace(b"777777777", digits.encode())
        assert reason_of(line, JSON) == "timestamp_out_of_range"


def test_json_range_ends_are_accepted() -> None:
    data = json_line(timestamp=OLDEST_MS) + json_line(timestamp=NOW_MS + FUTURE_SLACK_MS - PERIOD_MS)
    assert len(decode_record(data, JSON, now_ms=NOW_MS, cache=CACHE)) == 2


@pytest.mark.parametrize("fmt", [OTEL07, OTEL10, JSON])
def test_now_is_injectable_and_defaults_to_the_clock(fmt: str) -> None:
    future_ms = 4_102_444_800_000  # 2100-01-01
    if fmt == JSON:
        data = json_line(timestamp=future_ms)
    else:
        data = record(otel_message(fmt, start=future_ms * NS, end=(future_ms + PERIOD_MS) * NS))
    assert decode_record(data, fmt, now_ms=future_ms, cache=CACHE)[0].start_ms == future_ms
    with pytest.raises(DecodeError):
        decode_record(data, fmt, cache=CACHE)  # the clock reads before 2100


# Point 3: the metric's name and its datapoints' labels


@pytest.mark.parametrize("fmt", [OTEL07, OTEL10])
@pytest.mark.parametrize(
    "name",
    [
        "amazonaws.com/AWS/DynamoDB/ProvisionedReadCapacityUnits",
        "amazonaws.com/AWS/S3/ConsumedReadCapacityUnits",
        "amazonaws.com/AWS/DynamoDB/ConsumedReadCapacityUnitsX",
        "amazonaws.com/AWS/DynamoDBConsumedReadCapacityUnits",
        "amazonaws.com/",
    ],
)
def test_a_metric_name_at_odds_with_its_labels(fmt: str, name: str, decoder: str) -> None:
    data = record(otel_message(fmt), otel_message(fmt, name=name))
    assert reason_of(data, fmt) == "metric_name_mismatch"
    assert reason_of(data, None) == "metric_name_mismatch"


@pytest.mark.parametrize("fmt", [OTEL07, OTEL10])
@pytest.mark.parametrize("name", ["", "ConsumedReadCapacityUnits", "aws.dynamodb.consumed_read", "amazonaws.com"])
def test_a_name_outside_cloudwatchs_scheme_is_not_compared(fmt: str, name: str, decoder: str) -> None:
    [sample] = decode_record(record(otel_message(fmt, name=name)), fmt, now_ms=NOW_MS, cache=CACHE)
    assert (sample.series.namespace, sample.series.metric) == ("AWS/DynamoDB", "ConsumedReadCapacityUnits")


def test_one_series_under_two_names_is_judged_under_each(decoder: str) -> None:
    good = otel07_message()
    renamed = otel07_message(name="amazonaws.com/AWS/DynamoDB/Other")
    assert len(decode_record(record(good), OTEL07, now_ms=NOW_MS, cache=CACHE)) == 1  # remembered now
    assert reason_of(record(good, renamed), OTEL07) == "metric_name_mismatch"


# Point 4: empty frames, empty containers, bounded work


@pytest.mark.parametrize("fmt", [None, OTEL07, OTEL10])
def test_a_record_of_zero_bytes_is_an_empty_frame(fmt: str | None) -> None:
    assert reason_of(b"\x00" * 1_024_000, fmt) == "empty_frame"
    assert reason_of(record(otel07_message()) + b"\x00" + record(otel07_message()), fmt) == "empty_frame"


def messages_without_datapoints() -> Iterator[tuple[str, otel07_service.ExportMetricsServiceRequest]]:
    no_resource = otel07_service.ExportMetricsServiceRequest()
    no_resource.resource_metrics.add()  # serialized: one empty resource_metrics
    yield "resource_metrics without anything", no_resource
    no_scope = otel07_message()
    del no_scope.resource_metrics[0].instrumentation_library_metrics[:]
    yield "resource without scopes", no_scope
    empty_scope = otel07_message()
    empty_scope.resource_metrics[0].instrumentation_library_metrics.add()
    yield "an empty scope after a full one", empty_scope
    empty_metric = otel07_message()
    empty_metric.resource_metrics[0].instrumentation_library_metrics[0].metrics.add().name = "amazonaws.com/N/M"
    yield "a metric without datapoints", empty_metric
    yield "a metric whose summary is empty", otel07_message(points=0)


@pytest.mark.parametrize(
    "case, message", list(messages_without_datapoints()), ids=lambda v: v if isinstance(v, str) else ""
)
def test_a_message_resource_scope_or_metric_without_datapoints(case: str, message: object, decoder: str) -> None:
    data = record(otel07_message(), message)
    assert reason_of(data, OTEL07) == "no_datapoints"
    assert reason_of(data, None) == "no_datapoints"


def test_a_frame_that_is_not_even_a_request_carries_no_datapoints(decoder: str) -> None:
    assert reason_of(frame(b"\x08\x00") * 10, OTEL07) == "no_datapoints"


@pytest.mark.parametrize("data", [b"\n", b"\n" * 10_000, b"  \n \n"])
def test_a_json_record_without_objects(data: bytes) -> None:
    assert reason_of(data, JSON) == "no_datapoints"


def test_frames_per_record_are_bounded(decoder: str) -> None:
    one = record(otel07_message())
    assert len(decode_record(one * MAX_FRAMES_PER_RECORD, OTEL07, now_ms=NOW_MS, cache=CACHE)) == MAX_FRAMES_PER_RECORD
    assert reason_of(one * (MAX_FRAMES_PER_RECORD + 1), OTEL07) == "too_much_work"
    assert reason_of(one * (MAX_FRAMES_PER_RECORD + 1), None) == "too_much_work"


@pytest.mark.parametrize("part", ["resource_metrics", "scopes", "metrics"])
def test_resources_scopes_and_metrics_per_record_are_bounded(part: str, decoder: str) -> None:
    # Two bytes each when empty, yet each costs a Python object: a million of them took seconds.
    many = MAX_PARTS_PER_RECORD + 1
    message = otel07_message()
    resource_metrics = message.resource_metrics[0]
    if part == "resource_metrics":
        data = record(message) + frame(b"\x0a\x00" * many)
    elif part == "scopes":
        for _ in range(many):
            resource_metrics.instrumentation_library_metrics.add()
        data = record(message)
    else:
        library = resource_metrics.instrumentation_library_metrics[0]
        for _ in range(many):
            library.metrics.add()
        data = record(message)
    assert reason_of(data, OTEL07) == "too_much_work"


def test_datapoints_per_record_are_bounded(decoder: str) -> None:
    most = record(otel07_message(points=MAX_DATAPOINTS_PER_RECORD // 2))
    assert len(decode_record(most * 2, OTEL07, now_ms=NOW_MS, cache=CACHE)) == MAX_DATAPOINTS_PER_RECORD
    assert reason_of(most * 2 + record(otel07_message()), OTEL07) == "too_much_work"


def dimensions(count: int) -> tuple[tuple[str, str], ...]:
    return tuple((f"D{i:03d}", "v") for i in range(count))


@pytest.mark.parametrize("fmt", [OTEL07, OTEL10])
def test_labels_and_dimensions_per_datapoint_are_bounded(fmt: str, decoder: str) -> None:
    most = MAX_LABELS_PER_DATAPOINT - 2 if fmt == OTEL07 else MAX_LABELS_PER_DATAPOINT
    if fmt == OTEL07:
        fits, past = (otel07_message(labels=DYNAMODB + dimensions(n)) for n in (most, most + 1))
    else:
        fits, past = (otel10_message(dimensions=dimensions(n)) for n in (most, most + 1))
    [sample] = decode_record(record(fits), fmt, now_ms=NOW_MS, cache=CACHE)
    assert len(sample.series.dimensions) == most
    assert reason_of(record(otel_message(fmt), past), fmt) == "too_much_work"


def test_attributes_per_1x_datapoint_are_bounded(decoder: str) -> None:
    extra = dimensions(MAX_LABELS_PER_DATAPOINT - 2)  # with Namespace, MetricName, Dimensions: one too many
    assert reason_of(record(otel10_message(attributes=DYNAMODB + extra)), OTEL10) == "too_much_work"


@pytest.mark.parametrize("fmt", [OTEL07, OTEL10])
def test_quantiles_per_datapoint_are_bounded(fmt: str, decoder: str) -> None:
    def quantiles(count: int) -> tuple[tuple[float, float], ...]:
        return ((0.0, 1.0), *((k / 1000, 2.0) for k in range(1, count - 1)), (1.0, 3.0))

    [sample] = decode_record(
        record(otel_message(fmt, quantiles=quantiles(MAX_STATISTICS_PER_DATAPOINT))), fmt, now_ms=NOW_MS, cache=CACHE
    )
    assert len(sample.stats) == MAX_STATISTICS_PER_DATAPOINT - 2
    data = record(otel_message(fmt), otel_message(fmt, quantiles=quantiles(MAX_STATISTICS_PER_DATAPOINT + 1)))
    assert reason_of(data, fmt) == "too_much_work"


def test_resource_attributes_are_bounded(decoder: str) -> None:
    fits = RESOURCE + dimensions(MAX_RESOURCE_ATTRIBUTES - len(RESOURCE))
    assert len(decode_record(record(otel07_message(resource=fits)), OTEL07, now_ms=NOW_MS, cache=CACHE)) == 1
    past = (*fits, ("one", "more"))
    assert reason_of(record(otel07_message(), otel07_message(resource=past)), OTEL07) == "too_much_work"


def test_json_dimensions_and_statistics_are_bounded() -> None:
    fits = json_line(dimensions=dict(dimensions(MAX_LABELS_PER_DATAPOINT)))
    assert len(decode_record(fits, JSON, now_ms=NOW_MS, cache=CACHE)[0].series.dimensions) == MAX_LABELS_PER_DATAPOINT
    assert reason_of(json_line(dimensions=dict(dimensions(MAX_LABELS_PER_DATAPOINT + 1))), JSON) == "too_much_work"
    value = {
        "count": 1,
        "sum": 1,
        "min": 1,
        "max": 1,
        **{f"p{k}": 1.0 for k in range(1, MAX_STATISTICS_PER_DATAPOINT - 3)},
    }
    assert (
        len(decode_record(json_line(value=value), JSON, now_ms=NOW_MS, cache=CACHE)[0].stats)
        == MAX_STATISTICS_PER_DATAPOINT - 4
    )
    value["p99.5"] = 1.0
    assert reason_of(json_line(value=value), JSON) == "too_much_work"


# Point 5: OpenTelemetry attributes are kept as labels, never dropped


def test_other_1x_datapoint_attributes_become_labels(decoder: str) -> None:
    message = otel10_message(attributes=(*DYNAMODB, ("team", "storage"), ("cloud.provider", "mine")))
    point = message.resource_metrics[0].scope_metrics[0].metrics[0].summary.data_points[0]
    for key, field, value in (("shard", "int_value", 7), ("hot", "bool_value", True), ("ratio", "double_value", 0.5)):
        attribute = point.attributes.add()
        attribute.key = key
        setattr(attribute.value, field, value)
    point.attributes.add().key = "unset"
    plain = otel10_message()
    samples = decode_record(
        record(message, plain, message), OTEL10, extra_labels=(("zone", "z"),), now_ms=NOW_MS, cache=CACHE
    )
    arn = dict(RESOURCE)["aws.exporter.arn"]
    assert samples[0].labels == (
        ("aws.exporter.arn", arn),
        ("cloud.provider", "mine"),
        ("hot", "true"),
        ("ratio", "0.5"),
        ("shard", "7"),
        ("team", "storage"),
        ("unset", ""),
        ("zone", "z"),
    )
    assert samples[1].labels == (("aws.exporter.arn", arn), ("cloud.provider", "aws"), ("zone", "z"))
    assert samples[2].labels == samples[0].labels
    assert samples[0].series is samples[1].series  # the labels do not change the series
    assert samples[0].series.dimensions == (("TableName", "T"),)


@pytest.mark.parametrize("field", ["array_value", "kvlist_value", "bytes_value"])
def test_a_1x_attribute_no_label_can_hold_is_refused_not_dropped(field: str, decoder: str) -> None:
    message = otel10_message()
    attribute = message.resource_metrics[0].scope_metrics[0].metrics[0].summary.data_points[0].attributes.add()
    attribute.key = "odd"
    if field == "bytes_value":
        attribute.value.bytes_value = b"\x01"
    else:
        getattr(attribute.value, field).SetInParent()
    assert reason_of(record(message), OTEL10) == "malformed"


@pytest.mark.parametrize("fmt", [OTEL07, OTEL10])
def test_resource_attributes_of_any_scalar_type_become_labels(fmt: str, decoder: str) -> None:
    message = otel_message(fmt)
    attributes = message.resource_metrics[0].resource.attributes
    for key, field, value in (("shard", "int_value", 3), ("primary", "bool_value", False)):
        attribute = attributes.add()
        attribute.key = key
        setattr(attribute.value, field, value)
    [sample] = decode_record(record(message), fmt, now_ms=NOW_MS, cache=CACHE)
    assert ("shard", "3") in sample.labels and ("primary", "false") in sample.labels
    listed = attributes.add()
    listed.key = "list"
    listed.value.array_value.SetInParent()
    assert reason_of(record(message), fmt) == "malformed"


def test_every_decoded_sample_is_one_a_store_can_keep() -> None:
    records = [record(otel07_message(points=3)), record(otel10_message()), json_line()]
    for sample in [s for data in records for s in decode_record(data, now_ms=NOW_MS, cache=CACHE)]:
        assert isinstance(sample, Sample)
        numbers = (sample.count, sample.sum, sample.min, sample.max, *(v for _, v in sample.stats))
        assert all(math.isfinite(v) for v in numbers)
        assert OLDEST_MS <= sample.start_ms < sample.end_ms <= NOW_MS + FUTURE_SLACK_MS
