"""The inventory's ceilings as samples the rules read (rules/aws-dynamodb/dynamodb-ceiling.yaml).

CloudWatch streams what a table consumes, not what it could take; the inventory knows the
latter (receiver/inventory/documents.py ``ceilings``). Before a bucket is evaluated, each
table and index that has DynamoDB samples in it gains one sample per figure the inventory
knows, in the namespace ``Receiver/DynamoDBInventory``: ``ReadCeiling``, ``WriteCeiling``,
``ReadWarmThroughput``, ``WriteWarmThroughput`` (units per second, as Sum with SampleCount 1).
A bucket is evaluated with the inventory as it is when it is derived: a past minute derived
again later uses today's ceilings.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Collection, Sequence

from receiver.inventory.documents import Ceiling, ceilings, limits_of, table_of
from receiver.model import LIMITS, MINUTE_MS, TABLE, InventoryItem, Sample, Series
from receiver.store import Store, StoreError

log = logging.getLogger("receiver.derive")

NAMESPACE = "Receiver/DynamoDBInventory"
DYNAMODB = "AWS/DynamoDB"
REFRESH_S = 60.0
"""The inventory is read again at most this often (it is polled every few minutes)."""

_FIGURES: tuple[tuple[str, Callable[[Ceiling], float | None]], ...] = (
    ("ReadCeiling", lambda c: c.read),
    ("WriteCeiling", lambda c: c.write),
    ("ReadWarmThroughput", lambda c: c.warm_read),
    ("WriteWarmThroughput", lambda c: c.warm_write),
)

Endpoint = tuple[str, str, str, str]
"""(account, region, table, index or '')."""


class InventoryCeilings:
    """The ceilings of every table the store's inventory knows, read at most every ``REFRESH_S``."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.clock = clock
        self._ceilings: dict[Endpoint, Ceiling] = {}
        self._read_at = -math.inf

    async def current(self) -> dict[Endpoint, Ceiling]:
        if self.clock() - self._read_at >= REFRESH_S:
            try:
                items = await self.store.inventory()
            except StoreError as exc:
                # Keep what was read last: ceilings change rarely, values must not wait for them.
                log.warning("could not read the inventory; ceilings stay as last read", extra={"error": str(exc)})
            else:
                self._ceilings = _by_endpoint(items)
            self._read_at = self.clock()
        return self._ceilings

    async def with_ceilings(self, samples: list[Sample], bucket_ms: int, step_ms: int) -> list[Sample]:
        """``samples`` and the ceiling samples of the tables and indexes they have DynamoDB samples of."""
        known = await self.current()
        if not known:
            return samples
        return [*samples, *ceiling_samples(samples, known, bucket_ms, step_ms)]


def _by_endpoint(items: Sequence[InventoryItem]) -> dict[Endpoint, Ceiling]:
    limits = {(i.account, i.region): limits_of(i) for i in items if i.kind == LIMITS}
    found: dict[Endpoint, Ceiling] = {}
    for item in items:
        if item.kind != TABLE:
            continue
        document = table_of(item)
        if document.get("deleted") is not None:
            continue
        for ceiling in ceilings(document, limits.get((item.account, item.region))):
            table, _, index = ceiling.endpoint.partition("/")
            found[(item.account, item.region, table, index)] = ceiling
    return found


def ceiling_samples(
    samples: Sequence[Sample], known: dict[Endpoint, Ceiling], bucket_ms: int, step_ms: int = MINUTE_MS
) -> list[Sample]:
    """One sample per figure the inventory knows of each table and index of ``samples``."""
    present: set[Endpoint] = set()
    for sample in samples:
        endpoint = endpoint_of(sample)
        if endpoint is not None:
            present.add(endpoint)
    return endpoint_ceilings(present, known, bucket_ms, step_ms)


def endpoint_of(sample: Sample) -> Endpoint | None:
    """The table or index a DynamoDB sample is of; None for other samples."""
    series = sample.series
    if series.namespace != DYNAMODB:
        return None
    named = dict(series.dimensions)
    table = named.get("TableName")
    if not table:
        return None
    return (series.account, series.region, table, named.get("GlobalSecondaryIndexName", ""))


def endpoint_ceilings(
    present: Collection[Endpoint], known: dict[Endpoint, Ceiling], bucket_ms: int, step_ms: int = MINUTE_MS
) -> list[Sample]:
    """``ceiling_samples`` of the tables and indexes ``present``."""
    added = []
    for endpoint in sorted(present):
        ceiling = known.get(endpoint)
        if ceiling is None:
            continue
        account, region, table, index = endpoint
        dimensions = (("GlobalSecondaryIndexName", index), ("TableName", table)) if index else (("TableName", table),)
        for metric, figure in _FIGURES:
            value = figure(ceiling)
            if value is not None:
                series = Series(account, region, NAMESPACE, metric, dimensions, "Count/Second")
                added.append(Sample(series, bucket_ms, bucket_ms + step_ms, 1.0, value, value, value))
    return added
