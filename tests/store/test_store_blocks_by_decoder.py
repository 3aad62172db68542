"""The blocks a store writes are the same bytes whichever decoder made the batch: the compiled
decoder's columns, or the careful walk's samples filed by the converter. Skipped where the
compiled decoder does not run."""

from __future__ import annotations

import sqlite3

import pytest

from receiver.batch import Batch
from receiver.formats import SeriesCache, encode_records, otel, otel07, otel10, walk
from receiver.formats.limits import latest_end_ms
from receiver.model import MINUTE_MS, Pairs
from receiver.store.dynamodb.blocks import DATA, Sequencer, block_items
from receiver.store.sqlite import SQLiteStore
from receiver_tools.workload import TableSpec, Workload
from tests.builders import T0

pytestmark = pytest.mark.skipif(otel.compiled_fill is None, reason=f"the compiled decoder does not run: {otel.DECODER}")

FLAVORS = {otel07.NAME: otel07.FLAVOR, otel10.NAME: otel10.FLAVOR}
LABELS: Pairs = (("metric_stream_name", "S"),)
NOW_MS = T0 + 10 * MINUTE_MS


def records(fmt: str) -> list[bytes]:
    """Two minutes of twelve tables (indexes, percentiles, both capacity modes), as records."""
    tables = [
        TableSpec(f"t{i}", indexes=("ByDate",)[: i % 2], provisioned=(5.0, 5.0) if i % 3 else None) for i in range(12)
    ]
    workload = Workload(seed=5, tables=tables)
    minutes = workload.minute(T0) + workload.minute(T0 + MINUTE_MS)
    return encode_records(minutes, fmt, max_record_bytes=32_000)


def batches(fmt: str) -> tuple[Batch, Batch]:
    """The records as a batch from the compiled decoder, and from the careful walk."""
    compiled, walked = Batch(), Batch()
    latest = latest_end_ms(NOW_MS)
    cache = SeriesCache()
    for data in records(fmt):
        assert otel.compiled_fill is not None
        assert otel.compiled_fill(compiled, data, LABELS, FLAVORS[fmt], latest, cache=cache)
        walked.add_samples(walk.walk(data, LABELS, FLAVORS[fmt], latest, SeriesCache()))
    assert len(compiled) > 100 and len(compiled.groups) > 10
    return compiled, walked


def stored_blocks(path) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT metric_id, start_ms, n, data FROM sample_blocks ORDER BY rowid").fetchall()


@pytest.mark.parametrize("fmt", FLAVORS)
async def test_sqlite_stores_the_same_blocks_from_either_decoder(tmp_path, fmt):
    found = []
    for name, batch in zip(("compiled", "walked"), batches(fmt)):
        store = SQLiteStore(tmp_path / f"{name}.db")
        await store.open()
        await store.write_samples(batch)
        await store.commit("r", Batch())
        await store.close()
        found.append(stored_blocks(tmp_path / f"{name}.db"))
    compiled, walked = found
    assert len(compiled) > 10
    assert compiled == walked


@pytest.mark.parametrize("fmt", FLAVORS)
def test_dynamodb_items_hold_the_same_blocks_from_either_decoder(fmt):
    found = []
    for batch in batches(fmt):
        items, partitions = block_items(batch, Sequencer(clock_ns=lambda: 0), retention_s=3600)
        found.append(([(item["pk"], item["sk"], item[DATA]) for item in items], partitions))
    assert len(found[0][0]) > 10
    # The sequencer's writer is drawn per Sequencer: the sort keys differ by it alone.
    (compiled, compiled_partitions), (walked, walked_partitions) = found
    assert compiled_partitions == walked_partitions
    assert [(pk, sk["S"][:-8], data) for pk, sk, data in compiled] == [
        (pk, sk["S"][:-8], data) for pk, sk, data in walked
    ]
