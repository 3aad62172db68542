"""Alarm events in the DynamoDB table (see AlarmEvent in receiver/model.py for what they are).

=============  ==========  ==============================================  ======================
item           pk          sk                                              attributes
=============  ==========  ==============================================  ======================
alarm event    ``AL``      ``<rule>#<service>#<endpoint>#<seq, 10 digits>``  the event's fields
=============  ==========  ==============================================  ======================

One partition: alarms are rare (a few events per hour even in a noisy account), and one
strongly consistent Query then reads every chain. The next event of a chain is written
with a conditional put that fails when its key exists, which is what makes exactly one
replica notify. Events expire with the hour retention.
"""

from __future__ import annotations

from collections.abc import Callable

from receiver.model import AlarmEvent, latest_per_key
from receiver.store.dynamodb.items import Item, decode_number, encode_number, escape
from receiver.store.dynamodb.runner import Runner
from receiver.store.dynamodb.table import DynamoDBTable

ALARM_PK = "AL"
# ``seq <> :seq`` can only be false for an item at this very key (its seq is part of the
# key), so together: "no event is stored here yet". DynamoDB refuses a condition whose
# values go unused, hence not attribute_not_exists alone with an empty value map.
_ABSENT = "attribute_not_exists(pk) OR seq <> :seq"


def alarm_key(event: AlarmEvent) -> Item:
    rule, service, endpoint = (escape(part) for part in event.key)
    return {"pk": {"S": ALARM_PK}, "sk": {"S": f"{rule}#{service}#{endpoint}#{event.seq:010d}"}}


def alarm_item(event: AlarmEvent, expires_at: int) -> Item:
    item: Item = {
        **alarm_key(event),
        "rule": {"S": event.rule},
        "service": {"S": event.service},
        "seq": {"N": str(event.seq)},
        "kind": {"S": event.kind},
        "minute_ms": {"N": str(event.minute_ms)},
        "value": encode_number(event.value),
        "threshold": encode_number(event.threshold),
        "message": {"S": event.message},
        "created_ms": {"N": str(event.created_ms)},
        "expires_at": {"N": str(expires_at)},
    }
    if event.endpoint is not None:
        item["endpoint"] = {"S": event.endpoint}
    return item


def decode_alarm(item: Item) -> AlarmEvent:
    endpoint = item.get("endpoint")
    return AlarmEvent(
        rule=item["rule"]["S"],
        service=item["service"]["S"],
        endpoint=endpoint["S"] if endpoint else None,
        seq=int(item["seq"]["N"]),
        kind=item["kind"]["S"],
        minute_ms=int(item["minute_ms"]["N"]),
        value=decode_number(item["value"]),
        threshold=decode_number(item["threshold"]),
        message=item["message"]["S"],
        created_ms=int(item["created_ms"]["N"]),
    )


class AlarmEvents:
    """put / list alarm events; every call runs on the store's worker threads."""

    def __init__(self, table: DynamoDBTable, runner: Runner, *, retention_s: int, clock: Callable[[], float]) -> None:
        self._table = table
        self._runner = runner
        self._retention_s = retention_s
        self._clock = clock

    async def put(self, event: AlarmEvent) -> bool:
        item = alarm_item(event, event.minute_ms // 1000 + self._retention_s)
        return await self._runner.control(self._table.put_if, item, _ABSENT, {":seq": {"N": str(event.seq)}})

    async def all(self) -> list[AlarmEvent]:
        now_s = int(self._clock())
        items = await self._runner.control(
            lambda: self._table.query(
                KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": {"S": ALARM_PK}}
            )
        )
        # TTL deletes lazily; an expired item is gone for every reader at once.
        return [decode_alarm(item) for item in items if int(item["expires_at"]["N"]) > now_s]

    async def since(self, since_ms: int) -> list[AlarmEvent]:
        found = [event for event in await self.all() if event.minute_ms >= since_ms]
        found.sort(key=lambda e: (e.minute_ms, *e.key, e.seq))
        return found

    async def heads(self) -> list[AlarmEvent]:
        return latest_per_key(await self.all())
