"""What the poller does when AWS says no (botocore's Stubber answers): throttling backs off and
polls again, a refused call for one table leaves a note and the rest of the document, a
refused listing or role skips its account and region, and nothing ends the poller."""

from __future__ import annotations

import asyncio
import logging

import pytest
from botocore.exceptions import EndpointConnectionError

from receiver.backoff import FULL_JITTER, Backoff
from receiver.inventory.clients import MESSAGE_CHARS, OWN, CallError, call
from receiver.inventory.counters import InventoryCounters
from receiver.inventory.describe import table_document
from receiver.inventory.poller import InventoryPoller, _Pace
from receiver.model import TABLE
from receiver.store import MemoryStore
from tests.builders import FakeClock
from tests.inventory.kit import (
    ACCOUNT,
    OTHER_ACCOUNT,
    REGION,
    StubClients,
    client_error,
    describe_table,
    eventually,
    put_table,
    queue_region,
    queue_table,
    settings,
    stop,
    tables,
)

pytestmark = pytest.mark.usefixtures("aws_env")

ROLE = f"arn:aws:iam::{OTHER_ACCOUNT}:role/inventory-reader"
EU = "eu-west-1"


@pytest.fixture
async def store():
    opened = MemoryStore()
    await opened.open()
    yield opened
    await opened.close()


def throttle_list_tables(clients: StubClients, region: str = REGION) -> None:
    clients.stub("dynamodb", region).add_client_error("list_tables", "ThrottlingException", "Rate exceeded", 400)


async def test_a_throttled_listing_backs_off_and_the_next_poll_completes(store):
    clients = StubClients()
    clock = FakeClock()
    poller = InventoryPoller(store, settings(), clock=clock, clients=clients)
    throttle_list_tables(clients)
    await poller.poll_once()  # nothing raised

    snapshot = poller.counters.snapshot()
    assert ("ListTables", "throttled", 1) in snapshot.calls
    assert snapshot.last_poll_ms is None  # not complete
    [(target, at)] = poller.pending_retries().items()
    assert target == (OWN, REGION)
    assert clock.now <= at <= clock.now + poller.backoff.ceiling_s(1)
    assert await store.inventory() == []

    stub = clients.stub("dynamodb")
    queue_region(stub, ["orders"])
    queue_table(stub, "orders")
    clock.advance(10)
    await poller.poll_once()
    clients.assert_answered()
    assert poller.pending_retries() == {}
    assert poller.counters.snapshot().last_poll_ms == int(clock.now * 1000)
    assert list(await tables(store)) == ["orders"]


async def test_backoff_grows_while_the_throttling_lasts(store):
    clients = StubClients()
    clock = FakeClock()
    poller = InventoryPoller(store, settings(), clock=clock, clients=clients)
    poller.backoff = Backoff(initial_s=10.0, max_s=1000.0, jitter=(1.0, 1.0))
    for _ in range(3):
        throttle_list_tables(clients)
        await poller.poll_once()
    assert poller.pending_retries() == {(OWN, REGION): clock.now + 40.0}  # 10, 20, then 40 s
    assert ("ListTables", "throttled", 3) in poller.counters.snapshot().calls


async def test_run_polls_a_throttled_region_again_after_its_backoff_not_a_whole_interval_later(store):
    clients = StubClients()
    poller = InventoryPoller(store, settings(interval_s=3600.0), clients=clients)
    poller.backoff = Backoff(initial_s=0.05, max_s=0.1, jitter=FULL_JITTER)
    throttle_list_tables(clients)
    stub = clients.stub("dynamodb")
    queue_region(stub, ["orders"])
    queue_table(stub, "orders")
    running = asyncio.create_task(poller.run())

    async def polled():
        return bool(await store.inventory(TABLE))

    await eventually(polled, timeout_s=5.0)
    await stop(running)
    clients.assert_answered()
    calls = poller.counters.snapshot().calls
    assert ("ListTables", "throttled", 1) in calls and ("ListTables", "ok", 1) in calls


async def test_a_lost_connection_backs_off_like_throttling(store):
    clients = StubClients()
    client = clients.unstubbed("dynamodb")

    def refuse(**_):
        raise EndpointConnectionError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com")

    client.meta.events.register("before-call.dynamodb.ListTables", refuse)
    poller = InventoryPoller(store, settings(), clients=clients)
    await poller.poll_once()
    assert ("ListTables", "failed", 1) in poller.counters.snapshot().calls
    assert list(poller.pending_retries()) == [(OWN, REGION)]


async def test_a_throttled_table_call_cuts_the_region_off_but_keeps_the_tables_done(store):
    clients = StubClients()
    stub = clients.stub("dynamodb")
    queue_region(stub, ["alpha", "beta"])
    queue_table(stub, "alpha")
    stub.add_response("describe_table", describe_table("beta"), {"TableName": "beta"})
    stub.add_client_error("list_tags_of_resource", "ThrottlingException", "Rate exceeded", 400)
    clock = FakeClock()
    poller = InventoryPoller(store, settings(), clock=clock, clients=clients)
    await poller.poll_once()
    clients.assert_answered()
    assert list(await tables(store)) == ["alpha"]
    assert list(poller.pending_retries()) == [(OWN, REGION)]

    # The retry, seconds later, leaves DescribeLimits out: it throttles when asked twice a minute.
    clock.advance(10)
    stub.add_response("list_tables", {"TableNames": ["alpha", "beta"]}, {})
    queue_table(stub, "alpha")
    queue_table(stub, "beta")
    await poller.poll_once()
    clients.assert_answered()
    assert list(await tables(store)) == ["alpha", "beta"]
    assert poller.pending_retries() == {}
    assert ("DescribeLimits", "ok", 1) in poller.counters.snapshot().calls


async def test_a_denied_tag_listing_is_a_problem_of_that_document_whose_other_fields_stand(store, caplog):
    clients = StubClients()
    stub = clients.stub("dynamodb")
    queue_region(stub, ["alpha", "beta"])
    denied = client_error("AccessDeniedException", "not authorized to perform dynamodb:ListTagsOfResource")
    queue_table(stub, "alpha", table=describe_table("alpha", read=30, write=12), tags=denied)
    queue_table(stub, "beta", tags=denied)
    poller = InventoryPoller(store, settings(), clients=clients)
    with caplog.at_level(logging.INFO, logger="receiver.inventory.poller"):
        await poller.poll_once()
    clients.assert_answered()

    a = (await tables(store))["alpha"]
    assert a["problems"] == {
        "ListTagsOfResource": "AccessDeniedException: not authorized to perform dynamodb:ListTagsOfResource"
    }
    assert a["tags"] == {}
    assert a["provisioned"] == {"read": 30, "write": 12}  # the rest of the document stands
    assert a["ttl"] == {"status": "DISABLED", "attribute": None}
    assert a["point_in_time_recovery"] == "DISABLED"
    snapshot = poller.counters.snapshot()
    assert ("ListTagsOfResource", "denied", 2) in snapshot.calls
    assert snapshot.last_poll_ms is not None  # a problem of one table leaves the poll complete
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [(r.api, r.tables) for r in warnings] == [("ListTagsOfResource", 2)]  # one line, not one per table
    [summary] = [r for r in caplog.records if r.levelno == logging.INFO and r.getMessage() == "inventory poll"]
    # GetCallerIdentity, ListTables, DescribeLimits, then five calls per table
    assert (summary.tables, summary.calls, summary.failures) == (2, 13, 2)


async def test_an_error_answer_to_one_tables_tag_listing_costs_that_fact_not_the_poll(store):
    # A 5xx to a table's other call would be asked again in the next poll anyway; cutting the
    # region off for it would keep every table's document out for as long as it lasts.
    clients = StubClients()
    stub = clients.stub("dynamodb")
    queue_region(stub, ["alpha", "beta"])
    queue_table(stub, "alpha", tags=client_error("InternalServerError", "try again", 500))
    queue_table(stub, "beta", tags=[{"Key": "team", "Value": "b"}])
    poller = InventoryPoller(store, settings(), clients=clients)
    await poller.poll_once()
    clients.assert_answered()
    found = await tables(store)
    assert found["alpha"]["problems"] == {"ListTagsOfResource": "InternalServerError: try again"}
    assert found["beta"]["tags"] == {"team": "b"} and found["beta"]["problems"] == {}
    assert ("ListTagsOfResource", "failed", 1) in poller.counters.snapshot().calls
    assert poller.pending_retries() == {}
    assert poller.counters.snapshot().last_poll_ms is not None


async def test_a_denied_describe_table_keeps_what_the_other_calls_gave(store):
    clients = StubClients()
    stub = clients.stub("dynamodb")
    queue_region(stub, ["alpha"])
    stub.add_client_error("describe_table", "AccessDeniedException", "no", 400)
    stub.add_response(
        "describe_time_to_live",
        {"TimeToLiveDescription": {"TimeToLiveStatus": "ENABLED", "AttributeName": "x"}},
        {"TableName": "alpha"},
    )
    stub.add_response(
        "describe_continuous_backups",
        {"ContinuousBackupsDescription": {"ContinuousBackupsStatus": "ENABLED"}},
        {"TableName": "alpha"},
    )
    stub.add_response(
        "describe_contributor_insights", {"ContributorInsightsStatus": "DISABLED"}, {"TableName": "alpha"}
    )
    poller = InventoryPoller(store, settings(), clients=clients)
    await poller.poll_once()
    clients.assert_answered()
    a = (await tables(store))["alpha"]
    assert a["problems"] == {"DescribeTable": "AccessDeniedException: no"}
    assert a["arn"] is None and a["ttl"] == {"status": "ENABLED", "attribute": "x"}


async def test_a_denied_listing_skips_that_region_for_this_poll_and_logs_it_once(store, caplog):
    clients = StubClients()
    clients.stub("dynamodb", REGION).add_client_error("list_tables", "AccessDeniedException", "no ListTables", 400)
    queue_region(clients.stub("dynamodb", EU), ["eu-table"])
    queue_table(clients.stub("dynamodb", EU), "eu-table", region=EU)
    poller = InventoryPoller(store, settings(REGION, EU), clients=clients)
    with caplog.at_level(logging.WARNING, logger="receiver.inventory.poller"):
        await poller.poll_once()
    clients.assert_answered()
    assert list(await tables(store, region=EU)) == ["eu-table"]
    assert poller.pending_retries() == {}  # denial is not retried before the next poll
    [warning] = caplog.records
    assert (warning.region, warning.api, warning.error) == (
        REGION,
        "ListTables",
        "AccessDeniedException: no ListTables",
    )
    snapshot = poller.counters.snapshot()
    assert ("ListTables", "denied", 1) in snapshot.calls
    assert snapshot.last_poll_ms is None and snapshot.tables == 1


async def test_a_denied_role_skips_its_account_and_the_own_account_is_polled(store, caplog):
    clients = StubClients(
        {OWN: ACCOUNT, ROLE: client_error("AccessDenied", "not authorized to perform sts:AssumeRole", 403)}
    )
    queue_region(clients.stub("dynamodb"), [])
    poller = InventoryPoller(store, settings(roles=(ROLE,)), clients=clients)
    with caplog.at_level(logging.WARNING, logger="receiver.inventory.poller"):
        await poller.poll_once()
    clients.assert_answered()
    snapshot = poller.counters.snapshot()
    assert ("AssumeRole", "denied", 1) in snapshot.calls
    assert ("ListTables", "ok", 1) in snapshot.calls
    [warning] = caplog.records
    assert (warning.source, warning.error) == (ROLE, "AccessDenied: not authorized to perform sts:AssumeRole")
    assert not any(source == ROLE for source, _, _ in clients.asked)


async def test_a_table_gone_at_describe_table_is_marked_deleted(store):
    clock = FakeClock()
    await put_table(store, table_document(ACCOUNT, REGION, "gone", describe_table("gone")["Table"]))
    clients = StubClients()
    stub = clients.stub("dynamodb")
    queue_region(stub, ["gone"])
    stub.add_client_error("describe_table", "ResourceNotFoundException", "Requested resource not found", 400)
    poller = InventoryPoller(store, settings(), clock=clock, clients=clients)
    await poller.poll_once()
    clients.assert_answered()
    gone = (await tables(store))["gone"]
    assert (gone["status"], gone["deleted"]) == ("DELETED", clock.now)
    assert gone["problems"] == {}
    assert poller.counters.snapshot().tables == 0


async def test_an_on_demand_table_keeps_its_maximum_warm_throughput_class_and_replicas(store):
    clients = StubClients()
    stub = clients.stub("dynamodb")
    queue_region(stub, ["events"])
    table = describe_table(
        "events",
        mode="PAY_PER_REQUEST",
        read=0,
        write=0,
        OnDemandThroughput={"MaxReadRequestUnits": 500, "MaxWriteRequestUnits": -1},
        WarmThroughput={"ReadUnitsPerSecond": 12000, "WriteUnitsPerSecond": 4000, "Status": "ACTIVE"},
        TableClassSummary={"TableClass": "STANDARD"},
        Replicas=[{"RegionName": EU, "ReplicaStatus": "ACTIVE"}],
    )
    insights = {"TableName": "events", "ContributorInsightsStatus": "ENABLED",
                "ContributorInsightsRuleList": ["DynamoDBContributorInsights-PKT-events-1", "DynamoDBContributorInsights-PKC-events-1"]}  # fmt: skip
    queue_table(stub, "events", table=table, tags=[{"Key": "team", "Value": "a"}], insights=insights)
    poller = InventoryPoller(store, settings(), clients=clients)
    await poller.poll_once()
    clients.assert_answered()
    events = (await tables(store))["events"]
    assert events["on_demand_max"] == {"read": 500, "write": None}
    assert events["provisioned"] is None
    assert events["warm_throughput"] == {"read": 12000, "write": 4000, "status": "ACTIVE"}
    assert events["table_class"] == "STANDARD"
    assert events["replicas"] == [{"region": EU, "status": "ACTIVE"}]
    assert events["contributor_insights"] == {"status": "ENABLED", "rules": insights["ContributorInsightsRuleList"]}


async def test_tag_listings_of_one_account_are_spaced_out():
    pace = _Pace(20.0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    for _ in range(3):
        await pace.wait(ACCOUNT)
    assert loop.time() - started >= 0.1  # two gaps of 50 ms
    other = loop.time()
    await pace.wait(OTHER_ACCOUNT)
    assert loop.time() - other < 0.05  # another account waits for nobody


async def test_a_failing_round_is_logged_and_run_carries_on(store, caplog):
    clients = StubClients()
    poller = InventoryPoller(store, settings(interval_s=0.05), clients=clients)
    rounds = 0

    async def broken() -> None:
        nonlocal rounds
        rounds += 1
        raise KeyError("a bug")

    poller.poll_once = broken  # type: ignore[method-assign]
    poller.insights_once = broken  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR, logger="receiver.inventory.poller"):
        running = asyncio.create_task(poller.run())

        async def several():
            return rounds >= 4

        await eventually(several)
        await stop(running)
    assert running.done() and not running.cancelled()  # returned quietly
    assert any(r.getMessage().startswith("inventory: a round failed") for r in caplog.records)


async def test_an_answer_that_is_no_aws_error_is_named_by_its_status_and_long_messages_are_cut():
    def page() -> None:
        raise client_error("502", "<!doctype html><title>Bad Gateway</title>", 502)

    def chatty() -> None:
        raise client_error("ValidationException", "x" * 1000)

    counters = InventoryCounters()
    with pytest.raises(CallError) as gateway:
        await call(counters, "DescribeTable", page)
    assert (gateway.value.message, gateway.value.transient) == ("HTTP 502 without an AWS error", True)
    with pytest.raises(CallError) as long:
        await call(counters, "DescribeTable", chatty)
    assert len(long.value.message) == MESSAGE_CHARS and long.value.message.startswith("ValidationException: xxx")
