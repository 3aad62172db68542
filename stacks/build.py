"""The app's stacks, wired together: monitored table, receiver, metric stream."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk

from stacks.demo_table_stack import DemoTableStack
from stacks.lint import explain_cdk_provider_warnings
from stacks.metric_stream_stack import MetricStreamStack
from stacks.nag import check
from stacks.receiver_stack import ReceiverStack
from stacks.settings import Settings

PREFIX = "DynamoDbMonitoring"
TAGS = {"project": "dynamodb-metric-stream-monitoring"}


@dataclass(frozen=True, slots=True)
class Stacks:
    demo_table: DemoTableStack | None
    receiver: ReceiverStack
    metric_stream: MetricStreamStack


def build_stacks(app: cdk.App, settings: Settings) -> Stacks:
    # The region is fixed (ALB access logs need its ELB log-delivery account at synth time); the
    # account stays the deploying credentials', so nothing is looked up and synth runs offline.
    env = cdk.Environment(region=settings.region)

    demo_table = None
    if settings.create_demo_table:
        demo_table = DemoTableStack(
            app, f"{PREFIX}-DemoTable", env=env, tags=TAGS, description="The monitored DynamoDB table (GameScores)"
        )
    receiver = ReceiverStack(
        app,
        f"{PREFIX}-Receiver",
        settings=settings,
        env=env,
        tags=TAGS,
        description="DynamoDB metrics receiver: VPC, ALB (HTTPS), ECS Fargate service, metrics table",
    )
    metric_stream = MetricStreamStack(
        app,
        f"{PREFIX}-MetricStream",
        settings=settings,
        access_key=receiver.access_key,
        env=env,
        tags=TAGS,
        description="CloudWatch metric stream and Firehose delivery to the DynamoDB metrics receiver",
    )
    stacks = Stacks(demo_table, receiver, metric_stream)
    for stack in (receiver, metric_stream):
        explain_cdk_provider_warnings(stack)

    if settings.nag:  # -c nag=true: cdk-nag's findings fail synthesis
        check(app, stacks)
    return stacks
