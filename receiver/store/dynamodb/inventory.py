"""The table inventory and leases in the DynamoDB table (see InventoryItem in receiver/model.py).

==============  ======  ======================================  =================================
item            pk      sk                                      attributes
==============  ======  ======================================  =================================
inventory item  ``IN``  ``<kind>#<account>#<region>#<name>``    kind, account, region, name,
                                                                updated_ms, body
lease           ``LE``  ``<lease name>``                        holder, until_ms
==============  ======  ======================================  =================================

- The parts of an inventory item's sort key are escaped as in items.py, so keys stay
  injective, and the items of one kind are one Query with ``begins_with(sk, "<kind>#")``.
- One partition holds the whole inventory: an account has a few thousand tables at most
  (DynamoDB's default quota is 2,500 per region), so a strongly consistent Query reads it
  in a few pages of 1 MB, and the store sorts the items by key.
- The body is the item's JSON text, a String attribute; an item holds 400 KB, far more than
  a table's description.
- An inventory item expires with the hour retention counted from its ``updated_ms``: the
  poller rewrites every item it still finds, so only items it no longer polls expire.
  Reads skip expired items at once (``prune`` has nothing to do), and DynamoDB's TTL
  deletes them later.
- A lease is taken with one conditional PutItem, ``attribute_not_exists(pk) OR holder = :me
  OR until_ms <= :now``: of replicas racing for a free or expired lease exactly one
  writes, and the holder renews its own. It is released with a DeleteItem under
  ``holder = :me``, which leaves another holder's lease alone. A lease's item expires a
  day after its end, so a lease nobody takes again is deleted by TTL, which is the same as
  free.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from receiver.model import InventoryItem
from receiver.store.dynamodb.items import Item, escape
from receiver.store.dynamodb.runner import Runner
from receiver.store.dynamodb.table import BATCH_ITEMS, DynamoDBTable

INVENTORY_PK = "IN"
LEASE_PK = "LE"
LEASE_TTL_S = 86_400
"""A lease's item expires this long after the lease ends."""

# A lease is free when it has no item yet, held by the taker already, or over.
_TAKEABLE = "attribute_not_exists(pk) OR holder = :me OR until_ms <= :now"
_HELD_BY_ME = "holder = :me"


def inventory_sk(key: tuple[str, str, str, str]) -> str:
    """``<kind>#<account>#<region>#<name>``, each part escaped."""
    return "#".join(escape(part) for part in key)


def inventory_item(item: InventoryItem, expires_at: int) -> Item:
    return {
        "pk": {"S": INVENTORY_PK},
        "sk": {"S": inventory_sk(item.key)},
        "kind": {"S": item.kind},
        "account": {"S": item.account},
        "region": {"S": item.region},
        "name": {"S": item.name},
        "updated_ms": {"N": str(item.updated_ms)},
        "body": {"S": item.body},
        "expires_at": {"N": str(expires_at)},
    }


def decode_inventory(item: Item) -> InventoryItem:
    return InventoryItem(
        kind=item["kind"]["S"],
        account=item["account"]["S"],
        region=item["region"]["S"],
        name=item["name"]["S"],
        updated_ms=int(item["updated_ms"]["N"]),
        body=item["body"]["S"],
    )


def lease_key(name: str) -> Item:
    return {"pk": {"S": LEASE_PK}, "sk": {"S": name}}


def lease_item(name: str, holder: str, until_ms: int) -> Item:
    return {
        **lease_key(name),
        "holder": {"S": holder},
        "until_ms": {"N": str(until_ms)},
        "expires_at": {"N": str(until_ms // 1000 + LEASE_TTL_S)},
    }


class Inventory:
    """The inventory items and leases; every call runs on the store's worker threads."""

    def __init__(self, table: DynamoDBTable, runner: Runner, *, retention_s: int, clock: Callable[[], float]) -> None:
        self._table = table
        self._runner = runner
        self._retention_s = retention_s
        self._clock = clock

    async def put(self, items: Sequence[InventoryItem], deadline: float) -> None:
        """Upsert ``items`` in parallel batches; of several with one key the last is kept
        (a batch refuses two writes of one key)."""
        latest = {item.key: item for item in items}
        encoded = [inventory_item(item, item.updated_ms // 1000 + self._retention_s) for item in latest.values()]
        await self._runner.batches(
            lambda batch, abort: self._table.write_batch(batch, deadline, abort), encoded, BATCH_ITEMS
        )

    async def items(self, kind: str | None) -> list[InventoryItem]:
        """Every unexpired item, or those of ``kind``, sorted by key."""
        condition = "pk = :pk"
        values: Item = {":pk": {"S": INVENTORY_PK}}
        if kind is not None:
            condition += " AND begins_with(sk, :kind)"
            values[":kind"] = {"S": f"{escape(kind)}#"}
        now_s = int(self._clock())
        found = await self._runner.work(
            lambda: self._table.query(KeyConditionExpression=condition, ExpressionAttributeValues=values)
        )
        # TTL deletes lazily; an expired item is gone for every reader at once.
        live = [decode_inventory(item) for item in found if int(item["expires_at"]["N"]) > now_s]
        live.sort(key=lambda item: item.key)
        return live

    async def take_lease(self, name: str, holder: str, now_ms: int, duration_ms: int) -> bool:
        item = lease_item(name, holder, now_ms + duration_ms)
        values: Item = {":me": {"S": holder}, ":now": {"N": str(now_ms)}}
        return await self._runner.control(self._table.put_if, item, _TAKEABLE, values)

    async def release_lease(self, name: str, holder: str) -> None:
        # A failed condition (another holds it, or nobody does) leaves it as it is.
        await self._runner.control(self._table.delete_if, lease_key(name), _HELD_BY_ME, {":me": {"S": holder}})
