"""boto3 responses -> the inventory's documents (receiver/inventory/documents.py). Pure: no
calls, no clock; the poller passes what DynamoDB and CloudWatch answered and when.

Responses are the parsed dicts a boto3 client returns (timestamps as datetimes). A field
DynamoDB leaves out becomes None, never a guess, except where DynamoDB's own documentation
gives the meaning of its absence (a table without a billing mode summary is provisioned).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from receiver.inventory.documents import (
    ON_DEMAND,
    PROVISIONED,
    IndexDocument,
    LimitsDocument,
    TableDocument,
    Throughput,
    TopKey,
    TopKeysDocument,
    WarmThroughput,
)

DELETED = "DELETED"
"""The status the poller gives a table that is gone (DynamoDB itself has no such status)."""

THROTTLED_KEY_RULES = ("-PKT-", "-SKT-")
"""What the names of the Contributor Insights rules DynamoDB creates for most throttled keys
hold: ``DynamoDBContributorInsights-PKT-<resource>-<created>`` (partition keys) and ``-SKT-``
(partition and sort keys). ``-PKC-`` and ``-SKC-`` are the most accessed keys, not read."""

Response = Mapping[str, Any]


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _epoch_s(value: object) -> float | None:
    if isinstance(value, datetime):
        return value.timestamp()
    return _number(value)


def billing_mode(table: Response) -> str:
    """PROVISIONED or PAY_PER_REQUEST; a table never switched has no summary and is provisioned."""
    mode = _text((table.get("BillingModeSummary") or {}).get("BillingMode"))
    return mode or PROVISIONED


def provisioned(throughput: Response | None, mode: str) -> Throughput | None:
    """A provisioned table's (or its index's) capacity; None for on-demand, which reports zeros."""
    if mode != PROVISIONED or not throughput:
        return None
    read = _number(throughput.get("ReadCapacityUnits"))
    write = _number(throughput.get("WriteCapacityUnits"))
    if not read and not write:
        return None
    return {"read": read, "write": write}


def _maximum(value: object) -> float | None:
    number = _number(value)
    return number if number is not None and number > 0 else None  # -1: no maximum


def on_demand_max(throughput: Response | None, mode: str) -> Throughput | None:
    """An on-demand table's (or index's) configured maximum request units per second; a side
    without one (absent or -1) is None, and None when neither side has one."""
    if mode != ON_DEMAND or not throughput:
        return None
    read = _maximum(throughput.get("MaxReadRequestUnits"))
    write = _maximum(throughput.get("MaxWriteRequestUnits"))
    if read is None and write is None:
        return None
    return {"read": read, "write": write}


def warm_throughput(warm: Response | None) -> WarmThroughput | None:
    if not warm:
        return None
    return {
        "read": _number(warm.get("ReadUnitsPerSecond")),
        "write": _number(warm.get("WriteUnitsPerSecond")),
        "status": _text(warm.get("Status")),
    }


def _index(index: Response, kind: Literal["global", "local"], mode: str) -> IndexDocument:
    is_global = kind == "global"
    return {
        "name": _text(index.get("IndexName")) or "",
        "kind": kind,
        "status": _text(index.get("IndexStatus")) if is_global else None,
        "item_count": _count(index.get("ItemCount")),
        "size_bytes": _count(index.get("IndexSizeBytes")),
        "provisioned": provisioned(index.get("ProvisionedThroughput"), mode) if is_global else None,
        "on_demand_max": on_demand_max(index.get("OnDemandThroughput"), mode) if is_global else None,
        "warm_throughput": warm_throughput(index.get("WarmThroughput")) if is_global else None,
    }


def _stream(table: Response) -> dict[str, str | bool | None] | None:
    spec = table.get("StreamSpecification")
    label = _text(table.get("LatestStreamLabel"))
    if not spec and label is None:
        return None
    spec = spec or {}
    return {
        "enabled": bool(spec.get("StreamEnabled", False)),
        "view_type": _text(spec.get("StreamViewType")),
        "label": label,
    }


def table_document(
    account: str,
    region: str,
    name: str,
    table: Response | None,
    *,
    tags: dict[str, str] | None = None,
    ttl: dict[str, str | None] | None = None,
    point_in_time_recovery: str | None = None,
    contributor_insights: dict[str, str | list[str] | None] | None = None,
    problems: Mapping[str, str] | None = None,
) -> TableDocument:
    """The TABLE document of ``name`` from DescribeTable's ``Table`` (None when that call
    failed: only the name and what the other calls gave are known) and the other calls' parts."""
    table = table or {}
    mode = billing_mode(table)
    indexes = [_index(index, "global", mode) for index in table.get("GlobalSecondaryIndexes") or ()]
    indexes += [_index(index, "local", mode) for index in table.get("LocalSecondaryIndexes") or ()]
    return {
        "name": name,
        "account": account,
        "region": region,
        "arn": _text(table.get("TableArn")),
        "status": _text(table.get("TableStatus")),
        "created": _epoch_s(table.get("CreationDateTime")),
        "billing_mode": mode,
        "table_class": _text((table.get("TableClassSummary") or {}).get("TableClass")),
        "deletion_protection": table.get("DeletionProtectionEnabled")
        if isinstance(table.get("DeletionProtectionEnabled"), bool)
        else None,
        "item_count": _count(table.get("ItemCount")),
        "size_bytes": _count(table.get("TableSizeBytes")),
        "tags": dict(tags or {}),
        "indexes": indexes,
        "provisioned": provisioned(table.get("ProvisionedThroughput"), mode),
        "on_demand_max": on_demand_max(table.get("OnDemandThroughput"), mode),
        "warm_throughput": warm_throughput(table.get("WarmThroughput")),
        "ttl": ttl,
        "stream": _stream(table),
        "replicas": [
            {"region": _text(replica.get("RegionName")), "status": _text(replica.get("ReplicaStatus"))}
            for replica in table.get("Replicas") or ()
        ],
        "point_in_time_recovery": point_in_time_recovery,
        "contributor_insights": contributor_insights,
        "deleted": None,
        "problems": dict(problems or {}),
    }


def deleted_document(document: TableDocument, when_s: float) -> TableDocument:
    """``document`` marked gone: status DELETED, ``deleted`` the first time it was found gone."""
    if document["status"] == DELETED and document["deleted"] is not None:
        return document
    return {**document, "status": DELETED, "deleted": when_s, "problems": {}}


def tags_of(tag_lists: Iterable[Sequence[Response]]) -> dict[str, str]:
    """ListTagsOfResource's ``Tags`` of every page -> {key: value}."""
    found: dict[str, str] = {}
    for tags in tag_lists:
        for tag in tags:
            key, value = _text(tag.get("Key")), _text(tag.get("Value"))
            if key is not None:
                found[key] = value or ""
    return found


def ttl_of(response: Response) -> dict[str, str | None]:
    """DescribeTimeToLive -> {"status": ENABLED|DISABLED|ENABLING|DISABLING, "attribute": name or None}."""
    description = response.get("TimeToLiveDescription") or {}
    return {
        "status": _text(description.get("TimeToLiveStatus")),
        "attribute": _text(description.get("AttributeName")),
    }


def point_in_time_recovery_of(response: Response) -> str | None:
    """DescribeContinuousBackups -> ENABLED or DISABLED (None when it says nothing)."""
    description = (response.get("ContinuousBackupsDescription") or {}).get("PointInTimeRecoveryDescription") or {}
    return _text(description.get("PointInTimeRecoveryStatus"))


def contributor_insights_of(response: Response) -> dict[str, str | list[str] | None]:
    """DescribeContributorInsights -> {"status": ..., "rules": [the CloudWatch rule names]}."""
    rules = [rule for rule in response.get("ContributorInsightsRuleList") or () if isinstance(rule, str)]
    return {"status": _text(response.get("ContributorInsightsStatus")), "rules": rules}


def throttled_key_rules(rules: Iterable[str]) -> list[str]:
    """The most-throttled-keys rules among ``rules`` (``-PKT-`` first, then ``-SKT-``), sorted."""
    return sorted(
        (rule for rule in rules if any(part in rule for part in THROTTLED_KEY_RULES)),
        key=lambda rule: (0 if "-PKT-" in rule else 1, rule),
    )


def limits_document(response: Response) -> LimitsDocument:
    """DescribeLimits -> the LIMITS document (capacity units per second)."""
    return {
        "account_max_read": _number(response.get("AccountMaxReadCapacityUnits")),
        "account_max_write": _number(response.get("AccountMaxWriteCapacityUnits")),
        "table_max_read": _number(response.get("TableMaxReadCapacityUnits")),
        "table_max_write": _number(response.get("TableMaxWriteCapacityUnits")),
    }


def top_keys_document(reports: Mapping[str, Response], start_s: float, end_s: float) -> TopKeysDocument:
    """GetInsightRuleReport answers by rule name -> one TOP_KEYS document: every contributor of
    every rule, most throttled first (a tie puts the partition-key rule's key first)."""
    keys: list[TopKey] = []
    for report in reports.values():
        for contributor in report.get("Contributors") or ():
            value = _number(contributor.get("ApproximateAggregateValue"))
            key = [part for part in contributor.get("Keys") or () if isinstance(part, str)]
            if value is not None and key:
                keys.append({"key": key, "value": value})
    keys.sort(key=lambda top: (-top["value"], len(top["key"]), top["key"]))
    return {"start": start_s, "end": end_s, "keys": keys, "rules": sorted(reports)}
