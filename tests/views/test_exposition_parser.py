"""The receiver's exposition read back by prometheus_client's parser, an implementation of the
text format written by others: whatever label text and value the receiver writes, the parser
reads the same back."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from receiver.firehose.telemetry import Histogram
from receiver.views.prometheus import Family, Point, histogram, render

label_values = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
values = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-(2**53), 2**53))


def _read(text: str) -> list[tuple[str, str, dict[str, str], float]]:
    return [
        (family.name, sample.name, sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


@settings(max_examples=300, deadline=None)
@given(endpoint=label_values, table=label_values, value=values, help_text=label_values)
def test_any_label_text_and_value_read_back_the_same(endpoint: str, table: str, value: float, help_text: str) -> None:
    text = render([Family("m", "gauge", help_text, (Point((("endpoint", endpoint), ("table", table)), value),))])
    [(family, name, labels, read)] = _read(text)
    assert (family, name, labels) == ("m", "m", {"endpoint": endpoint, "table": table})
    assert (math.isnan(read) and math.isnan(value)) or read == value


def test_help_text_reads_back_the_same() -> None:
    families = list(text_string_to_metric_families(render([Family("m", "gauge", 'a "b" \\ c\nd', ())])))
    assert [family.documentation for family in families] == ['a "b" \\ c\nd']


def test_a_histogram_reads_back_as_a_histogram_with_its_buckets() -> None:
    recorded = Histogram((0.1, 1.0))
    for seconds in (0.05, 0.5, 0.5, 7.0):
        recorded.observe(seconds)
    text = render([histogram("request_seconds", "h", recorded.snapshot(), (("status", "200"),))])
    [family] = text_string_to_metric_families(text)
    assert family.type == "histogram"
    buckets = {s.labels["le"]: s.value for s in family.samples if s.name.endswith("_bucket")}
    assert buckets == {"0.1": 1.0, "1.0": 3.0, "+Inf": 4.0}
    assert {s.name: s.value for s in family.samples if not s.name.endswith("_bucket")} == {
        "request_seconds_sum": 8.05,
        "request_seconds_count": 4.0,
    }
