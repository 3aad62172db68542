"""Evaluation on hand-built minutes: period/count, once per start, silence, resolve, late data,
restarts and two evaluators on one store."""

from __future__ import annotations

import asyncio

import pytest

from receiver.alarms.loader import default_alarms_dir, load_alarms
from receiver.model import FIRING, RESOLVED
from receiver.store import SQLiteStore
from tests.alarms.kit import SERVICE, Clock, evaluator, minute, put_minute, rule

THROTTLED = """\
expression: aws_dynamodb_endpoint_write_throttled_requests
scope: endpoint
op: ">"
threshold: 0
period: 3
count: 2
silence-period: {silence}
message: "{{endpoint}} of {{service}}: {{value}} throttled (over {{threshold}})"
"""


async def run_minutes(store, ev, clock, minutes: dict[int, dict[str, float]]):
    """Store each minute, then tick at it; the (minute index, kind) of every event written."""
    seen = []
    for i, tables in minutes.items():
        await put_minute(store, i, tables)
        clock.at(i)
        seen += [((e.minute_ms - minute(0)) // 60_000, e.kind) for e in await ev.tick()]
    return seen


async def test_it_fires_on_the_minute_count_of_period_minutes_breach(store, tmp_path):
    clock = Clock()
    ev = evaluator(store, [rule(tmp_path, THROTTLED.format(silence=0))], clock)
    seen = await run_minutes(store, ev, clock, {0: {"T": 4}, 1: {"T": 0}, 2: {"T": 7}})
    assert seen == [(2, FIRING)]
    (event,) = await store.alarm_events(0)
    assert (event.service, event.endpoint, event.value, event.seq) == (SERVICE, "T", 7.0, 1)
    assert event.message == f"T of {SERVICE}: 7 throttled (over 0)"


async def test_one_breaching_minute_in_the_period_does_not_fire(store, tmp_path):
    clock = Clock()
    ev = evaluator(store, [rule(tmp_path, THROTTLED.format(silence=0))], clock)
    seen = await run_minutes(store, ev, clock, {0: {"T": 4}, 1: {"T": 0}, 2: {"T": 0}, 3: {"T": 5}})
    assert seen == []


async def test_a_firing_alarm_is_not_repeated_while_it_stays_on(store, tmp_path):
    clock = Clock()
    ev = evaluator(store, [rule(tmp_path, THROTTLED.format(silence=0))], clock)
    seen = await run_minutes(store, ev, clock, {i: {"T": 3} for i in range(8)})
    assert seen == [(1, FIRING)]


async def test_a_reminder_goes_out_when_the_silence_period_has_passed(store, tmp_path):
    clock = Clock()
    ev = evaluator(store, [rule(tmp_path, THROTTLED.format(silence=4))], clock)
    seen = await run_minutes(store, ev, clock, {i: {"T": 3} for i in range(10)})
    assert seen == [(1, FIRING), (5, FIRING), (9, FIRING)]


async def test_it_resolves_once_fewer_than_count_minutes_breach(store, tmp_path):
    clock = Clock()
    ev = evaluator(store, [rule(tmp_path, THROTTLED.format(silence=0))], clock)
    seen = await run_minutes(store, ev, clock, {0: {"T": 1}, 1: {"T": 1}, 2: {"T": 0}, 3: {"T": 0}, 4: {"T": 0}})
    assert seen == [(1, FIRING), (3, RESOLVED)]
    resolved = (await store.alarm_events(minute(3)))[0]
    assert (resolved.seq, resolved.value) == (2, 0.0)


async def test_a_new_start_within_the_silence_period_is_held_back(store, tmp_path):
    clock = Clock()
    ev = evaluator(store, [rule(tmp_path, THROTTLED.format(silence=6))], clock)
    on, off = {"T": 1}, {"T": 0}
    seen = await run_minutes(store, ev, clock, dict(enumerate([on, on, off, off, on, on, on, on])))
    # fired at 1, resolved at 3, breaching again from 5 but silent until 1 + 6 = 7
    assert seen == [(1, FIRING), (3, RESOLVED), (7, FIRING)]


async def test_a_table_that_stops_reporting_resolves(store, tmp_path):
    clock = Clock()
    ev = evaluator(store, [rule(tmp_path, THROTTLED.format(silence=0))], clock)
    seen = await run_minutes(store, ev, clock, {0: {"T": 1}, 1: {"T": 1}, 2: {"U": 0}, 3: {"U": 0}})
    assert seen == [(1, FIRING), (3, RESOLVED)]


async def test_a_minute_without_any_values_is_not_evaluated(store, tmp_path):
    clock = Clock()
    ev = evaluator(store, [rule(tmp_path, THROTTLED.format(silence=0))], clock)
    await run_minutes(store, ev, clock, {0: {"T": 1}, 1: {"T": 1}})
    clock.at(5)  # the stream stopped: minutes 2 to 5 hold nothing
    assert await ev.tick() == []
    assert [e.kind for e in await store.alarm_heads()] == [FIRING]


async def test_late_data_counts_from_the_next_evaluation_and_retracts_nothing(store, tmp_path):
    clock = Clock()
    ev = evaluator(store, [rule(tmp_path, THROTTLED.format(silence=0))], clock)
    assert await run_minutes(store, ev, clock, {0: {"T": 0}, 1: {"T": 0}}) == []
    await put_minute(store, 0, {"T": 9})  # minute 0 corrected after it was evaluated
    assert await run_minutes(store, ev, clock, {2: {"T": 2}}) == [(2, FIRING)]
    await put_minute(store, 2, {"T": 0})  # the firing minute corrected to no breach
    assert await run_minutes(store, ev, clock, {3: {"T": 0}}) == [(3, RESOLVED)]
    assert [e.kind for e in await store.alarm_events(0)] == [FIRING, RESOLVED]


async def test_include_and_exclude_patterns_pick_the_tables(store, tmp_path):
    clock = Clock()
    body = THROTTLED.format(silence=0) + 'include-names-regex: "Game.*"\nexclude-names-regex: ".*Test"\n'
    ev = evaluator(store, [rule(tmp_path, body)], clock)
    tables = {"GameScores": 1, "GameTest": 1, "Orders": 1}
    await run_minutes(store, ev, clock, {0: tables, 1: tables})
    assert [e.endpoint for e in await store.alarm_events(0)] == ["GameScores"]


async def test_a_restarted_evaluator_repeats_nothing_and_carries_the_alarm_on(store, tmp_path):
    rules = [rule(tmp_path, THROTTLED.format(silence=0))]
    clock = Clock()
    assert await run_minutes(store, evaluator(store, rules, clock), clock, {0: {"T": 1}, 1: {"T": 1}}) == [(1, FIRING)]
    restarted = evaluator(store, rules, clock, catch_up=10)  # a new process catching up
    assert await run_minutes(store, restarted, clock, {2: {"T": 1}, 3: {"T": 0}, 4: {"T": 0}}) == [(4, RESOLVED)]


async def test_a_restart_that_missed_minutes_catches_up_on_them(store, tmp_path):
    rules = [rule(tmp_path, THROTTLED.format(silence=0))]
    clock = Clock()
    for i in range(4):
        await put_minute(store, i, {"T": 1})
    clock.at(3)
    events = await evaluator(store, rules, clock, catch_up=10).tick()
    assert [(e.minute_ms, e.kind) for e in events] == [(minute(1), FIRING)]


async def test_two_evaluators_on_one_store_write_each_event_once(tmp_path):
    path = tmp_path / "metrics.db"
    first, second = SQLiteStore(path), SQLiteStore(path)
    await first.open()
    await second.open()
    try:
        rules = [rule(tmp_path, THROTTLED.format(silence=0))]
        clock = Clock()
        a, b = evaluator(first, rules, clock), evaluator(second, rules, clock)
        written = []
        for i, value in enumerate([1, 1, 1, 0, 0, 1, 1]):
            await put_minute(first, i, {"T": value, "U": value})
            clock.at(i)
            for events in await asyncio.gather(a.tick(), b.tick()):
                written += events
        stored = await first.alarm_events(0)
        assert sorted(written, key=lambda e: (e.minute_ms, e.endpoint)) == stored
        assert [(e.endpoint, e.kind) for e in stored] == [
            ("T", FIRING),
            ("U", FIRING),
            ("T", RESOLVED),
            ("U", RESOLVED),
            ("T", FIRING),
            ("U", FIRING),
        ]
    finally:
        await first.close()
        await second.close()


async def test_the_shipped_replication_lag_rule_fires_after_ten_minutes_behind_and_not_before(store, tmp_path):
    (lag,) = [r for r in load_alarms(default_alarms_dir()) if r.name == "table_replication_lag"]
    metric = "aws_dynamodb_endpoint_replication_latency"
    clock = Clock()
    ev = evaluator(store, [lag], clock)
    behind, caught_up = {"Orders": 75_000.0}, {"Orders": 900.0}
    # nine minutes behind, one caught up, then behind again: ten in a row only from minute 10 to 19
    series = [behind] * 9 + [caught_up] + [behind] * 10 + [caught_up]
    seen = []
    for i, tables in enumerate(series):
        await put_minute(store, i, tables, metric)
        clock.at(i)
        seen += [((e.minute_ms - minute(0)) // 60_000, e.kind) for e in await ev.tick()]
    assert seen == [(19, FIRING), (20, RESOLVED)]
    (fired, _) = await store.alarm_events(0)
    assert fired.message == (
        f"Orders ({SERVICE}): global table replication 75000 ms behind (mean over receiving regions), "
        "above 60000 ms for 10 minutes in a row"
    )


@pytest.mark.parametrize("side", ["read", "write"])
async def test_the_shipped_near_ceiling_rules_fire_after_five_minutes_past_ninety_percent(store, side):
    (near,) = [r for r in load_alarms(default_alarms_dir()) if r.name == f"table_{side}_near_ceiling"]
    metric = f"aws_dynamodb_endpoint_{side}_ceiling_utilization"
    clock = Clock()
    ev = evaluator(store, [near], clock)
    # An on-demand table at 95 % of its maximum: one dip to 85 % restarts the count.
    series = [{"Orders": 95.0}] * 4 + [{"Orders": 85.0}] + [{"Orders": 95.0}] * 5
    seen = []
    for i, tables in enumerate(series):
        await put_minute(store, i, tables, metric)
        clock.at(i)
        seen += [((e.minute_ms - minute(0)) // 60_000, e.kind) for e in await ev.tick()]
    assert seen == [(9, FIRING)]
    (fired,) = await store.alarm_events(0)
    assert fired.message == (
        f"Orders ({SERVICE}): {side} capacity 95 % of the most the table can take (alarm above 90 %)"
    )
