"""The SQLite store's list of entities: each (service, endpoint, region) that had values,
and the latest bucket it had one in.

``put_derived`` keeps the list (``touch_entities``), so ``Store.entities`` reads a few
thousand rows instead of every value of the minute retention (an account of 2,000 tables
holds over a million minute values an hour), and the summary's reductions (reductions.py)
seek each entity's values of a range instead of scanning a metric's values of every time.

The list came with schema version 4. ``add_entities`` gives a file without it the table,
filled once from the values it holds; it stands alone, so it runs whatever else an
upgrade of the file does.

Like DynamoDB's entity items, a row only moves forward: an entity whose values were later
recomputed away stays listed until its bucket is older than the ``since`` of a read, and
is kept until that bucket is past the hour retention (``PRUNE_ENTITIES``). Hour values move
it too, to the hour's start (which is never later than the hour's minutes): so every value
kept, minute or hour, is at or before its entity's ``last_ms``, which the reductions rely on
(an hour value may be kept with no minute value: a replay of data older than the minute
retention).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from receiver.model import DerivedValue

ENTITY_TABLE = """
CREATE TABLE entities (
    service TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    region TEXT NOT NULL,
    layer TEXT NOT NULL,
    last_ms INTEGER NOT NULL,
    PRIMARY KEY (service, endpoint, region, layer)
) WITHOUT ROWID
"""
# The key leads with (service, endpoint, region): a service's entities are one range, in
# the order the reductions group them. endpoint '' is the service's own values, region ''
# a value over several regions (as in the derived table).

FILL_ENTITIES = """
INSERT INTO entities (service, endpoint, region, layer, last_ms)
SELECT service, endpoint, region, layer, max(time_ms) FROM derived GROUP BY service, endpoint, region, layer
"""

TOUCH_ENTITY = """
INSERT INTO entities (service, endpoint, region, layer, last_ms) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (service, endpoint, region, layer) DO UPDATE SET last_ms = max(last_ms, excluded.last_ms)
"""


def add_entities(conn: sqlite3.Connection) -> None:
    """Create the entity list, filled from the stored values, unless the file has it (run
    in the transaction that sets the file up)."""
    found = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'entities'").fetchone()
    if found is None:
        conn.execute(ENTITY_TABLE)
        conn.execute(FILL_ENTITIES)


def touch_entities(conn: sqlite3.Connection, bucket_ms: int, values: Sequence[DerivedValue]) -> None:
    """Move the latest bucket of each entity among ``values`` to ``bucket_ms`` if it is older
    (in ``put_derived``'s transaction: the list never misses a stored value)."""
    entities = {(v.service, v.endpoint or "", v.region, v.layer) for v in values}
    conn.executemany(TOUCH_ENTITY, [(*entity, bucket_ms) for entity in sorted(entities)])


def entity_rows(conn: sqlite3.Connection, since_ms: int) -> list[tuple[str, str, str, str]]:
    """(service, layer, endpoint, region) of every entity with a value since ``since_ms``
    (endpoint '' for a service's own values)."""
    rows: list[tuple[str, str, str, str]] = conn.execute(
        "SELECT service, layer, endpoint, region FROM entities WHERE last_ms >= ?", (since_ms,)
    ).fetchall()
    return rows


PRUNE_ENTITIES = "DELETE FROM entities WHERE last_ms < ?"
"""With the hour retention's cutoff: an entity goes with the last of its hour values."""
