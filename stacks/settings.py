"""The deployment's settings: one typed, frozen object built from CDK context.

Values come from ``cdk.json`` ("context") and ``cdk -c key=value``. The CLI hands ``-c`` values
over as strings, so every reader accepts the JSON type and its string spelling ("true", "60",
'["a", "b"]'). A wrong value raises SettingsError: one sentence naming the key and what to put.

This module imports nothing from aws_cdk, so its tests run without synthesizing anything.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

OUTPUT_FORMATS = ("opentelemetry0.7", "opentelemetry1.0", "json")
CPU_ARCHITECTURES = ("X86_64", "ARM64")
# CloudWatch Logs accepts only these retention periods (days).
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)
# Fargate's valid memory sizes (MiB) for each CPU size (CPU units).
FARGATE_MEMORY = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4096 + 1, 1024)),
    1024: tuple(range(2048, 8192 + 1, 1024)),
    2048: tuple(range(4096, 16384 + 1, 1024)),
    4096: tuple(range(8192, 30720 + 1, 1024)),
    8192: tuple(range(16384, 61440 + 1, 4096)),
    16384: tuple(range(32768, 122880 + 1, 8192)),
}
MAX_DASHBOARD_CIDRS = 20
# The receiver's table inventory (receiver/inventory): how often it polls, in seconds.
INVENTORY_INTERVAL_SECONDS = (60, 86400)
# CloudFormation's limits (AWS::CloudWatch::MetricStream MetricStreamStatisticsConfiguration
# AdditionalStatistics, and AWS::KinesisFirehose::DeliveryStream HttpEndpointRequestConfiguration
# CommonAttributes): a template past them is rejected at deploy, so they are refused at synth.
MAX_ADDITIONAL_STATISTICS = 20
MAX_COMMON_ATTRIBUTES = 50
# Firehose's HttpEndpointConfiguration Url: https only, at most 1,000 characters, port 443 only.
MAX_ENDPOINT_URL_LENGTH = 1000
# The out-of-band alarms (stacks/alarms.py): a DataFreshness threshold of a minute to a day, and
# how many consecutive 5-minute periods a failure must last before they notify.
ALARM_DATA_FRESHNESS_MINUTES = (1, 1440)
ALARM_EVALUATION_PERIODS = (1, 24)

# Every setting's context key and its default, spelled as in cdk.json (a test keeps the two equal).
DEFAULTS: dict[str, Any] = {
    "region": "",
    "domainName": "",
    "hostedZoneId": "",
    "hostedZoneName": "",
    "certificateArn": "",
    "dashboardAllowedCidrs": [],
    "createDemoTable": True,
    "retainMetrics": False,
    "namespaces": ["AWS/DynamoDB", "AWS/Firehose", "AWS/CloudWatch/MetricStreams"],
    "streamAllMetrics": False,
    "includeLinkedAccountsMetrics": False,
    "outputFormat": "opentelemetry0.7",
    "additionalStatistics": [],
    "commonAttributes": {"deployment": "dynamodb-monitoring"},
    "bufferingIntervalSeconds": 60,
    "bufferingSizeMiB": 1,
    "retryDurationSeconds": 3600,
    "backupRetentionDays": 30,
    "logRetentionDays": 30,
    "minTasks": 2,
    "maxTasks": 4,
    "taskCpu": 512,
    "taskMemoryMiB": 1024,
    "cpuArchitecture": "X86_64",
    "natGateways": 0,
    "containerInsights": False,
    "shutdownTimeoutSeconds": 60,
    "inventory": True,
    "inventoryRegions": [],
    "inventoryRoles": [],
    "inventoryIntervalSeconds": 300,
    "inventoryTagLabels": [],
    "receiverEndpointUrl": "",
    "accessKeySecretArn": "",
    "receiverImage": "",
    "alarmDataFreshnessMinutes": 15,
    "alarmEvaluationPeriods": 3,
    "alarmTarget5xxThreshold": 0,
    "nag": False,
}

_HOSTNAME_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_ZONE_ID = re.compile(r"Z[A-Z0-9]{1,31}")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d+")
_CERTIFICATE_ARN = re.compile(r"arn:aws[a-z-]*:acm:(?P<region>[a-z]{2}(-[a-z]+)+-\d+):\d{12}:certificate/[0-9a-f-]{36}")
# As the receiver checks them (receiver/inventory/settings.py), less the comma: the receiver
# reads roles and tag keys from comma-separated environment variables.
_ROLE_ARN = re.compile(r"arn:(?P<partition>aws[a-z-]*):iam::\d{12}:role/[\w+=.@/-]{1,512}")
_TAG_KEY = re.compile(r"[^\x00-\x1f,]{1,128}")
# A Secrets Manager secret's complete ARN: its name and the six characters Secrets Manager appends.
_SECRET_ARN = re.compile(
    r"arn:(?P<partition>aws[a-z-]*):secretsmanager:(?P<region>[a-z]{2}(-[a-z]+)+-\d+):\d{12}:"
    r"secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6}"
)
# Container image references, always with a tag or a digest (no implicit :latest).
_IMAGE_TAG = r"(:(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})|@(?P<digest>sha256:[0-9a-f]{64}))"
_REPOSITORY_PATH = r"[a-z0-9]+([._-]+[a-z0-9]+)*(/[a-z0-9]+([._-]+[a-z0-9]+)*)*"
_ECR_IMAGE = re.compile(
    r"(?P<account>\d{12})\.dkr\.ecr(-fips)?\.(?P<region>[a-z]{2}(-[a-z]+)+-\d+)\.amazonaws\.com(\.cn)?/"
    rf"(?P<repository>{_REPOSITORY_PATH}){_IMAGE_TAG}"
)
_REGISTRY_IMAGE = re.compile(
    rf"((?P<registry>[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*(:\d{{1,5}})?)/)?(?P<repository>{_REPOSITORY_PATH}){_IMAGE_TAG}"
)
_PERCENTILE = re.compile(r"p(\d{1,2}(\.\d{1,10})?|100)")
# The JSON-only statistics: trimmed/winsorized mean, trimmed count/sum, percentile rank, IQM.
_JSON_ONLY_STATISTIC = re.compile(r"(tm|wm|tc|ts)\d{1,2}(\.\d{1,10})?|(TM|WM|TC|TS)\([^()]*\)|PR\([^()]*\)|IQM")


class SettingsError(ValueError):
    """A wrong or missing setting; ``str(e)`` is one sentence naming the key and what to put."""


@dataclass(frozen=True, slots=True)
class StatisticsConfig:
    """Extra statistics streamed for one metric (all its dimension combinations)."""

    namespace: str
    metric_name: str
    statistics: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class InventoryConfig:
    """The receiver's table inventory: it always polls the deployment region of its own account."""

    extra_regions: tuple[str, ...]
    """Regions polled besides the deployment region, in every account."""
    roles: tuple[str, ...]
    """IAM roles the receiver assumes to poll other accounts."""
    interval_seconds: int
    tag_labels: tuple[str, ...]
    """Table tag keys the receiver turns into labels."""


@dataclass(frozen=True, slots=True)
class AlarmSettings:
    """The out-of-band alarms on the pipeline itself (stacks/alarms.py)."""

    data_freshness_minutes: int
    """DeliveryToHttpEndpoint.DataFreshness above this many minutes notifies."""
    evaluation_periods: int
    """Consecutive 5-minute periods a failure lasts before delivery, health and 5xx alarms notify."""
    target_5xx_threshold: int
    """Receiver 5xx answers per 5 minutes above which a period counts as failing."""


@dataclass(frozen=True, slots=True)
class ReceiverImage:
    """A prebuilt receiver image, instead of building receiver/Dockerfile at deploy."""

    uri: str
    ecr_repository_arn: str | None
    """The ECR repository's ARN when the image is in ECR (its pull is granted), else None."""
    ecr_repository_name: str | None
    tag_or_digest: str


@dataclass(frozen=True, slots=True)
class Settings:
    region: str
    domain_name: str
    """The receiver's DNS name; empty when only the metric stream is deployed."""
    hosted_zone_id: str | None
    hosted_zone_name: str | None
    certificate_arn: str | None
    dashboard_allowed_cidrs: tuple[str, ...]
    create_demo_table: bool
    retain_metrics: bool
    namespaces: tuple[str, ...]
    stream_all_metrics: bool
    include_linked_accounts_metrics: bool
    output_format: str
    additional_statistics: tuple[StatisticsConfig, ...]
    common_attributes: tuple[tuple[str, str], ...]
    buffering_interval_seconds: int
    buffering_size_mib: int
    retry_duration_seconds: int
    backup_retention_days: int
    log_retention_days: int
    min_tasks: int
    max_tasks: int
    task_cpu: int
    task_memory_mib: int
    cpu_architecture: str
    nat_gateways: int
    container_insights: bool
    shutdown_timeout_seconds: int
    inventory: InventoryConfig | None
    """None: the inventory is off and the receiver gets no inventory permissions."""
    receiver_endpoint_url: str | None
    """A receiver run elsewhere: deploy only the metric stream, delivering here."""
    access_key_secret_arn: str | None
    """With receiver_endpoint_url: the secret holding that receiver's access key."""
    receiver_image: ReceiverImage | None
    alarms: AlarmSettings
    nag: bool

    @property
    def stream_only(self) -> bool:
        """Only the metric stream, Firehose, the backup bucket and the alarms: no VPC, ALB or tasks."""
        return self.receiver_endpoint_url is not None

    @property
    def endpoint_url(self) -> str:
        """Where Firehose delivers: the given receiver, or SkyWalking's path on the receiver's domain."""
        if self.receiver_endpoint_url is not None:
            return self.receiver_endpoint_url
        return f"https://{self.domain_name}/aws/firehose/metrics"

    @property
    def has_hosted_zone(self) -> bool:
        return self.hosted_zone_id is not None


def settings_from_context(context: Callable[[str], Any], default_region: str | None = None) -> Settings:
    """Read and check every setting; ``context`` is ``app.node.try_get_context``.

    ``default_region`` (the CLI's CDK_DEFAULT_REGION) is used when the ``region`` key is empty:
    the CLI sets it from AWS_REGION or AWS_DEFAULT_REGION, else the profile's region, else the EC2
    instance's, else us-east-1 (docs/deploying.md says so).
    """
    read = _Reader(context)
    region = read.text("region") or (default_region or "")
    if not region:
        raise SettingsError(
            "region is not set and the AWS profile names none; put the region to deploy to, e.g. -c region=eu-west-1"
        )
    if not _REGION.fullmatch(region):
        raise SettingsError(f"region {region!r} is not an AWS region name; put one such as eu-west-1")

    endpoint_url, secret_arn = _stream_only(read, region)
    if endpoint_url is not None:
        _refuse_receiver_settings(read)
        domain_name, zone_id, zone_name, certificate_arn = "", None, None, None
    else:
        domain_name = _domain_name(read.text("domainName"))
        zone_id, zone_name = _hosted_zone(read.text("hostedZoneId"), read.text("hostedZoneName"), domain_name)
        certificate_arn = _certificate_arn(read.text("certificateArn"), region)
        if zone_id is None and certificate_arn is None:
            raise SettingsError(
                "hostedZoneId and hostedZoneName are not set and neither is certificateArn; put the Route 53 zone "
                "that holds domainName (for a DNS-validated certificate) or the ARN of an issued ACM certificate"
            )

    output_format = read.choice("outputFormat", OUTPUT_FORMATS)
    namespaces = _namespaces(read.string_list("namespaces"))
    min_tasks = read.integer("minTasks", 2, 100)
    task_cpu = read.integer("taskCpu", 256, 16384)
    shutdown = read.integer("shutdownTimeoutSeconds", 5, 90)
    buffering_interval = read.integer("bufferingIntervalSeconds", 0, 900)
    return Settings(
        region=region,
        domain_name=domain_name,
        hosted_zone_id=zone_id,
        hosted_zone_name=zone_name,
        certificate_arn=certificate_arn,
        dashboard_allowed_cidrs=_cidrs(read.string_list("dashboardAllowedCidrs")),
        create_demo_table=read.flag("createDemoTable"),
        retain_metrics=read.flag("retainMetrics"),
        namespaces=namespaces,
        stream_all_metrics=read.flag("streamAllMetrics"),
        include_linked_accounts_metrics=read.flag("includeLinkedAccountsMetrics"),
        output_format=output_format,
        additional_statistics=_statistics(read.json("additionalStatistics"), namespaces, output_format),
        common_attributes=_common_attributes(read.json("commonAttributes")),
        buffering_interval_seconds=buffering_interval,
        buffering_size_mib=read.integer("bufferingSizeMiB", 1, 64),
        retry_duration_seconds=read.integer("retryDurationSeconds", 0, 7200),
        backup_retention_days=read.integer("backupRetentionDays", 1, 3650),
        log_retention_days=read.choice("logRetentionDays", LOG_RETENTION_DAYS),
        min_tasks=min_tasks,
        max_tasks=read.integer("maxTasks", min_tasks, 100, lower_bound_name="minTasks"),
        task_cpu=_task_cpu(task_cpu),
        task_memory_mib=_task_memory(read.integer("taskMemoryMiB", 512, 122880), task_cpu),
        cpu_architecture=read.choice("cpuArchitecture", CPU_ARCHITECTURES),
        nat_gateways=read.integer("natGateways", 0, 2),
        container_insights=read.flag("containerInsights"),
        shutdown_timeout_seconds=shutdown,
        inventory=_inventory(read, region),
        receiver_endpoint_url=endpoint_url,
        access_key_secret_arn=secret_arn,
        receiver_image=_receiver_image(read.text("receiverImage"), region),
        alarms=_alarms(read, buffering_interval),
        nag=read.flag("nag"),
    )


class _Reader:
    """Typed access to context values, falling back to DEFAULTS for absent or empty ones."""

    def __init__(self, context: Callable[[str], Any]) -> None:
        self._context = context

    def raw(self, key: str) -> Any:
        value = self._context(key)
        return DEFAULTS[key] if value is None or value == "" else value

    def text(self, key: str) -> str:
        value = self.raw(key)
        if not isinstance(value, str):
            raise SettingsError(f"{key} must be a string, not {json.dumps(value)}")
        return value.strip()

    def flag(self, key: str) -> bool:
        value = self.raw(key)
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise SettingsError(f"{key} must be true or false, not {value!r}")

    def integer(self, key: str, low: int, high: int, lower_bound_name: str | None = None) -> int:
        value = self.raw(key)
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
            number = int(value)
        if number is None or not low <= number <= high:
            floor = f"{lower_bound_name} ({low})" if lower_bound_name else str(low)
            raise SettingsError(f"{key} must be a whole number from {floor} to {high}, not {value!r}")
        return number

    def choice(self, key: str, allowed: tuple[Any, ...]) -> Any:
        value = self.raw(key)
        if isinstance(allowed[0], int) and isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if value not in allowed or isinstance(value, bool):
            listed = ", ".join(str(a) for a in allowed)
            raise SettingsError(f"{key} must be one of {listed}, not {value!r}")
        return value

    def json(self, key: str) -> Any:
        value = self.raw(key)
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                raise SettingsError(
                    f"{key} is not valid JSON; put it as in cdk.json, e.g. {json.dumps(DEFAULTS[key])}"
                ) from None
        return value

    def string_list(self, key: str) -> tuple[str, ...]:
        """A JSON list of strings, or (from -c) a comma-separated string."""
        value = self.raw(key)
        if isinstance(value, str):
            text = value.strip()
            value = self.json(key) if text.startswith("[") else [part for part in text.split(",") if part.strip()]
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise SettingsError(f"{key} must be a list of strings, e.g. {json.dumps(DEFAULTS[key] or ['a', 'b'])}")
        return tuple(item.strip() for item in value)


def _stream_only(read: _Reader, region: str) -> tuple[str | None, str | None]:
    """receiverEndpointUrl and accessKeySecretArn: both (only the metric stream) or neither."""
    url = read.text("receiverEndpointUrl")
    secret = read.text("accessKeySecretArn")
    if not url and not secret:
        return None, None
    if not url or not secret:
        given, missing = (
            ("accessKeySecretArn", "receiverEndpointUrl") if secret else ("receiverEndpointUrl", "accessKeySecretArn")
        )
        raise SettingsError(
            f"{given} is set but {missing} is not; the metric stream alone needs both, the receiver's URL and "
            "the secret holding its access key, so give both or neither"
        )
    return _endpoint_url(url), _secret_arn(secret, region)


def _endpoint_url(text: str) -> str:
    shape = "put the receiver's full HTTPS URL, such as https://metrics.example.com/aws/firehose/metrics"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise SettingsError(f"receiverEndpointUrl {text!r} is not a URL; {shape}") from None
    if parts.scheme != "https":
        raise SettingsError(f"receiverEndpointUrl {text!r} is not https; Firehose delivers only over HTTPS, so {shape}")
    host = (parts.hostname or "").rstrip(".")
    labels = host.split(".")
    if len(labels) < 2 or not all(_HOSTNAME_LABEL.fullmatch(label) for label in labels) or "@" in parts.netloc:
        raise SettingsError(f"receiverEndpointUrl {text!r} names no DNS host; {shape}")
    if port not in (None, 443):
        raise SettingsError(
            f"receiverEndpointUrl {text!r} uses port {port}, but Firehose delivers only to port 443; {shape}"
        )
    if parts.path in ("", "/") or parts.fragment:
        raise SettingsError(f"receiverEndpointUrl {text!r} has no path (or has a #fragment); {shape}")
    if len(text) > MAX_ENDPOINT_URL_LENGTH:
        raise SettingsError(
            f"receiverEndpointUrl is {len(text)} characters long, but Firehose takes at most "
            f"{MAX_ENDPOINT_URL_LENGTH}; put a shorter URL"
        )
    return text


def _secret_arn(text: str, region: str) -> str:
    match = _SECRET_ARN.fullmatch(text)
    if match is None:
        raise SettingsError(
            f"accessKeySecretArn {text!r} is not a Secrets Manager secret's complete ARN; put the ARN the console "
            "shows, such as arn:aws:secretsmanager:eu-west-1:123456789012:secret:firehose-key-AbCdEf"
        )
    if match["region"] != region:
        raise SettingsError(
            f"accessKeySecretArn is in {match['region']} but the stacks deploy to {region}; Firehose reads only a "
            f"secret of its own region, so put one from {region}"
        )
    return text


# Settings that belong to the receiver stack; with receiverEndpointUrl they would do nothing.
_RECEIVER_ONLY = (
    "domainName",
    "hostedZoneId",
    "hostedZoneName",
    "certificateArn",
    "dashboardAllowedCidrs",
    "receiverImage",
)


def _refuse_receiver_settings(read: _Reader) -> None:
    for key in _RECEIVER_ONLY:
        if read.string_list(key) if isinstance(DEFAULTS[key], list) else read.text(key):
            raise SettingsError(
                f"{key} is set but receiverEndpointUrl deploys only the metric stream, for a receiver run elsewhere; "
                f"remove {key}, or remove receiverEndpointUrl and accessKeySecretArn to deploy the receiver too"
            )


def _receiver_image(text: str, region: str) -> ReceiverImage | None:
    if not text:
        return None
    ecr = _ECR_IMAGE.fullmatch(text)
    if ecr is not None:
        partition = _partition(ecr["region"])
        arn = f"arn:{partition}:ecr:{ecr['region']}:{ecr['account']}:repository/{ecr['repository']}"
        return ReceiverImage(text, arn, ecr["repository"], ecr["tag"] or ecr["digest"])
    other = _REGISTRY_IMAGE.fullmatch(text)
    if other is None or ".dkr.ecr." in text:
        raise SettingsError(
            f"receiverImage {text!r} is not an image reference with a tag or digest; put one such as "
            f"123456789012.dkr.ecr.{region}.amazonaws.com/dynamodb-metric-stream-receiver:1.4.0 or "
            "ghcr.io/example/receiver@sha256:<64 hex digits>"
        )
    return ReceiverImage(text, None, None, other["tag"] or other["digest"])


def _alarms(read: _Reader, buffering_interval_seconds: int) -> AlarmSettings:
    freshness = read.integer("alarmDataFreshnessMinutes", *ALARM_DATA_FRESHNESS_MINUTES)
    if freshness * 60 <= buffering_interval_seconds:
        raise SettingsError(
            f"alarmDataFreshnessMinutes ({freshness}) is not longer than bufferingIntervalSeconds "
            f"({buffering_interval_seconds} s), so every full buffer would fire it; put at least "
            f"{buffering_interval_seconds // 60 + 1}"
        )
    return AlarmSettings(
        data_freshness_minutes=freshness,
        evaluation_periods=read.integer("alarmEvaluationPeriods", *ALARM_EVALUATION_PERIODS),
        target_5xx_threshold=read.integer("alarmTarget5xxThreshold", 0, 1_000_000),
    )


def _domain_name(text: str) -> str:
    if not text:
        raise SettingsError(
            "domainName is not set; put the DNS name Firehose will deliver to, e.g. -c domainName=metrics.example.com"
        )
    name = text.lower().rstrip(".")
    labels = name.split(".")
    if len(name) > 253 or len(labels) < 2 or not all(_HOSTNAME_LABEL.fullmatch(label) for label in labels):
        raise SettingsError(f"domainName {text!r} is not a DNS name; put one such as metrics.example.com")
    return name


def _hosted_zone(zone_id: str, zone_name: str, domain_name: str) -> tuple[str | None, str | None]:
    if not zone_id and not zone_name:
        return None, None
    if not zone_id or not zone_name:
        missing = "hostedZoneId" if not zone_id else "hostedZoneName"
        raise SettingsError(
            f"{missing} is not set; hostedZoneId and hostedZoneName go together, so give both or neither"
        )
    zone_id = zone_id.removeprefix("/hostedzone/")
    if not _ZONE_ID.fullmatch(zone_id):
        raise SettingsError(
            f"hostedZoneId {zone_id!r} is not a Route 53 zone id; put one such as Z0123456789ABCDEFGHIJ"
        )
    name = zone_name.lower().rstrip(".")
    if domain_name != name and not domain_name.endswith("." + name):
        raise SettingsError(
            f"domainName {domain_name!r} is not inside hostedZoneName {name!r}; put the zone that holds the domain"
        )
    return zone_id, name


def _certificate_arn(text: str, region: str) -> str | None:
    if not text:
        return None
    match = _CERTIFICATE_ARN.fullmatch(text)
    if match is None:
        raise SettingsError(
            f"certificateArn {text!r} is not an ACM certificate ARN; put one such as "
            "arn:aws:acm:eu-west-1:123456789012:certificate/0a1b2c3d-..."
        )
    if match["region"] != region:
        raise SettingsError(
            f"certificateArn is in {match['region']} but the stacks deploy to {region}; "
            "the load balancer needs a certificate from its own region"
        )
    return text


SHORTEST_DASHBOARD_PREFIX = {4: 8, 6: 32}
"""The widest network dashboardAllowedCidrs takes, by IP version: a /8 is an ISP's or a
large organisation's block; anything wider (0.0.0.0/1 and 128.0.0.0/1 together are all of
IPv4) opens the unauthenticated pages to the internet."""


def _cidrs(values: tuple[str, ...]) -> tuple[str, ...]:
    if len(values) > MAX_DASHBOARD_CIDRS:
        raise SettingsError(f"dashboardAllowedCidrs lists {len(values)} networks; put at most {MAX_DASHBOARD_CIDRS}")
    cidrs: list[str] = []
    for value in values:
        try:
            network = ipaddress.ip_network(value, strict=True)
        except ValueError:
            raise SettingsError(
                f"dashboardAllowedCidrs entry {value!r} is not a network in CIDR form; put one such as 203.0.113.0/24"
            ) from None
        # Checked before the IPv6 refusal, so "::/0" is named for what it would do.
        shortest = SHORTEST_DASHBOARD_PREFIX[network.version]
        if network.prefixlen < shortest:
            raise SettingsError(
                f"dashboardAllowedCidrs entry {value!r} is wider than /{shortest} and would open the unauthenticated "
                "dashboard, API and /metrics to a large part of the internet (two /1 networks are all of it); "
                "list only your own networks"
            )
        if network.version != 4:
            raise SettingsError(
                f"dashboardAllowedCidrs entry {value!r} is IPv6, but the load balancer has only IPv4 addresses; "
                "list IPv4 networks"
            )
        if str(network) in cidrs:
            raise SettingsError(f"dashboardAllowedCidrs lists {value!r} twice; list each network once")
        cidrs.append(str(network))
    return tuple(cidrs)


def _namespaces(values: tuple[str, ...]) -> tuple[str, ...]:
    if not values:
        raise SettingsError('namespaces is empty; list the CloudWatch namespaces to stream, e.g. ["AWS/DynamoDB"]')
    for value in values:
        if not 1 <= len(value) <= 255 or value.startswith(":"):
            raise SettingsError(
                f"namespaces entry {value!r} is not a CloudWatch namespace; put one such as AWS/DynamoDB"
            )
        if value.startswith("Receiver/"):
            raise SettingsError(
                f"namespaces entry {value!r} is made by the receiver itself, not by CloudWatch, so no stream "
                "can carry it; remove it"
            )
    if len(set(values)) != len(values):
        raise SettingsError("namespaces lists a namespace twice; list each once")
    return values


def _statistics(value: Any, namespaces: tuple[str, ...], output_format: str) -> tuple[StatisticsConfig, ...]:
    shape = 'a list of {"namespace": ..., "metricName": ..., "statistics": ["p99", ...]} objects'
    if not isinstance(value, list):
        raise SettingsError(f"additionalStatistics must be {shape}")
    configs: list[StatisticsConfig] = []
    for entry in value:
        if (
            not isinstance(entry, Mapping)
            or set(entry) != {"namespace", "metricName", "statistics"}
            or not isinstance(entry["namespace"], str)
            or not isinstance(entry["metricName"], str)
            or not 1 <= len(entry["metricName"]) <= 255
            or not isinstance(entry["statistics"], list)
            or not entry["statistics"]
            or not all(isinstance(s, str) for s in entry["statistics"])
        ):
            raise SettingsError(
                f"additionalStatistics entry {json.dumps(entry)} is not of the form; it must be {shape}"
            )
        if entry["namespace"] not in namespaces:
            raise SettingsError(
                f"additionalStatistics names namespace {entry['namespace']!r}, which namespaces does not stream; "
                "add it to namespaces or remove the entry"
            )
        for statistic in entry["statistics"]:
            _check_statistic(statistic, output_format)
        if len(set(entry["statistics"])) > MAX_ADDITIONAL_STATISTICS:
            raise SettingsError(
                f"additionalStatistics lists {len(set(entry['statistics']))} statistics for {entry['metricName']}, "
                f"but CloudFormation takes at most {MAX_ADDITIONAL_STATISTICS} per metric; list fewer"
            )
        config = StatisticsConfig(entry["namespace"], entry["metricName"], tuple(entry["statistics"]))
        if any((c.namespace, c.metric_name) == (config.namespace, config.metric_name) for c in configs):
            raise SettingsError(
                f"additionalStatistics lists {config.namespace} {config.metric_name} twice; "
                "merge its statistics into one entry"
            )
        configs.append(config)
    return tuple(configs)


def _check_statistic(statistic: str, output_format: str) -> None:
    if _PERCENTILE.fullmatch(statistic):
        return
    if _JSON_ONLY_STATISTIC.fullmatch(statistic):
        if output_format == "json":
            return
        raise SettingsError(
            f"additionalStatistics statistic {statistic!r} is streamed only in outputFormat json; "
            f"{output_format} carries percentiles such as p99"
        )
    raise SettingsError(
        f"additionalStatistics statistic {statistic!r} is not a CloudWatch statistic; put one such as p99"
    )


def _common_attributes(value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise SettingsError('commonAttributes must be an object of strings, e.g. {"deployment": "production"}')
    if len(value) > MAX_COMMON_ATTRIBUTES:
        raise SettingsError(
            f"commonAttributes has {len(value)} entries, but Firehose sends at most {MAX_COMMON_ATTRIBUTES}; "
            "keep the ones the receiver needs"
        )
    for name, text in value.items():
        if not 1 <= len(name) <= 256 or len(text) > 1024:
            raise SettingsError(
                f"commonAttributes entry {name!r} is too long; names are 1 to 256 characters and values at most 1024"
            )
    return tuple(sorted(value.items()))


def _inventory(read: _Reader, region: str) -> InventoryConfig | None:
    regions = read.string_list("inventoryRegions")
    roles = read.string_list("inventoryRoles")
    interval = read.integer("inventoryIntervalSeconds", *INVENTORY_INTERVAL_SECONDS)
    tag_labels = read.string_list("inventoryTagLabels")
    if not read.flag("inventory"):
        given = {
            "inventoryRegions": bool(regions),
            "inventoryRoles": bool(roles),
            "inventoryIntervalSeconds": interval != DEFAULTS["inventoryIntervalSeconds"],
            "inventoryTagLabels": bool(tag_labels),
        }
        for key, is_set in given.items():
            if is_set:
                raise SettingsError(f"{key} is set but inventory is false; remove {key} or set inventory=true")
        return None
    partition = _partition(region)
    for value in regions:
        if not _REGION.fullmatch(value):
            raise SettingsError(
                f"inventoryRegions entry {value!r} is not an AWS region name; put regions such as eu-west-1,us-west-2"
            )
        if _partition(value) != partition:
            raise SettingsError(
                f"inventoryRegions entry {value!r} is in partition {_partition(value)}, not in {partition} like "
                f"{region}; the receiver's credentials reach only their own partition, so list regions of {partition}"
            )
        if value == region:
            raise SettingsError(
                f"inventoryRegions lists {value!r}, the region the stacks deploy to, which the inventory always "
                "polls; list only the other regions"
            )
    for value in roles:
        match = _ROLE_ARN.fullmatch(value)
        if match is None:
            raise SettingsError(
                f"inventoryRoles entry {value!r} is not an IAM role ARN (without commas); put one such as "
                "arn:aws:iam::123456789012:role/DynamoDbInventoryReader"
            )
        if match["partition"] != partition:
            raise SettingsError(
                f"inventoryRoles entry {value!r} is in partition {match['partition']} but the stacks deploy to "
                f"{partition} ({region}); a role can be assumed only from its own partition, "
                f"so list roles of {partition}"
            )
    for value in tag_labels:
        if not _TAG_KEY.fullmatch(value):
            raise SettingsError(
                f"inventoryTagLabels entry {value!r} is not a tag key; put keys of 1 to 128 characters "
                "without commas, e.g. team,env"
            )
    for key, values in (("inventoryRegions", regions), ("inventoryRoles", roles), ("inventoryTagLabels", tag_labels)):
        twice = next((value for index, value in enumerate(values) if value in values[:index]), None)
        if twice is not None:
            raise SettingsError(f"{key} lists {twice!r} twice; list each once")
    return InventoryConfig(regions, roles, interval, tag_labels)


# Region name prefixes of the partitions other than aws (the commercial regions).
_PARTITION_PREFIXES = (
    ("cn-", "aws-cn"),
    ("us-gov-", "aws-us-gov"),
    ("us-iso-", "aws-iso"),
    ("us-isob-", "aws-iso-b"),
    ("eu-isoe-", "aws-iso-e"),
    ("us-isof-", "aws-iso-f"),
)


def _partition(region: str) -> str:
    return next((partition for prefix, partition in _PARTITION_PREFIXES if region.startswith(prefix)), "aws")


def _task_cpu(cpu: int) -> int:
    if cpu not in FARGATE_MEMORY:
        raise SettingsError(f"taskCpu must be one of {', '.join(map(str, FARGATE_MEMORY))} (CPU units), not {cpu}")
    return cpu


def _task_memory(memory: int, cpu: int) -> int:
    allowed = FARGATE_MEMORY[cpu]
    if memory not in allowed:
        if len(allowed) <= 4:
            sizes = ", ".join(map(str, allowed[:-1])) + f" or {allowed[-1]}"
        else:
            sizes = f"{allowed[0]} to {allowed[-1]} in steps of {allowed[1] - allowed[0]}"
        raise SettingsError(f"taskMemoryMiB {memory} does not fit taskCpu {cpu}; put {sizes}")
    return memory
