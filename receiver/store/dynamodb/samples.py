"""Samples and request ids in the DynamoDB table: writing a request's samples, reading time ranges.

The key layout is in items.py, sample blocks in blocks.py. Writes go out as parallel
BatchWriteItem calls of 25 items; reads are one strongly consistent Query per (metric,
hour) partition.
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from receiver.batch import Batch
from receiver.model import HOUR_MS, Sample
from receiver.store.base import StoreError, WriteOrder, Written, start_buckets
from receiver.store.dynamodb.blocks import PartitionDecoder, Sequencer, block_items
from receiver.store.dynamodb.items import (
    CATALOG_PK,
    CATALOG_REFRESH_S,
    MAX_START_MS,
    Item,
    catalog_item,
    escape,
    hour_item,
    hour_of,
    hours_pk,
    request_item,
    request_key,
    sample_pk,
    start_range,
)
from receiver.store.dynamodb.runner import Runner
from receiver.store.dynamodb.table import BATCH_ITEMS, DynamoDBTable

Partition = tuple[str, str, int]
"""(namespace, metric, hour) of a sample partition."""

_DIRECT_HOURS = 3
"""Reads spanning at most this many hours query each hour; longer ones first ask which hours exist."""
_HOURS_CACHE_MAX = 100_000


@dataclass(slots=True)
class Plan:
    """A slice of samples, checked and encoded: its block items, the catalog items they need
    and the (step, bucket) versions to bump once they are written."""

    now: float
    buckets: list[tuple[int, int]] = field(default_factory=list)
    samples: list[Item] = field(default_factory=list)
    catalog: list[Item] = field(default_factory=list)
    metrics: list[tuple[str, str]] = field(default_factory=list)
    hours: list[tuple[str, str, int]] = field(default_factory=list)


class SampleRecords:
    """The sample and request-id items of one table."""

    def __init__(
        self,
        table: DynamoDBTable,
        runner: Runner,
        *,
        retention_s: int,
        request_ttl_s: float,
        clock: Callable[[], float],
    ) -> None:
        self._table = table
        self._runner = runner
        self._retention_s = retention_s
        self._ttl_s = request_ttl_s
        self._clock = clock
        # Catalog items this process has written: (namespace, metric) -> when, and
        # (namespace, metric, hour). Written before the samples they announce, so a
        # reader never misses a stored sample; cached so that is rare.
        self._metrics_written: dict[tuple[str, str], float] = {}
        self._hours_written: set[tuple[str, str, int]] = set()
        self._sequencer = Sequencer()

    # -- writes --------------------------------------------------------------------

    async def plan(self, samples: Batch, now: float) -> Plan:
        """Check and encode a slice on a worker thread (50,000 datapoints take a while)."""
        return await self._runner.work(self._plan, samples, now)

    async def write(self, plan: Plan, deadline: float) -> None:
        """Write a planned slice of samples; the catalog first, so a sample is stored only
        once readers can find it."""
        await self._write(plan.catalog, deadline)
        await self._write(plan.samples, deadline)
        # Only now: the catalog items are stored, so later slices need not write them again.
        for key in plan.metrics:
            self._metrics_written[key] = plan.now
        if len(self._hours_written) + len(plan.hours) > _HOURS_CACHE_MAX:
            self._hours_written.clear()  # rewriting an hour item is idempotent and cheap
        self._hours_written.update(plan.hours)

    async def remember(self, request_id: str, now: float, deadline: float) -> None:
        """Record the request id (last: only a fully written request counts as committed)."""
        item = request_item(request_id, int(now * 1000), math.ceil(now + self._ttl_s))
        await self._runner.control(self._table.put, item, deadline)

    def _plan(self, batch: Batch, now: float) -> Plan:
        for group in batch.groups:
            if not 0 <= group.start_ms < MAX_START_MS:
                namespace, metric = group.metric
                raise StoreError(
                    f"sample {namespace}/{metric} starts at {group.start_ms} ms, outside "
                    f"the DynamoDB store's range 0 to {MAX_START_MS} ms; the request was not stored"
                )
        try:
            items, hours = block_items(batch, self._sequencer, self._retention_s)
        except ValueError as exc:
            raise StoreError(f"{exc}; the request was not stored") from None
        retention_s = self._retention_s
        plan = Plan(now, start_buckets(batch.starts()), items)
        for namespace, metric in {(ns, m) for ns, m, _ in hours}:
            written = self._metrics_written.get((namespace, metric))
            if written is None or now - written >= CATALOG_REFRESH_S:
                # Outlives every sample written before the next refresh.
                expires_at = math.ceil(now + retention_s + 2 * CATALOG_REFRESH_S)
                plan.catalog.append(catalog_item(namespace, metric, expires_at))
                plan.metrics.append((namespace, metric))
        for key in hours - self._hours_written:
            namespace, metric, hour = key
            plan.catalog.append(hour_item(namespace, metric, hour, (hour + HOUR_MS) // 1000 + retention_s))
            plan.hours.append(key)
        return plan

    async def _write(self, items: list[Item], deadline: float) -> None:
        """Write ``items`` (distinct keys) in parallel batches; StoreError if any batch fails."""
        await self._runner.batches(
            lambda batch, abort: self._table.write_batch(batch, deadline, abort), items, BATCH_ITEMS
        )

    # -- reads ---------------------------------------------------------------------

    async def is_committed(self, request_id: str) -> bool:
        item = await self._runner.control(self._table.get, request_key(request_id), "committed_ms")
        if item is None:
            return False
        since_ms = int(self._clock() * 1000) - int(self._ttl_s * 1000)
        return int(item["committed_ms"]["N"]) > since_ms

    async def samples(
        self, start_ms: int, end_ms: int, namespace: str | None, metrics: Collection[str] | None
    ) -> list[Sample]:
        wanted = None if metrics is None else frozenset(metrics)
        if (wanted is not None and not wanted) or max(start_ms, 0) >= min(end_ms, MAX_START_MS):
            return []
        return await self._samples_of(await self._catalog(namespace, wanted), start_ms, end_ms)

    async def written_since(self, start_ms: int, end_ms: int, mark: object | None) -> Written:
        """The block items of ``[start_ms, end_ms)`` not among those ``mark`` lists, each
        as one write of order (seq, writer).

        A writer's seq comes from its clock before the block is written, and several
        replicas write at once, so a block may become readable after blocks of larger seq
        were read: no seq can say "everything before this was seen". The mark lists instead
        the sort keys found in each partition, and a call first lists the partition's sort
        keys (a Query of keys alone: a few bytes an item) and then reads only the range
        holding the ones not found before.
        """
        seen: dict[Partition, frozenset[str]] = {}
        if mark is not None:
            if not isinstance(mark, dict):
                raise TypeError(f"a mark of the DynamoDB store is a dict, not {type(mark).__name__}")
            seen = mark
        low, high = max(start_ms, 0), min(end_ms, MAX_START_MS)
        if low >= high:
            return Written([], dict(seen))
        partitions = await self._partitions(await self._catalog(None, None), low, high)
        now_s = int(self._clock())
        jobs = [
            functools.partial(self._written, partition, low, high, now_s, None if mark is None else seen.get(partition))
            for partition in partitions
        ]
        writes: list[tuple[WriteOrder, list[Sample]]] = []
        found = dict(seen)
        for partition, (partition_writes, keys) in zip(partitions, await self._runner.gather(jobs), strict=True):
            writes += partition_writes
            found[partition] = keys
        writes.sort(key=operator.itemgetter(0))
        return Written(writes, found)

    def _written(
        self, partition: Partition, low: int, high: int, now_s: int, seen: frozenset[str] | None
    ) -> tuple[list[tuple[WriteOrder, list[Sample]]], frozenset[str]]:
        """One partition's items in ``[low, high)`` whose sort keys are not in ``seen``
        (None: every item), decoded; and the sort keys found so far."""
        if seen is None:
            items = self._items(partition, low, high, now_s)
        else:
            lo, hi = start_range(low, high)
            keys = self._table.query(
                KeyConditionExpression="pk = :pk AND sk BETWEEN :lo AND :hi",
                FilterExpression="expires_at > :now",
                ExpressionAttributeValues={
                    ":pk": {"S": sample_pk(*partition)}, ":lo": {"S": lo}, ":hi": {"S": hi}, ":now": {"N": str(now_s)},
                },
                ProjectionExpression="sk",
            )  # fmt: skip
            new = sorted(key for item in keys if (key := item["sk"]["S"]) not in seen)
            if not new:
                return [], seen
            items = self._table.query(
                KeyConditionExpression="pk = :pk AND sk BETWEEN :lo AND :hi",
                FilterExpression="expires_at > :now",
                ExpressionAttributeValues={
                    ":pk": {"S": sample_pk(*partition)},
                    ":lo": {"S": new[0]},
                    ":hi": {"S": new[-1]},
                    ":now": {"N": str(now_s)},
                },
            )
            items = [item for item in items if item["sk"]["S"] not in seen]
        namespace, metric, _ = partition
        found = PartitionDecoder().writes(items, namespace, metric)
        return found, (seen or frozenset()).union(item["sk"]["S"] for item in items)

    async def metrics(self) -> list[tuple[str, str]]:
        """(namespace, metric) of every stored metric."""
        return await self._catalog(None, None)

    async def samples_of_metric(self, metric: tuple[str, str], start_ms: int, end_ms: int) -> list[Sample]:
        """``samples`` of one (namespace, metric) of ``metrics``."""
        return await self._samples_of([metric], start_ms, end_ms)

    async def _samples_of(self, catalog: list[tuple[str, str]], start_ms: int, end_ms: int) -> list[Sample]:
        low, high = max(start_ms, 0), min(end_ms, MAX_START_MS)
        if low >= high:
            return []
        partitions = await self._partitions(catalog, low, high)
        now_s = int(self._clock())
        jobs = [functools.partial(self._read, partition, low, high, now_s) for partition in partitions]
        found = [sample for batch in await self._runner.gather(jobs) for sample in batch]
        found.sort(key=_start)
        return found

    async def count(self) -> int:
        """Distinct identities, over the partitions the catalog names (Queries: no Scan).

        Every item is read: blocks hold many datapoints, and a datapoint written again
        counts once."""
        catalog = await self._catalog(None, None)
        partitions = await self._partitions(catalog, 0, MAX_START_MS)
        now_s = int(self._clock())
        return sum(await self._runner.gather([functools.partial(self._count, p, now_s) for p in partitions]))

    async def _catalog(self, namespace: str | None, wanted: frozenset[str] | None) -> list[tuple[str, str]]:
        """(namespace, metric) of every stored metric, narrowed as asked."""
        values: dict[str, Any] = {":pk": {"S": CATALOG_PK}}
        condition = "pk = :pk"
        if namespace is not None:
            condition += " AND begins_with(sk, :prefix)"
            values[":prefix"] = {"S": f"{escape(namespace)}#"}
        query = functools.partial(self._table.query, KeyConditionExpression=condition, ExpressionAttributeValues=values)
        found = [(item["namespace"]["S"], item["metric"]["S"]) for item in await self._runner.control(query)]
        return [(ns, metric) for ns, metric in found if wanted is None or metric in wanted]

    async def _partitions(self, catalog: list[tuple[str, str]], low: int, high: int) -> list[Partition]:
        """The sample partitions that may hold starts in ``[low, high)`` of the catalog's metrics."""
        first, last = hour_of(low), hour_of(high - 1)
        if (last - first) // HOUR_MS < _DIRECT_HOURS:
            hours = range(first, last + 1, HOUR_MS)
            return [(ns, metric, hour) for ns, metric in catalog for hour in hours]
        values = {":lo": {"S": f"{first:013d}"}, ":hi": {"S": f"{last:013d}"}}
        jobs = [
            functools.partial(
                self._table.query,
                KeyConditionExpression="pk = :pk AND sk BETWEEN :lo AND :hi",
                ExpressionAttributeValues={**values, ":pk": {"S": hours_pk(ns, metric)}},
                ProjectionExpression="sk",
            )
            for ns, metric in catalog
        ]
        found = await self._runner.gather(jobs)
        return [
            (ns, metric, int(item["sk"]["S"]))
            for (ns, metric), items in zip(catalog, found, strict=True)
            for item in items
        ]

    def _read(self, partition: Partition, low: int, high: int, now_s: int) -> list[Sample]:
        """One partition's samples in ``[low, high)``, decoded (on a worker thread)."""
        namespace, metric, _ = partition
        return PartitionDecoder().samples(self._items(partition, low, high, now_s), namespace, metric)

    def _count(self, partition: Partition, now_s: int) -> int:
        namespace, metric, _ = partition
        return PartitionDecoder().count(self._items(partition, 0, MAX_START_MS, now_s), namespace, metric)

    def _items(self, partition: Partition, low: int, high: int, now_s: int) -> list[Item]:
        """The unexpired items of one partition with starts in ``[low, high)``, in sort-key order."""
        lo, hi = start_range(low, high)
        return self._table.query(
            KeyConditionExpression="pk = :pk AND sk BETWEEN :lo AND :hi",
            # Expired but not yet deleted by TTL: every replica answers the same.
            FilterExpression="expires_at > :now",
            ExpressionAttributeValues={
                ":pk": {"S": sample_pk(*partition)}, ":lo": {"S": lo}, ":hi": {"S": hi}, ":now": {"N": str(now_s)},
            },
        )  # fmt: skip


_start = operator.attrgetter("start_ms")
