"""The metric stream stack: backup bucket, Firehose HTTP endpoint delivery, metric stream, their roles."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Match

from stacks.delivery import S3_ACTIONS
from tests.stacks.synth import DOMAIN, METRIC_STREAM, OTHER_RECEIVER_SECRET_ARN, OTHER_RECEIVER_URL, RECEIVER, Assembly

DELIVERY = "AWS::KinesisFirehose::DeliveryStream"
STREAM = "AWS::CloudWatch::MetricStream"


def resources(assembly: Assembly, kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in assembly.template(METRIC_STREAM)["Resources"].items() if v["Type"] == kind}


def only(assembly: Assembly, kind: str) -> tuple[str, dict[str, Any]]:
    found = resources(assembly, kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return next(iter(found.items()))


def http(assembly: Assembly) -> dict[str, Any]:
    return only(assembly, DELIVERY)[1]["Properties"]["HttpEndpointDestinationConfiguration"]


def error_log_group(assembly: Assembly) -> str:
    """The log group Firehose logs delivery errors to (the stack also has one for a CDK provider)."""
    return str(http(assembly)["CloudWatchLoggingOptions"]["LogGroupName"]["Ref"])


def backup_bucket(assembly: Assembly) -> str:
    return http(assembly)["S3Configuration"]["BucketARN"]["Fn::GetAtt"][0]


def policies_of(assembly: Assembly, role: str) -> list[dict[str, Any]]:
    return [
        p["Properties"]
        for p in resources(assembly, "AWS::IAM::Policy").values()
        if {"Ref": role} in p["Properties"]["Roles"]
    ]


def receiver_secret(assembly: Assembly) -> dict[str, Any]:
    """How this stack refers to the receiver stack's access key secret (a cross-stack output)."""
    (secret,) = [
        k for k, v in assembly.template(RECEIVER)["Resources"].items() if v["Type"] == "AWS::SecretsManager::Secret"
    ]
    (output,) = [k for k, v in assembly.template(RECEIVER)["Outputs"].items() if v["Value"] == {"Ref": secret}]
    return {"Fn::GetStackOutput": {"StackName": RECEIVER, "Region": "us-east-1", "OutputName": output}}


# -- backup bucket -------------------------------------------------------------


def test_backup_bucket_is_encrypted_and_private(default: Assembly) -> None:
    properties = default.template(METRIC_STREAM)["Resources"][backup_bucket(default)]["Properties"]
    assert properties["BucketEncryption"] == {
        "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
    }
    assert properties["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }


def test_backup_bucket_refuses_requests_without_tls(default: Assembly) -> None:
    bucket = backup_bucket(default)
    default.assertions(METRIC_STREAM).has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "Bucket": {"Ref": bucket},
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Action": "s3:*",
                                "Principal": {"AWS": "*"},
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        )
                    ]
                )
            },
        },
    )


def test_backup_objects_expire_after_backup_retention_days(default: Assembly, alternative: Assembly) -> None:
    def expiry(assembly: Assembly) -> list[int]:
        bucket = assembly.template(METRIC_STREAM)["Resources"][backup_bucket(assembly)]
        return [rule["ExpirationInDays"] for rule in bucket["Properties"]["LifecycleConfiguration"]["Rules"]]

    assert (expiry(default), expiry(alternative)) == ([30], [7])


def test_backup_bucket_access_is_logged(default: Assembly) -> None:
    logging = default.template(METRIC_STREAM)["Resources"][backup_bucket(default)]["Properties"]["LoggingConfiguration"]
    assert (
        default.template(METRIC_STREAM)["Resources"][logging["DestinationBucketName"]["Ref"]]["Type"]
        == "AWS::S3::Bucket"
    )


# -- Firehose ------------------------------------------------------------------


def test_firehose_delivers_to_the_receivers_https_endpoint(default: Assembly) -> None:
    assert http(default)["EndpointConfiguration"] == {
        "Url": f"https://{DOMAIN}/aws/firehose/metrics",
        "Name": "dynamodb-metrics-receiver",
    }


def test_firehose_reads_the_access_key_from_the_receivers_secret(default: Assembly) -> None:
    role = http(default)["RoleARN"]
    assert http(default)["SecretsManagerConfiguration"] == {
        "Enabled": True,
        "SecretARN": receiver_secret(default),
        "RoleARN": role,
    }
    assert "AccessKey" not in http(default)["EndpointConfiguration"]


def test_firehose_gzips_and_sends_the_common_attributes(default: Assembly) -> None:
    assert http(default)["RequestConfiguration"] == {
        "ContentEncoding": "GZIP",
        "CommonAttributes": [{"AttributeName": "deployment", "AttributeValue": "dynamodb-monitoring"}],
    }


def test_common_attributes_follow_the_setting(alternative: Assembly) -> None:
    assert http(alternative)["RequestConfiguration"]["CommonAttributes"] == [
        {"AttributeName": "deployment", "AttributeValue": "staging"},
        {"AttributeName": "team", "AttributeValue": "data"},
    ]


def test_firehose_buffers_60_seconds_or_1_mib_and_retries_an_hour(default: Assembly) -> None:
    config = http(default)
    assert (config["BufferingHints"], config["RetryOptions"]) == (
        {"IntervalInSeconds": 60, "SizeInMBs": 1},
        {"DurationInSeconds": 3600},
    )


def test_buffering_and_retry_follow_the_settings(alternative: Assembly) -> None:
    config = http(alternative)
    assert (config["BufferingHints"], config["RetryOptions"]) == (
        {"IntervalInSeconds": 0, "SizeInMBs": 4},
        {"DurationInSeconds": 7200},
    )


def test_only_failed_data_is_backed_up_to_the_bucket(default: Assembly) -> None:
    assert http(default)["S3BackupMode"] == "FailedDataOnly"


def test_delivery_errors_are_logged_to_cloudwatch(default: Assembly) -> None:
    group = error_log_group(default)
    for options in (
        http(default)["CloudWatchLoggingOptions"],
        http(default)["S3Configuration"]["CloudWatchLoggingOptions"],
    ):
        assert (options["Enabled"], options["LogGroupName"]) == (True, {"Ref": group})


def test_delivery_stream_is_encrypted_at_rest(default: Assembly) -> None:
    default.assertions(METRIC_STREAM).has_resource_properties(
        DELIVERY,
        {"DeliveryStreamType": "DirectPut", "DeliveryStreamEncryptionConfigurationInput": {"KeyType": "AWS_OWNED_CMK"}},
    )


def test_firehose_role_is_assumable_only_by_this_accounts_firehose(default: Assembly) -> None:
    role = http(default)["RoleARN"]["Fn::GetAtt"][0]
    (statement,) = default.template(METRIC_STREAM)["Resources"][role]["Properties"]["AssumeRolePolicyDocument"][
        "Statement"
    ]
    assert statement["Principal"] == {"Service": "firehose.amazonaws.com"}
    assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}


def test_firehose_role_may_only_write_the_bucket_read_the_secret_and_write_its_log_streams(default: Assembly) -> None:
    role = http(default)["RoleARN"]["Fn::GetAtt"][0]
    bucket = backup_bucket(default)
    group = error_log_group(default)
    streams = sorted(resources(default, "AWS::Logs::LogStream"))
    (policy,) = policies_of(default, role)

    def stream_arn(stream: str) -> dict[str, Any]:
        return {
            "Fn::Join": [
                "",
                [
                    "arn:aws:logs:us-east-1:",
                    {"Ref": "AWS::AccountId"},
                    ":log-group:",
                    {"Ref": group},
                    ":log-stream:",
                    {"Ref": stream},
                ],
            ]
        }

    assert policy["PolicyDocument"]["Statement"] == [
        {
            "Sid": "WriteBackupBucket",
            "Effect": "Allow",
            "Action": list(S3_ACTIONS),
            "Resource": [
                {"Fn::GetAtt": [bucket, "Arn"]},
                {"Fn::Join": ["", [{"Fn::GetAtt": [bucket, "Arn"]}, "/*"]]},
            ],
        },
        {
            "Sid": "ReadAccessKey",
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": receiver_secret(default),
        },
        {
            "Sid": "WriteErrorLogStreams",
            "Effect": "Allow",
            "Action": "logs:PutLogEvents",
            "Resource": [stream_arn(stream) for stream in streams],
        },
    ]
    properties = default.template(METRIC_STREAM)["Resources"][role]["Properties"]
    assert ("ManagedPolicyArns" in properties, "Policies" in properties) == (False, False)


def test_firehose_error_logs_are_its_two_streams(default: Assembly) -> None:
    group = error_log_group(default)
    streams = resources(default, "AWS::Logs::LogStream").values()
    assert [s["Properties"]["LogGroupName"] for s in streams] == [{"Ref": group}, {"Ref": group}]
    log_streams = {
        http(default)["CloudWatchLoggingOptions"]["LogStreamName"]["Ref"],
        http(default)["S3Configuration"]["CloudWatchLoggingOptions"]["LogStreamName"]["Ref"],
    }
    assert log_streams == set(resources(default, "AWS::Logs::LogStream"))


def test_firehose_stream_waits_for_its_policy(default: Assembly) -> None:
    role = http(default)["RoleARN"]["Fn::GetAtt"][0]
    (policy,) = [
        k for k, v in resources(default, "AWS::IAM::Policy").items() if {"Ref": role} in v["Properties"]["Roles"]
    ]
    assert policy in only(default, DELIVERY)[1]["DependsOn"]


# -- metric stream -------------------------------------------------------------


def test_metric_stream_feeds_the_delivery_stream(default: Assembly) -> None:
    delivery, _ = only(default, DELIVERY)
    assert only(default, STREAM)[1]["Properties"]["FirehoseArn"] == {"Fn::GetAtt": [delivery, "Arn"]}


def test_metric_stream_sends_otel_07(default: Assembly) -> None:
    # What it includes and which statistics it adds: test_stream_plan.py.
    assert only(default, STREAM)[1]["Properties"]["OutputFormat"] == "opentelemetry0.7"


def test_format_follows_the_setting(alternative: Assembly) -> None:
    assert only(alternative, STREAM)[1]["Properties"]["OutputFormat"] == "json"


def test_metric_stream_role_is_trusted_by_cloudwatch_metric_streams(default: Assembly) -> None:
    role = only(default, STREAM)[1]["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    (statement,) = default.template(METRIC_STREAM)["Resources"][role]["Properties"]["AssumeRolePolicyDocument"][
        "Statement"
    ]
    assert (statement["Principal"], statement["Action"]) == (
        {"Service": "streams.metrics.cloudwatch.amazonaws.com"},
        "sts:AssumeRole",
    )


def test_metric_stream_role_may_only_put_records_into_this_delivery_stream(default: Assembly) -> None:
    role = only(default, STREAM)[1]["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    delivery, _ = only(default, DELIVERY)
    (policy,) = policies_of(default, role)
    assert policy["PolicyDocument"]["Statement"] == [
        {
            "Action": ["firehose:PutRecord", "firehose:PutRecordBatch"],
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [delivery, "Arn"]},
        }
    ]


def test_metric_stream_waits_for_its_roles_policy(default: Assembly) -> None:
    role = only(default, STREAM)[1]["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    (policy,) = [
        k for k, v in resources(default, "AWS::IAM::Policy").items() if {"Ref": role} in v["Properties"]["Roles"]
    ]
    assert policy in only(default, STREAM)[1]["DependsOn"]


def test_metric_stream_stack_deploys_after_the_receiver(default: Assembly) -> None:
    artifacts = default.manifest()["artifacts"]
    assert RECEIVER in artifacts[METRIC_STREAM]["dependencies"]


def test_outputs_name_the_streams_and_the_backup_bucket(default: Assembly) -> None:
    assert {"MetricStreamName", "DeliveryStreamName", "DeliveryRoleArn", "BackupBucketName"} <= set(
        default.template(METRIC_STREAM)["Outputs"]
    )


# -- the metric stream alone, for a receiver run elsewhere -------------------------------------------

# What only the receiver stack has; none of it may appear in the metric stream alone.
RECEIVER_KINDS = (
    "AWS::EC2::VPC",
    "AWS::EC2::Subnet",
    "AWS::EC2::SecurityGroup",
    "AWS::ElasticLoadBalancingV2::LoadBalancer",
    "AWS::ElasticLoadBalancingV2::TargetGroup",
    "AWS::ECS::Cluster",
    "AWS::ECS::Service",
    "AWS::ECS::TaskDefinition",
    "AWS::CertificateManager::Certificate",
    "AWS::Route53::RecordSet",
    "AWS::SecretsManager::Secret",
)


def test_the_metric_stream_alone_deploys_no_vpc_load_balancer_or_fargate_service(stream_only: Assembly) -> None:
    kinds = {r["Type"] for path in stream_only.templates() for r in json.loads(path.read_text())["Resources"].values()}
    assert sorted(kinds & set(RECEIVER_KINDS)) == []
    assert {STREAM, DELIVERY, "AWS::S3::Bucket", "AWS::IAM::Role", "AWS::CloudWatch::Alarm"} <= kinds


def test_the_metric_stream_alone_delivers_to_the_given_url_with_the_given_secret(stream_only: Assembly) -> None:
    config = http(stream_only)
    assert config["EndpointConfiguration"]["Url"] == OTHER_RECEIVER_URL
    assert config["SecretsManagerConfiguration"] == {
        "Enabled": True,
        "SecretARN": OTHER_RECEIVER_SECRET_ARN,
        "RoleARN": config["RoleARN"],
    }


def test_firehose_may_read_only_the_given_secret(stream_only: Assembly) -> None:
    role = http(stream_only)["RoleARN"]["Fn::GetAtt"][0]
    (policy,) = policies_of(stream_only, role)
    (read,) = [s for s in policy["PolicyDocument"]["Statement"] if s["Sid"] == "ReadAccessKey"]
    assert (read["Action"], read["Resource"]) == ("secretsmanager:GetSecretValue", OTHER_RECEIVER_SECRET_ARN)


def test_the_metric_stream_alone_has_its_own_alarm_topic(stream_only: Assembly) -> None:
    (topic,) = resources(stream_only, "AWS::SNS::Topic")
    assert stream_only.template(METRIC_STREAM)["Outputs"]["AlarmTopicArn"]["Value"] == {"Ref": topic}


def test_with_the_receiver_the_alarms_notify_the_receivers_topic(default: Assembly) -> None:
    assert resources(default, "AWS::SNS::Topic") == {}
    assert "AlarmTopicArn" not in default.template(METRIC_STREAM)["Outputs"]


def test_the_metric_stream_alone_depends_on_no_other_stack(stream_only: Assembly) -> None:
    assert stream_only.manifest()["artifacts"][METRIC_STREAM].get("dependencies", []) == [f"{METRIC_STREAM}.assets"]
