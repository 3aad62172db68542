"""The packed sample layout, measured: SQLite's write speed per datapoint before and after (A/B in
one process).

**SQLite A/B.** Two stores in this process take the same slices of the seeded workload, turn
about: one as blocks (the store as it is), one as a row per datapoint (``RowPerDatapoint``:
the store's own series and labels handling with the layout of schema 3, one upserted row
per datapoint in multi-row statements, as the store wrote until blocks came). Each takes a
warm-up of every series first, as a running receiver has seen them. A slice is written as
ingest writes one (``write_samples``: a transaction that is not synced), then the last one
as a delivery's commit (synced: ``synchronous=FULL``). Figures: microseconds per datapoint,
the best and the median of the slices.

The DynamoDB store's writes and reads are measured in benchmarks/dynamodb_cost.py.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Sequence
from itertools import chain
from pathlib import Path
from typing import Any

import orjson

from receiver.batch import Batch
from receiver.firehose.records import SLICE_SAMPLES
from receiver.model import Sample
from receiver.store.base import check_finite
from receiver.store.sqlite.db import SQLiteDB, _Pending

from .bodies import MIB, SampleSource

# -- SQLite: blocks against a row per datapoint ---------------------------------------------

_OLD_SAMPLES = """
CREATE TABLE IF NOT EXISTS samples (
    metric_id INTEGER NOT NULL, start_ms INTEGER NOT NULL, series_id INTEGER NOT NULL, end_ms INTEGER NOT NULL,
    unit TEXT, count REAL NOT NULL, sum REAL NOT NULL, min REAL NOT NULL, max REAL NOT NULL,
    stats TEXT NOT NULL, labels_id INTEGER NOT NULL,
    PRIMARY KEY (metric_id, start_ms, series_id, end_ms)
) WITHOUT ROWID
"""
_OLD_ROW = "(?, ?, ?, ?, nullif(?, 0), ?, ?, ?, ?, ?, ?)"
_OLD_WIDTH = 11
_OLD_UPSERT = """
INSERT INTO samples (metric_id, start_ms, series_id, end_ms, unit, count, sum, min, max, stats, labels_id)
VALUES {rows}
ON CONFLICT (metric_id, start_ms, series_id, end_ms) DO UPDATE SET
    unit = excluded.unit, count = excluded.count, sum = excluded.sum, min = excluded.min,
    max = excluded.max, stats = excluded.stats, labels_id = excluded.labels_id
"""
_OLD_CHUNKS = (256, 16, 1)
_OLD_STATEMENTS = {per: _OLD_UPSERT.format(rows=", ".join([_OLD_ROW] * per)) for per in _OLD_CHUNKS}


class RowPerDatapoint(SQLiteDB):
    """The SQLite store with the sample layout of schema 3: one upserted row per datapoint.

    The store's write path takes a ``Batch``; this layout wrote ``Sample``s, which ingest
    made as it decoded. So the bench hands it each batch's samples beforehand
    (``samples_of``), and its time is its own writing, not unpacking the batch again."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.samples_of: dict[int, Sequence[Sample]] = {}
        """The samples of each batch about to be written, by the batch's id."""

    def connect(self) -> None:
        super().connect()
        self.conn.execute(_OLD_SAMPLES)

    def _upsert_slice(self, conn: Any, batch: Batch, pending: _Pending) -> list[int]:
        samples = self.samples_of.pop(id(batch))
        width = 9
        fields: list[Any] = list(chain.from_iterable(samples))
        starts, ends = fields[1::width], fields[2::width]
        numbers = (fields[3::width], fields[4::width], fields[5::width], fields[6::width])
        stats_texts = list(map(bytes.decode, map(orjson.dumps, fields[7::width])))  # () -> "[]"
        # NaN and infinities survive a sum; orjson writes them as null.
        if not math.isfinite(sum(map(sum, numbers))) or "null" in "".join(stats_texts):
            check_finite(samples)
        by_series = self._resolve_series(conn, fields[0::width], pending)
        labels_ids = self._labels_ids_of(conn, fields[8::width], pending)
        series_rows: list[Any] = list(chain.from_iterable(by_series))
        columns = (
            series_rows[1::4],
            starts,
            series_rows[2::4],
            ends,
            series_rows[3::4],
            *numbers,
            stats_texts,
            labels_ids,
        )
        rows: list[Any] = [None] * (_OLD_WIDTH * len(samples))
        for column, values in enumerate(columns):
            rows[column::_OLD_WIDTH] = values
        done = 0
        for per in _OLD_CHUNKS:
            step = per * _OLD_WIDTH
            end = done + (len(rows) - done) // step * step
            if end > done:
                conn.executemany(_OLD_STATEMENTS[per], (rows[i : i + step] for i in range(done, end, step)))
                done = end
        return starts


def sqlite_ab(tables: int, slices: int, folder: Path) -> dict[str, Any]:
    """Blocks against a row per datapoint, slice by slice in turn (see the module docstring)."""
    folder.mkdir(parents=True, exist_ok=True)
    source = SampleSource(tables)
    stores = {
        "blocks": SQLiteDB(folder / "blocks.db", synchronous="FULL", busy_timeout_ms=5000),
        "row per datapoint": RowPerDatapoint(folder / "rows.db", synchronous="FULL", busy_timeout_ms=5000),
    }
    rows_store = stores["row per datapoint"]
    assert isinstance(rows_store, RowPerDatapoint)

    def batch(samples: Sequence[Sample], db: SQLiteDB) -> Batch:
        made = Batch.of(samples)
        if db is rows_store:
            rows_store.samples_of[id(made)] = samples
        return made

    warm = source.every_series()
    for db in stores.values():
        for path in folder.glob(f"{db.path.name}*"):
            path.unlink()
        db.connect()
        db.commit("warm-up", batch(warm, db), (), 0, None)
    per_dp: dict[str, list[float]] = {name: [] for name in stores}
    commit_per_dp: dict[str, float] = {}
    work = [source.take(SLICE_SAMPLES) for _ in range(slices + 1)]
    for index, taken in enumerate(work):
        names = list(stores) if index % 2 else list(reversed(stores))
        for name in names:
            db = stores[name]
            samples = batch(taken, db)
            started = time.perf_counter()
            if index < slices:
                db.write_samples(samples)
                per_dp[name].append((time.perf_counter() - started) / len(samples) * 1e6)
            else:
                db.commit(f"r{index}", samples, (), 0, None)
                commit_per_dp[name] = (time.perf_counter() - started) / len(samples) * 1e6
    rows = {name: db.conn.execute("SELECT count(*) FROM " + table).fetchone()[0]
            for (name, db), table in zip(stores.items(), ("sample_blocks", "samples"))}  # fmt: skip
    sizes = {name: os.path.getsize(db.path) + _wal_size(db.path) for name, db in stores.items()}
    for db in stores.values():
        db.close()
    return {
        "tables": tables,
        "slice_datapoints": SLICE_SAMPLES,
        "slices": slices,
        "write_us_best": {name: min(values) for name, values in per_dp.items()},
        "write_us_median": {name: statistics.median(values) for name, values in per_dp.items()},
        "commit_us": commit_per_dp,
        "rows": rows,
        "file_bytes": sizes,
        "datapoints": len(warm) + SLICE_SAMPLES * (slices + 1),
    }


def _wal_size(path: Path) -> int:
    wal = path.with_name(path.name + "-wal")
    return os.path.getsize(wal) if wal.exists() else 0


# -- the report -----------------------------------------------------------------------------


def report(sqlite: dict[str, Any], table: Any) -> list[str]:
    """The printed tables: ``table(headers, rows)`` is run.py's."""
    parts = [
        f"\nSample layout, SQLite (A/B in one process, {sqlite['tables']} tables, slices of "
        f"{sqlite['slice_datapoints']:,} datapoints after a warm-up of every series; µs per datapoint)"
    ]
    parts.append(
        table(
            ["layout", "write_samples best", "median", "commit (synced)", "rows", "file MiB"],
            [
                [
                    name,
                    f"{sqlite['write_us_best'][name]:.2f}",
                    f"{sqlite['write_us_median'][name]:.2f}",
                    f"{sqlite['commit_us'][name]:.2f}",
                    f"{sqlite['rows'][name]:,}",
                    f"{sqlite['file_bytes'][name] / MIB:.1f}",
                ]
                for name in sqlite["write_us_best"]
            ],
        )
    )
    return parts
