"""Everything that sends: the metric stream, its Firehose stream, the S3 backup of failures, the alarms."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Duration, Size, Stack
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from stacks.alarm_topic import AlarmTopic
from stacks.alarms import pipeline_alarms
from stacks.buckets import private_bucket
from stacks.delivery import Delivery
from stacks.log_retention import retention
from stacks.metric_stream import MetricStream
from stacks.settings import Settings
from stacks.stream_plan import StreamPlan


class MetricStreamStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        plan: StreamPlan,
        access_key: secretsmanager.ISecret | None,
        alarm_topic: AlarmTopic | None,
        **kwargs: Any,
    ) -> None:
        """``access_key`` and ``alarm_topic`` are the receiver stack's; without a receiver stack
        (receiverEndpointUrl) the secret is the one given and the stack makes its own topic."""
        super().__init__(scope, construct_id, **kwargs)

        if access_key is None:
            if settings.access_key_secret_arn is None:
                raise ValueError("the metric stream needs the receiver's access key secret or accessKeySecretArn")
            access_key = secretsmanager.Secret.from_secret_complete_arn(
                self, "AccessKey", settings.access_key_secret_arn
            )
        self.own_alarm_topic = alarm_topic is None
        self.alarm_topic = alarm_topic if alarm_topic is not None else AlarmTopic(self, "AlarmTopic")

        # Server access logs of the backup bucket: who read or wrote the failed batches.
        access_logs = private_bucket(self, "AccessLogsBucket", expiration_days=settings.log_retention_days)
        # Batches Firehose could not deliver within retryDurationSeconds: `python -m receiver replay` reads them.
        self.backup_bucket = private_bucket(
            self,
            "BackupBucket",
            expiration_days=settings.backup_retention_days,
            access_logs=access_logs,
            access_logs_prefix="backup-bucket/",
        )

        self.delivery = Delivery(
            self,
            "Delivery",
            endpoint_url=settings.endpoint_url,
            access_key=access_key,
            backup_bucket=self.backup_bucket,
            buffering_interval=Duration.seconds(settings.buffering_interval_seconds),
            buffering_size=Size.mebibytes(settings.buffering_size_mib),
            retry_duration=Duration.seconds(settings.retry_duration_seconds),
            common_attributes=settings.common_attributes,
            log_retention=retention(settings.log_retention_days),
        )

        self.metric_stream = MetricStream(
            self,
            "MetricStream",
            delivery_stream=self.delivery.stream,
            plan=plan,
            output_format=settings.output_format,
            include_linked_accounts_metrics=settings.include_linked_accounts_metrics,
        )

        self.alarms = pipeline_alarms(
            self,
            topic=self.alarm_topic.topic,
            settings=settings.alarms,
            delivery_stream_name=self.delivery.stream.delivery_stream_name,
            metric_stream_name=self.metric_stream.resource.ref,
            endpoint_url=settings.endpoint_url,
            backup_bucket_name=self.backup_bucket.bucket_name,
            error_log_group_name=self.delivery.log_group.log_group_name,
            retry_duration_seconds=settings.retry_duration_seconds,
        )

        CfnOutput(self, "MetricStreamName", value=self.metric_stream.resource.ref)
        CfnOutput(self, "DeliveryStreamName", value=self.delivery.stream.delivery_stream_name)
        CfnOutput(
            self,
            "DeliveryRoleArn",
            value=self.delivery.role.role_arn,
            description="Firehose's role: the principal a secret's resource policy or a key policy must admit",
        )
        CfnOutput(
            self,
            "BackupBucketName",
            value=self.backup_bucket.bucket_name,
            description=(
                "Failed deliveries; re-send them with python -m receiver replay s3://<bucket>/ --to <EndpointUrl>"
            ),
        )
        if self.own_alarm_topic:
            CfnOutput(
                self,
                "AlarmTopicArn",
                value=self.alarm_topic.topic.topic_arn,
                description="The pipeline's alarms notify here: subscribe e-mail, chat or a queue",
            )
