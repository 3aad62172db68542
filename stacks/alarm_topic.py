"""The SNS topic the receiver publishes alarm notifications to (receiver/alarms)."""

from __future__ import annotations

from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct


def alarm_topic(scope: Construct, construct_id: str) -> sns.Topic:
    """An encrypted topic that refuses plain HTTP; subscribe e-mail, chat or a queue to it.

    Encrypted with the AWS managed key for SNS: any principal of the account allowed to
    publish may use it through SNS, so the publish grant is all the receiver needs (a
    customer managed key would cost a monthly fee for a few messages a day).
    """
    return sns.Topic(
        scope,
        construct_id,
        display_name="DynamoDB metric stream alarms",
        enforce_ssl=True,
        master_key=kms.Alias.from_alias_name(scope, f"{construct_id}Key", "alias/aws/sns"),
    )
