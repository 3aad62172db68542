"""Derived values and bucket versions in the DynamoDB table.

Items (beside those of items.py):

=====================  ==========================  ==================  ===========================
item                   pk                          sk                  attributes
=====================  ==========================  ==================  ===========================
bucket pointer         ``V#<step ms>``             ``<bucket>``        version, derived_version,
                                                                       full_version, value_count
values of one metric   ``D#<step ms>#<metric>``    ``<bucket>``        metric, version, rows
                                                                       (zlib-compressed JSON)
derived metric         ``DM``                      ``<metric>``        metric
entity                 ``E``                       ``<service>#...``   service, layer, endpoint,
                                                   ``[@<region>]``     entity_region, last_ms
=====================  ==========================  ==================  ===========================

``<bucket>`` is the bucket's start in 13 digits. Every item has ``expires_at``: the bucket's
start plus the retention of its step (minutes or hours).

How replicas stay consistent without multi-item transactions (a minute of a large
account has thousands of values, a transaction takes 100 items):

- A commit ADDs one to ``version`` of each minute and hour it touched, after its samples
  are written (an atomic counter: concurrent commits never lose a bump).
- ``put_derived`` writes one item per metric holding the bucket's values of that metric,
  each under the condition that the stored item is older (``version < :v``): a slow
  replica computing an older version never overwrites a newer one. Then it moves the
  bucket pointer's ``derived_version`` forward, again only if that is older; if not, it
  answers False.
- ``put_changes`` (a deriver keeping a bucket in step, receiver/derive/partitioned.py)
  rewrites only the items of the metrics that changed, read, changed and written at the
  new version, then moves ``derived_version`` from the version it was computed over to
  the new one, under that very condition: if another computation stored values since, it
  answers False and the deriver puts the whole bucket. ``full_version`` is the version of
  the last whole ``put``: the items of metrics that did not change stay at older versions.
- Readers keep a metric's item only if its version is at least the pointer's
  ``full_version`` (``derived_version`` on pointers older than changes). So a metric the
  newest values no longer have is dropped without being deleted, and an item an older
  replica wrote after a newer whole put finished is never shown. (An entity gone from a
  metric goes with the rewrite of that metric's item.) While a ``put_derived`` is under
  way a reader may see some metrics of the new version and others of the previous one;
  each metric's values are always those of one version.
- One item per metric and bucket keeps the cost of a recomputation to a few writes
  instead of one per value (a bucket is recomputed after every commit that touches it).
  The items of one metric over a time range are one Query, which is what the query API
  asks for. A metric's values in one bucket must compress to under ~380 KB (tens of
  thousands of entities).

``prune`` does nothing: DynamoDB's TTL deletes expired items, and every read here skips
items past their ``expires_at`` by the store's clock, so expiry looks the same from every
replica before TTL gets to them. Entities are listed from the entity items, each carrying
the latest minute it had a value in; an entity whose values were later recomputed away
stays listed until that minute leaves the retention.
"""

from __future__ import annotations

import functools
import math
import zlib
from collections.abc import Callable, Collection, Sequence

import orjson

from receiver.model import HOUR_MS, MINUTE_MS, DerivedKey, DerivedValue, derived_key
from receiver.store.base import Entity, StoreError, Totals, entities_of
from receiver.store.dynamodb.items import CATALOG_REFRESH_S, MAX_START_MS, Item, escape
from receiver.store.dynamodb.runner import Runner
from receiver.store.dynamodb.table import BATCH_GET_KEYS, DynamoDBTable

DERIVED_CATALOG_PK = "DM"
ENTITY_PK = "E"
MAX_ROWS_BYTES = 380_000
"""DynamoDB items hold 400 KB; the rest is room for the keys and other attributes."""

_NEWER = "attribute_not_exists(version) OR version < :v"
_NOT_OLDER = "attribute_not_exists(version) OR version <= :v"
"""What a change rewrites: values at the same version may change (a ceiling, not a sample)."""
_POINTER_NEWER = "attribute_not_exists(derived_version) OR derived_version < :v"
_ENTITY_CACHE_MAX = 100_000


def pointer_key(step_ms: int, bucket_ms: int) -> Item:
    return {"pk": {"S": f"V#{step_ms}"}, "sk": {"S": f"{bucket_ms:013d}"}}


def rows_key(step_ms: int, metric: str, bucket_ms: int) -> Item:
    return {"pk": {"S": f"D#{step_ms}#{escape(metric)}"}, "sk": {"S": f"{bucket_ms:013d}"}}


def entity_sk(service: str, layer: str, endpoint: str | None, region: str = "") -> str:
    # "=" marks a named endpoint, so no endpoint and an empty name stay apart; each region
    # an entity reports from has an item of its own, so each has its own latest minute.
    tail = "" if endpoint is None else f"={escape(endpoint)}"
    at = f"@{escape(region)}" if region else ""
    return f"{escape(service)}#{escape(layer)}#{tail}{at}"


def encode_rows(values: Sequence[DerivedValue]) -> bytes:
    rows = [[v.scope, v.service, v.endpoint, v.layer, v.value, v.instance, v.region, v.merged] for v in values]
    return zlib.compress(orjson.dumps(rows), 6)


def decode_rows(metric: str, bucket_ms: int, data: bytes) -> list[DerivedValue]:
    # Rows written before values had regions have six fields: merged values of no region.
    return [
        DerivedValue(metric, scope, service, endpoint, layer, bucket_ms, float(value), instance, *regional)
        for scope, service, endpoint, layer, value, instance, *regional in orjson.loads(zlib.decompress(data))
    ]


def _value_order(value: DerivedValue) -> tuple[int, str, str, str, str]:
    return (value.time_ms, value.metric, value.service, value.endpoint or "", value.instance or "")


class DerivedValues:
    """Bucket versions and derived values in one table (see the module docstring)."""

    def __init__(
        self,
        table: DynamoDBTable,
        runner: Runner,
        *,
        retention_s: dict[int, int],
        clock: Callable[[], float],
    ) -> None:
        self._table = table
        self._runner = runner
        self._retention_s = retention_s
        self._clock = clock
        self._metrics_written: dict[str, float] = {}  # derived metric -> when its catalog item was written
        self._entities_seen: dict[tuple[str, str, str | None, str], int] = {}  # (entity, region) -> latest minute

    def _expires_at(self, step_ms: int, bucket_ms: int) -> int:
        return bucket_ms // 1000 + self._retention_s[step_ms]

    def _now(self) -> dict[str, str]:
        return {"N": str(int(self._clock()))}

    # -- versions --------------------------------------------------------------------

    async def bump(self, buckets: Sequence[tuple[int, int]], deadline: float) -> None:
        """Add one to the version of each (step, bucket): after the samples, before the request id."""
        jobs = [
            functools.partial(
                self._table.update,
                pointer_key(step_ms, bucket_ms),
                "SET expires_at = :e ADD version :one",
                {":one": {"N": "1"}, ":e": {"N": str(self._expires_at(step_ms, bucket_ms))}},
                None,
                deadline,
            )
            for step_ms, bucket_ms in buckets
        ]
        await self._runner.gather(jobs)

    async def versions(self, step_ms: int, buckets: Collection[int]) -> dict[int, int]:
        found = dict.fromkeys(buckets, 0)
        for item in await self._get_many([pointer_key(step_ms, bucket) for bucket in sorted(found)]):
            if "version" in item:
                found[int(item["sk"]["S"])] = int(item["version"]["N"])
        return found

    async def _get_many(self, keys: list[Item]) -> list[Item]:
        """The items at ``keys`` that exist, in parallel BatchGetItem calls."""
        chunks = [keys[i : i + BATCH_GET_KEYS] for i in range(0, len(keys), BATCH_GET_KEYS)]
        found = await self._runner.gather([functools.partial(self._table.batch_get, chunk) for chunk in chunks])
        return [item for items in found for item in items]

    async def stale_buckets(self, step_ms: int, since_ms: int) -> list[int]:
        query = functools.partial(
            self._table.query,
            KeyConditionExpression="pk = :pk AND sk >= :lo",
            FilterExpression=(
                "(attribute_not_exists(derived_version) OR derived_version < version) AND expires_at > :now"
            ),
            ExpressionAttributeValues={
                ":pk": pointer_key(step_ms, 0)["pk"], ":lo": {"S": f"{max(since_ms, 0):013d}"}, ":now": self._now(),
            },
            ProjectionExpression="sk",
        )  # fmt: skip
        return [int(item["sk"]["S"]) for item in await self._runner.control(query)]

    # -- values ----------------------------------------------------------------------

    async def put(self, step_ms: int, bucket_ms: int, version: int, values: Sequence[DerivedValue]) -> bool:
        _check_finite(values, bucket_ms)
        key = pointer_key(step_ms, bucket_ms)
        pointer = await self._runner.control(self._table.get, key, "derived_version")
        if pointer is not None and "derived_version" in pointer and int(pointer["derived_version"]["N"]) >= version:
            return False  # values at least as new are stored: write nothing
        by_metric: dict[str, list[DerivedValue]] = {}
        for value in values:
            by_metric.setdefault(value.metric, []).append(value)
        await self._write_catalog(by_metric)
        jobs = [
            functools.partial(self._put_rows, step_ms, bucket_ms, metric, version, metric_values, _NEWER)
            for metric, metric_values in by_metric.items()
        ]
        # A False is a metric a newer version already holds: left as it is.
        await self._runner.gather(jobs)
        moved = await self._runner.control(
            self._table.update,
            key,
            "SET derived_version = :v, full_version = :v, value_count = :n, expires_at = :e",
            {
                ":v": {"N": str(version)},
                ":n": {"N": str(len(values))},
                ":e": {"N": str(self._expires_at(step_ms, bucket_ms))},
            },
            _POINTER_NEWER,
        )
        if moved and step_ms == MINUTE_MS:
            await self._touch_entities(values, bucket_ms)
        return moved

    async def put_changes(
        self,
        step_ms: int,
        bucket_ms: int,
        base_version: int,
        version: int,
        upserts: Sequence[DerivedValue],
        removals: Collection[DerivedKey],
        total: int,
    ) -> bool:
        """Rewrite the items of the metrics that changed, then move the pointer from
        ``base_version`` to ``version`` (see the module docstring)."""
        _check_finite(upserts, bucket_ms)
        key = pointer_key(step_ms, bucket_ms)
        pointer = await self._runner.control(self._table.get, key, "derived_version, full_version")
        if pointer is None or _derived_version(pointer) != base_version or version < base_version:
            return False
        kept_from = _kept_from(pointer)
        metrics = sorted({value.metric for value in upserts} | {place[0] for place in removals})
        items = await self._get_many([rows_key(step_ms, metric, bucket_ms) for metric in metrics])
        by_metric: dict[str, dict[DerivedKey, DerivedValue]] = {metric: {} for metric in metrics}
        for item in items:
            if int(item["version"]["N"]) >= kept_from:  # an older item is no value of this bucket
                values = decode_rows(item["metric"]["S"], bucket_ms, item["rows"]["B"])
                by_metric[item["metric"]["S"]] = {derived_key(value): value for value in values}
        for place in removals:
            by_metric[place[0]].pop(place, None)
        for value in upserts:
            by_metric[value.metric][derived_key(value)] = value
        await self._write_catalog({value.metric: [] for value in upserts})
        jobs = [
            functools.partial(self._put_rows, step_ms, bucket_ms, metric, version, list(values.values()), _NOT_OLDER)
            for metric, values in by_metric.items()
        ]
        await self._runner.gather(jobs)
        moved = await self._runner.control(
            self._table.update,
            key,
            "SET derived_version = :v, value_count = :n, expires_at = :e",
            {
                ":v": {"N": str(version)},
                ":n": {"N": str(total)},
                ":e": {"N": str(self._expires_at(step_ms, bucket_ms))},
                ":base": {"N": str(base_version)},
            },
            "derived_version = :base",
        )
        if moved and step_ms == MINUTE_MS:
            await self._touch_entities(upserts, bucket_ms)
        return moved

    def _put_rows(
        self, step_ms: int, bucket_ms: int, metric: str, version: int, values: Sequence[DerivedValue], condition: str
    ) -> bool:
        """Encode (on a worker thread) and write one metric's values unless a newer version holds them."""
        data = encode_rows(values)
        if len(data) > MAX_ROWS_BYTES:
            raise StoreError(
                f"the {len(values)} values of {metric} at {bucket_ms} take {len(data)} bytes compressed, "
                f"more than the {MAX_ROWS_BYTES} a DynamoDB item can hold"
            )
        item = {
            **rows_key(step_ms, metric, bucket_ms),
            "metric": {"S": metric},
            "version": {"N": str(version)},
            "rows": {"B": data},
            "expires_at": {"N": str(self._expires_at(step_ms, bucket_ms))},
        }
        return self._table.put_if(item, condition, {":v": {"N": str(version)}})

    async def _write_catalog(self, by_metric: dict[str, list[DerivedValue]]) -> None:
        """Catalog the metrics not catalogued lately, before their values: bucket_values lists them."""
        now = self._clock()
        stale = [m for m in by_metric if now - self._metrics_written.get(m, -math.inf) >= CATALOG_REFRESH_S]
        expires_at = {"N": str(math.ceil(now + self._retention_s[HOUR_MS] + 2 * CATALOG_REFRESH_S))}
        # fmt: off
        jobs = [
            functools.partial(
                self._table.put,
                {"pk": {"S": DERIVED_CATALOG_PK}, "sk": {"S": escape(metric)}, "metric": {"S": metric},
                 "expires_at": expires_at},
            )
            for metric in stale
        ]
        # fmt: on
        await self._runner.gather(jobs)
        for metric in stale:
            self._metrics_written[metric] = now

    async def _touch_entities(self, values: Sequence[DerivedValue], bucket_ms: int) -> None:
        """Move each entity's latest minute forward (conditionally: never backwards)."""
        seen = self._entities_seen
        fresh = {(v.service, v.layer, v.endpoint, v.region) for v in values}
        fresh = {entity for entity in fresh if seen.get(entity, -1) < bucket_ms}
        jobs = []
        for service, layer, endpoint, region in fresh:
            attributes = {":s": {"S": service}, ":l": {"S": layer}, ":t": {"N": str(bucket_ms)},
                          ":e": {"N": str(self._expires_at(MINUTE_MS, bucket_ms))}}  # fmt: skip
            expression = "SET service = :s, layer = :l, last_ms = :t, expires_at = :e"
            if endpoint is not None:
                attributes[":p"] = {"S": endpoint}
                expression += ", endpoint = :p"
            if region:
                attributes[":r"] = {"S": region}
                expression += ", entity_region = :r"  # REGION is a reserved word
            key = {"pk": {"S": ENTITY_PK}, "sk": {"S": entity_sk(service, layer, endpoint, region)}}
            jobs.append(
                functools.partial(
                    self._table.update, key, expression, attributes, "attribute_not_exists(last_ms) OR last_ms < :t"
                )
            )
        await self._runner.gather(jobs)
        if len(seen) + len(fresh) > _ENTITY_CACHE_MAX:
            seen.clear()
        for entity in fresh:
            seen[entity] = max(seen.get(entity, -1), bucket_ms)

    async def derived(
        self,
        metric: str,
        step_ms: int,
        start_ms: int,
        end_ms: int,
        service: str | None,
        endpoint: str | None,
        region: str | None = None,
    ) -> list[DerivedValue]:
        items, current = await self._items_of_range(metric, step_ms, start_ms, end_ms)

        def wanted(value: DerivedValue) -> bool:
            return (
                (service is None or value.service == service)
                and (endpoint is None or value.endpoint == endpoint)
                and (value.merged if region is None else value.region == region)
            )

        return await self._runner.work(_decode_current, items, current, wanted)

    async def endpoint_reductions(
        self, metric: str, step_ms: int, start_ms: int, end_ms: int, service: str, region: str | None
    ) -> tuple[dict[str, Totals], dict[str, float]]:
        """``totals_of`` and ``latest_of`` of ``derived(...)``, from the same items without a
        DerivedValue per value: both come of one Query, so both are made each time."""
        items, current = await self._items_of_range(metric, step_ms, start_ms, end_ms)
        return await self._runner.work(_reduce_current, items, current, service, region)

    async def _items_of_range(
        self, metric: str, step_ms: int, start_ms: int, end_ms: int
    ) -> tuple[list[Item], dict[int, int]]:
        """The items of ``metric``'s values in the range, ascending by bucket, and the oldest
        item version each bucket still reads (``_kept_from``; one Query each, together)."""
        low, high = max(start_ms, 0), min(end_ms, MAX_START_MS - 1)
        if low > high:
            return [], {}
        between = {":lo": {"S": f"{low:013d}"}, ":hi": {"S": f"{high:013d}"}, ":now": self._now()}
        rows_query = functools.partial(
            self._table.query,
            KeyConditionExpression="pk = :pk AND sk BETWEEN :lo AND :hi",
            FilterExpression="expires_at > :now",
            ExpressionAttributeValues={**between, ":pk": rows_key(step_ms, metric, 0)["pk"]},
        )
        pointers_query = functools.partial(
            self._table.query,
            KeyConditionExpression="pk = :pk AND sk BETWEEN :lo AND :hi",
            FilterExpression="expires_at > :now",
            ExpressionAttributeValues={**between, ":pk": pointer_key(step_ms, 0)["pk"]},
            ProjectionExpression="sk, derived_version, full_version",
        )
        items, pointers = await self._runner.gather([rows_query, pointers_query])
        return items, {int(item["sk"]["S"]): _kept_from(item) for item in pointers}

    async def bucket_values(self, step_ms: int, bucket_ms: int) -> list[DerivedValue]:
        if not 0 <= bucket_ms < MAX_START_MS:
            return []
        catalog = functools.partial(
            self._table.query,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": DERIVED_CATALOG_PK}},
        )
        metrics = [item["metric"]["S"] for item in await self._runner.control(catalog)]
        pointer = await self._runner.control(self._table.get, pointer_key(step_ms, bucket_ms), None)
        if pointer is None or int(pointer["expires_at"]["N"]) <= int(self._clock()):
            return []
        items = await self._get_many([rows_key(step_ms, metric, bucket_ms) for metric in metrics])
        return await self._runner.work(_decode_current, items, {bucket_ms: _kept_from(pointer)}, None)

    async def latest_bucket(self, step_ms: int, before_ms: int) -> int | None:
        if before_ms <= 0:
            return None
        return await self._runner.control(self._latest_bucket, step_ms, min(before_ms, MAX_START_MS))

    def _latest_bucket(self, step_ms: int, before_ms: int) -> int | None:
        pages = self._table.pages(
            KeyConditionExpression="pk = :pk AND sk < :before",
            FilterExpression="value_count > :zero AND expires_at > :now",
            ExpressionAttributeValues={
                ":pk": pointer_key(step_ms, 0)["pk"], ":before": {"S": f"{before_ms:013d}"},
                ":zero": {"N": "0"}, ":now": self._now(),
            },
            ProjectionExpression="sk",
            ScanIndexForward=False,  # newest first: usually the first page answers
        )  # fmt: skip
        for page in pages:
            if page.get("Items"):
                return int(page["Items"][0]["sk"]["S"])
        return None

    async def entities(self, since_ms: int) -> list[Entity]:
        query = functools.partial(
            self._table.query,
            KeyConditionExpression="pk = :pk",
            FilterExpression="last_ms >= :since AND expires_at > :now",
            ExpressionAttributeValues={":pk": {"S": ENTITY_PK}, ":since": {"N": str(since_ms)}, ":now": self._now()},
        )
        return entities_of(
            (
                item["service"]["S"],
                item["layer"]["S"],
                item["endpoint"]["S"] if "endpoint" in item else None,
                item["entity_region"]["S"] if "entity_region" in item else "",
            )
            for item in await self._runner.control(query)
        )


def _reduce_current(
    items: list[Item], current: dict[int, int], service: str, region: str | None
) -> tuple[dict[str, Totals], dict[str, float]]:
    """Each endpoint's values in the current ``items`` (ascending by bucket, one per metric
    and bucket) reduced as ``totals_of`` and ``latest_of`` do, straight from the rows (on a
    worker thread)."""
    counts: dict[str, int] = {}
    totals: dict[str, float] = {}
    lasts: dict[str, float] = {}
    for item in items:
        if int(item["version"]["N"]) < current.get(int(item["sk"]["S"]), 0):
            continue
        for _, row_service, endpoint, _, value, _, *regional in orjson.loads(zlib.decompress(item["rows"]["B"])):
            # Rows written before values had regions have six fields: merged values of no region.
            value_region, merged = regional or ("", True)
            if row_service != service or endpoint is None or not (merged if region is None else value_region == region):
                continue
            counts[endpoint] = counts.get(endpoint, 0) + 1
            totals[endpoint] = totals.get(endpoint, 0.0) + float(value)
            lasts[endpoint] = float(value)
    return {endpoint: Totals(points, totals[endpoint]) for endpoint, points in counts.items()}, lasts


def _derived_version(item: Item) -> int:
    attribute = item.get("derived_version")
    return int(attribute["N"]) if attribute else 0


def _kept_from(pointer: Item) -> int:
    """The oldest version of a metric's item that still holds values of the bucket: that of
    its last whole ``put`` (changes since rewrite only their metrics' items, at newer
    versions). Pointers written before changes existed have only ``derived_version``."""
    attribute = pointer.get("full_version")
    return int(attribute["N"]) if attribute else _derived_version(pointer)


def _check_finite(values: Sequence[DerivedValue], bucket_ms: int) -> None:
    for value in values:
        if not math.isfinite(value.value):
            raise StoreError(
                f"derived value {value.metric} of {value.service} {value.endpoint or ''} at {bucket_ms} "
                f"is {value.value}; the store keeps finite numbers only"
            )


def _decode_current(
    items: list[Item], current: dict[int, int], wanted: Callable[[DerivedValue], bool] | None
) -> list[DerivedValue]:
    """The values of items at least as new as their bucket's derived version, sorted (on a worker thread).

    Older items were left behind by a newer version that no longer has their metric.
    """
    found: list[DerivedValue] = []
    for item in items:
        bucket_ms = int(item["sk"]["S"])
        if int(item["version"]["N"]) < current.get(bucket_ms, 0):
            continue
        values = decode_rows(item["metric"]["S"], bucket_ms, item["rows"]["B"])
        found += values if wanted is None else filter(wanted, values)
    found.sort(key=_value_order)
    return found
