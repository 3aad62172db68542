"""The monitored table of the reference setup: something for the metric stream to report on.

The stack stays in the app with ``createDemoTable=false``, holding only a placeholder (a stack
needs one resource), so that `cdk deploy --all` deletes a table an earlier deployment made and
`cdk destroy --all` still removes the stack: leaving it out of the app would orphan both.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, CfnResource, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

TABLE_NAME = "GameScores"
INDEX_NAME = "GameTitleIndex"


class DemoTableStack(Stack):
    """GameScores, as in the DynamoDB developer guide, with its GameTitleIndex; or nothing."""

    def __init__(self, scope: Construct, construct_id: str, *, create_table: bool, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)

        self.table: dynamodb.Table | None = None
        if not create_table:
            # Creates nothing and costs nothing; CloudFormation's usual stand-in for an empty template.
            CfnResource(self, "NoTable", type="AWS::CloudFormation::WaitConditionHandle")
            return
        self.table = dynamodb.Table(
            self,
            "GameScores",
            table_name=TABLE_NAME,
            partition_key=dynamodb.Attribute(name="UserId", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="GameTitle", type=dynamodb.AttributeType.STRING),
            # Provisioned, so the stream carries the Provisioned*CapacityUnits metrics too.
            billing_mode=dynamodb.BillingMode.PROVISIONED,
            read_capacity=20,
            write_capacity=20,
            time_to_live_attribute="TimeToExist",
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            # A demo table: `cdk destroy` removes it with its (sample) data.
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.table.add_global_secondary_index(
            index_name=INDEX_NAME,
            partition_key=dynamodb.Attribute(name="GameTitle", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="TopScore", type=dynamodb.AttributeType.NUMBER),
            read_capacity=10,
            write_capacity=10,
            projection_type=dynamodb.ProjectionType.INCLUDE,
            non_key_attributes=["UserId"],
        )

        CfnOutput(self, "TableName", value=self.table.table_name, description="The monitored demo table")
