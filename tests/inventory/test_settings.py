"""The inventory options of ``serve`` (receiver/inventory/settings.py): values, environment
fallbacks, and one sentence for each bad value."""

from __future__ import annotations

import argparse

import pytest

from receiver.config import ConfigError, add_serve_arguments, serve_config
from receiver.inventory.settings import DEFAULT_INTERVAL_S, InventorySettings

ROLE = "arn:aws:iam::210987654321:role/receiver-inventory"


def parse(*argv: str, env: dict[str, str] | None = None) -> InventorySettings | None:
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    return serve_config(parser.parse_args(["--access-key", "k", *argv]), env or {}).inventory


def test_the_inventory_is_off_by_default() -> None:
    assert parse() is None


def test_options_give_regions_roles_interval_and_tag_labels() -> None:
    settings = parse(
        "--inventory", "us-east-1,eu-west-1,us-east-1", "--inventory-role", ROLE, "--inventory-interval", "120",
        "--inventory-tag-labels", "team,cost-center",
    )  # fmt: skip
    assert settings == InventorySettings(("us-east-1", "eu-west-1"), (ROLE,), 120.0, ("team", "cost-center"))


def test_the_environment_gives_them_when_the_options_do_not() -> None:
    env = {
        "RECEIVER_INVENTORY": "ap-southeast-2",
        "RECEIVER_INVENTORY_ROLES": f"{ROLE}, arn:aws-cn:iam::123456789012:role/a",
        "RECEIVER_INVENTORY_TAG_LABELS": "env",
    }
    settings = parse(env=env)
    assert settings == InventorySettings(
        ("ap-southeast-2",), (ROLE, "arn:aws-cn:iam::123456789012:role/a"), DEFAULT_INTERVAL_S, ("env",)
    )
    assert parse("--inventory", "us-west-2", env=env).regions == ("us-west-2",)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--inventory", "us-east-1,mars"], "--inventory (RECEIVER_INVENTORY) 'us-east-1,mars' holds 'mars', which is"),
        (["--inventory", "us-east-1,"], "holds '', which is not an AWS region"),
        (["--inventory", "us-east-1", "--inventory-role", "role/x"], "'role/x' is not an IAM role ARN"),
        (["--inventory", "us-east-1", "--inventory-interval", "30"], "must be seconds from 60 to 86400"),
        (["--inventory", "us-east-1", "--inventory-interval", "soon"], "must be seconds from 60 to 86400"),
        (["--inventory", "us-east-1", "--inventory-tag-labels", "team,,env"], "has an empty or invalid tag key"),
        (["--inventory", "us-east-1", "--inventory-tag-labels", "a-b,a_b"], "'a-b' and 'a_b' would both be the label"),
        (["--inventory-role", ROLE], "--inventory-role (RECEIVER_INVENTORY_ROLES) needs the inventory on"),
        (["--inventory-interval", "600"], "needs the inventory on; give --inventory REGION as well"),
        (["--inventory-tag-labels", "team"], "--inventory-tag-labels (RECEIVER_INVENTORY_TAG_LABELS) needs"),
    ],
)
def test_a_bad_value_is_refused_with_one_sentence(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse(*argv)
    assert message in str(error.value)
    assert "\n" not in str(error.value)
