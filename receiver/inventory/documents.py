"""What the inventory keeps of a table, an account's limits and a table's most throttled
keys: the JSON bodies of the store's inventory items (receiver/model.py), their fields, and
a table's ceilings. No I/O: the poller writes these, the deriver, views and alarms read them.

Capacity figures are units per second, as DynamoDB gives them; None where DynamoDB gives
none (an on-demand table has no provisioned capacity, a table without a maximum none).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal, TypedDict

from receiver.model import LIMITS, TABLE, TOP_KEYS, InventoryItem

SERVICE_PREFIX = "aws-dynamodb::"
"""An account's service name is this and its id (CONTRACT.md, Names)."""
PROVISIONED = "PROVISIONED"
ON_DEMAND = "PAY_PER_REQUEST"


class Throughput(TypedDict):
    read: float | None
    write: float | None


class WarmThroughput(Throughput):
    status: str | None
    """ACTIVE, or UPDATING while DynamoDB prewarms the table."""


class IndexDocument(TypedDict):
    name: str
    kind: Literal["global", "local"]
    status: str | None
    item_count: int | None
    size_bytes: int | None
    provisioned: Throughput | None
    on_demand_max: Throughput | None
    warm_throughput: WarmThroughput | None


class TableDocument(TypedDict):
    """A TABLE item's body. Times are epoch seconds."""

    name: str
    account: str
    region: str
    arn: str | None
    status: str | None
    """ACTIVE, CREATING, UPDATING, ... as DescribeTable says; DELETED once it is gone."""
    created: float | None
    billing_mode: str
    """PROVISIONED or PAY_PER_REQUEST (a table never switched reports no mode: PROVISIONED)."""
    table_class: str | None
    deletion_protection: bool | None
    item_count: int | None
    """DescribeTable's figure, which DynamoDB refreshes about every six hours."""
    size_bytes: int | None
    tags: dict[str, str]
    indexes: list[IndexDocument]
    provisioned: Throughput | None
    on_demand_max: Throughput | None
    """The table's configured on-demand maximum (None where it has none, or is provisioned)."""
    warm_throughput: WarmThroughput | None
    ttl: dict[str, str | None] | None
    """{"status": ENABLED|DISABLED|..., "attribute": name or None}."""
    stream: dict[str, str | bool | None] | None
    """{"enabled": bool, "view_type": ..., "label": ...}."""
    replicas: list[dict[str, str | None]]
    """Global table replicas: [{"region": ..., "status": ...}]."""
    point_in_time_recovery: str | None
    """ENABLED or DISABLED (DescribeContinuousBackups); None when unknown."""
    contributor_insights: dict[str, str | list[str] | None] | None
    """{"status": ENABLED|DISABLED|..., "rules": [CloudWatch rule names]}; None when unknown."""
    deleted: float | None
    """When the poller first found the table gone; None while it exists."""
    problems: dict[str, str]
    """Calls that failed for this table at the last poll, by API name: what is missing and why."""


class LimitsDocument(TypedDict):
    """A LIMITS item's body (DescribeLimits): capacity units per second."""

    account_max_read: float | None
    account_max_write: float | None
    table_max_read: float | None
    """The most an on-demand table (and each of its indexes) may reach, and the most a
    provisioned table may be given."""
    table_max_write: float | None


class TopKey(TypedDict):
    key: list[str]
    """The key's attribute values, as Contributor Insights reports them (partition key, and sort key)."""
    value: float
    """Its throttled requests in the window."""


class TopKeysDocument(TypedDict):
    """A TOP_KEYS item's body: a table's most throttled keys (GetInsightRuleReport)."""

    start: float
    end: float
    """The window reported, epoch seconds."""
    keys: list[TopKey]
    """Most throttled first; the partition-key rule and the partition+sort-key rule merged."""
    rules: list[str]
    """The Contributor Insights rules read."""


def item_of(kind: str, account: str, region: str, name: str, updated_ms: int, body: object) -> InventoryItem:
    """An item whose body is ``body`` as compact JSON with sorted keys (so equal bodies are equal text)."""
    return InventoryItem(
        kind, account, region, name, updated_ms, json.dumps(body, sort_keys=True, separators=(",", ":"))
    )


def table_of(item: InventoryItem) -> TableDocument:
    assert item.kind == TABLE
    document: TableDocument = json.loads(item.body)
    return document


def limits_of(item: InventoryItem) -> LimitsDocument:
    assert item.kind == LIMITS
    document: LimitsDocument = json.loads(item.body)
    return document


def top_keys_of(item: InventoryItem) -> TopKeysDocument:
    assert item.kind == TOP_KEYS
    document: TopKeysDocument = json.loads(item.body)
    return document


# ---- ceilings ----

CeilingSource = Literal["provisioned", "on_demand_max", "account_table_max"]


@dataclass(frozen=True, slots=True)
class Ceiling:
    """The most a table or index can take per second, where it comes from, and its warm throughput."""

    endpoint: str
    """The table's name, or ``<table>/<index>`` for a global secondary index (the endpoint's name)."""
    read: float | None
    write: float | None
    read_source: CeilingSource | None
    write_source: CeilingSource | None
    warm_read: float | None
    warm_write: float | None


def _side(throughput: Throughput | None, side: str) -> float | None:
    if throughput is None:
        return None
    return throughput["read"] if side == "read" else throughput["write"]


def _positive(value: float | None) -> float | None:
    # DynamoDB reports -1 (and a table never given one, nothing) for "no maximum".
    return value if value is not None and value > 0 else None


def _ceiling(
    endpoint: str,
    billing_mode: str,
    provisioned: Throughput | None,
    on_demand_max: Throughput | None,
    warm: WarmThroughput | None,
    limits: LimitsDocument | None,
) -> Ceiling:
    sides: dict[str, tuple[float | None, CeilingSource | None]] = {}
    for side in ("read", "write"):
        value: float | None = None
        source: CeilingSource | None = None
        if billing_mode == PROVISIONED:
            value = _positive(_side(provisioned, side))
            source = "provisioned" if value is not None else None
        else:
            value = _positive(_side(on_demand_max, side))
            source = "on_demand_max" if value is not None else None
            if value is None and limits is not None:
                value = _positive(limits["table_max_read" if side == "read" else "table_max_write"])
                source = "account_table_max" if value is not None else None
        sides[side] = (value, source)
    return Ceiling(
        endpoint,
        sides["read"][0],
        sides["write"][0],
        sides["read"][1],
        sides["write"][1],
        _positive(_side(warm, "read")),
        _positive(_side(warm, "write")),
    )


def ceilings(table: TableDocument, limits: LimitsDocument | None) -> list[Ceiling]:
    """The table's ceilings and its global secondary indexes': provisioned capacity on a
    provisioned table; on an on-demand table its configured maximum, else the account's
    per-table maximum from DescribeLimits (which each index may reach as well)."""
    found = [
        _ceiling(
            table["name"],
            table["billing_mode"],
            table["provisioned"],
            table["on_demand_max"],
            table["warm_throughput"],
            limits,
        )
    ]
    for index in table["indexes"]:
        if index["kind"] == "global":
            found.append(
                _ceiling(
                    f"{table['name']}/{index['name']}",
                    table["billing_mode"],
                    index["provisioned"],
                    index["on_demand_max"],
                    index["warm_throughput"],
                    limits,
                )
            )
    return found
