"""Replicas on one store take turns at the buckets (receiver/derive/replicas.py): each derives
its share of the minutes, a replica alone derives every one at once, and when a replica
stops another takes its turns over once its leases run out."""

from __future__ import annotations

from receiver.derive.deriver import Deriver
from receiver.derive.replicas import DEFER_S
from receiver.model import MINUTE_MS
from receiver.store import MemoryStore
from tests.builders import T0, make_sample

MINUTES = 4


def replica(store, rules, now, name, derived):
    deriver = Deriver(store, rules, minute_retention_days=100_000, clock=lambda: now[0], holder=name)
    deriver.on_derived(lambda step, bucket: derived.append((name, bucket)))
    return deriver


async def stream(store, replicas, minutes=range(MINUTES)):
    """Each minute delivered in two halves, one to each replica, each pass after its commit."""
    for minute in minutes:
        for half, deriver in enumerate(replicas):
            samples = [make_sample(f"T{half}{i}", minute=minute, value=float(i)) for i in range(3)]
            await store.commit(f"{minute}-{half}", samples)
            deriver.touch(samples)
            await deriver.derive_pending(hours=False)


async def meet(replicas, now):
    """Each replica takes its slot and, at its next renewal, counts the others'."""
    for _ in range(2):
        for deriver in replicas:
            await deriver.turns.refresh()
        now[0] += replicas[0].lease_s / 3


async def catch_up(replicas, now, seconds):
    """Stale scans and passes on every replica while ``seconds`` pass."""
    for _ in range(int(seconds) + 1):
        for deriver in replicas:
            await deriver.mark_stale(hours=False)
            await deriver.derive_pending(hours=False)
        now[0] += 1.0


async def test_two_replicas_derive_alternate_minutes(rules):
    store = MemoryStore()
    await store.open()
    now = [T0 / 1000 + 10.0]
    derived: list[tuple[str, int]] = []
    replicas = [replica(store, rules, now, name, derived) for name in "ab"]
    await meet(replicas, now)
    await stream(store, replicas)
    await catch_up(replicas, now, 2)
    by_minute = {}
    for name, bucket in derived:
        by_minute.setdefault(bucket, set()).add(name)
    assert sorted(by_minute) == [T0 + m * MINUTE_MS for m in range(MINUTES)]
    assert all(len(names) == 1 for names in by_minute.values())  # each minute by one replica
    shares = [sum(1 for names in by_minute.values() if name in names) for name in "ab"]
    assert shares == [MINUTES // 2, MINUTES // 2]
    for minute in range(MINUTES):
        start = T0 + minute * MINUTE_MS
        assert len(await store.bucket_values(MINUTE_MS, start)) > 0
        assert (await store.stale_buckets(MINUTE_MS, start)) == []


async def test_a_replica_alone_derives_every_minute_at_once(rules):
    store = MemoryStore()
    await store.open()
    now = [T0 / 1000 + 10.0]
    derived: list[tuple[str, int]] = []
    alone = replica(store, rules, now, "a", derived)
    await stream(store, [alone, alone])
    assert sorted({bucket for _, bucket in derived}) == [T0 + m * MINUTE_MS for m in range(MINUTES)]
    assert alone.turns.replicas == 1


async def test_the_turns_of_a_replica_that_stops_go_to_the_other(rules):
    store = MemoryStore()
    await store.open()
    now = [T0 / 1000 + 10.0]
    derived: list[tuple[str, int]] = []
    first, second = (replica(store, rules, now, name, derived) for name in "ab")
    await meet([first, second], now)
    # The second replica stops: the first is sent everything and leaves its turns a moment.
    await stream(store, [first, first])
    assert len({bucket for _, bucket in derived}) == MINUTES // 2
    await catch_up([first], now, DEFER_S + 1)
    assert sorted({bucket for _, bucket in derived}) == [T0 + m * MINUTE_MS for m in range(MINUTES)]
    # Once the second's slot has run out, the first is alone: every minute is in its turn.
    now[0] += first.lease_s
    await first.turns.refresh()
    assert first.turns.replicas == 1
    late = make_sample("T00", minute=MINUTES, value=5.0)
    await store.commit("late", [late])
    first.touch([late])
    await first.derive_pending(hours=False)
    assert derived[-1] == ("a", T0 + MINUTES * MINUTE_MS)
    assert await store.bucket_values(MINUTE_MS, T0 + MINUTES * MINUTE_MS)
