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


def interned_count() -> int:
    """How many distinct series are interned now."""
    return len(_by_value)


# Sample is a frozen dataclass: its __init__ sets each field through object.__setattr__,
# about twice the cost of setting the slots directly. Decoders build one Sample per
# datapoint, so they use the slot descriptors (tests check this matches Sample(...)).
_new = object.__new__
_SLOT_NAMES = (
    "series", "start_ms", "end_ms", "count", "sum", "min", "max", "stats", "labels",
)
SAMPLE_BUILDER = (_new, *(Sample.__dict__[name].__set__ for name in _SLOT_NAMES))
"""``object.__new__`` and the slot setters of Sample's fields, in _SLOT_NAMES order, for
loops that inline new_sample."""
(_, _set_series, _set_start, _set_end, _set_count, _set_sum, _set_min, _set_max, _set_stats,
 _set_labels) = SAMPLE_BUILDER


def new_sample(
    series: Series,
    start_ms: int,
    end_ms: int,
    count: float,
    sum: float,  # noqa: A002 - the field's name
    min: float,  # noqa: A002
    max: float,  # noqa: A002
    stats: Stats,
    labels: Pairs,
) -> Sample:
    """``Sample(...)`` with the same result, built faster."""
    sample = _new(Sample)
    _set_series(sample, series)
    _set_start(sample, start_ms)
    _set_end(sample, end_ms)
    _set_count(sample, count)
    _set_sum(sample, sum)
    _set_min(sample, min)
    _set_max(sample, max)
    _set_stats(sample, stats)
    _set_labels(sample, labels)
    return sample


def merge_labels(own: dict[str, str], extra: Pairs) -> Pairs:
    """``extra`` and ``own`` merged and sorted by name; on a clash ``own`` wins."""
    if not extra:
        return tuple(sorted(own.items()))
    merged = dict(extra)
    merged.update(own)
    return tuple(sorted(merged.items()))
