"""The alarm topic: encrypted, TLS only, publish granted to the receiver's task, ARN in env and outputs."""

from __future__ import annotations

from typing import Any

from tests.stacks.synth import RECEIVER, Assembly
from tests.stacks.test_receiver import environment, resources

TOPIC = "AWS::SNS::Topic"


def topic_id(assembly: Assembly) -> str:
    (logical_id,) = resources(assembly, TOPIC)
    return logical_id


def test_the_topic_is_encrypted_and_refuses_plain_http(default: Assembly):
    (topic,) = resources(default, TOPIC).values()
    assert topic["Properties"]["KmsMasterKeyId"]
    (policy,) = resources(default, "AWS::SNS::TopicPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
    )


def test_the_task_role_may_publish_to_the_topic(default: Assembly):
    ref = {"Ref": topic_id(default)}
    grants = [
        statement
        for policy in resources(default, "AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement.get("Resource") == ref
    ]
    assert [g["Action"] for g in grants] == ["sns:Publish"]
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
