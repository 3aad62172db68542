"""``GET /api/v1/tables``: what the inventory knows of each table (receiver/inventory).

One entry per table and region: the table's document (receiver/inventory/documents.py), when
it was polled, the ceilings of the table and its global secondary indexes, and its most
throttled keys where Contributor Insights reported them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from aiohttp import web

from receiver.errors import HttpError, Kind
from receiver.inventory.documents import SERVICE_PREFIX, ceilings, limits_of, table_of, top_keys_of
from receiver.keys import CONFIG, INVENTORY, STORE
from receiver.model import LIMITS, TABLE, TOP_KEYS, InventoryItem


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/tables", tables)


async def tables(request: web.Request) -> web.Response:
    """``service=S`` narrows to one account, ``region=R`` to one region."""
    account = _account(request.query.get("service"))
    region = request.query.get("region") or None
    items = await request.app[STORE].inventory()
    listed = table_entries(items, account=account, region=region)
    poller = request.app.get(INVENTORY)
    last_poll_ms = poller.counters.snapshot().last_poll_ms if poller is not None else None
    return web.json_response(
        {
            "tables": listed,
            "inventory": {
                "enabled": request.app[CONFIG].inventory is not None,
                "last_poll": None if last_poll_ms is None else last_poll_ms / 1000,
            },
        }
    )


def _account(service: str | None) -> str | None:
    if not service:
        return None
    account = service.removeprefix(SERVICE_PREFIX)
    if account == service or not account:
        raise HttpError(
            Kind.BAD_QUERY, f"service {service!r} is not an account's service; give {SERVICE_PREFIX}<account id>"
        )
    return account


def table_entries(
    items: Sequence[InventoryItem], *, account: str | None = None, region: str | None = None
) -> list[dict[str, Any]]:
    """The tables of ``items`` (of ``account`` and ``region`` where given), sorted by
    (name, region, account), each with its ceilings and top keys."""
    limits = {(i.account, i.region): limits_of(i) for i in items if i.kind == LIMITS}
    top_keys = {(i.account, i.region, i.name): top_keys_of(i) for i in items if i.kind == TOP_KEYS}
    entries = []
    for item in items:
        if item.kind != TABLE or (account and item.account != account) or (region and item.region != region):
            continue
        document = table_of(item)
        entry: dict[str, Any] = dict(document)
        entry["updated"] = item.updated_ms / 1000
        entry["ceilings"] = [asdict(c) for c in ceilings(document, limits.get((item.account, item.region)))]
        entry["top_keys"] = top_keys.get((item.account, item.region, item.name))
        entries.append(entry)
    entries.sort(key=lambda e: (e["name"], e["region"], e["account"]))
    return entries
