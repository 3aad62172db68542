"""The text exposition format (0.0.4), the families the receiver builds, and the minute window."""

from __future__ import annotations

import math

import pytest

from receiver.firehose.telemetry import Histogram, Telemetry
from receiver.model import MINUTE_MS, DerivedValue
from receiver.rules.ruleset import MetricInfo
from receiver.store import open_store_from_url
from receiver.views.prometheus import (
    Family,
    MinuteWindow,
    Point,
    derived_families,
    format_value,
    histogram,
    render,
)

SERVICE = "aws-dynamodb::123456789012"


def info(name: str, scope: str = "endpoint", unit: str = "ms", description: str = "A metric.") -> MetricInfo:
    return MetricInfo(name, scope, unit, description, "AWS_DYNAMODB", "AVG")


def value(
    metric: str, v: float, endpoint: str | None = "GameScores", instance: str | None = None, time_ms: int = 0
) -> DerivedValue:
    scope = "endpoint" if endpoint else "instance" if instance else "service"
    return DerivedValue(metric, scope, SERVICE, endpoint, "AWS_DYNAMODB", time_ms, v, instance)


# -- the format ------------------------------------------------------------------------


def test_label_values_escape_backslash_quote_and_newline() -> None:
    text = render([Family("m", "gauge", "h", (Point((("endpoint", 'a\\b"c\nd'),), 1.0),))])
    assert 'm{endpoint="a\\\\b\\"c\\nd"} 1.0\n' in text


def test_help_escapes_backslash_and_newline_but_not_quotes() -> None:
    text = render([Family("m", "gauge", 'say "x"\\y\nz', ())])
    assert text.splitlines()[0] == '# HELP m say "x"\\\\y\\nz'


def test_each_family_has_one_help_and_type_line_before_its_samples() -> None:
    text = render(
        [
            Family("a", "gauge", "first", (Point((("k", "1"),), 1.0), Point((("k", "2"),), 2.0))),
            Family("b_total", "counter", "second", (Point((), 3),)),
        ]
    )
    assert text == (
        '# HELP a first\n# TYPE a gauge\na{k="1"} 1.0\na{k="2"} 2.0\n'
        "# HELP b_total second\n# TYPE b_total counter\nb_total 3\n"
    )


@pytest.mark.parametrize("name", ["1abc", "a-b", "a.b", "", "é"])
def test_an_invalid_metric_name_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="not a valid Prometheus metric name"):
        render([Family(name, "gauge", "h", ())])


@pytest.mark.parametrize("label", ["__name__", "a:b", "1a", "a-b"])
def test_an_invalid_or_reserved_label_name_is_refused(label: str) -> None:
    with pytest.raises(ValueError, match="not a valid label name"):
        render([Family("m", "gauge", "h", (Point(((label, "v"),), 1.0),))])


def test_a_family_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="appears twice"):
        render([Family("m", "gauge", "h", ()), Family("m", "counter", "h", ())])


def test_a_suffix_foreign_to_the_type_is_refused() -> None:
    with pytest.raises(ValueError, match="does not belong to a gauge"):
        render([Family("m", "gauge", "h", (Point((), 1.0, "_bucket"),))])


def test_an_unknown_type_is_refused() -> None:
    with pytest.raises(ValueError, match="not a Prometheus metric type"):
        render([Family("m", "info", "h", ())])


@pytest.mark.parametrize(
    ("number", "text"),
    [(math.nan, "NaN"), (math.inf, "+Inf"), (-math.inf, "-Inf"), (7, "7"), (True, "1"), (0.5, "0.5")],
)
def test_special_values_are_written_as_the_format_spells_them(number: float, text: str) -> None:
    assert format_value(number) == text


@pytest.mark.parametrize("number", [0.1 + 0.2, 1e-300, 123456789.123456789, 5e22, -0.0])
def test_float_values_read_back_exactly(number: float) -> None:
    assert float(format_value(number)) == number


def test_no_families_render_as_an_empty_body() -> None:
    assert render([]) == ""


# -- the histogram ---------------------------------------------------------------------


def test_a_histogram_has_cumulative_buckets_up_to_inf_then_sum_and_count() -> None:
    measured = Histogram([0.1, 1.0])
    for seconds in (0.05, 0.1, 0.5, 3.0):
        measured.observe(seconds)
    lines = render([histogram("d_seconds", "h", measured.snapshot())]).splitlines()[2:]
    assert lines == [
        'd_seconds_bucket{le="0.1"} 2',  # 0.1 itself counts in le="0.1"
        'd_seconds_bucket{le="1.0"} 3',
        'd_seconds_bucket{le="+Inf"} 4',
        "d_seconds_sum 3.65",
        "d_seconds_count 4",
    ]


@pytest.mark.parametrize("bounds", [[], [1.0, 1.0], [2.0, 1.0], [1.0, math.inf]])
def test_histogram_bounds_must_be_finite_and_strictly_ascending(bounds: list[float]) -> None:
    with pytest.raises(ValueError, match="histogram bounds"):
        Histogram(bounds)


def test_telemetry_never_raises_even_for_a_reason_it_does_not_know(caplog: pytest.LogCaptureFixture) -> None:
    telemetry = Telemetry()
    telemetry.record_delivery(status=400, seconds=0.1, body_bytes=10, decode_error="nonsense")
    assert "could not record a delivery's telemetry" in caplog.text


# -- derived values as families --------------------------------------------------------


def test_derived_values_become_gauges_with_entity_labels_and_help_from_the_rules() -> None:
    metrics = [info("aws_dynamodb_endpoint_x", description="Mean of X.", unit="ms")]
    [family] = derived_families([value("aws_dynamodb_endpoint_x", 2.5)], metrics)
    assert family.type == "gauge"
    assert family.help == "Mean of X. [unit: ms; latest complete minute]"
    assert family.points == (Point((("service", SERVICE), ("endpoint", "GameScores"), ("layer", "AWS_DYNAMODB")), 2.5),)


def test_a_service_value_has_no_endpoint_label() -> None:
    [family] = derived_families([value("s", 1.0, endpoint=None)], [info("s", scope="service")])
    assert family.points[0].labels == (("service", SERVICE), ("layer", "AWS_DYNAMODB"))


def test_an_instance_value_is_labelled_service_instance_not_instance() -> None:
    [family] = derived_families([value("i", 1.0, endpoint=None, instance="i-1")], [info("i", scope="instance")])
    assert dict(family.points[0].labels)["service_instance"] == "i-1"
    assert "instance" not in dict(family.points[0].labels)


def test_families_follow_the_rules_order_and_leave_out_metrics_the_rules_no_longer_define() -> None:
    metrics = [info("b"), info("a")]
    values = [value("a", 1.0), value("gone", 3.0), value("b", 2.0)]
    assert [f.name for f in derived_families(values, metrics)] == ["b", "a"]


def test_a_metric_without_values_in_the_minute_has_no_family() -> None:
    assert [f.name for f in derived_families([value("a", 1.0)], [info("a"), info("b")])] == ["a"]


# -- the minute window -----------------------------------------------------------------


@pytest.mark.parametrize(("settle_s", "stale_after_s"), [(-1, 600), (math.nan, 600), (300, 0), (300, math.inf)])
def test_a_bad_window_is_refused(settle_s: float, stale_after_s: float) -> None:
    with pytest.raises(ValueError, match="settle time|stale-after time"):
        MinuteWindow(settle_s, stale_after_s)


@pytest.fixture
async def store():
    store = open_store_from_url("memory://", minute_retention_days=3650, hour_retention_days=3650)
    await store.open()
    yield store
    await store.close()


async def test_a_minute_is_complete_exactly_settle_seconds_after_it_ends(store) -> None:
    window = MinuteWindow(settle_s=300)
    minute = 100 * MINUTE_MS
    await store.put_derived(MINUTE_MS, minute, 1, [value("m", 1.0, time_ms=minute)])
    ends = minute + MINUTE_MS
    assert await store.latest_bucket(MINUTE_MS, window.before_ms(ends + 300_000 - 1)) is None
    assert await store.latest_bucket(MINUTE_MS, window.before_ms(ends + 300_000)) == minute


async def test_the_newest_complete_minute_wins_over_older_ones(store) -> None:
    window = MinuteWindow(settle_s=120)
    for minute in (10, 11, 12):
        start = minute * MINUTE_MS
        await store.put_derived(MINUTE_MS, start, 1, [value("m", float(minute), time_ms=start)])
    now = 13 * MINUTE_MS + 120_000  # minute 12 ended 120 s ago
    assert await store.latest_bucket(MINUTE_MS, window.before_ms(now)) == 12 * MINUTE_MS


def test_a_complete_minute_is_current_until_stale_after_has_passed() -> None:
    window = MinuteWindow(settle_s=300, stale_after_s=600)
    minute = 100 * MINUTE_MS
    ends = minute + MINUTE_MS
    assert window.is_current(minute, ends + 900_000 - 1)
    assert not window.is_current(minute, ends + 900_000)
