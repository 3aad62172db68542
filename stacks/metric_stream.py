"""The CloudWatch metric stream feeding the Firehose stream."""

from __future__ import annotations

from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesisfirehose as firehose
from constructs import Construct

from stacks.stream_plan import StreamPlan


class MetricStream(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        delivery_stream: firehose.IDeliveryStream,
        plan: StreamPlan,
        output_format: str,
        include_linked_accounts_metrics: bool,
    ) -> None:
        super().__init__(scope, construct_id)

        role = iam.Role(
            self,
            "Role",
            description="CloudWatch metric stream: put records into its Firehose stream",
            assumed_by=iam.ServicePrincipal("streams.metrics.cloudwatch.amazonaws.com"),
        )
        grant = delivery_stream.grant_put_records(role)  # PutRecord and PutRecordBatch on this stream only

        # L1: aws-cdk-lib has no L2 construct for metric streams.
        self.resource = cloudwatch.CfnMetricStream(
            self,
            "Resource",
            firehose_arn=delivery_stream.delivery_stream_arn,
            role_arn=role.role_arn,
            output_format=output_format,
            # Each namespace narrowed to the metric names the rules read, or whole (stacks/stream_plan.py).
            include_filters=[
                cloudwatch.CfnMetricStream.MetricStreamFilterProperty(
                    namespace=entry.namespace,
                    metric_names=list(entry.metric_names) if entry.metric_names is not None else None,
                )
                for entry in plan.include_filters
            ],
            # In a cross-account monitoring account: the linked source accounts' metrics too.
            include_linked_accounts_metrics=include_linked_accounts_metrics or None,
            statistics_configurations=[
                cloudwatch.CfnMetricStream.MetricStreamStatisticsConfigurationProperty(
                    additional_statistics=list(config.statistics),
                    include_metrics=[
                        cloudwatch.CfnMetricStream.MetricStreamStatisticsMetricProperty(
                            namespace=config.namespace, metric_name=config.metric_name
                        )
                    ],
                )
                for config in plan.statistics
            ]
            or None,
        )
        # CloudWatch assumes the role when the stream is created: its policy must exist by then.
        grant.apply_before(self.resource)
