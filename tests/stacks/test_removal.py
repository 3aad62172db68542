"""`cdk destroy` leaves nothing behind, except the metrics table when retainMetrics asks for it."""

from __future__ import annotations

from typing import Any

from tests.stacks.synth import RECEIVER, Assembly

STATEFUL = (
    "AWS::DynamoDB::Table",
    "AWS::S3::Bucket",
    "AWS::Logs::LogGroup",
    "AWS::Logs::LogStream",
    "AWS::SecretsManager::Secret",
)


def all_resources(assembly: Assembly) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (path.name.removesuffix(".template.json"), name): resource
        for path in assembly.templates()
        for name, resource in assembly.template(path.name.removesuffix(".template.json"))["Resources"].items()
    }


def kept(resource: dict[str, Any]) -> bool:
    return (
        resource.get("DeletionPolicy", "Delete") != "Delete"
        or resource.get("UpdateReplacePolicy", "Delete") != "Delete"
    )


def test_every_stateful_kind_is_present(default: Assembly) -> None:
    # Guards the test below against passing on templates that lost their stateful resources.
    kinds = {resource["Type"] for resource in all_resources(default).values()}
    assert set(STATEFUL) <= kinds


def test_nothing_is_kept_on_destroy_by_default(default: Assembly) -> None:
    assert [key for key, resource in all_resources(default).items() if kept(resource)] == []


def test_retain_metrics_keeps_only_the_metrics_table(alternative: Assembly) -> None:
    retained = [(key, r["Type"]) for key, r in all_resources(alternative).items() if kept(r)]
    (table,) = [
        k for k, v in alternative.template(RECEIVER)["Resources"].items() if v["Type"] == "AWS::DynamoDB::Table"
    ]
    assert retained == [((RECEIVER, table), "AWS::DynamoDB::Table")]


def test_every_bucket_is_emptied_before_it_is_deleted(default: Assembly) -> None:
    resources = all_resources(default)
    buckets = {key for key, r in resources.items() if r["Type"] == "AWS::S3::Bucket"}
    emptied = {
        (stack, r["Properties"]["BucketName"]["Ref"])
        for (stack, _), r in resources.items()
        if r["Type"] == "Custom::S3AutoDeleteObjects"
    }
    assert buckets == emptied


def test_no_table_has_deletion_protection(default: Assembly, alternative: Assembly) -> None:
    tables = [
        r
        for assembly in (default, alternative)
        for r in all_resources(assembly).values()
        if r["Type"] == "AWS::DynamoDB::Table"
    ]
    assert [t["Properties"].get("DeletionProtectionEnabled", False) for t in tables] == [False] * len(tables)


def test_every_lambda_function_logs_to_a_log_group_with_retention_gone_on_destroy(
    default: Assembly, alternative: Assembly, stream_only: Assembly
) -> None:
    # aws-cdk-lib's own providers (bucket emptying, default security group) included.
    for assembly, days in ((default, 30), (alternative, 90), (stream_only, 30)):
        resources = all_resources(assembly)
        functions = {key: r for key, r in resources.items() if r["Type"] == "AWS::Lambda::Function"}
        assert functions
        for (stack, _), function in functions.items():
            group = resources[(stack, function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"])]
            assert group["Type"] == "AWS::Logs::LogGroup"
            assert group["Properties"]["RetentionInDays"] == days
            assert not kept(group)


def test_the_alarm_topic_key_is_deleted_on_destroy(default: Assembly) -> None:
    keys = [r for r in all_resources(default).values() if r["Type"] == "AWS::KMS::Key"]
    assert [(k["DeletionPolicy"], k["Properties"]["PendingWindowInDays"]) for k in keys] == [("Delete", 7)]
