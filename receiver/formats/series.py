"""What every decoder shares: the series cache, fast Sample construction, label merging.

A CloudWatch series repeats every minute, so decoders look it up by a key they can make
cheaply (its bytes on the wire, or the tuple they build anyway) and build it only on a miss.
Equal series are the same object whichever key found them. What decoding remembers lives
in a SeriesCache the application owns and passes to every decode, never in module globals:
two applications in one process (tests, a replay beside a server) then share nothing, and
the cache's memory is the application's to bound.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from receiver.model import Pairs, Sample, Series, Stats

MAX_INTERNED = 100_000
"""A cache's default bound on distinct series; past it the cache starts over (cheap, and rare
in practice: a receiver sees a few thousand series)."""
KEYS_PER_SERIES = 2
"""Keys a cache holds per series before it starts over: a series is found by one key in a
receiver fed one format, two when a second format or the careful walk meets it too."""
MAX_RESOURCES = 1024
"""Resources remembered (OpenTelemetry attributes -> account, region, labels); past it only
that table starts over: a receiver has a few per account, region and stream."""
MAX_PERCENTILE_NAMES = 1000
"""Quantiles whose statistic names are remembered; further ones are named afresh each time."""

Resource = tuple[str, str, Pairs]
"""The account, region and sample labels one OpenTelemetry resource gives."""


class SeriesCache:
    """Every series the decoders have met, by value and under the keys they find it by.

    One per application: ``create_app`` makes it and ingest passes it to every
    ``decode_record``, so a series parsed once is never parsed again while the cache holds
    it. Decoding threads share it safely: each change is one dict operation under the GIL,
    and tables are emptied in place, so methods a decoder bound to locals stay valid across
    a reset.

    The keyed table maps whatever key a pure-Python decoder builds (keys name their format,
    so they never collide) to an interned Series, and, for datapoints that carry labels of
    their own (1.0 attributes besides CloudWatch's three), to those labels. The compiled
    decoder keeps its keys, a series' bytes on the wire, in a table of its own,
    ``wire_keys``, which it makes at first use and which starts over with the keyed table.
    The resource and percentile-name tables serve the OpenTelemetry decoders. Past
    ``limit`` distinct series, or KEYS_PER_SERIES keys per series allowed in either keyed
    table, the series and their keys start over; the other tables have bounds of their own.
    Own labels outlive that reset: they are a function of their key alone, so a stale entry
    is never wrong, and a thread that found a series just before the reset still finds its
    labels. When the own labels reach their bound, the keys start over with them, so that no
    key is found without its labels. (The compiled decoder keeps a datapoint's own labels in
    the entry of its key, so they come and go together.)
    """

    __slots__ = (
        "_by_key",
        "_by_value",
        "_own",
        "_percentiles",
        "_resources",
        "limit",
        "lookup",
        "own_labels",
        "percentile",
        "resource",
        "wire_keys",
    )

    def __init__(self, limit: int = MAX_INTERNED) -> None:
        if limit < 1:
            raise ValueError("a series cache must hold at least one series")
        self.limit = limit
        self._by_key: dict[Hashable, Series] = {}
        self._by_value: dict[Series, Series] = {}
        self._own: dict[Hashable, Pairs] = {}
        self._resources: dict[Hashable, Resource] = {}
        self._percentiles: dict[float, str] = {}
        self.wire_keys: Any = None
        """The compiled decoder's table of series by their bytes on the wire (its WireKeys),
        or None until it first decodes with this cache."""
        # Bound dict methods: decoders call these per datapoint or bind them to locals, and a
        # bound dict.get costs no Python frame.
        self.lookup: Callable[[Hashable], Series | None] = self._by_key.get
        """``lookup(key)``: the series remembered under ``key``, or None."""
        self.own_labels: Callable[[Hashable], Pairs | None] = self._own.get
        """``own_labels(key)``: the datapoint's own labels remembered under ``key``, or None."""
        self.resource: Callable[[Hashable], Resource | None] = self._resources.get
        """``resource(key)``: the resource remembered under ``key``, or None."""
        self.percentile: Callable[[float], str | None] = self._percentiles.get
        """``percentile(quantile)``: the statistic name remembered for ``quantile``, or None."""

    def __len__(self) -> int:
        """How many distinct series are interned now."""
        return len(self._by_value)

    def remember(self, key: Hashable, series: Series, own_labels: Pairs = ()) -> Series:
        """Remember ``series`` (and the datapoint's ``own_labels``, if any) under ``key``;
        returns the interned object equal to ``series``."""
        if len(self._by_key) >= self.limit * KEYS_PER_SERIES:
            self.start_over()
        series = self.intern(series)
        if own_labels:
            if len(self._own) >= self.limit * KEYS_PER_SERIES:
                # The keys go with their labels: a key found afterwards always has its own
                # labels. A new table, not a cleared one: a decode under way keeps reading
                # the labels of the keys it found before.
                self.start_over()
                self._own = {}
                self.own_labels = self._own.get
            self._own[key] = own_labels  # first: a thread that finds the series finds these too
        self._by_key[key] = series
        return series

    def intern(self, series: Series) -> Series:
        """The interned object equal to ``series`` (``series`` itself the first time)."""
        found = self._by_value.get(series)
        if found is not None:
            return found
        if len(self._by_value) >= self.limit:
            self.start_over()
        return self._by_value.setdefault(series, series)  # atomic: two threads get one object

    def remember_resource(self, key: Hashable, resource: Resource) -> Resource:
        """Remember what an OpenTelemetry resource gives under ``key``; returns ``resource``."""
        if len(self._resources) >= MAX_RESOURCES:
            self._resources.clear()
        self._resources[key] = resource
        return resource

    def remember_percentile(self, quantile: float, name: str) -> str:
        """Remember the statistic name of ``quantile`` (up to MAX_PERCENTILE_NAMES); returns it."""
        if len(self._percentiles) < MAX_PERCENTILE_NAMES:
            self._percentiles[quantile] = name
        return name

    def start_over(self) -> None:
        """Forget the series and their keys (a bound was reached)."""
        self._by_key.clear()
        self._by_value.clear()
        if self.wire_keys is not None:
            self.wire_keys.clear()

    def clear(self) -> None:
        """Forget everything: the next decode parses every series afresh."""
        self._by_key.clear()
        self._by_value.clear()
        self._own.clear()
        self._resources.clear()
        self._percentiles.clear()
        if self.wire_keys is not None:
            self.wire_keys.clear()


_new_tuple = tuple.__new__


def new_sample(
    series: Series,
    start_ms: int,
    end_ms: int,
    count: float,
    sum: float,  # shadows the builtin: the field's name
    min: float,  # the field's name too
    max: float,  # the field's name too
    stats: Stats,
    labels: Pairs,
) -> Sample:
    """``Sample(...)`` with the same result, built without the named tuple's Python-level __new__."""
    return _new_tuple(Sample, (series, start_ms, end_ms, count, sum, min, max, stats, labels))


def merge_labels(own: dict[str, str], extra: Pairs) -> Pairs:
    """``extra`` and ``own`` merged and sorted by name; on a clash ``own`` wins."""
    if not extra:
        return tuple(sorted(own.items()))
    merged = dict(extra)
    merged.update(own)
    return tuple(sorted(merged.items()))
