"""Derived values packed in blocks: what one pass of the deriver wrote for one group of metrics.

Pure functions, no I/O: derived.py decides which blocks to write and read.

A block is ``zlib(orjson([places, metrics, rows, removed]))``:

- ``places``: ``[scope, service, endpoint, layer, instance, region, merged]`` of each entity
  the block has a value for, listed once however many metrics it has;
- ``metrics``: the metric names;
- ``rows``: ``[metric index, [place index, ...], [value, ...]]``, one per metric;
- ``removed``: ``[metric, service, endpoint, instance, region]`` of each value the pass removed.

A value's identity in its bucket is (metric, service, endpoint, instance, region), as
``derived_key`` has it. A bucket's values are the blocks of its chain applied in order: the
base, then each change (removals first, then upserts: last write wins). Floats go through
orjson's shortest round-trip form, so every finite double reads back bit for bit; the
text of numbers compresses about as well as their eight bytes (3-4 bytes a value on the
bench's workload), and names listed once per block are most of the rest.

Metrics are spread over ``GROUPS`` groups by a stable hash of the name (every replica puts a
metric in the same group): a reader of one metric reads its group's blocks only, and a pass
writes at most one block (item) per group, so its write units follow the values it changed
rather than the number of metrics.
"""

from __future__ import annotations

import math
import secrets
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import orjson

from receiver.model import DerivedKey, DerivedValue

GROUPS = 8
"""Groups of metrics; a block holds one group's values of one pass. Part of the layout:
every replica of a table must use the same number. Fewer groups write less (each block
lists its entities' names and rounds up to a write unit; at 2,000 tables 8 groups wrote 16 %
fewer units for values than 16) and read more for one metric (an eighth of a bucket)."""
COMPRESSION = 6
MAX_BLOCK_BYTES = 380_000
"""A DynamoDB item holds 400 KB; the rest is room for the keys and other attributes."""

ValueId = tuple[str, str, str | None, str | None, str]
"""(metric, service, endpoint, instance, region): a value's place in its bucket."""
State = dict[ValueId, DerivedValue]
"""A bucket's values (of some groups) by their identity."""


def group_of(metric: str) -> int:
    return zlib.crc32(metric.encode()) % GROUPS


def value_id(value: DerivedValue) -> ValueId:
    return (value.metric, value.service, value.endpoint, value.instance, value.region)


def removal_id(key: DerivedKey) -> ValueId:
    metric, service, endpoint, instance, region, _ = key
    return (metric, service, endpoint, instance, region)


class Block(NamedTuple):
    """One block's data as it is written: compressed, and how many values and removals it holds."""

    data: bytes
    rows: int


class PassIds:
    """Names for passes that never repeat: the writer's clock in microseconds (one more than
    the last if it has not moved on) and 8 hex digits drawn per store, so two replicas never
    name two passes alike."""

    def __init__(self, clock_ns: Callable[[], int] = time.time_ns) -> None:
        self.writer = secrets.token_hex(4)
        self._clock_ns = clock_ns
        self._last = 0
        self._lock = threading.Lock()

    def next(self) -> str:
        with self._lock:
            self._last = max(self._last + 1, self._clock_ns() // 1000)
            return f"{self._last:016d}{self.writer}"


# -- writing ----------------------------------------------------------------------------------


def by_group(
    upserts: Iterable[DerivedValue], removals: Iterable[ValueId]
) -> dict[int, tuple[list[DerivedValue], list[ValueId]]]:
    """The values and removals of each group that has some."""
    groups: dict[int, tuple[list[DerivedValue], list[ValueId]]] = {}
    for value in upserts:
        groups.setdefault(group_of(value.metric), ([], []))[0].append(value)
    for removal in removals:
        groups.setdefault(group_of(removal[0]), ([], []))[1].append(removal)
    return groups


def encode(values: Sequence[DerivedValue], removals: Sequence[ValueId]) -> list[Block]:
    """The blocks of one group's ``values`` and ``removals``: one, or more where one would
    not fit in an item (halved until each does; each part holds distinct values)."""
    data = _encode_one(values, removals)
    if len(data) <= MAX_BLOCK_BYTES:
        return [Block(data, len(values) + len(removals))]
    if len(values) + len(removals) <= 1:
        raise ValueError(f"one derived value takes {len(data)} bytes compressed, more than a block holds")
    if len(removals) > len(values):
        half = len(removals) // 2
        return encode(values, removals[:half]) + encode((), removals[half:])
    half = len(values) // 2
    return encode(values[:half], removals) + encode(values[half:], ())


def _encode_one(values: Sequence[DerivedValue], removals: Sequence[ValueId]) -> bytes:
    places: dict[tuple[Any, ...], int] = {}
    metrics: dict[str, int] = {}
    rows: dict[int, tuple[list[int], list[float]]] = {}
    for v in sorted(values, key=_order):
        place = (v.scope, v.service, v.endpoint, v.layer, v.instance, v.region, v.merged)
        index = places.setdefault(place, len(places))
        metric = metrics.setdefault(v.metric, len(metrics))
        found = rows.get(metric)
        if found is None:
            found = rows[metric] = ([], [])
        found[0].append(index)
        found[1].append(v.value)
    payload = [list(places), list(metrics), [[m, ids, vs] for m, (ids, vs) in rows.items()], list(removals)]
    return zlib.compress(orjson.dumps(payload), COMPRESSION)


def _order(value: DerivedValue) -> tuple[str, str, str, str, str]:
    # Sorted by entity, then metric: similar names and similar values end up near each other.
    return (value.service, value.endpoint or "", value.region, value.instance or "", value.metric)


# -- reading ----------------------------------------------------------------------------------


def apply(state: State, parts: Sequence[bytes], bucket_ms: int, wanted: Callable[[str], bool] | None = None) -> None:
    """Apply one pass (its blocks of one or more groups) to ``state``: removals, then values.

    ``wanted`` narrows to some metrics (the rest of the block is decoded and dropped)."""
    decoded = [orjson.loads(zlib.decompress(part)) for part in parts]
    for _, _, _, removed in decoded:
        for metric, service, endpoint, instance, region in removed:
            state.pop((metric, service, endpoint, instance, region), None)
    for places, metrics, rows, _ in decoded:
        for metric_index, place_indexes, values in rows:
            metric = metrics[metric_index]
            if wanted is not None and not wanted(metric):
                continue
            for index, value in zip(place_indexes, values, strict=True):
                scope, service, endpoint, layer, instance, region, merged = places[index]
                state[(metric, service, endpoint, instance, region)] = DerivedValue(
                    metric, scope, service, endpoint, layer, bucket_ms, float(value), instance, region, merged
                )


def differences(
    state: Mapping[ValueId, DerivedValue], values: Sequence[DerivedValue]
) -> tuple[list[DerivedValue], list[ValueId]]:
    """What turns ``state`` into ``values``: the values new or changed (to the bit), and the
    identities no longer there."""
    wanted = {value_id(value): value for value in values}
    upserts = [value for key, value in wanted.items() if not _same(state.get(key), value)]
    removals = [key for key in state if key not in wanted]
    return upserts, removals


def _same(old: DerivedValue | None, new: DerivedValue) -> bool:
    return old is not None and old == new and math.copysign(1.0, old.value) == math.copysign(1.0, new.value)
