"""Decoded datapoints as columns: what ingest hands the store instead of a Sample each.

A ``Batch`` holds the datapoints of a slice of a delivery in ``Group``s, one per metric
(namespace and name) and period start, in the order their first datapoint came; inside a
group the datapoints keep the order they came in. A group is what the stores pack into one
block (receiver/store/packing.py), so they take its columns as they are, with no Python
object per datapoint on the way.

Both OpenTelemetry decoders fill the same batch: the compiled one (``_decode.pyx``) writes
the columns itself; the careful walk and the json decoder make Samples, which
``Batch.add_samples`` (the one converter) files the same way. So a batch is equal whichever
decoder made it, and the blocks packed from it are the same bytes.

What a batch holds is finite: the decoders refuse a record with a NaN or infinite
statistic (``non_finite``), and the stores check Samples handed to them before they
convert them (``receiver.store.base.check_finite``).
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable, Sequence
from itertools import chain, repeat
from operator import attrgetter, itemgetter
from typing import Any

from receiver.model import SAMPLE_FIELDS, Pairs, Sample, Series, Stats

MetricKey = tuple[str, str]
"""(namespace, metric name): what the datapoints of one group share besides their start."""

Layout = tuple[str, ...]
"""The names of a datapoint's extra statistics (``p50``, ``p99`` ...), sorted."""

_first = itemgetter(0)
_metric_key = attrgetter("namespace", "metric")
_second = itemgetter(1)
_NO_LAYOUT: Layout = ()


def _one(position: int) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    """A one-position ``itemgetter`` that, like a longer one, gives a tuple."""
    return lambda column: (column[position],)


class Group:
    """The datapoints of one metric at one period start, one column per field.

    ``stats`` holds every datapoint's extra statistics one after the other, each in its
    layout's (sorted) order; ``layouts`` says which names each datapoint has. The lists hold
    objects that many datapoints share (a Series, a labels tuple, a layout), so a datapoint
    costs a reference in each, not an object.
    """

    __slots__ = ("counts", "ends", "labels", "layouts", "maxs", "metric", "mins", "series", "start_ms", "stats", "sums")

    def __init__(self, metric: MetricKey, start_ms: int) -> None:
        self.metric = metric
        self.start_ms = start_ms
        self.series: list[Series] = []
        self.ends: array[int] = array("q")
        """Each datapoint's period end, epoch milliseconds."""
        self.counts: array[float] = array("d")
        self.sums: array[float] = array("d")
        self.mins: array[float] = array("d")
        self.maxs: array[float] = array("d")
        self.layouts: list[Layout] = []
        self.stats: array[float] = array("d")
        self.labels: list[Pairs] = []

    def __len__(self) -> int:
        return len(self.series)

    def __repr__(self) -> str:
        return f"Group({self.metric!r}, {self.start_ms}, {len(self)} datapoints)"

    def __eq__(self, other: object) -> bool:
        """Equal fields; numbers compared bit for bit (so -0.0 is not 0.0)."""
        if not isinstance(other, Group):
            return NotImplemented
        return (
            self.metric == other.metric
            and self.start_ms == other.start_ms
            and self.series == other.series
            and self.labels == other.labels
            and self.layouts == other.layouts
            and self.ends == other.ends
            and all(
                mine.tobytes() == theirs.tobytes()
                for mine, theirs in (
                    (self.counts, other.counts),
                    (self.sums, other.sums),
                    (self.mins, other.mins),
                    (self.maxs, other.maxs),
                    (self.stats, other.stats),
                )
            )
        )

    __hash__ = None  # type: ignore[assignment]  # mutable

    def add(self, sample: Sample) -> None:
        """Append one datapoint (of this group's metric and start)."""
        self.series.append(sample.series)
        self.ends.append(sample.end_ms)
        self.counts.append(sample.count)
        self.sums.append(sample.sum)
        self.mins.append(sample.min)
        self.maxs.append(sample.max)
        stats = sample.stats
        if stats:
            self.layouts.append(tuple(map(_first, stats)))
            self.stats.extend(map(_second, stats))
        else:
            self.layouts.append(_NO_LAYOUT)
        self.labels.append(sample.labels)

    def extend(
        self,
        series: Sequence[Series],
        ends: Sequence[int],
        counts: Sequence[float],
        sums: Sequence[float],
        mins: Sequence[float],
        maxs: Sequence[float],
        stats: Sequence[Stats],
        labels: Sequence[Pairs],
    ) -> None:
        """Append datapoints given as columns (``stats`` as Samples hold them)."""
        self.series.extend(series)
        self.ends.extend(ends)
        self.counts.extend(counts)
        self.sums.extend(sums)
        self.mins.extend(mins)
        self.maxs.extend(maxs)
        self.labels.extend(labels)
        first = stats[0]
        if not first and stats.count(first) == len(stats):  # the usual metric: no extra statistics
            self.layouts.extend(repeat(_NO_LAYOUT, len(stats)))
            return
        pairs: list[Any] = list(chain.from_iterable(chain.from_iterable(stats)))  # name, value, name, value ...
        self.stats.extend(pairs[1::2])
        names = pairs[0::2]
        layout = tuple(map(_first, first))
        if names == list(layout) * len(stats) and list(map(len, stats)).count(len(layout)) == len(stats):
            self.layouts.extend(repeat(layout, len(stats)))  # a metric's datapoints share their statistics
        else:
            self.layouts.extend(tuple(map(_first, one)) for one in stats)

    def stat_values(self) -> int:
        """How many values ``stats`` holds."""
        return len(self.stats)

    def truncate(self, count: int, stat_values: int) -> None:
        """Keep the first ``count`` datapoints (whose stats are ``stat_values`` values)."""
        for column in (self.series, self.layouts, self.labels):
            del column[count:]
        for numbers in (self.ends, self.counts, self.sums, self.mins, self.maxs):
            del numbers[count:]
        del self.stats[stat_values:]

    def stats_of(self) -> list[Stats]:
        """Each datapoint's stats as a Sample has them: ((name, value), ...)."""
        found: list[Stats] = []
        values = self.stats
        position = 0
        for layout in self.layouts:
            width = len(layout)
            if width:
                found.append(tuple(zip(layout, values[position : position + width])))
                position += width
            else:
                found.append(())
        return found

    def samples(self) -> list[Sample]:
        """The datapoints as Samples, in order."""
        return list(
            map(
                tuple.__new__,
                repeat(Sample),
                zip(
                    self.series,
                    repeat(self.start_ms),
                    self.ends,
                    self.counts,
                    self.sums,
                    self.mins,
                    self.maxs,
                    self.stats_of(),
                    self.labels,
                ),
            )
        )


Mark = tuple[int, list[tuple[int, int]]]
"""Where a batch stood: its groups, and each one's datapoints and stats values."""


class Batch:
    """Datapoints in groups of one metric and start (see the module's docstring).

    ``filler`` is the compiled decoder's state for this batch (its own table of the groups),
    None until it first fills the batch; ``rollback`` drops it.
    """

    __slots__ = ("_groups_by_key", "filler", "groups")

    def __init__(self) -> None:
        self.groups: list[Group] = []
        self._groups_by_key: dict[tuple[MetricKey, int], Group] = {}
        self.filler: Any = None

    @classmethod
    def of(cls, samples: Iterable[Sample]) -> Batch:
        """A batch of ``samples``."""
        batch = cls()
        batch.add_samples(samples)
        return batch

    def __len__(self) -> int:
        """How many datapoints the batch holds."""
        return sum(map(len, self.groups))

    def __repr__(self) -> str:
        return f"Batch({len(self.groups)} groups, {len(self)} datapoints)"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Batch):
            return NotImplemented
        return self.groups == other.groups

    __hash__ = None  # type: ignore[assignment]  # mutable

    def group(self, metric: MetricKey, start_ms: int) -> Group:
        """The group of ``metric`` at ``start_ms``, made (last) if the batch has none."""
        key = (metric, start_ms)
        found = self._groups_by_key.get(key)
        if found is None:
            found = self._groups_by_key[key] = Group(metric, start_ms)
            self.groups.append(found)
        return found

    def add_samples(self, samples: Iterable[Sample]) -> None:
        """File ``samples`` into their groups, in order: the one converter from Samples.

        Column by column (the careful walk and the json decoder hand over thousands at a
        time): each field is taken out of every sample in one C call, and each group's part
        of a column is gathered in one more; what runs per sample in Python is finding its
        group.
        """
        samples = samples if isinstance(samples, list) else list(samples)
        if not samples:
            return
        fields = list(chain.from_iterable(samples))  # every Sample's fields, one after the other
        width = SAMPLE_FIELDS
        series = fields[0::width]
        keys = zip(map(_metric_key, series), fields[1::width])
        positions: dict[tuple[MetricKey, int], list[int]] = {}
        for position, key in enumerate(keys):
            found = positions.get(key)
            if found is None:
                positions[key] = [position]
            else:
                found.append(position)
        columns = [series, *(fields[field::width] for field in range(2, width))]
        taken: Sequence[Sequence[Any]]
        for (metric, start_ms), chosen in positions.items():
            if len(chosen) == len(samples):
                taken = columns
            else:
                take = itemgetter(*chosen) if len(chosen) > 1 else _one(chosen[0])
                taken = [take(column) for column in columns]
            self.group(metric, start_ms).extend(*taken)

    def mark(self) -> Mark:
        """Where the batch stands now, for ``rollback``."""
        return (len(self.groups), [(len(group), group.stat_values()) for group in self.groups])

    def rollback(self, mark: Mark) -> None:
        """Drop every datapoint added since ``mark`` (a record that did not decode whole)."""
        count, sizes = mark
        for group in self.groups[count:]:
            del self._groups_by_key[(group.metric, group.start_ms)]
        del self.groups[count:]
        for group, (size, stat_values) in zip(self.groups, sizes):
            if len(group) != size:
                group.truncate(size, stat_values)
        self.filler = None

    def samples(self) -> list[Sample]:
        """Every datapoint as a Sample, group after group."""
        found: list[Sample] = []
        for group in self.groups:
            found += group.samples()
        return found

    def starts(self) -> set[int]:
        """The period starts of the datapoints."""
        return {group.start_ms for group in self.groups}


def as_batch(samples: Batch | Sequence[Sample]) -> Batch:
    """``samples`` as a Batch (a Batch as it is)."""
    return samples if isinstance(samples, Batch) else Batch.of(samples)
