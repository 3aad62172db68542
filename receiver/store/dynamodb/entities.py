"""The entities with minute values, and the latest minute each had one in, in the DynamoDB table.

==============  ========  ===============================  =====================================
item            pk        sk                               attributes
==============  ========  ===============================  =====================================
entity          ``E``     ``<service>#<layer>#[=<endpoint>]``  service, layer, endpoint,
                          ``[@<region>]``                  entity_region, last_ms
entity log      ``EL``    ``<minute>#<pass id>``           d: zlib-compressed JSON
                                                           ``[[service, layer, endpoint, region], ...]``
==============  ========  ===============================  =====================================

An entity's item says the latest minute it had a value in, give or take ``STRIDE_MS``: it is
written when the entity has a value in a minute at least ``STRIDE_MS`` after the one this
store last wrote to it (conditionally: never backwards), so ``last_ms`` is less than
``STRIDE_MS`` behind the truth. Writing it every minute cost a write per entity and minute,
more than the values themselves (0.11 writes per datapoint at 300 tables). The precision
comes from the logs: each pass that stores minute values lists, in one item, the entities
it gave values in that minute that this store had not listed for it yet.

``since(t)`` lists every entity whose item says ``t`` or later; one whose item says less
than ``STRIDE_MS`` before ``t`` may have values since ``t`` too, and is listed when a log of
a minute in ``[t, t + STRIDE_MS)`` names it (one Query, only when there are such entities).
So the answer is that of an exact latest minute per entity, as the other stores keep it; as
there, an entity whose values were later recomputed away stays listed until that minute is
older than ``t``. Items expire ``STRIDE_MS`` after the minute retention of their
``last_ms``, logs with the minute retention of their minute.
"""

from __future__ import annotations

import functools
import math
import zlib
from collections import OrderedDict
from collections.abc import Callable, Sequence

import orjson

from receiver.model import HOUR_MS, DerivedValue
from receiver.store.base import Entity, entities_of
from receiver.store.dynamodb.items import Item, escape
from receiver.store.dynamodb.runner import Runner
from receiver.store.dynamodb.table import DynamoDBTable

ENTITY_PK = "E"
LOG_PK = "EL"
STRIDE_MS = HOUR_MS
"""How far an entity's ``last_ms`` may lag: an entity's item is written once per this at most."""
MINUTES_LOGGED = 8
"""Minutes whose logged entities a store remembers, so a minute's later passes log only new ones."""
LOG_ENTITIES = 5_000
"""Entities per log item (about 20-60 bytes each compressed: far below an item's 400 KB)."""
_SEEN_MAX = 100_000

EntityKey = tuple[str, str, str | None, str]
"""(service, layer, endpoint, region)."""


def entity_sk(service: str, layer: str, endpoint: str | None, region: str = "") -> str:
    # "=" marks a named endpoint, so no endpoint and an empty name stay apart; each region
    # an entity reports from has an item of its own, so each has its own latest minute.
    tail = "" if endpoint is None else f"={escape(endpoint)}"
    at = f"@{escape(region)}" if region else ""
    return f"{escape(service)}#{escape(layer)}#{tail}{at}"


class Entities:
    """Entity items and logs (see the module docstring)."""

    def __init__(self, table: DynamoDBTable, runner: Runner, *, retention_s: int, clock: Callable[[], float]) -> None:
        self._table = table
        self._runner = runner
        self._retention_s = retention_s
        self._clock = clock
        self._written: dict[EntityKey, int] = {}
        """The latest minute this store wrote to each entity's item."""
        self._logged: OrderedDict[int, set[EntityKey]] = OrderedDict()
        """Per recent minute, the entities this store logged for it."""

    async def touch(self, values: Sequence[DerivedValue], minute_ms: int, pass_id: str) -> None:
        """Record that ``values`` (of one minute, just stored) are there: a log of the entities
        new to the minute, and the items of those whose ``last_ms`` lags by a stride or more."""
        present = {(v.service, v.layer, v.endpoint, v.region) for v in values}
        logged = self._logged.get(minute_ms, set())
        fresh = sorted(present - logged, key=_entity_order)
        due = [e for e in present if self._written.get(e, -math.inf) <= minute_ms - STRIDE_MS]
        jobs = [
            functools.partial(
                self._table.put, self._log_item(minute_ms, f"{pass_id}.{index}", fresh[start : start + LOG_ENTITIES])
            )
            for index, start in enumerate(range(0, len(fresh), LOG_ENTITIES))
        ]
        jobs += [functools.partial(self._advance, entity, minute_ms) for entity in due]
        await self._runner.gather(jobs)
        self._logged[minute_ms] = logged | present
        self._logged.move_to_end(minute_ms)
        while len(self._logged) > MINUTES_LOGGED:
            self._logged.popitem(last=False)
        if len(self._written) + len(due) > _SEEN_MAX:
            self._written.clear()
        for entity in due:
            self._written[entity] = max(self._written.get(entity, -1), minute_ms)

    def _log_item(self, minute_ms: int, name: str, entities: Sequence[EntityKey]) -> Item:
        return {
            "pk": {"S": LOG_PK},
            "sk": {"S": f"{minute_ms:013d}#{name}"},
            "d": {"B": zlib.compress(orjson.dumps(entities), 6)},
            "expires_at": {"N": str(minute_ms // 1000 + self._retention_s)},
        }

    def _advance(self, entity: EntityKey, minute_ms: int) -> None:
        service, layer, endpoint, region = entity
        expires_at = (minute_ms + STRIDE_MS) // 1000 + self._retention_s
        attributes = {":s": {"S": service}, ":l": {"S": layer}, ":t": {"N": str(minute_ms)},
                      ":e": {"N": str(expires_at)}}  # fmt: skip
        expression = "SET service = :s, layer = :l, last_ms = :t, expires_at = :e"
        if endpoint is not None:
            attributes[":p"] = {"S": endpoint}
            expression += ", endpoint = :p"
        if region:
            attributes[":r"] = {"S": region}
            expression += ", entity_region = :r"  # REGION is a reserved word
        key = {"pk": {"S": ENTITY_PK}, "sk": {"S": entity_sk(service, layer, endpoint, region)}}
        # False (not written) when another write moved it as far already.
        self._table.update(key, expression, attributes, "attribute_not_exists(last_ms) OR last_ms < :t")

    async def since(self, since_ms: int) -> list[Entity]:
        now = {"N": str(int(self._clock()))}
        query = functools.partial(
            self._table.query,
            KeyConditionExpression="pk = :pk",
            FilterExpression="last_ms > :lo AND expires_at > :now",
            ExpressionAttributeValues={
                ":pk": {"S": ENTITY_PK}, ":lo": {"N": str(since_ms - STRIDE_MS)}, ":now": now
            },
        )  # fmt: skip
        found: list[EntityKey] = []
        unsure: set[EntityKey] = set()
        for item in await self._runner.control(query):
            entity = (
                item["service"]["S"],
                item["layer"]["S"],
                item["endpoint"]["S"] if "endpoint" in item else None,
                item["entity_region"]["S"] if "entity_region" in item else "",
            )
            (found.append if int(item["last_ms"]["N"]) >= since_ms else unsure.add)(entity)
        if unsure:
            logged = await self._logged_between(since_ms, since_ms + STRIDE_MS - 1, now)
            found += unsure & logged
        return entities_of(found)

    async def _logged_between(self, low_ms: int, high_ms: int, now: dict[str, str]) -> set[EntityKey]:
        query = functools.partial(
            self._table.query,
            KeyConditionExpression="pk = :pk AND sk BETWEEN :lo AND :hi",
            FilterExpression="expires_at > :now",
            ExpressionAttributeValues={
                ":pk": {"S": LOG_PK}, ":lo": {"S": f"{max(low_ms, 0):013d}"}, ":hi": {"S": f"{high_ms:013d}$"},
                ":now": now,
            },
        )  # fmt: skip
        items = await self._runner.control(query)
        return await self._runner.work(_decode_logs, items)


def _decode_logs(items: list[Item]) -> set[EntityKey]:
    return {
        (service, layer, endpoint, region)
        for item in items
        for service, layer, endpoint, region in orjson.loads(zlib.decompress(item["d"]["B"]))
    }


def _entity_order(entity: EntityKey) -> tuple[str, str, str, str]:
    return (entity[0], entity[1], entity[2] or "", entity[3])
