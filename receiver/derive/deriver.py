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
import dataclasses
import itertools
import logging
import math
import operator
import os
import socket
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from uuid import uuid4

from receiver.backoff import Backoff
from receiver.derive.ceilings import InventoryCeilings
from receiver.derive.completeness import Completeness, Source, series_by_source
from receiver.derive.minute_samples import MinuteSamples
from receiver.derive.regions import evaluate_by_region
from receiver.derive.replicas import DEFER_S, Turns
from receiver.derive.worker import Evaluator, ThreadEvaluator
from receiver.model import DAY_MS, DEFAULT_SETTLE_S, HOUR_MS, MINUTE_MS, DerivedValue, Sample, Series, SeriesKey, Stats
from receiver.rules import Evaluation, RuleHolder, RuleSet
from receiver.rules.incremental import PartitionedEvaluation
from receiver.store import Store, StoreError

log = logging.getLogger("receiver.derive")

MINUTES_PER_HOUR = HOUR_MS // MINUTE_MS
_BUCKET_NAMES = {MINUTE_MS: ("minutes", "a minute"), HOUR_MS: ("hours", "an hour")}
"""How the log names buckets of each step: several, and one."""
STEP_NAMES = {MINUTE_MS: "minute", HOUR_MS: "hour"}
"""The ``step`` label of the deriver's counters."""

MAX_ATTEMPTS = 8
"""Tries of a bucket whose derivation keeps failing (not for a store error) before it is set
aside: with the 2 s pass interval doubling, about four minutes of retries."""
MAX_BACKOFF_S = 300.0
"""The longest wait between two tries of a failing bucket."""


def rollup_hour(samples: Iterable[Sample], hour_ms: int) -> list[Sample]:
    """One 'average minute' sample per series for the hour starting at ``hour_ms``."""
    rolled = []
    for group in _by_series(samples):
        # The same identity twice is one datapoint: keep the last of each minute.
        minutes = dict(zip(map(_PERIOD, group), group))
        parts = [minutes[key] for key in sorted(minutes)]
        _, _, _, counts, sums, lows, highs, stats_of, _ = zip(*parts)
        rolled.append(
            Sample(
                series=parts[-1].series,
                start_ms=hour_ms,
                end_ms=hour_ms + HOUR_MS,
                count=_per_minute(counts),
                sum=_per_minute(sums),
                min=min(lows),
                max=max(highs),
                stats=_largest_stats(stats_of),
                labels=parts[-1].labels,
            )
        )
    return rolled


def _per_minute(values: Sequence[float]) -> float:
    """Σ values ÷ 60. Where Σ is past the largest float, the sum of each value's sixtieth
    (within range for an hour's 60 minutes); inf (not computed, see families) past that."""
    try:
        return math.fsum(values) / MINUTES_PER_HOUR
    except OverflowError:
        try:
            return math.fsum([value / MINUTES_PER_HOUR for value in values])
        except OverflowError:
            return math.inf


_PERIOD = operator.itemgetter(1, 2)
"""A sample's (start_ms, end_ms)."""
_NAME = operator.itemgetter(0)


def _largest_stats(stats_of: Sequence[Stats]) -> Stats:
    """Each statistic's largest value over the minutes, sorted by name.

    The same as folding ``max(value, so_far)`` from -inf in minute order, NaN included.
    """
    pairs = sorted(itertools.chain.from_iterable(stats_of), key=_NAME)  # stable: minute order
    return tuple(
        (name, _fold_max([value for _, value in group])) for name, group in itertools.groupby(pairs, key=_NAME)
    )


def _fold_max(values: list[float]) -> float:
    if any(map(math.isnan, values)):  # NaN makes max() depend on order: fold as ever
        largest = -math.inf
        for value in values:
            largest = max(value, largest)
        return largest
    # The fold keeps the last of equal values (0.0 and -0.0 are equal), max() the first.
    return max(reversed(values))


def _by_series(samples: Iterable[Sample]) -> list[list[Sample]]:
    """The samples of each series key, in the order given.

    Grouped by Series first (a Series hashes once, when it is made); series that share a
    key (they differ in unit only) are then regrouped in the given order.
    """
    samples = list(samples)
    by_object: dict[Series, list[Sample]] = {}
    for sample in samples:
        by_object.setdefault(sample.series, []).append(sample)
    by_key: dict[SeriesKey, list[Sample]] = {}
    shared: set[SeriesKey] = set()
    for group in by_object.values():
        key = group[0].series.key
        if key in by_key:
            shared.add(key)
        else:
            by_key[key] = group
    if shared:
        for key in shared:
            by_key[key] = []
        for sample in samples:
            key = sample.series.key
            if key in shared:
                by_key[key].append(sample)
    return list(by_key.values())


def derive_hour_values(rules: RuleSet, samples: Sequence[Sample], hour_ms: int) -> list[DerivedValue]:
    """The hour's derived values from its minute samples (see the module docstring)."""
    return hour_totals(rules, evaluate_by_region(rules, rollup_hour(samples, hour_ms))).values


def hour_totals(rules: RuleSet, evaluation: Evaluation) -> Evaluation:
    """The values of the rules over an hour's 'average minutes', with SUM metrics × 60.

    An hour's total past the largest float is not computed: left out, and counted.
    """
    merge = {info.name: info.downsampling for info in rules.metrics}
    values: list[DerivedValue] = []
    not_computed = Counter(evaluation.not_computed)
    for v in evaluation.values:
        if merge.get(v.metric) == "SUM":
            total = v.value * MINUTES_PER_HOUR
            if not math.isfinite(total):
                not_computed[v.metric] += 1
                continue
            v = dataclasses.replace(v, value=total)
        values.append(v)
    return Evaluation(values, dict(not_computed))


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


@dataclass(slots=True)
class _Failing:
    """A bucket whose derivation failed (not for a store error), waiting for its next try."""

    attempts: int
    retry_at: float
    """``monotonic()`` time from which it may be tried again."""


class Deriver:
    """Recomputes changed minutes as soon as they change and changed hours every
    ``hour_interval_s``.

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
        clock: Callable[[], float] = time.time,
        evaluator: Evaluator | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        completeness: Completeness | None = None,
        holder: str | None = None,
        lease_s: float = BUCKET_LEASE_S,
        stale_scan_s: float = STALE_SCAN_S,
    ) -> None:
        """``evaluator`` runs the rules: in a thread of this process unless given.
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
        self.minute_retention_ms = int(minute_retention_days * DAY_MS)
        self.clock = clock
        self.monotonic = monotonic
        self.not_computed = NotComputedValues()
        self._failing: dict[tuple[int, int], _Failing] = {}
        self._set_aside: set[tuple[int, int]] = set()
        self._set_aside_total: Counter[str] = Counter()
        self._minutes: set[int] = set()
        self._hours: set[int] = set()
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
        """Recompute every marked minute, and every marked hour when ``hours``; False when
        the store failed (what it failed for stays marked)."""
        async with self._pass:
            answered = await self._derive_minutes()
        if not (answered and hours):
            return answered
        return await self.derive_hours()

    async def derive_hours(self) -> bool:
        """Recompute every marked hour (one hour pass at a time); False when the store failed."""
        async with self._hour_pass:
            pending, self._hours = sorted(self._hours), set()
            return await self._derive_each(HOUR_MS, pending, self._hours)

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
            # Rolled up here, evaluated by the evaluator: only one sample per series crosses.
            rolled = await self._rolled_up_hour(bucket_ms)
            rolled = await self.ceilings.with_ceilings(rolled, bucket_ms, step_ms)
            evaluation = hour_totals(rules, await self.evaluator.evaluate(rules, rolled))
            stored = await self.store.put_derived(step_ms, bucket_ms, version, evaluation.values)
            not_computed = evaluation.not_computed
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
            changes = await self.evaluator.update_minute(rules, minute_ms, changed, families, live)
            if changes is not None and await self.store.put_derived_changes(
                MINUTE_MS, minute_ms, minute.synced, version, changes.upserts, changes.removals, changes.total
            ):
                minute.synced = version
                self._track(minute)
                return True, changes.not_computed, minute.series_by_source()
        groups = await asyncio.to_thread(minute.groups)
        changes = await self.evaluator.update_minute(rules, minute_ms, groups, None, live)
        if changes is None:  # no worker kept it even now: evaluated whole, as without partitions
            evaluation = await self.evaluator.evaluate(rules, [s for group in groups.values() for s in group])
            stored = await self.store.put_derived(MINUTE_MS, minute_ms, version, evaluation.values)
            return stored, evaluation.not_computed, minute.series_by_source()
        stored = await self.store.put_derived(MINUTE_MS, minute_ms, version, changes.upserts)
        # Not stored: values at least as new are, so the next pass stores this minute whole.
        minute.synced = version if stored else None
        self._track(minute)
        return stored, changes.not_computed, minute.series_by_source()

    async def _rolled_up_hour(self, hour_ms: int) -> list[Sample]:
        """``rollup_hour`` of the hour's stored samples, read a few series at a time: an
        hour of 2,000 tables is 2.2 million samples, over 1.5 GiB as objects."""
        rolled: list[Sample] = []
        # Each chunk holds every minute of its series, so rolling up chunk by chunk is
        # rolling up the whole.
        async for chunk in self.store.samples_by_series(hour_ms, hour_ms + HOUR_MS):
            rolled += await asyncio.to_thread(rollup_hour, chunk, hour_ms)
        return rolled

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
