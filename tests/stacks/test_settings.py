"""The settings object: defaults, the string forms ``cdk -c`` passes, and one error per mistake."""

from __future__ import annotations

from typing import Any

import pytest

from stacks.settings import (
    DEFAULTS,
    AlarmSettings,
    InventoryConfig,
    ReceiverImage,
    Settings,
    SettingsError,
    settings_from_context,
)
from tests.stacks.synth import BASE_CONTEXT, CERTIFICATE_ARN, REPO, cdk_json_context


def read(overrides: dict[str, Any] | None = None, default_region: str | None = None) -> Settings:
    context = {**BASE_CONTEXT, **(overrides or {})}
    return settings_from_context(context.get, default_region=default_region)


def error_of(overrides: dict[str, Any], default_region: str | None = None) -> str:
    with pytest.raises(SettingsError) as caught:
        read(overrides, default_region)
    return str(caught.value)


def test_cdk_json_lists_every_setting_with_its_default() -> None:
    context = cdk_json_context()
    assert {key: context.get(key) for key in DEFAULTS} == DEFAULTS


def test_defaults_are_the_documented_ones() -> None:
    assert read() == Settings(
        region="us-east-1",
        domain_name="metrics.example.com",
        hosted_zone_id="Z0123456789ABCDEFGHIJ",
        hosted_zone_name="example.com",
        certificate_arn=None,
        dashboard_allowed_cidrs=(),
        create_demo_table=True,
        retain_metrics=False,
        namespaces=("AWS/DynamoDB", "AWS/Firehose", "AWS/CloudWatch/MetricStreams"),
        stream_all_metrics=False,
        include_linked_accounts_metrics=False,
        output_format="opentelemetry0.7",
        additional_statistics=(),
        common_attributes=(("deployment", "dynamodb-monitoring"),),
        buffering_interval_seconds=60,
        buffering_size_mib=1,
        retry_duration_seconds=3600,
        backup_retention_days=30,
        log_retention_days=30,
        min_tasks=2,
        max_tasks=4,
        task_cpu=512,
        task_memory_mib=1024,
        cpu_architecture="X86_64",
        nat_gateways=0,
        container_insights=False,
        shutdown_timeout_seconds=60,
        inventory=InventoryConfig(extra_regions=(), roles=(), interval_seconds=300, tag_labels=()),
        receiver_endpoint_url=None,
        access_key_secret_arn=None,
        receiver_image=None,
        alarms=AlarmSettings(data_freshness_minutes=15, evaluation_periods=3, target_5xx_threshold=0),
        nag=False,
    )


def test_cli_strings_read_like_json_values() -> None:
    native = {
        "createDemoTable": False,
        "bufferingSizeMiB": 4,
        "logRetentionDays": 90,
        "namespaces": ["AWS/DynamoDB", "AWS/Lambda"],
        "dashboardAllowedCidrs": ["203.0.113.0/24"],
        "commonAttributes": {"team": "data"},
        "additionalStatistics": [{"namespace": "AWS/Lambda", "metricName": "Duration", "statistics": ["p90"]}],
    }
    typed = {
        "createDemoTable": "false",
        "bufferingSizeMiB": "4",
        "logRetentionDays": "90",
        "namespaces": '["AWS/DynamoDB", "AWS/Lambda"]',
        "dashboardAllowedCidrs": '["203.0.113.0/24"]',
        "commonAttributes": '{"team": "data"}',
        "additionalStatistics": '[{"namespace": "AWS/Lambda", "metricName": "Duration", "statistics": ["p90"]}]',
    }
    assert read(typed) == read(native)


def test_cli_lists_may_be_comma_separated() -> None:
    assert read({"namespaces": "AWS/DynamoDB, AWS/Lambda"}).namespaces == ("AWS/DynamoDB", "AWS/Lambda")


def test_empty_value_means_the_default() -> None:
    assert read({"outputFormat": "", "minTasks": ""}) == read()


def test_region_falls_back_to_the_profile_region() -> None:
    assert read({"region": ""}, default_region="eu-west-1").region == "eu-west-1"


def test_region_setting_wins_over_the_profile_region() -> None:
    assert read({"region": "us-east-1"}, default_region="eu-west-1").region == "us-east-1"


def test_endpoint_url_is_the_firehose_path_on_the_domain() -> None:
    assert read().endpoint_url == "https://metrics.example.com/aws/firehose/metrics"


def test_domain_name_is_normalised() -> None:
    assert read({"domainName": "Metrics.Example.COM."}).domain_name == "metrics.example.com"


def test_zone_id_may_carry_the_hostedzone_prefix() -> None:
    assert read({"hostedZoneId": "/hostedzone/Z0123456789ABCDEFGHIJ"}).hosted_zone_id == "Z0123456789ABCDEFGHIJ"


def test_certificate_alone_needs_no_hosted_zone() -> None:
    settings = read({"hostedZoneId": "", "hostedZoneName": "", "certificateArn": CERTIFICATE_ARN})
    assert (settings.has_hosted_zone, settings.certificate_arn) == (False, CERTIFICATE_ARN)


def test_json_only_statistics_are_allowed_with_json_output() -> None:
    stats = [{"namespace": "AWS/DynamoDB", "metricName": "SuccessfulRequestLatency", "statistics": ["tm90", "IQM"]}]
    settings = read({"outputFormat": "json", "additionalStatistics": stats})
    assert settings.additional_statistics[0].statistics == ("tm90", "IQM")


def test_empty_additional_statistics_stream_none() -> None:
    assert read({"additionalStatistics": []}).additional_statistics == ()


OTHER_URL = "https://receiver.example.org/aws/firehose/metrics"
SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:firehose-key-AbCdEf"
STREAM_ONLY = {
    "domainName": "",
    "hostedZoneId": "",
    "hostedZoneName": "",
    "receiverEndpointUrl": OTHER_URL,
    "accessKeySecretArn": SECRET_ARN,
}


def test_a_receiver_url_and_secret_deploy_the_metric_stream_alone() -> None:
    settings = read(STREAM_ONLY)
    assert (settings.stream_only, settings.endpoint_url, settings.access_key_secret_arn) == (
        True,
        OTHER_URL,
        SECRET_ARN,
    )
    assert (settings.domain_name, settings.hosted_zone_id, settings.certificate_arn) == ("", None, None)


def test_the_receiver_url_may_carry_a_query_and_the_default_port() -> None:
    url = "https://receiver.example.org:443/ingest?tenant=a"
    assert read({**STREAM_ONLY, "receiverEndpointUrl": url}).endpoint_url == url


def test_the_receiver_is_deployed_without_a_receiver_url() -> None:
    assert read().stream_only is False


@pytest.mark.parametrize(
    ("image", "repository_arn", "tag"),
    [
        (
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/receiver:1.4.0",
            "arn:aws:ecr:us-east-1:123456789012:repository/team/receiver",
            "1.4.0",
        ),
        ("public.ecr.aws/example/receiver:2026-01-05", None, "2026-01-05"),
        ("ghcr.io/example/receiver@sha256:" + "0" * 64, None, "sha256:" + "0" * 64),
        ("localhost:5000/receiver:dev", None, "dev"),
    ],
)
def test_a_prebuilt_image_is_read_with_its_tag_or_digest(image: str, repository_arn: str | None, tag: str) -> None:
    found = read({"receiverImage": image}).receiver_image
    assert isinstance(found, ReceiverImage)
    assert (found.uri, found.ecr_repository_arn, found.tag_or_digest) == (image, repository_arn, tag)


def test_alarm_settings_are_read() -> None:
    values = {"alarmDataFreshnessMinutes": "30", "alarmEvaluationPeriods": 2, "alarmTarget5xxThreshold": "25"}
    assert read(values).alarms == AlarmSettings(30, 2, 25)


def test_flags_for_the_stream_are_read() -> None:
    settings = read({"streamAllMetrics": "true", "includeLinkedAccountsMetrics": True})
    assert (settings.stream_all_metrics, settings.include_linked_accounts_metrics) == (True, True)


NO_ZONE = {"hostedZoneId": "", "hostedZoneName": ""}
STAT = {"namespace": "AWS/DynamoDB", "metricName": "SuccessfulRequestLatency", "statistics": ["p99"]}

# (key the message must name, overrides, fragment of what to put)
ERRORS = {
    "region missing": ("region", {"region": ""}, "put the region to deploy to"),
    "region malformed": ("region", {"region": "Frankfurt"}, "put one such as eu-west-1"),
    "domain missing": ("domainName", {"domainName": ""}, "put the DNS name Firehose will deliver to"),
    "domain malformed": ("domainName", {"domainName": "not a host"}, "put one such as metrics.example.com"),
    "domain not text": ("domainName", {"domainName": 42}, "must be a string"),
    "zone id without name": ("hostedZoneName", {"hostedZoneName": ""}, "give both or neither"),
    "zone name without id": ("hostedZoneId", {"hostedZoneId": ""}, "give both or neither"),
    "zone id malformed": ("hostedZoneId", {"hostedZoneId": "zone-1"}, "put one such as Z0123456789ABCDEFGHIJ"),
    "domain outside zone": ("hostedZoneName", {"hostedZoneName": "example.org"}, "put the zone that holds the domain"),
    "neither zone nor certificate": ("certificateArn", NO_ZONE, "put the Route 53 zone that holds domainName"),
    "certificate malformed": (
        "certificateArn",
        {"certificateArn": "arn:aws:iam::123456789012:role/x"},
        "not an ACM certificate ARN",
    ),
    "certificate in another region": (
        "certificateArn",
        {"certificateArn": CERTIFICATE_ARN.replace("us-east-1", "eu-west-1")},
        "needs a certificate from its own region",
    ),
    "cidr malformed": (
        "dashboardAllowedCidrs",
        {"dashboardAllowedCidrs": ["office"]},
        "put one such as 203.0.113.0/24",
    ),
    "cidr host bits": (
        "dashboardAllowedCidrs",
        {"dashboardAllowedCidrs": ["203.0.113.7/24"]},
        "not a network in CIDR form",
    ),
    "cidr ipv6": ("dashboardAllowedCidrs", {"dashboardAllowedCidrs": ["2001:db8::/32"]}, "list IPv4 networks"),
    "cidr everything": (
        "dashboardAllowedCidrs",
        {"dashboardAllowedCidrs": ["0.0.0.0/0"]},
        "list only your own networks",
    ),
    "cidr twice": (
        "dashboardAllowedCidrs",
        {"dashboardAllowedCidrs": ["203.0.113.0/24"] * 2},
        "list each network once",
    ),
    # Two halves make the whole internet: no entry may be wider than /8 (IPv4) or /32 (IPv6).
    "cidr half of ipv4": (
        "dashboardAllowedCidrs",
        {"dashboardAllowedCidrs": ["0.0.0.0/1", "128.0.0.0/1"]},
        "'0.0.0.0/1' is wider than /8",
    ),
    "cidr second half of ipv4": (
        "dashboardAllowedCidrs",
        {"dashboardAllowedCidrs": ["10.0.0.0/8", "128.0.0.0/1"]},
        "'128.0.0.0/1' is wider than /8",
    ),
    "cidr /7": ("dashboardAllowedCidrs", {"dashboardAllowedCidrs": ["10.0.0.0/7"]}, "list only your own networks"),
    "cidr wide ipv6": ("dashboardAllowedCidrs", {"dashboardAllowedCidrs": ["::/1"]}, "'::/1' is wider than /32"),
    "too many cidrs": (
        "dashboardAllowedCidrs",
        {"dashboardAllowedCidrs": [f"10.0.{i}.0/24" for i in range(21)]},
        "put at most 20",
    ),
    "cidrs not a list": (
        "dashboardAllowedCidrs",
        {"dashboardAllowedCidrs": {"office": "203.0.113.0/24"}},
        "must be a list of strings",
    ),
    "demo table not a flag": ("createDemoTable", {"createDemoTable": "yes"}, "must be true or false"),
    "retain not a flag": ("retainMetrics", {"retainMetrics": 1}, "must be true or false"),
    "container insights not a flag": ("containerInsights", {"containerInsights": "on"}, "must be true or false"),
    "nag not a flag": ("nag", {"nag": "maybe"}, "must be true or false"),
    "no namespaces": ("namespaces", {"namespaces": []}, "list the CloudWatch namespaces to stream"),
    "namespace malformed": ("namespaces", {"namespaces": [":AWS"]}, "put one such as AWS/DynamoDB"),
    "namespace twice": ("namespaces", {"namespaces": ["AWS/DynamoDB", "AWS/DynamoDB"]}, "list each once"),
    "output format unknown": (
        "outputFormat",
        {"outputFormat": "opentelemetry2.0"},
        "must be one of opentelemetry0.7, opentelemetry1.0, json",
    ),
    "statistics not a list": ("additionalStatistics", {"additionalStatistics": {"p99": True}}, "must be a list of"),
    "statistics not JSON": ("additionalStatistics", {"additionalStatistics": "[p99"}, "is not valid JSON"),
    "statistics entry shape": (
        "additionalStatistics",
        {"additionalStatistics": [{"metricName": "X"}]},
        "is not of the form",
    ),
    "statistics outside namespaces": (
        "additionalStatistics",
        {"additionalStatistics": [{**STAT, "namespace": "AWS/Lambda"}]},
        "add it to namespaces or remove the entry",
    ),
    "json-only statistic in otel": (
        "additionalStatistics",
        {"additionalStatistics": [{**STAT, "statistics": ["tm90"]}]},
        "streamed only in outputFormat json",
    ),
    "unknown statistic": (
        "additionalStatistics",
        {"additionalStatistics": [{**STAT, "statistics": ["p101"]}]},
        "put one such as p99",
    ),
    "statistics metric twice": (
        "additionalStatistics",
        {"additionalStatistics": [STAT, STAT]},
        "merge its statistics into one entry",
    ),
    "attributes not an object": (
        "commonAttributes",
        {"commonAttributes": ["deployment"]},
        "must be an object of strings",
    ),
    "attribute too long": ("commonAttributes", {"commonAttributes": {"deployment": "x" * 1025}}, "values at most 1024"),
    "buffering interval too long": ("bufferingIntervalSeconds", {"bufferingIntervalSeconds": 901}, "from 0 to 900"),
    "buffering interval not a number": ("bufferingIntervalSeconds", {"bufferingIntervalSeconds": "1m"}, "whole number"),
    "buffering size zero": ("bufferingSizeMiB", {"bufferingSizeMiB": 0}, "from 1 to 64"),
    "buffering size too big": ("bufferingSizeMiB", {"bufferingSizeMiB": "65"}, "from 1 to 64"),
    "buffering size fractional": ("bufferingSizeMiB", {"bufferingSizeMiB": 1.5}, "whole number"),
    "retry too long": ("retryDurationSeconds", {"retryDurationSeconds": 7201}, "from 0 to 7200"),
    "backup retention zero": ("backupRetentionDays", {"backupRetentionDays": 0}, "from 1 to 3650"),
    "log retention not offered": ("logRetentionDays", {"logRetentionDays": 10}, "must be one of 1, 3, 5, 7, 14, 30"),
    "one task": ("minTasks", {"minTasks": 1}, "from 2 to 100"),
    "max below min": ("maxTasks", {"minTasks": 3, "maxTasks": 2}, "from minTasks (3) to 100"),
    "cpu not a fargate size": ("taskCpu", {"taskCpu": 300}, "must be one of 256, 512, 1024"),
    "memory not for cpu": (
        "taskMemoryMiB",
        {"taskCpu": 1024, "taskMemoryMiB": 1024},
        "put 2048 to 8192 in steps of 1024",
    ),
    "memory not for smallest cpu": ("taskMemoryMiB", {"taskCpu": 256, "taskMemoryMiB": 4096}, "put 512, 1024 or 2048"),
    "architecture unknown": ("cpuArchitecture", {"cpuArchitecture": "arm"}, "must be one of X86_64, ARM64"),
    "too many nat gateways": ("natGateways", {"natGateways": 3}, "from 0 to 2"),
    "shutdown too short": ("shutdownTimeoutSeconds", {"shutdownTimeoutSeconds": 4}, "from 5 to 90"),
    "shutdown too long for fargate": ("shutdownTimeoutSeconds", {"shutdownTimeoutSeconds": 91}, "from 5 to 90"),
    # CloudFormation's limits, refused at synth instead of at deploy.
    "more than 20 statistics": (
        "additionalStatistics",
        {"additionalStatistics": [{**STAT, "statistics": [f"p{n}" for n in range(1, 22)]}]},
        "CloudFormation takes at most 20 per metric",
    ),
    "more than 50 common attributes": (
        "commonAttributes",
        {"commonAttributes": {f"k{n}": "v" for n in range(51)}},
        "Firehose sends at most 50",
    ),
    "receiver namespace": (
        "namespaces",
        {"namespaces": ["AWS/DynamoDB", "Receiver/DynamoDBInventory"]},
        "made by the receiver itself",
    ),
    # The metric stream alone.
    "url without secret": ("accessKeySecretArn", {"receiverEndpointUrl": OTHER_URL}, "give both or neither"),
    "secret without url": ("receiverEndpointUrl", {"accessKeySecretArn": SECRET_ARN}, "give both or neither"),
    "url not https": (
        "receiverEndpointUrl",
        {**STREAM_ONLY, "receiverEndpointUrl": "http://receiver.example.org/aws/firehose/metrics"},
        "Firehose delivers only over HTTPS",
    ),
    "url without host": (
        "receiverEndpointUrl",
        {**STREAM_ONLY, "receiverEndpointUrl": "https:///aws/firehose/metrics"},
        "names no DNS host",
    ),
    "url without path": (
        "receiverEndpointUrl",
        {**STREAM_ONLY, "receiverEndpointUrl": "https://receiver.example.org/"},
        "has no path",
    ),
    "url on another port": (
        "receiverEndpointUrl",
        {**STREAM_ONLY, "receiverEndpointUrl": "https://receiver.example.org:8443/ingest"},
        "only to port 443",
    ),
    "url too long": (
        "receiverEndpointUrl",
        {**STREAM_ONLY, "receiverEndpointUrl": "https://receiver.example.org/" + "a" * 1000},
        "at most 1000",
    ),
    "url not a url": (
        "receiverEndpointUrl",
        {**STREAM_ONLY, "receiverEndpointUrl": "https://receiver.example.org:port/x"},
        "is not a URL",
    ),
    "secret not an arn": (
        "accessKeySecretArn",
        {**STREAM_ONLY, "accessKeySecretArn": "firehose-key"},
        "not a Secrets Manager secret's complete ARN",
    ),
    "secret without its suffix": (
        "accessKeySecretArn",
        {**STREAM_ONLY, "accessKeySecretArn": SECRET_ARN.removesuffix("-AbCdEf")},
        "complete ARN",
    ),
    "secret in another region": (
        "accessKeySecretArn",
        {**STREAM_ONLY, "accessKeySecretArn": SECRET_ARN.replace("us-east-1", "eu-west-1")},
        "Firehose reads only a secret of its own region",
    ),
    "domain with the stream alone": (
        "domainName",
        {**STREAM_ONLY, "domainName": "metrics.example.com"},
        "remove domainName, or remove receiverEndpointUrl",
    ),
    "cidrs with the stream alone": (
        "dashboardAllowedCidrs",
        {**STREAM_ONLY, "dashboardAllowedCidrs": "203.0.113.0/24"},
        "deploys only the metric stream",
    ),
    "image with the stream alone": (
        "receiverImage",
        {**STREAM_ONLY, "receiverImage": "public.ecr.aws/example/receiver:1"},
        "deploys only the metric stream",
    ),
    "flag not a flag": ("streamAllMetrics", {"streamAllMetrics": "all"}, "must be true or false"),
    "linked not a flag": ("includeLinkedAccountsMetrics", {"includeLinkedAccountsMetrics": 1}, "must be true or false"),
    # A prebuilt image.
    "image without tag": (
        "receiverImage",
        {"receiverImage": "public.ecr.aws/example/receiver"},
        "with a tag or digest",
    ),
    "image malformed": ("receiverImage", {"receiverImage": "not an image:1"}, "put one such as"),
    "ecr image malformed": (
        "receiverImage",
        {"receiverImage": "123.dkr.ecr.us-east-1.amazonaws.com/receiver:1"},
        "is not an image reference",
    ),
    # The alarms.
    "freshness zero": ("alarmDataFreshnessMinutes", {"alarmDataFreshnessMinutes": 0}, "from 1 to 1440"),
    "freshness within the buffer": (
        "alarmDataFreshnessMinutes",
        {"alarmDataFreshnessMinutes": 15, "bufferingIntervalSeconds": 900},
        "put at least 16",
    ),
    "evaluation periods too many": ("alarmEvaluationPeriods", {"alarmEvaluationPeriods": 25}, "from 1 to 24"),
    "5xx threshold negative": ("alarmTarget5xxThreshold", {"alarmTarget5xxThreshold": -1}, "whole number"),
}


@pytest.mark.parametrize(("key", "overrides", "fragment"), ERRORS.values(), ids=ERRORS.keys())
def test_a_wrong_setting_is_one_sentence_naming_key_and_remedy(
    key: str, overrides: dict[str, Any], fragment: str
) -> None:
    message = error_of(overrides)
    assert key in message
    assert fragment in message
    assert "\n" not in message


def test_networks_up_to_a_slash_8_are_allowed() -> None:
    cidrs = ["10.0.0.0/8", "203.0.113.0/24", "198.51.100.7/32"]
    assert read({"dashboardAllowedCidrs": cidrs}).dashboard_allowed_cidrs == tuple(cidrs)


def test_the_operations_doc_lists_every_setting() -> None:
    operations = (REPO / "docs" / "operations.md").read_text()
    missing = [key for key in DEFAULTS if f"`{key}`" not in operations]
    assert missing == []
