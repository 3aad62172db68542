"""The app's stacks, wired together: monitored table, receiver, metric stream."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk

from stacks.demo_table_stack import DemoTableStack
from stacks.lint import explain_cdk_provider_warnings
from stacks.log_retention import retention
from stacks.metric_stream_stack import MetricStreamStack
from stacks.nag import check
from stacks.providers import give_functions_log_groups
from stacks.receiver_stack import ReceiverStack
from stacks.settings import Settings
from stacks.stream_plan import StreamPlan, plan_stream

PREFIX = "DynamoDbMonitoring"
TAGS = {"project": "dynamodb-metric-stream-monitoring"}


@dataclass(frozen=True, slots=True)
class Stacks:
    demo_table: DemoTableStack
    receiver: ReceiverStack | None
    """None with receiverEndpointUrl: the receiver runs elsewhere."""
    metric_stream: MetricStreamStack
    stream_plan: StreamPlan


def build_stacks(app: cdk.App, settings: Settings) -> Stacks:
    """The stacks for ``settings``; a rule pack the stream cannot be planned from raises SettingsError."""
    # The region is fixed (ALB access logs need its ELB log-delivery account at synth time); the
    # account stays the deploying credentials', so nothing is looked up and synth runs offline.
    env = cdk.Environment(region=settings.region)
    plan = plan_stream(settings)

    # Always in the app, empty with createDemoTable=false, so turning it off removes a deployed table.
    demo_table = DemoTableStack(
        app,
        f"{PREFIX}-DemoTable",
        create_table=settings.create_demo_table,
        env=env,
        tags=TAGS,
        description=(
            "The monitored DynamoDB table (GameScores)"
            if settings.create_demo_table
            else "Empty: createDemoTable=false (the GameScores demo table is not deployed)"
        ),
    )
    receiver = None
    if not settings.stream_only:
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
        plan=plan,
        access_key=receiver.access_key if receiver is not None else None,
        alarm_topic=receiver.alarm_topic if receiver is not None else None,
        env=env,
        tags=TAGS,
        description=(
            "CloudWatch metric stream and Firehose delivery to the DynamoDB metrics receiver, and their alarms"
            if receiver is not None
            else "CloudWatch metric stream and Firehose delivery to a receiver run elsewhere, and their alarms"
        ),
    )
    stacks = Stacks(demo_table, receiver, metric_stream, plan)
    for stack in (receiver, metric_stream):
        if stack is not None:
            explain_cdk_provider_warnings(stack)
            give_functions_log_groups(stack, retention(settings.log_retention_days))

    if settings.nag:  # -c nag=true: cdk-nag's findings fail synthesis
        check(app, stacks)
    return stacks
