"""The inventory options of ``serve`` (each with an environment fallback)."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from dataclasses import dataclass

from receiver.inventory.tags import label_name

DEFAULT_INTERVAL_S = 300.0
"""Five minutes: DescribeTable's counts change every six hours, capacity settings rarely."""

_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")
_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}")
_TAG_KEY = re.compile(r"[^\x00-\x1f]{1,128}")


class InventoryConfigError(ValueError):
    """A wrong inventory option; one sentence naming it."""


@dataclass(frozen=True, slots=True)
class InventorySettings:
    regions: tuple[str, ...]
    """The regions polled in every account (at least one)."""
    roles: tuple[str, ...] = ()
    """Roles assumed to poll other accounts; the receiver's own account is always polled."""
    interval_s: float = DEFAULT_INTERVAL_S
    tag_labels: tuple[str, ...] = ()
    """Table tags that become labels on /metrics and OTLP (``team`` -> ``tag_team``)."""


def add_inventory_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--inventory",
        metavar="REGION[,REGION]",
        help="poll the tables of these regions for what each is: capacity mode, limits, tags "
        "(RECEIVER_INVENTORY, default: off)",
    )
    parser.add_argument(
        "--inventory-role",
        action="append",
        dest="inventory_roles",
        metavar="ARN",
        help="also poll the account of this IAM role, assumed with sts:AssumeRole; repeat for several "
        "(RECEIVER_INVENTORY_ROLES, comma-separated)",
    )
    parser.add_argument(
        "--inventory-interval",
        metavar="S",
        help="seconds between two polls of the inventory (RECEIVER_INVENTORY_INTERVAL, default 300)",
    )
    parser.add_argument(
        "--inventory-tag-labels",
        metavar="TAG[,TAG]",
        help="table tags to add as labels (tag_<name>) on /metrics and OTLP (RECEIVER_INVENTORY_TAG_LABELS)",
    )


def inventory_settings(
    args: argparse.Namespace, pick: Callable[[object, str], str | None], env_list: Callable[[str], tuple[str, ...]]
) -> InventorySettings | None:
    """The inventory settings from options over environment, None when it is off;
    InventoryConfigError on a bad value."""
    listed = pick(getattr(args, "inventory", None), "RECEIVER_INVENTORY")
    roles = tuple(getattr(args, "inventory_roles", None) or env_list("RECEIVER_INVENTORY_ROLES"))
    interval = pick(getattr(args, "inventory_interval", None), "RECEIVER_INVENTORY_INTERVAL")
    tags = pick(getattr(args, "inventory_tag_labels", None), "RECEIVER_INVENTORY_TAG_LABELS")
    if listed is None:
        for given, name in (
            (roles, "--inventory-role (RECEIVER_INVENTORY_ROLES)"),
            (interval, "--inventory-interval (RECEIVER_INVENTORY_INTERVAL)"),
            (tags, "--inventory-tag-labels (RECEIVER_INVENTORY_TAG_LABELS)"),
        ):
            if given:
                raise InventoryConfigError(f"{name} needs the inventory on; give --inventory REGION as well")
        return None
    regions = tuple(r.strip() for r in listed.split(","))
    for region in regions:
        if not _REGION.fullmatch(region):
            raise InventoryConfigError(
                f"--inventory (RECEIVER_INVENTORY) {listed!r} holds {region!r}, which is not an AWS region; "
                "give regions such as us-east-1,eu-west-1 separated by commas"
            )
    for role in roles:
        if not _ROLE_ARN.fullmatch(role.strip()):
            raise InventoryConfigError(
                f"--inventory-role (RECEIVER_INVENTORY_ROLES) {role!r} is not an IAM role ARN; "
                "give arn:aws:iam::ACCOUNT:role/NAME"
            )
    interval_s = DEFAULT_INTERVAL_S
    if interval is not None:
        try:
            interval_s = float(interval)
        except ValueError:
            interval_s = -1.0
        if not 60 <= interval_s <= 86400:
            raise InventoryConfigError(
                f"--inventory-interval (RECEIVER_INVENTORY_INTERVAL) {interval!r} must be seconds from 60 to 86400"
            )
    tag_labels = tuple(t.strip() for t in tags.split(",")) if tags else ()
    for tag in tag_labels:
        if not _TAG_KEY.fullmatch(tag):
            raise InventoryConfigError(
                f"--inventory-tag-labels (RECEIVER_INVENTORY_TAG_LABELS) {tags!r} has an empty or invalid tag key; "
                "give tag keys separated by single commas"
            )
    labels: dict[str, str] = {}
    for tag in tag_labels:
        name = label_name(tag)
        if labels.setdefault(name, tag) != tag:
            raise InventoryConfigError(
                f"--inventory-tag-labels (RECEIVER_INVENTORY_TAG_LABELS) {labels[name]!r} and {tag!r} "
                f"would both be the label {name}; list only one of them"
            )
    return InventorySettings(tuple(dict.fromkeys(regions)), tuple(r.strip() for r in roles), interval_s, tag_labels)
