"""The one way this app makes S3 buckets: private, encrypted, TLS-only, expiring, gone on destroy."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_s3 as s3
from constructs import Construct


def private_bucket(
    scope: Construct,
    construct_id: str,
    *,
    expiration_days: int,
    access_logs: s3.IBucket | None = None,
    access_logs_prefix: str | None = None,
) -> s3.Bucket:
    """A bucket that only this account's principals reach, over TLS, whose objects expire.

    SSE-S3 rather than KMS: ALB access logs and VPC flow logs can only be written to SSE-S3
    buckets, and it costs nothing. ``cdk destroy`` empties and deletes it: it only ever holds
    logs or copies of failed deliveries, never the metrics themselves.
    """
    return s3.Bucket(
        scope,
        construct_id,
        encryption=s3.BucketEncryption.S3_MANAGED,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        enforce_ssl=True,
        minimum_tls_version=1.2,
        lifecycle_rules=[
            s3.LifecycleRule(
                id="expire",
                expiration=Duration.days(expiration_days),
                abort_incomplete_multipart_upload_after=Duration.days(1),
            )
        ],
        server_access_logs_bucket=access_logs,
        server_access_logs_prefix=access_logs_prefix,
        removal_policy=RemovalPolicy.DESTROY,
        auto_delete_objects=True,
    )
