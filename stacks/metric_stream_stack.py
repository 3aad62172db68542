"""Everything that sends: the metric stream, its Firehose stream and the S3 backup of failures."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Duration, Size, Stack
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from stacks.buckets import private_bucket
from stacks.delivery import Delivery
from stacks.log_retention import retention
from stacks.metric_stream import MetricStream
from stacks.settings import Settings


class MetricStreamStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        access_key: secretsmanager.ISecret,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)

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
            namespaces=settings.namespaces,
            output_format=settings.output_format,
            additional_statistics=settings.additional_statistics,
        )

        CfnOutput(self, "MetricStreamName", value=self.metric_stream.resource.ref)
        CfnOutput(self, "DeliveryStreamName", value=self.delivery.stream.delivery_stream_name)
        CfnOutput(
            self,
            "BackupBucketName",
            value=self.backup_bucket.bucket_name,
            description=(
                "Failed deliveries; re-send them with python -m receiver replay s3://<bucket>/ --to <EndpointUrl>"
            ),
        )
