"""Top keys (receiver/inventory/insights.py): GetInsightRuleReport only for tables and indexes
that throttled and have Contributor Insights on, their throttled-key rules merged into one
TOP_KEYS item; quiet tables cost no call."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from receiver.inventory.describe import table_document
from receiver.inventory.documents import top_keys_of
from receiver.inventory.insights import MAX_CONTRIBUTORS, REPORT_WINDOW_S
from receiver.inventory.poller import InventoryPoller
from receiver.model import MINUTE_MS, TOP_KEYS, DerivedValue
from receiver.store import MemoryStore
from tests.builders import FakeClock
from tests.inventory.kit import ACCOUNT, REGION, StubClients, describe_table, put_table, settings

pytestmark = pytest.mark.usefixtures("aws_env")

SERVICE = f"aws-dynamodb::{ACCOUNT}"
STAMP = "1700000000000"


def rules(resource: str) -> list[str]:
    return [f"DynamoDBContributorInsights-{kind}-{resource}-{STAMP}" for kind in ("PKC", "PKT", "SKC", "SKT")]


def pkt(resource: str) -> str:
    return f"DynamoDBContributorInsights-PKT-{resource}-{STAMP}"


def skt(resource: str) -> str:
    return f"DynamoDBContributorInsights-SKT-{resource}-{STAMP}"


@pytest.fixture
async def store():
    opened = MemoryStore()
    await opened.open()
    yield opened
    await opened.close()


@pytest.fixture
def clock():
    return FakeClock(1_700_000_000.0)


async def add_table(store, name, *, insights="ENABLED", indexes=()):
    table = describe_table(name, GlobalSecondaryIndexes=[{"IndexName": index} for index in indexes])["Table"]
    contributor = {"status": insights, "rules": rules(name) if insights == "ENABLED" else []}
    await put_table(store, table_document(ACCOUNT, REGION, name, table, contributor_insights=contributor))


async def throttled(store, clock, values: dict[str, float], metric="aws_dynamodb_endpoint_read_throttle_events"):
    """One minute, three minutes ago, with these throttle counts per endpoint."""
    minute = int(clock.now * 1000) // MINUTE_MS * MINUTE_MS - 3 * MINUTE_MS
    derived = [
        DerivedValue(metric, "endpoint", SERVICE, endpoint, "AWS_DYNAMODB", minute, value, region=REGION)
        for endpoint, value in values.items()
    ]
    await store.put_derived(MINUTE_MS, minute, 1, derived)


def expect_report(clients, clock, rule, contributors):
    clients.stub("cloudwatch").add_response(
        "get_insight_rule_report",
        {"KeyLabels": ["PartitionKey"], "AggregationStatistic": "Sum", "Contributors": contributors},
        {
            "RuleName": rule,
            "StartTime": datetime.fromtimestamp(clock.now - REPORT_WINDOW_S, UTC),
            "EndTime": datetime.fromtimestamp(clock.now, UTC),
            "Period": 60,
            "MaxContributorCount": MAX_CONTRIBUTORS,
            "OrderBy": "Sum",
        },
    )


def contributor(value, *keys):
    return {"Keys": list(keys), "ApproximateAggregateValue": value, "Datapoints": []}


async def test_a_throttling_table_gets_its_most_throttled_keys_and_a_quiet_one_no_call(store, clock):
    await add_table(store, "hot")
    await add_table(store, "quiet")
    await throttled(store, clock, {"hot": 12.0, "quiet": 0.0})
    clients = StubClients()
    expect_report(clients, clock, pkt("hot"), [contributor(40.0, "user#1"), contributor(5.0, "user#2")])
    expect_report(clients, clock, skt("hot"), [contributor(50.0, "user#3", "b"), contributor(30.0, "user#1", "a")])
    poller = InventoryPoller(store, settings(), clock=clock, clients=clients)
    await poller.insights_once()
    clients.assert_answered()

    [item] = await store.inventory(TOP_KEYS)
    assert (item.account, item.region, item.name, item.updated_ms) == (ACCOUNT, REGION, "hot", int(clock.now * 1000))
    assert top_keys_of(item) == {
        "start": clock.now - REPORT_WINDOW_S,
        "end": clock.now,
        "rules": [pkt("hot"), skt("hot")],
        "keys": [
            {"key": ["user#3", "b"], "value": 50.0},
            {"key": ["user#1"], "value": 40.0},
            {"key": ["user#1", "a"], "value": 30.0},
            {"key": ["user#2"], "value": 5.0},
        ],
    }
    assert [
        (api, outcome, n) for api, outcome, n in poller.counters.snapshot().calls if api != "GetCallerIdentity"
    ] == [("GetInsightRuleReport", "ok", 2)]


async def test_quiet_tables_cost_no_call_at_all(store, clock):
    await add_table(store, "quiet")
    await add_table(store, "idle")
    await throttled(store, clock, {"quiet": 0.0})
    clients = StubClients()
    poller = InventoryPoller(store, settings(), clock=clock, clients=clients)
    await poller.insights_once()
    assert clients.asked == []  # not even a client
    assert await store.inventory(TOP_KEYS) == []


async def test_throttling_older_than_the_window_or_in_another_region_does_not_count(store, clock):
    await add_table(store, "hot")
    clients = StubClients()
    old = int(clock.now * 1000) // MINUTE_MS * MINUTE_MS - 11 * MINUTE_MS
    elsewhere = int(clock.now * 1000) // MINUTE_MS * MINUTE_MS - MINUTE_MS
    metric = "aws_dynamodb_endpoint_write_throttled_requests"
    await store.put_derived(
        MINUTE_MS, old, 1, [DerivedValue(metric, "endpoint", SERVICE, "hot", "AWS_DYNAMODB", old, 9.0, region=REGION)]
    )
    await store.put_derived(
        MINUTE_MS,
        elsewhere,
        1,
        [DerivedValue(metric, "endpoint", SERVICE, "hot", "AWS_DYNAMODB", elsewhere, 9.0, region="eu-west-1")],
    )
    poller = InventoryPoller(store, settings(), clock=clock, clients=clients)
    await poller.insights_once()
    assert clients.asked == []


async def test_each_throttling_metric_counts(store, clock):
    for metric in ("aws_dynamodb_endpoint_write_throttle_events", "aws_dynamodb_endpoint_read_throttled_requests",
                   "aws_dynamodb_endpoint_write_throttled_requests"):  # fmt: skip
        fresh = MemoryStore()
        await fresh.open()
        await add_table(fresh, "hot")
        await throttled(fresh, clock, {"hot": 1.0}, metric=metric)
        clients = StubClients()
        expect_report(clients, clock, pkt("hot"), [contributor(1.0, "k")])
        expect_report(clients, clock, skt("hot"), [])
        await InventoryPoller(fresh, settings(), clock=clock, clients=clients).insights_once()
        clients.assert_answered()
        assert [item.name for item in await fresh.inventory(TOP_KEYS)] == ["hot"], metric


async def test_a_table_without_contributor_insights_is_not_asked(store, clock):
    await add_table(store, "hot", insights="DISABLED")
    await throttled(store, clock, {"hot": 3.0})
    clients = StubClients()
    await InventoryPoller(store, settings(), clock=clock, clients=clients).insights_once()
    assert clients.asked == []


async def test_a_throttling_index_is_asked_for_its_own_rules_and_named_by_its_endpoint(store, clock):
    await add_table(store, "orders", indexes=("by_user",))
    await throttled(store, clock, {"orders/by_user": 7.0})
    clients = StubClients()
    clients.stub("dynamodb").add_response(
        "describe_contributor_insights",
        {"TableName": "orders", "IndexName": "by_user", "ContributorInsightsStatus": "ENABLED",
         "ContributorInsightsRuleList": rules("orders-by_user")},
        {"TableName": "orders", "IndexName": "by_user"},
    )  # fmt: skip
    expect_report(clients, clock, pkt("orders-by_user"), [contributor(7.0, "user#9")])
    expect_report(clients, clock, skt("orders-by_user"), [])
    await InventoryPoller(store, settings(), clock=clock, clients=clients).insights_once()
    clients.assert_answered()
    [item] = await store.inventory(TOP_KEYS)
    assert item.name == "orders/by_user"
    assert top_keys_of(item)["keys"] == [{"key": ["user#9"], "value": 7.0}]


async def test_a_throttled_report_backs_off_and_is_counted(store, clock):
    await add_table(store, "hot")
    await throttled(store, clock, {"hot": 12.0})
    clients = StubClients()
    clients.stub("cloudwatch").add_client_error("get_insight_rule_report", "LimitExceededException", "slow down", 400)
    poller = InventoryPoller(store, settings(), clock=clock, clients=clients)
    await poller.insights_once()
    assert ("GetInsightRuleReport", "throttled", 1) in poller.counters.snapshot().calls
    assert await store.inventory(TOP_KEYS) == []
    clock.advance(1)
    await poller.insights_once()  # still backing off: no call (the Stubber would refuse one)
    assert poller.counters.total() == 2  # GetCallerIdentity and the throttled report


async def test_a_denied_report_is_counted_and_the_other_rule_still_read(store, clock, caplog):
    await add_table(store, "hot")
    await throttled(store, clock, {"hot": 12.0})
    clients = StubClients()
    clients.stub("cloudwatch").add_client_error("get_insight_rule_report", "AccessDeniedException", "no", 400)
    expect_report(clients, clock, skt("hot"), [contributor(3.0, "a", "b")])
    poller = InventoryPoller(store, settings(), clock=clock, clients=clients)
    await poller.insights_once()
    clients.assert_answered()
    [item] = await store.inventory(TOP_KEYS)
    assert top_keys_of(item)["rules"] == [skt("hot")]
    assert ("GetInsightRuleReport", "denied", 1) in poller.counters.snapshot().calls
    assert [r.api for r in caplog.records if r.levelname == "WARNING"] == ["GetInsightRuleReport"]
