"""The table inventory and leases in every store: upsert by key, listing by kind, retention,
persistence, and leases that exactly one replica holds at a time."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
import pytest

from receiver.model import LIMITS, MINUTE_MS, TABLE, TOP_KEYS, AlarmEvent, InventoryItem
from receiver.store import Store, StoreConfigError, StoreError
from receiver.store.base import DEFAULT_HOUR_RETENTION_DAYS
from receiver.store.memory import MemoryStore
from receiver.store.sqlite.schema import SCHEMA_VERSION
from tests.builders import T0, make_sample
from tests.store.conftest import AWS, MakeStore
from tests.store.test_store_dynamodb import GRANTED, raw_item, record_operations

ACCOUNT = "123456789012"
REGION = "us-east-1"
RETENTION_MS = int(DEFAULT_HOUR_RETENTION_DAYS * 86_400_000)
LEASE = "inventory"
LEASE_MS = 60_000


def item(name="GameScores", kind=TABLE, updated_ms=T0, body=None, account=ACCOUNT, region=REGION) -> InventoryItem:
    text = body if body is not None else orjson.dumps({"TableName": name, "updated": updated_ms}).decode()
    return InventoryItem(kind, account, region, name, updated_ms, text)


# -- the inventory -------------------------------------------------------------------


async def test_a_second_put_of_a_key_replaces_its_item(store):
    await store.put_inventory([item(), item("Orders")])
    newer = item(updated_ms=T0 + MINUTE_MS, body='{"TableStatus": "UPDATING"}')
    await store.put_inventory([newer])
    assert await store.inventory() == [newer, item("Orders")]


async def test_of_one_key_in_one_put_the_last_is_kept(store):
    last = item(body='{"last": true}')
    await store.put_inventory([item(), item("Orders"), last])
    assert await store.inventory() == [last, item("Orders")]


async def test_an_empty_put_changes_nothing(store):
    await store.put_inventory([item()])
    await store.put_inventory([])
    assert await store.inventory() == [item()]


async def test_the_inventory_is_sorted_by_key_and_filtered_by_kind(store):
    items = [
        item("Orders", kind=TOP_KEYS),
        item("b", region="eu-west-1"),
        item("", kind=LIMITS, region="eu-west-1"),
        item("a#b"),  # the key separator of DynamoDB's sort key, and its escaped form
        item("a%23b"),
        item("a"),
        item("", kind=LIMITS),
        item("z", account="000000000001"),
        item("Orders"),
    ]
    await store.put_inventory(items)
    by_key = sorted(items, key=lambda i: i.key)
    assert await store.inventory() == by_key
    for kind in (TABLE, LIMITS, TOP_KEYS):
        assert await store.inventory(kind) == [i for i in by_key if i.kind == kind]
    assert [(i.region, i.name) for i in await store.inventory(LIMITS)] == [("eu-west-1", ""), (REGION, "")]


async def test_many_items_all_come_back(store):
    # 1,200 tables of ~1 KB: more than one 1 MB page of a DynamoDB Query.
    tables = [item(f"Table{i:04d}", body=orjson.dumps({"TableName": f"Table{i:04d}", "pad": "x" * 1000}).decode())
              for i in range(1200)]  # fmt: skip
    await store.put_inventory(tables[600:])
    await store.put_inventory(tables[:600])
    await store.put_inventory([item("", kind=LIMITS)])
    assert await store.inventory(TABLE) == tables
    assert len(await store.inventory()) == 1201


async def test_items_past_the_hour_retention_are_pruned(pruning_store):
    old, kept = item("Old"), item("Kept", updated_ms=T0 + 2 * MINUTE_MS)
    await pruning_store.put_inventory([old, kept, item("", kind=LIMITS)])
    # Kept while updated_ms is at or after now - retention, as hourly values are.
    await pruning_store.prune(T0 + RETENTION_MS)
    assert len(await pruning_store.inventory()) == 3
    await pruning_store.prune(T0 + RETENTION_MS + 1)
    assert await pruning_store.inventory() == [kept]
    # A put afterwards brings an item back.
    await pruning_store.put_inventory([old])
    assert await pruning_store.inventory() == [kept, old]


async def test_dynamodb_items_expire_with_the_hour_retention(make_store, clock):
    """The DynamoDB form of the prune test: time passes instead of prune() deleting."""
    store = await make_store()
    now_ms = int(clock.now) * 1000
    old, recent = item("Old", updated_ms=now_ms), item("Recent", updated_ms=now_ms + 120_000)
    await store.put_inventory([old, recent])
    clock.advance(DEFAULT_HOUR_RETENTION_DAYS * 86_400 - 60)
    assert await store.inventory() == [old, recent]
    clock.advance(120)
    assert await store.inventory() == [recent]
    assert await store.inventory(TABLE) == [recent]


Reopen = Callable[[], Awaitable[Store]]


@pytest.fixture(params=["memory", "sqlite", pytest.param("dynamodb", marks=AWS), pytest.param("dynalite", marks=AWS)])
async def reopen(request, clock, sqlite_factory) -> AsyncIterator[Reopen]:
    """Opens a store on the same data each time it is called: the memory store opened
    again, a new SQLite store on the same file, a new DynamoDB store on the same table."""
    memory = MemoryStore(clock=clock)
    if request.param == "memory":
        new_store: Callable[[], Store] = lambda: memory  # noqa: E731
    elif request.param == "sqlite":
        new_store = sqlite_factory
    else:
        new_store = request.getfixturevalue(f"{request.param}_factory")
    opened: list[Store] = []

    async def make() -> Store:
        store = new_store()
        await store.open()
        opened.append(store)
        return store

    yield make
    for store in opened:
        await store.close()


async def test_the_inventory_and_leases_survive_close_and_open(reopen):
    first = await reopen()
    items = [item(), item("", kind=LIMITS), item("Orders", kind=TOP_KEYS)]
    await first.put_inventory(items)
    assert await first.take_lease(LEASE, "a", T0, LEASE_MS)
    await first.close()
    again = await reopen()
    assert await again.inventory() == sorted(items, key=lambda i: i.key)
    assert not await again.take_lease(LEASE, "b", T0 + 1, LEASE_MS)
    assert await again.take_lease(LEASE, "a", T0 + 1, LEASE_MS)


async def test_a_closed_store_refuses_inventory_and_lease_calls(reopen):
    store = await reopen()
    await store.close()
    calls = [
        store.put_inventory([item()]),
        store.inventory(),
        store.take_lease(LEASE, "a", T0, LEASE_MS),
        store.release_lease(LEASE, "a"),
    ]
    for call in calls:
        with pytest.raises(StoreError):
            await call


# -- leases ----------------------------------------------------------------------------


async def test_the_first_taker_holds_the_lease_until_it_ends(store):
    assert await store.take_lease(LEASE, "a", T0, LEASE_MS)
    assert not await store.take_lease(LEASE, "b", T0 + 1, LEASE_MS)
    assert not await store.take_lease(LEASE, "b", T0 + LEASE_MS - 1, LEASE_MS)
    # Other leases are apart.
    assert await store.take_lease("other", "b", T0, LEASE_MS)
    # At its end it is free (now_ms >= until): another takes it, and holds it in turn.
    assert await store.take_lease(LEASE, "b", T0 + LEASE_MS, LEASE_MS)
    assert not await store.take_lease(LEASE, "a", T0 + LEASE_MS + 1, LEASE_MS)


async def test_the_holder_renews_its_lease(store):
    assert await store.take_lease(LEASE, "a", T0, LEASE_MS)
    assert await store.take_lease(LEASE, "a", T0 + LEASE_MS // 2, LEASE_MS)
    # Renewed: held past the first end, until half a lease after it.
    assert not await store.take_lease(LEASE, "b", T0 + LEASE_MS, LEASE_MS)
    assert not await store.take_lease(LEASE, "b", T0 + LEASE_MS * 3 // 2 - 1, LEASE_MS)
    assert await store.take_lease(LEASE, "b", T0 + LEASE_MS * 3 // 2, LEASE_MS)


async def test_a_lease_taken_for_no_time_says_whether_another_holds_it_and_stays_free(store):
    # The deriver counts the replicas' slots this way (receiver/derive/replicas.py).
    assert await store.take_lease(LEASE, "a", T0, 0)  # free: answered True, and free still
    assert await store.take_lease(LEASE, "b", T0, LEASE_MS)
    assert not await store.take_lease(LEASE, "a", T0 + 1, 0)  # b holds it
    assert not await store.take_lease(LEASE, "c", T0 + 2, LEASE_MS)  # and the probe changed nothing
    assert await store.take_lease(LEASE, "a", T0 + LEASE_MS, 0)  # b's lease is over


async def test_release_frees_the_lease_and_only_its_holder_can_release(store):
    assert await store.take_lease(LEASE, "a", T0, LEASE_MS)
    await store.release_lease(LEASE, "b")  # not b's: nothing changes
    assert not await store.take_lease(LEASE, "b", T0 + 1, LEASE_MS)
    await store.release_lease(LEASE, "a")
    assert await store.take_lease(LEASE, "b", T0 + 2, LEASE_MS)
    await store.release_lease(LEASE, "a")  # a's is over: b's stays
    assert not await store.take_lease(LEASE, "a", T0 + 3, LEASE_MS)
    await store.release_lease("never-taken", "a")  # no lease: nothing to do


async def test_concurrent_takers_of_a_free_lease_have_exactly_one_winner(atomic_store):
    results = await asyncio.gather(atomic_store.take_lease(LEASE, "a", T0, LEASE_MS),
                                   atomic_store.take_lease(LEASE, "b", T0, LEASE_MS))  # fmt: skip
    assert sorted(results) == [False, True]
    holders = ["a", "b"]
    winner = holders[results.index(True)]
    assert await atomic_store.take_lease(LEASE, winner, T0 + 1, LEASE_MS)


async def test_concurrent_takers_of_an_expired_lease_have_exactly_one_winner(atomic_store):
    assert await atomic_store.take_lease(LEASE, "old", T0, LEASE_MS)
    now = T0 + LEASE_MS
    takers = [f"replica-{i}" for i in range(4)]
    results = await asyncio.gather(*(atomic_store.take_lease(LEASE, t, now, LEASE_MS) for t in takers))
    assert sorted(results) == [False, False, False, True]


# -- SQLite: the schema version --------------------------------------------------------


def peek(path, sql: str) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


async def test_a_version_2_sqlite_file_keeps_its_data_and_gains_the_inventory(sqlite_factory):
    store = sqlite_factory()
    await store.open()
    await store.commit("r1", [make_sample()])
    event = AlarmEvent("throttled", "aws-dynamodb::1", None, 1, "firing", T0, 1.0, 0.0, "firing", T0)
    assert await store.put_alarm_event(event)
    await store.close()
    with sqlite3.connect(store.path) as conn:  # the file as schema version 2 left it
        conn.executescript("DROP TABLE inventory; DROP TABLE leases; DROP TABLE entities; PRAGMA user_version = 2;")
    assert ("inventory",) not in peek(store.path, "SELECT name FROM sqlite_master")

    again = sqlite_factory()
    await again.open()
    assert peek(again.path, "PRAGMA user_version") == [(SCHEMA_VERSION,)] == [(5,)]
    assert await again.samples(0, 2**62) == [make_sample()]
    assert await again.is_committed("r1")
    assert await again.alarm_events(0) == [event]
    await again.put_inventory([item()])
    assert await again.inventory() == [item()]
    assert await again.take_lease(LEASE, "a", T0, LEASE_MS)
    await again.close()


async def test_a_new_sqlite_file_has_the_current_schema_version(sqlite_store):
    assert peek(sqlite_store.path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    tables = {name for (name,) in peek(sqlite_store.path, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"inventory", "leases"} <= tables


async def test_a_sqlite_file_of_the_next_version_is_refused(sqlite_factory):
    store = sqlite_factory()
    await store.open()
    await store.close()
    with sqlite3.connect(store.path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreConfigError) as caught:
        await sqlite_factory().open()
    assert "newer" in str(caught.value)


# -- DynamoDB: items and calls ---------------------------------------------------------


async def test_dynamodb_inventory_and_lease_items(make_store):
    store = await make_store(hour_retention_days=2)
    await store.put_inventory([item("a#b")])
    raw = raw_item(store, "IN", f"{TABLE}#{ACCOUNT}#{REGION}#a%23b")
    assert raw["body"] == {"S": item("a#b").body} and raw["name"] == {"S": "a#b"}
    assert int(raw["expires_at"]["N"]) == T0 // 1000 + 2 * 86_400
    assert await store.take_lease(LEASE, "a", T0, LEASE_MS)
    lease = raw_item(store, "LE", LEASE)
    assert lease["holder"] == {"S": "a"} and int(lease["until_ms"]["N"]) == T0 + LEASE_MS
    await store.release_lease(LEASE, "a")
    assert "Item" not in store.client.get_item(
        TableName=store.table_name, Key={"pk": {"S": "LE"}, "sk": {"S": LEASE}}, ConsistentRead=True
    )


async def test_dynamodb_reads_the_inventory_page_by_page(make_store: MakeStore):
    store = await make_store()
    pad = "x" * 2000
    await store.put_inventory([item(f"T{i:04d}", body=orjson.dumps({"pad": pad}).decode()) for i in range(700)])
    calls = record_operations(store)
    assert len(await store.inventory(TABLE)) == 700
    assert calls.count("Query") >= 2  # 1.4 MB: more than one page


async def test_dynamodb_inventory_and_leases_call_only_what_the_stack_grants(make_store):
    store = await make_store()
    calls = record_operations(store)
    await store.put_inventory([item(), item("", kind=LIMITS)])
    await store.inventory()
    await store.inventory(LIMITS)
    await store.take_lease(LEASE, "a", T0, LEASE_MS)
    await store.take_lease(LEASE, "b", T0, LEASE_MS)
    await store.release_lease(LEASE, "b")
    await store.release_lease(LEASE, "a")
    await store.prune(T0)
    assert calls and set(calls) <= GRANTED, set(calls) - GRANTED
