"""An hour's minute samples rolled up per series into one "average minute", and kept in step
as its minutes change.

``rollup_hour`` defines the rollup (receiver/derive/deriver.py says why it is this one): per
series, Σ SampleCount ÷ 60 and Σ Sum ÷ 60 (``math.fsum``), the least Minimum, the largest
Maximum and the largest of each statistic, with the series and labels of its latest period;
the same identity twice counts once.

``HourRollup`` keeps those rolled samples in step with the hour's minutes without holding
the hour: the minutes that changed last (``OPEN_MINUTES``) are kept as samples (in columns,
receiver/derive/minute_columns.py), so a commit that changes one of them again replaces its
part; the others are *settled*, folded into one
running total per series that is exact:

- sums are kept as integers in units of 2**-1074 (every finite float is a whole number of
  them), so adding is exact and the total, rounded once, is what ``math.fsum`` gives over the
  same values in any order. ``fsum`` can raise OverflowError where a partial sum passes the
  largest float, which depends on the order, so a series whose values could come near
  (``periods × largest value ≥ 2**1020``) keeps all its samples and is rolled up by
  ``rollup_hour`` itself;
- the least Minimum and largest Maximum keep the earliest period among equal values, and
  each statistic the latest, as ``min``, ``max`` and the fold of ``_largest_stats`` do
  (0.0 and -0.0 are equal but not the same value).

A settled minute that changes again (a late correction) cannot be taken back out of its
totals: ``replace_minute`` raises ``Unsettled`` and the caller rolls the hour up again from
every sample stored for it.
"""

from __future__ import annotations

import itertools
import math
import operator
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from receiver.derive.minute_columns import MinuteColumns, Row
from receiver.model import HOUR_MS, MINUTE_MS, Pairs, Sample, Series, SeriesKey, Stats

MINUTES_PER_HOUR = HOUR_MS // MINUTE_MS

OPEN_MINUTES = 4
"""Minutes of an hour kept as samples, the most recently changed: metric streams deliver a
minute within a few minutes, so the minutes that change are the last few."""

Period = tuple[int, int]
"""A sample's (start_ms, end_ms)."""


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
_START = operator.itemgetter(1)
_COUNT = operator.itemgetter(3)
_SUM = operator.itemgetter(4)
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


# -- the exact running totals of settled minutes -----------------------------------------

_UNITS_BITS = 1074
_ONE = 1 << _UNITS_BITS
"""2**-1074, the smallest float, as the unit of the exact sums: the float 1.0 is _ONE units."""
_NEAR_OVERFLOW = 2.0**1020
"""A series whose periods × largest |count| or |sum| reaches this may make ``fsum`` overflow
on the way (``rollup_hour`` then takes each value's sixtieth): it is kept as samples."""


def _units(value: float) -> int:
    """``value`` in units of 2**-1074, exactly (finite values only)."""
    numerator, denominator = value.as_integer_ratio()
    return numerator << (_UNITS_BITS + 1 - denominator.bit_length())


def _units_total(values: Sequence[float]) -> int:
    """Σ values in units of 2**-1074, exactly; whole numbers (most counts) add as ints."""
    if all(map(float.is_integer, values)):
        return sum(map(int, values)) << _UNITS_BITS
    return sum(map(_units, values))


@dataclass(slots=True)
class _Totals:
    """Some periods of one series rolled up exactly (see the module docstring)."""

    count: int
    """Σ SampleCount in units of 2**-1074."""
    sum: int
    periods: int
    largest: float
    """The largest |SampleCount| or |Sum| of the periods."""
    low: float
    low_at: Period
    high: float
    high_at: Period
    stats: dict[str, tuple[float, tuple[int, int, int]]]
    """name -> (largest value, (start, end, place in its sample's stats)): the latest wins ties."""
    last_at: Period
    series: Series
    labels: Pairs

    @classmethod
    def of_row(cls, row: Row) -> _Totals:
        """The totals of one sample given as a ``Row`` of its open minute."""
        series, start, end, count, total, low, high, names, values, labels = row
        at = (start, end)
        found: dict[str, tuple[float, tuple[int, int, int]]] = {}
        for place, name in enumerate(names):
            entry = (values[place], (start, end, place))
            old = found.get(name)
            found[name] = entry if old is None else _later_largest(old, entry)
        return cls(
            _units(count), _units(total), 1, max(abs(count), abs(total)), low, at, high, at, found, at, series, labels
        )

    @classmethod
    def of_parts(cls, parts: Sequence[Sample]) -> _Totals:
        """The totals of a series' samples, one per period, in period order."""
        _, starts, ends, counts, sums, lows, highs, stats_of, _ = zip(*parts)
        low, high = min(lows), max(highs)
        first_low, first_high = lows.index(low), highs.index(high)  # min and max keep the first of equals
        # Which of equal values wins matters only for zeros (0.0 and -0.0): equal non-zero
        # floats are the same value, so only a zero's place is looked up.
        found = {
            name: (value, _last_place(stats_of, starts, ends, name) if value == 0 else _ANY_PLACE)
            for name, value in _largest_stats(stats_of)
        }
        last = parts[-1]
        return cls(
            _units_total(counts),
            _units_total(sums),
            len(parts),
            max(max(map(abs, counts)), max(map(abs, sums))),
            low,
            (starts[first_low], ends[first_low]),
            high,
            (starts[first_high], ends[first_high]),
            found,
            (last.start_ms, last.end_ms),
            last.series,
            last.labels,
        )

    def add(self, other: _Totals) -> None:
        """Fold in ``other``, whose periods are not among these."""
        self.count += other.count
        self.sum += other.sum
        self.periods += other.periods
        self.largest = max(self.largest, other.largest)
        if other.low < self.low or (other.low == self.low and other.low_at < self.low_at):
            self.low, self.low_at = other.low, other.low_at
        if other.high > self.high or (other.high == self.high and other.high_at < self.high_at):
            self.high, self.high_at = other.high, other.high_at
        stats = self.stats
        for name, entry in other.stats.items():
            old = stats.get(name)
            stats[name] = entry if old is None else _later_largest(old, entry)
        if other.last_at > self.last_at:
            self.last_at, self.series, self.labels = other.last_at, other.series, other.labels

    def copy(self) -> _Totals:
        return _Totals(
            self.count,
            self.sum,
            self.periods,
            self.largest,
            self.low,
            self.low_at,
            self.high,
            self.high_at,
            dict(self.stats),
            self.last_at,
            self.series,
            self.labels,
        )

    @property
    def near_overflow(self) -> bool:
        return self.periods * self.largest >= _NEAR_OVERFLOW

    def rolled(self, hour_ms: int) -> Sample:
        """The hour's 'average minute' of these periods, as ``rollup_hour`` makes it."""
        # An int divided by an int is correctly rounded, as fsum's result is.
        return Sample(
            series=self.series,
            start_ms=hour_ms,
            end_ms=hour_ms + HOUR_MS,
            count=(self.count / _ONE) / MINUTES_PER_HOUR,
            sum=(self.sum / _ONE) / MINUTES_PER_HOUR,
            min=self.low,
            max=self.high,
            stats=tuple((name, self.stats[name][0]) for name in sorted(self.stats)),
            labels=self.labels,
        )


_ANY_PLACE = (-1, -1, -1)
"""The place of a statistic's largest value where it is not a zero (no tie can change it)."""


def _last_place(
    stats_of: Sequence[Stats], starts: Sequence[int], ends: Sequence[int], name: str
) -> tuple[int, int, int]:
    """(start, end, place) of the last zero of statistic ``name`` among the periods' stats."""
    for index in range(len(stats_of) - 1, -1, -1):
        stats = stats_of[index]
        for place in range(len(stats) - 1, -1, -1):
            if stats[place][0] == name and stats[place][1] == 0:
                return (starts[index], ends[index], place)
    raise ValueError(f"no zero of {name}")


def _later_largest(
    old: tuple[float, tuple[int, int, int]], new: tuple[float, tuple[int, int, int]]
) -> tuple[float, tuple[int, int, int]]:
    """The larger of two statistics, the later one of equal values."""
    if new[0] > old[0] or (new[0] == old[0] and new[1] > old[1]):
        return new
    return old


# -- an hour kept in step ----------------------------------------------------------------


class Unsettled(Exception):
    """A settled minute changed: the hour must be rolled up again from all its samples."""


class HourRollup:
    """The rolled samples of one hour (see the module docstring)."""

    def __init__(self, hour_ms: int, open_minutes: int = OPEN_MINUTES) -> None:
        self.hour_ms = hour_ms
        self.open_minutes = open_minutes
        self._settled: dict[SeriesKey, _Totals] = {}
        self._kept: dict[SeriesKey, list[Sample]] = {}
        """The settled samples of series near overflow, rolled up by ``rollup_hour``."""
        self._settled_minutes: set[int] = set()
        self._open: OrderedDict[int, MinuteColumns] = OrderedDict()
        """The minutes kept as samples, least recently changed first."""
        self._rolled: dict[SeriesKey, Sample] = {}

    @property
    def settled_minutes(self) -> frozenset[int]:
        return frozenset(self._settled_minutes)

    def samples(self) -> list[Sample]:
        """The hour's rolled samples: ``rollup_hour`` of every sample of its minutes."""
        return list(self._rolled.values())

    def add_series(self, samples: Sequence[Sample], open_minutes: Collection[int]) -> None:
        """Take every sample of some series not seen yet (a chunk of ``samples_by_series``);
        those of ``open_minutes`` are kept as samples, the rest settled."""
        opened_minutes = sorted(open_minutes)
        for minute in opened_minutes:
            self._open.setdefault(minute, MinuteColumns())
        starts_of_chunk = {sample.start_ms for sample in samples}
        self._settled_minutes.update(
            minute for minute in {start - start % MINUTE_MS for start in starts_of_chunk} if minute not in open_minutes
        )
        for group in _by_series(samples):
            # The same identity twice is one datapoint: keep the last of each period.
            periods = dict(zip(map(_PERIOD, group), group))
            parts = [periods[period] for period in sorted(periods)]
            key = parts[0].series.key
            seen = key in self._rolled
            settling = parts
            opening: list[Sample] = []
            if opened_minutes:
                starts = list(map(_START, parts))  # ascending: parts are in period order
                settling = []
                taken = 0
                for minute in opened_minutes:
                    first, after = bisect_left(starts, minute), bisect_left(starts, minute + MINUTE_MS)
                    if first < after:
                        settling += parts[taken:first]
                        self._open[minute].add(key, parts[first:after])
                        opening += parts[first:after]
                        taken = after
                settling += parts[taken:]
            largest = max(max(map(abs, map(_COUNT, parts))), max(map(abs, map(_SUM, parts))))
            near_overflow = len(parts) * largest >= _NEAR_OVERFLOW
            settled = None
            if near_overflow:
                self._kept[key] = settling
            elif settling:
                settled = self._settled[key] = _Totals.of_parts(settling)
            if seen:
                self._refresh((key,))
            elif near_overflow:
                (self._rolled[key],) = rollup_hour(parts, self.hour_ms)
            else:
                # A series not seen yet: its parts in hand are all it has, none near overflow.
                self._rolled[key] = _with_parts(settled, opening).rolled(self.hour_ms)

    def replace_minute(self, minute_ms: int, samples: Iterable[Sample]) -> None:
        """Make the minute starting at ``minute_ms`` hold exactly ``samples`` (all of them).

        Raises Unsettled when the minute is settled; the rollup is then unusable."""
        if minute_ms in self._settled_minutes:
            raise Unsettled(minute_ms)
        new = MinuteColumns.of(samples)
        old = self._open.pop(minute_ms, None)
        self._open[minute_ms] = new
        while len(self._open) > self.open_minutes:
            minute, settling = self._open.popitem(last=False)
            self._settled_minutes.add(minute)
            self._settle(settling)
        self._refresh(new.keys() if old is None else old.keys() | new.keys())

    def _settle(self, minute: MinuteColumns) -> None:
        """Fold a minute's samples into the settled totals (no rolled sample changes)."""
        settled, kept = self._settled, self._kept
        for key in minute:
            if key in kept:
                kept[key].extend(minute.samples(key))
                continue
            totals = settled.get(key)
            for row in minute.rows(key):
                if totals is None:
                    totals = settled[key] = _Totals.of_row(row)
                else:
                    totals.add(_Totals.of_row(row))

    def _refresh(self, keys: Iterable[SeriesKey]) -> None:
        """Roll the series of ``keys`` up again from their settled totals and open samples.

        Raises Unsettled when a series with settled totals comes near overflow."""
        for key in keys:
            found = [row for minute in self._open.values() for row in minute.rows(key)]
            kept = self._kept.get(key)
            if kept is None:
                settled = self._settled.get(key)
                totals = settled.copy() if settled is not None and found else settled
                for row in found:
                    if totals is None:
                        totals = _Totals.of_row(row)
                    else:
                        totals.add(_Totals.of_row(row))
                if totals is None:
                    self._rolled.pop(key, None)
                    continue
                if not totals.near_overflow:
                    self._rolled[key] = totals.rolled(self.hour_ms)
                    continue
                if settled is not None:
                    raise Unsettled(key)  # its settled values are needed one by one
                kept = self._kept[key] = []
            everything = kept + [sample for minute in self._open.values() for sample in minute.samples(key)]
            if everything:
                (self._rolled[key],) = rollup_hour(everything, self.hour_ms)
            else:
                self._rolled.pop(key, None)


def _with_parts(settled: _Totals | None, parts: Sequence[Sample]) -> _Totals:
    """``settled`` (left as it is) with ``parts`` (in period order) folded in; at least one of
    them holds something."""
    if not parts:
        assert settled is not None
        return settled
    added = _Totals.of_parts(parts)
    if settled is None:
        return added
    totals = settled.copy()
    totals.add(added)
    return totals
