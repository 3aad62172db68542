"""The Store protocol's delivery in slices and its quarantined records, on every backend.

``write_samples`` takes a delivery's samples a slice at a time ahead of its ``commit``;
``commit`` keeps the records that did not decode, which are then listed oldest first,
counted and deleted by (request id, index). What only DynamoDB does with them (parts,
pointers, a commit that crashed half-way) is in test_store_dynamodb_quarantine.py.
"""

from __future__ import annotations

import math
import random

import pytest

from receiver.model import MINUTE_MS, QuarantinedRecord
from receiver.store import StoreError
from receiver.store.base import DEFAULT_HOUR_RETENTION_DAYS
from tests.builders import LABELS, T0, make_sample, make_series

ALL_TIME = (0, 2**62)
DAY_S = 86_400
FIREHOSE_MAX_RECORD = 1_024_000
"""Firehose's largest record (1,000 KiB), base64-decoded."""


def record(
    request_id: str = "req-1",
    index: int = 0,
    received_ms: int = T0,
    data: bytes = b'{"not": "a metric"',
    *,
    reason: str = "json",
    labels=LABELS,
) -> QuarantinedRecord:
    return QuarantinedRecord(
        request_id, index, received_ms, reason, f"record {index} is not what the stream format says", data, labels
    )


def incompressible(size: int, seed: int = 14) -> bytes:
    return random.Random(seed).randbytes(size)


# -- write_samples and commit --------------------------------------------------------------


async def test_slices_written_ahead_of_the_commit_are_stored_with_it(store):
    first = [make_sample(series=make_series(table=f"T{i}"), minute=0) for i in range(3)]
    second = [make_sample(series=make_series(table=f"T{i}"), minute=1) for i in range(3)]
    last = [make_sample(series=make_series(table="T9"), minute=2)]
    await store.write_samples(first)
    await store.write_samples(second)
    await store.commit("req-1", last)
    assert sorted(await store.samples(*ALL_TIME), key=repr) == sorted(first + second + last, key=repr)
    assert await store.is_committed("req-1")
    assert await store.count_samples() == 7


async def test_written_slices_bump_the_versions_of_their_minutes(store):
    before = await store.versions(MINUTE_MS, [T0, T0 + MINUTE_MS])
    await store.write_samples([make_sample(minute=0)])
    await store.write_samples([make_sample(minute=1)])
    await store.commit("req-1", [])
    after = await store.versions(MINUTE_MS, [T0, T0 + MINUTE_MS])
    assert all(after[bucket] > before[bucket] for bucket in before)
    assert set(await store.stale_buckets(MINUTE_MS, 0)) >= {T0, T0 + MINUTE_MS}


async def test_a_slice_rewritten_by_a_resent_delivery_is_stored_once(store):
    await store.write_samples([make_sample(value=1.0)])
    # The delivery failed before its commit; Firehose sends it again.
    await store.write_samples([make_sample(value=2.0)])
    await store.commit("req-1", [])
    assert await store.samples(*ALL_TIME) == [make_sample(value=2.0)]


async def test_a_slice_with_an_unstorable_value_stores_none_of_its_samples(store):
    with pytest.raises(StoreError):
        await store.write_samples([make_sample(minute=0), make_sample(minute=1, value=math.nan)])
    assert await store.samples(*ALL_TIME) == []


async def test_a_commit_with_an_unstorable_sample_keeps_no_record_and_no_request_id(store):
    with pytest.raises(StoreError):
        await store.commit("req-1", [make_sample(value=math.inf)], [record()])
    assert await store.quarantined() == []
    assert not await store.is_committed("req-1")


# -- keeping quarantined records -----------------------------------------------------------


async def test_quarantined_records_read_back_exactly(store):
    kept = [
        record(index=0),
        record(index=1, data=b"", labels=()),
        record(index=2, data=bytes(range(256)) * 4, reason="protobuf"),
    ]
    await store.commit("req-1", [make_sample()], kept)
    assert await store.quarantined() == kept
    assert await store.samples(*ALL_TIME) == [make_sample()]
    assert await store.is_committed("req-1")


async def test_a_record_of_firehoses_largest_size_reads_back_byte_for_byte(store):
    large = record(data=incompressible(FIREHOSE_MAX_RECORD))
    highly_compressible = record(index=1, data=b"\x00" * FIREHOSE_MAX_RECORD)
    await store.commit("req-1", [], [large, highly_compressible])
    found = await store.quarantined()
    assert [r.key for r in found] == [large.key, highly_compressible.key]
    assert found[0].data == large.data and found[1].data == highly_compressible.data
    assert found == [large, highly_compressible]


async def test_records_come_oldest_first_by_received_time_request_id_and_index(store):
    # "#" sorts before "$" (as SQLite and Python order text); escaped for a key, "#" is "%23",
    # which sorts after "$": a store must not let its key encoding decide.
    expected = [
        record("req-z", 0, T0),
        record("req-#", 2, T0 + 1),
        record("req-#", 10, T0 + 1),
        record("req-$", 0, T0 + 1),
        record("req-a", 1, T0 + 1),
        record("req-a", 0, T0 + 2),
    ]
    await store.commit("d1", [], [expected[3], expected[0], expected[5]])
    await store.commit("d2", [], [expected[2], expected[4], expected[1]])
    assert await store.quarantined() == expected


async def test_the_limit_takes_the_oldest_even_within_one_millisecond(store):
    records = [record("req-$", 0, T0), record("req-#", 0, T0), record("req-!", 0, T0 + 1)]
    await store.commit("d1", [], records)
    assert await store.quarantined(limit=1) == [record("req-#", 0, T0)]
    assert await store.quarantined(limit=2) == [record("req-#", 0, T0), record("req-$", 0, T0)]
    assert await store.quarantined(limit=3) == sorted(records, key=lambda r: (r.received_ms, r.request_id))
    assert await store.quarantined(limit=0) == []


async def test_count_and_delete_quarantined(store):
    records = [record("req-1", i, T0 + i) for i in range(4)]
    large = record("req-2", 0, T0 + 10, incompressible(FIREHOSE_MAX_RECORD))
    await store.commit("req-1", [], records)
    await store.commit("req-2", [], [large])
    assert await store.count_quarantined() == 5
    await store.delete_quarantined([("req-1", 1), ("req-2", 0), ("req-1", 99), ("unknown", 0)])
    assert await store.count_quarantined() == 3
    assert await store.quarantined() == [records[0], records[2], records[3]]
    await store.delete_quarantined([])
    await store.delete_quarantined({r.key for r in records})
    assert await store.count_quarantined() == 0
    assert await store.quarantined() == []


async def test_a_record_kept_again_under_its_request_id_and_index_replaces_the_first(store):
    first = record(received_ms=T0, data=incompressible(FIREHOSE_MAX_RECORD), reason="json")
    # The resend Firehose makes when the first commit failed after keeping the record.
    again = record(received_ms=T0 + 5_000, data=b"shorter", reason="protobuf")
    other = record(index=1, received_ms=T0 + 1)
    await store.commit("req-1", [], [first, other])
    await store.commit("req-1", [], [again])
    assert await store.quarantined() == [other, again]
    assert await store.count_quarantined() == 2


async def test_the_last_of_two_records_with_one_key_in_a_commit_is_kept(store):
    await store.commit("req-1", [], [record(data=b"first"), record(data=b"second")])
    assert await store.quarantined() == [record(data=b"second")]


async def test_quarantined_records_survive_close_and_open(store):
    kept = [record(index=0), record(index=1, data=incompressible(FIREHOSE_MAX_RECORD))]
    await store.commit("req-1", [], kept)
    await store.close()
    await store.open()
    assert await store.quarantined() == kept
    assert await store.count_quarantined() == 2


async def test_quarantined_records_are_kept_for_the_hour_retention(store, clock):
    now_ms = int(clock.now * 1000)
    await store.commit("req-1", [], [record(received_ms=now_ms)])
    clock.advance((DEFAULT_HOUR_RETENTION_DAYS - 1) * DAY_S)
    await store.prune(int(clock.now * 1000))
    assert await store.quarantined() == [record(received_ms=now_ms)]
    clock.advance(2 * DAY_S)
    await store.prune(int(clock.now * 1000))
    assert await store.quarantined() == []
    assert await store.count_quarantined() == 0


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.write_samples([make_sample()]),
        lambda s: s.commit("req-1", [], [record()]),
        lambda s: s.quarantined(),
        lambda s: s.count_quarantined(),
        lambda s: s.delete_quarantined([("req-1", 0)]),
    ],
    ids=["write_samples", "commit", "quarantined", "count_quarantined", "delete_quarantined"],
)
async def test_a_closed_store_raises_store_error(store, call):
    await store.close()
    with pytest.raises(StoreError):
        await call(store)
