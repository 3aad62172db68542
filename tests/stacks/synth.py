"""Synthesizing the CDK app for the stack tests: through the pinned CLI, or in this process.

The app variants the tests need are each synthesized once per session (see conftest.py).
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aws_cdk.assertions import Template

REPO = Path(__file__).resolve().parents[2]
CDK_CLI = REPO / "node_modules" / ".bin" / "cdk"

RECEIVER = "DynamoDbMonitoring-Receiver"
METRIC_STREAM = "DynamoDbMonitoring-MetricStream"
DEMO_TABLE = "DynamoDbMonitoring-DemoTable"

DOMAIN = "metrics.example.com"
ZONE_ID = "Z0123456789ABCDEFGHIJ"
CERTIFICATE_ARN = "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"
DASHBOARD_CIDRS = ["203.0.113.0/24", "198.51.100.7/32"]
INVENTORY_REGIONS = ["eu-west-1", "ap-southeast-2"]
INVENTORY_ROLES = [
    "arn:aws:iam::111122223333:role/DynamoDbInventoryReader",
    "arn:aws:iam::444455556666:role/ops/Reader",
]
INVENTORY_TAG_LABELS = ["team", "env"]
# A receiver run elsewhere (metric stream only) and a prebuilt image.
OTHER_RECEIVER_URL = "https://receiver.example.org/aws/firehose/metrics"
OTHER_RECEIVER_SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:firehose-access-key-AbCdEf"
PREBUILT_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/dynamodb-metric-stream-receiver:1.4.0"

# What a user must add to cdk.json's defaults; everything else stays at its default.
BASE_CONTEXT: dict[str, Any] = {
    "region": "us-east-1",
    "domainName": DOMAIN,
    "hostedZoneId": ZONE_ID,
    "hostedZoneName": "example.com",
}
# Every non-default choice at once, so one more synthesis covers them all.
ALTERNATIVE_CONTEXT: dict[str, Any] = {
    "region": "us-east-1",
    "domainName": DOMAIN,
    "certificateArn": CERTIFICATE_ARN,
    "dashboardAllowedCidrs": DASHBOARD_CIDRS,
    "createDemoTable": False,
    "retainMetrics": True,
    "namespaces": ["AWS/DynamoDB", "AWS/Lambda"],
    "outputFormat": "json",
    "additionalStatistics": [
        {"namespace": "AWS/DynamoDB", "metricName": "SuccessfulRequestLatency", "statistics": ["p50", "p99", "tm90"]},
        {"namespace": "AWS/Lambda", "metricName": "Duration", "statistics": ["IQM"]},
    ],
    "natGateways": 1,
    "containerInsights": True,
    "cpuArchitecture": "ARM64",
    "taskCpu": 1024,
    "taskMemoryMiB": 2048,
    "minTasks": 3,
    "maxTasks": 6,
    "shutdownTimeoutSeconds": 45,
    "bufferingIntervalSeconds": 0,
    "bufferingSizeMiB": 4,
    "retryDurationSeconds": 7200,
    "backupRetentionDays": 7,
    "logRetentionDays": 90,
    "commonAttributes": {"deployment": "staging", "team": "data"},
    # The inventory with everything it takes (inventory=false is its own synthesis: conftest.py).
    "inventoryRegions": INVENTORY_REGIONS,
    "inventoryRoles": INVENTORY_ROLES,
    "inventoryIntervalSeconds": 900,
    "inventoryTagLabels": INVENTORY_TAG_LABELS,
    # The metric stream for a cross-account monitoring account, with every metric of each namespace.
    "includeLinkedAccountsMetrics": True,
    "streamAllMetrics": True,
    "alarmDataFreshnessMinutes": 30,
    "alarmEvaluationPeriods": 2,
    "alarmTarget5xxThreshold": 25,
}
# Only the metric stream, Firehose, the backup bucket and the alarms, for a receiver run elsewhere.
STREAM_ONLY_CONTEXT: dict[str, Any] = {
    "region": "us-east-1",
    "receiverEndpointUrl": OTHER_RECEIVER_URL,
    "accessKeySecretArn": OTHER_RECEIVER_SECRET_ARN,
}
# The default deployment with a prebuilt image from ECR instead of one built at deploy.
PREBUILT_IMAGE_CONTEXT: dict[str, Any] = {**BASE_CONTEXT, "receiverImage": PREBUILT_IMAGE}


def cdk_json_context() -> dict[str, Any]:
    return json.loads((REPO / "cdk.json").read_text())["context"]


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION"] = "20"
    env["CDK_DISABLE_CLI_TELEMETRY"] = "true"
    # Synthesis must not depend on the machine's AWS profile.
    env.pop("CDK_DEFAULT_REGION", None)
    env.pop("CDK_DEFAULT_ACCOUNT", None)
    return env


@dataclass(frozen=True)
class Assembly:
    """A synthesized cloud assembly directory."""

    directory: Path

    def template(self, stack: str) -> dict[str, Any]:
        return json.loads((self.directory / f"{stack}.template.json").read_text())

    def assertions(self, stack: str) -> Template:
        """aws_cdk.assertions over one stack's template (made once per assembly and stack)."""
        return _assertions(self.directory, stack)

    def has_stack(self, stack: str) -> bool:
        return (self.directory / f"{stack}.template.json").exists()

    def manifest(self) -> dict[str, Any]:
        return json.loads((self.directory / "manifest.json").read_text())

    def assets(self, stack: str) -> dict[str, Any]:
        return json.loads((self.directory / f"{stack}.assets.json").read_text())

    def validation_report(self) -> dict[str, Any]:
        path = self.directory / "validation-report.json"
        return json.loads(path.read_text()) if path.exists() else {"pluginReports": []}

    def templates(self) -> list[Path]:
        return sorted(self.directory.glob("*.template.json"))


@dataclass(frozen=True)
class CliRun:
    returncode: int
    output: str
    assembly: Assembly


def cli_synth(outdir: Path, context: dict[str, Any]) -> CliRun:
    """``cdk synth`` through the pinned CLI, with ``-c`` strings as a user types them."""
    flags = [arg for key, value in context.items() for arg in ("-c", f"{key}={_cli_value(value)}")]
    command = [str(CDK_CLI), "synth", "--quiet", "--no-notices", "-o", str(outdir), *flags]
    done = subprocess.run(command, cwd=REPO, env=child_env(), capture_output=True, text=True, timeout=600, check=False)
    return CliRun(done.returncode, done.stdout + done.stderr, Assembly(outdir))


@dataclass(frozen=True)
class InProcessRun:
    error: str | None
    assembly: Assembly


def in_process_synth(outdir: Path, context: dict[str, Any]) -> InProcessRun:
    """The app as app.py builds it, with cdk.json's context under ``context`` (as the CLI merges them)."""
    import aws_cdk as cdk

    from stacks.build import build_stacks
    from stacks.settings import settings_from_context

    os.environ["JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION"] = "20"
    app = cdk.App(context={**cdk_json_context(), **context}, outdir=str(outdir))
    build_stacks(app, settings_from_context(app.node.try_get_context))
    try:
        app.synth()
    except RuntimeError as error:  # jsii's wrapper around a failed validation (cdk-nag findings)
        return InProcessRun(str(error), Assembly(outdir))
    return InProcessRun(None, Assembly(outdir))


@functools.cache
def _assertions(directory: Path, stack: str) -> Template:
    from aws_cdk.assertions import Template

    return Template.from_json(json.loads((directory / f"{stack}.template.json").read_text()))


def _cli_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)
