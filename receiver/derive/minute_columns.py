"""One minute's samples held as columns: the minutes an hour's rollup keeps open
(receiver/derive/rollup.py).

As objects, a sample of a latency series takes about 600 bytes (its tuple, four floats, the
int of its end, and a tuple and a float for each statistic); an hour of 2,000 tables keeps
about 150,000 of them open. As columns it takes about a sixth of that: its numbers as
doubles, its Series, labels and statistic names as references to objects it shares with
every other minute. The values come back out bit for bit (a double holds a float exactly,
-0.0 and NaN included), as ``Sample``s made when they are needed.
"""

from __future__ import annotations

import operator
from array import array
from collections.abc import Iterable, Iterator, KeysView, Sequence

from receiver.model import Pairs, Sample, Series, SeriesKey

_NUMBERS = 4
"""count, sum, min and max: doubles a row."""

Row = tuple[Series, int, int, float, float, float, float, tuple[str, ...], Sequence[float], Pairs]
"""A sample's fields in ``Sample``'s order, its statistics as their names and their values."""

_new_tuple = tuple.__new__
_NAME = operator.itemgetter(0)
_VALUE = operator.itemgetter(1)


class MinuteColumns:
    """The samples of one minute by series key, one per period (the last given of each)."""

    __slots__ = ("_interned", "_labels", "_names", "_numbers", "_periods", "_rows_of", "_series", "_stats", "_stats_at")

    def __init__(self) -> None:
        self._rows_of: dict[SeriesKey, int | tuple[int, ...]] = {}
        """The row of each key's sample, or its rows where it has several periods."""
        self._series: list[Series] = []
        self._labels: list[Pairs] = []
        self._periods = array("q")
        """start_ms and end_ms a row."""
        self._numbers = array("d")
        self._names: list[tuple[str, ...]] = []
        """The names of a row's statistics, in its sample's order."""
        self._stats_at = array("q")
        """Where a row's statistic values start in ``_stats``."""
        self._stats = array("d")
        self._interned: dict[tuple[str, ...], tuple[str, ...]] = {}
        """One tuple for each set of statistic names (a few for the whole minute)."""

    @classmethod
    def of(cls, samples: Iterable[Sample]) -> MinuteColumns:
        """A minute's samples, the last of each identity kept (as ``rollup_hour`` keeps it)."""
        periods: dict[SeriesKey, dict[tuple[int, int], Sample]] = {}
        for sample in samples:
            periods.setdefault(sample.series.key, {})[(sample.start_ms, sample.end_ms)] = sample
        columns = cls()
        for key, found in periods.items():
            columns.add(key, found.values())
        return columns

    def add(self, key: SeriesKey, samples: Iterable[Sample]) -> None:
        """Keep ``samples`` of ``key``, whose periods are not kept yet."""
        rows = [self._append(sample) for sample in samples]
        if not rows:
            return
        old = self._rows_of.get(key)
        if old is not None:
            rows = [*((old,) if isinstance(old, int) else old), *rows]
        self._rows_of[key] = rows[0] if len(rows) == 1 else tuple(rows)

    def _append(self, sample: Sample) -> int:
        row = len(self._series)
        series, start, end, count, total, low, high, stats, labels = sample
        self._series.append(series)
        self._labels.append(labels)
        self._periods.extend((start, end))
        self._numbers.extend((count, total, low, high))
        names = tuple(map(_NAME, stats))
        self._names.append(self._interned.setdefault(names, names))
        self._stats_at.append(len(self._stats))
        self._stats.extend(map(_VALUE, stats))
        return row

    def keys(self) -> KeysView[SeriesKey]:
        return self._rows_of.keys()

    def __iter__(self) -> Iterator[SeriesKey]:
        return iter(self._rows_of)

    def __contains__(self, key: object) -> bool:
        return key in self._rows_of

    def __len__(self) -> int:
        return len(self._rows_of)

    def samples(self, key: SeriesKey) -> list[Sample]:
        """The samples of ``key`` (none when it has none this minute)."""
        return [
            _new_tuple(Sample, (series, start, end, count, total, low, high, tuple(zip(names, values)), labels))
            for series, start, end, count, total, low, high, names, values, labels in self.rows(key)
        ]

    def rows(self, key: SeriesKey) -> list[Row]:
        """The samples of ``key`` as ``Row``s: for a caller that only reads their fields,
        without a ``Sample`` and its statistics' pairs made for each."""
        found = self._rows_of.get(key)
        if found is None:
            return []
        if isinstance(found, int):
            return [self._row(found)]
        return list(map(self._row, found))

    def _row(self, row: int) -> Row:
        numbers, at, names = self._numbers, row * _NUMBERS, self._names[row]
        if names:
            first = self._stats_at[row]
            values: Sequence[float] = self._stats[first : first + len(names)]
        else:
            values = ()
        return (
            self._series[row],
            self._periods[2 * row],
            self._periods[2 * row + 1],
            numbers[at],
            numbers[at + 1],
            numbers[at + 2],
            numbers[at + 3],
            names,
            values,
            self._labels[row],
        )
