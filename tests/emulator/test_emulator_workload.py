"""The seeded DynamoDB workload: reproducible, consistent, and covering what the rules read."""

from __future__ import annotations

import math
import re
from itertools import groupby

import pytest

from receiver.config import REPOSITORY_RULES
from receiver.formats import FORMATS, SeriesCache, decode_record, encode_records
from receiver_tools.workload import DEFAULT_TABLES, PERCENTILES, Workload
from tests.builders import T0

HOUR = 60


@pytest.fixture(scope="module")
def hour_of_samples():
    return [s for minute in Workload(seed=11).minutes(T0, HOUR) for s in minute]


def test_a_minute_is_the_same_whenever_it_is_generated():
    first = Workload(seed=4)
    later = Workload(seed=4)
    list(later.minutes(T0, 5))  # other minutes first: no state carries over
    assert first.minute(T0 + 3 * 60_000) == later.minute(T0 + 3 * 60_000)


def test_another_seed_gives_another_workload():
    assert Workload(seed=1).minute(T0) != Workload(seed=2).minute(T0)


def test_statistics_are_consistent(hour_of_samples):
    for s in hour_of_samples:
        assert s.count >= 1 and s.count == int(s.count), s
        assert s.min <= s.sum / s.count * (1 + 1e-12) and s.sum / s.count <= s.max * (1 + 1e-12), s
        values = [s.min, *(dict(s.stats)[name] for name, _ in PERCENTILES if name in dict(s.stats)), s.max]
        assert values == sorted(values), s
        assert s.end_ms - s.start_ms == 60_000


def test_latency_carries_the_percentiles_the_rules_read(hour_of_samples):
    latency = [s for s in hour_of_samples if s.series.metric == "SuccessfulRequestLatency"]
    assert latency
    assert all([name for name, _ in s.stats] == ["p50", "p90", "p95", "p99", "p99.9"] for s in latency)


def test_every_dynamodb_metric_the_rules_read_is_generated(hour_of_samples):
    text = "".join(p.read_text() for p in REPOSITORY_RULES.joinpath("aws-dynamodb").glob("*.yaml"))
    read = {re.sub(r"_(sum|count)$", "", m) for m in re.findall(r"amazonaws_com_AWS_DynamoDB_(\w+)", text)}
    generated = {s.series.metric for s in hour_of_samples}
    assert read and read <= generated, sorted(read - generated)


def test_tables_indexes_and_regions_are_as_specified(hour_of_samples):
    dims = {s.series.dimensions for s in hour_of_samples}
    assert (("GlobalSecondaryIndexName", "GameTitleIndex"), ("TableName", "GameScores")) in dims
    assert {s.series.region for s in hour_of_samples if dict(s.series.dimensions).get("TableName") == "Sessions"} == {
        "us-east-1",
        "eu-west-1",
    }
    ttl_tables = {
        dict(s.series.dimensions)["TableName"]
        for s in hour_of_samples
        if s.series.metric == "TimeToLiveDeletedItemCount"
    }
    assert ttl_tables == {t.name for t in DEFAULT_TABLES if t.ttl}
    provisioned = {
        dict(s.series.dimensions)["TableName"]
        for s in hour_of_samples
        if s.series.metric == "ProvisionedReadCapacityUnits"
    }
    assert provisioned == {t.name for t in DEFAULT_TABLES if t.provisioned}
    assert all(s.series.dimensions == () for s in hour_of_samples if s.series.metric == "UserErrors")


def test_throttling_comes_in_bursts_of_a_few_minutes(hour_of_samples):
    minutes_by_table: dict[tuple[str, str], set[int]] = {}
    for s in hour_of_samples:
        if s.series.metric == "ThrottledRequests":
            key = (dict(s.series.dimensions)["TableName"], s.series.region)
            minutes_by_table.setdefault(key, set()).add((s.start_ms - T0) // 60_000)
    assert minutes_by_table
    for minutes in minutes_by_table.values():
        assert len(minutes) < HOUR / 2
        runs = [len(list(run)) for _, run in groupby(enumerate(sorted(minutes)), lambda p: p[1] - p[0])]
        assert max(runs) >= 2  # bursts last minutes, not single blips


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_minute_survives_every_stream_format(fmt):
    samples = Workload().minute(T0)
    decoded = [s for record in encode_records(samples, fmt) for s in decode_record(record, cache=SeriesCache())]
    fields = lambda s: (s.identity, s.count, s.sum, s.min, s.max, s.stats)  # noqa: E731
    assert [fields(s) for s in decoded] == [fields(s) for s in samples]


def test_a_minute_must_start_on_a_minute_boundary():
    with pytest.raises(ValueError, match="start of a minute"):
        Workload().minute(T0 + 1)


def test_load_follows_the_day():
    workload = Workload(seed=3)
    night = T0 - T0 % 86_400_000 + 4 * 3_600_000
    afternoon = night + 12 * 3_600_000

    def consumed(start: int) -> float:
        return math.fsum(s.sum for s in workload.minute(start) if s.series.metric == "ConsumedReadCapacityUnits")

    assert consumed(afternoon) > 2 * consumed(night)
