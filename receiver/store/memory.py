"""``memory://``: the store as dicts in this process, for tests and throwaway demos.

Same semantics as the SQLite store: upsert by identity, each write is all-or-nothing,
request ids are forgotten after the TTL. Data lives as long as the object (close/open keep it).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Collection, Sequence

from receiver.model import (
    HOUR_MS,
    MINUTE_MS,
    AlarmEvent,
    DerivedKey,
    DerivedValue,
    InventoryItem,
    QuarantinedRecord,
    Sample,
    derived_key,
    latest_per_key,
)
from receiver.store.base import (
    DEFAULT_HOUR_RETENTION_DAYS,
    DEFAULT_MINUTE_RETENTION_DAYS,
    DEFAULT_REQUEST_TTL_S,
    PRUNE_INTERVAL_S,
    Datapoints,
    Entity,
    StoreError,
    Totals,
    Written,
    batch_of,
    check_metric_names,
    entities_of,
    latest_of,
    quarantine_order,
    retention_cutoffs,
    totals_of,
    touched_buckets,
)

Identity = tuple[str, str, str, str, tuple[tuple[str, str], ...], int, int]


class MemoryStore:
    """Samples in dicts keyed by period start, then identity."""

    def __init__(
        self,
        *,
        request_ttl_s: float = DEFAULT_REQUEST_TTL_S,
        minute_retention_days: float = DEFAULT_MINUTE_RETENTION_DAYS,
        hour_retention_days: float = DEFAULT_HOUR_RETENTION_DAYS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._ttl_s = request_ttl_s
        self._retention_days = (minute_retention_days, hour_retention_days)
        self._clock = clock
        self._open = False
        # Bucketing by start keeps a time-range read proportional to the minutes it spans.
        self._by_start: dict[int, dict[Identity, Sample]] = {}
        self._written_at: dict[int, dict[Identity, int]] = {}
        """Start -> identity -> the number of the write that stored it (``written_since``)."""
        self._writes = 0
        # Insertion order is commit order (a re-commit moves to the end), so pruning stops
        # at the first id that is still fresh.
        self._requests: dict[str, float] = {}
        self._next_prune = float("-inf")
        # (step, bucket) -> version of its samples / version its derived values came from.
        self._versions: dict[tuple[int, int], int] = {}
        self._derived_versions: dict[tuple[int, int], int] = {}
        self._derived: dict[tuple[int, int], list[DerivedValue]] = {}
        self._alarm_events: dict[tuple[str, str, str, int], AlarmEvent] = {}
        self._quarantined: dict[tuple[str, int], QuarantinedRecord] = {}
        self._inventory: dict[tuple[str, str, str, str], InventoryItem] = {}
        self._leases: dict[str, tuple[str, int]] = {}
        """Lease name -> (holder, end in epoch milliseconds)."""

    def __repr__(self) -> str:
        return "MemoryStore()"

    async def open(self) -> None:
        self._open = True

    async def close(self) -> None:
        self._open = False

    async def ping(self) -> None:
        self._check_open()

    async def write_samples(self, samples: Datapoints) -> None:
        self._check_open()
        # Everything that can fail happens before the first write: all-or-nothing.
        samples = batch_of(samples).samples()
        by_start = self._by_start
        self._writes += 1
        write = self._writes
        for sample in samples:
            bucket = by_start.get(sample.start_ms)
            if bucket is None:
                bucket = by_start[sample.start_ms] = {}
                self._written_at[sample.start_ms] = {}
            identity = sample.identity
            bucket[identity] = sample
            self._written_at[sample.start_ms][identity] = write
        for key in touched_buckets(samples):
            self._versions[key] = self._versions.get(key, 0) + 1

    async def commit(self, request_id: str, samples: Datapoints, quarantined: Sequence[QuarantinedRecord] = ()) -> None:
        await self.write_samples(samples)
        for record in quarantined:
            self._quarantined[record.key] = record
        now = self._clock()
        self._requests.pop(request_id, None)
        self._requests[request_id] = now
        if now >= self._next_prune:
            self._prune(now - self._ttl_s)
            self._next_prune = now + PRUNE_INTERVAL_S

    async def quarantined(self, limit: int = 1000) -> list[QuarantinedRecord]:
        self._check_open()
        records = sorted(self._quarantined.values(), key=quarantine_order)
        return records[:limit]

    async def count_quarantined(self) -> int:
        self._check_open()
        return len(self._quarantined)

    async def delete_quarantined(self, keys: Collection[tuple[str, int]]) -> None:
        self._check_open()
        for key in keys:
            self._quarantined.pop(key, None)

    async def is_committed(self, request_id: str) -> bool:
        self._check_open()
        committed = self._requests.get(request_id)
        return committed is not None and self._clock() - committed < self._ttl_s

    async def samples(
        self,
        start_ms: int,
        end_ms: int,
        *,
        namespace: str | None = None,
        metrics: Collection[str] | None = None,
    ) -> list[Sample]:
        self._check_open()
        check_metric_names(metrics)
        wanted = None if metrics is None else frozenset(metrics)
        found: list[Sample] = []
        for start in sorted(s for s in self._by_start if start_ms <= s < end_ms):
            for sample in self._by_start[start].values():
                series = sample.series
                if namespace is not None and series.namespace != namespace:
                    continue
                if wanted is not None and series.metric not in wanted:
                    continue
                found.append(sample)
        return found

    async def written_since(self, start_ms: int, end_ms: int, mark: object | None = None) -> Written:
        """Each write's samples that no later write replaced: a write whose identities were
        all written again since is not found, which the later write makes up for."""
        self._check_open()
        after = mark if isinstance(mark, int) else 0
        writes: dict[int, list[Sample]] = {}
        for start in sorted(s for s in self._by_start if start_ms <= s < end_ms):
            written_at = self._written_at[start]
            for identity, sample in self._by_start[start].items():
                write = written_at[identity]
                if write > after:
                    writes.setdefault(write, []).append(sample)
        return Written([((write, ""), writes[write]) for write in sorted(writes)], self._writes)

    async def samples_by_series(self, start_ms: int, end_ms: int) -> AsyncIterator[list[Sample]]:
        by_metric: dict[tuple[str, str], list[Sample]] = {}
        for sample in await self.samples(start_ms, end_ms):
            by_metric.setdefault((sample.series.namespace, sample.series.metric), []).append(sample)
        for chunk in by_metric.values():
            yield chunk

    async def count_samples(self) -> int:
        self._check_open()
        return sum(len(bucket) for bucket in self._by_start.values())

    async def versions(self, step_ms: int, buckets: Collection[int]) -> dict[int, int]:
        self._check_open()
        return {bucket: self._versions.get((step_ms, bucket), 0) for bucket in buckets}

    async def stale_buckets(self, step_ms: int, since_ms: int) -> list[int]:
        self._check_open()
        return sorted(
            bucket
            for (step, bucket), version in self._versions.items()
            if step == step_ms and bucket >= since_ms and self._derived_versions.get((step, bucket), 0) < version
        )

    async def put_derived(self, step_ms: int, bucket_ms: int, version: int, values: Sequence[DerivedValue]) -> bool:
        self._check_open()
        key = (step_ms, bucket_ms)
        if self._derived_versions.get(key, 0) >= version:
            return False
        self._derived_versions[key] = version
        self._derived[key] = list(values)
        return True

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
        self._check_open()
        key = (step_ms, bucket_ms)
        if self._derived_versions.get(key) != base_version or version < base_version:
            return False
        values = {derived_key(value): value for value in self._derived.get(key, [])}
        for place in removals:
            values.pop(place, None)
        values.update((derived_key(value), value) for value in upserts)
        self._derived[key] = list(values.values())
        self._derived_versions[key] = version
        return True

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
        self._check_open()
        found = [
            value
            for (step, bucket), values in self._derived.items()
            if step == step_ms and start_ms <= bucket <= end_ms
            for value in values
            if value.metric == metric
            and (service is None or value.service == service)
            and (endpoint is None or value.endpoint == endpoint)
            and (value.merged if region is None else value.region == region)
        ]
        found.sort(key=lambda v: (v.time_ms, v.service, v.endpoint or ""))
        return found

    async def endpoint_totals(
        self, metric: str, step_ms: int, start_ms: int, end_ms: int, *, service: str, region: str | None = None
    ) -> dict[str, Totals]:
        return totals_of(await self.derived(metric, step_ms, start_ms, end_ms, service=service, region=region))

    async def endpoint_latest(
        self, metric: str, step_ms: int, start_ms: int, end_ms: int, *, service: str, region: str | None = None
    ) -> dict[str, float]:
        return latest_of(await self.derived(metric, step_ms, start_ms, end_ms, service=service, region=region))

    async def bucket_values(self, step_ms: int, bucket_ms: int) -> list[DerivedValue]:
        self._check_open()
        return list(self._derived.get((step_ms, bucket_ms), []))

    async def latest_bucket(self, step_ms: int, before_ms: int) -> int | None:
        self._check_open()
        buckets = [b for (s, b), v in self._derived.items() if s == step_ms and b < before_ms and v]
        return max(buckets, default=None)

    async def entities(self, since_ms: int) -> list[Entity]:
        self._check_open()
        return entities_of(
            (value.service, value.layer, value.endpoint, value.region)
            for (step, bucket), values in self._derived.items()
            if step == MINUTE_MS and bucket >= since_ms
            for value in values
        )

    async def prune(self, now_ms: int) -> None:
        self._check_open()
        cutoffs = retention_cutoffs(now_ms, *self._retention_days)
        for start in [s for s in self._by_start if s < cutoffs[MINUTE_MS]]:
            del self._by_start[start]
            del self._written_at[start]
        for table in (self._versions, self._derived_versions, self._derived):
            for key in [k for k in table if k[1] < cutoffs[k[0]]]:
                del table[key]
        # Quarantined records wait for a re-delivery as long as hourly values are kept.
        for record_key in [k for k, r in self._quarantined.items() if r.received_ms < cutoffs[HOUR_MS]]:
            del self._quarantined[record_key]
        # Alarm events go with the hour retention, as DynamoDB's expire by TTL.
        for event_key in [k for k, e in self._alarm_events.items() if e.minute_ms < cutoffs[HOUR_MS]]:
            del self._alarm_events[event_key]
        for item_key in [k for k, i in self._inventory.items() if i.updated_ms < cutoffs[HOUR_MS]]:
            del self._inventory[item_key]

    async def put_alarm_event(self, event: AlarmEvent) -> bool:
        self._check_open()
        key = (*event.key, event.seq)
        if key in self._alarm_events:
            return False
        self._alarm_events[key] = event
        return True

    async def alarm_events(self, since_ms: int) -> list[AlarmEvent]:
        self._check_open()
        found = [e for e in self._alarm_events.values() if e.minute_ms >= since_ms]
        found.sort(key=lambda e: (e.minute_ms, *e.key, e.seq))
        return found

    async def alarm_heads(self) -> list[AlarmEvent]:
        self._check_open()
        return latest_per_key(list(self._alarm_events.values()))

    async def put_inventory(self, items: Sequence[InventoryItem]) -> None:
        self._check_open()
        self._inventory.update((item.key, item) for item in items)

    async def inventory(self, kind: str | None = None) -> list[InventoryItem]:
        self._check_open()
        return [self._inventory[k] for k in sorted(self._inventory) if kind is None or k[0] == kind]

    async def take_lease(self, name: str, holder: str, now_ms: int, duration_ms: int) -> bool:
        self._check_open()
        current = self._leases.get(name)
        if current is not None and current[0] != holder and current[1] > now_ms:
            return False
        self._leases[name] = (holder, now_ms + duration_ms)
        return True

    async def release_lease(self, name: str, holder: str) -> None:
        self._check_open()
        current = self._leases.get(name)
        if current is not None and current[0] == holder:
            del self._leases[name]

    def _check_open(self) -> None:
        if not self._open:
            raise StoreError("the memory store is not open; call open() first")

    def _prune(self, cutoff: float) -> None:
        stale = []
        for request_id, committed in self._requests.items():
            if committed > cutoff:
                break
            stale.append(request_id)
        for request_id in stale:
            del self._requests[request_id]
