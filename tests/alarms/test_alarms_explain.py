"""Explanations: the dominant throttle cause (a pure choice), and the notification that names it."""

from __future__ import annotations

import asyncio

import pytest

from receiver.alarms.channels import headline, notification_body
from receiver.alarms.counters import AlarmCounters
from receiver.alarms.evaluator import AlarmEvaluator
from receiver.alarms.explain import CAUSES, EXPLANATIONS, NOT_REPORTED, dominant, top_key_phrase
from receiver.alarms.notifier import Notifier
from receiver.alarms.rules import AlarmRule
from receiver.inventory.documents import item_of
from receiver.model import FIRING, RESOLVED, TOP_KEYS, AlarmEvent
from tests.alarms.kit import SERVICE, Clock, minute, put_metrics, rule

ACCOUNT = SERVICE.removeprefix("aws-dynamodb::")

WRITE = EXPLANATIONS["write_throttle_cause"]
BOTH = EXPLANATIONS["throttle_cause"]
THROTTLED = "aws_dynamodb_endpoint_write_throttled_requests"


def cause_metric(key: str, direction: str = "write", prefix: str = "aws_dynamodb_endpoint_") -> str:
    return f"{prefix}{direction}_{key}_throttle_events"


def explain(explanation, values, minutes=(0,), scope="endpoint") -> str:
    return explanation.explain(scope, values, minutes)


@pytest.mark.parametrize("winner", CAUSES, ids=lambda cause: cause.key)
def test_the_cause_with_the_most_events_is_named_with_its_count_and_remedy(winner):
    values = {cause_metric(cause.key): {0: 5.0} for cause in CAUSES}
    values[cause_metric(winner.key)] = {0: 7.0}
    text = explain(WRITE, values)
    assert text == f"cause: {winner.label}, 7 write throttle events; {winner.remedy}"


def test_the_remedies_say_what_to_do_for_each_cause():
    remedies = {cause.key: cause.remedy for cause in CAUSES}
    assert "provisioned capacity" in remedies["provisioned_throughput"]
    assert "quota" in remedies["account_limit"]
    assert "partition key" in remedies["key_range_throughput"]
    assert "maximum on-demand throughput" in remedies["max_on_demand_throughput"]


def test_a_tie_goes_to_the_cause_listed_first_whatever_the_order_of_the_values():
    tied = {
        cause_metric("key_range_throughput"): {0: 4.0},
        cause_metric("provisioned_throughput"): {0: 4.0},
    }
    assert explain(WRITE, tied).startswith("cause: provisioned throughput exceeded, 4 write")
    assert explain(WRITE, dict(reversed(tied.items()))).startswith("cause: provisioned throughput exceeded")


def test_reads_and_writes_tie_to_reads_when_both_directions_are_explained():
    values = {cause_metric("account_limit", "write"): {0: 2.0}, cause_metric("account_limit", "read"): {0: 2.0}}
    assert ", 2 read throttle events;" in explain(BOTH, values)
    values[cause_metric("account_limit", "write")] = {0: 3.0}
    assert ", 3 write throttle events;" in explain(BOTH, values)


def test_without_any_throttle_event_the_cause_is_not_reported():
    assert explain(WRITE, {}) == NOT_REPORTED
    assert explain(WRITE, {cause_metric(cause.key): {0: 0.0} for cause in CAUSES}) == NOT_REPORTED
    assert dominant(WRITE.candidates("endpoint"), {}) is None


def test_only_the_given_minutes_and_the_explained_direction_count():
    values = {
        cause_metric("key_range_throughput"): {0: 1.0, 2: 1.0, 1: 50.0},  # minute 1 is not asked for
        cause_metric("provisioned_throughput"): {0: 1.0},
        cause_metric("provisioned_throughput", "read"): {0: 90.0},  # reads: not this explanation's
    }
    assert explain(WRITE, values, minutes=(0, 2)).startswith(
        "cause: a hot partition (key range throughput exceeded), 2 "
    )


def test_one_event_is_singular_and_account_scope_reads_the_account_metrics():
    metric = cause_metric("max_on_demand_throughput", prefix="aws_dynamodb_")
    assert metric in WRITE.metrics("service")
    assert explain(WRITE, {metric: {0: 1.0}}, scope="service").startswith(
        "cause: the table's on-demand maximum reached, 1 write throttle event;"
    )


# ---- end to end: the evaluator reads the causes and the notification names the dominant one ----

EXPLAINED = f"""\
expression: {THROTTLED}
scope: endpoint
op: ">"
threshold: 0
period: 5
count: 3
silence-period: 0
explain: write_throttle_cause
message: "{{endpoint}}: {{value}} writes throttled; {{cause}}"
"""


class Recorder:
    """A channel that keeps what it is sent."""

    name = "recorder"

    def __init__(self) -> None:
        self.sent: list[tuple[AlarmEvent, AlarmRule]] = []

    async def send(self, event: AlarmEvent, rule: AlarmRule) -> None:
        self.sent.append((event, rule))


async def evaluate(store, rules, minutes: dict[int, dict[str, dict[str, float]]]) -> list[tuple[AlarmEvent, AlarmRule]]:
    """Store each minute and evaluate it; what a channel received."""
    recorder, counters, clock = Recorder(), AlarmCounters(), Clock()
    notifier = Notifier([recorder], counters)
    evaluator = AlarmEvaluator(store, rules, notifier, counters, settle_s=0, catch_up_minutes=0, clock=clock)
    worker = asyncio.create_task(notifier.run())
    try:
        for i, metrics in minutes.items():
            await put_metrics(store, i, metrics)
            clock.at(i)
            await evaluator.tick()
        assert await notifier.drain(5)
    finally:
        worker.cancel()
    return recorder.sent


def throttled(value: float, **causes: float) -> dict[str, dict[str, float]]:
    return {THROTTLED: {"GameScores": value}} | {cause_metric(k): {"GameScores": v} for k, v in causes.items()}


async def test_a_firing_throttle_alarm_names_the_cause_that_dominated_its_breaching_minutes(store, tmp_path):
    minutes = {
        0: throttled(0, provisioned_throughput=40),  # not breaching: its events do not count
        1: throttled(3, provisioned_throughput=2, key_range_throughput=5),
        2: throttled(0),
        3: throttled(4, provisioned_throughput=3, key_range_throughput=4),
        4: throttled(6, key_range_throughput=6),
    }
    sent = await evaluate(store, [rule(tmp_path, EXPLAINED)], minutes)
    ((event, rule_),) = sent
    assert (event.kind, event.minute_ms, event.value) == (FIRING, minute(4), 6.0)
    cause = CAUSES[2]
    expected = f"GameScores: 6 writes throttled; cause: {cause.label}, 15 write throttle events; {cause.remedy}"
    assert event.message == expected
    assert headline(event) == f"[FIRING] {expected}"
    assert notification_body(event, rule_)["message"] == expected
    assert (await store.alarm_events(0))[0].message == expected  # what /api/v1/alarms and the dashboard show


async def test_without_cause_metrics_the_notification_says_the_cause_is_not_reported(store, tmp_path):
    sent = await evaluate(store, [rule(tmp_path, EXPLAINED)], {i: throttled(2) for i in range(3)})
    ((event, _),) = sent
    assert event.message == f"GameScores: 2 writes throttled; {NOT_REPORTED}"


async def test_a_resolved_notification_explains_the_minute_it_resolved_in(store, tmp_path):
    minutes = {i: throttled(2, account_limit=1) for i in range(3)} | {
        i: throttled(0, max_on_demand_throughput=1) for i in range(3, 6)
    }
    sent = await evaluate(store, [rule(tmp_path, EXPLAINED)], minutes)
    assert [(e.kind, e.minute_ms) for e, _ in sent] == [(FIRING, minute(2)), (RESOLVED, minute(5))]
    assert "the account's per-table throughput quota reached, 3 write throttle events" in sent[0][0].message
    assert "the table's on-demand maximum reached, 1 write throttle event;" in sent[1][0].message


async def test_an_explanation_reads_only_its_own_entity(store, tmp_path):
    minutes = {
        i: throttled(1, provisioned_throughput=1) | {cause_metric("key_range_throughput"): {"Orders": 99}}
        for i in range(3)
    }
    ((event, _),) = await evaluate(store, [rule(tmp_path, EXPLAINED)], minutes)
    assert event.endpoint == "GameScores" and event.service == SERVICE
    assert "provisioned throughput exceeded, 3 write throttle events" in event.message


# ---- the most throttled key, from the inventory's Contributor Insights report ----


def top_keys(start_minute: int, end_minute: int, *keys: tuple[list[str], float]) -> dict:
    return {
        "start": minute(start_minute) / 1000,
        "end": minute(end_minute) / 1000,
        "keys": [{"key": key, "value": value} for key, value in keys],
        "rules": ["DynamoDBContributorInsights-PKT-GameScores-1"],
    }


def test_the_top_key_of_a_window_overlapping_the_minutes_is_named_with_its_count():
    documents = [top_keys(0, 5, (["player#7"], 120.0), (["player#9"], 3.0))]
    phrase = top_key_phrase(documents, (minute(3), minute(4)))
    assert phrase == "; most throttled key: player#7 (120 throttled requests, Contributor Insights)"
    # Partition and sort key both shown; one request is singular.
    assert top_key_phrase([top_keys(0, 5, (["player#7", "2024-01-01"], 1.0))], (minute(4),)) == (
        "; most throttled key: player#7 | 2024-01-01 (1 throttled request, Contributor Insights)"
    )


def test_a_window_apart_from_the_minutes_or_without_keys_names_no_key():
    assert top_key_phrase([top_keys(0, 2, (["player#7"], 5.0))], (minute(10),)) == ""
    assert top_key_phrase([top_keys(0, 5)], (minute(3),)) == ""
    assert top_key_phrase([], (minute(3),)) == ""


def test_of_two_regions_the_larger_top_key_is_named():
    documents = [top_keys(0, 5, (["a"], 4.0)), top_keys(0, 5, (["b"], 40.0))]
    assert "most throttled key: b (40 throttled" in top_key_phrase(documents, (minute(3),))


async def test_a_throttle_notification_names_the_top_key_the_inventory_holds_for_its_table(store, tmp_path):
    await store.put_inventory(
        [
            item_of(TOP_KEYS, ACCOUNT, "us-east-1", "GameScores", minute(2), top_keys(0, 3, (["player#7"], 77.0))),
            item_of(TOP_KEYS, ACCOUNT, "us-east-1", "Orders", minute(2), top_keys(0, 3, (["order#1"], 999.0))),
        ]
    )
    sent = await evaluate(
        store, [rule(tmp_path, EXPLAINED)], {i: throttled(2, key_range_throughput=2) for i in range(3)}
    )
    ((event, _),) = sent
    assert event.message.endswith(
        f"{CAUSES[2].remedy}; most throttled key: player#7 (77 throttled requests, Contributor Insights)"
    )
