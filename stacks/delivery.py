"""The Firehose stream that carries the metric stream to the receiver, and its least-privilege role."""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Size, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

ENDPOINT_NAME = "dynamodb-metrics-receiver"
# What Firehose needs to write objects into a bucket (Firehose developer guide, "Grant Firehose
# access to an Amazon S3 destination"); it reads only to check the bucket and resume uploads.
S3_ACTIONS = (
    "s3:AbortMultipartUpload",
    "s3:GetBucketLocation",
    "s3:GetObject",
    "s3:ListBucket",
    "s3:ListBucketMultipartUploads",
    "s3:PutObject",
)


class Delivery(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint_url: str,
        access_key: secretsmanager.ISecret,
        backup_bucket: s3.IBucket,
        buffering_interval: Duration,
        buffering_size: Size,
        retry_duration: Duration,
        common_attributes: tuple[tuple[str, str], ...],
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)

        self.log_group = logs.LogGroup(self, "ErrorLogs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY)
        self.role = iam.Role(
            self,
            "Role",
            description="Firehose: deliver the metric stream to the receiver, back up failures to S3",
            # Only Firehose streams of this account may assume it (confused-deputy guard).
            assumed_by=iam.ServicePrincipal(
                "firehose.amazonaws.com",
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {
                        "aws:SourceArn": stack.format_arn(
                            service="firehose", resource="deliverystream", resource_name="*"
                        )
                    },
                },
            ),
        )

        logging = firehose.EnableLogging(self.log_group)
        destination = firehose.HttpEndpoint(
            endpoint_config=firehose.HttpEndpointConfig(url=endpoint_url, name=ENDPOINT_NAME, secret=access_key),
            request_compression=firehose.HttpCompression.GZIP,
            buffering_hints=firehose.HttpBufferingHints(interval=buffering_interval, size=buffering_size),
            retry_options=firehose.HttpRetryOptions(duration=retry_duration),
            attributes=[firehose.HttpAttribute(name=name, value=value) for name, value in common_attributes],
            backup_mode=firehose.HttpBackupMode.FAILED,
            s3_backup=firehose.DestinationS3BackupProps(bucket=backup_bucket, logging_config=logging),
            logging_config=logging,
            # The destination would grant read-write-delete on the bucket and write on the whole
            # log group; it gets a view of the role that ignores grants, and the policy below is exact.
            role=self.role.without_policy_updates(),
        )
        self.stream = firehose.DeliveryStream(
            self,
            "Stream",
            destination=destination,
            encryption=firehose.StreamEncryption.aws_owned_key(),
        )

        streams = self._log_streams()
        for stream in streams:
            # LogStream defaults to Retain; these go with their log group on destroy.
            stream.apply_removal_policy(RemovalPolicy.DESTROY)
        self.policy = iam.Policy(
            self,
            "Policy",
            roles=[self.role],
            statements=[
                iam.PolicyStatement(
                    sid="WriteBackupBucket",
                    actions=list(S3_ACTIONS),
                    resources=[backup_bucket.bucket_arn, backup_bucket.arn_for_objects("*")],
                ),
                iam.PolicyStatement(
                    sid="ReadAccessKey", actions=["secretsmanager:GetSecretValue"], resources=[access_key.secret_arn]
                ),
                iam.PolicyStatement(
                    sid="WriteErrorLogStreams",
                    actions=["logs:PutLogEvents"],
                    resources=[_stream_arn(stack, self.log_group, s) for s in streams],
                ),
            ],
        )
        # Firehose checks its role when the stream is created: the policy must be there first.
        self.stream.node.add_dependency(self.policy)

    def _log_streams(self) -> list[logs.LogStream]:
        """The streams the destination made in the log group (one for HTTP, one for the S3 backup)."""
        streams = [child for child in self.log_group.node.children if isinstance(child, logs.LogStream)]
        if not streams:
            raise RuntimeError("the Firehose destination created no log streams; the role would lack log access")
        return streams


def _stream_arn(stack: Stack, group: logs.ILogGroup, stream: logs.LogStream) -> str:
    return stack.format_arn(
        service="logs",
        resource="log-group",
        resource_name=f"{group.log_group_name}:log-stream:{stream.log_stream_name}",
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )
