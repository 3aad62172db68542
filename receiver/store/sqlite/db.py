"""The SQLite database behind ``sqlite:///``: opening and setting up the file, and writes.

Every method runs on the store's one worker thread, which owns the connection (see
``store.py``); nothing here touches asyncio. sqlite3 errors propagate to that layer, which
turns them into StoreError. The schema and statements are in schema.py, the reads in
reads.py (a mixin of SQLiteDB).
"""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Collection, Sequence
from itertools import chain
from pathlib import Path
from typing import Any, TypeGuard, TypeVar

from receiver.batch import Batch
from receiver.model import (
    AlarmEvent,
    DerivedKey,
    DerivedValue,
    InventoryItem,
    Pairs,
    QuarantinedRecord,
    Series,
    SeriesKey,
)
from receiver.store.base import StoreConfigError, StoreError, start_buckets
from receiver.store.packing import pack_group
from receiver.store.sqlite.entities import PRUNE_ENTITIES, add_entities, touch_entities
from receiver.store.sqlite.reads import SQLiteReads
from receiver.store.sqlite.repack import repack_samples
from receiver.store.sqlite.schema import (
    ALARM_COLUMNS,
    ALARM_SCHEMA,
    BUMP_VERSION,
    CONFIG_ERRORS,
    DELETE_DERIVED,
    INSERT_BLOCK,
    INSERT_DERIVED,
    INVENTORY_SCHEMA,
    LABELS_CACHE_MAX,
    PACKED_VERSION,
    QUARANTINE_SCHEMA,
    REGION_UPGRADE,
    SAME_UNIT,
    SCHEMA,
    SCHEMA_VERSION,
    SERIES_CACHE_MAX,
    TAKE_LEASE,
    UPSERT_INVENTORY,
    UPSERT_LABELS,
    UPSERT_METRIC,
    UPSERT_QUARANTINE,
    UPSERT_REQUEST,
    UPSERT_SERIES,
    Row,
    SeriesRow,
    pairs_text,
)

_T = TypeVar("_T")


def _complete(rows: list[_T | None]) -> TypeGuard[list[_T]]:
    return None not in rows


class SQLiteDB(SQLiteReads):
    """One connection to one database file; not thread-safe, used from one thread only.

    Opening, health checks and writes are here; the reads are SQLiteReads' (reads.py)."""

    def __init__(self, path: Path, *, synchronous: str, busy_timeout_ms: int) -> None:
        self.path = path
        self._synchronous = synchronous
        self._busy_timeout_ms = busy_timeout_ms
        self._conn: sqlite3.Connection | None = None
        self._synchronous_now = synchronous
        self._file_id: tuple[int, int] | None = None
        """(device, inode) of the file when opened: a file deleted or replaced since is
        noticed before an ack (see check_file)."""
        self._reset_caches()

    def _reset_caches(self) -> None:
        # Write caches: name -> row id. They hold committed rows only; ids handed out in a
        # transaction that then rolls back are gone from the file and must not be reused.
        self._metric_ids: dict[tuple[str, str], int] = {}
        self._series_ids: dict[SeriesKey, tuple[int, int, str]] = {}  # Series.key -> (id, metric id, row unit)
        self._labels_ids: dict[str, int] = {}
        # Series -> (series, metric id, series id, unit to store): a Series hashes once, when
        # it is made, so most samples cost one dict hit here; series rows are never deleted,
        # so a committed entry stays true.
        self._rows_by_series: dict[Series, SeriesRow] = {}
        # The same, cut for the write path: each datapoint costs one lookup of its series id,
        # and its unit none while no committed Series has a unit other than its row's.
        self._ids_by_series: dict[Series, int] = {}
        self._odd_units: dict[Series, str | int] = {}
        # Read caches: row id -> model value, filled by reads.
        self._series_by_id: dict[int, Series] = {}
        self._series_by_id_unit: dict[tuple[int, str], Series] = {}
        self._labels_by_id: dict[int, Pairs] = {}
        self._sum_function: str | None = None  # asked of each new connection

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
            version = self._check_ours(conn)
            if version == 0:
                # Not executescript(): it would commit the open transaction first.
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
            elif version == 1:
                for statement in REGION_UPGRADE:
                    conn.execute(statement)
            if 0 < version < PACKED_VERSION:
                repack_samples(conn, self.path)
            conn.execute(ALARM_SCHEMA)
            for statement in (*QUARANTINE_SCHEMA, *INVENTORY_SCHEMA):
                conn.execute(statement)
            add_entities(conn)
            if version < SCHEMA_VERSION:
                # A new file's SCHEMA set it already; an older file has just been upgraded.
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
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
        if name.startswith(CONFIG_ERRORS):
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

    # -- writes ------------------------------------------------------------------

    def write_samples(self, samples: Batch) -> None:
        """Upsert one slice of a delivery, and bump its buckets' versions, in a transaction
        of its own that is not synced to disk: the delivery's ``commit`` syncs the
        write-ahead log, which holds this transaction as well, before the ack."""
        self._transaction(samples, durable=False)

    def commit(
        self,
        request_id: str,
        samples: Batch,
        quarantined: Sequence[QuarantinedRecord],
        now_ms: int,
        prune_before_ms: int | None,
    ) -> None:
        """Upsert ``samples``, keep ``quarantined`` and record ``request_id`` at ``now_ms``
        in one synced transaction, after checking the file is still the one opened.

        With ``prune_before_ms``, request ids committed at or before it are deleted too.
        """
        self.check_file()
        self._transaction(samples, durable=True, request=(request_id, now_ms, prune_before_ms), quarantined=quarantined)

    def _transaction(
        self,
        samples: Batch,
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
            starts = self._upsert_slice(conn, samples, pending)
            conn.executemany(BUMP_VERSION, start_buckets(set(starts)))
            conn.executemany(UPSERT_QUARANTINE, [_quarantine_row(record) for record in quarantined])
            if request is not None:
                request_id, now_ms, prune_before_ms = request
                conn.execute(UPSERT_REQUEST, (request_id, now_ms))
                if prune_before_ms is not None:
                    conn.execute("DELETE FROM requests WHERE committed_ms <= ?", (prune_before_ms,))
            conn.execute("COMMIT")
        except BaseException:
            self._rollback(conn)
            raise
        self._metric_ids.update(pending.metrics)
        self._series_ids.update(pending.series)
        committed_series = self._rows_by_series
        if len(committed_series) + len(pending.rows_by_series) > SERIES_CACHE_MAX:
            committed_series.clear()
            self._ids_by_series.clear()
            self._odd_units.clear()
        committed_series.update(pending.rows_by_series)
        for series, _, series_id, unit in pending.rows_by_series.values():
            self._ids_by_series[series] = series_id
            if unit != SAME_UNIT:
                self._odd_units[series] = unit
        if len(self._labels_ids) + len(pending.labels) > LABELS_CACHE_MAX:
            self._labels_ids.clear()
        self._labels_ids.update(pending.labels)

    def _upsert_slice(self, conn: sqlite3.Connection, batch: Batch, pending: _Pending) -> list[int]:
        """Write one slice as blocks in the open transaction, a group of the batch per block
        (or more when a group repeats an identity); returns their starts."""
        rows = []
        for group in batch.groups:
            # The per-datapoint work runs column by column in C (map, slices, array): a
            # Python loop over the datapoints cost as much as SQLite's own work for them.
            metric_id, series_ids, units = self._series_columns(conn, group.series, pending)
            labels_ids = self._labels_ids_of(conn, group.labels, pending)
            for block in pack_group(
                group,
                metric_id,
                series_ids,
                labels_ids[0] if labels_ids.count(labels_ids[0]) == len(labels_ids) else labels_ids,
                units,
            ):
                rows.append((block.metric, block.start_ms, len(block.series), block.data))
        conn.executemany(INSERT_BLOCK, rows)
        return [row[1] for row in rows]

    def _series_columns(
        self, conn: sqlite3.Connection, series: Sequence[Series], pending: _Pending
    ) -> tuple[int, list[int], list[str | int] | None]:
        """The metric id of one group's series (one metric), each datapoint's series id, and
        each one's unit to store (None when every one is its series row's)."""
        ids = list(map(self._ids_by_series.get, series))
        if not _complete(ids):
            rows: list[Any] = list(chain.from_iterable(self._resolve_series(conn, series, pending)))
            units = rows[3::4]  # 4 fields per datapoint: series, metric id, series id, unit
            return rows[1], rows[2::4], None if units.count(SAME_UNIT) == len(units) else units
        odd = self._odd_units
        if odd and not odd.keys().isdisjoint(series):
            return self._rows_by_series[series[0]][1], ids, [odd.get(one, SAME_UNIT) for one in series]
        return self._rows_by_series[series[0]][1], ids, None

    def _resolve_series(self, conn: sqlite3.Connection, series: Sequence[Series], pending: _Pending) -> list[SeriesRow]:
        """(series, metric id, series id, unit to store) of each Series, creating missing rows."""
        found = list(map(self._rows_by_series.get, series))
        if _complete(found):
            return found
        new = pending.rows_by_series
        resolved: list[SeriesRow] = []
        for one, row in zip(series, found):
            if row is None:
                row = new.get(one)
                if row is None:
                    row = new[one] = self._series_row(conn, one, pending)
            resolved.append(row)
        return resolved

    def _labels_ids_of(self, conn: sqlite3.Connection, labels: Sequence[Pairs], pending: _Pending) -> list[int]:
        """The labels id of each labels tuple; decoders share one tuple per record."""
        # list.count finds a shared tuple by identity before it compares: one record's
        # slice, or one without labels, costs a pass of pointer comparisons.
        if labels and labels.count(labels[0]) == len(labels):
            return [self._labels_row(conn, labels[0], pending)] * len(labels)
        ids = {one: self._labels_row(conn, one, pending) for one in dict.fromkeys(labels)}
        return list(map(ids.__getitem__, labels))

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
        """(series, metric id, series id, unit to store per sample or SAME_UNIT) for one Series."""
        key = series.key
        known = self._series_ids.get(key) or pending.series.get(key)
        if known is None:
            metric_key = (series.namespace, series.metric)
            metric_id = self._metric_ids.get(metric_key) or pending.metrics.get(metric_key)
            if metric_id is None:
                metric_id = pending.metrics[metric_key] = conn.execute(UPSERT_METRIC, metric_key).fetchone()[0]
            dimensions = pairs_text(series.dimensions)
            series_id, row_unit = conn.execute(
                UPSERT_SERIES, (metric_id, series.account, series.region, dimensions, series.unit)
            ).fetchone()
            known = pending.series[key] = (series_id, metric_id, row_unit)
        series_id, metric_id, row_unit = known
        return series, metric_id, series_id, SAME_UNIT if series.unit == row_unit else series.unit

    def _labels_row(self, conn: sqlite3.Connection, labels: Pairs, pending: _Pending) -> int:
        text = pairs_text(labels)
        labels_id = self._labels_ids.get(text) or pending.labels.get(text)
        if labels_id is None:
            labels_id = pending.labels[text] = conn.execute(UPSERT_LABELS, (text,)).fetchone()[0]
        return labels_id

    # -- health ------------------------------------------------------------------

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

    # -- derived values ------------------------------------------------------------

    def put_derived(self, step_ms: int, bucket_ms: int, version: int, values: Sequence[DerivedValue]) -> bool:
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = _derived_version(conn, step_ms, bucket_ms)
            if row is not None and row[0] >= version:
                conn.execute("ROLLBACK")
                return False
            conn.execute("DELETE FROM derived WHERE step_ms = ? AND time_ms = ?", (step_ms, bucket_ms))
            conn.executemany(INSERT_DERIVED, [_derived_row(step_ms, bucket_ms, v) for v in values])
            touch_entities(conn, bucket_ms, values)
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

    def put_derived_changes(
        self,
        step_ms: int,
        bucket_ms: int,
        base_version: int,
        version: int,
        upserts: Sequence[DerivedValue],
        removals: Collection[DerivedKey],
    ) -> bool:
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = _derived_version(conn, step_ms, bucket_ms)
            if row is None or row[0] != base_version or version < base_version:
                conn.execute("ROLLBACK")
                return False
            conn.executemany(
                DELETE_DERIVED,
                [
                    (step_ms, metric, service, endpoint or "", instance or "", region, time_ms)
                    for metric, service, endpoint, instance, region, time_ms in removals
                ],
            )
            conn.executemany(INSERT_DERIVED, [_derived_row(step_ms, bucket_ms, v) for v in upserts])
            touch_entities(conn, bucket_ms, upserts)
            conn.execute(
                "UPDATE bucket_versions SET derived_version = ? WHERE step_ms = ? AND bucket_ms = ?",
                (version, step_ms, bucket_ms),
            )
            conn.execute("COMMIT")
        except BaseException:
            self._rollback(conn)
            raise
        return True

    def prune_metric(self, metric_id: int, cutoff_ms: int) -> None:
        """Delete one metric's blocks of starts before ``cutoff_ms``, every copy of their
        datapoints with them: one range scan of its index."""
        self._write(["DELETE FROM sample_blocks WHERE metric_id = ? AND start_ms < ?"], (metric_id, cutoff_ms))

    def prune_buckets(self, step_ms: int, cutoff_ms: int) -> None:
        """Delete one step's derived values and versions before ``cutoff_ms``."""
        self._write(
            [
                "DELETE FROM derived WHERE step_ms = ? AND time_ms < ?",
                "DELETE FROM bucket_versions WHERE step_ms = ? AND bucket_ms < ?",
            ],
            (step_ms, cutoff_ms),
        )

    def prune_entities(self, cutoff_ms: int) -> None:
        """Forget the entities whose latest value is before ``cutoff_ms`` (the hour retention)."""
        self._write([PRUNE_ENTITIES], (cutoff_ms,))

    # -- alarm events --------------------------------------------------------------

    def put_alarm_event(self, event: AlarmEvent) -> bool:
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            cursor = conn.execute(
                f"INSERT OR IGNORE INTO alarm_events ({ALARM_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    event.rule,
                    event.service,
                    event.endpoint or "",
                    event.seq,
                    event.kind,
                    event.minute_ms,
                    event.value,
                    event.threshold,
                    event.message,
                    event.created_ms,
                ),
            )
            conn.execute("COMMIT")
        except BaseException:
            self._rollback(conn)
            raise
        return cursor.rowcount == 1

    def prune_alarm_events(self, cutoff_ms: int) -> None:
        """Forget alarm events of minutes before ``cutoff_ms`` (the hour retention), heads
        included, as DynamoDB's expire by TTL: a chain that old starts again at seq 1."""
        self._write(["DELETE FROM alarm_events WHERE minute_ms < ?"], (cutoff_ms,))

    # -- the table inventory and leases ----------------------------------------------

    def put_inventory(self, items: Sequence[InventoryItem]) -> None:
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(
                UPSERT_INVENTORY,
                [(i.kind, i.account, i.region, i.name, i.updated_ms, i.body) for i in items],
            )
            conn.execute("COMMIT")
        except BaseException:
            self._rollback(conn)
            raise

    def prune_inventory(self, cutoff_ms: int) -> None:
        """Forget inventory items not updated since ``cutoff_ms`` (the hour retention)."""
        self._write(["DELETE FROM inventory WHERE updated_ms < ?"], (cutoff_ms,))

    def take_lease(self, name: str, holder: str, now_ms: int, duration_ms: int) -> bool:
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            cursor = conn.execute(TAKE_LEASE, (name, holder, now_ms + duration_ms, now_ms))
            conn.execute("COMMIT")
        except BaseException:
            self._rollback(conn)
            raise
        return cursor.rowcount == 1

    def release_lease(self, name: str, holder: str) -> None:
        self._write(["DELETE FROM leases WHERE name = ? AND holder = ?"], (name, holder))

    # -- quarantine ----------------------------------------------------------------

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


def _file_id(status: os.stat_result) -> tuple[int, int]:
    return (status.st_dev, status.st_ino)


def _quarantine_row(record: QuarantinedRecord) -> Row:
    return (
        record.request_id,
        record.index,
        record.received_ms,
        record.reason,
        record.detail,
        pairs_text(record.labels),
        record.data,
    )


class _Pending:
    """Rows created by the open transaction: moved into the caches only once it commits."""

    __slots__ = ("labels", "metrics", "rows_by_series", "series")

    def __init__(self) -> None:
        self.metrics: dict[tuple[str, str], int] = {}
        self.series: dict[SeriesKey, tuple[int, int, str]] = {}
        self.labels: dict[str, int] = {}
        self.rows_by_series: dict[Series, SeriesRow] = {}


def _derived_version(conn: sqlite3.Connection, step_ms: int, bucket_ms: int) -> tuple[int] | None:
    """The bucket's (derived_version,) row; None when no commit or derivation made one."""
    row: tuple[int] | None = conn.execute(
        "SELECT derived_version FROM bucket_versions WHERE step_ms = ? AND bucket_ms = ?", (step_ms, bucket_ms)
    ).fetchone()
    return row


def _derived_row(step_ms: int, bucket_ms: int, v: DerivedValue) -> tuple[object, ...]:
    """The derived table's columns of one value (an empty endpoint or instance is '')."""
    return (
        step_ms,
        v.metric,
        v.service,
        v.endpoint or "",
        v.instance or "",
        v.region,
        bucket_ms,
        v.scope,
        v.layer,
        v.value,
        v.merged,
    )
