"""The offline checks: `cdk synth` through the pinned CLI, CloudFormation validation, cfn-lint, cdk-nag."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.stacks.synth import DEMO_TABLE, METRIC_STREAM, RECEIVER, Assembly, CliRun, InProcessRun, cdk_json_context

CFN_LINT = Path(sys.executable).parent / "cfn-lint"


def violations(report: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (rule["ruleName"], construct["constructPath"])
        for plugin in report["pluginReports"]
        for rule in plugin.get("violations", [])
        for construct in rule["violatingConstructs"]
    ]


def test_pinned_cli_synthesizes_every_stack(cli_run: CliRun) -> None:
    assert cli_run.returncode == 0, cli_run.output
    assert [p.name for p in cli_run.assembly.templates()] == [
        f"{DEMO_TABLE}.template.json",
        f"{METRIC_STREAM}.template.json",
        f"{RECEIVER}.template.json",
    ]


def test_cloudformation_validation_fails_synthesis_on_findings() -> None:
    # The CDK validates every template against CloudFormation's schema and rules during
    # synthesis; with this flag a finding fails `cdk synth` instead of printing a warning.
    assert cdk_json_context()["@aws-cdk/core:validateAgainstDefaultRules"] is True


def test_cloudformation_validation_finds_nothing(default: Assembly) -> None:
    assert violations(default.validation_report()) == []


def test_cfn_lint_finds_nothing_in_any_template(
    default: Assembly, alternative: Assembly, inventory_off: Assembly, stream_only: Assembly, prebuilt_image: Assembly
) -> None:
    assemblies = (default, alternative, inventory_off, stream_only, prebuilt_image)
    # Each distinct template once (the DemoTable stack is the same in most variants).
    distinct = {path.read_text(): path for assembly in assemblies for path in assembly.templates()}
    templates = [str(path) for path in distinct.values()]
    done = subprocess.run(
        [str(CFN_LINT), "--format", "json", *templates], capture_output=True, text=True, timeout=300, check=False
    )
    findings = json.loads(done.stdout or "[]")
    assert [(f["Rule"]["Id"], f["Filename"], f["Message"]) for f in findings] == [], done.stderr


def test_cdk_nag_accepts_the_default_deployment(default_nag_run: InProcessRun) -> None:
    assert default_nag_run.error is None, default_nag_run.error
    assert violations(default_nag_run.assembly.validation_report()) == []


def test_cdk_nag_accepts_every_non_default_setting(alternative_run: InProcessRun) -> None:
    assert alternative_run.error is None, alternative_run.error
    assert violations(alternative_run.assembly.validation_report()) == []


def test_cdk_nag_accepts_the_deployment_without_inventory(inventory_off_run: InProcessRun) -> None:
    assert inventory_off_run.error is None, inventory_off_run.error
    assert violations(inventory_off_run.assembly.validation_report()) == []


def test_cdk_nag_accepts_the_metric_stream_alone(stream_only_run: InProcessRun) -> None:
    assert stream_only_run.error is None, stream_only_run.error
    assert violations(stream_only_run.assembly.validation_report()) == []


def test_cdk_nag_accepts_a_prebuilt_image(prebuilt_image_run: InProcessRun) -> None:
    assert prebuilt_image_run.error is None, prebuilt_image_run.error
    assert violations(prebuilt_image_run.assembly.validation_report()) == []


def test_the_metric_stream_alone_has_the_stream_and_the_demo_table_stacks(stream_only: Assembly) -> None:
    assert [p.name for p in stream_only.templates()] == [
        f"{DEMO_TABLE}.template.json",
        f"{METRIC_STREAM}.template.json",
    ]


def acknowledgements(assembly: Assembly) -> set[tuple[str, str]]:
    """This app's (rule id, reason) pairs, as cdk-nag copied them onto every resource under the
    acknowledged construct. (aws-cdk-lib's own acknowledgements of CloudFormation-Validate rules on
    its constructs are copied too; they are not this app's.)"""
    return {
        (rule["id"], rule["reason"])
        for path in assembly.templates()
        for resource in assembly.template(path.name.removesuffix(".template.json"))["Resources"].values()
        for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
        if rule["id"].startswith("AwsSolutions-")
    }


def test_cdk_nag_ran_and_recorded_each_acknowledgement(default_nag_run: InProcessRun) -> None:
    # cdk-nag writes what it acknowledged into the templates; none means it did not run.
    ids = sorted(rule for rule, _ in acknowledgements(default_nag_run.assembly))
    assert [i.split("[")[0] for i in ids] == [
        "AwsSolutions-EC23",
        "AwsSolutions-ECS2",
        "AwsSolutions-ECS4",
        # Execution role ("*"), backup bucket objects, inventory ("*", table/*, Contributor Insights rules).
        "AwsSolutions-IAM5",
        "AwsSolutions-IAM5",
        "AwsSolutions-IAM5",
        "AwsSolutions-IAM5",
        "AwsSolutions-IAM5",
        "AwsSolutions-S1",
        "AwsSolutions-SMG4",
    ]


def test_every_acknowledgement_gives_its_own_specific_reason(
    default_nag_run: InProcessRun, alternative_run: InProcessRun, stream_only_run: InProcessRun
) -> None:
    given = set().union(
        *(acknowledgements(run.assembly) for run in (default_nag_run, alternative_run, stream_only_run))
    )
    reasons = {reason for _, reason in given}
    assert [r for r in reasons if len(r.split()) < 20] == []
    # No reason is copied between acknowledgements. One finding may be acknowledged on two
    # constructs, each for its own reason (IAM5[Resource::*]: execution role, inventory).
    assert len(reasons) == len(given)
