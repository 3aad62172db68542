"""Table tags as labels on ``/metrics`` and OTLP (``--inventory-tag-labels team,env``).

A table's value gets a label ``tag_<key>`` (OTLP: the attribute ``tag.<key>``) for each
listed tag key the table has, from the inventory; an index has its table's tags. A table in
several regions may carry different tags in each: a value of one region takes that region's,
the merged value the tags of the first region (by name) that has the key. Values of the
account, and tables the inventory does not know, get no tag labels.
"""

from __future__ import annotations

import contextlib
import math
import re
import time
from collections.abc import Callable, Sequence

from receiver.inventory.documents import SERVICE_PREFIX, table_of
from receiver.model import TABLE, DerivedValue, InventoryItem
from receiver.store.base import Store, StoreError

REFRESH_S = 60.0
"""The inventory is read again at most this often."""

_NOT_LABEL = re.compile(r"[^A-Za-z0-9_]")

Tags = tuple[tuple[str, str], ...]
"""(tag key, value) pairs in the order the keys were listed."""
Labeller = Callable[[DerivedValue], Tags]


def label_name(key: str) -> str:
    """The Prometheus label of a tag key: ``tag_`` and the key with every other character '_'."""
    return "tag_" + _NOT_LABEL.sub("_", key)


def otlp_attribute(key: str) -> str:
    return "tag." + key


def no_tags(value: DerivedValue) -> Tags:
    return ()


def tag_labeller(items: Sequence[InventoryItem], keys: Sequence[str]) -> Labeller:
    """What ``keys`` each value's table has (as (key, value) pairs), from the inventory ``items``."""
    if not keys:
        return no_tags
    by_region: dict[tuple[str, str, str], Tags] = {}
    regions: dict[tuple[str, str], list[str]] = {}
    for item in items:
        if item.kind != TABLE:
            continue
        tags = table_of(item).get("tags") or {}
        by_region[(item.account, item.name, item.region)] = tuple((k, tags[k]) for k in keys if k in tags)
        regions.setdefault((item.account, item.name), []).append(item.region)
    merged: dict[tuple[str, str], Tags] = {}
    for (account, name), listed in regions.items():
        found: dict[str, str] = {}
        for region in sorted(listed):
            for key, value in by_region[(account, name, region)]:
                found.setdefault(key, value)
        merged[(account, name)] = tuple((k, found[k]) for k in keys if k in found)

    def labels(value: DerivedValue) -> Tags:
        if value.endpoint is None or not value.service.startswith(SERVICE_PREFIX):
            return ()
        account = value.service.removeprefix(SERVICE_PREFIX)
        table = value.endpoint.split("/", 1)[0]
        if value.region:
            return by_region.get((account, table, value.region), ())
        return merged.get((account, table), ())

    return labels


class TagLabels:
    """The labeller of the listed tag keys over the store's inventory, read at most every ``REFRESH_S``."""

    def __init__(self, store: Store, keys: Sequence[str], clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.keys = tuple(keys)
        self.clock = clock
        self._labeller: Labeller = no_tags
        self._read_at = -math.inf

    async def labeller(self) -> Labeller:
        """The current labeller; on a store error, the last one (tags change rarely)."""
        if self.keys and self.clock() - self._read_at >= REFRESH_S:
            with contextlib.suppress(StoreError):
                self._labeller = tag_labeller(await self.store.inventory(TABLE), self.keys)
            self._read_at = self.clock()
        return self._labeller
