"""``GET /api/v1/alarms``: the alarms that are on, and the recent notifications (receiver/alarms/
evaluates and notifies; this is its read side)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from aiohttp import web

from receiver.errors import HttpError, Kind
from receiver.keys import ALARMS, STORE
from receiver.model import DAY_MS, FIRING, AlarmEvent
from receiver.store.base import StoreError

if TYPE_CHECKING:
    from receiver.alarms.rules import AlarmRule

ALARMS_PATH = "/api/v1/alarms"
RECENT_HOURS = 24
RECENT_LIMIT = 200
_HISTORY_DAYS = 7  # how far back the start of an alarm that is on is looked for


def add_routes(app: web.Application) -> None:
    app.router.add_get(ALARMS_PATH, alarms)


async def alarms(request: web.Request) -> web.Response:
    """The store's alarm events; the rules (for their scopes) when the app has alarms."""
    now_ms = int(time.time() * 1000)
    store = request.app[STORE]
    try:
        heads = await store.alarm_heads()
        history = await store.alarm_events(now_ms - _HISTORY_DAYS * DAY_MS)
    except StoreError as exc:
        raise HttpError(Kind.STORE_UNAVAILABLE, f"the store failed: {exc}") from None
    rules = request.app[ALARMS].rules if ALARMS in request.app else []
    return web.json_response(alarms_document(heads, history, rules, now_ms))


def alarms_document(
    heads: Sequence[AlarmEvent], history: Sequence[AlarmEvent], rules: Sequence[AlarmRule], now_ms: int
) -> dict[str, Any]:
    """``{"active": [...], "recent": [...]}``; times are epoch seconds, as in /api/v1/query.

    active: every rule and entity whose latest event is a firing, oldest first, with
    ``since`` (the minute that episode started) and ``last`` (its latest notification).
    recent: the notifications of the last 24 hours, newest first, at most 200.
    """
    scopes = {rule.name: rule.scope for rule in rules}
    started: dict[tuple[str, str, str], int] = {}
    for event in sorted(history, key=lambda e: (e.key, e.seq)):
        if event.kind != FIRING:
            started.pop(event.key, None)
        else:
            started.setdefault(event.key, event.minute_ms)
    active = [
        {**_event_json(head, scopes), "since": started.get(head.key, head.minute_ms) // 1000}
        for head in heads
        if head.kind == FIRING
    ]
    active.sort(key=lambda a: (a["since"], a["rule"], a["service"], a["endpoint"] or ""))
    cutoff = now_ms - RECENT_HOURS * 3_600_000
    recent = sorted(
        (e for e in history if e.minute_ms >= cutoff), key=lambda e: (e.minute_ms, e.created_ms), reverse=True
    )
    return {"active": active, "recent": [_event_json(e, scopes) for e in recent[:RECENT_LIMIT]]}


def _event_json(event: AlarmEvent, scopes: dict[str, str]) -> dict[str, Any]:
    return {
        "rule": event.rule,
        "scope": scopes.get(event.rule),
        "service": event.service,
        "endpoint": event.endpoint,
        "status": event.kind,
        "minute": event.minute_ms // 1000,
        "sent": event.created_ms // 1000,
        "value": event.value,
        "threshold": event.threshold,
        "message": event.message,
    }
