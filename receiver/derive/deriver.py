"""Keeping derived values in step with the stored samples.

After each commit the ingest path tells the deriver which minutes and hours changed. The
deriver recomputes each changed bucket from *all* samples stored for it — never from the
samples of one request — and stores the values with the bucket's version (see the Store
protocol), so values are a pure function of the stored set whatever the order, split or
repetition of deliveries, and whichever replica computed them last.

Hours are derived from the hour's minute samples rolled up per series into one "average
minute" (count and sum divided by 60, the minimum of the minimums, the maximum of the
maximums and of each percentile) and evaluated with the same rules. So ratios stay exact
(a weighted mean over the hour is Σ Sum ÷ Σ SampleCount of the hour), rates are the hour's
average rate, and maxima are the hour's maxima; metrics whose minutes merge by SUM are then
multiplied by 60 to give the hour's total. Percentiles of an hour are the largest of its
minutes' (an upper bound: percentiles cannot be merged exactly).

A bucket never holds up the others. A value that cannot be computed (a sum past the
largest float, ~1.8e308: see receiver/rules/families.py) is left out for its entity and
counted (``NotComputedValues``), and the rest of the bucket is stored. A bucket whose
derivation fails for any other reason (a bug) is retried with a doubling backoff and set
aside after ``MAX_ATTEMPTS`` tries, until new samples for it give it a fresh chance. A
store error is different: the store is likely down, so the pass stops and every bucket
stays marked.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from uuid import uuid4

from receiver.backoff import Backoff
from receiver.derive.ceilings import InventoryCeilings
from receiver.derive.completeness import Completeness, Source, series_by_source
from receiver.derive.free_memory import release_free_memory
from receiver.derive.hours import derive_hour_values as derive_hour_values
from receiver.derive.hours import hour_totals, rolled_changes
from receiver.derive.minute_samples import MinuteSamples
from receiver.derive.replicas import DEFER_S, Turns
from receiver.derive.rollup import OPEN_MINUTES, HourRollup, Unsettled
from receiver.derive.rollup import rollup_hour as rollup_hour
from receiver.derive.worker import Evaluator, ThreadEvaluator
from receiver.model import DAY_MS, DEFAULT_SETTLE_S, HOUR_MS, MINUTE_MS, Sample
from receiver.rules import RuleHolder, RuleSet
from receiver.rules.incremental import PartitionedEvaluation
from receiver.rules.partitions import Partition
from receiver.store import Store, StoreError

log = logging.getLogger("receiver.derive")

_BUCKET_NAMES = {MINUTE_MS: ("minutes", "a minute"), HOUR_MS: ("hours", "an hour")}
"""How the log names buckets of each step: several, and one."""
STEP_NAMES = {MINUTE_MS: "minute", HOUR_MS: "hour"}
"""The ``step`` label of the deriver's counters."""

MAX_ATTEMPTS = 8
"""Tries of a bucket whose derivation keeps failing (not for a store error) before it is set
aside: with the 2 s pass interval doubling, about four minutes of retries."""
MAX_BACKOFF_S = 300.0
"""The longest wait between two tries of a failing bucket."""


@dataclass(frozen=True, slots=True)
class DeriveCountsSnapshot:
    """The deriver's counters, for /metrics."""

    not_computed: tuple[tuple[str, str, int], ...]
    """(step 'minute' or 'hour', metric, values not computed), sorted."""
    set_aside: tuple[tuple[str, int], ...]
    """(step, buckets set aside), sorted; steps with none are left out."""


class NotComputedValues:
    """Values left out because they could not be computed: counted by step and metric, and
    logged once per (bucket, metric), without a traceback (the data caused it, not a bug).

    A bucket is derived again after each commit that touches it and finds the same values
    not computed each time, so a (step, bucket, metric) adds only what it lost beyond what
    was counted for it already: the counter counts values, not passes. The last
    ``KEYS_KEPT`` keys are remembered; one derived again after that counts and logs again.
    """

    KEYS_KEPT = 10_000

    def __init__(self) -> None:
        self.totals: Counter[tuple[str, str]] = Counter()
        self._counted: OrderedDict[tuple[int, int, str], int] = OrderedDict()

    def record(self, step_ms: int, bucket_ms: int, not_computed: Mapping[str, int]) -> None:
        for metric, count in sorted(not_computed.items()):
            key = (step_ms, bucket_ms, metric)
            counted = self._counted.get(key)
            if counted is None:
                log.warning(
                    f"some values of {_BUCKET_NAMES[step_ms][1]} could not be computed (past the largest "
                    "floating-point number, about 1.8e308) and are left out; the other values are stored",
                    extra={"metric": metric, "bucket_ms": bucket_ms, "values": count},
                )  # fmt: skip
            if count > (counted or 0):
                self.totals[(STEP_NAMES[step_ms], metric)] += count - (counted or 0)
                self._counted[key] = count
            if key in self._counted:
                self._counted.move_to_end(key)
            while len(self._counted) > self.KEYS_KEPT:
                self._counted.popitem(last=False)


BUCKET_LEASE_S = 30.0
"""How long a bucket's lease lasts unless its holder renews it (at each pass it derives it)."""
STALE_SCAN_S = 2.0
"""How often a deriver looks for buckets committed to since they were derived (by another
replica, which left them to this one's lease), so those values trail by about this much."""
STALE_SCAN_MINUTES = 60
"""How far back that look goes; later corrections are found by the deriver that commits them."""
LEASES_KEPT = 1_000

TRACKED_MINUTES = 3
"""Minutes whose samples are kept for the next pass (here, and their values where the
rules run: about 95 MiB a minute for 2,000 tables); one derived again after that starts over
from all of its samples (a late correction). Metric streams deliver a minute within a
few minutes, so few minutes change at once."""


def _by_partition(samples: Sequence[Sample]) -> dict[Partition, tuple[Sample, ...]]:
    return {partition: tuple(group) for partition, group in PartitionedEvaluation.by_partition(samples).items()}


OPEN_HOUR_INTERVAL_S = 600.0
"""How often the deriver stores an hour that is still open (its end not reached by the clock):
at most once in this many seconds, and at the first hour pass that finds it changed and never
derived by this deriver. An open hour changes every minute; storing it every minute was a
fifth of the DynamoDB store's writes, every five minutes left the store just under its
target of 0.05 writes per datapoint, every ten 5 % under it (docs/performance.md). A closed
hour is stored at every hour pass that finds it changed, so its last minutes and any later
correction wait for no interval. Readers see an open hour's values as of at most this long,
plus an hour pass, ago."""

TRACKED_HOURS = 2
"""Hours whose rollup and partitions are kept for the next pass: the current hour and the one
before it, whose last minutes are still arriving. One derived again after that starts over
from all of its samples."""


@dataclass(slots=True)
class _TrackedHour:
    """An hour derived from the minutes that changed: its rollup, the minute versions it
    holds, its rolled samples by partition at its last pass, and the version its values in
    the store were derived at by this deriver (None: unknown)."""

    rollup: HourRollup
    minute_versions: Mapping[int, int]
    seen: dict[Partition, tuple[Sample, ...]]
    synced: int | None


@dataclass(slots=True)
class _Failing:
    """A bucket whose derivation failed (not for a store error), waiting for its next try."""

    attempts: int
    retry_at: float
    """``monotonic()`` time from which it may be tried again."""


class Deriver:
    """Recomputes changed minutes as soon as they change and changed hours every
    ``hour_interval_s`` (an hour still open every ``open_hour_interval_s``).

    A pass starts as soon as a commit marks work, and the next as soon as it ends if more
    was marked meanwhile: commits that land during a pass wait for the next one together.
    A minute is derived a partition at a time (receiver/derive/partitioned.py), so a pass
    costs what changed since the last, not the whole minute. Only when the store fails does
    the loop wait ``interval_s`` before trying again.
    """

    def __init__(
        self,
        store: Store,
        rules: RuleHolder,
        *,
        minute_retention_days: float,
        interval_s: float = 2.0,
        hour_interval_s: float = 60.0,
        open_hour_interval_s: float = OPEN_HOUR_INTERVAL_S,
        clock: Callable[[], float] = time.time,
        evaluator: Evaluator | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        completeness: Completeness | None = None,
        holder: str | None = None,
        lease_s: float = BUCKET_LEASE_S,
        stale_scan_s: float = STALE_SCAN_S,
    ) -> None:
        """``evaluator`` runs the rules: in a thread of this process unless given.
        ``open_hour_interval_s``: how often an hour still open is stored (``derive_hours``).
        ``monotonic`` times the backoff of failing buckets. ``completeness`` learns which
        series each derived minute holds (receiver/derive/completeness.py); by default one
        that only waits the default settle time. ``holder`` names this deriver in the
        buckets' leases (``_hold``), each lasting ``lease_s`` unless renewed; every
        ``stale_scan_s`` it looks for buckets other replicas committed to (``mark_stale``)."""
        self.store = store
        self.rules = rules
        self.evaluator = evaluator if evaluator is not None else ThreadEvaluator()
        self.interval_s = interval_s
        self.hour_interval_s = hour_interval_s
        self.open_hour_interval_s = open_hour_interval_s
        self.minute_retention_ms = int(minute_retention_days * DAY_MS)
        self.clock = clock
        self.monotonic = monotonic
        self.not_computed = NotComputedValues()
        self._failing: dict[tuple[int, int], _Failing] = {}
        self._set_aside: set[tuple[int, int]] = set()
        self._set_aside_total: Counter[str] = Counter()
        self._minutes: set[int] = set()
        self._hours: set[int] = set()
        self._open_hours_derived: dict[int, float] = {}
        """Open hour -> ``clock`` time of the pass that last derived it (``derive_hours``)."""
        self._newest_minute = 0
        """The latest minute marked: an hour before it has ended, whatever the clock says."""
        self._wake = asyncio.Event()
        # One minute pass and one hour pass at a time: a caller of derive_pending
        # (shutdown, tests) returns only after a pass already under way has stored its
        # values too.
        self._pass = asyncio.Lock()
        self._hour_pass = asyncio.Lock()
        self._listeners: list[Callable[[int, int], None]] = []
        self.ceilings = InventoryCeilings(store, monotonic)
        self.holder = holder if holder is not None else f"{socket.gethostname()}:{os.getpid()}:{uuid4().hex[:8]}"
        """Who this deriver is in the buckets' leases."""
        self.lease_s = lease_s
        self.stale_scan_s = stale_scan_s
        self._leases: dict[tuple[int, int], float] = {}
        """(step, bucket) -> until when (clock time) this deriver holds its lease."""
        self.turns = Turns(store, self.holder, lease_s, clock)
        """Which buckets this replica takes first (receiver/derive/replicas.py)."""
        self._deferred: dict[tuple[int, int], float] = {}
        """(step, bucket) out of this replica's turn -> until when (``clock`` time, as leases)
        it is left to the replica whose turn it is."""
        self._tracked: OrderedDict[int, MinuteSamples] = OrderedDict()
        """The minutes derived a partition at a time, least recently derived first."""
        self._partitioned_rules: tuple[RuleSet, bool] | None = None
        self._tracked_hours: OrderedDict[int, _TrackedHour] = OrderedDict()
        """The hours derived from the minutes that changed, least recently derived first."""
        self.completeness = completeness if completeness is not None else Completeness(DEFAULT_SETTLE_S, clock)

    def on_derived(self, listener: Callable[[int, int], None]) -> None:
        """Call ``listener(step_ms, bucket_ms)`` after a bucket's values were stored."""
        self._listeners.append(listener)

    def counts(self) -> DeriveCountsSnapshot:
        return DeriveCountsSnapshot(
            not_computed=tuple(sorted((step, metric, n) for (step, metric), n in self.not_computed.totals.items())),
            set_aside=tuple(sorted(self._set_aside_total.items())),
        )

    def retry_in_s(self) -> float | None:
        """Seconds until the next failed minute may be tried again; None if none waits.

        Failed hours wait for the next hour pass as well as for their backoff.
        """
        now = self.monotonic()
        waits = [failing.retry_at - now for (step, _), failing in self._failing.items() if step == MINUTE_MS]
        wall = self.clock()
        waits += [until - wall for (step, _), until in self._deferred.items() if step == MINUTE_MS and until > wall]
        return max(0.0, min(waits)) if waits else None

    def touch(self, samples: Sequence[Sample]) -> None:
        """Mark the minutes and hours of freshly committed samples for recomputation."""
        self.touch_starts({sample.start_ms for sample in samples})

    def touch_starts(self, starts: Collection[int]) -> None:
        """Mark the minutes and hours of these period starts for recomputation."""
        if not starts:
            return
        minutes = {start - start % MINUTE_MS for start in starts}
        hours = {start - start % HOUR_MS for start in starts}
        if self._set_aside:
            # New samples give a bucket that was set aside a fresh chance.
            self._set_aside.difference_update(
                [(MINUTE_MS, minute) for minute in minutes] + [(HOUR_MS, hour) for hour in hours]
            )
        self._minutes.update(minutes)
        self._hours.update(hours)
        self._newest_minute = max(self._newest_minute, max(minutes))
        self._wake.set()

    async def run(self) -> None:
        """Derive until cancelled; failures are logged and retried on the next pass.

        Hour passes run beside the minute passes, as a task of their own: an hour of 2,000
        tables takes seconds to roll up and evaluate, and a minute's values must not wait
        for it (the evaluator runs them in separate workers too, receiver/derive/worker.py).
        """
        await self._recover()
        next_hours = next_scan = 0.0
        hours: asyncio.Task[bool] | None = None
        try:
            while True:
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
                # that arrives as the event is set (CPython gh-86296), and shutdown would hang.
                timeout = min(self.hour_interval_s, self.stale_scan_s)
                retry = self.retry_in_s()  # a failed minute's backoff may end before the next hour pass
                if retry is not None:
                    timeout = min(timeout, retry)
                try:
                    async with asyncio.timeout(timeout):
                        await self._wake.wait()
                except TimeoutError:
                    pass
                self._wake.clear()
                if hours is not None and hours.done():
                    # The rest is counted from the end of the hour pass, as when hours ran in
                    # the minutes' pass: a pass that takes longer than it must not run again at once.
                    hours, next_hours = None, time.monotonic() + self.hour_interval_s
                hours_due = hours is None and time.monotonic() >= next_hours
                if time.monotonic() >= next_scan:
                    next_scan = time.monotonic() + self.stale_scan_s
                    await self.mark_stale(hours_due)
                if hours_due:
                    hours = asyncio.create_task(self.derive_hours(), name="derive-hours")
                answered = await self.derive_pending(hours=False)
                if not answered:
                    await asyncio.sleep(self.interval_s)  # the store failed: give it a moment
        finally:
            if hours is not None:
                hours.cancel()
                await asyncio.gather(hours, return_exceptions=True)

    async def mark_stale(self, hours: bool = True) -> None:
        """Mark the recent buckets committed to since they were derived: by another replica,
        whose deriver could not take their lease (this one holds it), or one that stopped."""
        since = int(self.clock() * 1000) - STALE_SCAN_MINUTES * MINUTE_MS
        try:
            minutes = await self.store.stale_buckets(MINUTE_MS, since)
            found = [(MINUTE_MS, minute) for minute in minutes]
            if hours:
                found += [(HOUR_MS, hour) for hour in await self.store.stale_buckets(HOUR_MS, since - since % HOUR_MS)]
        except StoreError as exc:
            log.warning("could not look for stale buckets", extra={"error": str(exc)})
            return
        found = [key for key in found if key not in self._set_aside]  # failing: only new samples retry them
        self._minutes.update(bucket for step, bucket in found if step == MINUTE_MS)
        self._hours.update(bucket for step, bucket in found if step == HOUR_MS)

    async def derive_pending(self, hours: bool = True) -> bool:
        """Recompute every marked minute, and every marked hour, open or closed, when
        ``hours`` (a stop's last pass leaves nothing stale); False when the store failed
        (what it failed for stays marked)."""
        async with self._pass:
            answered = await self._derive_minutes()
        if not (answered and hours):
            return answered
        return await self.derive_hours(every_open_hour=True)

    async def derive_hours(self, every_open_hour: bool = False) -> bool:
        """Recompute the marked hours that are due (one hour pass at a time); False when the
        store failed.

        A closed hour is due at every pass; an open one once ``open_hour_interval_s`` passed
        since this deriver last derived it, or at once if it never did, or with
        ``every_open_hour``. An open hour not due stays marked for a later pass.
        """
        async with self._hour_pass:
            now = self.clock()
            due = sorted(hour for hour in self._hours if every_open_hour or self._hour_due(hour, now))
            self._hours.difference_update(due)
            answered = await self._derive_each(HOUR_MS, due, self._hours)
            if answered:
                self._note_open_hours(due, now)
            return answered

    def _hour_due(self, hour_ms: int, now: float) -> bool:
        if hour_ms + HOUR_MS <= self._ended_before(now):
            return True  # closed: its last minutes and corrections wait for no interval
        derived = self._open_hours_derived.get(hour_ms)
        return derived is None or now - derived >= self.open_hour_interval_s

    def _note_open_hours(self, derived: Sequence[int], now: float) -> None:
        """Remember when the open hours among ``derived`` were derived, but for those whose
        derivation failed: they wait for their backoff only. Closed hours are forgotten."""
        open_from = self._ended_before(now) - HOUR_MS
        for hour in derived:
            if hour > open_from and (HOUR_MS, hour) not in self._failing:
                self._open_hours_derived[hour] = now
        for hour in [hour for hour in self._open_hours_derived if hour <= open_from]:
            del self._open_hours_derived[hour]

    def _ended_before(self, now: float) -> float:
        """Hours that end by this time (ms) are closed: the clock's time, or the newest minute
        marked when it is later (a clock behind the stream's, or the demo's faster one). A
        minute marked far ahead (a wrong timestamp) closes every hour before it: those are
        then stored at every pass, as all hours were before open hours waited."""
        return max(now * 1000, self._newest_minute)

    async def _derive_minutes(self) -> bool:
        self._forget_past_retention()
        minutes, self._minutes = sorted(self._minutes), set()
        store_answered = await self._derive_each(MINUTE_MS, minutes, self._minutes)
        now = self.monotonic()
        if any(self._due(MINUTE_MS, minute, now) for minute in self._minutes):
            self._wake.set()  # minutes the store failed are retried at the next pass
        return store_answered

    async def _derive_each(self, step_ms: int, buckets: list[int], marked: set[int]) -> bool:
        """Derive ``buckets`` in order, putting a failed one back into ``marked``.

        A store error ends the loop (the store is likely down; the rest go back too) and
        returns False. Any other error is a bug: that bucket alone waits (``_failed``).
        """
        several = _BUCKET_NAMES[step_ms][0]
        now = self.monotonic()
        for index, bucket in enumerate(buckets):
            if not self._due(step_ms, bucket, now):
                marked.add(bucket)  # still waiting for its backoff
                continue
            try:
                await self.derive_bucket(step_ms, bucket)
                if self._deferred.get((step_ms, bucket), 0.0) > self.clock():
                    marked.add(bucket)  # left to the replica whose turn it is, for now
            except StoreError as exc:
                log.warning(f"deriving {several} failed, will retry", extra={"error": str(exc)})
                marked.update(buckets[index:])
                return False
            except Exception as exc:  # noqa: BLE001 - any other failure is this bucket's: retried with backoff
                self._failed(step_ms, bucket, exc, marked)
            else:
                self._failing.pop((step_ms, bucket), None)
        return True

    def _due(self, step_ms: int, bucket_ms: int, now: float) -> bool:
        failing = self._failing.get((step_ms, bucket_ms))
        if failing is not None and failing.retry_at > now:
            return False
        return self._deferred.get((step_ms, bucket_ms), 0.0) <= self.clock()

    def _failed(self, step_ms: int, bucket_ms: int, exc: Exception, marked: set[int]) -> None:
        """Retry a bucket that failed with a doubling backoff; set it aside after MAX_ATTEMPTS.

        The traceback is logged at the first failure only: the retries fail alike.
        """
        one = _BUCKET_NAMES[step_ms][1]
        key = (step_ms, bucket_ms)
        failing = self._failing.pop(key, None)
        attempts = 1 if failing is None else failing.attempts + 1
        if attempts >= MAX_ATTEMPTS:
            self._set_aside.add(key)
            self._set_aside_total[STEP_NAMES[step_ms]] += 1
            log.error(
                f"deriving {one} keeps failing; it is set aside until new samples for it arrive",
                extra={"bucket_ms": bucket_ms, "attempts": attempts, "error": f"{type(exc).__name__}: {exc}"},
            )  # fmt: skip
            return
        delay_s = Backoff(self.interval_s, MAX_BACKOFF_S).delay_s(attempts)
        self._failing[key] = _Failing(attempts, self.monotonic() + delay_s)
        marked.add(bucket_ms)
        if attempts == 1:
            log.exception(f"deriving {one} failed, will retry", extra={"bucket_ms": bucket_ms, "retry_in_s": delay_s})
        else:
            log.info(
                f"deriving {one} failed again, will retry",
                extra={
                    "bucket_ms": bucket_ms,
                    "attempts": attempts,
                    "retry_in_s": delay_s,
                    "error": f"{type(exc).__name__}: {exc}",
                },
            )

    def _forget_past_retention(self) -> None:
        """Failed and set-aside buckets past the minute retention are never derived again."""
        if not (self._failing or self._set_aside):
            return
        since = int(self.clock() * 1000) - self.minute_retention_ms  # as derive_bucket has it
        for key in [key for key in self._failing if key[1] < since]:
            del self._failing[key]
        self._set_aside = {key for key in self._set_aside if key[1] >= since}

    async def derive_bucket(self, step_ms: int, bucket_ms: int) -> bool:
        """Recompute one bucket from its stored samples; False if newer values won.

        A bucket reaching back past the minute retention is left alone: some of its minute
        samples may be pruned already, and its values were computed while they were not.
        """
        if bucket_ms < int(self.clock() * 1000) - self.minute_retention_ms:
            return False
        if not await self._hold(step_ms, bucket_ms):
            return False  # another replica derives it: its scan finds what this one committed
        version = (await self.store.versions(step_ms, [bucket_ms]))[bucket_ms]
        # Read after the version: every commit counted in it is in what we read.
        rules = self.rules.current
        if step_ms == MINUTE_MS and self._partitioned(rules):
            stored, not_computed, present = await self._derive_minute_written(rules, bucket_ms, version)
            # After the values are stored: a minute found complete is acted on at once.
            self.completeness.observe_series(bucket_ms, present)
        elif step_ms == MINUTE_MS:
            stored_samples = await self.store.samples(bucket_ms, bucket_ms + step_ms)
            samples = await self.ceilings.with_ceilings(stored_samples, bucket_ms, step_ms)
            evaluation = await self.evaluator.evaluate(rules, samples)
            stored = await self.store.put_derived(step_ms, bucket_ms, version, evaluation.values)
            not_computed = evaluation.not_computed
            present = await asyncio.to_thread(series_by_source, stored_samples)
            self.completeness.observe_series(bucket_ms, present)
        else:
            stored, not_computed = await self._derive_hour(rules, bucket_ms, version)
        if stored:
            if not_computed:
                self.not_computed.record(step_ms, bucket_ms, not_computed)
            for listener in self._listeners:
                listener(step_ms, bucket_ms)
        return stored

    async def _hold(self, step_ms: int, bucket_ms: int) -> bool:
        """Whether this deriver holds the bucket's lease, taken or renewed now if need be.

        Replicas sharing a store derive each bucket once: whoever takes its lease (a
        conditional write) derives it while renewing the lease at each pass, and the others
        leave it alone. A replica that stops loses its leases ``lease_s`` later.
        """
        key = (step_ms, bucket_ms)
        now = self.clock()
        until = self._leases.get(key, 0.0)
        if until - now > self.lease_s / 2:
            return True  # renewed at most once per half lease
        if until <= now and await self._out_of_turn(step_ms, bucket_ms):
            return False
        held = await self.store.take_lease(
            f"derive/{step_ms}/{bucket_ms}", self.holder, int(now * 1000), int(self.lease_s * 1000)
        )
        if held:
            self._leases[key] = now + self.lease_s
        else:
            self._leases.pop(key, None)
            if step_ms == MINUTE_MS:
                self._tracked.pop(bucket_ms, None)  # the other replica changes its values now
        if len(self._leases) > LEASES_KEPT:
            for old in [k for k, until in self._leases.items() if until <= now]:
                del self._leases[old]
        return held

    async def _out_of_turn(self, step_ms: int, bucket_ms: int) -> bool:
        """Whether to leave a bucket whose lease this replica does not hold to the replica
        whose turn it is, for ``DEFER_S`` from the first time it is asked."""
        await self.turns.refresh()
        key = (step_ms, bucket_ms)
        if self.turns.in_turn(step_ms, bucket_ms):
            self._deferred.pop(key, None)
            return False
        now = self.clock()
        until = self._deferred.get(key)
        if until is None:
            if len(self._deferred) > LEASES_KEPT:
                self._deferred = {k: v for k, v in self._deferred.items() if v > now - 60.0}
            self._deferred[key] = now + DEFER_S
            return True
        return now < until

    def _track(self, minute: MinuteSamples) -> None:
        self._tracked[minute.minute_ms] = minute
        while len(self._tracked) > TRACKED_MINUTES:
            self._tracked.popitem(last=False)

    def _partitioned(self, rules: RuleSet) -> bool:
        """Whether minutes of ``rules`` are derived a partition at a time (a rule that cannot
        be taken apart, receiver/rules/partitions.py, makes them be evaluated whole)."""
        if self._partitioned_rules is None or self._partitioned_rules[0] is not rules:
            self._partitioned_rules = (rules, PartitionedEvaluation(rules).supported)
            self._tracked.clear()  # every minute starts over with new rules
        return self._partitioned_rules[1]

    async def _derive_minute_written(
        self, rules: RuleSet, minute_ms: int, version: int
    ) -> tuple[bool, dict[str, int], dict[Source, frozenset[int]]]:
        """Derive a minute from the writes made since its last pass: the partitions they
        changed are evaluated again and the values that changed stored; (stored, values not
        computed, the minute's series by source).

        A minute seen for the first time (or since this deriver started, or forgotten where
        the rules run: a new worker) reads every write and is evaluated and stored whole; so
        is one another replica stored values of since. Until this pass has stored its
        values the minute is not tracked: a pass that fails leaves the next to start over.
        """
        minute = self._tracked.pop(minute_ms, None) or MinuteSamples(minute_ms)
        written = await self.store.written_since(minute_ms, minute_ms + MINUTE_MS, minute.mark)
        known = await self.ceilings.current()
        families = await asyncio.to_thread(minute.apply, written.writes, known)
        minute.mark = written.mark
        live = [*self._tracked, minute_ms]
        if minute.synced is not None:
            changed = {partition: minute.group(partition) for partition in families}
            changes = await self.evaluator.update(MINUTE_MS, rules, minute_ms, changed, families, live)
            if changes is not None and await self.store.put_derived_changes(
                MINUTE_MS, minute_ms, minute.synced, version, changes.upserts, changes.removals, changes.total
            ):
                minute.synced = version
                self._track(minute)
                return True, changes.not_computed, minute.series_by_source()
        groups = await asyncio.to_thread(minute.groups)
        changes = await self.evaluator.update(MINUTE_MS, rules, minute_ms, groups, None, live)
        if changes is None:  # no worker kept it even now: evaluated whole, as without partitions
            evaluation = await self.evaluator.evaluate(rules, [s for group in groups.values() for s in group])
            stored = await self.store.put_derived(MINUTE_MS, minute_ms, version, evaluation.values)
            return stored, evaluation.not_computed, minute.series_by_source()
        stored = await self.store.put_derived(MINUTE_MS, minute_ms, version, changes.upserts)
        # Not stored: values at least as new are, so the next pass stores this minute whole.
        minute.synced = version if stored else None
        self._track(minute)
        return stored, changes.not_computed, minute.series_by_source()

    async def _derive_hour(self, rules: RuleSet, hour_ms: int, version: int) -> tuple[bool, dict[str, int]]:
        """Derive an hour from the minutes that changed since its last pass and store the
        values that changed; (stored, values not computed).

        Its rolled samples are kept in step with the minutes whose version moved
        (receiver/derive/rollup.py); those that changed are evaluated a partition at a time,
        as minutes are. An hour seen for the first time, or whose settled minute changed, is
        rolled up from all its samples; one whose values another replica stored since is
        stored whole.
        """
        tracked = self._tracked_hours.pop(hour_ms, None)
        # What the passes before left free goes back first, the reads' after the roll-up (free_memory.py).
        await asyncio.to_thread(release_free_memory)
        # Read after the hour's version: a commit bumps its minutes' versions before its hour's.
        minutes = await self.store.versions(MINUTE_MS, range(hour_ms, hour_ms + HOUR_MS, MINUTE_MS))
        rollup = None if tracked is None else await self._roll_changed_minutes(tracked, minutes)
        if rollup is None:
            tracked = None
            rollup = await self._roll_whole_hour(hour_ms, minutes)
        await asyncio.to_thread(release_free_memory)
        rolled = await self.ceilings.with_ceilings(rollup.samples(), hour_ms, HOUR_MS)
        if not self._partitioned(rules):
            evaluation = hour_totals(rules, await self.evaluator.evaluate(rules, rolled))
            self._track_hour(hour_ms, _TrackedHour(rollup, minutes, {}, None))
            return await self.store.put_derived(HOUR_MS, hour_ms, version, evaluation.values), evaluation.not_computed
        groups = await asyncio.to_thread(_by_partition, rolled)
        live = [*self._tracked_hours, hour_ms]
        if tracked is not None and tracked.synced is not None:
            changed, families = await asyncio.to_thread(rolled_changes, tracked.seen, groups)
            changes = await self.evaluator.update(HOUR_MS, rules, hour_ms, changed, families, live)
            if changes is not None and await self.store.put_derived_changes(
                HOUR_MS, hour_ms, tracked.synced, version, changes.upserts, changes.removals, changes.total
            ):
                self._track_hour(hour_ms, _TrackedHour(rollup, minutes, groups, version))
                return True, changes.not_computed
        changes = await self.evaluator.update(HOUR_MS, rules, hour_ms, groups, None, live)
        if changes is None:  # no worker kept it even now: evaluated whole
            evaluation = hour_totals(rules, await self.evaluator.evaluate(rules, rolled))
            self._track_hour(hour_ms, _TrackedHour(rollup, minutes, {}, None))
            return await self.store.put_derived(HOUR_MS, hour_ms, version, evaluation.values), evaluation.not_computed
        stored = await self.store.put_derived(HOUR_MS, hour_ms, version, changes.upserts)
        # Not stored: values at least as new are, so the next pass stores this hour whole.
        self._track_hour(hour_ms, _TrackedHour(rollup, minutes, groups, version if stored else None))
        return stored, changes.not_computed

    async def _roll_changed_minutes(self, tracked: _TrackedHour, minutes: Mapping[int, int]) -> HourRollup | None:
        """The tracked rollup with the minutes whose version moved read again; None when a
        settled minute changed (the rollup is then of no use)."""
        rollup = tracked.rollup
        try:
            for minute, version in minutes.items():
                if version != tracked.minute_versions.get(minute, 0):
                    samples = await self.store.samples(minute, minute + MINUTE_MS)
                    await asyncio.to_thread(rollup.replace_minute, minute, samples)
        except Unsettled:
            log.info("a settled minute of an hour changed; it is rolled up again", extra={"hour_ms": rollup.hour_ms})
            return None
        return rollup

    async def _roll_whole_hour(self, hour_ms: int, minutes: Mapping[int, int]) -> HourRollup:
        """The rollup of every sample stored for the hour, read a few series at a time: an
        hour of 2,000 tables is 2.2 million samples, over 1.5 GiB as objects. Its latest
        minutes stay open, the rest settle."""
        rollup = HourRollup(hour_ms, OPEN_MINUTES)
        recent = frozenset(sorted(minute for minute, version in minutes.items() if version)[-OPEN_MINUTES:])
        # Each chunk holds every minute of its series, so rolling up chunk by chunk is
        # rolling up the whole.
        async for chunk in self.store.samples_by_series(hour_ms, hour_ms + HOUR_MS):
            await asyncio.to_thread(rollup.add_series, chunk, recent)
        return rollup

    def _track_hour(self, hour_ms: int, tracked: _TrackedHour) -> None:
        self._tracked_hours[hour_ms] = tracked
        while len(self._tracked_hours) > TRACKED_HOURS:
            self._tracked_hours.popitem(last=False)

    async def _recover(self) -> None:
        """Buckets committed but not derived before a restart (or by another replica)."""
        since = int(self.clock() * 1000) - self.minute_retention_ms
        try:
            self._minutes.update(await self.store.stale_buckets(MINUTE_MS, since))
            self._hours.update(await self.store.stale_buckets(HOUR_MS, since - since % HOUR_MS))
        except StoreError as exc:
            log.warning("could not look for stale buckets at start", extra={"error": str(exc)})
        if self._minutes or self._hours:
            self._wake.set()
