"""Reads of the SQLite database: samples, derived values, alarm events, quarantined records,
the table inventory.

SQLiteReads is a mixin of SQLiteDB (db.py), which owns the connection and the caches the
reads fill; like the rest of SQLiteDB, every method runs on the thread that owns the
connection.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Iterable
from itertools import chain, groupby
from operator import itemgetter
from pathlib import Path

import orjson

from receiver.model import (
    AlarmEvent,
    DerivedValue,
    InventoryItem,
    Pairs,
    QuarantinedRecord,
    Sample,
    Series,
    latest_per_key,
)
from receiver.store.base import Entity, StoreError, Totals, WriteOrder, Written, entities_of
from receiver.store.packing import Block, Part, distinct, latest
from receiver.store.sqlite.entities import entity_rows
from receiver.store.sqlite.reductions import endpoint_latest, endpoint_totals, summing_function
from receiver.store.sqlite.schema import (
    ALARM_COLUMNS,
    DERIVED_COLUMNS,
    ID_CHUNK,
    INVENTORY_COLUMNS,
    LABELS_CACHE_MAX,
    QUARANTINE_COLUMNS,
    SELECT_BLOCKS,
    SELECT_BLOCKS_SINCE,
    SELECT_BLOCKS_WRITTEN,
    Row,
    pairs_from_text,
)


class SQLiteReads:
    """The read methods of SQLiteDB, which opens and closes the connection and sets up the
    read caches."""

    path: Path
    _conn: sqlite3.Connection | None
    # Read caches, row id -> model value (set up by SQLiteDB._reset_caches).
    _series_by_id: dict[int, Series]
    _series_by_id_unit: dict[tuple[int, str], Series]
    _labels_by_id: dict[int, Pairs]
    _sum_function: str | None
    """The aggregate that adds values in order on this connection (reductions.py), once asked."""

    @property
    def conn(self) -> sqlite3.Connection:
        """The open connection; StoreError once it is closed."""
        if self._conn is None:
            raise StoreError(f"the sqlite store {self.path} is closed")
        return self._conn

    def is_committed(self, request_id: str, since_ms: int) -> bool:
        row = self.conn.execute(
            "SELECT 1 FROM requests WHERE request_id = ? AND committed_ms > ?", (request_id, since_ms)
        ).fetchone()
        return row is not None

    def count_samples(self) -> int:
        """Distinct identities: a start written once counts its block's datapoints; one
        written several times counts the identities of its blocks together."""
        conn = self.conn
        total = 0
        groups = conn.execute(
            "SELECT metric_id, start_ms, count(*), sum(n) FROM sample_blocks GROUP BY metric_id, start_ms"
        ).fetchall()
        for metric_id, start_ms, blocks, datapoints in groups:
            if blocks == 1:
                total += datapoints
                continue
            rows = conn.execute(
                "SELECT data FROM sample_blocks WHERE metric_id = ? AND start_ms = ? ORDER BY seq",
                (metric_id, start_ms),
            )
            parts: list[Part] = []
            for (data,) in rows:
                block = Block(data, start_ms)
                parts.append((block, 0, block.n, []))
            total += distinct(parts)
        return total

    def samples(
        self, start_ms: int, end_ms: int, namespace: str | None, metrics: Collection[str] | None
    ) -> list[Sample]:
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
        return self._read_blocks(SELECT_BLOCKS.format(where=" AND ".join(conditions)), params, None)

    def written_since(self, start_ms: int, end_ms: int, mark: object | None) -> Written:
        """Each block of starts in ``[start_ms, end_ms)`` with a seq above ``mark`` (an
        int: the largest seq found before), as one write of order (seq, '').

        A block's seq is its rowid, and SQLite commits one writer at a time, each new row
        one above the largest rowid there is: a reader never finds a seq below one it found
        before. The mark is the largest seq found in the range, whose row stays while its
        minute is kept, so a later row is never given a seq at or below it. A range with no
        block yet keeps no mark: from 0, the next call would scan every row there is.
        """
        conn = self.conn
        if mark is None:
            after = 0
            rows = conn.execute(SELECT_BLOCKS_WRITTEN, (start_ms, end_ms))
        else:
            if not isinstance(mark, int):
                raise TypeError(f"a mark of the sqlite store is an int, not {type(mark).__name__}")
            after = mark
            # By seq alone (the rowid: one range of the table), the start only looked at:
            # the blocks of a pass are the few written since the last.
            rows = conn.execute(SELECT_BLOCKS_SINCE, (start_ms, end_ms, after))
        writes: list[tuple[WriteOrder, list[Sample]]] = []
        for seq, start, data in rows:
            if data is None:
                continue  # another minute's block
            block = Block(data, start)
            writes.append(((seq, ""), self._block_samples(conn, block, 0, block.n)))
            after = max(after, seq)
        writes.sort(key=itemgetter(0))
        if mark is None and not writes:
            return Written([], None)  # nothing in the range yet: the next call reads it whole again
        return Written(writes, after)

    def series_groups(self, per_group: int) -> list[tuple[int, int, int]]:
        """(metric id, first series id, last series id) of groups of at most ``per_group``
        series of one metric, covering every series."""
        rows = self.conn.execute("SELECT metric_id, id FROM series ORDER BY metric_id, id").fetchall()
        groups: list[tuple[int, int, int]] = []
        for metric_id, series in groupby(rows, key=itemgetter(0)):
            ids = [series_id for _, series_id in series]
            groups += [
                (metric_id, ids[i], ids[min(i + per_group, len(ids)) - 1]) for i in range(0, len(ids), per_group)
            ]
        return groups

    def samples_of_series(self, group: tuple[int, int, int], start_ms: int, end_ms: int) -> list[Sample]:
        """``samples`` of the series of one group of ``series_groups``: a range scan of
        the metric's blocks, of which only that range of series is decoded (a block's
        series ids are ascending)."""
        metric_id, first, last = group
        return self._read_blocks(SELECT_BLOCKS.format(where="m.id = ?"), (start_ms, end_ms, metric_id), (first, last))

    def block_bytes(self, metric_id: int, start_ms: int, end_ms: int) -> int:
        """The bytes of a metric's blocks with starts in ``[start_ms, end_ms)``."""
        query = "SELECT sum(length(data)) FROM sample_blocks WHERE metric_id = ? AND start_ms >= ? AND start_ms < ?"
        return int(self.conn.execute(query, (metric_id, start_ms, end_ms)).fetchone()[0] or 0)

    def blocks_of_metric(self, metric_id: int, start_ms: int, end_ms: int) -> list[Row]:
        """The rows of a metric's blocks with starts in ``[start_ms, end_ms)``, undecoded:
        read once for all its groups of ``series_groups`` (``samples_in_blocks``)."""
        return self.conn.execute(SELECT_BLOCKS.format(where="m.id = ?"), (start_ms, end_ms, metric_id)).fetchall()

    def samples_in_blocks(self, rows: Iterable[Row], first: int, last: int) -> list[Sample]:
        """``samples_of_series`` of the series ids ``first`` to ``last`` from the rows of
        ``blocks_of_metric``."""
        return self._samples_of_rows(rows, (first, last))

    def _read_blocks(self, query: str, params: Iterable[object], series_range: tuple[int, int] | None) -> list[Sample]:
        """The samples of the blocks a SELECT_BLOCKS query finds, each identity once (the
        last written), by ascending start; only series in ``series_range`` if given.

        The blocks are decoded one at a time as the cursor meets them, so a read holds the
        blocks of one metric and start at most, beside the samples it returns.
        """
        return self._samples_of_rows(self.conn.execute(query, tuple(params)), series_range)

    def _samples_of_rows(self, rows: Iterable[Row], series_range: tuple[int, int] | None) -> list[Sample]:
        conn = self.conn
        by_start: list[tuple[int, list[Sample]]] = []
        parts: list[Part] = []
        current: tuple[int, int] | None = None
        for metric_id, start_ms, data in rows:
            if (metric_id, start_ms) != current:
                if parts:
                    by_start.append((parts[0][0].start_ms, latest(parts)))
                parts, current = [], (metric_id, start_ms)
            block = Block(data, start_ms)
            lo, hi = (0, block.n) if series_range is None else block.span(*series_range)
            if lo < hi:
                parts.append((block, lo, hi, self._block_samples(conn, block, lo, hi)))
        if parts:
            by_start.append((parts[0][0].start_ms, latest(parts)))
        by_start.sort(key=itemgetter(0))  # stable: each metric's starts are in order already
        return list(chain.from_iterable(samples for _, samples in by_start))

    def _block_samples(self, conn: sqlite3.Connection, block: Block, lo: int, hi: int) -> list[Sample]:
        series_by_id = self._series_by_id
        labels_by_id = self._labels_by_id
        # difference() with a dict looks each id up: "- keys()" would walk the whole cache.
        missing_series = set(block.series[lo:hi]).difference(series_by_id)
        if missing_series:
            self._load_series(conn, missing_series)
        needed_labels = block.labels(lo, hi)
        missing_labels = needed_labels.difference(labels_by_id)
        if missing_labels:
            if len(labels_by_id) + len(missing_labels) > LABELS_CACHE_MAX:
                labels_by_id.clear()
                missing_labels = needed_labels
            self._load_labels(conn, missing_labels)
        return block.rows(series_by_id.__getitem__, labels_by_id.__getitem__, self._series_with_unit, lo, hi)

    def versions(self, step_ms: int, buckets: Collection[int]) -> dict[int, int]:
        found = dict.fromkeys(buckets, 0)
        query = "SELECT bucket_ms, version FROM bucket_versions WHERE step_ms = ? AND bucket_ms IN ({marks})"
        wanted = sorted(found)
        for i in range(0, len(wanted), ID_CHUNK):
            chunk = wanted[i : i + ID_CHUNK]
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

    def derived(
        self,
        metric: str,
        step_ms: int,
        start_ms: int,
        end_ms: int,
        service: str | None,
        endpoint: str | None,
        region: str | None = None,
    ) -> list[DerivedValue]:
        # "+time_ms": the range must not pick derived_by_time, which reads every metric's
        # values of the range (ANALYZE's statistics made the planner prefer it); the primary
        # key's (step, metric, service) prefix reads just this metric's.
        conditions = ["step_ms = ?", "metric = ?", "+time_ms >= ?", "+time_ms <= ?"]
        params: list[object] = [step_ms, metric, start_ms, end_ms]
        if region is None:
            conditions.append("merged")
        else:
            conditions.append("region = ?")
            params.append(region)
        if service is not None:
            conditions.append("service = ?")
            params.append(service)
        if endpoint is not None:
            conditions.append("endpoint = ?")
            params.append(endpoint)
        rows = self.conn.execute(
            f"SELECT {DERIVED_COLUMNS} FROM derived WHERE {' AND '.join(conditions)} "
            "ORDER BY time_ms, service, endpoint, instance",
            params,
        ).fetchall()
        return [_derived_value(row) for row in rows]

    def endpoint_totals(
        self, metric: str, step_ms: int, start_ms: int, end_ms: int, service: str, region: str | None
    ) -> dict[str, Totals]:
        conn = self.conn
        if self._sum_function is None:
            self._sum_function = summing_function(conn)
        return endpoint_totals(conn, self._sum_function, metric, step_ms, start_ms, end_ms, service, region)

    def endpoint_latest(
        self, metric: str, step_ms: int, start_ms: int, end_ms: int, service: str, region: str | None
    ) -> dict[str, float]:
        return endpoint_latest(self.conn, metric, step_ms, start_ms, end_ms, service, region)

    def bucket_values(self, step_ms: int, bucket_ms: int) -> list[DerivedValue]:
        rows = self.conn.execute(
            f"SELECT {DERIVED_COLUMNS} FROM derived WHERE step_ms = ? AND time_ms = ? "
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

    def entities(self, since_ms: int) -> list[Entity]:
        return entities_of(entity_rows(self.conn, since_ms))

    def alarm_events(self, since_ms: int) -> list[AlarmEvent]:
        rows = self.conn.execute(
            f"SELECT {ALARM_COLUMNS} FROM alarm_events WHERE minute_ms >= ? "
            "ORDER BY minute_ms, rule, service, endpoint, seq",
            (since_ms,),
        ).fetchall()
        return [_alarm_event(row) for row in rows]

    def alarm_heads(self) -> list[AlarmEvent]:
        rows = self.conn.execute(
            f"SELECT {ALARM_COLUMNS} FROM alarm_events AS a WHERE seq = "
            "(SELECT max(seq) FROM alarm_events AS b WHERE b.rule = a.rule AND b.service = a.service "
            "AND b.endpoint = a.endpoint)"
        ).fetchall()
        return latest_per_key([_alarm_event(row) for row in rows])

    def inventory(self, kind: str | None) -> list[InventoryItem]:
        order = "ORDER BY kind, account, region, name"
        if kind is None:
            rows = self.conn.execute(f"SELECT {INVENTORY_COLUMNS} FROM inventory {order}").fetchall()
        else:
            rows = self.conn.execute(
                f"SELECT {INVENTORY_COLUMNS} FROM inventory WHERE kind = ? {order}", (kind,)
            ).fetchall()
        return [InventoryItem(*row) for row in rows]

    def quarantined(self, limit: int) -> list[QuarantinedRecord]:
        rows = self.conn.execute(
            f"SELECT {QUARANTINE_COLUMNS} FROM quarantine ORDER BY received_ms, request_id, record_index LIMIT ?",
            (limit,),
        ).fetchall()
        return [_quarantined_record(row) for row in rows]

    def count_quarantined(self) -> int:
        count: int = self.conn.execute("SELECT count(*) FROM quarantine").fetchone()[0]
        return count

    def metric_ids(self) -> list[int]:
        return [row[0] for row in self.conn.execute("SELECT id FROM metrics ORDER BY id")]

    def _load_series(self, conn: sqlite3.Connection, ids: set[int]) -> None:
        query = (
            "SELECT s.id, s.account, s.region, m.namespace, m.metric, s.dimensions, s.unit "
            "FROM series s JOIN metrics m ON m.id = s.metric_id WHERE s.id IN ({marks})"
        )
        for series_id, account, region, namespace, metric, dimensions, unit in _select_by_ids(conn, query, ids):
            pairs = pairs_from_text(dimensions)
            self._series_by_id[series_id] = Series(account, region, namespace, metric, pairs, unit)

    def _load_labels(self, conn: sqlite3.Connection, ids: set[int]) -> None:
        for labels_id, text in _select_by_ids(conn, "SELECT id, pairs FROM labels WHERE id IN ({marks})", ids):
            self._labels_by_id[labels_id] = pairs_from_text(text)

    def _series_with_unit(self, series_id: int, unit: str) -> Series:
        series = self._series_by_id_unit.get((series_id, unit))
        if series is None:
            base = self._series_by_id[series_id]
            series = Series(base.account, base.region, base.namespace, base.metric, base.dimensions, unit)
            self._series_by_id_unit[(series_id, unit)] = series
        return series


def _quarantined_record(row: Row) -> QuarantinedRecord:
    request_id, index, received_ms, reason, detail, labels, data = row
    return QuarantinedRecord(request_id, index, received_ms, reason, detail, data, pairs_from_text(labels))


def _alarm_event(row: Row) -> AlarmEvent:
    rule, service, endpoint, seq, kind, minute_ms, value, threshold, message, created_ms = row
    return AlarmEvent(rule, service, endpoint or None, seq, kind, minute_ms, value, threshold, message, created_ms)


def _derived_value(row: Row) -> DerivedValue:
    metric, scope, service, endpoint, layer, time_ms, value, instance, region, merged = row
    return DerivedValue(
        metric, scope, service, endpoint or None, layer, time_ms, value, instance or None, region, bool(merged)
    )


def _select_by_ids(conn: sqlite3.Connection, query: str, ids: set[int]) -> list[Row]:
    wanted = sorted(ids)
    rows: list[Row] = []
    for i in range(0, len(wanted), ID_CHUNK):
        chunk = wanted[i : i + ID_CHUNK]
        rows += conn.execute(query.format(marks=",".join("?" * len(chunk))), chunk).fetchall()
    return rows
