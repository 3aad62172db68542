"""Counting the read request units a DynamoDB client spends.

    meter = ReadUnits(store.client)
    ... read through the store ...
    meter.units, meter.calls

Every read the client makes (GetItem, BatchGetItem, Query; each page of a Query is a call)
asks DynamoDB (or dynalite) for what it consumed with ``ReturnConsumedCapacity=TOTAL``,
which costs nothing, and adds it up. The store reads strongly consistently, so a unit is
4 KB read: a GetItem or each item of a BatchGetItem rounds its item up to 4 KB, a Query
page the sum of its items.
"""

from __future__ import annotations

from typing import Any

READS = ("GetItem", "BatchGetItem", "Query")


class ReadUnits:
    """The read request units one botocore DynamoDB client spends from now on (see the module)."""

    def __init__(self, client: Any) -> None:
        self.units = 0.0
        self.calls = 0
        events = client.meta.events
        for operation in READS:
            events.register(f"before-parameter-build.dynamodb.{operation}", self._ask)
            events.register(f"after-call.dynamodb.{operation}", self._count)

    @staticmethod
    def _ask(params: dict[str, Any], **_: Any) -> None:
        params["ReturnConsumedCapacity"] = "TOTAL"

    def _count(self, parsed: dict[str, Any], **_: Any) -> None:
        if "Error" in parsed:
            return
        self.calls += 1
        consumed = parsed.get("ConsumedCapacity")
        entries = consumed if isinstance(consumed, list) else [consumed] if consumed else []
        self.units += sum(float(entry.get("CapacityUnits", 0.0)) for entry in entries)
