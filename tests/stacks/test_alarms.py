"""The out-of-band alarms: each one's metric, threshold, missing-data treatment, actions and description.

Checked on three assemblies: ``default``, ``alternative`` (alarmDataFreshnessMinutes=30,
alarmEvaluationPeriods=2, alarmTarget5xxThreshold=25) and ``stream_only`` (no receiver stack:
no load balancer alarms, the metric stream stack's own topic).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from stacks.alarms import LONGEST_URL_SHOWN, shown_url
from tests.stacks.synth import METRIC_STREAM, OTHER_RECEIVER_URL, RECEIVER, Assembly

ALARM = "AWS::CloudWatch::Alarm"


@dataclass(frozen=True)
class Expected:
    stack: str
    namespace: str
    metric: str
    dimensions: tuple[str, ...]
    statistic: str
    comparison: str
    missing: str
    """What silence means: "breaching" where it means failure, "notBreaching" where it is normal."""


EXPECTED = {
    "DeliveryFailing": Expected(
        METRIC_STREAM,
        "AWS/Firehose",
        "DeliveryToHttpEndpoint.Success",
        ("DeliveryStreamName",),
        "Sum",
        "LessThanThreshold",
        "breaching",
    ),
    "DeliveryStale": Expected(
        METRIC_STREAM,
        "AWS/Firehose",
        "DeliveryToHttpEndpoint.DataFreshness",
        ("DeliveryStreamName",),
        "Maximum",
        "GreaterThanThreshold",
        "notBreaching",
    ),
    "StreamPublishErrors": Expected(
        METRIC_STREAM,
        "AWS/CloudWatch/MetricStreams",
        "PublishErrorRate",
        ("MetricStreamName",),
        "Average",
        "GreaterThanThreshold",
        "notBreaching",
    ),
    "DeliveriesBackedUp": Expected(
        METRIC_STREAM,
        "AWS/Firehose",
        "DeliveryToS3.Records",
        ("DeliveryStreamName",),
        "Sum",
        "GreaterThanThreshold",
        "notBreaching",
    ),
    "NoHealthyReceivers": Expected(
        RECEIVER,
        "AWS/ApplicationELB",
        "HealthyHostCount",
        ("LoadBalancer", "TargetGroup"),
        "Minimum",
        "LessThanThreshold",
        "breaching",
    ),
    "Receiver5xx": Expected(
        RECEIVER,
        "AWS/ApplicationELB",
        "HTTPCode_Target_5XX_Count",
        ("LoadBalancer", "TargetGroup"),
        "Sum",
        "GreaterThanThreshold",
        "notBreaching",
    ),
}
# (threshold, evaluation periods) by assembly: the settings' defaults, then the alternative's.
THRESHOLDS: dict[str, dict[str, tuple[float, int]]] = {
    "default": {
        "DeliveryFailing": (1, 3),
        "DeliveryStale": (900, 1),
        "StreamPublishErrors": (0, 1),
        "DeliveriesBackedUp": (0, 1),
        "NoHealthyReceivers": (1, 3),
        "Receiver5xx": (0, 3),
    },
    "alternative": {
        "DeliveryFailing": (1, 2),
        "DeliveryStale": (1800, 1),
        "StreamPublishErrors": (0, 1),
        "DeliveriesBackedUp": (0, 1),
        "NoHealthyReceivers": (1, 2),
        "Receiver5xx": (25, 2),
    },
}
THRESHOLDS["stream_only"] = {k: v for k, v in THRESHOLDS["default"].items() if EXPECTED[k].stack == METRIC_STREAM}
CASES = [(assembly, name) for assembly, alarms in THRESHOLDS.items() for name in alarms]


def alarms(assembly: Assembly, stack: str) -> dict[str, dict[str, Any]]:
    """The stack's alarms by the name they were given (their AlarmName after the stack name)."""
    found = [v["Properties"] for v in assembly.template(stack)["Resources"].values() if v["Type"] == ALARM]
    return {p["AlarmName"].removeprefix(f"{stack}-"): p for p in found}


def logical_id(assembly: Assembly, stack: str, kind: str) -> str:
    (name,) = [k for k, v in assembly.template(stack)["Resources"].items() if v["Type"] == kind]
    return name


def flatten(value: Any) -> str:
    """A description as the console shows it, with each reference standing for a 64-character name."""
    if isinstance(value, str):
        return value
    (parts,) = value["Fn::Join"][1:]
    return "".join(part if isinstance(part, str) else "x" * 64 for part in parts)


def topic(assembly: Assembly, stack: str) -> Any:
    """The alarm topic as the stack refers to it: its own, or the receiver stack's output."""
    if stack == RECEIVER or not assembly.has_stack(RECEIVER):
        return {"Ref": logical_id(assembly, stack, "AWS::SNS::Topic")}
    outputs = assembly.template(RECEIVER)["Outputs"]
    own = {"Ref": logical_id(assembly, RECEIVER, "AWS::SNS::Topic")}
    (output,) = [name for name, o in outputs.items() if o["Value"] == own and name.startswith("PublishOutput")]
    return {"Fn::GetStackOutput": {"StackName": RECEIVER, "Region": "us-east-1", "OutputName": output}}


@pytest.mark.parametrize(("variant", "name"), CASES)
def test_each_alarm_watches_its_metric(request: pytest.FixtureRequest, variant: str, name: str) -> None:
    assembly: Assembly = request.getfixturevalue(variant)
    expected = EXPECTED[name]
    alarm = alarms(assembly, expected.stack)[name]
    threshold, periods = THRESHOLDS[variant][name]
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"], alarm["Period"]) == (
        expected.namespace,
        expected.metric,
        expected.statistic,
        300,
    )
    assert sorted(d["Name"] for d in alarm["Dimensions"]) == list(expected.dimensions)
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (threshold, expected.comparison)
    assert (alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (periods, periods)
    assert alarm["TreatMissingData"] == expected.missing


@pytest.mark.parametrize(("variant", "name"), CASES)
def test_each_alarm_notifies_the_alarm_topic_when_it_fires_and_when_it_clears(
    request: pytest.FixtureRequest, variant: str, name: str
) -> None:
    assembly: Assembly = request.getfixturevalue(variant)
    stack = EXPECTED[name].stack
    alarm = alarms(assembly, stack)[name]
    assert alarm["AlarmActions"] == alarm["OKActions"] == [topic(assembly, stack)]


@pytest.mark.parametrize(("variant", "name"), CASES)
def test_each_description_is_one_actionable_line(request: pytest.FixtureRequest, variant: str, name: str) -> None:
    assembly: Assembly = request.getfixturevalue(variant)
    expected = EXPECTED[name]
    text = flatten(alarms(assembly, expected.stack)[name]["AlarmDescription"])
    assert "\n" not in text
    assert len(text) <= 1024  # CloudWatch's limit on AlarmDescription
    assert expected.metric in text  # what broke
    assert "Look at" in text and "First try:" in text  # where to look, what to do first
    # Whether silence fires it, as TreatMissingData says.
    assert ("no data fires too" in text) == (expected.missing == "breaching")
    assert ("does not fire" in text) == (expected.missing == "notBreaching")


def test_the_firehose_alarms_watch_this_stacks_delivery_stream(default: Assembly) -> None:
    stream = {"Ref": logical_id(default, METRIC_STREAM, "AWS::KinesisFirehose::DeliveryStream")}
    for name in ("DeliveryFailing", "DeliveryStale", "DeliveriesBackedUp"):
        assert alarms(default, METRIC_STREAM)[name]["Dimensions"] == [{"Name": "DeliveryStreamName", "Value": stream}]


def test_the_publish_error_alarm_watches_this_stacks_metric_stream(default: Assembly) -> None:
    stream = {"Ref": logical_id(default, METRIC_STREAM, "AWS::CloudWatch::MetricStream")}
    dimensions = alarms(default, METRIC_STREAM)["StreamPublishErrors"]["Dimensions"]
    assert dimensions == [{"Name": "MetricStreamName", "Value": stream}]


def test_the_load_balancer_alarms_watch_the_receivers_target_group(default: Assembly) -> None:
    group = logical_id(default, RECEIVER, "AWS::ElasticLoadBalancingV2::TargetGroup")
    for name in ("NoHealthyReceivers", "Receiver5xx"):
        dimensions = {d["Name"]: d["Value"] for d in alarms(default, RECEIVER)[name]["Dimensions"]}
        assert dimensions["TargetGroup"] == {"Fn::GetAtt": [group, "TargetGroupFullName"]}


def test_the_backup_alarm_says_how_to_replay_to_the_endpoint(default: Assembly, stream_only: Assembly) -> None:
    assert "python -m receiver replay" in flatten(
        alarms(default, METRIC_STREAM)["DeliveriesBackedUp"]["AlarmDescription"]
    )
    described = flatten(alarms(stream_only, METRIC_STREAM)["DeliveryFailing"]["AlarmDescription"])
    assert OTHER_RECEIVER_URL in described


def test_the_metric_stream_alone_has_no_load_balancer_alarms(stream_only: Assembly) -> None:
    assert sorted(alarms(stream_only, METRIC_STREAM)) == sorted(THRESHOLDS["stream_only"])
    assert not stream_only.has_stack(RECEIVER)


def test_every_alarm_is_named_after_its_stack(default: Assembly) -> None:
    names = sorted(f"{stack}-{name}" for stack in (METRIC_STREAM, RECEIVER) for name in alarms(default, stack))
    assert names == sorted(f"{e.stack}-{name}" for name, e in EXPECTED.items())


def test_a_long_receiver_url_is_named_not_shown() -> None:
    # Twice a 1,000-character URL would pass the 1,024 characters of a description.
    short = "https://receiver.example.org/aws/firehose/metrics"
    long = "https://receiver.example.org/" + "a" * LONGEST_URL_SHOWN
    assert (shown_url(short), shown_url(long)) == (short, "the URL in receiverEndpointUrl")
