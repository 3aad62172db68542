"""The SQLite database behind ``sqlite:///``: schema, upserts and reads, all synchronous.

Every method runs on the store's one worker thread, which owns the connection (see
``sqlite.py``); nothing here touches asyncio. sqlite3 errors propagate to that layer, which
turns them into StoreError.
"""

from __future__ import annotations

import math
import os
import sqlite3
import stat
from collections.abc import Collection, Sequence
from itertools import chain, groupby
from operator import itemgetter
from pathlib import Path
from typing import Any, TypeGuard, TypeVar

import orjson

from receiver.model import (
    MINUTE_MS,
    SAMPLE_FIELDS,
    AlarmEvent,
    DerivedValue,
    Pairs,
    QuarantinedRecord,
    Sample,
    Series,
    SeriesKey,
    latest_per_key,
)
from receiver.store.base import StoreConfigError, StoreError, check_finite, start_buckets

SCHEMA_VERSION = 1

# Each sample row is small: what repeats lives in its own table and the row carries an
# integer id. A metric (namespace, name) has a few hundred series per account, a series
# repeats every minute, and a record's labels repeat on every sample of the record (with
# ~200 bytes of stream labels, interning them made commits ~1.7x faster and the file ~5x
# smaller in a test of 800k samples).
#
# The samples primary key is Sample.identity in id form, led by the metric and the start:
# - a commit of recent minutes appends near the end of ~one key range per metric instead
#   of scattering writes over the whole file (a (series, start) key slowed commits by half
#   once the file held a few hundred thousand rows);
# - "metric M between t0 and t1" is one range scan, and "everything between t0 and t1"
#   one range scan per metric, so no secondary index has to be kept up to date.
# WITHOUT ROWID stores each row inside that key's B-tree: one B-tree write per upsert.
# metric_id is a function of series_id, so the key is unique exactly when the identity is.
#
# series.unit is the unit the series was first seen with (the unit is not part of the
# identity); samples.unit is NULL when the sample has that unit and holds the sample's own
# unit otherwise, so every sample reads back exactly as committed.
#
# Dimensions, stats and labels are JSON arrays of [name, value] pairs: they keep the
# model's order exactly, and JSON TEXT stays readable with sqlite3's json functions.
_SCHEMA = f"""
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
CREATE TABLE samples (
    metric_id INTEGER NOT NULL,
    start_ms INTEGER NOT NULL,
    series_id INTEGER NOT NULL,
    end_ms INTEGER NOT NULL,
    unit TEXT,
    count REAL NOT NULL,
    sum REAL NOT NULL,
    min REAL NOT NULL,
    max REAL NOT NULL,
    stats TEXT NOT NULL,
    labels_id INTEGER NOT NULL,
    PRIMARY KEY (metric_id, start_ms, series_id, end_ms)
) WITHOUT ROWID;
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
    time_ms INTEGER NOT NULL,
    scope TEXT NOT NULL,
    layer TEXT NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (step_ms, metric, service, endpoint, instance, time_ms)
) WITHOUT ROWID;
CREATE INDEX derived_by_time ON derived (step_ms, time_ms);
PRAGMA user_version = {SCHEMA_VERSION};
"""

# Alarm events came after schema version 1, so they are created if missing in any store
# file: an older file gains the table without a version change.
_ALARM_SCHEMA = """
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
_QUARANTINE_SCHEMA = (
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
_QUARANTINE_COLUMNS = "request_id, record_index, received_ms, reason, detail, labels, data"
_UPSERT_QUARANTINE = f"INSERT OR REPLACE INTO quarantine ({_QUARANTINE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"

_ALARM_COLUMNS = "rule, service, endpoint, seq, kind, minute_ms, value, threshold, message, created_ms"

# The no-op DO UPDATEs (rather than DO NOTHING) make RETURNING yield an existing row too.
_UPSERT_METRIC = """
INSERT INTO metrics (namespace, metric) VALUES (?, ?)
ON CONFLICT (namespace, metric) DO UPDATE SET metric = metric
RETURNING id
"""

_UPSERT_SERIES = """
INSERT INTO series (metric_id, account, region, dimensions, unit) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (metric_id, account, region, dimensions) DO UPDATE SET unit = unit
RETURNING id, unit
"""

_UPSERT_LABELS = """
INSERT INTO labels (pairs) VALUES (?)
ON CONFLICT (pairs) DO UPDATE SET pairs = pairs
RETURNING id
"""

# Samples go in as multi-row INSERTs of up to 256 rows: sqlite3 spends ~0.4 us on each
# statement it executes, as much as SQLite spends inserting a row.
# The unit is bound as 0 when the sample has its series' unit, and nullif() stores NULL for
# it: binding None itself costs sqlite3 a failed adapter lookup (~0.5 us per row).
_SAMPLE_ROW = "(?, ?, ?, ?, nullif(?, 0), ?, ?, ?, ?, ?, ?)"
_SAMPLE_WIDTH = 11  # parameters per row
_SAME_UNIT = 0
_SAMPLE_CHUNKS = (256, 16, 1)  # few distinct statements, all kept in sqlite3's statement cache

_UPSERT_SAMPLES = """
INSERT INTO samples (metric_id, start_ms, series_id, end_ms, unit, count, sum, min, max, stats, labels_id)
VALUES {rows}
ON CONFLICT (metric_id, start_ms, series_id, end_ms) DO UPDATE SET
    unit = excluded.unit, count = excluded.count, sum = excluded.sum, min = excluded.min,
    max = excluded.max, stats = excluded.stats, labels_id = excluded.labels_id
"""
_UPSERT_SAMPLES_OF = {per: _UPSERT_SAMPLES.format(rows=", ".join([_SAMPLE_ROW] * per)) for per in _SAMPLE_CHUNKS}

_BUMP_VERSION = """
INSERT INTO bucket_versions (step_ms, bucket_ms, version) VALUES (?, ?, 1)
ON CONFLICT (step_ms, bucket_ms) DO UPDATE SET version = version + 1
"""

_INSERT_DERIVED = """
INSERT INTO derived (step_ms, metric, service, endpoint, instance, time_ms, scope, layer, value)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (step_ms, metric, service, endpoint, instance, time_ms) DO UPDATE SET
    scope = excluded.scope, layer = excluded.layer, value = excluded.value
"""

_DERIVED_COLUMNS = "metric, scope, service, endpoint, layer, time_ms, value, instance"

_UPSERT_REQUEST = """
INSERT INTO requests (request_id, committed_ms) VALUES (?, ?)
ON CONFLICT (request_id) DO UPDATE SET committed_ms = excluded.committed_ms
"""

# One range scan per selected metric; CROSS JOIN keeps SQLite from choosing another order.
_SELECT_SAMPLES = """
SELECT sa.series_id, sa.start_ms, sa.end_ms, sa.unit, sa.count, sa.sum, sa.min, sa.max, sa.stats, sa.labels_id
FROM metrics m CROSS JOIN samples sa ON sa.metric_id = m.id AND sa.start_ms >= ? AND sa.start_ms < ?
WHERE {where}
ORDER BY sa.start_ms
"""

# SQLite error names that mean "this path or file cannot work" rather than "try again".
_CONFIG_ERRORS = ("SQLITE_CANTOPEN", "SQLITE_NOTADB", "SQLITE_READONLY", "SQLITE_PERM", "SQLITE_AUTH")

_EMPTY_PAIRS = "[]"
_ID_CHUNK = 500  # ids per "IN (...)" query, far below SQLite's bound-parameter limit
_SERIES_CACHE_MAX = 200_000  # twice the decoders' interned series: bounds memory, rarely hit
_LABELS_CACHE_MAX = 4096  # distinct labels are few (one set per stream); this only bounds surprises


def _pairs_text(pairs: Pairs | tuple[tuple[str, float], ...]) -> str:
    return orjson.dumps(pairs).decode() if pairs else _EMPTY_PAIRS


Row = tuple[Any, ...]
"""A row as sqlite3 returns it: its columns' types depend on the query."""
SeriesRow = tuple[Series, int, int, str | int]
"""(series, metric id, series id, unit to store per sample or _SAME_UNIT)."""
_T = TypeVar("_T")


def _pairs_from_text(text: str) -> tuple[tuple[Any, ...], ...]:
    """Name/value pairs (Pairs, or Stats) back from their JSON text."""
    return tuple(tuple(pair) for pair in orjson.loads(text))


def _complete(rows: list[_T | None]) -> TypeGuard[list[_T]]:
    return None not in rows


class SQLiteDB:
    """One connection to one database file; not thread-safe, used from one thread only."""

    def __init__(self, path: Path, *, synchronous: str, busy_timeout_ms: int) -> None:
        self.path = path
        self._synchronous = synchronous
        self._busy_timeout_ms = busy_timeout_ms
        self._conn: sqlite3.Connection | None = None
        self._synchronous_now = synchronous
        self._file_id: tuple[int, int] | None = None
        """(device, inode) of the file when opened: a file deleted or replaced since is
        noticed before an ack (see check_file)."""
        self._sample_chunks: tuple[int, ...] = _SAMPLE_CHUNKS
        self._reset_caches()

    def _reset_caches(self) -> None:
        # Write caches: name -> row id. They hold committed rows only; ids handed out in a
        # transaction that then rolls back are gone from the file and must not be reused.
        self._metric_ids: dict[tuple[str, str], int] = {}
        self._series_ids: dict[SeriesKey, tuple[int, int, str]] = {}  # Series.key -> (id, metric id, row unit)
        self._labels_ids: dict[str, int] = {}
        # id(Series) -> (series, metric id, series id, unit to store): decoders intern Series,
        # so the same object comes back every minute and skips hashing its key. Each value
        # holds its Series, so no id is recycled while it is cached; series rows are never
        # deleted, so a committed entry stays true.
        self._rows_by_series: dict[int, SeriesRow] = {}
        # Read caches: row id -> model value, filled by reads.
        self._series_by_id: dict[int, Series] = {}
        self._series_by_id_unit: dict[tuple[int, str], Series] = {}
        self._labels_by_id: dict[int, Pairs] = {}

    # -- lifecycle ---------------------------------------------------------------

    def connect(self) -> None:
        """Open the file (creating it and its folder), set it up and check it is writable."""
        if self.path.is_dir():
            raise StoreConfigError(
                f"the sqlite store path {self.path} is a directory; "
                "give a file path such as sqlite:///./data/metrics.db"
            )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreConfigError(
                f"cannot create the folder {self.path.parent} for the sqlite store ({exc.strerror or exc}); "
                "choose a writable path with --store sqlite:///PATH"
            ) from None
        try:
            # isolation_level=None: no implicit transactions; BEGIN/COMMIT are issued here.
            conn = sqlite3.connect(self.path, isolation_level=None)
        except sqlite3.Error as exc:
            raise self._open_error(exc) from None
        self._reset_caches()  # the file may have changed since a previous connect
        try:
            self._setup(conn)
        except sqlite3.Error as exc:
            conn.close()
            raise self._open_error(exc) from None
        except BaseException:
            conn.close()
            raise
        # A SQLite built with a low bound on parameters per statement gets smaller chunks.
        limit = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        self._sample_chunks = tuple(per for per in _SAMPLE_CHUNKS if per * _SAMPLE_WIDTH <= limit)
        self._synchronous_now = self._synchronous
        self._file_id = _file_id(os.stat(self.path))
        self._conn = conn

    def connect_reader(self) -> None:
        """Open the file, which ``connect`` has set up, for reading only.

        In WAL mode a reader and the writer never wait for each other, so the deriver's
        large reads (an hour of every series) do not hold up commits.
        """
        try:
            conn = sqlite3.connect(self.path, isolation_level=None)
        except sqlite3.Error as exc:
            raise self._open_error(exc) from None
        self._reset_caches()
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
            self._check_ours(conn)
            conn.execute("PRAGMA query_only = 1")  # a bug here must not write
            conn.execute("PRAGMA cache_size = -16384")  # 16 MiB: reads scan, the OS caches too
            conn.execute("PRAGMA temp_store = MEMORY")
        except sqlite3.Error as exc:
            conn.close()
            raise self._open_error(exc) from None
        self._file_id = _file_id(os.stat(self.path))
        self._conn = conn

    def _setup(self, conn: sqlite3.Connection) -> None:
        # Wait this long for another writer's lock before failing (-> StoreError -> 503).
        conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
        # Refuse a foreign file before changing anything in it (journal_mode persists).
        self._check_ours(conn)
        # WAL: readers (queries, /readyz) never wait for the writer, and a commit appends
        # to the log instead of rewriting pages in place.
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise StoreConfigError(
                f"the sqlite store {self.path} cannot use write-ahead logging (journal mode stays {mode!r}); "
                "put it on a local file system"
            )
        # Durability. The ack tells Firehose to drop its copy, so an acked request must
        # survive whatever the host survives. In WAL mode NORMAL syncs only at checkpoints:
        # a committed transaction survives a crash of this process (it sits in the OS page
        # cache) but the last ones can vanish on power loss or a kernel crash, after their
        # ack, and nothing would send them again. FULL syncs the log on every commit and
        # closes that gap; with one transaction per Firehose request (thousands of samples)
        # that one fsync is a small share of a commit. NORMAL stays available
        # (?synchronous=normal) for hosts whose disk dies with them anyway.
        conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        # Do not keep a huge log file around after one huge request has been checkpointed.
        conn.execute("PRAGMA journal_size_limit = 67108864")
        conn.execute("PRAGMA cache_size = -65536")  # 64 MiB of page cache
        conn.execute("PRAGMA temp_store = MEMORY")  # ORDER BY sorts stay off the disk
        # BEGIN IMMEDIATE takes the write lock, so this also proves the file is writable.
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Checked again under the lock: another process may have created the schema.
            if self._check_ours(conn) == 0:
                # Not executescript(): it would commit the open transaction first.
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
            conn.execute(_ALARM_SCHEMA)
            for statement in _QUARANTINE_SCHEMA:
                conn.execute(statement)
            conn.execute("COMMIT")
        except BaseException:
            self._rollback(conn)
            raise

    def _check_ours(self, conn: sqlite3.Connection) -> int:
        """The file's schema version; raises unless it is empty or a store this code can read."""
        version: int = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreConfigError(
                f"the sqlite store {self.path} has schema version {version}, newer than this receiver's "
                f"{SCHEMA_VERSION}; upgrade the receiver or point --store at another file"
            )
        if version == 0 and conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            raise StoreConfigError(
                f"the file {self.path} already holds a database that is not a receiver store; "
                "point --store at a new file"
            )
        return version

    def _open_error(self, exc: sqlite3.Error) -> Exception:
        name = getattr(exc, "sqlite_errorname", "")
        if name.startswith(_CONFIG_ERRORS):
            return StoreConfigError(
                f"cannot use {self.path} as the sqlite store ({exc}); "
                "give a writable file path with --store sqlite:///PATH"
            )
        return StoreError(f"the sqlite store {self.path} failed to open: {exc}")

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.execute("PRAGMA optimize")  # keeps query plans good; cheap when nothing changed
            except sqlite3.Error:
                pass  # only an optimization: closing must not fail because of it
            finally:
                conn.close()

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"the sqlite store {self.path} is closed")
        return self._conn

    # -- writes ------------------------------------------------------------------

    def write_samples(self, samples: Sequence[Sample]) -> None:
        """Upsert one slice of a delivery, and bump its buckets' versions, in a transaction
        of its own that is not synced to disk: the delivery's ``commit`` syncs the
        write-ahead log, which holds this transaction as well, before the ack."""
        self._transaction(samples, durable=False)

    def commit(
        self,
        request_id: str,
        samples: Sequence[Sample],
        quarantined: Sequence[QuarantinedRecord],
        now_ms: int,
        prune_before_ms: int | None,
    ) -> None:
        """Upsert ``samples``, keep ``quarantined`` and record ``request_id`` at ``now_ms``
        in one synced transaction, after checking the file is still the one opened.

        With ``prune_before_ms``, request ids committed at or before it are deleted too.
        """
        self.check_file()
        self._transaction(samples, durable=True, request=(request_id, now_ms, prune_before_ms),
                          quarantined=quarantined)

    def _transaction(
        self,
        samples: Sequence[Sample],
        *,
        durable: bool,
        request: tuple[str, int, int | None] | None = None,
        quarantined: Sequence[QuarantinedRecord] = (),
    ) -> None:
        conn = self.conn
        pending = _Pending()
        # In WAL mode a synced commit syncs the log file whole, so the unsynced slices
        # written before it become durable with it; and a checkpoint syncs the log before
        # copying it. Only a delivery's last transaction pays for an fsync.
        synchronous = self._synchronous if durable else "NORMAL"
        if synchronous != self._synchronous_now:
            conn.execute(f"PRAGMA synchronous = {synchronous}")
            self._synchronous_now = synchronous
        conn.execute("BEGIN IMMEDIATE")
        try:
            starts = self._upsert_slice(conn, samples, pending) if samples else []
            conn.executemany(_BUMP_VERSION, start_buckets(set(starts)))
            conn.executemany(_UPSERT_QUARANTINE, [_quarantine_row(record) for record in quarantined])
            if request is not None:
                request_id, now_ms, prune_before_ms = request
                conn.execute(_UPSERT_REQUEST, (request_id, now_ms))
                if prune_before_ms is not None:
                    conn.execute("DELETE FROM requests WHERE committed_ms <= ?", (prune_before_ms,))
            conn.execute("COMMIT")
        except BaseException:
            self._rollback(conn)
            raise
        self._metric_ids.update(pending.metrics)
        self._series_ids.update(pending.series)
        committed_series = self._rows_by_series
        if len(committed_series) + len(pending.rows_by_series) > _SERIES_CACHE_MAX:
            committed_series.clear()
        committed_series.update(pending.rows_by_series)
        if len(self._labels_ids) + len(pending.labels) > _LABELS_CACHE_MAX:
            self._labels_ids.clear()
        self._labels_ids.update(pending.labels)

    def _upsert_slice(self, conn: sqlite3.Connection, samples: Sequence[Sample], pending: _Pending) -> list[int]:
        """Upsert one slice of samples in the open transaction; returns their period starts."""
        # The per-sample work runs column by column in C (slices, map, sum): a Python loop
        # over the samples cost as much as SQLite's own work for them. (Not zip(*samples):
        # its one iterator per sample is a GC-tracked object, and 20,000 of them set off
        # full collections that cost more than the whole commit.)
        # Each Sample's fields, one after the other: a column's type is its field's.
        fields: list[Any] = list(chain.from_iterable(samples))
        width = SAMPLE_FIELDS
        starts, ends = fields[1::width], fields[2::width]
        # count, sum, min, max
        numbers = (fields[3::width], fields[4::width], fields[5::width], fields[6::width])
        stats_texts = list(map(bytes.decode, map(orjson.dumps, fields[7::width])))  # () -> "[]"
        _check_finite(samples, numbers, stats_texts)
        by_series = self._resolve_series(conn, fields[0::width], pending)
        labels_ids = self._labels_ids_of(conn, fields[8::width], pending)
        rows = _sample_rows(by_series, starts, ends, numbers, stats_texts, labels_ids)
        _upsert_samples(conn, rows, self._sample_chunks)
        return starts

    def _resolve_series(
        self, conn: sqlite3.Connection, series: Sequence[Series], pending: _Pending
    ) -> list[SeriesRow]:
        """(series, metric id, series id, unit to store) of each Series, creating missing rows."""
        # Keyed by id(): decoders share one Series object per series, so most samples cost
        # one dict hit instead of hashing a nested tuple. Each value holds its Series, so no
        # id is recycled while it is cached; series rows are never deleted, so a committed
        # entry stays true.
        found = list(map(self._rows_by_series.get, map(id, series)))
        if _complete(found):
            return found
        new = pending.rows_by_series
        resolved: list[SeriesRow] = []
        for one, row in zip(series, found):
            if row is None:
                row = new.get(id(one))
                if row is None:
                    row = new[id(one)] = self._series_row(conn, one, pending)
            resolved.append(row)
        return resolved

    def _labels_ids_of(self, conn: sqlite3.Connection, labels: Sequence[Pairs], pending: _Pending) -> list[int]:
        """The labels id of each labels tuple; decoders share one tuple per record."""
        keys = list(map(id, labels))
        if keys and keys.count(keys[0]) == len(keys):  # one record, or no labels at all
            return [self._labels_row(conn, labels[0], pending)] * len(keys)
        ids = {key: self._labels_row(conn, one, pending) for key, one in dict(zip(keys, labels)).items()}
        return list(map(ids.__getitem__, keys))

    @staticmethod
    def _rollback(conn: sqlite3.Connection) -> None:
        # Some errors (disk full, I/O) make SQLite roll back by itself; and a failing
        # ROLLBACK must not hide the error that caused it.
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass

    def _series_row(self, conn: sqlite3.Connection, series: Series, pending: _Pending) -> SeriesRow:
        """(series, metric id, series id, unit to store per sample or _SAME_UNIT) for one Series."""
        key = series.key
        known = self._series_ids.get(key) or pending.series.get(key)
        if known is None:
            metric_key = (series.namespace, series.metric)
            metric_id = self._metric_ids.get(metric_key) or pending.metrics.get(metric_key)
            if metric_id is None:
                metric_id = pending.metrics[metric_key] = conn.execute(_UPSERT_METRIC, metric_key).fetchone()[0]
            dimensions = _pairs_text(series.dimensions)
            series_id, row_unit = conn.execute(
                _UPSERT_SERIES, (metric_id, series.account, series.region, dimensions, series.unit)
            ).fetchone()
            known = pending.series[key] = (series_id, metric_id, row_unit)
        series_id, metric_id, row_unit = known
        return series, metric_id, series_id, _SAME_UNIT if series.unit == row_unit else series.unit

    def _labels_row(self, conn: sqlite3.Connection, labels: Pairs, pending: _Pending) -> int:
        text = _pairs_text(labels)
        labels_id = self._labels_ids.get(text) or pending.labels.get(text)
        if labels_id is None:
            labels_id = pending.labels[text] = conn.execute(_UPSERT_LABELS, (text,)).fetchone()[0]
        return labels_id

    # -- reads -------------------------------------------------------------------

    def check_file(self) -> None:
        """Raise StoreError unless the path still names the file opened, writable.

        SQLite keeps writing to an open file that was deleted, replaced or made read-only:
        its commits succeed, but they are gone (or cannot be written) once the receiver
        restarts. Such a store must not ack anything, so the check comes before each
        delivery's commit and each readiness probe; a stat costs microseconds.
        """
        try:
            now = os.stat(self.path)
        except FileNotFoundError:
            raise StoreError(
                f"the sqlite store file {self.path} was deleted while the receiver ran; "
                "restart the receiver to create it again"
            ) from None
        except OSError as exc:
            raise StoreError(f"the sqlite store file {self.path} cannot be checked: {exc.strerror or exc}") from None
        if self._file_id is not None and _file_id(now) != self._file_id:
            raise StoreError(
                f"the sqlite store file {self.path} was replaced by another file while the receiver ran; "
                "restart the receiver to use it"
            )
        if not now.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) or not os.access(self.path, os.W_OK):
            raise StoreError(f"the sqlite store file {self.path} is read-only; make it writable again")

    def probe(self) -> None:
        """``check_file`` and one read (on a reader's connection: in WAL mode a reader
        never waits for the writer)."""
        self.check_file()
        self.conn.execute("SELECT 1 FROM requests LIMIT 1").fetchall()

    def is_committed(self, request_id: str, since_ms: int) -> bool:
        row = self.conn.execute(
            "SELECT 1 FROM requests WHERE request_id = ? AND committed_ms > ?", (request_id, since_ms)
        ).fetchone()
        return row is not None

    def count_samples(self) -> int:
        count: int = self.conn.execute("SELECT count(*) FROM samples").fetchone()[0]
        return count

    def samples(
        self, start_ms: int, end_ms: int, namespace: str | None, metrics: Collection[str] | None
    ) -> list[Sample]:
        conn = self.conn
        conditions = ["1"]
        params: list[object] = [start_ms, end_ms]
        if namespace is not None:
            conditions.append("m.namespace = ?")
            params.append(namespace)
        if metrics is not None:
            names = sorted(set(metrics))
            if not names:
                return []
            # One bound JSON array instead of one parameter per name: no parameter limit.
            conditions.append("m.metric IN (SELECT value FROM json_each(?))")
            params.append(orjson.dumps(names).decode())
        rows = conn.execute(_SELECT_SAMPLES.format(where=" AND ".join(conditions)), params).fetchall()
        return self._to_samples(conn, rows)

    def series_groups(self, per_group: int) -> list[tuple[int, int, int]]:
        """(metric id, first series id, last series id) of groups of at most ``per_group``
        series of one metric, covering every series."""
        rows = self.conn.execute("SELECT metric_id, id FROM series ORDER BY metric_id, id").fetchall()
        groups: list[tuple[int, int, int]] = []
        for metric_id, series in groupby(rows, key=itemgetter(0)):
            ids = [series_id for _, series_id in series]
            groups += [(metric_id, ids[i], ids[min(i + per_group, len(ids)) - 1])
                       for i in range(0, len(ids), per_group)]
        return groups

    def samples_of_series(self, group: tuple[int, int, int], start_ms: int, end_ms: int) -> list[Sample]:
        """``samples`` of the series of one group of ``series_groups``: a range scan of
        the metric's key, filtered in SQLite."""
        metric_id, first, last = group
        conn = self.conn
        rows = conn.execute(
            _SELECT_SAMPLES.format(where="m.id = ? AND sa.series_id BETWEEN ? AND ?"),
            (start_ms, end_ms, metric_id, first, last),
        ).fetchall()
        return self._to_samples(conn, rows)

    # -- derived values ------------------------------------------------------------

    def versions(self, step_ms: int, buckets: Collection[int]) -> dict[int, int]:
        found = dict.fromkeys(buckets, 0)
        query = "SELECT bucket_ms, version FROM bucket_versions WHERE step_ms = ? AND bucket_ms IN ({marks})"
        wanted = sorted(found)
        for i in range(0, len(wanted), _ID_CHUNK):
            chunk = wanted[i : i + _ID_CHUNK]
            for bucket, version in self.conn.execute(query.format(marks=",".join("?" * len(chunk))), [step_ms, *chunk]):
                found[bucket] = version
        return found

    def stale_buckets(self, step_ms: int, since_ms: int) -> list[int]:
        rows = self.conn.execute(
            "SELECT bucket_ms FROM bucket_versions WHERE step_ms = ? AND bucket_ms >= ? "
            "AND derived_version < version ORDER BY bucket_ms",
            (step_ms, since_ms),
        ).fetchall()
        return [row[0] for row in rows]

    def put_derived(self, step_ms: int, bucket_ms: int, version: int, values: Sequence[DerivedValue]) -> bool:
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute(
                "SELECT derived_version FROM bucket_versions WHERE step_ms = ? AND bucket_ms = ?",
                (step_ms, bucket_ms),
            ).fetchone()
            if row is not None and row[0] >= version:
                conn.execute("ROLLBACK")
                return False
            conn.execute("DELETE FROM derived WHERE step_ms = ? AND time_ms = ?", (step_ms, bucket_ms))
            conn.executemany(
                _INSERT_DERIVED,
                [
                    (
                        step_ms, v.metric, v.service, v.endpoint or "", v.instance or "",
                        bucket_ms, v.scope, v.layer, v.value,
                    )
                    for v in values
                ],
            )
            conn.execute(
                "INSERT INTO bucket_versions (step_ms, bucket_ms, version, derived_version) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (step_ms, bucket_ms) DO UPDATE SET derived_version = excluded.derived_version",
                (step_ms, bucket_ms, version, version),
            )
            conn.execute("COMMIT")
        except BaseException:
            self._rollback(conn)
            raise
        return True

    def derived(
        self, metric: str, step_ms: int, start_ms: int, end_ms: int, service: str | None, endpoint: str | None
    ) -> list[DerivedValue]:
        conditions = ["step_ms = ?", "metric = ?", "time_ms >= ?", "time_ms <= ?"]
        params: list[object] = [step_ms, metric, start_ms, end_ms]
        if service is not None:
            conditions.append("service = ?")
            params.append(service)
        if endpoint is not None:
            conditions.append("endpoint = ?")
            params.append(endpoint)
        rows = self.conn.execute(
            f"SELECT {_DERIVED_COLUMNS} FROM derived WHERE {' AND '.join(conditions)} "
            "ORDER BY time_ms, service, endpoint, instance",
            params,
        ).fetchall()
        return [_derived_value(row) for row in rows]

    def bucket_values(self, step_ms: int, bucket_ms: int) -> list[DerivedValue]:
        rows = self.conn.execute(
            f"SELECT {_DERIVED_COLUMNS} FROM derived WHERE step_ms = ? AND time_ms = ? "
            "ORDER BY metric, service, endpoint, instance",
            (step_ms, bucket_ms),
        ).fetchall()
        return [_derived_value(row) for row in rows]

    def latest_bucket(self, step_ms: int, before_ms: int) -> int | None:
        row = self.conn.execute(
            "SELECT max(time_ms) FROM derived WHERE step_ms = ? AND time_ms < ?", (step_ms, before_ms)
        ).fetchone()
        latest: int | None = row[0]
        return latest

    def entities(self, since_ms: int) -> list[tuple[str, str, str | None]]:
        rows = self.conn.execute(
            "SELECT DISTINCT service, layer, endpoint FROM derived WHERE step_ms = ? AND time_ms >= ? "
            "ORDER BY service, layer, endpoint",
            (MINUTE_MS, since_ms),
        ).fetchall()
        return [(service, layer, endpoint or None) for service, layer, endpoint in rows]

    def prune_metric(self, metric_id: int, cutoff_ms: int) -> None:
        """Delete one metric's samples before ``cutoff_ms``: one range scan of its key."""
        self._write(["DELETE FROM samples WHERE metric_id = ? AND start_ms < ?"], (metric_id, cutoff_ms))

    def prune_buckets(self, step_ms: int, cutoff_ms: int) -> None:
        """Delete one step's derived values and versions before ``cutoff_ms``."""
        self._write(
            [
                "DELETE FROM derived WHERE step_ms = ? AND time_ms < ?",
                "DELETE FROM bucket_versions WHERE step_ms = ? AND bucket_ms < ?",
            ],
            (step_ms, cutoff_ms),
        )

    # -- alarm events --------------------------------------------------------------

    def put_alarm_event(self, event: AlarmEvent) -> bool:
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            cursor = conn.execute(
                f"INSERT OR IGNORE INTO alarm_events ({_ALARM_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (event.rule, event.service, event.endpoint or "", event.seq, event.kind, event.minute_ms,
                 event.value, event.threshold, event.message, event.created_ms),
            )
            conn.execute("COMMIT")
        except BaseException:
            self._rollback(conn)
            raise
        return cursor.rowcount == 1

    def alarm_events(self, since_ms: int) -> list[AlarmEvent]:
        rows = self.conn.execute(
            f"SELECT {_ALARM_COLUMNS} FROM alarm_events WHERE minute_ms >= ? "
            "ORDER BY minute_ms, rule, service, endpoint, seq",
            (since_ms,),
        ).fetchall()
        return [_alarm_event(row) for row in rows]

    def alarm_heads(self) -> list[AlarmEvent]:
        rows = self.conn.execute(
            f"SELECT {_ALARM_COLUMNS} FROM alarm_events AS a WHERE seq = "
            "(SELECT max(seq) FROM alarm_events AS b WHERE b.rule = a.rule AND b.service = a.service "
            "AND b.endpoint = a.endpoint)"
        ).fetchall()
        return latest_per_key([_alarm_event(row) for row in rows])

    def prune_alarm_events(self, cutoff_ms: int) -> None:
        """Forget alarm events of minutes before ``cutoff_ms`` (the hour retention), heads
        included, as DynamoDB's expire by TTL: a chain that old starts again at seq 1."""
        self._write(["DELETE FROM alarm_events WHERE minute_ms < ?"], (cutoff_ms,))

    # -- quarantine ----------------------------------------------------------------

    def quarantined(self, limit: int) -> list[QuarantinedRecord]:
        rows = self.conn.execute(
            f"SELECT {_QUARANTINE_COLUMNS} FROM quarantine ORDER BY received_ms, request_id, record_index LIMIT ?",
            (limit,),
        ).fetchall()
        return [_quarantined_record(row) for row in rows]

    def count_quarantined(self) -> int:
        count: int = self.conn.execute("SELECT count(*) FROM quarantine").fetchone()[0]
        return count

    def delete_quarantined(self, keys: Collection[tuple[str, int]]) -> None:
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany("DELETE FROM quarantine WHERE request_id = ? AND record_index = ?", list(keys))
            conn.execute("COMMIT")
        except BaseException:
            self._rollback(conn)
            raise

    def prune_quarantined(self, cutoff_ms: int) -> None:
        """Forget quarantined records received before ``cutoff_ms`` (the hour retention)."""
        self._write(["DELETE FROM quarantine WHERE received_ms < ?"], (cutoff_ms,))

    def metric_ids(self) -> list[int]:
        return [row[0] for row in self.conn.execute("SELECT id FROM metrics ORDER BY id")]

    def _write(self, statements: list[str], params: tuple[object, ...]) -> None:
        """Run statements sharing one parameter tuple in one write transaction."""
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in statements:
                conn.execute(statement, params)
            conn.execute("COMMIT")
        except BaseException:
            self._rollback(conn)
            raise

    def _to_samples(self, conn: sqlite3.Connection, rows: list[Row]) -> list[Sample]:
        series_by_id = self._series_by_id
        labels_by_id = self._labels_by_id
        missing_series = {row[0] for row in rows} - series_by_id.keys()
        if missing_series:
            self._load_series(conn, missing_series)
        needed_labels = {row[9] for row in rows}
        missing_labels = needed_labels - labels_by_id.keys()
        if missing_labels:
            if len(labels_by_id) + len(missing_labels) > _LABELS_CACHE_MAX:
                labels_by_id.clear()
                missing_labels = needed_labels
            self._load_labels(conn, missing_labels)
        # Most samples have no extra stats; decode each distinct text once per read.
        stats_decoded: dict[str, tuple[tuple[Any, ...], ...]] = {_EMPTY_PAIRS: ()}
        found: list[Sample] = []
        append = found.append
        for series_id, start, end, unit, count, total, low, high, stats, labels_id in rows:
            series = series_by_id[series_id] if unit is None else self._series_with_unit(series_id, unit)
            stats_pairs = stats_decoded.get(stats)
            if stats_pairs is None:
                stats_pairs = stats_decoded[stats] = _pairs_from_text(stats)
            append(Sample(series, start, end, count, total, low, high, stats_pairs, labels_by_id[labels_id]))
        return found

    def _load_series(self, conn: sqlite3.Connection, ids: set[int]) -> None:
        query = (
            "SELECT s.id, s.account, s.region, m.namespace, m.metric, s.dimensions, s.unit "
            "FROM series s JOIN metrics m ON m.id = s.metric_id WHERE s.id IN ({marks})"
        )
        for series_id, account, region, namespace, metric, dimensions, unit in _select_by_ids(conn, query, ids):
            pairs = _pairs_from_text(dimensions)
            self._series_by_id[series_id] = Series(account, region, namespace, metric, pairs, unit)

    def _load_labels(self, conn: sqlite3.Connection, ids: set[int]) -> None:
        for labels_id, text in _select_by_ids(conn, "SELECT id, pairs FROM labels WHERE id IN ({marks})", ids):
            self._labels_by_id[labels_id] = _pairs_from_text(text)

    def _series_with_unit(self, series_id: int, unit: str) -> Series:
        series = self._series_by_id_unit.get((series_id, unit))
        if series is None:
            base = self._series_by_id[series_id]
            series = Series(base.account, base.region, base.namespace, base.metric, base.dimensions, unit)
            self._series_by_id_unit[(series_id, unit)] = series
        return series


def _file_id(status: os.stat_result) -> tuple[int, int]:
    return (status.st_dev, status.st_ino)


def _quarantine_row(record: QuarantinedRecord) -> Row:
    return (record.request_id, record.index, record.received_ms, record.reason, record.detail,
            _pairs_text(record.labels), record.data)


def _quarantined_record(row: Row) -> QuarantinedRecord:
    request_id, index, received_ms, reason, detail, labels, data = row
    return QuarantinedRecord(request_id, index, received_ms, reason, detail, data, _pairs_from_text(labels))


def _alarm_event(row: Row) -> AlarmEvent:
    rule, service, endpoint, seq, kind, minute_ms, value, threshold, message, created_ms = row
    return AlarmEvent(rule, service, endpoint or None, seq, kind, minute_ms, value, threshold, message, created_ms)


def _derived_value(row: Row) -> DerivedValue:
    metric, scope, service, endpoint, layer, time_ms, value, instance = row
    return DerivedValue(metric, scope, service, endpoint or None, layer, time_ms, value, instance or None)


class _Pending:
    """Rows created by the open transaction: moved into the caches only once it commits."""

    __slots__ = ("labels", "metrics", "rows_by_series", "series")

    def __init__(self) -> None:
        self.metrics: dict[tuple[str, str], int] = {}
        self.series: dict[SeriesKey, tuple[int, int, str]] = {}
        self.labels: dict[str, int] = {}
        self.rows_by_series: dict[int, SeriesRow] = {}  # id(Series) -> row


def _check_finite(samples: Sequence[Sample], numbers: tuple[Sequence[float], ...], stats_texts: list[str]) -> None:
    """Raise StoreError naming the first sample with a NaN or infinite statistic.

    One sum per column finds any: NaN and infinities survive a float sum. orjson writes
    them as null, so a stats text holding "null" may hold one. Both checks can only err
    towards a sample-by-sample look (a sum that overflows, a stat named "null").
    """
    if not math.isfinite(sum(map(sum, numbers))) or "null" in "".join(stats_texts):
        check_finite(samples)


def _sample_rows(
    by_series: list[SeriesRow],
    starts: Sequence[int],
    ends: Sequence[int],
    numbers: tuple[Sequence[float], ...],
    stats_texts: list[str],
    labels_ids: list[int],
) -> list[object]:
    """The samples' parameters for _UPSERT_SAMPLES, row after row, in one flat list."""
    width = _SAMPLE_WIDTH
    series_rows: list[object] = list(chain.from_iterable(by_series))  # 4 fields per sample
    metric_ids, series_ids, units = series_rows[1::4], series_rows[2::4], series_rows[3::4]
    rows: list[object] = [None] * (width * len(by_series))
    for column, values in enumerate((metric_ids, starts, series_ids, ends, units, *numbers, stats_texts, labels_ids)):
        rows[column::width] = values
    return rows


def _upsert_samples(conn: sqlite3.Connection, rows: list[object], chunks: tuple[int, ...]) -> None:
    """Run _UPSERT_SAMPLES over the flat ``rows`` in chunks of ``chunks`` rows, largest first."""
    done = 0
    for per in chunks:
        step = per * _SAMPLE_WIDTH
        end = done + (len(rows) - done) // step * step
        if end > done:
            # A generator: each chunk is copied just before its turn and freed after it.
            conn.executemany(_UPSERT_SAMPLES_OF[per], (rows[i : i + step] for i in range(done, end, step)))
            done = end


def _select_by_ids(conn: sqlite3.Connection, query: str, ids: set[int]) -> list[Row]:
    wanted = sorted(ids)
    rows: list[Row] = []
    for i in range(0, len(wanted), _ID_CHUNK):
        chunk = wanted[i : i + _ID_CHUNK]
        rows += conn.execute(query.format(marks=",".join("?" * len(chunk))), chunk).fetchall()
    return rows
