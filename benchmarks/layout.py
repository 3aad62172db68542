"""The packed sample layout, measured: SQLite's write speed per datapoint before and after (A/B in
one process), and the DynamoDB store's writes per datapoint on dynalite.

**SQLite A/B.** Two stores in this process take the same slices of the seeded workload, turn
about: one as blocks (the store as it is), one as a row per datapoint (``RowPerDatapoint``:
the store's own series and labels handling with the layout of schema 3, one upserted row
per datapoint in multi-row statements, as the store wrote until blocks came). Each takes a
warm-up of every series first, as a running receiver has seen them. A slice is written as
ingest writes one (``write_samples``: a transaction that is not synced), then the last one
as a delivery's commit (synced: ``synchronous=FULL``). Figures: microseconds per datapoint,
the best and the median of the slices.

**DynamoDB cost.** The store (on dynalite, an independent DynamoDB server from npm) commits
minutes of the seeded workload as Firehose delivers them: in deliveries of 1 MiB of 0.7
records (the CDK stack's buffering size), each a commit. Every write is counted in write
request units (receiver_tools/write_units.py): as dynalite reports them
(``ReturnConsumedCapacity``) and as computed from the items by DynamoDB's size rules, by
kind of item. Writes per datapoint count everything a commit writes: blocks, catalog items,
version bumps, request ids. The derived values of one minute, written once as the deriver
does after each commit touching the minute, are counted apart. Dollars per table-month at
on-demand pricing: $0.625 per million write request units (us-east-1), 730 hours a month.
"""

from __future__ import annotations

import asyncio
import math
import os
import socket
import statistics
import subprocess
import time
from collections.abc import Sequence
from itertools import chain
from pathlib import Path
from typing import Any

import orjson

from receiver.config import REPOSITORY_RULES
from receiver.firehose.records import SLICE_SAMPLES
from receiver.formats import encode_records
from receiver.model import MINUTE_MS, PERIOD_MS, Sample
from receiver.rules import load_rules
from receiver.store.base import check_finite
from receiver.store.dynamodb import DynamoDBStore
from receiver.store.sqlite.db import SQLiteDB, _Pending
from receiver_tools.workload import Workload
from receiver_tools.write_units import WriteUnits

from .bodies import MIB, RECENT_MS, RECORD_BYTES, SampleSource, bench_tables

PRICE_PER_MILLION_WRU = 0.625
"""DynamoDB on-demand, us-east-1: US$ per million write request units."""
MINUTES_PER_MONTH = 730 * 60
WRITES_PER_DATAPOINT_TARGET = 0.05
DYNALITE = Path(__file__).resolve().parents[1] / "node_modules" / ".bin" / "dynalite"
DELIVERY_BYTES = MIB
"""Firehose's buffering size in the CDK stack (bufferingSizeMiB=1)."""


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
    """The SQLite store with the sample layout of schema 3: one upserted row per datapoint."""

    def connect(self) -> None:
        super().connect()
        self.conn.execute(_OLD_SAMPLES)

    def _upsert_slice(self, conn: Any, samples: Sequence[Sample], pending: _Pending) -> list[int]:
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
    warm = source.every_series()
    for db in stores.values():
        for path in folder.glob(f"{db.path.name}*"):
            path.unlink()
        db.connect()
        db.commit("warm-up", warm, (), 0, None)
    per_dp: dict[str, list[float]] = {name: [] for name in stores}
    commit_per_dp: dict[str, float] = {}
    work = [source.take(SLICE_SAMPLES) for _ in range(slices + 1)]
    for index, samples in enumerate(work):
        names = list(stores) if index % 2 else list(reversed(stores))
        for name in names:
            db = stores[name]
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


# -- DynamoDB: write request units on dynalite --------------------------------------------


def dynamodb_cost(tables: int, minutes: int) -> dict[str, Any]:
    """The DynamoDB store's writes per datapoint committing ``minutes`` of ``tables`` tables."""
    workload = Workload(seed=7, tables=bench_tables(tables), pipeline=False)
    first = RECENT_MS
    samples = [workload.minute(first + index * PERIOD_MS) for index in range(minutes)]
    per_point = sum(map(len, encode_records(samples[0], "opentelemetry0.7", max_record_bytes=RECORD_BYTES)))
    per_delivery = max(1, int(DELIVERY_BYTES / (per_point / len(samples[0]))))
    with _dynalite() as endpoint:
        return asyncio.run(_commit_minutes(samples, per_delivery, endpoint, tables))


async def _commit_minutes(minutes: list[list[Sample]], per_delivery: int, endpoint: str, tables: int) -> dict[str, Any]:
    store = DynamoDBStore("bench-layout", region="us-east-1", endpoint_url=endpoint, create=True)
    await store.open()
    try:
        meter = WriteUnits(store.client)
        commits = 0
        by_minute: list[float] = []
        for index, minute in enumerate(minutes):
            before = meter.total(meter.reported, without=("derived",))
            for offset in range(0, len(minute), per_delivery):
                await store.commit(f"bench-{index}-{offset}", minute[offset : offset + per_delivery])
                commits += 1
            by_minute.append(meter.total(meter.reported, without=("derived",)) - before)
        datapoints = sum(map(len, minutes))
        writes = meter.total(meter.reported, without=("derived",))
        # The derived values of the last minute, written once (the deriver writes them again
        # after each commit that touches the minute, and hours likewise).
        rules = load_rules(REPOSITORY_RULES)
        last = minutes[-1]
        bucket = last[0].start_ms - last[0].start_ms % MINUTE_MS
        version = (await store.versions(MINUTE_MS, [bucket]))[bucket]
        before_derived = meter.reported["derived"]
        values = rules.evaluate(last)
        await store.put_derived(MINUTE_MS, bucket, version, values)
        derived_units = meter.reported["derived"] - before_derived
    finally:
        await store.close()
    steady = by_minute[1:] or by_minute  # the first minute also writes the catalog
    per_minute = statistics.mean(steady)
    return {
        "tables": tables,
        "minutes": len(minutes),
        "datapoints": datapoints,
        "datapoints_per_delivery": per_delivery,
        "commits": commits,
        "reported": dict(meter.reported),
        "computed": dict(meter.computed),
        "items": dict(meter.items),
        "writes_per_datapoint": writes / datapoints,
        "sample_writes_per_datapoint": meter.reported["samples"] / datapoints,
        "computed_writes_per_datapoint": meter.total(meter.computed, without=("derived",)) / datapoints,
        "units_per_minute": per_minute,
        "dollars_per_table_month": per_minute / tables * MINUTES_PER_MONTH * PRICE_PER_MILLION_WRU / 1e6,
        "derived_values": len(values),
        "derived_units_per_rewrite": derived_units,
    }


class _dynalite:
    """A dynalite server on a free loopback port, in memory, for the ``with`` block."""

    def __enter__(self) -> str:
        if not DYNALITE.exists():
            raise RuntimeError(f"dynalite is not installed at {DYNALITE}; run make setup (npm ci)")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self._server = subprocess.Popen(
            [DYNALITE, "--host", "127.0.0.1", "--port", str(port), "--createTableMs", "10"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._saved = {name: os.environ.get(name) for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
        os.environ["AWS_ACCESS_KEY_ID"] = os.environ["AWS_SECRET_ACCESS_KEY"] = "dynalite"
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return f"http://127.0.0.1:{port}"
            except OSError:
                if self._server.poll() is not None or time.monotonic() > deadline:
                    self.__exit__()
                    raise RuntimeError(f"dynalite did not start on port {port}") from None
                time.sleep(0.05)

    def __exit__(self, *_: object) -> None:
        self._server.terminate()
        self._server.wait(10)
        for name, value in self._saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# -- the report -----------------------------------------------------------------------------


def report(sqlite: dict[str, Any], dynamodb: dict[str, Any], table: Any) -> list[str]:
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
    parts.append(
        f"\nSample layout, DynamoDB on dynalite ({dynamodb['tables']} tables, {dynamodb['minutes']} minutes, "
        f"{dynamodb['datapoints']:,} datapoints in {dynamodb['commits']} commits of ~"
        f"{dynamodb['datapoints_per_delivery']:,} (1 MiB of 0.7 records); write request units)"
    )
    kinds = sorted(set(dynamodb["reported"]) | set(dynamodb["computed"]))
    parts.append(
        table(
            ["items", "written", "WRU (dynalite)", "WRU (item sizes)", "per datapoint"],
            [
                [
                    kind,
                    f"{dynamodb['items'].get(kind, 0):,}",
                    f"{dynamodb['reported'].get(kind, 0):,.0f}",
                    f"{dynamodb['computed'].get(kind, 0):,.0f}",
                    f"{dynamodb['reported'].get(kind, 0) / dynamodb['datapoints']:.4f}",
                ]
                for kind in kinds
            ],
        )
    )
    parts.append(
        f"writes per datapoint (all but derived): {dynamodb['writes_per_datapoint']:.4f}; "
        f"{dynamodb['units_per_minute']:,.0f} WRU a minute, ${dynamodb['dollars_per_table_month']:.4f} "
        f"per table-month at ${PRICE_PER_MILLION_WRU} per million WRU; a rewrite of one minute's "
        f"{dynamodb['derived_values']:,} derived values: {dynamodb['derived_units_per_rewrite']:,.0f} WRU"
    )
    return parts


def target(dynamodb: dict[str, Any]) -> tuple[str, str, bool]:
    """(target, figure, met) for run.py's target table."""
    return (
        f"DynamoDB store <= {WRITES_PER_DATAPOINT_TARGET} writes per datapoint ({dynamodb['tables']} tables)",
        f"{dynamodb['writes_per_datapoint']:.4f} (${dynamodb['dollars_per_table_month']:.4f} per table-month)",
        dynamodb["writes_per_datapoint"] <= WRITES_PER_DATAPOINT_TARGET,
    )
