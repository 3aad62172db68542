"""The SNS topic alarm notifications go to: the receiver's own (receiver/alarms) and CloudWatch's."""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct

# What a publisher needs of the topic's key (SNS developer guide, "Encryption at rest": the
# publisher generates the data key and SNS decrypts it).
PUBLISH_KEY_ACTIONS = ("kms:GenerateDataKey", "kms:Decrypt")


class AlarmTopic(Construct):
    """An encrypted topic that refuses plain HTTP; subscribe e-mail, chat or a queue to it.

    Encrypted with a customer managed key, not the AWS managed ``alias/aws/sns``: CloudWatch
    alarms cannot publish to a topic under the AWS managed key, whose policy nobody can change
    to let CloudWatch use it (AWS re:Post knowledge center, "cloudwatch-configure-alarm-sns").
    The key costs $1 a month; the out-of-band alarms (stacks/alarms.py) are why it exists.
    """

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)

        self.key = kms.Key(
            self,
            "Key",
            description="Encrypts the DynamoDB metric stream alarm topic",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.DESTROY,
            pending_window=Duration.days(7),
        )
        # The key only serves this topic; the topic policy below decides who may publish, so the
        # service principal needs no further condition here.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsEncryptNotifications",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=list(PUBLISH_KEY_ACTIONS),
                resources=["*"],
            )
        )
        # "Default": the topic keeps the logical ID it had as a construct of its own, so an
        # update does not replace it (and drop its subscriptions).
        self.topic = sns.Topic(
            self,
            "Default",
            display_name="DynamoDB metric stream alarms",
            enforce_ssl=True,
            master_key=self.key,
        )
        # Only this account's alarms in this region may publish (confused-deputy guard).
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {
                        "aws:SourceArn": stack.format_arn(
                            service="cloudwatch",
                            resource="alarm",
                            resource_name="*",
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                    },
                },
            )
        )

    def grant_publish(self, grantee: iam.IGrantable) -> None:
        """sns:Publish on the topic and the two key actions publishing needs, nothing wider
        (Topic.grant_publish would add kms:GenerateDataKey*, a wildcard)."""
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(actions=["sns:Publish"], resources=[self.topic.topic_arn])
        )
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(actions=list(PUBLISH_KEY_ACTIONS), resources=[self.key.key_arn])
        )
