"""``GET /api/v1/quarantine``: the records set aside because they did not decode.

Lists what ``python -m receiver quarantine list`` prints, without the records' bytes:
the only view of a ``memory://`` store's quarantine, and a quick one of any other.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from receiver.store import Store, StoreError

DEFAULT_LIMIT = 100
MAX_LIMIT = 200
"""Each record read may be a mebibyte (its bytes are read, though not sent)."""


def add_routes(app: web.Application, store: Callable[[web.Request], Store]) -> None:
    async def quarantine(request: web.Request) -> web.Response:
        text = request.query.get("limit", str(DEFAULT_LIMIT))
        if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
            return web.json_response(
                {"error": f"limit must be a whole number from 1 to {MAX_LIMIT}"}, status=400)
        found = store(request)
        try:
            records = await found.quarantined(int(text))
            total = await found.count_quarantined()
        except StoreError as exc:
            return web.json_response({"error": f"the store is unavailable: {exc}"}, status=503)
        return web.json_response({
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
        })

    app.router.add_get("/api/v1/quarantine", quarantine)
