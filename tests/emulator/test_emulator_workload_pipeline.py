"""The workload's pipeline datapoints (workload_pipeline.py): the metric stream's and Firehose's
own metrics, consistent with the DynamoDB datapoints of each minute, the same whenever a minute
is generated, and leaving every DynamoDB datapoint as it was."""

from __future__ import annotations

import math
import re
from collections import defaultdict
from itertools import pairwise

import pytest

from receiver.config import REPOSITORY_RULES
from receiver.model import PERIOD_MS
from receiver_tools.workload import Workload
from receiver_tools.workload_pipeline import (
    DATAPOINTS_PER_RECORD,
    DELIVERY_STREAM,
    FIREHOSE,
    METRIC_STREAM,
    METRIC_STREAMS,
    OUTAGE_HOUR,
    THROTTLED_MINUTES,
)
from tests.apps import repository_rules

DAY = 1_699_920_000_000
"""2023-11-14 00:00 UTC."""
HOUR_MS = 60 * PERIOD_MS
PIPELINE = {FIREHOSE, METRIC_STREAMS}
# Minutes around the daily outage (an hour before it to an hour after it) and the throttling.
AROUND_OUTAGE = [DAY + (OUTAGE_HOUR - 1) * HOUR_MS + i * PERIOD_MS for i in range(180)]
AROUND_THROTTLING = [DAY + (THROTTLED_MINUTES[0] - 5 + i) * PERIOD_MS for i in range(15)]
REGIONS = ("eu-west-1", "us-east-1", "us-west-2")


def by_metric(minute) -> dict[tuple[str, str, tuple], object]:
    """(region, metric, dimensions) -> the pipeline sample of one minute."""
    found = {}
    for s in minute:
        if s.series.namespace in PIPELINE:
            key = (s.series.region, s.series.metric, s.series.dimensions)
            assert key not in found, key  # one datapoint per series and minute
            found[key] = s
    return found


def firehose(found, region, metric):
    return found.get((region, metric, (("DeliveryStreamName", DELIVERY_STREAM),)))


def stream(found, region, metric, named=True):
    return found.get((region, metric, (("MetricStreamName", METRIC_STREAM),) if named else ()))


def in_outage(start_ms: int) -> bool:
    return (start_ms - DAY) // HOUR_MS == OUTAGE_HOUR


def throttled(start_ms: int) -> bool:
    return (start_ms - DAY) // PERIOD_MS in THROTTLED_MINUTES


@pytest.fixture(scope="module")
def minutes():
    workload = Workload(seed=11)
    return {start: workload.minute(start) for start in AROUND_OUTAGE + AROUND_THROTTLING}


def test_every_pipeline_metric_the_rules_read_is_generated(minutes):
    text = "".join(p.read_text() for p in REPOSITORY_RULES.joinpath("aws-pipeline").glob("*.yaml"))
    families = set(re.findall(r"amazonaws_com_AWS_(?:Firehose|CloudWatch_MetricStreams)_\w+", text))
    read = {re.sub(r"_(sum|count)$", "", family) for family in families}
    generated = {
        "amazonaws_com_" + re.sub(r"[^A-Za-z0-9_]", "_", f"{s.series.namespace}/{s.series.metric}")
        for minute in minutes.values()
        for s in minute
        if s.series.namespace in PIPELINE
    }
    assert len(read) == 11 and read <= generated, sorted(read - generated)


def test_each_region_has_its_streams_every_minute(minutes):
    for start, minute in minutes.items():
        found = by_metric(minute)
        assert {region for region, _, _ in found} == set(REGIONS)
        for region in REGIONS:
            always = ["IncomingRecords", "IncomingBytes", "ThrottledRecords", "DeliveryToHttpEndpoint.Records"]
            always += ["DeliveryToHttpEndpoint.Bytes", "DeliveryToHttpEndpoint.Success"]
            always += ["DeliveryToHttpEndpoint.DataFreshness"]
            assert all(firehose(found, region, metric) for metric in always), (start, region)
            assert (firehose(found, region, "DeliveryToS3.Records") is not None) == in_outage(start)
            for metric in ("MetricUpdate", "TotalMetricUpdate"):
                assert stream(found, region, metric) and stream(found, region, metric, named=False)
            assert (stream(found, region, "PublishErrorRate") is not None) == throttled(start)
        assert all(s.start_ms == start and s.end_ms == start + PERIOD_MS for s in minute)


def test_metric_updates_are_the_datapoints_of_the_region_and_minute(minutes):
    for minute in minutes.values():
        found = by_metric(minute)
        for region in REGIONS:
            mine = [s for s in minute if s.series.region == region]
            updates = stream(found, region, "MetricUpdate")
            assert updates.sum == len(mine)  # the DynamoDB datapoints and the pipeline's own
            # One more update for each datapoint with one to five additional statistics.
            billed = len(mine) + sum(math.ceil(len(s.stats) / 5) for s in mine)
            assert stream(found, region, "TotalMetricUpdate").sum == billed > updates.sum
            # One stream: CloudWatch's sum over the streams is the stream's own value.
            for metric in ("MetricUpdate", "TotalMetricUpdate"):
                assert stream(found, region, metric, named=False).sum == stream(found, region, metric).sum


def test_records_and_bytes_add_up(minutes):
    for start, minute in minutes.items():
        found = by_metric(minute)
        for region in REGIONS:

            def value(metric: str, found=found, region=region) -> float:
                return firehose(found, region, metric).sum

            updates = stream(found, region, "MetricUpdate").sum
            put = math.ceil(updates / DATAPOINTS_PER_RECORD)
            assert value("IncomingRecords") + value("ThrottledRecords") == put
            backed_up = value("DeliveryToS3.Records") if in_outage(start) else 0.0
            assert value("DeliveryToHttpEndpoint.Records") + backed_up == value("IncomingRecords")
            assert 0 < value("DeliveryToHttpEndpoint.Bytes") <= value("IncomingBytes")
            if not in_outage(start):
                assert value("DeliveryToHttpEndpoint.Bytes") == value("IncomingBytes")
            # A few hundred bytes a datapoint.
            assert 200 * updates < value("IncomingBytes") * put / value("IncomingRecords") < 400 * updates


def test_delivery_fails_half_the_time_for_an_hour_a_day_and_the_oldest_record_ages(minutes):
    outage = []
    for start in AROUND_OUTAGE:
        found = by_metric(minutes[start])
        for region in REGIONS:
            success = firehose(found, region, "DeliveryToHttpEndpoint.Success")
            freshness = firehose(found, region, "DeliveryToHttpEndpoint.DataFreshness")
            assert freshness.min <= freshness.sum / freshness.count <= freshness.max
            if in_outage(start):
                assert (success.sum, success.count) == (1.0, 2.0)
                assert firehose(found, region, "DeliveryToS3.Records").sum > 0
                if region == "us-east-1":
                    outage.append(freshness.max)
            else:
                assert success.sum / success.count == 1.0
                assert 60.0 <= freshness.max <= 120.0
    assert len(outage) == 60
    # Rising through the hour, past the 15 minutes AWS recommends alarming at.
    assert outage[-1] > 900 > outage[0] and all(b > a for a, b in pairwise(outage))


def test_firehose_throttles_a_few_minutes_a_day_and_the_stream_reports_publish_errors(minutes):
    for start in AROUND_THROTTLING:
        found = by_metric(minutes[start])
        for region in REGIONS:
            throttled_records = firehose(found, region, "ThrottledRecords").sum
            if throttled(start):
                put = throttled_records + firehose(found, region, "IncomingRecords").sum
                rate = stream(found, region, "PublishErrorRate")
                assert throttled_records >= 1 and rate.sum == pytest.approx(throttled_records / put)
            else:
                assert throttled_records == 0


def test_a_minute_is_the_same_whenever_it_is_generated_and_the_seed_matters():
    start = AROUND_OUTAGE[70]
    first = Workload(seed=4)
    later = Workload(seed=4)
    list(later.minutes(start - 5 * PERIOD_MS, 5))
    assert by_metric(first.minute(start)) == by_metric(later.minute(start))
    freshness = lambda seed: firehose(  # noqa: E731
        by_metric(Workload(seed=seed).minute(start)), "us-east-1", "DeliveryToHttpEndpoint.DataFreshness"
    )
    assert freshness(4) != freshness(5)


@pytest.mark.parametrize("start", [AROUND_OUTAGE[0], AROUND_OUTAGE[75], AROUND_THROTTLING[6], DAY + 22 * HOUR_MS])
def test_the_dynamodb_datapoints_are_those_made_without_the_pipeline(start):
    with_pipeline = Workload(seed=11).minute(start)
    without = Workload(seed=11, pipeline=False).minute(start)
    assert [s for s in with_pipeline if s.series.namespace not in PIPELINE] == without
    assert all(s.series.namespace == "AWS/DynamoDB" for s in without)
    assert not by_metric(without)


def test_the_pipeline_pack_reads_the_workload_as_the_streams_report_it(minutes):
    start = AROUND_OUTAGE[90]  # in the outage
    minute = minutes[start]
    derived = defaultdict(dict)
    for value in repository_rules().evaluate(minute):
        if value.metric.startswith("aws_metric_stream_"):
            derived[value.metric][value.endpoint] = value.value
    found = by_metric(minute)
    assert derived["aws_metric_stream_metric_updates"] == {None: len(minute)}
    assert derived["aws_metric_stream_endpoint_metric_updates"] == {f"metric-stream:{METRIC_STREAM}": len(minute)}
    assert derived["aws_metric_stream_delivery_success"] == {None: 50.0}
    oldest = max(firehose(found, region, "DeliveryToHttpEndpoint.DataFreshness").max for region in REGIONS)
    assert derived["aws_metric_stream_endpoint_delivery_data_freshness"] == {f"firehose:{DELIVERY_STREAM}": oldest}
    backed_up = sum(firehose(found, region, "DeliveryToS3.Records").sum for region in REGIONS)
    assert derived["aws_metric_stream_backup_records"] == {None: backed_up}
