"""Upgrading a store file whose samples are one row each (schema 3 and 4) to blocks (schema 5).

Before version 5 the ``samples`` table held one row per datapoint, keyed (metric_id,
start_ms, series_id, end_ms). ``repack_samples`` reads it in key order, so each metric's
start comes whole and already in a block's order (series, then end), writes those rows as
blocks of ``sample_blocks`` and drops the old table, inside the transaction that opens the
file: a crash half-way leaves the file as it was, and the next start repacks it again.
Derived values stay valid, since the samples are the same ones.

It runs once per file, when a receiver of schema 5 or later first opens it. A million rows
took 13.7 s (6.9 s of CPU) on the shared bench machine, so a week of 2,000 tables (some 360
million rows) takes an hour or two: the receiver logs how far it got every 30 seconds.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from receiver.model import Pairs, Sample, Series, Stats
from receiver.store.packing import pack
from receiver.store.sqlite.schema import INSERT_BLOCK, SAMPLE_BLOCKS, SAMPLE_BLOCKS_INDEX, pairs_from_text

log = logging.getLogger("receiver.store.sqlite")

BLOCK_DATAPOINTS = 10_000
"""At most this many datapoints per repacked block: as many as a delivery's slice holds."""
_FETCH = 10_000
_PROGRESS_S = 30.0

_OLD_COLUMNS = "metric_id, start_ms, series_id, end_ms, unit, count, sum, min, max, stats, labels_id"


def repack_samples(conn: sqlite3.Connection, path: Path) -> int:
    """Move the rows of an old ``samples`` table into blocks and drop it; how many moved.

    Runs in the caller's open transaction. A file without the old table (new, or repacked
    already) is left alone.
    """
    conn.execute(SAMPLE_BLOCKS)
    conn.execute(SAMPLE_BLOCKS_INDEX)
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'samples'").fetchone():
        return 0
    total = conn.execute("SELECT count(*) FROM samples").fetchone()[0]
    if total:
        log.info("repacking the samples of %s into blocks (%d rows); the receiver starts once it is done", path, total)
    moved = 0
    started = reported = time.monotonic()
    cursor = conn.execute(f"SELECT {_OLD_COLUMNS} FROM samples ORDER BY metric_id, start_ms, series_id, end_ms")
    for metric_id, start_ms, rows in _groups(cursor):
        for first in range(0, len(rows), BLOCK_DATAPOINTS):
            chunk = rows[first : first + BLOCK_DATAPOINTS]
            conn.execute(INSERT_BLOCK, (metric_id, start_ms, len(chunk), _block(start_ms, chunk)))
        moved += len(rows)
        if time.monotonic() - reported >= _PROGRESS_S:
            reported = time.monotonic()
            log.info("repacked %d of %d sample rows of %s", moved, total, path)
    conn.execute("DROP TABLE samples")
    if total:
        log.info("repacked %d sample rows of %s in %.0f s", moved, path, time.monotonic() - started)
    return moved


def _groups(cursor: sqlite3.Cursor) -> Iterator[tuple[int, int, list[tuple[Any, ...]]]]:
    """(metric id, start, its rows) of every metric and start, from rows in key order."""
    current: tuple[int, int] | None = None
    rows: list[tuple[Any, ...]] = []
    while batch := cursor.fetchmany(_FETCH):
        for row in batch:
            key = (row[0], row[1])
            if key != current:
                if rows and current is not None:
                    yield (*current, rows)
                current, rows = key, []
            rows.append(row)
    if rows and current is not None:
        yield (*current, rows)


def _block(start_ms: int, rows: list[tuple[Any, ...]]) -> bytes:
    """One block of old rows of one metric and start, in key order (distinct identities)."""
    # The packer takes Samples; these stand-ins carry the numbers, and series and labels
    # travel as the integers the rows have (a placeholder Series: it is never stored).
    stats_of: dict[str, Stats] = {}
    samples = [
        Sample(_PLACEHOLDER, start_ms, end_ms, count, total, low, high, _stats(stats_of, stats), _NO_LABELS)
        for _, _, _, end_ms, _, count, total, low, high, stats, _ in rows
    ]
    units: list[str | int] = [0 if row[4] is None else row[4] for row in rows]  # NULL: the series' unit
    labels = [row[10] for row in rows]
    [packed] = pack(
        samples,
        [0] * len(rows),
        [row[2] for row in rows],
        labels[0] if labels.count(labels[0]) == len(labels) else labels,
        None if units.count(0) == len(units) else units,
    )
    return packed.data


def _stats(known: dict[str, Stats], text: str) -> Stats:
    stats = known.get(text)
    if stats is None:
        stats = known[text] = tuple((name, float(value)) for name, value in pairs_from_text(text))
    return stats


_PLACEHOLDER = Series("", "", "", "", (), "")
_NO_LABELS: Pairs = ()
