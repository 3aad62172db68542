"""The storage interface every backend implements, and its two errors.

The HTTP handler commits one Firehose request at a time and acks only after ``commit``
returned; the rules engine reads back what a time range holds. Backends speak only in
``Sample``s and their identity (no row ids, no SQL), so a key-value backend such as DynamoDB
can implement the same interface with the identity as its key.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Collection, Iterable, Sequence
from typing import NamedTuple, Protocol, runtime_checkable

from receiver.batch import Batch
from receiver.model import (
    DAY_MS,
    HOUR_MS,
    MINUTE_MS,
    AlarmEvent,
    DerivedKey,
    DerivedValue,
    InventoryItem,
    QuarantinedRecord,
    Sample,
)

DEFAULT_REQUEST_TTL_S = 24 * 3600.0
"""How long a committed request id is remembered (Firehose retries for at most a few hours)."""

STEPS_MS = (MINUTE_MS, HOUR_MS)
"""The time buckets derived values are kept in: minutes, and their hourly rollups."""

DEFAULT_MINUTE_RETENTION_DAYS = 7.0
DEFAULT_HOUR_RETENTION_DAYS = 90.0

PRUNE_INTERVAL_S = 60.0
"""Forgotten request ids are deleted at most once per this interval, by the next commit."""


Datapoints = Batch | Sequence[Sample]
"""What ``write_samples`` and ``commit`` take: ingest's Batch (receiver/batch.py), or
Samples (tests, tools), which the store checks and files into a Batch (``batch_of``)."""

Entity = tuple[str, str, str | None, tuple[str, ...]]
"""(service, layer, endpoint or None, the regions its values come from, sorted): what
``Store.entities`` lists. The regions are empty for account values and for values stored
before values had regions."""


class Totals(NamedTuple):
    """One endpoint's values of one metric over a range, added up (``Store.endpoint_totals``)."""

    points: int
    """How many values (buckets with a value) the range holds."""
    total: float
    """Their sum, added one after the other in time order from 0.0, as ``totals_of`` adds."""


WriteOrder = tuple[int, str]
"""Where one write of samples falls among all others (``Store.written_since``): of two
writes holding one identity, the one with the larger order is what ``samples`` reads."""


class Written(NamedTuple):
    """What ``Store.written_since`` found."""

    writes: list[tuple[WriteOrder, list[Sample]]]
    """Each write found, with its order and its samples (an identity at most once in each)."""
    mark: object
    """What to pass to the next call to find only the writes after these."""


class StoreError(Exception):
    """The store failed (disk full, locked, I/O error, closed): answer 503 so Firehose retries."""


class StoreConfigError(ValueError):
    """A bad store URL or an unusable path; ``str(e)`` is one sentence naming the problem and the fix."""


@runtime_checkable
class Store(Protocol):
    """Samples upserted by identity, committed one Firehose request at a time."""

    async def open(self) -> None:
        """Create the schema if needed and check the store is usable.

        Raises StoreConfigError when the configuration cannot work (bad path, not a store
        file), StoreError when the store fails for a reason that may pass (locked, I/O).
        """

    async def close(self) -> None:
        """Finish queued work and release the store; later calls raise StoreError."""

    async def ping(self) -> None:
        """A cheap check that the store answers and can keep what it acks (for /readyz and
        /metrics' store_up); raises StoreError if not. It never waits behind commits or
        long reads: a busy store is up."""

    async def write_samples(self, samples: Datapoints) -> None:
        """Upsert ``samples`` (a Batch, or Samples) by identity ahead of their delivery's ``commit``.

        Ingest writes a large delivery a slice at a time as it decodes, so neither its
        samples nor its decoding ever hold the store for the whole delivery. Each call
        stands alone (on failure it raises StoreError and stores none of its samples);
        a delivery that fails after some of its slices were written is answered 503 and
        sent again, and the repeat overwrites them. Nothing here needs to be durable
        before the delivery's ``commit`` returns: that commit makes it so.
        """

    async def commit(self, request_id: str, samples: Datapoints, quarantined: Sequence[QuarantinedRecord] = ()) -> None:
        """Upsert the last ``samples`` (a Batch, or Samples) of a delivery, keep its ``quarantined`` records and
        remember ``request_id``, in one transaction where the store has them.

        When it returns, everything the delivery brought is durable, the samples of its
        earlier ``write_samples`` included: the receiver acks it next. A sample whose
        identity is already stored replaces it (last write wins); a quarantined record
        whose (request id, index) is kept replaces it. On failure this raises StoreError
        and the request id is not remembered.
        """

    async def quarantined(self, limit: int = 1000) -> list[QuarantinedRecord]:
        """The quarantined records, oldest first (by received time, request id, index),
        at most ``limit`` of them."""

    async def count_quarantined(self) -> int:
        """How many records are quarantined."""

    async def delete_quarantined(self, keys: Collection[tuple[str, int]]) -> None:
        """Forget the quarantined records with these (request id, index) keys (after a
        successful re-delivery); unknown keys are ignored."""

    async def is_committed(self, request_id: str) -> bool:
        """Whether ``request_id`` was committed within the request TTL."""

    async def samples(
        self,
        start_ms: int,
        end_ms: int,
        *,
        namespace: str | None = None,
        metrics: Collection[str] | None = None,
    ) -> list[Sample]:
        """The stored samples whose ``start_ms`` lies in ``[start_ms, end_ms)``, by ascending start.

        ``namespace`` and ``metrics`` narrow the result to that namespace and those metric
        names; ``None`` means no narrowing, an empty ``metrics`` selects nothing. Samples
        with equal starts come in no particular order.
        """

    async def written_since(self, start_ms: int, end_ms: int, mark: object | None = None) -> Written:
        """The writes of samples starting in ``[start_ms, end_ms)`` made since ``mark``.

        ``mark`` is None (every write still stored) or the mark an earlier call for the same
        range answered. Applying the writes of successive calls one after the other, where a
        write of an identity replaces an earlier one only when its order is larger, gives
        exactly what ``samples(start_ms, end_ms)`` answers at the time of the last call: each
        write is found once, by the first call that could see it, but on a store several
        machines write to, a write may be found after writes ordered later than itself.
        A store may answer a write in parts, each with the write's order.
        """

    def samples_by_series(self, start_ms: int, end_ms: int) -> AsyncIterator[list[Sample]]:
        """The samples of ``samples(start_ms, end_ms)`` in chunks, each holding every sample
        of the series it has (no chunk is empty). The deriver reads an hour this way, so a
        store that reads a chunk at a time never holds the hour of every series at once:
        SQLite reads up to 2,000 series of one metric, DynamoDB one metric."""

    async def count_samples(self) -> int:
        """How many samples are stored: distinct identities, however often each was written."""

    # -- derived values ----------------------------------------------------------
    # Every commit adds one to the *version* of the minute and of the hour of each sample it
    # stores, after the samples are written. Derived values are computed from the samples
    # of one bucket as of a version, and stored with it; values from an older version never
    # replace values from a newer one. So however computations of several replicas
    # interleave, the values that stay are those of the newest samples.

    async def versions(self, step_ms: int, buckets: Collection[int]) -> dict[int, int]:
        """The current version of each bucket (``step_ms`` is MINUTE_MS or HOUR_MS); 0 for none."""

    async def stale_buckets(self, step_ms: int, since_ms: int) -> list[int]:
        """Buckets starting at or after ``since_ms`` whose derived values are missing or older
        than their samples' version, ascending."""

    async def put_derived(self, step_ms: int, bucket_ms: int, version: int, values: Sequence[DerivedValue]) -> bool:
        """Replace the derived values of one bucket by ``values``, computed at ``version``.

        Values of this bucket that are not in ``values`` are removed (an entity that no
        longer has data). Returns False, changing nothing, when values computed at a
        version at least as new are already stored.
        """

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
        """Turn the values of one bucket computed at ``base_version`` into those computed at
        ``version`` (at least as new): store ``upserts`` in their places (``derived_key``)
        and remove the values at ``removals``; ``total`` is how many values the bucket then has.

        Only while the stored values are still those put at ``base_version``: if another
        computation stored values since, nothing changes and this returns False (the caller
        then puts the whole bucket). A deriver that keeps a bucket in step this way writes
        what changed instead of every value of the bucket.
        """

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
        """Values of ``metric`` with ``start_ms <= time_ms <= end_ms``, ascending by time.

        ``service`` and ``endpoint`` narrow to one entity; without ``endpoint`` a service
        scope metric gives the service's values and an endpoint scope metric all its
        endpoints'. Without ``region`` the merged values (over every region); with it, the
        values of that region only (receiver/derive/regions.py).
        """

    # The two reductions of the dashboard's summary: each is exactly what totals_of or
    # latest_of make of what ``derived`` answers for the same arguments (every endpoint of
    # ``service`` with values of the endpoint metric ``metric`` in ``start_ms <= time_ms <=
    # end_ms``; ``region`` as there), without handing over every value.

    async def endpoint_totals(
        self, metric: str, step_ms: int, start_ms: int, end_ms: int, *, service: str, region: str | None = None
    ) -> dict[str, Totals]:
        """Each endpoint's count and total of its values in the range (``totals_of``)."""

    async def endpoint_latest(
        self, metric: str, step_ms: int, start_ms: int, end_ms: int, *, service: str, region: str | None = None
    ) -> dict[str, float]:
        """Each endpoint's value of the latest bucket in the range that has one (``latest_of``)."""

    async def bucket_values(self, step_ms: int, bucket_ms: int) -> list[DerivedValue]:
        """Every derived value of one bucket."""

    async def latest_bucket(self, step_ms: int, before_ms: int) -> int | None:
        """The newest bucket starting before ``before_ms`` that has derived values."""

    async def entities(self, since_ms: int) -> list[Entity]:
        """Every entity with a minute value since ``since_ms``, with its regions, sorted.

        SQLite and DynamoDB answer from a list of entities that ``put_derived`` keeps (each
        with the latest bucket it had a value in), not from the values: an entity whose
        values were later recomputed away stays listed until that bucket is older than
        ``since_ms``."""

    async def prune(self, now_ms: int) -> None:
        """Drop minute samples and values past the minute retention, hour values past the
        hour retention. Stores whose items expire by themselves (DynamoDB TTL) do nothing."""

    # -- alarm events (receiver/model.py) ---------------------------------------------------
    # One event per notification, numbered per (rule, service, endpoint). Writing the next
    # number is insert-if-absent, so of several replicas deciding the same notification
    # from the same history exactly one wins and sends it.

    async def put_alarm_event(self, event: AlarmEvent) -> bool:
        """Store ``event`` unless an event with its (rule, service, endpoint, seq) exists.

        True when this call stored it (the caller then notifies), False when one was there.
        """

    async def alarm_events(self, since_ms: int) -> list[AlarmEvent]:
        """Events whose ``minute_ms >= since_ms``, ascending by (minute_ms, rule, service,
        endpoint, seq)."""

    async def alarm_heads(self) -> list[AlarmEvent]:
        """The latest event (highest seq) of every (rule, service, endpoint), sorted by it."""

    # -- the table inventory (receiver/model.py) -------------------------------------------
    # Items upserted by (kind, account, region, name); the poller marks a table that
    # disappeared in its body and never deletes it, and ``prune`` drops items not updated
    # within the hour retention.

    async def put_inventory(self, items: Sequence[InventoryItem]) -> None:
        """Upsert ``items`` by key (each write stands alone; a failure raises StoreError)."""

    async def inventory(self, kind: str | None = None) -> list[InventoryItem]:
        """Every item, or those of ``kind``, sorted by key."""

    # -- leases ------------------------------------------------------------------------------
    # Work that one replica does for all (polling the inventory) goes to whoever holds its
    # lease. Taking one is a conditional write, so of two replicas racing one wins.

    async def take_lease(self, name: str, holder: str, now_ms: int, duration_ms: int) -> bool:
        """Hold lease ``name`` until ``now_ms + duration_ms`` if it is free, expired (its end
        is at or before ``now_ms``) or ``holder``'s already; True when ``holder`` holds it."""

    async def release_lease(self, name: str, holder: str) -> None:
        """End ``holder``'s lease ``name`` now (nothing when another holds it)."""


def entities_of(rows: Iterable[tuple[str, str, str | None, str]]) -> list[Entity]:
    """(service, layer, endpoint, region) of stored values -> the sorted Entities; an empty
    endpoint is None, and the region '' (a value over several regions) names no region."""
    regions: dict[tuple[str, str, str | None], set[str]] = {}
    for service, layer, endpoint, region in rows:
        found = regions.setdefault((service, layer, endpoint or None), set())
        if region:
            found.add(region)
    return sorted(
        ((service, layer, endpoint, tuple(sorted(found))) for (service, layer, endpoint), found in regions.items()),
        key=lambda e: (e[0], e[1], e[2] or ""),
    )


def totals_of(values: Iterable[DerivedValue]) -> dict[str, Totals]:
    """Each endpoint's ``values`` (ascending by time, at most one per endpoint and bucket):
    how many, and their total added in time order."""
    counts: dict[str, int] = {}
    totals: dict[str, float] = {}
    for value in values:
        endpoint = value.endpoint
        if endpoint is not None:
            counts[endpoint] = counts.get(endpoint, 0) + 1
            totals[endpoint] = totals.get(endpoint, 0.0) + value.value
    return {endpoint: Totals(points, totals[endpoint]) for endpoint, points in counts.items()}


def latest_of(values: Iterable[DerivedValue]) -> dict[str, float]:
    """Each endpoint's last value among ``values`` (ascending by time)."""
    return {value.endpoint: value.value for value in values if value.endpoint is not None}


def check_metric_names(metrics: Collection[str] | None) -> None:
    """Refuse one metric name passed where a collection of them belongs (a str iterates)."""
    if isinstance(metrics, str):
        raise TypeError("metrics must be a collection of metric names, not one str")


def touched_buckets(samples: Sequence[Sample]) -> list[tuple[int, int]]:
    """(step, bucket start) of every minute and hour the samples fall in, sorted."""
    return start_buckets({sample.start_ms for sample in samples})


def start_buckets(starts: Collection[int]) -> list[tuple[int, int]]:
    """(step, bucket start) of every minute and hour holding one of ``starts``, sorted."""
    minutes = {start - start % MINUTE_MS for start in starts}
    hours = {start - start % HOUR_MS for start in starts}
    return sorted([(MINUTE_MS, m) for m in minutes] + [(HOUR_MS, h) for h in hours])


def quarantine_order(record: QuarantinedRecord) -> tuple[int, str, int]:
    """The order ``Store.quarantined`` lists records in: oldest first."""
    return (record.received_ms, record.request_id, record.index)


def retention_cutoffs(now_ms: int, minute_retention_days: float, hour_retention_days: float) -> dict[int, int]:
    """For each step, the bucket start before which data is past its retention."""
    return {
        MINUTE_MS: now_ms - int(minute_retention_days * DAY_MS),
        HOUR_MS: now_ms - int(hour_retention_days * DAY_MS),
    }


def batch_of(samples: Datapoints) -> Batch:
    """``samples`` as a Batch: a Batch as it is, Samples checked (``check_finite``) and filed.

    A Batch comes from the decoders, which refuse non-finite statistics; Samples may come
    from anywhere, so they are checked before anything is stored."""
    if isinstance(samples, Batch):
        return samples
    check_finite(samples)
    return Batch.of(samples)


def check_finite(samples: Sequence[Sample]) -> None:
    """Raise StoreError if any statistic of ``samples`` is NaN or infinite.

    Such values cannot round-trip (SQLite turns NaN into NULL, JSON has neither, NaN is not
    equal to itself), so a store refuses the whole request instead of storing something else.
    """
    isfinite = math.isfinite
    for sample in samples:
        if not (
            isfinite(sample.count)
            and isfinite(sample.sum)
            and isfinite(sample.min)
            and isfinite(sample.max)
            and all(isfinite(value) for _, value in sample.stats)
        ):
            raise StoreError(non_finite_message(sample))


def non_finite_message(sample: Sample) -> str:
    """The StoreError text for a sample holding a NaN or infinite statistic."""
    series = sample.series
    return (
        f"sample {series.namespace}/{series.metric} {dict(series.dimensions)} at {sample.start_ms} "
        f"has a NaN or infinite statistic (count={sample.count}, sum={sample.sum}, "
        f"min={sample.min}, max={sample.max}, stats={dict(sample.stats)}); the store keeps "
        "finite numbers only, so the request was not stored"
    )
