"""The packed block: the datapoints of one metric at one period start, in one bytes value.

Both the SQLite and the DynamoDB store keep samples as blocks, one row (one item) per
metric, start and write: a few hundred datapoints per row instead of one row each. This
module turns columns into a block and back; it knows nothing of the backends, which say
what the block's integers mean (SQLite: series and labels ids; DynamoDB: numbers in the
item's own series and labels tables).

Layout of a block (version 1; every number little-endian):

====================  ===========================================================================
bytes                 what
====================  ===========================================================================
1                     the version, 1
4                     H, the length of the header (unsigned)
H                     the header, a JSON array: ``[n, series code, end offset, layouts,
                      layout code, labels code, labels value, units]`` (below)
n x series width      the series column: unsigned integers, ascending
n x 8                 end - start of each datapoint (int64), unless the header's end offset
                      holds for all of them (then it is left out)
4n x 8                float64: every count, then every sum, every min, every max
n x layout width      which layout each datapoint's stats have, unless all share one
m x 8                 float64: each datapoint's stats values in its layout's order
n x labels width      the labels column, unless every datapoint has the header's labels value
====================  ===========================================================================

- The codes are ``array`` typecodes: ``B``, ``H``, ``I`` (1, 2, 4 bytes, unsigned) or ``q``
  (8 bytes, signed), the narrowest that holds the column. A code of null means the column
  is left out: the end offset, the one layout or the labels value stands for every row.
- A *layout* is the list of stat names of a datapoint (``["p50", "p90", ...]``); a metric's
  datapoints nearly always share one, and the rest of the metrics have none (``layouts`` is
  then ``[[]]``).
- ``units`` lists ``[position, unit]`` for datapoints whose unit is not their series' (the
  backend says what a series' unit is); usually empty.
- Datapoints are sorted by (series, end) and distinct in it: a block holds each identity
  once. ``pack`` keeps the last of repeated identities, so a request that holds a
  datapoint twice keeps the later one, as the receiver always has.

Why this shape: every column is one ``array`` conversion and every row back one ``map``
over zipped columns, so no Python code runs per datapoint either way (what is left is the
Python objects a ``Sample`` is made of); float64 keeps every finite double exactly; the
series column ascending lets a reader take one range of series (bisect) without decoding
the rest.
"""

from __future__ import annotations

import sys
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Sequence
from itertools import accumulate, chain, repeat
from operator import itemgetter
from struct import Struct
from typing import Any, NamedTuple

import orjson

from receiver.batch import Group
from receiver.model import Pairs, Sample, Series, Stats
from receiver.store.base import check_finite

VERSION = 1
_PREFIX = Struct("<BI")
_LITTLE = sys.byteorder == "little"
_FLOAT = "d"
_END = "q"
_WIDTHS = (("B", 1 << 8), ("H", 1 << 16), ("I", 1 << 32))
for _code, _ in _WIDTHS:
    if array(_code).itemsize != {"B": 1, "H": 2, "I": 4}[_code]:  # pragma: no cover - exotic platforms
        raise ImportError(f"array typecode {_code!r} has an unexpected size on this platform")
_first, _start_of = itemgetter(0), itemgetter(1)


class PackError(ValueError):
    """Bytes that are not a block of a known version (a damaged row or item)."""


# -- columns -------------------------------------------------------------------------------


def int_code(values: Sequence[int]) -> str:
    """The narrowest array typecode holding every one of ``values``."""
    if not values:
        return "B"
    low, high = min(values), max(values)
    if low >= 0:
        for code, bound in _WIDTHS:
            if high < bound:
                return code
    return "q"


def _bytes(code: str, values: Iterable[Any]) -> bytes:
    column = array(code, values)
    if not _LITTLE:  # pragma: no cover - big-endian hosts
        column.byteswap()
    return column.tobytes()


def _doubles(*columns: Sequence[float]) -> bytes:
    """The columns one after the other as float64 (``fromlist`` is the fastest way in)."""
    values: array[float] = array("d")
    for column in columns:
        if isinstance(column, array):
            values.extend(column)  # one copy of the bytes
        else:
            values.fromlist(column if isinstance(column, list) else list(column))
    if not _LITTLE:  # pragma: no cover - big-endian hosts
        values.byteswap()
    return values.tobytes()


def _column(code: str, data: memoryview, offset: int, count: int) -> tuple[array[Any], int]:
    """``count`` values of typecode ``code`` at ``offset``; and the offset after them."""
    try:
        column = array(code)
    except (TypeError, ValueError):
        raise PackError(f"a packed block names the column type {code!r}, which is not one") from None
    end = offset + count * column.itemsize
    if end > len(data):
        raise PackError(f"a packed block ends after {len(data)} bytes, inside a column that needs {end}")
    column.frombytes(data[offset:end])
    if not _LITTLE:  # pragma: no cover - big-endian hosts
        column.byteswap()
    return column, end


def all_equal(column: Sequence[Any]) -> bool:
    """Whether every value of a non-empty ``column`` equals its first."""
    if isinstance(column, array):
        # Bytes compared in one C call: ``array.count`` makes a Python number of each value.
        data = column.tobytes()
        return data == data[: column.itemsize] * len(column)
    return column.count(column[0]) == len(column)


def gather(column: Sequence[Any], positions: Sequence[int]) -> Sequence[Any]:
    """``column``'s values at ``positions`` (one C call)."""
    if len(positions) == 1:
        return (column[positions[0]],)
    return itemgetter(*positions)(column)  # type: ignore[no-any-return]


def group_positions(keys: Iterable[Any]) -> dict[Any, list[int]]:
    """The positions of each distinct key, in order."""
    groups: dict[Any, list[int]] = {}
    get = groups.get
    for position, key in enumerate(keys):
        found = get(key)
        if found is None:
            groups[key] = [position]
        else:
            found.append(position)
    return groups


class Packed(NamedTuple):
    """One block of ``pack``: a metric's datapoints at one start, from one slice."""

    metric: Any
    """The metric key the caller gave these datapoints."""
    start_ms: int
    series: Sequence[int]
    """The block's series column (ascending), for a caller that keeps a table of them."""
    labels: Sequence[int]
    """The labels integer of each datapoint, in block order."""
    origin: Sequence[int]
    """Where each datapoint was in what was given to ``pack`` (or ``pack_group``), in block order."""
    data: bytes
    columns: Any = None
    """The block's datapoints as columns, for ``halves``."""


def pack_group(
    group: Group,
    metric: Any,
    series: Sequence[int],
    labels: Sequence[int] | int,
    units: Sequence[str | int] | None,
    limit: int = 0,
) -> list[Packed]:
    """The blocks of one Group of a Batch (receiver/batch.py), holding each identity once:
    its columns as they are, no Python object per datapoint.

    ``metric`` is the group's metric key for the caller; ``series``, ``labels`` and
    ``units`` are as ``pack`` takes them, for each datapoint of the group. The batch's
    numbers are finite (decoders refuse others), so they are not checked again here.
    """
    if not len(group):
        return []
    columns = _Columns(
        range(len(group)),
        series,
        group.ends,
        (group.counts, group.sums, group.mins, group.maxs),
        group.layouts,
        group.stats,
        labels,
        units,
    )
    return _blocks(metric, group.start_ms, columns, limit)


def pack(
    samples: Sequence[Sample],
    metrics: Sequence[Any],
    series: Sequence[int],
    labels: Sequence[int] | int,
    units: Sequence[str | int] | None,
    limit: int = 0,
) -> list[Packed]:
    """The blocks of a slice of samples: one per (metric, start), holding each identity once.

    ``metrics`` is the metric key of each sample and ``series`` its series integer (equal
    exactly when the series keys are); ``labels`` each sample's labels integer, or the one
    they all share; ``units`` for each sample 0 when it has its series' unit and that unit
    otherwise, or None when all have their series'. Of two samples of one identity the later
    is kept. With ``limit``, a block holds at most that many datapoints (more blocks then).
    The blocks are those ``pack_group`` makes of the same datapoints.

    Raises StoreError, naming the sample, when a statistic is NaN or infinite: a block
    keeps finite numbers only.
    """
    if not samples:
        return []
    check_finite(samples)
    found: list[Packed] = []
    for (metric, start), positions in group_positions(zip(metrics, map(_start_of, samples))).items():
        chosen = gather(samples, positions)
        stats = list(map(_stats_of, chosen))
        columns = _Columns(
            positions,
            gather(series, positions),
            [sample.end_ms for sample in chosen],
            (
                [sample.count for sample in chosen],
                [sample.sum for sample in chosen],
                [sample.min for sample in chosen],
                [sample.max for sample in chosen],
            ),
            [tuple(map(_first, one)) for one in stats],
            list(chain.from_iterable(map(_second, one) for one in stats)),
            labels if isinstance(labels, int) else gather(labels, positions),
            None if units is None else gather(units, positions),
        )
        found += _blocks(metric, start, columns, limit)
    return found


def halves(packed: Packed) -> list[Packed]:
    """A block of ``pack`` or ``pack_group`` cut in two blocks (it holds two datapoints or more)."""
    columns: _Columns = packed.columns
    middle = columns.n // 2
    return [
        _packed(packed.metric, packed.start_ms, columns.range(lo, hi)) for lo, hi in ((0, middle), (middle, columns.n))
    ]


def _blocks(metric: Any, start: int, columns: _Columns, limit: int) -> list[Packed]:
    order = identity_order(columns.series, columns.ends)
    if order is not None:
        columns = columns.reordered(order)
    step = limit or columns.n
    if step >= columns.n:
        return [_packed(metric, start, columns)]
    return [
        _packed(metric, start, columns.range(first, min(first + step, columns.n)))
        for first in range(0, columns.n, step)
    ]


def _packed(metric: Any, start: int, columns: _Columns) -> Packed:
    return Packed(
        metric, start, columns.series, columns.labels_column(), columns.origin, columns.encode(start), columns
    )


_stats_of = itemgetter(7)
_second = itemgetter(1)


class _Columns:
    """One block's datapoints as columns, and the integers beside them."""

    __slots__ = (
        "counts",
        "ends",
        "labels",
        "layouts",
        "maxs",
        "mins",
        "n",
        "origin",
        "series",
        "stat_lengths",
        "stat_values",
        "sums",
        "units",
    )

    def __init__(
        self,
        origin: Sequence[int],
        series: Sequence[int],
        ends: Sequence[int],
        numbers: tuple[Sequence[float], Sequence[float], Sequence[float], Sequence[float]],
        layouts: Sequence[tuple[str, ...]],
        stat_values: Sequence[float],
        labels: Sequence[int] | int,
        units: Sequence[str | int] | None,
    ) -> None:
        self.n = len(series)
        self.origin = origin
        self.series = series
        self.ends = ends
        self.counts, self.sums, self.mins, self.maxs = numbers
        self.layouts = layouts
        """The stat names of each datapoint."""
        self.stat_values = stat_values
        """Every datapoint's stats values, one datapoint after the other."""
        self.labels = labels
        self.units = units
        self.stat_lengths: list[int] = list(map(len, layouts))

    def range(self, lo: int, hi: int) -> _Columns:
        """Datapoints ``lo`` to ``hi``."""
        skip = sum(self.stat_lengths[:lo])
        width = sum(self.stat_lengths[lo:hi])
        return _Columns(
            self.origin[lo:hi],
            self.series[lo:hi],
            self.ends[lo:hi],
            (self.counts[lo:hi], self.sums[lo:hi], self.mins[lo:hi], self.maxs[lo:hi]),
            self.layouts[lo:hi],
            self.stat_values[skip : skip + width],
            self.labels if isinstance(self.labels, int) else self.labels[lo:hi],
            None if self.units is None else self.units[lo:hi],
        )

    def reordered(self, order: Sequence[int]) -> _Columns:
        """These columns in ``order`` (which may leave positions out): the rare slow path."""
        offsets = [0, *accumulate(self.stat_lengths)]
        values = self.stat_values
        return _Columns(
            gather(self.origin, order),
            gather(self.series, order),
            gather(self.ends, order),
            (
                gather(self.counts, order),
                gather(self.sums, order),
                gather(self.mins, order),
                gather(self.maxs, order),
            ),
            gather(self.layouts, order),
            list(chain.from_iterable(values[offsets[i] : offsets[i + 1]] for i in order)),
            self.labels if isinstance(self.labels, int) else gather(self.labels, order),
            None if self.units is None else gather(self.units, order),
        )

    def labels_column(self) -> Sequence[int]:
        return [self.labels] * self.n if isinstance(self.labels, int) else self.labels

    def encode(self, start_ms: int) -> bytes:
        """These datapoints (in identity order) as a block."""
        n = self.n
        series = self.series
        parts: list[bytes] = []
        series_code = int_code(series)
        parts.append(_bytes(series_code, series))
        ends = self.ends
        end_offset: int | None = ends[0] - start_ms
        if not all_equal(ends):
            end_offset = None
            parts.append(_bytes(_END, [end - start_ms for end in ends]))
        parts.append(_doubles(self.counts, self.sums, self.mins, self.maxs))
        layouts, layout_column = self._layouts()
        if layout_column is not None:
            parts.append(layout_column[1])
        parts.append(_doubles(self.stat_values))
        labels_code: str | None = None
        labels_value = self.labels if isinstance(self.labels, int) else self.labels[0]
        if not isinstance(self.labels, int) and self.labels.count(labels_value) != n:
            labels_code = int_code(self.labels)
            labels_value = 0
            parts.append(_bytes(labels_code, self.labels))
        units: list[list[Any]] = []
        if self.units is not None and self.units.count(0) != n:
            units = [[i, unit] for i, unit in enumerate(self.units) if unit != 0]
        header = orjson.dumps(
            [
                n,
                series_code,
                end_offset,
                layouts,
                None if layout_column is None else layout_column[0],
                labels_code,
                labels_value,
                units,
            ]
        )
        return b"".join([_PREFIX.pack(VERSION, len(header)), header, *parts])

    def _layouts(self) -> tuple[list[list[str]], tuple[str, bytes] | None]:
        """The stat layouts, and (code, layout column) unless every datapoint has the first."""
        layouts = self.layouts
        first = layouts[0]
        # list.count finds a shared layout tuple by identity before it compares.
        if layouts.count(first) == self.n:
            return [list(first)], None
        # Several layouts: one integer per datapoint names its layout (rare: a metric's
        # datapoints have the same statistics).
        known: dict[tuple[str, ...], int] = {}
        indexes = [known.setdefault(tuple(one), len(known)) for one in layouts]
        code = int_code(indexes)
        return [list(names) for names in known], (code, _bytes(code, indexes))


def identity_order(series: Sequence[int], ends: Sequence[int]) -> list[int] | None:
    """The order putting datapoints by (series, end), ascending, keeping only the last of
    each pair; None when they are in that order already (the usual case: decoders meet
    series in the order they were first seen, and a request holds each datapoint once).
    """
    keys: Sequence[Any] = series
    if not all_equal(ends):
        keys = list(zip(series, ends))
    if len(set(keys)) < len(keys):
        last = dict(zip(keys, range(len(keys))))  # a later position replaces an earlier one
        return [last[key] for key in sorted(last)]
    if sorted(keys) == list(keys):
        return None
    return sorted(range(len(keys)), key=keys.__getitem__)


# -- decoding -------------------------------------------------------------------------------


class Block:
    """A block's header and its series column: enough to choose datapoints by series.

    ``rows(lo, hi)`` then decodes the datapoints at positions ``lo`` to ``hi``.
    """

    __slots__ = (
        "_after_series",
        "_data",
        "_end_offset",
        "_labels_code",
        "_labels_value",
        "_layout_code",
        "_layouts",
        "_units",
        "n",
        "series",
        "start_ms",
    )

    def __init__(self, data: bytes, start_ms: int) -> None:
        view = memoryview(data)
        if len(view) < _PREFIX.size:
            raise PackError(f"a packed block of {len(view)} bytes is too short for its header")
        version, header_length = _PREFIX.unpack_from(view)
        if version != VERSION:
            raise PackError(f"a packed block has version {version}; this receiver reads version {VERSION}")
        offset = _PREFIX.size + header_length
        try:
            header = orjson.loads(view[_PREFIX.size : offset])
            n, series_code, end_offset, layouts, layout_code, labels_code, labels_value, units = header
        except (orjson.JSONDecodeError, ValueError, TypeError) as exc:
            raise PackError(f"a packed block's header is damaged ({exc})") from None
        self._data = view
        self.start_ms = start_ms
        self.n: int = n
        self.series, self._after_series = _column(series_code, view, offset, n)
        """The series column, ascending."""
        self._end_offset: int | None = end_offset
        self._layouts: list[tuple[str, ...]] = [tuple(layout) for layout in layouts]
        self._layout_code: str | None = layout_code
        self._labels_code: str | None = labels_code
        self._labels_value: int = labels_value
        self._units: list[list[Any]] = units

    @property
    def uniform_end(self) -> int | None:
        """end - start shared by every datapoint, or None when they differ."""
        return self._end_offset

    def span(self, first: int, last: int) -> tuple[int, int]:
        """The positions ``lo`` to ``hi`` of the datapoints whose series lies in ``[first, last]``."""
        return bisect_left(self.series, first), bisect_right(self.series, last)

    def ends(self, lo: int = 0, hi: int | None = None) -> Sequence[int]:
        """The end of each datapoint from ``lo`` to ``hi``."""
        hi = self.n if hi is None else hi
        if self._end_offset is not None:
            return [self.start_ms + self._end_offset] * (hi - lo)
        column, _ = _column(_END, self._data, self._after_series + lo * 8, hi - lo)
        return [self.start_ms + offset for offset in column]

    def labels(self, lo: int = 0, hi: int | None = None) -> set[int]:
        """The labels integers the datapoints ``lo`` to ``hi`` use."""
        if self._labels_code is None:
            return {self._labels_value}
        hi = self.n if hi is None else hi
        offset = self._labels_offset()
        width = array(self._labels_code).itemsize
        column, _ = _column(self._labels_code, self._data, offset + lo * width, hi - lo)
        return set(column)

    def _labels_offset(self) -> int:
        """Where the labels column starts: after every other column."""
        n = self.n
        offset = self._after_series + (0 if self._end_offset is not None else n * 8) + 4 * n * 8
        layouts = self._layouts
        if self._layout_code is None:
            return offset + len(layouts[0]) * n * 8
        indexes, offset = _column(self._layout_code, self._data, offset, n)
        return offset + sum(map([len(layout) for layout in layouts].__getitem__, indexes)) * 8

    def rows(
        self,
        series_of: Callable[[int], Series],
        labels_of: Callable[[int], Pairs],
        with_unit: Callable[[int, str], Series],
        lo: int = 0,
        hi: int | None = None,
    ) -> list[Sample]:
        """The datapoints at positions ``lo`` to ``hi`` as Samples.

        ``series_of`` and ``labels_of`` turn the block's integers into a Series and labels;
        ``with_unit`` gives the Series of a series integer with another unit (for a
        datapoint whose unit is not its series').
        """
        n = self.n
        hi = n if hi is None else hi
        count = hi - lo
        if count <= 0:
            return []
        data = self._data
        offset = self._after_series
        if self._end_offset is None:
            ends: Iterable[int] = self.ends(lo, hi)
            offset += n * 8
        else:
            ends = repeat(self.start_ms + self._end_offset, count)
        # Only the range's part of each column is decoded: the hour pass reads a metric's
        # blocks a few hundred series at a time.
        counts, sums, mins, maxs = (_column(_FLOAT, data, offset + (j * n + lo) * 8, count)[0] for j in range(4))
        stats, offset = self._stats(offset + 4 * n * 8, lo, hi)
        if offset > len(data):  # the range's columns were in bounds, the whole block is not
            raise PackError(f"a packed block ends after {len(data)} bytes, inside a column that needs {offset}")
        if self._labels_code is None:
            labels: Iterable[Pairs] = repeat(labels_of(self._labels_value), count)
        else:
            width = array(self._labels_code).itemsize
            column, _ = _column(self._labels_code, data, offset + lo * width, count)
            labels = map(labels_of, column)
        series: list[Series] = list(map(series_of, self.series[lo:hi]))
        for position, unit in self._units:
            if lo <= position < hi:
                series[position - lo] = with_unit(self.series[position], unit)
        return list(
            map(
                tuple.__new__,
                repeat(Sample),
                zip(series, repeat(self.start_ms), ends, counts, sums, mins, maxs, stats, labels),
            )
        )

    def _stats(self, offset: int, lo: int, hi: int) -> tuple[Iterable[Stats], int]:
        """The stats of datapoints ``lo`` to ``hi``; and the offset after the stats values."""
        n = self.n
        layouts = self._layouts
        if self._layout_code is None:
            names = layouts[0]
            width = len(names)
            after = offset + width * n * 8
            if not width:
                return repeat((), hi - lo), after
            mine, _ = _column(_FLOAT, self._data, offset + lo * width * 8, (hi - lo) * width)
            # One (name, value) pair column per stat, zipped into one tuple per datapoint.
            columns = [zip(repeat(name), mine[j::width]) for j, name in enumerate(names)]
            return zip(*columns), after
        indexes, offset = _column(self._layout_code, self._data, offset, n)
        widths = list(map([len(layout) for layout in layouts].__getitem__, indexes))
        first = sum(widths[:lo])
        values, _ = _column(_FLOAT, self._data, offset + first * 8, sum(widths[lo:hi]))
        after = offset + sum(widths) * 8
        found: list[Stats] = []
        position = 0
        for index, width in zip(indexes[lo:hi], widths[lo:hi]):
            found.append(tuple(zip(layouts[index], values[position : position + width])))
            position += width
        return found, after


Part = tuple[Block, int, int, list[Sample]]
"""A block, the positions ``lo`` to ``hi`` read from it, and their samples."""


def latest(parts: Sequence[Part]) -> list[Sample]:
    """The samples of several blocks of one metric and start, given in the order they were
    written, with each identity once: as its last write has it.

    The blocks' series integers must be equal exactly when the series are, across blocks
    (SQLite's series ids are).
    """
    if len(parts) == 1:
        return parts[0][3]
    merged: dict[Any, Sample] = {}
    by_end = _by_end(parts)
    for block, lo, hi, samples in parts:
        merged.update(zip(_keys(block, lo, hi, by_end), samples))
    return list(merged.values())


def distinct(parts: Sequence[Part]) -> int:
    """How many identities the parts hold together (their samples are not looked at)."""
    if len(parts) == 1:
        _, lo, hi, _ = parts[0]
        return hi - lo
    by_end = _by_end(parts)
    return len(set().union(*(_keys(block, lo, hi, by_end) for block, lo, hi, _ in parts)))


def _by_end(parts: Sequence[Part]) -> bool:
    """Whether identities must include the end: some datapoints' periods differ in length."""
    ends = {block.uniform_end for block, *_ in parts}
    return len(ends) > 1 or None in ends


def _keys(block: Block, lo: int, hi: int, by_end: bool) -> Iterable[Any]:
    keys = block.series[lo:hi]
    return zip(keys, block.ends(lo, hi)) if by_end else keys
