"""What every decoder shares: interned Series, fast Sample construction, label merging.

A CloudWatch series repeats every minute, so decoders look it up by a key they can make
cheaply (raw label bytes, or the tuple they build anyway) and build it only on a miss.
Equal series are the same object whichever key found them.
"""

from __future__ import annotations

from collections.abc import Hashable

from receiver.model import Pairs, Sample, Series, Stats

MAX_INTERNED = 100_000
"""Bound on interned series; past it the cache starts over (cheap, and rare in practice)."""

_by_key: dict[Hashable, Series] = {}
_by_value: dict[Series, Series] = {}

lookup = _by_key.get
"""``lookup(key)``: the series remembered under ``key``, or None."""


def remember(key: Hashable, series: Series) -> Series:
    """Remember ``series`` under ``key``; returns the interned object equal to it."""
    if len(_by_key) >= MAX_INTERNED or len(_by_value) >= MAX_INTERNED:
        _by_key.clear()
        _by_value.clear()
    series = _by_value.setdefault(series, series)
    _by_key[key] = series
    return series


def intern(series: Series) -> Series:
    """The interned object equal to ``series`` (``series`` itself the first time): for decoders
    that keep their own key -> Series cache."""
    if len(_by_value) >= MAX_INTERNED:
        _by_key.clear()
        _by_value.clear()
    return _by_value.setdefault(series, series)


def interned_count() -> int:
    """How many distinct series are interned now."""
    return len(_by_value)


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
