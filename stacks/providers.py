"""Log groups with retention for the Lambda functions aws-cdk-lib brings in itself.

aws-cdk-lib's custom resource providers (emptying buckets on destroy, stripping the VPC's
default security group) are Lambda functions that log to /aws/lambda/<name>, a group Lambda
creates on first use with no retention and that nothing deletes. Each function here gets a log
group of its own in its stack instead, with the deployment's retention, gone on destroy: the
function's LoggingConfig names it, so CloudFormation creates it before the function runs and
deletes it after the function's last invocation (the custom resources' deletion).
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import RemovalPolicy
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs

LAMBDA_FUNCTION = "AWS::Lambda::Function"


def give_functions_log_groups(stack: cdk.Stack, retention: logs.RetentionDays) -> list[logs.LogGroup]:
    """A log group for every Lambda function of ``stack`` that names none; returns the groups made."""
    functions = [
        child
        for child in stack.node.find_all()
        if isinstance(child, cdk.CfnResource)
        and cdk.Stack.of(child) is stack
        and child.cfn_resource_type == LAMBDA_FUNCTION
        and not (isinstance(child, lambda_.CfnFunction) and child.logging_config is not None)
    ]
    groups = []
    for function in functions:
        # The provider's construct path, e.g. Custom::S3AutoDeleteObjectsCustomResourceProvider/Handler.
        owner = function.node.scope
        name = "".join(c for c in (owner.node.id if owner is not None else function.node.id) if c.isalnum())
        group = logs.LogGroup(stack, f"{name}Logs", retention=retention, removal_policy=RemovalPolicy.DESTROY)
        function.add_property_override("LoggingConfig.LogGroup", group.log_group_name)
        groups.append(group)
    return groups
