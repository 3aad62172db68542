"""cdk-nag's AwsSolutions checks (with -c nag=true) and the findings this app accepts, each with why.

Every acknowledgement sits on the one construct it is about, never on a whole stack, so a new
finding anywhere else still fails the check.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import aws_cdk as cdk
from aws_cdk import aws_s3 as s3
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

from stacks.inventory import ACCOUNT_ACTIONS, INSIGHT_RULE_ACTIONS, INSIGHT_RULE_PREFIX, TABLE_ACTIONS

if TYPE_CHECKING:
    from stacks.build import Stacks


def check(app: cdk.App, stacks: Stacks) -> None:
    # Acknowledgements are also written into the templates (Metadata.cdk_nag): an audit trail per resource.
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app, write_suppressions_to_cloud_formation=True))
    _receiver(stacks)
    _inventory(stacks)
    _metric_stream(stacks)


def _receiver(stacks: Stacks) -> None:
    receiver = stacks.receiver
    if receiver is None:
        return
    _acknowledge(
        receiver.logs_bucket,
        "AwsSolutions-S1",
        "This bucket is the log destination (ALB access logs, VPC flow logs); logging its own access "
        "would need yet another log bucket. Only the ELB and VPC log-delivery principals may write to it, over TLS.",
    )
    _acknowledge(
        receiver.access_key,
        "AwsSolutions-SMG4",
        "The Firehose access key is a random 64-character shared key, not a credential with an issuer to rotate it; "
        "Secrets Manager has no rotation function for it, and the receiver reads it at task start. "
        "docs/operations.md (Rotating the access key) describes rotating it by hand.",
    )
    _acknowledge(
        receiver.receiver.container.task_definition,
        "AwsSolutions-ECS2",
        "The environment holds only non-secret configuration (port, store table name and region, log format, "
        "timeouts, the inventory's regions, role ARNs and tag keys); the one secret, the access key, is injected "
        "from Secrets Manager.",
    )
    _acknowledge(
        receiver.receiver.container.task_definition.obtain_execution_role(),
        "AwsSolutions-IAM5[Resource::*]",
        "ecr:GetAuthorizationToken, which every ECR image pull needs, supports no resource-level permissions; "
        "the other execution-role actions are scoped to the asset repository, log group and secret.",
    )
    _acknowledge(
        receiver.gateway.load_balancer,
        "AwsSolutions-EC23",
        "Firehose delivers to the HTTPS endpoint from AWS-managed public addresses that are not published per "
        "stream, so port 443 (the only port open) must admit the internet. Deliveries are authenticated by the "
        "access key; every path but /aws/firehose/metrics (and the dashboard for dashboardAllowedCidrs) gets a 404.",
    )
    if not receiver.receiver.container_insights:
        _acknowledge(
            receiver.receiver.cluster,
            "AwsSolutions-ECS4",
            "Container Insights is off by default (containerInsights=false) to save its custom-metric charges; "
            "the free AWS/ECS service CPU and memory metrics drive the autoscaling. "
            "Set containerInsights=true to turn it on.",
        )


def _inventory(stacks: Stacks) -> None:
    """The table inventory's wildcards, each finding by its resource as cdk-nag renders it."""
    if stacks.receiver is None:
        return
    policy = stacks.receiver.receiver.inventory_policy
    if policy is None:
        return
    document = cdk.Stack.of(policy).resolve(policy.document)
    for statement in document["Statement"]:
        actions = _as_list(statement["Action"])
        for resource in (_nag_form(r) for r in _as_list(statement["Resource"])):
            if "*" in resource:
                _acknowledge(policy, f"AwsSolutions-IAM5[Resource::{resource}]", _inventory_reason(actions, resource))


def _inventory_reason(actions: list[str], resource: str) -> str:
    """Why each wildcard of the inventory's grant is as narrow as IAM allows; any other wildcard
    has no reason here and stops synthesis."""
    if resource == "*" and sorted(actions) == sorted(ACCOUNT_ACTIONS):
        return (
            f"{' and '.join(actions)}, which the table inventory calls in every polled region, support no "
            "resource-level permissions, so IAM grants them only on all resources; both are reads that return "
            "table names and the account's capacity limits, no item data."
        )
    region = resource.split(":")[3] if resource.startswith("arn:") else resource
    if sorted(actions) == sorted(INSIGHT_RULE_ACTIONS) and resource.endswith(f":insight-rule/{INSIGHT_RULE_PREFIX}*"):
        return (
            f"The table inventory reads the Contributor Insights report (most throttled keys) of each table in "
            f"{region} that has it on; DynamoDB names the rules it creates for that DynamoDBContributorInsights-..., "
            "the rest known only at run time, so cloudwatch:GetInsightRuleReport is granted on that prefix alone."
        )
    if sorted(actions) == sorted(TABLE_ACTIONS) and resource.endswith(":table/*"):
        return (
            f"The table inventory describes every table of this account in {region}, whose names it learns from "
            f"ListTables at run time, so {', '.join(actions)} are granted on table/* of that region only; each "
            "reads a table's settings, none its items."
        )
    raise ValueError(f"no reason to accept {resource} for {', '.join(actions)}")


def _as_list(value: str | list[str]) -> list[str]:
    return value if isinstance(value, list) else [value]


def _nag_form(value: object) -> str:
    """A resolved ARN as cdk-nag names it in a finding: pseudo parameters as <AWS::AccountId>."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Ref" in value:
        return f"<{value['Ref']}>"
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(_nag_form(part) for part in parts)
    raise ValueError(f"no cdk-nag form for {value!r}")


def _metric_stream(stacks: Stacks) -> None:
    stream = stacks.metric_stream
    bucket = stream.backup_bucket
    _acknowledge(
        stream.delivery.policy,
        f"AwsSolutions-IAM5[Resource::<{_logical_id(bucket)}.Arn>/*]",
        "Firehose names backup objects by time and error type at delivery, so the role needs object access "
        "under the prefix of this one bucket, which holds nothing but failed deliveries.",
    )


def _logical_id(bucket: s3.Bucket) -> str:
    return cdk.Stack.of(bucket).get_logical_id(bucket.node.default_child)  # type: ignore[arg-type]


def _acknowledge(construct: IConstruct, rule: str, reason: str) -> None:
    cdk.Validations.of(construct).acknowledge(cdk.Acknowledgment(id=rule, reason=reason))
