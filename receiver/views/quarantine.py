"""``GET /api/v1/quarantine``: the records set aside because they did not decode.

Lists what ``python -m receiver quarantine list`` prints, without the records' bytes:
the only view of a ``memory://`` store's quarantine, and a quick one of any other.
"""

from __future__ import annotations

from aiohttp import web

from receiver.errors import HttpError, Kind
from receiver.keys import STORE
from receiver.store.base import StoreError

PATH = "/api/v1/quarantine"
DEFAULT_LIMIT = 100
MAX_LIMIT = 200
"""Each record read may be a mebibyte (its bytes are read, though not sent)."""


def add_routes(app: web.Application) -> None:
    app.router.add_get(PATH, quarantine)


async def quarantine(request: web.Request) -> web.Response:
    text = request.query.get("limit", str(DEFAULT_LIMIT))
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise HttpError(Kind.BAD_QUERY, f"limit must be a whole number from 1 to {MAX_LIMIT}")
    store = request.app[STORE]
    try:
        records = await store.quarantined(int(text))
        total = await store.count_quarantined()
    except StoreError as exc:
        raise HttpError(Kind.STORE_UNAVAILABLE, f"the store is unavailable: {exc}") from None
    return web.json_response(
        {
            "total": total,
            "records": [
                {
                    "request_id": record.request_id,
                    "index": record.index,
                    "received": record.received_ms // 1000,
                    "reason": record.reason,
                    "detail": record.detail,
                    "bytes": len(record.data),
                    "common_attributes": dict(record.labels),
                }
                for record in records
            ],
        }
    )
