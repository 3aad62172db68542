"""cfn-lint's remaining findings, answered in the template where they arise."""

from __future__ import annotations

import aws_cdk as cdk

# aws-cdk-lib's own Lambda-backed providers that this app brings in: emptying buckets on
# destroy (auto_delete_objects) and stripping the VPC's default security group.
CDK_PROVIDERS = (
    "Custom::S3AutoDeleteObjectsCustomResourceProvider",
    "Custom::VpcRestrictDefaultSGCustomResourceProvider",
)


def explain_cdk_provider_warnings(stack: cdk.Stack) -> None:
    """W3005 on each provider's handler: aws-cdk-lib gives the Lambda function both a GetAtt of its
    role and an explicit DependsOn on it. The second is redundant and harmless, and not ours to
    change, so the handler tells cfn-lint to skip that one check (on that resource only)."""
    for provider_id in CDK_PROVIDERS:
        provider = stack.node.try_find_child(provider_id)
        if provider is None:
            continue
        handler = provider.node.find_child("Handler")
        if not isinstance(handler, cdk.CfnResource):
            raise TypeError(f"{provider_id}/Handler is no longer a CloudFormation resource; revisit this workaround")
        handler.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})
