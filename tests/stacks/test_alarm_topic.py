"""The alarm topic: encrypted under a key CloudWatch may use, TLS only, open to this account's alarms,
publish granted to the receiver's task, ARN in the environment and the outputs."""

from __future__ import annotations

from typing import Any

from stacks.alarm_topic import PUBLISH_KEY_ACTIONS
from tests.stacks.synth import METRIC_STREAM, RECEIVER, Assembly
from tests.stacks.test_receiver import environment, resources

TOPIC = "AWS::SNS::Topic"
KEY = "AWS::KMS::Key"


def topic_id(assembly: Assembly) -> str:
    (logical_id,) = resources(assembly, TOPIC)
    return logical_id


def stack_resources(assembly: Assembly, stack: str, kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in assembly.template(stack)["Resources"].items() if v["Type"] == kind}


def test_the_topic_is_encrypted_with_its_own_rotating_key(default: Assembly, stream_only: Assembly) -> None:
    for assembly, stack in ((default, RECEIVER), (stream_only, METRIC_STREAM)):
        ((key_id, key),) = stack_resources(assembly, stack, KEY).items()
        (topic,) = stack_resources(assembly, stack, TOPIC).values()
        assert topic["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
        assert key["Properties"]["EnableKeyRotation"] is True


def test_cloudwatch_alarms_may_use_the_key(default: Assembly) -> None:
    # CloudWatch cannot publish to a topic under the AWS managed aws/sns key.
    (key,) = resources(default, KEY).values()
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    (cloudwatch,) = [s for s in statements if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}]
    assert (cloudwatch["Effect"], sorted(cloudwatch["Action"])) == ("Allow", sorted(PUBLISH_KEY_ACTIONS))


def test_the_topic_refuses_plain_http_and_admits_only_this_accounts_alarms(default: Assembly) -> None:
    (policy,) = resources(default, "AWS::SNS::TopicPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
    )
    (alarms,) = [s for s in statements if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}]
    assert (alarms["Effect"], alarms["Action"], alarms["Resource"]) == (
        "Allow",
        "sns:Publish",
        {"Ref": topic_id(default)},
    )
    assert alarms["Condition"] == {
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
        "ArnLike": {
            "aws:SourceArn": {
                "Fn::Join": ["", ["arn:aws:cloudwatch:us-east-1:", {"Ref": "AWS::AccountId"}, ":alarm:*"]]
            }
        },
    }


def test_the_task_role_may_publish_to_the_topic_under_its_key(default: Assembly):
    ref = {"Ref": topic_id(default)}
    (key_id,) = resources(default, KEY)
    key = {"Fn::GetAtt": [key_id, "Arn"]}
    grants = [
        statement
        for policy in resources(default, "AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement.get("Resource") in (ref, key)
    ]
    assert [g["Action"] for g in grants] == ["sns:Publish", sorted(PUBLISH_KEY_ACTIONS)]
    (policy,) = [
        p
        for p in resources(default, "AWS::IAM::Policy").values()
        if ref in [s.get("Resource") for s in p["Properties"]["PolicyDocument"]["Statement"]]
    ]
    roles = policy["Properties"]["Roles"]
    task_role = _task_role(default)
    assert roles == [{"Ref": task_role}]


def _task_role(assembly: Assembly) -> str:
    (task,) = resources(assembly, "AWS::ECS::TaskDefinition").values()
    return task["Properties"]["TaskRoleArn"]["Fn::GetAtt"][0]


def test_the_receiver_gets_the_topic_arn_and_the_stack_outputs_it(default: Assembly):
    ref = {"Ref": topic_id(default)}
    assert environment(default)["RECEIVER_ALARM_SNS_TOPIC_ARN"] == ref
    outputs: dict[str, Any] = default.template(RECEIVER)["Outputs"]
    assert outputs["AlarmTopicArn"]["Value"] == ref
