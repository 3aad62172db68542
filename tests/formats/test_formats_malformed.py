"""Every malformed record raises DecodeError with a message that says what is wrong."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from receiver.formats import REASONS, DecodeError, decode_record
from receiver.formats.framing import frame

from .helpers import CACHE, DYNAMODB, END_NS, RESOURCE, START_NS, otel07_message, otel10_message, record
from .make_fixtures import DATA

OTEL07 = "opentelemetry0.7"
OTEL10 = "opentelemetry1.0"


def decode_error(data: bytes, fmt: str | None = None, reason: str = "malformed") -> str:
    """The one-sentence message of the DecodeError ``data`` raises, checking its reason."""
    with pytest.raises(DecodeError) as info:
        decode_record(data, fmt, cache=CACHE)
    message = str(info.value)
    assert message and "\n" not in message
    assert info.value.reason == reason, message
    return message


@pytest.mark.parametrize("fmt", [None, OTEL07, OTEL10, "json"])
def test_empty_record(fmt: str | None) -> None:
    assert "empty" in decode_error(b"", fmt, "empty_record")


@pytest.mark.parametrize("fmt", [OTEL07, OTEL10])
def test_truncated_length_prefix(fmt: str) -> None:
    data = record(otel07_message()) + b"\x80"
    assert "ends inside a message's length prefix" in decode_error(data, fmt)


@pytest.mark.parametrize("fmt", [OTEL07, OTEL10])
def test_length_prefix_past_the_record_end(fmt: str) -> None:
    data = record(otel07_message())[:-1]
    assert "only" in decode_error(data, fmt) and "remain" in decode_error(data, fmt)


@pytest.mark.parametrize("fmt", [OTEL07, OTEL10])
def test_protobuf_garbage(fmt: str) -> None:
    assert "not a valid" in decode_error(frame(b"\x0a\x05\xff\xff\xff\xff\xff"), fmt)


def test_invalid_utf8_in_a_label() -> None:
    message = otel07_message()
    data = bytearray(record(message))
    data[data.index(b"TableName")] = 0xFF
    assert "StringKeyValue" in decode_error(bytes(data), OTEL07)


def test_otel07_without_namespace() -> None:
    data = record(otel07_message(labels=(("MetricName", "M"), ("TableName", "T"))))
    assert "no Namespace label" in decode_error(data, OTEL07)


def test_otel07_without_metric_name() -> None:
    data = record(otel07_message(labels=(("Namespace", "AWS/DynamoDB"),)))
    assert "no MetricName label" in decode_error(data, OTEL07)


def test_otel10_without_namespace() -> None:
    data = record(otel10_message(attributes=(("MetricName", "M"),)))
    assert "no Namespace attribute" in decode_error(data, OTEL10)


def test_otel10_without_metric_name() -> None:
    data = record(otel10_message(attributes=(("Namespace", "AWS/DynamoDB"),)))
    assert "no MetricName attribute" in decode_error(data, OTEL10)


def test_otel10_read_as_otel07_has_no_labels() -> None:
    assert "no Namespace label" in decode_error(record(otel10_message()), OTEL07)


def test_otel10_dimensions_not_a_list() -> None:
    message = otel10_message(dimensions=None)
    point = message.resource_metrics[0].scope_metrics[0].metrics[0].summary.data_points[0]
    nested = point.attributes.add()
    nested.key, nested.value.string_value = "Dimensions", "TableName=T"
    assert "not a key-value list" in decode_error(record(message), OTEL10)


def test_otel10_dimension_not_a_string() -> None:
    message = otel10_message(dimensions=())
    point = message.resource_metrics[0].scope_metrics[0].metrics[0].summary.data_points[0]
    dimension = point.attributes[-1].value.kvlist_value.values.add()
    dimension.key, dimension.value.int_value = "TableName", 7
    assert "dimension 'TableName' is not a string" in decode_error(record(message), OTEL10)


@pytest.mark.parametrize(
    "quantiles, missing",
    [
        (((1.0, 3.0),), "quantile 0.0 (minimum)"),
        (((0.0, 1.0), (0.99, 2.0)), "quantile 1.0 (maximum)"),
        ((), "quantiles 0.0 (minimum) and 1.0 (maximum)"),
    ],
)
def test_missing_min_or_max_quantile(quantiles: tuple, missing: str) -> None:
    message = decode_error(record(otel07_message(quantiles=quantiles)), OTEL07)
    assert "AWS/DynamoDB/ConsumedReadCapacityUnits" in message
    assert f"lacks the {missing}" in message


def test_min_of_zero_sent_as_an_empty_quantile_counts_as_present() -> None:
    # proto3 drops zero fields: CloudWatch's {quantile: 0.0, value: 0.0} arrives as {}.
    samples = decode_record(record(otel07_message(quantiles=((0.0, 0.0), (1.0, 3.0)))), OTEL07, cache=CACHE)
    assert (samples[0].min, samples[0].max) == (0.0, 3.0)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("where", ["sum", "min", "max"])
def test_non_finite_sum_min_max(bad: float, where: str) -> None:
    quantiles = ((0.0, bad if where == "min" else 1.0), (1.0, bad if where == "max" else 3.0))
    data = record(otel07_message(quantiles=quantiles, total=bad if where == "sum" else 4.0))
    assert "non-finite" in decode_error(data, OTEL07, "non_finite")


def test_non_finite_percentile() -> None:
    data = record(otel10_message(quantiles=((0.0, 1.0), (0.99, math.nan), (1.0, 3.0))))
    assert "non-finite p99" in decode_error(data, OTEL10, "non_finite")


@pytest.mark.parametrize("quantile", [1.5, -0.5, math.nan])
def test_quantile_outside_zero_to_one(quantile: float) -> None:
    data = record(otel07_message(quantiles=((0.0, 1.0), (quantile, 2.0), (1.0, 3.0))))
    assert "outside 0..1" in decode_error(data, OTEL07)


def test_repeated_percentile() -> None:
    data = record(otel07_message(quantiles=((0.0, 1.0), (0.99, 2.0), (0.99, 2.5), (1.0, 3.0))))
    assert "repeats the statistic p99" in decode_error(data, OTEL07)


def test_repeated_label() -> None:
    data = record(otel07_message(labels=(*DYNAMODB, ("TableName", "A"), ("TableName", "B"))))
    assert "repeats the label 'TableName'" in decode_error(data, OTEL07)


def test_period_that_ends_before_it_starts() -> None:
    data = record(otel07_message(start=END_NS, end=START_NS))
    assert "no later than it starts" in decode_error(data, OTEL07)


@pytest.mark.parametrize("drop", ["cloud.account.id", "cloud.region"])
def test_resource_without_account_or_region(drop: str) -> None:
    resource = tuple(pair for pair in RESOURCE if pair[0] != drop)
    assert f"no {drop} attribute" in decode_error(record(otel07_message(resource=resource)), OTEL07)


JSON_LINE = (DATA / "aws-json-example.jsonl").read_bytes()


def json_with(**changes: object) -> bytes:
    import orjson

    item = orjson.loads(JSON_LINE)
    for key, value in changes.items():
        if value is ...:
            del item[key]
        else:
            item[key] = value
    return orjson.dumps(item) + b"\n"


@pytest.mark.parametrize(
    "data, expected",
    [
        (b'{"account_id": ', "not valid JSON"),
        (JSON_LINE + b"{oops}\n", "not valid JSON"),
        (b'{"value": NaN}\n', "not valid JSON"),
        (b'{"value": {"sum": NaN}, "timestamp": [' + b"[" * 5000 + b"]\n", "not valid JSON"),
        (b"[1, 2]\n", "not an object"),
    ],
)
def test_bad_json(data: bytes, expected: str) -> None:
    assert expected in decode_error(data, "json")


def test_a_json_number_past_a_double_is_non_finite() -> None:
    data = JSON_LINE.replace(b'"sum":20.0', b'"sum":1e400')
    assert "non-finite" in decode_error(data, "json", "non_finite")


@pytest.mark.parametrize("key", ["account_id", "region", "namespace", "metric_name", "timestamp", "value"])
def test_json_missing_a_required_key(key: str) -> None:
    assert f"no {key!r} key" in decode_error(json_with(**{key: ...}), "json")


@pytest.mark.parametrize(
    "changes, expected",
    [
        ({"timestamp": "1611929698000"}, "not epoch milliseconds"),
        ({"timestamp": 1611929698000.5}, "not epoch milliseconds"),
        ({"timestamp": -1}, "not epoch milliseconds"),
        ({"value": [1, 2]}, "value of AWS/EC2/DiskWriteOps is not an object"),
        ({"value": {"sum": 1, "min": 0, "max": 1}}, "has no 'count'"),
        ({"value": {"count": "3", "sum": 1, "min": 0, "max": 1}}, "non-numeric 'count'"),
        ({"value": {"count": True, "sum": 1, "min": 0, "max": 1}}, "non-numeric 'count'"),
        (
            {"value": {"count": 1, "sum": 1, "min": 0, "max": 1, "p99": None}},
            "'p99' of AWS/EC2/DiskWriteOps is not a number",
        ),
        ({"dimensions": ["InstanceId"]}, "not an object of strings"),
        ({"dimensions": {"InstanceId": 5}}, "not an object of strings"),
        ({"namespace": ""}, "'namespace' of a metric object is not a non-empty string"),
        ({"account_id": 1234567890}, "'account_id' of a metric object is not a non-empty string"),
        ({"unit": 1}, "unit of AWS/EC2/DiskWriteOps is not a string"),
        ({"metric_stream_name": ["S"]}, "'metric_stream_name' of a metric object is not a string"),
    ],
)
def test_json_wrong_types(changes: dict, expected: str) -> None:
    assert expected in decode_error(json_with(**changes), "json")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_give_samples_or_decode_error(data: bytes) -> None:
    for fmt in (None, OTEL07, OTEL10, "json"):
        try:
            assert decode_record(data, fmt, cache=CACHE)  # a record taken has at least one sample
        except DecodeError as exc:
            assert exc.reason in REASONS


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_valid_records_give_samples_or_decode_error(data: st.DataObject) -> None:
    original = record(otel07_message(), otel10_message())
    position = data.draw(st.integers(0, len(original) - 1))
    byte = data.draw(st.integers(0, 255))
    mutated = original[:position] + bytes([byte]) + original[position + 1 :]
    for fmt in (None, OTEL07, OTEL10):
        try:
            assert decode_record(mutated, fmt, cache=CACHE)
        except DecodeError as exc:
            assert exc.reason in REASONS
