"""The most throttled keys of the tables that throttle, from CloudWatch Contributor Insights.

Once a minute (while the poller holds the lease), for each account and region: the derived
throttling metrics of the last ``THROTTLE_WINDOW_MS`` name the tables and global secondary
indexes that throttled; for each of them with Contributor Insights enabled, the report of
its most-throttled-keys rules over the last ``REPORT_WINDOW_S`` becomes a TOP_KEYS item.
A table that does not throttle costs nothing: GetInsightRuleReport is billed per call.

A table's rules come from its TABLE document (DescribeContributorInsights at each poll); an
index's from DescribeContributorInsights with its IndexName, asked only while it throttles.
TOP_KEYS items are named by the endpoint: the table, or ``<table>/<index>``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from receiver.inventory.clients import AccountAccess, CallError, ClientSource, call
from receiver.inventory.counters import InventoryCounters
from receiver.inventory.describe import DELETED, contributor_insights_of, throttled_key_rules, top_keys_document
from receiver.inventory.documents import SERVICE_PREFIX, TableDocument, item_of, table_of
from receiver.model import MINUTE_MS, TABLE, TOP_KEYS
from receiver.store.base import Store

INSIGHTS_INTERVAL_S = 60.0
THROTTLE_WINDOW_MS = 10 * MINUTE_MS
"""A table counts as throttling when a throttling metric was above 0 in this window."""
REPORT_WINDOW_S = 15 * 60
"""The window each report covers, ending now."""
REPORT_PERIOD_S = 60
MAX_CONTRIBUTORS = 10

THROTTLE_METRICS = (
    "aws_dynamodb_endpoint_read_throttle_events",
    "aws_dynamodb_endpoint_write_throttle_events",
    "aws_dynamodb_endpoint_read_throttled_requests",
    "aws_dynamodb_endpoint_write_throttled_requests",
)
"""The endpoint metrics of rules/aws-dynamodb/ that count throttling (Σ Sum per minute):
ReadThrottleEvents and WriteThrottleEvents per table or index, ThrottledRequests of the read
and of the write operations."""

ENABLED = "ENABLED"


def service_of(account: str) -> str:
    """The service name the rules give an account's tables (``aws-dynamodb::<account>``)."""
    return f"{SERVICE_PREFIX}{account}"


@dataclass(slots=True)
class InsightsRound:
    """What one account and region's insights pass did."""

    throttling: int = 0
    """Endpoints that throttled in the window."""
    written: int = 0
    """TOP_KEYS items stored."""
    failures: list[tuple[str, CallError]] = field(default_factory=list)
    """(endpoint, the call that failed for it) of calls that failed for good."""


async def throttling_endpoints(store: Store, account: str, region: str, now_ms: int) -> set[str]:
    """The endpoints (tables, ``<table>/<index>``) of ``account`` in ``region`` with a
    throttling metric above 0 in the last THROTTLE_WINDOW_MS."""
    found: set[str] = set()
    for metric in THROTTLE_METRICS:
        values = await store.derived(
            metric, MINUTE_MS, now_ms - THROTTLE_WINDOW_MS, now_ms, service=service_of(account), region=region
        )
        found.update(value.endpoint for value in values if value.endpoint and value.value > 0)
    return found


def _table_rules(document: TableDocument) -> list[str]:
    insights = document["contributor_insights"]
    if not insights or insights.get("status") != ENABLED:
        return []
    rules = insights.get("rules")
    return throttled_key_rules(rules) if isinstance(rules, list) else []


async def top_keys_pass(
    store: Store,
    counters: InventoryCounters,
    clients: ClientSource,
    access: AccountAccess,
    region: str,
    now_s: float,
) -> InsightsRound:
    """One insights pass over one account and region. Raises CallError when a call failed in a
    way that may pass (throttled, no connection): the caller backs off; StoreError as the store does."""
    done = InsightsRound()
    now_ms = int(now_s * 1000)
    throttling = await throttling_endpoints(store, access.account, region, now_ms)
    done.throttling = len(throttling)
    if not throttling:
        return done
    documents = [
        table_of(item)
        for item in await store.inventory(TABLE)
        if item.account == access.account and item.region == region
    ]
    wanted: list[tuple[str, list[str]]] = []
    dynamodb: Any = None
    for document in documents:
        if document["status"] == DELETED:
            continue
        name = document["name"]
        if name in throttling and (rules := _table_rules(document)):
            wanted.append((name, rules))
        for index in document["indexes"]:
            endpoint = f"{name}/{index['name']}"
            if index["kind"] != "global" or endpoint not in throttling:
                continue
            if dynamodb is None:
                dynamodb = await asyncio.to_thread(clients.client, access, region, "dynamodb")
            try:
                answer = await call(
                    counters,
                    "DescribeContributorInsights",
                    dynamodb.describe_contributor_insights,
                    TableName=name,
                    IndexName=index["name"],
                )
            except CallError as exc:
                if exc.transient:
                    raise
                done.failures.append((endpoint, exc))
                continue
            insights = contributor_insights_of(answer)
            listed = insights["rules"]
            if insights["status"] == ENABLED and isinstance(listed, list) and (rules := throttled_key_rules(listed)):
                wanted.append((endpoint, rules))
    if not wanted:
        return done
    cloudwatch = await asyncio.to_thread(clients.client, access, region, "cloudwatch")
    start_s = now_s - REPORT_WINDOW_S
    for endpoint, rules in wanted:
        reports: dict[str, Any] = {}
        for rule in rules:
            try:
                reports[rule] = await call(
                    counters,
                    "GetInsightRuleReport",
                    cloudwatch.get_insight_rule_report,
                    RuleName=rule,
                    StartTime=datetime.fromtimestamp(start_s, UTC),
                    EndTime=datetime.fromtimestamp(now_s, UTC),
                    Period=REPORT_PERIOD_S,
                    MaxContributorCount=MAX_CONTRIBUTORS,
                    OrderBy="Sum",
                )
            except CallError as exc:
                if exc.transient:
                    raise
                done.failures.append((endpoint, exc))
        if reports:
            body = top_keys_document(reports, start_s, now_s)
            await store.put_inventory([item_of(TOP_KEYS, access.account, region, endpoint, now_ms, body)])
            done.written += 1
    return done
