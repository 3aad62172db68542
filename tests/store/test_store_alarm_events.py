"""Alarm events in every store: insert-if-absent per (rule, entity, seq), listing, heads."""

from __future__ import annotations

import asyncio

from receiver.model import FIRING, MINUTE_MS, RESOLVED, AlarmEvent
from receiver.store.base import DEFAULT_HOUR_RETENTION_DAYS
from tests.builders import T0

SERVICE = "aws-dynamodb::123456789012"


def event(seq=1, kind=FIRING, minute_ms=T0, rule="throttled", endpoint="GameScores#1", value=3.5):
    return AlarmEvent(rule, SERVICE, endpoint, seq, kind, minute_ms, value, 0.0, f"{kind} {seq}", T0 + 1)


async def test_an_event_is_stored_once_and_a_second_writer_of_its_seq_loses(store):
    assert await store.put_alarm_event(event())
    assert not await store.put_alarm_event(event(value=99.0))
    assert await store.alarm_events(T0) == [event()]


async def test_concurrent_writers_of_one_seq_have_exactly_one_winner(atomic_store):
    results = await asyncio.gather(*(atomic_store.put_alarm_event(event(value=float(i))) for i in range(4)))
    assert sorted(results) == [False, False, False, True]


async def test_events_read_back_exactly_in_minute_order_from_since(store):
    later = event(seq=2, kind=RESOLVED, minute_ms=T0 + 5 * MINUTE_MS, value=0.0)
    service_event = event(rule="user_errors", endpoint=None, minute_ms=T0 + MINUTE_MS, value=1e-200)
    for e in (later, event(), service_event):
        assert await store.put_alarm_event(e)
    assert await store.alarm_events(T0) == [event(), service_event, later]
    assert await store.alarm_events(T0 + MINUTE_MS) == [service_event, later]


async def test_heads_are_the_latest_event_of_each_rule_and_entity(store):
    first, second = event(), event(seq=2, kind=RESOLVED, minute_ms=T0 + MINUTE_MS)
    other = event(endpoint="Orders")
    for e in (second, first, other):
        await store.put_alarm_event(e)
    assert await store.alarm_heads() == [second, other]


async def test_events_past_the_hour_retention_are_pruned(pruning_store):
    # Pruned as DynamoDB's items expire (by TTL, with the hour retention), heads included:
    # a chain whose every event is that old starts again at its next event.
    retention_ms = int(DEFAULT_HOUR_RETENTION_DAYS * 86_400_000)
    old, kept = event(), event(seq=2, kind=RESOLVED, minute_ms=T0 + 2 * MINUTE_MS, value=0.0)
    forgotten = event(rule="user_errors", endpoint=None)
    for e in (old, kept, forgotten):
        assert await pruning_store.put_alarm_event(e)
    await pruning_store.prune(T0 + MINUTE_MS + retention_ms)
    assert await pruning_store.alarm_events(0) == [kept]
    assert await pruning_store.alarm_heads() == [kept]
    # The chain goes on from its head; the forgotten one starts over at seq 1.
    assert not await pruning_store.put_alarm_event(kept)
    assert await pruning_store.put_alarm_event(event(rule="user_errors", endpoint=None, minute_ms=T0 + 3 * MINUTE_MS))


async def test_dynamodb_alarm_events_expire_with_the_hour_retention(dynamodb_factory, clock):
    store = dynamodb_factory()
    await store.open()
    try:
        assert await store.put_alarm_event(event(minute_ms=int(clock.now) * 1000))
        clock.advance(DEFAULT_HOUR_RETENTION_DAYS * 86_400 - 60)
        assert len(await store.alarm_events(0)) == 1
        clock.advance(120)
        assert await store.alarm_events(0) == [] and await store.alarm_heads() == []
    finally:
        await store.close()
