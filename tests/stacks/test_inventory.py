"""The table inventory in the stacks: its settings, the receiver's RECEIVER_INVENTORY* environment,
and its read-only grant on the task role (exactly the actions it calls, on the narrowest resources).

Synthesized variants (conftest.py): ``default`` (the deployment region only), ``alternative``
(extra regions, roles, interval, tag labels) and ``inventory_off`` (``inventory=false``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stacks.alarm_topic import PUBLISH_KEY_ACTIONS
from stacks.inventory import ACCOUNT_ACTIONS, ASSUME_ROLE_ACTIONS, INSIGHT_RULE_ACTIONS, TABLE_ACTIONS
from stacks.metrics_store import RECEIVER_ACTIONS
from stacks.nag import _inventory_reason
from stacks.settings import InventoryConfig, Settings, SettingsError, settings_from_context
from tests.stacks.synth import (
    BASE_CONTEXT,
    INVENTORY_REGIONS,
    INVENTORY_ROLES,
    INVENTORY_TAG_LABELS,
    RECEIVER,
    Assembly,
)
from tests.stacks.test_app import run_app

REGION = BASE_CONTEXT["region"]
POLICY = "AWS::IAM::Policy"
INVENTORY_POLICY_PREFIX = "ReceiverInventoryPolicy"
# What the inventory calls that needs a permission (sts:GetCallerIdentity needs none).
CALLED = {
    "dynamodb:ListTables",
    "dynamodb:DescribeTable",
    "dynamodb:ListTagsOfResource",
    "dynamodb:DescribeLimits",
    "dynamodb:DescribeContinuousBackups",
    "dynamodb:DescribeContributorInsights",
    "dynamodb:DescribeTimeToLive",
    "cloudwatch:GetInsightRuleReport",
    "sts:AssumeRole",
}
# Writes and wider reads a mistake could let in; none may reach the task role.
NEVER = {
    "dynamodb:*",
    "dynamodb:DeleteTable",
    "dynamodb:UpdateTable",
    "dynamodb:CreateTable",
    "dynamodb:UpdateContributorInsights",
    "dynamodb:UpdateTimeToLive",
    "dynamodb:UpdateContinuousBackups",
    "dynamodb:TagResource",
    "dynamodb:Scan",
    "cloudwatch:*",
    "cloudwatch:PutMetricData",
    "cloudwatch:PutInsightRule",
    "cloudwatch:DeleteInsightRules",
    "sts:*",
    "sts:TagSession",
    "iam:PassRole",
    "*",
}


# -- helpers -------------------------------------------------------------------


def arn(service: str, region: str, resource: str) -> dict[str, Any]:
    """An ARN in the deploying account, as the template spells it (partition literal for the region)."""
    return {"Fn::Join": ["", [f"arn:aws:{service}:{region}:", {"Ref": "AWS::AccountId"}, f":{resource}"]]}


def table_arn(region: str) -> dict[str, Any]:
    return arn("dynamodb", region, "table/*")


def insight_rule_arn(region: str) -> dict[str, Any]:
    return arn("cloudwatch", region, "insight-rule/DynamoDBContributorInsights*")


def resources(assembly: Assembly, kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in assembly.template(RECEIVER)["Resources"].items() if v["Type"] == kind}


def task_role(assembly: Assembly) -> str:
    (task,) = resources(assembly, "AWS::ECS::TaskDefinition").values()
    return str(task["Properties"]["TaskRoleArn"]["Fn::GetAtt"][0])


def task_role_policies(assembly: Assembly) -> dict[str, dict[str, Any]]:
    role = {"Ref": task_role(assembly)}
    return {name: p for name, p in resources(assembly, POLICY).items() if role in p["Properties"]["Roles"]}


def inventory_policies(assembly: Assembly) -> dict[str, dict[str, Any]]:
    return {name: p for name, p in resources(assembly, POLICY).items() if name.startswith(INVENTORY_POLICY_PREFIX)}


def inventory_statements(assembly: Assembly) -> list[dict[str, Any]]:
    (policy,) = inventory_policies(assembly).values()
    return list(policy["Properties"]["PolicyDocument"]["Statement"])


def as_list(value: str | list[str]) -> list[str]:
    return value if isinstance(value, list) else [value]


def granted_actions(assembly: Assembly) -> set[str]:
    """Every action any policy of the task role allows (it has no managed policies)."""
    return {
        action
        for policy in task_role_policies(assembly).values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement["Effect"] == "Allow"
        for action in as_list(statement["Action"])
    }


def environment(assembly: Assembly) -> dict[str, Any]:
    (task,) = resources(assembly, "AWS::ECS::TaskDefinition").values()
    (container,) = task["Properties"]["ContainerDefinitions"]
    return {item["Name"]: item["Value"] for item in container["Environment"]}


def inventory_environment(assembly: Assembly) -> dict[str, Any]:
    return {k: v for k, v in environment(assembly).items() if k.startswith("RECEIVER_INVENTORY")}


def read(overrides: dict[str, Any]) -> Settings:
    context = {**BASE_CONTEXT, **overrides}
    return settings_from_context(context.get)


def error_of(overrides: dict[str, Any]) -> str:
    with pytest.raises(SettingsError) as caught:
        read(overrides)
    return str(caught.value)


# -- the actions ---------------------------------------------------------------


def test_the_grant_names_exactly_what_the_inventory_calls() -> None:
    granted = [*ACCOUNT_ACTIONS, *TABLE_ACTIONS, *INSIGHT_RULE_ACTIONS, *ASSUME_ROLE_ACTIONS]
    assert sorted(granted) == sorted(CALLED)
    assert not NEVER & set(granted)


def test_cdk_nag_accepts_no_other_inventory_wildcard() -> None:
    # Its acknowledgements name the reason per grant (stacks/nag.py); a new wildcard has none.
    with pytest.raises(ValueError, match="no reason"):
        _inventory_reason(["dynamodb:DeleteTable"], "arn:aws:dynamodb:us-east-1:<AWS::AccountId>:table/*")
    with pytest.raises(ValueError, match="no reason"):
        _inventory_reason(["dynamodb:Scan", "dynamodb:ListTables"], "*")


# -- default: the deployment region ----------------------------------------------


def test_default_turns_the_inventory_on_for_the_deployment_region(default: Assembly) -> None:
    assert inventory_environment(default) == {"RECEIVER_INVENTORY": REGION, "RECEIVER_INVENTORY_INTERVAL": "300"}


def read_only_statements(tables: object, insight_rules: object) -> list[dict[str, Any]]:
    """The inventory's three statements, with the given Resource of its table and rule statements."""
    return [
        {"Action": ["dynamodb:DescribeLimits", "dynamodb:ListTables"], "Effect": "Allow", "Resource": "*"},
        {
            "Action": [
                "dynamodb:DescribeContinuousBackups",
                "dynamodb:DescribeContributorInsights",
                "dynamodb:DescribeTable",
                "dynamodb:DescribeTimeToLive",
                "dynamodb:ListTagsOfResource",
            ],
            "Effect": "Allow",
            "Resource": tables,
        },
        {"Action": "cloudwatch:GetInsightRuleReport", "Effect": "Allow", "Resource": insight_rules},
    ]


def test_default_grant_is_exactly_the_read_only_inventory_actions(default: Assembly) -> None:
    assert inventory_statements(default) == read_only_statements(table_arn(REGION), insight_rule_arn(REGION))


def test_default_inventory_policy_belongs_to_the_task_role_alone(default: Assembly) -> None:
    (policy,) = inventory_policies(default).values()
    assert policy["Properties"]["Roles"] == [{"Ref": task_role(default)}]


def test_task_role_gets_no_action_beyond_the_store_alarms_and_inventory(default: Assembly) -> None:
    # The store's and the alarm topic's grants (test_receiver.py) plus the inventory's; no assume-role without roles.
    assert granted_actions(default) == {
        *RECEIVER_ACTIONS,
        "sns:Publish",
        *PUBLISH_KEY_ACTIONS,
        *(CALLED - {"sts:AssumeRole"}),
    }
    assert not NEVER & granted_actions(default)
    assert len(task_role_policies(default)) == 2


def test_tasks_start_after_the_inventory_policy(default: Assembly) -> None:
    (policy,) = inventory_policies(default)
    (service,) = resources(default, "AWS::ECS::Service").values()
    assert policy in service["DependsOn"]


def test_task_role_arn_is_a_stack_output(default: Assembly) -> None:
    assert default.template(RECEIVER)["Outputs"]["ReceiverTaskRoleArn"]["Value"] == {
        "Fn::GetAtt": [task_role(default), "Arn"]
    }


# -- extra regions, roles, interval, tag labels ----------------------------------


def test_every_inventory_setting_reaches_the_environment(alternative: Assembly) -> None:
    assert inventory_environment(alternative) == {
        "RECEIVER_INVENTORY": ",".join([REGION, *INVENTORY_REGIONS]),
        "RECEIVER_INVENTORY_ROLES": ",".join(INVENTORY_ROLES),
        "RECEIVER_INVENTORY_INTERVAL": "900",
        "RECEIVER_INVENTORY_TAG_LABELS": ",".join(INVENTORY_TAG_LABELS),
    }


def test_extra_regions_add_one_resource_each_and_roles_are_assumable(alternative: Assembly) -> None:
    regions = sorted([REGION, *INVENTORY_REGIONS])
    assert inventory_statements(alternative) == [
        *read_only_statements([table_arn(r) for r in regions], [insight_rule_arn(r) for r in regions]),
        {"Action": "sts:AssumeRole", "Effect": "Allow", "Resource": sorted(INVENTORY_ROLES)},
    ]


def test_roles_add_assume_role_and_nothing_else(alternative: Assembly) -> None:
    assert granted_actions(alternative) == {*RECEIVER_ACTIONS, "sns:Publish", *PUBLISH_KEY_ACTIONS, *CALLED}
    assert not NEVER & granted_actions(alternative)


# -- inventory=false --------------------------------------------------------------


def test_inventory_off_sets_no_environment(inventory_off: Assembly) -> None:
    assert inventory_environment(inventory_off) == {}


def test_inventory_off_grants_nothing_for_it(inventory_off: Assembly) -> None:
    assert inventory_policies(inventory_off) == {}
    assert granted_actions(inventory_off) == {*RECEIVER_ACTIONS, "sns:Publish", *PUBLISH_KEY_ACTIONS}


# -- settings ---------------------------------------------------------------------


def test_inventory_is_on_for_the_deployment_region_by_default() -> None:
    assert read({}).inventory == InventoryConfig(extra_regions=(), roles=(), interval_seconds=300, tag_labels=())


def test_inventory_false_turns_it_off() -> None:
    assert read({"inventory": "false"}).inventory is None


def test_inventory_lists_may_be_comma_separated() -> None:
    typed = {
        "inventoryRegions": "eu-west-1, ap-southeast-2",
        "inventoryRoles": ",".join(INVENTORY_ROLES),
        "inventoryIntervalSeconds": "900",
        "inventoryTagLabels": "team,env",
    }
    native = {
        "inventoryRegions": INVENTORY_REGIONS,
        "inventoryRoles": INVENTORY_ROLES,
        "inventoryIntervalSeconds": 900,
        "inventoryTagLabels": INVENTORY_TAG_LABELS,
    }
    assert read(typed) == read(native)
    assert read(typed).inventory == InventoryConfig(
        tuple(INVENTORY_REGIONS), tuple(INVENTORY_ROLES), 900, tuple(INVENTORY_TAG_LABELS)
    )


def test_role_paths_and_other_partitions_are_accepted() -> None:
    china = {"region": "cn-north-1", "hostedZoneId": "", "hostedZoneName": ""}
    china["certificateArn"] = "arn:aws-cn:acm:cn-north-1:123456789012:certificate/0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"
    settings = read(
        {**china, "inventoryRegions": "cn-northwest-1", "inventoryRoles": "arn:aws-cn:iam::123456789012:role/a/b"}
    )
    assert settings.inventory == InventoryConfig(
        ("cn-northwest-1",), ("arn:aws-cn:iam::123456789012:role/a/b",), 300, ()
    )


ROLE = INVENTORY_ROLES[0]

# (key the message must name, overrides, fragment of what to put)
ERRORS = {
    "inventory not a flag": ("inventory", {"inventory": "on"}, "must be true or false"),
    "region malformed": ("inventoryRegions", {"inventoryRegions": "Ireland"}, "put regions such as eu-west-1"),
    "region is the deployment region": (
        "inventoryRegions",
        {"inventoryRegions": "eu-west-1,us-east-1"},
        "list only the other regions",
    ),
    "region twice": ("inventoryRegions", {"inventoryRegions": "eu-west-1,eu-west-1"}, "list each once"),
    "region in another partition": ("inventoryRegions", {"inventoryRegions": "cn-north-1"}, "list regions of aws"),
    "regions not a list": ("inventoryRegions", {"inventoryRegions": {"eu": "eu-west-1"}}, "must be a list of strings"),
    "role not a role ARN": (
        "inventoryRoles",
        {"inventoryRoles": "arn:aws:iam::123456789012:user/alice"},
        "put one such as arn:aws:iam::123456789012:role/",
    ),
    "role with a short account": (
        "inventoryRoles",
        {"inventoryRoles": "arn:aws:iam::12345:role/Reader"},
        "is not an IAM role ARN",
    ),
    "role with a wildcard": ("inventoryRoles", {"inventoryRoles": "arn:aws:iam::123456789012:role/*"}, "role ARN"),
    "role with a comma": (
        "inventoryRoles",
        {"inventoryRoles": ["arn:aws:iam::123456789012:role/a,b"]},
        "without commas",
    ),
    "role in another partition": (
        "inventoryRoles",
        {"inventoryRoles": "arn:aws-cn:iam::123456789012:role/Reader"},
        "list roles of aws",
    ),
    "role twice": ("inventoryRoles", {"inventoryRoles": [ROLE, ROLE]}, "list each once"),
    "interval too short": ("inventoryIntervalSeconds", {"inventoryIntervalSeconds": 59}, "from 60 to 86400"),
    "interval too long": ("inventoryIntervalSeconds", {"inventoryIntervalSeconds": "86401"}, "from 60 to 86400"),
    "interval not a number": ("inventoryIntervalSeconds", {"inventoryIntervalSeconds": "5m"}, "whole number"),
    "tag key too long": ("inventoryTagLabels", {"inventoryTagLabels": ["t" * 129]}, "1 to 128 characters"),
    "tag key with a comma": ("inventoryTagLabels", {"inventoryTagLabels": ["a,b"]}, "without commas"),
    "tag key twice": ("inventoryTagLabels", {"inventoryTagLabels": "team,team"}, "list each once"),
    "regions without inventory": (
        "inventoryRegions",
        {"inventory": False, "inventoryRegions": "eu-west-1"},
        "remove inventoryRegions or set inventory=true",
    ),
    "roles without inventory": (
        "inventoryRoles",
        {"inventory": "false", "inventoryRoles": ROLE},
        "remove inventoryRoles or set inventory=true",
    ),
    "interval without inventory": (
        "inventoryIntervalSeconds",
        {"inventory": False, "inventoryIntervalSeconds": 600},
        "set inventory=true",
    ),
    "tag labels without inventory": (
        "inventoryTagLabels",
        {"inventory": False, "inventoryTagLabels": "team"},
        "set inventory=true",
    ),
}


@pytest.mark.parametrize(("key", "overrides", "fragment"), ERRORS.values(), ids=ERRORS.keys())
def test_a_wrong_inventory_setting_is_one_sentence_naming_key_and_remedy(
    key: str, overrides: dict[str, Any], fragment: str
) -> None:
    message = error_of(overrides)
    assert key in message
    assert fragment in message
    assert "\n" not in message


def test_a_wrong_inventory_setting_stops_the_app_with_one_line(tmp_path: Path) -> None:
    done = run_app({**BASE_CONTEXT, "inventoryRoles": "arn:aws:iam::123456789012:user/alice"}, tmp_path)
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: inventoryRoles entry 'arn:aws:iam::123456789012:user/alice' is not an IAM role ARN")
    assert list(tmp_path.glob("*.template.json")) == []
