"""Quarantined Firehose records in the DynamoDB table (what they are: receiver.model.QuarantinedRecord).

==============  ======  ================================================  ==========================
item            pk      sk                                                attributes
==============  ======  ================================================  ==========================
record part     ``QR``  ``<received>#<request>#<index>#<write>#<part>``   parts, data (binary)
record pointer  ``QK``  ``<request>#<index>``                             received_ms, write, parts,
                                                                          request_id, index, reason
==============  ======  ================================================  ==========================

- A record's data can be 1,024,000 bytes (Firehose's record limit) but an item holds at
  most 400 KB (409,600 bytes, attribute names included). So the record, its fields and
  its data together, is zlib-compressed and cut into parts of at most PART_BYTES, each an
  item of its own; reads join a record's parts in order and decompress.
- ``<received>`` is ``received_ms`` in 13 digits, so the ``QR`` partition lists records
  oldest first, a record's parts one after another. ``<request>`` is the request id
  escaped as in items.py (a long one is hashed: a sort key holds 1,024 bytes),
  ``<index>`` 10 digits, ``<write>`` 16 hex digits, ``<part>`` 3.
- ``<write>`` is random per write of a record, and the record's pointer names the write
  that counts. The pointer is written after every part of its write, so it is the
  record's commit point: parts without a pointer naming them (a commit that crashed
  part-way, whose request id was then not remembered and which Firehose sends again) are
  never read, and a record is never returned half. Each part also carries the part count.
- Writing a record again (that resend, or another replica's) writes new parts under a new
  ``<write>``, moves the pointer to them, then deletes the parts the old pointer named:
  one copy is listed whatever happened before. ``delete`` finds a record's parts through
  its pointer, deletes the pointer first (the record is gone for readers at once), then
  the parts. Parts a crash left behind are never read, and expire like the rest.
- Quarantined items expire with the hour retention, counted from ``received_ms``: the
  receiver keeps a record to be re-delivered as long as it keeps hourly values. DynamoDB's
  TTL deletes them (within days after, at no cost) and reads skip expired items at once.

Two partitions: quarantine is rare (a format change, a bad producer), so one partition
each is plenty; a flood of quarantined megabyte records is throttled at ~1 MB/s per
partition, answered 503 past the retry bound, and resent by Firehose.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
import threading
import zlib
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass

import orjson

from receiver.model import QuarantinedRecord
from receiver.store.base import StoreError, quarantine_order
from receiver.store.dynamodb.items import MAX_START_MS, Item, escape
from receiver.store.dynamodb.runner import Runner
from receiver.store.dynamodb.table import BATCH_GET_KEYS, BATCH_ITEMS, DynamoDBTable

PART_PK = "QR"
POINTER_PK = "QK"
PART_BYTES = 350_000
"""Compressed bytes per part item. The rest of its 409,600 bytes is room for the sort key
(under 600 bytes) and four short attributes."""
MAX_PARTS = 999
"""Parts have 3 digits: a record compressing to more than 349 MB cannot be kept."""
MAX_INDEX = 10**10
_MAX_PLAIN_REQUEST = 512
"""An escaped request id longer than this (UTF-8 bytes) is hashed in keys."""
_CHECK_BYTES = 8_000_000
"""Reads check records against their pointers in rounds of at most this much data (or
BATCH_GET_KEYS records), so a long listing never holds more than that unchecked."""
_COMPRESSION = 6


# -- keys ------------------------------------------------------------------------------


def request_part(request_id: str) -> str:
    """The request id as it stands in keys: escaped, or ``%H`` and its SHA-256 when long.

    ``%H`` cannot come out of ``escape``, which writes ``%`` only as ``%25`` or ``%23``.
    """
    escaped = escape(request_id)
    if len(escaped.encode()) <= _MAX_PLAIN_REQUEST:
        return escaped
    return f"%H{hashlib.sha256(request_id.encode()).hexdigest()}"


def record_id(request_id: str, index: int) -> str:
    return f"{request_part(request_id)}#{index:010d}"


def pointer_key(request_id: str, index: int) -> Item:
    return {"pk": {"S": POINTER_PK}, "sk": {"S": record_id(request_id, index)}}


def part_key(received_ms: int, record: str, write: str, part: int) -> Item:
    return {"pk": {"S": PART_PK}, "sk": {"S": f"{received_ms:013d}#{record}#{write}#{part:03d}"}}


def key_of(item: Item) -> Item:
    """Just the key of ``item`` (BatchGetItem and DeleteRequest refuse other attributes)."""
    return {"pk": item["pk"], "sk": item["sk"]}


def parts_of(pointer: Item) -> list[Item]:
    """The keys of every part the pointer names."""
    record, received_ms = pointer["sk"]["S"], int(pointer["received_ms"]["N"])
    write = pointer["write"]["S"]
    return [part_key(received_ms, record, write, part) for part in range(int(pointer["parts"]["N"]))]


# -- encoding --------------------------------------------------------------------------


def encode(record: QuarantinedRecord) -> bytes:
    """The whole record in one compressed blob: its fields as JSON, a newline, its data.

    JSON text never holds a raw newline, so the first one ends the fields.
    """
    fields = [record.request_id, record.index, record.received_ms, record.reason, record.detail, record.labels]
    return zlib.compress(orjson.dumps(fields) + b"\n" + record.data, _COMPRESSION)


def decode(blob: bytes) -> QuarantinedRecord:
    fields, _, data = zlib.decompress(blob).partition(b"\n")
    request_id, index, received_ms, reason, detail, labels = orjson.loads(fields)
    pairs = tuple((name, value) for name, value in labels)
    return QuarantinedRecord(request_id, index, received_ms, reason, detail, data, pairs)


@dataclass(slots=True)
class Encoded:
    """One record ready to write: its pointer and the parts it names."""

    pointer: Item
    parts: list[Item]


def encode_items(record: QuarantinedRecord, expires_at: int) -> Encoded:
    """The items of one record, under a new write id (raises StoreError for what keys cannot hold)."""
    if not 0 <= record.received_ms < MAX_START_MS:
        raise StoreError(
            f"quarantined record {record.index} of request {record.request_id!r} was received at "
            f"{record.received_ms} ms, outside the DynamoDB store's range 0 to {MAX_START_MS} ms; "
            "the request was not stored"
        )
    if not 0 <= record.index < MAX_INDEX:
        raise StoreError(
            f"quarantined record index {record.index} of request {record.request_id!r} is outside "
            f"0 to {MAX_INDEX}; the request was not stored"
        )
    blob = encode(record)
    chunks = [blob[i : i + PART_BYTES] for i in range(0, len(blob), PART_BYTES)]
    if len(chunks) > MAX_PARTS:
        raise StoreError(
            f"quarantined record {record.index} of request {record.request_id!r} compresses to "
            f"{len(blob)} bytes, more than the DynamoDB store keeps ({MAX_PARTS * PART_BYTES}); "
            "the request was not stored"
        )
    record_sk = record_id(record.request_id, record.index)
    write = secrets.token_hex(8)
    count = {"N": str(len(chunks))}
    expiry = {"N": str(expires_at)}
    parts = [
        {
            **part_key(record.received_ms, record_sk, write, n),
            "parts": count,
            "data": {"B": chunk},
            "expires_at": expiry,
        }
        for n, chunk in enumerate(chunks)
    ]
    pointer = {
        **pointer_key(record.request_id, record.index),
        "received_ms": {"N": str(record.received_ms)},
        "write": {"S": write},
        "parts": count,
        "request_id": {"S": record.request_id},
        "index": {"N": str(record.index)},
        "reason": {"S": record.reason},
        "expires_at": expiry,
    }
    return Encoded(pointer, parts)


@dataclass(slots=True)
class _Group:
    """Consecutive part items of one write of one record, as a Query lists them."""

    record: str
    received_ms: int
    write: str
    items: list[Item]
    size: int

    def is_named_by(self, pointer: Item | None) -> bool:
        """Whether ``pointer`` names exactly this write and every one of its parts is here."""
        if pointer is None or pointer["write"]["S"] != self.write:
            return False
        if int(pointer["received_ms"]["N"]) != self.received_ms:
            return False
        count = int(pointer["parts"]["N"])
        numbers = [int(item["sk"]["S"].rsplit("#", 1)[1]) for item in self.items]
        return numbers == list(range(count)) and all(int(item["parts"]["N"]) == count for item in self.items)

    def blob(self) -> bytes:
        return b"".join(item["data"]["B"] for item in self.items)


def _split_part_sk(sk: str) -> tuple[str, int, str]:
    """(record id, received_ms, write) of a part's sort key."""
    received, request, index, write, _part = sk.split("#")
    return f"{request}#{index}", int(received), write


# -- the records -----------------------------------------------------------------------


class QuarantinedRecords:
    """keep / list / count / delete quarantined records (see the module docstring)."""

    def __init__(self, table: DynamoDBTable, runner: Runner, *, retention_s: int, clock: Callable[[], float]) -> None:
        self._table = table
        self._runner = runner
        self._retention_s = retention_s
        self._clock = clock

    # -- writes ----------------------------------------------------------------------

    async def plan(self, records: Sequence[QuarantinedRecord]) -> list[Encoded]:
        """Check, compress and split ``records`` on a worker thread (megabytes each), before any write."""
        if not records:
            return []
        return await self._runner.work(self._plan, records)

    def _plan(self, records: Sequence[QuarantinedRecord]) -> list[Encoded]:
        latest = {record.key: record for record in records}  # one write per key: the last wins
        return [encode_items(r, r.received_ms // 1000 + self._retention_s) for r in latest.values()]

    async def write(self, planned: list[Encoded], deadline: float) -> None:
        """Parts, then pointers (each record's commit point), then the parts they replaced."""
        if not planned:
            return
        previous = await self._pointers([key_of(encoded.pointer) for encoded in planned])
        await self._put([part for encoded in planned for part in encoded.parts], deadline)
        await self._put([encoded.pointer for encoded in planned], deadline)
        await self._delete([key for pointer in previous for key in parts_of(pointer)], deadline)

    async def delete(self, keys: Collection[tuple[str, int]], deadline: float) -> None:
        pointers = await self._pointers([pointer_key(request_id, index) for request_id, index in set(keys)])
        # The pointers first: the records are gone for readers as soon as they are.
        await self._delete([key_of(pointer) for pointer in pointers], deadline)
        await self._delete([key for pointer in pointers for key in parts_of(pointer)], deadline)

    async def _pointers(self, keys: list[Item]) -> list[Item]:
        """The stored pointers at ``keys`` (distinct), in parallel BatchGetItem calls."""
        unique = list({key["sk"]["S"]: key for key in keys}.values())
        chunks = [unique[i : i + BATCH_GET_KEYS] for i in range(0, len(unique), BATCH_GET_KEYS)]
        found = await self._runner.gather([functools.partial(self._table.batch_get, chunk) for chunk in chunks])
        return [pointer for items in found for pointer in items]

    async def _put(self, items: list[Item], deadline: float) -> None:
        await self._runner.batches(self._writer(self._table.write_batch, deadline), items, BATCH_ITEMS)

    async def _delete(self, keys: list[Item], deadline: float) -> None:
        await self._runner.batches(self._writer(self._table.delete_batch, deadline), keys, BATCH_ITEMS)

    @staticmethod
    def _writer(
        call: Callable[[list[Item], float, threading.Event], None], deadline: float
    ) -> Callable[[list[Item], threading.Event], None]:
        return lambda batch, abort: call(batch, deadline, abort)

    # -- reads -----------------------------------------------------------------------

    async def oldest(self, limit: int) -> list[QuarantinedRecord]:
        if limit <= 0:
            return []
        return await self._runner.work(self._oldest, limit, int(self._clock()))

    async def count(self) -> int:
        """The pointers that have not expired: one per record kept whole."""
        now = {"N": str(int(self._clock()))}
        return await self._runner.control(
            functools.partial(
                self._table.count,
                KeyConditionExpression="pk = :pk",
                FilterExpression="expires_at > :now",
                ExpressionAttributeValues={":pk": {"S": POINTER_PK}, ":now": now},
            )
        )

    def _oldest(self, limit: int, now_s: int) -> list[QuarantinedRecord]:
        """The first ``limit`` records by (received_ms, request id, index), on a worker thread.

        Parts list by received_ms, but within one millisecond by the escaped request id,
        which orders differently: so this reads on to the end of the millisecond of the
        ``limit``-th record and sorts.
        """
        found: list[QuarantinedRecord] = []
        last_ms: int | None = None
        for record in self._kept(now_s):
            if last_ms is not None and record.received_ms > last_ms:
                break
            found.append(record)
            if len(found) == limit:
                last_ms = record.received_ms
        found.sort(key=quarantine_order)
        return found[:limit]

    def _kept(self, now_s: int) -> Iterator[QuarantinedRecord]:
        """Every record whose pointer names a complete write, oldest first (by received_ms)."""
        pending: list[_Group] = []
        size = 0
        for group in self._groups(now_s):
            pending.append(group)
            size += group.size
            if len(pending) == BATCH_GET_KEYS or size >= _CHECK_BYTES:
                yield from self._checked(pending)
                pending, size = [], 0
        yield from self._checked(pending)

    def _checked(self, groups: list[_Group]) -> Iterator[QuarantinedRecord]:
        if not groups:
            return
        keys = list({g.record: {"pk": {"S": POINTER_PK}, "sk": {"S": g.record}} for g in groups}.values())
        pointers = {item["sk"]["S"]: item for item in self._table.batch_get(keys)}
        for group in groups:
            if group.is_named_by(pointers.get(group.record)):
                yield decode(group.blob())

    def _groups(self, now_s: int) -> Iterator[_Group]:
        """The part items of the ``QR`` partition that have not expired, one group per write."""
        pages = self._table.pages(
            KeyConditionExpression="pk = :pk",
            FilterExpression="expires_at > :now",
            ExpressionAttributeValues={":pk": {"S": PART_PK}, ":now": {"N": str(now_s)}},
        )
        group: _Group | None = None
        for page in pages:
            for item in page.get("Items", []):
                record, received_ms, write = _split_part_sk(item["sk"]["S"])
                size = len(item["data"]["B"])
                if group is not None and (group.record, group.received_ms, group.write) == (record, received_ms, write):
                    group.items.append(item)
                    group.size += size
                    continue
                if group is not None:
                    yield group
                group = _Group(record, received_ms, write, [item], size)
        if group is not None:
            yield group
