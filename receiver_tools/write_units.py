"""Counting the write request units a DynamoDB client spends, by kind of item.

    meter = WriteUnits(store.client)
    ... commit through the store ...
    meter.reported["samples"], meter.computed["samples"]

Two counts of every write the client makes (PutItem, UpdateItem, DeleteItem and the puts and
deletes of BatchWriteItem):

- ``reported``: what DynamoDB (or dynalite) says it consumed: the meter asks for it with
  ``ReturnConsumedCapacity=TOTAL`` on each write, which costs nothing.
- ``computed``: one unit per started KB of each item put, by DynamoDB's item-size rules
  (receiver.store.dynamodb.items.item_size). An UpdateItem or DeleteItem does not say how
  large the item is, so for those it takes the reported figure (a delete within a
  BatchWriteItem counts one unit). A put that replaces a larger item is billed for the
  larger one, which only ``reported`` sees.

Items are sorted into kinds by their partition key, as receiver/store/dynamodb lays them out.
A BatchWriteItem that mixes kinds has its reported units shared out in proportion to the
computed ones.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from receiver.store.dynamodb.items import write_units

WRITES = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem")
KINDS = (
    ("S#", "samples"),
    ("R#", "request ids"),
    ("RH#", "request ids"),
    ("V#", "versions"),
    ("H#", "catalog"),
    ("M", "catalog"),
    ("D#", "derived values"),
    ("DB#60000#", "minute values"),
    ("DB#3600000#", "hour values"),
    ("DM", "derived catalog"),
    ("E", "entities"),
    ("EL", "entity logs"),
    ("QR", "quarantine"),
    ("QK", "quarantine"),
    ("AL", "alarms"),
    ("IN", "inventory"),
    ("LE", "leases"),
)
_PARAMS = "write_units.params"


def kind_of(key: dict[str, Any]) -> str:
    """The kind of item a key names, from its partition key."""
    pk = key["pk"]["S"]
    for prefix, kind in KINDS:
        if pk == prefix or (prefix.endswith("#") and pk.startswith(prefix)):
            return kind
    return "other"


class WriteUnits:
    """The write request units one botocore DynamoDB client spends from now on (see the module)."""

    def __init__(self, client: Any) -> None:
        self.reported: Counter[str] = Counter()
        self.computed: Counter[str] = Counter()
        self.items: Counter[str] = Counter()
        """Items written (put, updated or deleted), by kind."""
        events = client.meta.events
        for operation in WRITES:
            events.register(f"before-parameter-build.dynamodb.{operation}", self._ask)
            events.register(f"after-call.dynamodb.{operation}", self._count)

    def total(self, counts: Counter[str], *, without: tuple[str, ...] = ()) -> float:
        return sum(units for kind, units in counts.items() if kind not in without)

    @staticmethod
    def _ask(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        params["ReturnConsumedCapacity"] = "TOTAL"
        context[_PARAMS] = params

    def _count(self, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        params = context.get(_PARAMS)
        if params is None or "Error" in parsed:
            return
        reported = _reported(parsed)
        if model.name == "BatchWriteItem":
            self._count_batch(params, parsed, reported)
            return
        key = params.get("Item") or params["Key"]
        kind = kind_of(key)
        self.items[kind] += 1
        self.reported[kind] += reported
        self.computed[kind] += write_units(params["Item"]) if model.name == "PutItem" else reported

    def _count_batch(self, params: dict[str, Any], parsed: dict[str, Any], reported: float) -> None:
        (requests,) = params["RequestItems"].values()
        left = [request for table in parsed.get("UnprocessedItems", {}).values() for request in table]
        done = [request for request in requests if request not in left]
        computed: Counter[str] = Counter()
        for request in done:
            put = request.get("PutRequest")
            key = put["Item"] if put else request["DeleteRequest"]["Key"]
            kind = kind_of(key)
            self.items[kind] += 1
            computed[kind] += write_units(put["Item"]) if put else 1
        whole = sum(computed.values())
        for kind, units in computed.items():
            self.computed[kind] += units
            self.reported[kind] += reported * units / whole if whole else 0.0


def _reported(parsed: dict[str, Any]) -> float:
    consumed = parsed.get("ConsumedCapacity")
    if consumed is None:
        return 0.0
    if isinstance(consumed, list):
        return float(sum(entry.get("CapacityUnits", 0.0) for entry in consumed))
    return float(consumed.get("CapacityUnits", 0.0))
