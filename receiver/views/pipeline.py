"""``GET /api/v1/pipeline``: which minutes are complete, and what the stream costs per update.

The minutes are those this replica derived (receiver/derive/completeness.py), one entry per
minute and account and region: the series expected, those of them arrived and all the series
stored, whether the minute is complete, since when and how (all expected series in, or its
settle time passed).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from receiver.errors import HttpError, Kind
from receiver.keys import COMPLETENESS, CONFIG
from receiver.model import HOUR_MS, MINUTE_MS
from receiver.views.api import epoch_seconds

if TYPE_CHECKING:
    from receiver.derive.completeness import MinuteCompleteness, MinuteStatus

DEFAULT_RANGE_MS = HOUR_MS
MAX_RANGE_MS = 24 * HOUR_MS


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/pipeline", pipeline)


async def pipeline(request: web.Request) -> web.Response:
    """``start`` and ``end`` (epoch seconds, inclusive) choose the minutes; the last hour by default."""
    completeness = request.app[COMPLETENESS]
    now_ms = int(completeness.clock() * 1000)
    end_ms = _seconds(request, "end", now_ms // 1000) * 1000
    start_ms = _seconds(request, "start", (end_ms - DEFAULT_RANGE_MS) // 1000) * 1000
    if start_ms > end_ms:
        raise HttpError(Kind.BAD_QUERY, "start must not be after end")
    if end_ms - start_ms > MAX_RANGE_MS:
        raise HttpError(Kind.BAD_QUERY, "the range from start to end is longer than a day; give a shorter one")
    minutes: list[dict[str, Any]] = []
    for status in completeness.statuses(start_ms - start_ms % MINUTE_MS, end_ms, now_ms):
        for source in status.sources:
            minutes.append(_minute(status, source))
    config = request.app[CONFIG]
    return web.json_response(
        {
            "metric_update_price_per_1000": config.metric_update_price,
            "settle_seconds": config.metrics_settle_s,
            "latest_complete_minute": completeness.latest_complete_minute(now_ms) // 1000,
            "minutes": minutes,
        }
    )


def _minute(status: MinuteStatus, source: MinuteCompleteness) -> dict[str, Any]:
    return {
        "account": source.account,
        "region": source.region,
        "minute": status.minute_ms // 1000,
        "expected": source.expected,
        "arrived": source.arrived,
        "series": source.present,
        "complete": status.complete,
        "completed": None if status.completed_ms is None else status.completed_ms / 1000,
        "by": status.by,
    }


def _seconds(request: web.Request, name: str, default: int) -> int:
    text = request.query.get(name)
    return epoch_seconds(text, name) if text else default
