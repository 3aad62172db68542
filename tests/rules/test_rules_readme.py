"""docs/metrics.md documents every metric of the pack with its scope and unit."""

from __future__ import annotations

import re

from receiver.rules import default_rules_dir
from tests.rules.rulekit import pack

METRICS_DOC = (default_rules_dir().parent / "docs" / "metrics.md").read_text(encoding="utf-8")
PERCENTILE = re.compile(r"(.*)(_p\d+(?:_\d+)?)$")


def row_of(name: str) -> str:
    """The docs/metrics.md table row of a pack metric (percentile rows list their suffixes)."""
    base = name.removeprefix("aws_dynamodb_").removeprefix("aws_metric_stream_").removeprefix("endpoint_")
    percentile = PERCENTILE.fullmatch(base)
    first = f"`{percentile.group(1)}_p50`" if percentile else f"`{base}`"
    rows = [line for line in METRICS_DOC.splitlines() if line.startswith(f"| {first}")]
    assert len(rows) == 1, f"{name} has no row of its own in docs/metrics.md"
    if percentile:
        assert f"`{percentile.group(2)}`" in rows[0] or percentile.group(2) == "_p50"
    return rows[0]


def test_every_metric_has_a_row_with_its_scope_and_unit():
    for metric in pack().metrics:
        cells = [cell.strip() for cell in row_of(metric.name).split("|")]
        assert metric.scope in cells[2], metric.name
        assert cells[3] == metric.unit, metric.name


def test_every_row_names_the_same_merge_as_the_rule():
    for metric in pack().metrics:
        assert row_of(metric.name).rstrip(" |").endswith(metric.downsampling), metric.name
