"""The SQLite store's list of entities (receiver/store/sqlite/entities.py): kept by put_derived,
read by ``entities``, gained by a version 3 file filled from its values, pruned with the hour
retention; and the reductions' query plan (receiver/store/sqlite/reductions.py)."""

from __future__ import annotations

import sqlite3

import pytest

from receiver.model import DAY_MS, HOUR_MS, MINUTE_MS, DerivedValue
from receiver.store.base import entities_of
from receiver.store.sqlite.reductions import (
    LATEST,
    LATEST_OF,
    SEQUENTIAL_SUM,
    TOTALS,
    VALUES_OF,
    SequentialSum,
    endpoint_totals,
)
from receiver.store.sqlite.schema import SCHEMA_VERSION
from tests.builders import T0

SERVICE = "aws-dynamodb::123456789012"
OTHER = "aws-dynamodb::210987654321"
WEST, EAST = "eu-west-1", "us-east-1"
HOUR = T0 - T0 % HOUR_MS


def value(endpoint, time_ms, region="", merged=True, service=SERVICE, metric="aws_dynamodb_endpoint_x"):
    scope = "endpoint" if endpoint else "service"
    return DerivedValue(metric, scope, service, endpoint, "AWS_DYNAMODB", time_ms, 1.0, None, region, merged)


def minute_values(minute: int) -> list[DerivedValue]:
    """One minute's values: "Global" in two regions, "Local" in one until minute 3, "Late"
    from minute 4, the account's own values, another account's table."""
    t = T0 + minute * MINUTE_MS
    values = [value(None, t), value("Global", t), value("Global", t, WEST, False), value("Global", t, EAST, False)]
    if minute < 3:
        values.append(value("Local", t, WEST))
    if minute >= 4:
        values.append(value("Late", t, EAST))
    values.append(value("Local", t, WEST, service=OTHER))
    return values


async def fill(store) -> None:
    for minute in range(6):
        await store.put_derived(MINUTE_MS, T0 + minute * MINUTE_MS, 1, minute_values(minute))
    await store.put_derived(HOUR_MS, HOUR, 1, [value("Global", HOUR), value("Local", HOUR, WEST)])


def peek(path, sql: str, *params) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql, params).fetchall()


def scanned(path, since_ms: int) -> list:
    """What ``entities`` answered before the list: a scan of every minute value since ``since_ms``."""
    rows = peek(
        path,
        "SELECT DISTINCT service, layer, endpoint, region FROM derived WHERE step_ms = ? AND time_ms >= ?",
        MINUTE_MS,
        since_ms,
    )
    return entities_of(rows)


SINCE = [T0 - DAY_MS, T0, T0 + 3 * MINUTE_MS, T0 + 4 * MINUTE_MS, T0 + 5 * MINUTE_MS, T0 + 6 * MINUTE_MS]


async def test_the_list_names_what_the_values_hold_with_their_regions(sqlite_store) -> None:
    await fill(sqlite_store)
    for since in SINCE:
        assert await sqlite_store.entities(since) == scanned(sqlite_store.path, since), since
    assert await sqlite_store.entities(T0) == [
        (SERVICE, "AWS_DYNAMODB", None, ()),
        (SERVICE, "AWS_DYNAMODB", "Global", (WEST, EAST)),
        (SERVICE, "AWS_DYNAMODB", "Late", (EAST,)),
        (SERVICE, "AWS_DYNAMODB", "Local", (WEST,)),
        (OTHER, "AWS_DYNAMODB", "Local", (WEST,)),
    ]
    assert [e[2] for e in await sqlite_store.entities(T0 + 3 * MINUTE_MS)] == [None, "Global", "Late", "Local"]
    # One row per (service, endpoint, region), each with the latest minute it had a value in.
    assert peek(sqlite_store.path, "SELECT endpoint, region, last_ms FROM entities WHERE service = ?", SERVICE) == [
        ("", "", T0 + 5 * MINUTE_MS),
        ("Global", "", T0 + 5 * MINUTE_MS),
        ("Global", WEST, T0 + 5 * MINUTE_MS),
        ("Global", EAST, T0 + 5 * MINUTE_MS),
        ("Late", EAST, T0 + 5 * MINUTE_MS),
        ("Local", WEST, T0 + 2 * MINUTE_MS),
    ]


async def test_an_older_bucket_never_moves_an_entity_back(sqlite_store) -> None:
    await fill(sqlite_store)
    await sqlite_store.put_derived(MINUTE_MS, T0, 2, [value("Late", T0, EAST)])
    await sqlite_store.put_derived(HOUR_MS, HOUR, 2, [value("Late", HOUR, EAST)])
    assert peek(sqlite_store.path, "SELECT last_ms FROM entities WHERE endpoint = 'Late'") == [(T0 + 5 * MINUTE_MS,)]
    # An hour value alone (a replay older than the minute retention) lists its entity too.
    await sqlite_store.put_derived(HOUR_MS, HOUR + HOUR_MS, 1, [value("Replayed", HOUR + HOUR_MS)])
    assert [e[2] for e in await sqlite_store.entities(HOUR + HOUR_MS)] == ["Replayed"]


async def test_a_version_3_file_gains_the_list_filled_from_its_values(sqlite_factory) -> None:
    store = sqlite_factory()
    await store.open()
    await fill(store)
    kept = {since: await store.entities(since) for since in SINCE}
    await store.close()
    with sqlite3.connect(store.path) as conn:  # the file as schema version 3 left it
        conn.executescript("DROP TABLE entities; PRAGMA user_version = 3;")
    before = {since: scanned(store.path, since) for since in SINCE}
    assert before == kept

    again = sqlite_factory()
    await again.open()
    assert peek(again.path, "PRAGMA user_version") == [(SCHEMA_VERSION,)] == [(5,)]
    assert {since: await again.entities(since) for since in SINCE} == before
    assert peek(again.path, "SELECT last_ms FROM entities WHERE endpoint = 'Local' AND service = ?", SERVICE) == [
        (T0 + 2 * MINUTE_MS,)
    ]
    # Kept from then on.
    await again.put_derived(MINUTE_MS, T0 + 9 * MINUTE_MS, 1, [value("Local", T0 + 9 * MINUTE_MS, WEST)])
    assert [e[2] for e in await again.entities(T0 + 9 * MINUTE_MS)] == ["Local"]
    await again.close()
    # Opened again, the list is not filled again (nor doubled).
    with sqlite3.connect(store.path) as conn:
        conn.execute("DELETE FROM entities WHERE endpoint = 'Late'")
    third = sqlite_factory()
    await third.open()
    assert "Late" not in [e[2] for e in await third.entities(T0)]
    await third.close()


async def test_the_list_goes_with_the_hour_retention(sqlite_store) -> None:
    await fill(sqlite_store)
    await sqlite_store.put_derived(MINUTE_MS, T0 + 20 * DAY_MS, 1, [value("Recent", T0 + 20 * DAY_MS)])
    # Past the minute retention the entities of the hour values are kept: the summary of an
    # hourly range finds their values through them.
    await sqlite_store.prune(T0 + 10 * DAY_MS)
    assert [e[2] for e in await sqlite_store.entities(0)] == [None, "Global", "Late", "Local", "Recent", "Local"]
    await sqlite_store.prune(HOUR + 91 * DAY_MS)
    assert await sqlite_store.entities(0) == [(SERVICE, "AWS_DYNAMODB", "Recent", ())]


@pytest.mark.parametrize("merged", [True, False])
async def test_the_reductions_seek_each_entitys_values_in_key_order(sqlite_store, merged) -> None:
    # No temporary B-tree: each group's sum() sees its entity's values in time order.
    params = {"step": MINUTE_MS, "metric": "m", "service": SERVICE, "start": 0, "end": 1, "region": WEST}
    with sqlite3.connect(sqlite_store.path) as conn:
        totals = conn.execute("EXPLAIN QUERY PLAN " + TOTALS.format(sum="sum", values=VALUES_OF[merged]), params)
        details = [row[3] for row in totals]
        query = LATEST.format(values=VALUES_OF[merged], latest=LATEST_OF[merged])
        latest = [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + query, params)]
    assert not [detail for detail in details + latest if "TEMP B-TREE" in detail], (details, latest)
    assert [detail for detail in details if "USING PRIMARY KEY" in detail and "time_ms>?" in detail], details
    # The latest: one entity's values walked back from the range's end.
    assert "CORRELATED SCALAR SUBQUERY" in " ".join(latest), latest


async def test_the_sequential_sum_adds_in_time_order(sqlite_store) -> None:
    # The aggregate used where SQLite's sum() compensates gives the store's figures.
    metric = "aws_dynamodb_endpoint_x"
    for minute, v in enumerate([1e16, 1.0, -1e16, 0.1, 0.2]):
        t = T0 + minute * MINUTE_MS
        await sqlite_store.put_derived(MINUTE_MS, t, 1, [DerivedValue(metric, "endpoint", SERVICE, "A", "L", t, v)])
    with sqlite3.connect(sqlite_store.path) as conn:
        conn.create_aggregate(SEQUENTIAL_SUM, 1, SequentialSum)
        args = (metric, MINUTE_MS, T0, T0 + 9 * MINUTE_MS, SERVICE, None)
        sequential = endpoint_totals(conn, SEQUENTIAL_SUM, *args)
    assert sequential["A"].total == ((((0.0 + 1e16) + 1.0) + -1e16) + 0.1) + 0.2
    assert sequential == await sqlite_store.endpoint_totals(metric, MINUTE_MS, T0, T0 + 9 * MINUTE_MS, service=SERVICE)
