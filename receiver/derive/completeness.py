"""When a minute is complete: all its expected series are in, or the settle time has passed.

CloudWatch sends a minute's datapoints over a few minutes, in pieces (Firehose buffers, and
each delivery carries what arrived by then). Alarms, ``/metrics`` and the OTLP export act on
complete minutes only. Waiting a fixed ``settle_s`` after each minute (300 s by default) is
always safe but slow; most minutes are whole long before that. So the deriver tells this
tracker, each time it derived a minute, which series that minute holds in the store, per
account and region, and the tracker decides:

- **Expected series.** For an account and region, the series it reported in each of the
  ``HISTORY_MINUTES`` newest minutes that are settled (ended ``settle_s`` ago, so they hold
  all they will hold). A series that comes and goes (throttling, errors) is not expected;
  neither is a new one, until it has reported that long. Each settled minute is folded into
  a count per series of the settled minutes in a row it reported in, and only the unsettled
  minutes keep their series: memory stays near one set of series per minute of settle time.
- **Complete by arrival.** A minute after the settled edge is complete once every account
  and region that had expected series has all of them, and the minutes before it are
  complete too (completeness moves forward in order). An account and region whose history
  this replica has not seen (it has just started, or missed one of those minutes) expects
  nothing and holds no minute up; a minute with no expected series at all waits for the
  settle time.
- **Complete by settling.** Every minute that ended ``settle_s`` ago is complete, whatever
  arrived.

A value that arrives after its minute was complete is derived as ever, and the minute's
values change: completeness says when a minute may be acted on, not that it is final.
Several replicas each decide from the minutes they derived (each reads what every replica
stored); the one that derives a minute after its last delivery sees it whole.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from receiver.model import MINUTE_MS, Sample

HISTORY_MINUTES = 10
"""Settled minutes in a row a series must have reported in to be expected: longer than most
bursts of throttling or errors, whose series stop when they end."""
KEPT_MINUTES = 20
"""Settled minutes whose counts are kept for ``statuses`` (the Pipeline page shows the last 10)."""

Source = tuple[str, str]
"""(account, region): one metric stream's worth of series."""
ALL_ARRIVED = "all_arrived"
SETTLED = "settled"


@dataclass(frozen=True, slots=True)
class MinuteCompleteness:
    """One account and region's state of one minute."""

    account: str
    region: str
    minute_ms: int
    expected: int
    """Series expected (0: none, its history unknown or empty)."""
    arrived: int
    """Of them, those in the store when the minute was last derived."""
    present: int
    """Every series in the store when the minute was last derived, expected or not."""


@dataclass(frozen=True, slots=True)
class MinuteStatus:
    """Whether a minute is complete, since when and why."""

    minute_ms: int
    complete: bool
    completed_ms: int | None
    """When this replica first found it complete (by arrival), or when it settled."""
    by: str | None
    """ALL_ARRIVED, SETTLED, or None while it is not complete."""
    sources: tuple[MinuteCompleteness, ...]


class Completeness:
    """Which minutes are complete (see the module docstring)."""

    def __init__(
        self, settle_s: float, clock: Callable[[], float] = time.time, history_minutes: int = HISTORY_MINUTES
    ) -> None:
        self.settle_ms = round(settle_s * 1000)
        self.clock = clock
        self.history_minutes = history_minutes
        self._present: dict[int, dict[Source, frozenset[int]]] = {}
        """Minutes not folded into the streaks yet -> account and region -> hashes of the
        series the store held when the minute was last derived."""
        self._streaks: dict[Source, dict[int, int]] = {}
        """Account and region -> series hash -> settled minutes in a row it reported in."""
        self._folded: int | None = None
        """The newest settled minute folded into the streaks."""
        self._expected_sets: dict[Source, frozenset[int]] = {}
        self._expected_at: int | None = None
        """The folded minute ``_expected_sets`` were worked out at."""
        self._summaries: dict[int, tuple[MinuteCompleteness, ...]] = {}
        """Minute -> its accounts and regions as last observed (counts only: bounded memory)."""
        self._arrived_at: dict[int, int] = {}
        """Minute -> when it was first found complete by arrival (epoch milliseconds)."""
        self._listeners: list[Callable[[], None]] = []
        self.completed_by: dict[str, int] = {ALL_ARRIVED: 0, SETTLED: 0}
        """Minutes this replica found complete, by how (counted once each)."""
        self._counted: set[int] = set()

    def on_complete(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` whenever a minute became complete by arrival."""
        self._listeners.append(listener)

    # -- what the deriver tells -------------------------------------------------------------

    def observe(self, minute_ms: int, samples: Iterable[Sample]) -> None:
        """The series the store holds for ``minute_ms`` (everything read to derive it)."""
        self.observe_series(minute_ms, series_by_source(samples))

    def observe_series(self, minute_ms: int, present: dict[Source, frozenset[int]]) -> None:
        """``observe`` with the series already gathered by ``series_by_source`` (which the
        deriver runs off the event loop: a minute of 2,000 tables takes about 0.1 s)."""
        now_ms = self._now_ms()
        self._fold(now_ms)
        if self._folded is None or minute_ms > self._folded:
            self._present[minute_ms] = present  # folded into the streaks once it settles
        self._summaries[minute_ms] = self._summary(minute_ms, present)
        self._forget(now_ms)
        if minute_ms not in self._arrived_at and minute_ms > self.settled_edge(now_ms) and self._all_in(present):
            self._arrived_at[minute_ms] = now_ms
            for listener in self._listeners:
                listener()

    # -- what alarms, /metrics and the export ask -------------------------------------------

    def settled_edge(self, now_ms: int) -> int:
        """The newest minute (its start) that ended ``settle_s`` before ``now_ms``."""
        edge = now_ms - MINUTE_MS - self.settle_ms
        return edge - edge % MINUTE_MS

    def latest_complete_minute(self, now_ms: int | None = None) -> int:
        """The newest minute such that it and every minute before it are complete."""
        now_ms = self._now_ms() if now_ms is None else now_ms
        latest = self.settled_edge(now_ms)
        while latest + MINUTE_MS in self._arrived_at:
            latest += MINUTE_MS
        self._count(latest)
        return latest

    def is_complete(self, minute_ms: int, now_ms: int | None = None) -> bool:
        return minute_ms <= self.latest_complete_minute(now_ms)

    def status(self, minute_ms: int, now_ms: int | None = None) -> MinuteStatus:
        now_ms = self._now_ms() if now_ms is None else now_ms
        arrived_at = self._arrived_at.get(minute_ms)
        complete = minute_ms <= self.latest_complete_minute(now_ms)
        if not complete:
            completed, by = None, None
        elif arrived_at is not None:
            completed, by = arrived_at, ALL_ARRIVED
        else:
            completed, by = minute_ms + MINUTE_MS + self.settle_ms, SETTLED
        sources = self._summaries.get(minute_ms)
        if sources is None:  # not observed: what is expected of it, nothing arrived
            sources = self._summary(minute_ms, {})
        return MinuteStatus(minute_ms, complete, completed, by, sources)

    def statuses(self, start_ms: int, end_ms: int, now_ms: int | None = None) -> list[MinuteStatus]:
        """``status`` of every minute from ``start_ms`` to ``end_ms`` this replica observed."""
        return [self.status(m, now_ms) for m in sorted(self._summaries) if start_ms <= m <= end_ms]

    # -- the rules above ------------------------------------------------------------------

    def _fold(self, now_ms: int) -> None:
        """Fold the minutes that have settled into the streaks, oldest first. A minute that
        does not follow the last one folded (this replica did not observe the one between)
        starts every streak afresh: nothing is known of the minute missed."""
        edge = self.settled_edge(now_ms)
        for minute_ms in sorted(m for m in self._present if m <= edge):
            present = self._present.pop(minute_ms)
            if self._folded is not None and minute_ms <= self._folded:
                continue  # derived again after it was folded: its streaks are counted already
            if self._folded is None or minute_ms != self._folded + MINUTE_MS:
                self._streaks.clear()
            self._streaks = {
                source: {h: self._streaks.get(source, {}).get(h, 0) + 1 for h in series}
                for source, series in present.items()
            }
            self._folded = minute_ms

    def _expected(self) -> dict[Source, frozenset[int]]:
        """Each account and region's series that reported in each of the last
        ``history_minutes`` settled minutes, the newest of them the settled edge or the minute
        before (streaks that stopped earlier say nothing of now)."""
        now_ms = self._now_ms()
        self._fold(now_ms)
        edge = self.settled_edge(now_ms)
        if self._folded is None or self._folded < edge - MINUTE_MS:
            return {}
        # The streaks change only when a minute is folded: work the sets out once per fold.
        if self._expected_at != self._folded:
            wanted = self.history_minutes
            found = {s: frozenset(h for h, n in streak.items() if n >= wanted) for s, streak in self._streaks.items()}
            self._expected_sets = {source: series for source, series in found.items() if series}
            self._expected_at = self._folded
        return self._expected_sets

    def _summary(self, minute_ms: int, present: dict[Source, frozenset[int]]) -> tuple[MinuteCompleteness, ...]:
        expected_of = self._expected()
        summary = []
        for account, region in sorted(set(expected_of) | set(present)):
            expected = expected_of.get((account, region), frozenset())
            stored = present.get((account, region), frozenset())
            summary.append(
                MinuteCompleteness(account, region, minute_ms, len(expected), len(expected & stored), len(stored))
            )
        return tuple(summary)

    def _all_in(self, present: dict[Source, frozenset[int]]) -> bool:
        expected_of = self._expected()
        return bool(expected_of) and all(
            expected <= present.get(source, frozenset()) for source, expected in expected_of.items()
        )

    def _count(self, latest: int) -> None:
        # Each minute is counted once, by how it became complete, as the edge passes it.
        for minute_ms in [m for m in self._summaries if m <= latest and m not in self._counted]:
            self._counted.add(minute_ms)
            self.completed_by[ALL_ARRIVED if minute_ms in self._arrived_at else SETTLED] += 1

    def _forget(self, now_ms: int) -> None:
        oldest = self.settled_edge(now_ms) - KEPT_MINUTES * MINUTE_MS
        for minute_ms in [m for m in self._summaries if m < oldest]:
            del self._summaries[minute_ms]
            self._arrived_at.pop(minute_ms, None)
            self._counted.discard(minute_ms)
        for minute_ms in [m for m in self._present if m < oldest]:
            del self._present[minute_ms]

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)


def series_by_source(samples: Iterable[Sample]) -> dict[Source, frozenset[int]]:
    """The hashes of the samples' series, by account and region."""
    by_source: dict[Source, set[int]] = {}
    for sample in samples:
        series = sample.series
        by_source.setdefault((series.account, series.region), set()).add(hash(series))
    return {source: frozenset(found) for source, found in by_source.items()}
