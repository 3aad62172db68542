"""The SQLite store's schema, its SQL statements and the constants they share.

The file layout (tables, keys, why each row is small) is described here once; db.py runs
these statements and reads.py the queries.
"""

from __future__ import annotations

from typing import Any

import orjson

from receiver.model import Pairs, Series

SCHEMA_VERSION = 5
"""2: derived values carry their region (see receiver/derive/regions.py); a version 1 file is
upgraded in place when it is opened (``REGION_UPGRADE``). 3: the table inventory and leases
(``INVENTORY_SCHEMA``), which an older file gains when it is opened. 4: the list of entities
(entities.py), which an older file gains, filled from its values, when it is opened. 5:
samples packed in blocks (``sample_blocks``, receiver/store/packing.py); the samples of an
older file are repacked when it is opened (repack.py)."""

PACKED_VERSION = 5
"""The first schema version whose samples are packed: an older file is repacked."""

# What repeats lives in its own table and the rows carry an integer id: a metric
# (namespace, name) has a few hundred series per account, a series repeats every minute,
# and a record's labels repeat on every sample of the record.
#
# Samples are packed: one row of sample_blocks holds the datapoints of one metric at one
# period start from one write (a slice of a delivery), a few hundred of them, as a block
# (receiver/store/packing.py) whose integers are series and labels ids. SQLite spends
# about a microsecond on every row it inserts however the row is bound, so a row per
# datapoint capped a commit near that; a block costs the same once for all of its
# datapoints.
#
# - Identity decides: a block holds each identity once, and when several blocks of one
#   metric and start hold the same identity, the one written last counts. ``seq`` (the
#   rowid) orders the writes: SQLite gives a new row one more than the largest rowid in the
#   table, so a later write always has a larger seq than every row still there.
# - The index leads with the metric and the start, as Sample.identity does: "metric M
#   between t0 and t1" is one range scan, "everything between t0 and t1" one per metric,
#   and a commit of recent minutes appends near the end of each metric's range. Its third,
#   implicit column is the rowid, so a scan meets a start's blocks in the order written.
# - A datapoint written again (a Firehose retry, a CloudWatch correction) leaves its
#   earlier copy in an older block, unread, until retention prunes that start: a delivery
#   costs one more copy per time it is sent, which Firehose's retries bound.
# - A block's series ids and numbers are binary; series.unit is the unit the series was
#   first seen with (the unit is not part of the identity) and a block lists the datapoints
#   whose own unit differs, so every sample reads back exactly as committed.
#
# Dimensions and labels are JSON arrays of [name, value] pairs: they keep the model's
# order exactly, and JSON TEXT stays readable with sqlite3's json functions.
SAMPLE_BLOCKS = """
CREATE TABLE IF NOT EXISTS sample_blocks (
    seq INTEGER PRIMARY KEY,
    metric_id INTEGER NOT NULL,
    start_ms INTEGER NOT NULL,
    n INTEGER NOT NULL,
    data BLOB NOT NULL
)
"""
SAMPLE_BLOCKS_INDEX = "CREATE INDEX IF NOT EXISTS sample_blocks_by_metric ON sample_blocks (metric_id, start_ms)"
SCHEMA = f"""
CREATE TABLE metrics (
    id INTEGER PRIMARY KEY,
    namespace TEXT NOT NULL,
    metric TEXT NOT NULL,
    UNIQUE (namespace, metric)
);
CREATE TABLE series (
    id INTEGER PRIMARY KEY,
    metric_id INTEGER NOT NULL,
    account TEXT NOT NULL,
    region TEXT NOT NULL,
    dimensions TEXT NOT NULL,
    unit TEXT NOT NULL,
    UNIQUE (metric_id, account, region, dimensions)
);
CREATE TABLE labels (
    id INTEGER PRIMARY KEY,
    pairs TEXT NOT NULL UNIQUE
);
{SAMPLE_BLOCKS};
{SAMPLE_BLOCKS_INDEX};
CREATE TABLE requests (
    request_id TEXT PRIMARY KEY,
    committed_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX requests_by_time ON requests (committed_ms);
CREATE TABLE bucket_versions (
    step_ms INTEGER NOT NULL,
    bucket_ms INTEGER NOT NULL,
    version INTEGER NOT NULL,
    derived_version INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (step_ms, bucket_ms)
) WITHOUT ROWID;
CREATE TABLE derived (
    step_ms INTEGER NOT NULL,
    metric TEXT NOT NULL,
    service TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    instance TEXT NOT NULL,
    region TEXT NOT NULL,
    time_ms INTEGER NOT NULL,
    scope TEXT NOT NULL,
    layer TEXT NOT NULL,
    value REAL NOT NULL,
    merged INTEGER NOT NULL,
    PRIMARY KEY (step_ms, metric, service, endpoint, instance, region, time_ms)
) WITHOUT ROWID;
CREATE INDEX derived_by_time ON derived (step_ms, time_ms);
PRAGMA user_version = {SCHEMA_VERSION};
"""

# Alarm events came after schema version 1, so they are created if missing in any store
# file: an older file gains the table without a version change.
ALARM_SCHEMA = """
CREATE TABLE IF NOT EXISTS alarm_events (
    rule TEXT NOT NULL,
    service TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    minute_ms INTEGER NOT NULL,
    value REAL NOT NULL,
    threshold REAL NOT NULL,
    message TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (rule, service, endpoint, seq)
) WITHOUT ROWID
"""
# Quarantined records came after schema version 1 too. A record is kept whole (up to
# Firehose's 1,024,000 bytes) with the delivery's common attributes, for re-delivery.
QUARANTINE_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS quarantine (
    request_id TEXT NOT NULL,
    record_index INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    labels TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (request_id, record_index)
) WITHOUT ROWID
""",
    "CREATE INDEX IF NOT EXISTS quarantine_by_time ON quarantine (received_ms)",
)
QUARANTINE_COLUMNS = "request_id, record_index, received_ms, reason, detail, labels, data"
UPSERT_QUARANTINE = f"INSERT OR REPLACE INTO quarantine ({QUARANTINE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"

ALARM_COLUMNS = "rule, service, endpoint, seq, kind, minute_ms, value, threshold, message, created_ms"

# The table inventory and leases came with schema version 3. Like the tables above they are
# created if missing in any store file; the version then moves to 3 so that an older
# receiver, which would not keep them, refuses the file. The inventory holds a few
# thousand items per account (one per table, and each account's limits per region), so
# ``prune`` finds those not updated within the hour retention without an index.
INVENTORY_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS inventory (
    kind TEXT NOT NULL,
    account TEXT NOT NULL,
    region TEXT NOT NULL,
    name TEXT NOT NULL,
    updated_ms INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (kind, account, region, name)
) WITHOUT ROWID
""",
    """
CREATE TABLE IF NOT EXISTS leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    until_ms INTEGER NOT NULL
) WITHOUT ROWID
""",
)
INVENTORY_COLUMNS = "kind, account, region, name, updated_ms, body"
UPSERT_INVENTORY = f"""
INSERT INTO inventory ({INVENTORY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (kind, account, region, name) DO UPDATE SET updated_ms = excluded.updated_ms, body = excluded.body
"""
# One statement, so taking a lease is atomic: a new lease is inserted; a held one changes
# hands (or is renewed) only where the WHERE holds, and otherwise nothing changes (the
# statement's change count is then 0).
TAKE_LEASE = """
INSERT INTO leases (name, holder, until_ms) VALUES (?, ?, ?)
ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until_ms = excluded.until_ms
WHERE leases.holder = excluded.holder OR leases.until_ms <= ?
"""

# The no-op DO UPDATEs (rather than DO NOTHING) make RETURNING yield an existing row too.
UPSERT_METRIC = """
INSERT INTO metrics (namespace, metric) VALUES (?, ?)
ON CONFLICT (namespace, metric) DO UPDATE SET metric = metric
RETURNING id
"""

UPSERT_SERIES = """
INSERT INTO series (metric_id, account, region, dimensions, unit) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (metric_id, account, region, dimensions) DO UPDATE SET unit = unit
RETURNING id, unit
"""

UPSERT_LABELS = """
INSERT INTO labels (pairs) VALUES (?)
ON CONFLICT (pairs) DO UPDATE SET pairs = pairs
RETURNING id
"""

INSERT_BLOCK = "INSERT INTO sample_blocks (metric_id, start_ms, n, data) VALUES (?, ?, ?, ?)"
SAME_UNIT = 0
"""What a sample's unit is recorded as when it is its series' unit."""

BUMP_VERSION = """
INSERT INTO bucket_versions (step_ms, bucket_ms, version) VALUES (?, ?, 1)
ON CONFLICT (step_ms, bucket_ms) DO UPDATE SET version = version + 1
"""

DELETE_DERIVED = """
DELETE FROM derived
WHERE step_ms = ? AND metric = ? AND service = ? AND endpoint = ? AND instance = ? AND region = ? AND time_ms = ?
"""

INSERT_DERIVED = """
INSERT INTO derived (step_ms, metric, service, endpoint, instance, region, time_ms, scope, layer, value, merged)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (step_ms, metric, service, endpoint, instance, region, time_ms) DO UPDATE SET
    scope = excluded.scope, layer = excluded.layer, value = excluded.value, merged = excluded.merged
"""

DERIVED_COLUMNS = "metric, scope, service, endpoint, layer, time_ms, value, instance, region, merged"

# A version 1 file's derived values predate regions: they are kept as merged values of no
# region, and every bucket is marked for deriving again, so the buckets still within the
# minute retention regain their regions at the next pass (older hours keep what they had).
REGION_UPGRADE = (
    "ALTER TABLE derived RENAME TO derived_v1",
    SCHEMA[SCHEMA.index("CREATE TABLE derived (") : SCHEMA.index("CREATE INDEX derived_by_time")].strip().rstrip(";"),
    "INSERT INTO derived (step_ms, metric, service, endpoint, instance, region, time_ms, scope, layer, value, merged) "
    "SELECT step_ms, metric, service, endpoint, instance, '', time_ms, scope, layer, value, 1 FROM derived_v1",
    "DROP TABLE derived_v1",
    "CREATE INDEX IF NOT EXISTS derived_by_time ON derived (step_ms, time_ms)",
    "UPDATE bucket_versions SET derived_version = 0",
    "PRAGMA user_version = 2",
)

UPSERT_REQUEST = """
INSERT INTO requests (request_id, committed_ms) VALUES (?, ?)
ON CONFLICT (request_id) DO UPDATE SET committed_ms = excluded.committed_ms
"""

# One range scan per selected metric, its blocks in the order written; CROSS JOIN keeps
# SQLite from choosing another order. Ordered by the metrics' (namespace, metric) index, so
# SQLite walks the indexes in that order whatever the filter and sorts nothing (ordering
# by metric_id made it sort every block of the range in a temporary B-tree).
SELECT_BLOCKS = """
SELECT b.metric_id, b.start_ms, b.data
FROM metrics m CROSS JOIN sample_blocks b ON b.metric_id = m.id AND b.start_ms >= ? AND b.start_ms < ?
WHERE {where}
ORDER BY m.namespace, m.metric, b.start_ms, b.seq
"""

# The blocks of a time range with their seq (``written_since``): one range scan of the index
# per metric; and the blocks written after a seq, found by the rowid alone (the data of
# those of other starts is not read).
SELECT_BLOCKS_WRITTEN = """
SELECT b.seq, b.start_ms, b.data
FROM metrics m CROSS JOIN sample_blocks b ON b.metric_id = m.id AND b.start_ms >= ? AND b.start_ms < ?
"""
SELECT_BLOCKS_SINCE = """
SELECT seq, start_ms, CASE WHEN start_ms >= ? AND start_ms < ? THEN data END
FROM sample_blocks WHERE seq > ? ORDER BY seq
"""

# SQLite error names that mean "this path or file cannot work" rather than "try again".
CONFIG_ERRORS = ("SQLITE_CANTOPEN", "SQLITE_NOTADB", "SQLITE_READONLY", "SQLITE_PERM", "SQLITE_AUTH")

EMPTY_PAIRS = "[]"
ID_CHUNK = 500  # ids per "IN (...)" query, far below SQLite's bound-parameter limit
SERIES_CACHE_MAX = 200_000  # twice the decoders' interned series: bounds memory, rarely hit
LABELS_CACHE_MAX = 4096  # distinct labels are few (one set per stream); this only bounds surprises


def pairs_text(pairs: Pairs | tuple[tuple[str, float], ...]) -> str:
    return orjson.dumps(pairs).decode() if pairs else EMPTY_PAIRS


Row = tuple[Any, ...]
"""A row as sqlite3 returns it: its columns' types depend on the query."""
SeriesRow = tuple[Series, int, int, str | int]
"""(series, metric id, series id, unit to store per sample or SAME_UNIT)."""


def pairs_from_text(text: str) -> tuple[tuple[Any, ...], ...]:
    """Name/value pairs (Pairs, or Stats) back from their JSON text."""
    return tuple(tuple(pair) for pair in orjson.loads(text))
