"""The receiver's table inventory (receiver/inventory): its environment and its read-only grant.

The inventory lists the tables of each region it polls and reads what each one is. It calls
exactly the actions below, plus sts:GetCallerIdentity (which needs no permission: it answers
even under an explicit deny) and sts:AssumeRole on the roles it is given.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from stacks.settings import InventoryConfig

# Account-wide reads: IAM defines no resource type for them, so only "*" grants them.
ACCOUNT_ACTIONS = ("dynamodb:ListTables", "dynamodb:DescribeLimits")
# Reads of one table (DescribeContributorInsights also of one of its indexes, table/NAME/index/INDEX):
# resource type table, so they are scoped to the tables of the polled regions.
TABLE_ACTIONS = (
    "dynamodb:DescribeTable",
    "dynamodb:ListTagsOfResource",
    "dynamodb:DescribeContinuousBackups",
    "dynamodb:DescribeContributorInsights",
    "dynamodb:DescribeTimeToLive",
)
# The report of a table's Contributor Insights rule (its most throttled keys); resource type insight-rule.
INSIGHT_RULE_ACTIONS = ("cloudwatch:GetInsightRuleReport",)
# DynamoDB names the rules it manages for Contributor Insights DynamoDBContributorInsights-...
# (as the AmazonDynamoDBReadOnlyAccess managed policy scopes GetInsightRuleReport).
INSIGHT_RULE_PREFIX = "DynamoDBContributorInsights"
ASSUME_ROLE_ACTIONS = ("sts:AssumeRole",)


def inventory_regions(scope: Construct, inventory: InventoryConfig) -> list[str]:
    """The regions polled: the stack's own, then the extra ones."""
    return [Stack.of(scope).region, *inventory.extra_regions]


def inventory_environment(scope: Construct, inventory: InventoryConfig | None) -> dict[str, str]:
    """The receiver's RECEIVER_INVENTORY* variables; none when the inventory is off."""
    if inventory is None:
        return {}
    environment = {
        "RECEIVER_INVENTORY": ",".join(inventory_regions(scope, inventory)),
        "RECEIVER_INVENTORY_INTERVAL": str(inventory.interval_seconds),
    }
    if inventory.roles:
        environment["RECEIVER_INVENTORY_ROLES"] = ",".join(inventory.roles)
    if inventory.tag_labels:
        environment["RECEIVER_INVENTORY_TAG_LABELS"] = ",".join(inventory.tag_labels)
    return environment


def inventory_statements(scope: Construct, inventory: InventoryConfig) -> list[iam.PolicyStatement]:
    """What the inventory calls, each action on the narrowest resources IAM lets it name."""
    stack = Stack.of(scope)
    regions = inventory_regions(scope, inventory)
    statements = [
        iam.PolicyStatement(actions=list(ACCOUNT_ACTIONS), resources=["*"]),
        iam.PolicyStatement(
            actions=list(TABLE_ACTIONS),
            resources=[
                stack.format_arn(service="dynamodb", region=region, resource="table", resource_name="*")
                for region in regions
            ],
        ),
        iam.PolicyStatement(
            actions=list(INSIGHT_RULE_ACTIONS),
            resources=[
                stack.format_arn(
                    service="cloudwatch",
                    region=region,
                    resource="insight-rule",
                    resource_name=f"{INSIGHT_RULE_PREFIX}*",
                )
                for region in regions
            ],
        ),
    ]
    if inventory.roles:
        statements.append(iam.PolicyStatement(actions=list(ASSUME_ROLE_ACTIONS), resources=list(inventory.roles)))
    return statements


def inventory_policy(scope: Construct, construct_id: str, role: iam.IRole, inventory: InventoryConfig) -> iam.Policy:
    """The grant as a policy of its own on ``role``, apart from the store's: cdk-nag's findings on
    its wildcards are acknowledged on it alone (stacks/nag.py)."""
    return iam.Policy(scope, construct_id, roles=[role], statements=inventory_statements(scope, inventory))
