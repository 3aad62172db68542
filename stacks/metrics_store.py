"""The table behind the receiver's ``dynamodb://`` store."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from constructs import Construct

# Exactly what the receiver's DynamoDB store calls (receiver/store/dynamodb/table.py). Not
# grant_read_write_data: that adds Scan, ConditionCheckItem and the stream reads (GetRecords,
# GetShardIterator), which the receiver never calls; it makes no transactions either.
RECEIVER_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    # Kept because it is called: Table.delete_if releases the inventory's lease with a conditional
    # DeleteItem (receiver/store/dynamodb/inventory.py).
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:DescribeTable",
)
TTL_ATTRIBUTE = "expires_at"


class MetricsStore(Construct):
    """On-demand, keyed ``pk``/``sk`` (strings), items expire by ``expires_at``."""

    def __init__(self, scope: Construct, construct_id: str, *, retain: bool) -> None:
        super().__init__(scope, construct_id)

        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            # Writes follow the metric stream's minute rhythm and table count: on-demand fits.
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            time_to_live_attribute=TTL_ATTRIBUTE,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            # The stored metrics are the product: kept on destroy only when the user asks (retainMetrics).
            removal_policy=RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY,
        )

    def grant_receiver(self, grantee: iam.IGrantable) -> iam.Grant:
        return self.table.grant(grantee, *RECEIVER_ACTIONS)
