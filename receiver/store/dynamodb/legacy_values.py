"""Reading the derived values older receivers wrote: one item per metric and bucket.

=====================  ==========================  ==============  ============================
item                   pk                          sk              attributes
=====================  ==========================  ==============  ============================
values of one metric   ``D#<step ms>#<metric>``    ``<bucket>``    metric, version, rows
                                                                   (zlib-compressed JSON)
derived metric         ``DM``                      ``<metric>``    metric
=====================  ==========================  ==============  ============================

This receiver no longer writes them: a bucket whose pointer has no ``chain`` (derived.py)
was last stored by an older receiver, and its values are read from these items, as that
receiver read them: a metric's item counts when its version is at least the pointer's
``full_version`` (``derived_version`` on pointers older than that). The next time such a
bucket is derived it is stored whole in blocks. The items expire with their step's
retention (a week for minutes, 90 days for hours) like every other.
"""

from __future__ import annotations

import functools
import zlib

import orjson

from receiver.model import DerivedValue
from receiver.store.dynamodb.items import Item, escape
from receiver.store.dynamodb.runner import Runner
from receiver.store.dynamodb.table import BATCH_GET_KEYS, DynamoDBTable

DERIVED_CATALOG_PK = "DM"


def rows_key(step_ms: int, metric: str, bucket_ms: int) -> Item:
    return {"pk": {"S": f"D#{step_ms}#{escape(metric)}"}, "sk": {"S": f"{bucket_ms:013d}"}}


def kept_from(pointer: Item) -> int:
    """The oldest version of a metric's item that still holds values of the bucket."""
    attribute = pointer.get("full_version") or pointer.get("derived_version")
    return int(attribute["N"]) if attribute else 0


def decode_rows(metric: str, bucket_ms: int, data: bytes) -> list[DerivedValue]:
    # Rows written before values had regions have six fields: merged values of no region.
    return [
        DerivedValue(metric, scope, service, endpoint, layer, bucket_ms, float(value), instance, *regional)
        for scope, service, endpoint, layer, value, instance, *regional in orjson.loads(zlib.decompress(data))
    ]


def _decode(items: list[Item], current: dict[int, int]) -> list[DerivedValue]:
    found: list[DerivedValue] = []
    for item in items:
        bucket_ms = int(item["sk"]["S"])
        if bucket_ms in current and int(item["version"]["N"]) >= current[bucket_ms]:
            found += decode_rows(item["metric"]["S"], bucket_ms, item["rows"]["B"])
    return found


async def metric_values(
    table: DynamoDBTable, runner: Runner, metric: str, step_ms: int, current: dict[int, int], now: dict[str, str]
) -> list[DerivedValue]:
    """The values of ``metric`` in the buckets of ``current`` (bucket -> ``kept_from``)."""
    if not current:
        return []
    query = functools.partial(
        table.query,
        KeyConditionExpression="pk = :pk AND sk BETWEEN :lo AND :hi",
        FilterExpression="expires_at > :now",
        ExpressionAttributeValues={
            ":pk": rows_key(step_ms, metric, 0)["pk"], ":lo": {"S": f"{min(current):013d}"},
            ":hi": {"S": f"{max(current):013d}"}, ":now": now,
        },
    )  # fmt: skip
    items = await runner.control(query)
    return await runner.work(_decode, items, current)


async def bucket_values(
    table: DynamoDBTable, runner: Runner, step_ms: int, bucket_ms: int, pointer: Item
) -> list[DerivedValue]:
    """Every value of one bucket: the catalog names the metrics, whose items are then read."""
    catalog = functools.partial(
        table.query, KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": {"S": DERIVED_CATALOG_PK}}
    )
    metrics = [item["metric"]["S"] for item in await runner.control(catalog)]
    keys = [rows_key(step_ms, metric, bucket_ms) for metric in metrics]
    chunks = [keys[i : i + BATCH_GET_KEYS] for i in range(0, len(keys), BATCH_GET_KEYS)]
    found = await runner.gather([functools.partial(table.batch_get, chunk) for chunk in chunks])
    return await runner.work(_decode, [item for items in found for item in items], {bucket_ms: kept_from(pointer)})
