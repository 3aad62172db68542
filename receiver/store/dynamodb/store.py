"""``dynamodb://TABLE?region=R``: one DynamoDB table shared by several receiver replicas.

Same semantics as the SQLite store where DynamoDB allows it: samples are kept in blocks
(blocks.py), and of several writes of one identity (account, region, namespace, metric,
dimensions, start, end) the last is the one read, so Firehose's duplicates and retries
change nothing; a committed request id is remembered for the request TTL. The other modules of the package do the work
(see its docstring); this one ties them together.

What a commit guarantees (DynamoDB cannot write 50,000 items in one transaction; a
transaction holds at most 100):

- Ingest hands a large delivery over a slice at a time (``write_samples``), then the last
  slice, its quarantined records and its request id in ``commit``. Each slice's samples
  are written, then the versions of the minutes and hours it touched are bumped; then
  ``commit`` keeps the quarantined records and writes the request id last. The request is
  acknowledged (``commit`` returns) only after all of that.
- A slice or commit with a value the store cannot keep (NaN, infinity, a start outside 0
  to 10**13 ms, a quarantined record it cannot key) writes nothing of itself: it is
  checked before its first write.
- A slice or commit that fails part-way (throttling or errors past the retry bound, a
  lost connection) raises StoreError, so the receiver answers 503 and Firehose retries;
  some of its blocks may already be stored. That is harmless: they hold genuine
  datapoints, readers may see them before the retry lands, and the retry (or the
  ``replay`` of Firehose's S3 backup) writes the same datapoints again in newer blocks. Its
  request id is not recorded, so the retry is not mistaken for a duplicate. A quarantined
  record is read only once all of its parts are written (quarantine.py), and the
  retry keeps it again in place of any earlier copy.
- DynamoDB acknowledges a write only once it is durable in several availability zones,
  and every read here is strongly consistent: once any replica has acked a request, every
  replica's ``samples()`` and ``is_committed()`` see it.
- Two concurrent commits holding the same identity with different values end with one of
  them: the block with the later sequence (the writers' clocks, blocks.py) wins.
- Samples expire ``minute_retention_days`` after their period start, quarantined records
  ``hour_retention_days`` after they were received, inventory items
  ``hour_retention_days`` after they were last updated: DynamoDB's TTL deletes them (within
  days after that, at no cost), and reads skip expired items at once, so every replica
  answers the same. ``prune`` has nothing to do.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from typing import Any

from receiver.model import (
    HOUR_MS,
    MINUTE_MS,
    AlarmEvent,
    DerivedKey,
    DerivedValue,
    InventoryItem,
    QuarantinedRecord,
    Sample,
)
from receiver.store.base import (
    DEFAULT_HOUR_RETENTION_DAYS,
    DEFAULT_MINUTE_RETENTION_DAYS,
    DEFAULT_REQUEST_TTL_S,
    Datapoints,
    Entity,
    StoreConfigError,
    Totals,
    Written,
    batch_of,
    check_metric_names,
)
from receiver.store.dynamodb.alarms import AlarmEvents
from receiver.store.dynamodb.derived import DerivedValues
from receiver.store.dynamodb.inventory import Inventory
from receiver.store.dynamodb.quarantine import QuarantinedRecords
from receiver.store.dynamodb.retry import RetryPolicy
from receiver.store.dynamodb.runner import CONTROL_THREADS, PROBE_THREADS, Runner
from receiver.store.dynamodb.samples import Plan, SampleRecords
from receiver.store.dynamodb.table import DynamoDBTable
from receiver.store.dynamodb.url import region_problem, table_name_problem

DEFAULT_WORKERS = 8
_DAY_S = 86_400


class DynamoDBStore:
    """The Store protocol over one DynamoDB table (see the module docstring for its guarantees)."""

    def __init__(
        self,
        table: str,
        *,
        region: str,
        endpoint_url: str | None = None,
        create: bool = False,
        request_ttl_s: float = DEFAULT_REQUEST_TTL_S,
        minute_retention_days: float = DEFAULT_MINUTE_RETENTION_DAYS,
        hour_retention_days: float = DEFAULT_HOUR_RETENTION_DAYS,
        retry: RetryPolicy | None = None,
        max_workers: int = DEFAULT_WORKERS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        problem = table_name_problem(table) or region_problem(region)
        if problem:
            raise StoreConfigError(f"the DynamoDB store cannot use table {table!r} in region {region!r}: {problem}")
        retention = {"minute_retention_days": minute_retention_days, "hour_retention_days": hour_retention_days}
        for name, days in retention.items():
            if not (days > 0 and math.isfinite(days)):
                raise StoreConfigError(f"{name}={days!r} must be a positive number of days")
        if max_workers < 1:
            raise StoreConfigError(f"max_workers={max_workers!r} must be at least 1")
        self._retry = retry or RetryPolicy()
        self._table = DynamoDBTable(
            table, region, endpoint_url, self._retry, max_workers + CONTROL_THREADS + PROBE_THREADS
        )
        self._create = create
        self._clock = clock
        self._runner = Runner(self._table.where, max_workers)
        minute_s = int(minute_retention_days * _DAY_S)
        self._samples = SampleRecords(
            self._table, self._runner, retention_s=minute_s, request_ttl_s=request_ttl_s, clock=clock
        )
        self._derived = DerivedValues(
            self._table,
            self._runner,
            retention_s={MINUTE_MS: minute_s, HOUR_MS: int(hour_retention_days * _DAY_S)},
            clock=clock,
        )
        hour_s = int(hour_retention_days * _DAY_S)
        self._alarms = AlarmEvents(self._table, self._runner, retention_s=hour_s, clock=clock)
        self._quarantine = QuarantinedRecords(self._table, self._runner, retention_s=hour_s, clock=clock)
        self._inventory = Inventory(self._table, self._runner, retention_s=hour_s, clock=clock)

    def __repr__(self) -> str:
        return f"DynamoDBStore({self._table.name!r}, region={self._table.region!r})"

    @property
    def table_name(self) -> str:
        return self._table.name

    @property
    def client(self) -> Any:
        """The boto3 DynamoDB client while open (for diagnostics and tests)."""
        return self._table.client

    # -- lifecycle -------------------------------------------------------------------

    async def open(self) -> None:
        if not self._runner.is_open:
            await self._runner.start(lambda: self._table.connect(self._create))

    async def close(self) -> None:
        if await self._runner.stop():
            self._table.close()

    async def ping(self) -> None:
        """One GetItem on the probe thread and client: never queued behind a commit's or a
        read's calls. Throttled is up (busy); failing or unreachable is down."""
        async with self._runner.operation():
            await self._runner.probe(self._table.ping)

    # -- samples ---------------------------------------------------------------------

    async def write_samples(self, samples: Datapoints) -> None:
        batch = batch_of(samples)
        async with self._runner.operation():
            await self._write_samples(await self._samples.plan(batch, self._clock()), self._deadline())

    async def commit(self, request_id: str, samples: Datapoints, quarantined: Sequence[QuarantinedRecord] = ()) -> None:
        batch = batch_of(samples)  # Samples are checked to be finite first: a request with NaN stores nothing
        async with self._runner.operation():
            deadline = self._deadline()
            # Both checked and encoded before the first write: a commit that cannot be kept writes nothing.
            plan = await self._samples.plan(batch, self._clock())
            records = await self._quarantine.plan(quarantined)
            await self._write_samples(plan, deadline)
            await self._quarantine.write(records, deadline)
            await self._samples.remember(request_id, self._clock(), deadline)

    async def _write_samples(self, plan: Plan, deadline: float) -> None:
        await self._samples.write(plan, deadline)
        # After the samples: a deriver that reads a version sees every sample counted in it.
        # Minutes before hours: an hour pass reads its hour's version, then its minutes'
        # versions to know which minutes changed, and must find every commit of the first
        # among the second (receiver/derive/deriver.py, ``_derive_hour``).
        await self._derived.bump([bucket for bucket in plan.buckets if bucket[0] == MINUTE_MS], deadline)
        await self._derived.bump([bucket for bucket in plan.buckets if bucket[0] != MINUTE_MS], deadline)

    def _deadline(self) -> float:
        """One retry bound for the whole operation (see retry.py)."""
        return time.monotonic() + self._retry.timeout_s

    async def is_committed(self, request_id: str) -> bool:
        async with self._runner.operation():
            return await self._samples.is_committed(request_id)

    async def samples(
        self,
        start_ms: int,
        end_ms: int,
        *,
        namespace: str | None = None,
        metrics: Collection[str] | None = None,
    ) -> list[Sample]:
        check_metric_names(metrics)
        async with self._runner.operation():
            return await self._samples.samples(start_ms, end_ms, namespace, metrics)

    async def written_since(self, start_ms: int, end_ms: int, mark: object | None = None) -> Written:
        async with self._runner.operation():
            return await self._samples.written_since(start_ms, end_ms, mark)

    async def samples_by_series(self, start_ms: int, end_ms: int) -> AsyncIterator[list[Sample]]:
        """One metric at a time: a Query per (metric, hour) partition, as samples() reads."""
        async with self._runner.operation():
            metrics = await self._samples.metrics()
        for metric in metrics:
            async with self._runner.operation():
                chunk = await self._samples.samples_of_metric(metric, start_ms, end_ms)
            if chunk:
                yield chunk

    async def count_samples(self) -> int:
        async with self._runner.operation():
            return await self._samples.count()

    # -- quarantined records ---------------------------------------------------------

    async def quarantined(self, limit: int = 1000) -> list[QuarantinedRecord]:
        async with self._runner.operation():
            return await self._quarantine.oldest(limit)

    async def count_quarantined(self) -> int:
        async with self._runner.operation():
            return await self._quarantine.count()

    async def delete_quarantined(self, keys: Collection[tuple[str, int]]) -> None:
        async with self._runner.operation():
            await self._quarantine.delete(keys, self._deadline())

    # -- derived values --------------------------------------------------------------

    async def versions(self, step_ms: int, buckets: Collection[int]) -> dict[int, int]:
        async with self._runner.operation():
            return await self._derived.versions(step_ms, buckets)

    async def stale_buckets(self, step_ms: int, since_ms: int) -> list[int]:
        async with self._runner.operation():
            return await self._derived.stale_buckets(step_ms, since_ms)

    async def put_derived(self, step_ms: int, bucket_ms: int, version: int, values: Sequence[DerivedValue]) -> bool:
        async with self._runner.operation():
            return await self._derived.put(step_ms, bucket_ms, version, values)

    async def put_derived_changes(
        self,
        step_ms: int,
        bucket_ms: int,
        base_version: int,
        version: int,
        upserts: Sequence[DerivedValue],
        removals: Collection[DerivedKey],
        total: int,
    ) -> bool:
        async with self._runner.operation():
            return await self._derived.put_changes(step_ms, bucket_ms, base_version, version, upserts, removals, total)

    async def derived(
        self,
        metric: str,
        step_ms: int,
        start_ms: int,
        end_ms: int,
        *,
        service: str | None = None,
        endpoint: str | None = None,
        region: str | None = None,
    ) -> list[DerivedValue]:
        async with self._runner.operation():
            return await self._derived.derived(metric, step_ms, start_ms, end_ms, service, endpoint, region)

    async def endpoint_totals(
        self, metric: str, step_ms: int, start_ms: int, end_ms: int, *, service: str, region: str | None = None
    ) -> dict[str, Totals]:
        async with self._runner.operation():
            totals, _ = await self._derived.endpoint_reductions(metric, step_ms, start_ms, end_ms, service, region)
            return totals

    async def endpoint_latest(
        self, metric: str, step_ms: int, start_ms: int, end_ms: int, *, service: str, region: str | None = None
    ) -> dict[str, float]:
        async with self._runner.operation():
            _, latest = await self._derived.endpoint_reductions(metric, step_ms, start_ms, end_ms, service, region)
            return latest

    async def bucket_values(self, step_ms: int, bucket_ms: int) -> list[DerivedValue]:
        async with self._runner.operation():
            return await self._derived.bucket_values(step_ms, bucket_ms)

    async def latest_bucket(self, step_ms: int, before_ms: int) -> int | None:
        async with self._runner.operation():
            return await self._derived.latest_bucket(step_ms, before_ms)

    async def entities(self, since_ms: int) -> list[Entity]:
        async with self._runner.operation():
            return await self._derived.entities(since_ms)

    async def prune(self, now_ms: int) -> None:
        """Nothing to do: items expire by DynamoDB's TTL, and reads skip expired ones already."""
        async with self._runner.operation():
            return None

    # -- alarm events ----------------------------------------------------------------

    async def put_alarm_event(self, event: AlarmEvent) -> bool:
        async with self._runner.operation():
            return await self._alarms.put(event)

    async def alarm_events(self, since_ms: int) -> list[AlarmEvent]:
        async with self._runner.operation():
            return await self._alarms.since(since_ms)

    async def alarm_heads(self) -> list[AlarmEvent]:
        async with self._runner.operation():
            return await self._alarms.heads()

    # -- the table inventory and leases ----------------------------------------------

    async def put_inventory(self, items: Sequence[InventoryItem]) -> None:
        async with self._runner.operation():
            await self._inventory.put(items, self._deadline())

    async def inventory(self, kind: str | None = None) -> list[InventoryItem]:
        async with self._runner.operation():
            return await self._inventory.items(kind)

    async def take_lease(self, name: str, holder: str, now_ms: int, duration_ms: int) -> bool:
        async with self._runner.operation():
            return await self._inventory.take_lease(name, holder, now_ms, duration_ms)

    async def release_lease(self, name: str, holder: str) -> None:
        async with self._runner.operation():
            await self._inventory.release_lease(name, holder)
