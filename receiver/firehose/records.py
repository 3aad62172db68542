"""A delivery's records into the store: decoded off the store's thread, written a slice at
a time, the records that do not decode quarantined, and one final commit before the ack.

Decoding runs on a thread pool of its own (``Decoding``), never on the event loop nor on
the store's writer: a delivery's decoding (seconds for 64 MiB) then never holds up another
delivery's commit, which only waits for the writer's short transactions. A large delivery
is written as it decodes, a slice of about ``SLICE_SAMPLES`` samples at a time, so only
one slice's samples are alive at once; the delivery's last slice, its quarantined records
and its request id go in one commit, after which everything it brought is durable. A slice
is a Batch (receiver/batch.py): its datapoints in columns, no Python object each.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from receiver.batch import Batch
from receiver.formats import DecodeError, SeriesCache, decode_into
from receiver.formats.limits import MAX_DATAPOINTS_PER_RECORD
from receiver.model import Pairs, QuarantinedRecord
from receiver.store import Store

SLICE_SAMPLES = 10_000
"""Samples decoded before they are written: what a delivery holds besides its records.
Enough that a 64 MiB delivery is a few dozen short writes (unsynced but the last). A slice
is closed after the record that fills it, so it holds at most this many samples plus one
record's (MAX_DATAPOINTS_PER_RECORD)."""

SAMPLE_BYTES = 1600
"""Memory of one decoded sample at most, measured: ~1,570 bytes in OpenTelemetry 0.7 and
~1,020 in json when every series is new (a receiver's first minute), far less once the
decoders have interned the series."""

SAMPLES_PER_RECORD_BYTE = 1 / 64
"""No format packs a datapoint into fewer than 64 bytes of record (0.7's are ~260)."""

DECODE_THREADS = 2
"""Deliveries decoded at once. Decoding holds the GIL, so more threads would only
interleave more deliveries; two keep one delivery's decoding from queueing another's."""


def decode_allowance(record_bytes: int) -> int:
    """The memory a delivery's decoding may take beyond its records: one slice of samples
    at most, fewer for a delivery too small to fill one. The in-flight budget counts it."""
    largest_slice = SLICE_SAMPLES + MAX_DATAPOINTS_PER_RECORD
    samples = min(largest_slice, int(record_bytes * SAMPLES_PER_RECORD_BYTE) + 1)
    return samples * SAMPLE_BYTES


class Decoding:
    """The thread pool records are decoded on; one per application."""

    def __init__(self, threads: int = DECODE_THREADS) -> None:
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="decode")

    async def run(self, job: Callable[[], SliceResult]) -> SliceResult:
        return await asyncio.get_running_loop().run_in_executor(self._pool, job)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


@dataclass(slots=True)
class SliceResult:
    batch: Batch = field(default_factory=Batch)
    datapoints: int = 0
    """How many datapoints ``batch`` holds."""
    quarantined: list[QuarantinedRecord] = field(default_factory=list)
    done: bool = False
    """No record is left to decode."""


@dataclass(slots=True)
class Stored:
    """What a delivery brought, once committed."""

    records: int = 0
    samples: int = 0
    starts: set[int] = field(default_factory=set)
    """The periods' starts of its samples, for the deriver."""
    quarantined: list[QuarantinedRecord] = field(default_factory=list)


class RecordSlicer:
    """Decodes a delivery's records in order, a slice of samples at a time.

    Each record is dropped from ``records`` once decoded, so a 64 MiB body's records and
    its samples are never all in memory at once. A record that does not decode becomes a
    QuarantinedRecord holding its bytes and the reason. ``cache`` is the application's
    SeriesCache, shared by every delivery.
    """

    def __init__(
        self,
        request_id: str,
        records: list[bytes],
        record_format: str | None,
        labels: Pairs,
        received_ms: int,
        slice_samples: int = SLICE_SAMPLES,
        *,
        cache: SeriesCache,
    ) -> None:
        self._request_id = request_id
        self._cache = cache
        self._records = records
        self._format = record_format
        self._labels = labels
        self._received_ms = received_ms
        self._slice_samples = slice_samples
        self._next = 0

    def next_slice(self) -> SliceResult:
        """Decode records until a slice is full or none is left (runs on a decode thread)."""
        result = SliceResult()
        records = self._records
        cache = self._cache
        batch = result.batch
        while self._next < len(records) and result.datapoints < self._slice_samples:
            index = self._next
            self._next += 1
            data, records[index] = records[index], b""
            try:
                decode_into(batch, data, self._format, self._labels, cache=cache)  # all or nothing
            except DecodeError as exc:
                result.quarantined.append(
                    QuarantinedRecord(
                        self._request_id, index, self._received_ms, exc.reason, str(exc), data, self._labels
                    )
                )
            else:
                result.datapoints = len(batch)
        result.done = self._next >= len(records)
        return result


async def store_records(
    store: Store,
    decoding: Decoding,
    request_id: str,
    records: list[bytes],
    record_format: str | None,
    labels: Pairs,
    *,
    cache: SeriesCache,
) -> Stored:
    """Decode ``records`` (``cache``: the application's SeriesCache) and store them under
    ``request_id``; StoreError if the store fails.

    Full slices are written as they come; the last one, every quarantined record and the
    request id are committed together. A failure part way leaves the slices written so far
    in the store, which is harmless: the delivery is answered 503, Firehose sends it again,
    and samples are upserted by identity.
    """
    stored = Stored(records=len(records))
    slicer = RecordSlicer(
        request_id, records, record_format, labels, int(time.time() * 1000), SLICE_SAMPLES, cache=cache
    )
    while True:
        result = await decoding.run(slicer.next_slice)
        stored.samples += result.datapoints
        stored.starts.update(result.batch.starts())
        stored.quarantined += result.quarantined
        if result.done:
            await store.commit(request_id, result.batch, stored.quarantined)
            return stored
        await store.write_samples(result.batch)


def decode_all(
    records: list[bytes], record_format: str | None, labels: Pairs, *, cache: SeriesCache
) -> tuple[Batch, list[QuarantinedRecord]]:
    """Every record's datapoints and the records that would be quarantined, as ingest
    decodes them, in one go (for the benchmarks and the fuzzer); ``records`` is left as it
    was."""
    slicer = RecordSlicer("", list(records), record_format, labels, 0, slice_samples=sys.maxsize, cache=cache)
    result = slicer.next_slice()
    return result.batch, result.quarantined
