"""The query API: ``/api/v1/entities``, ``/api/v1/metrics`` and ``/api/v1/query``.

Values come from the derived values the deriver keeps in the store; nothing is computed
per request. Errors are ``{"error": ...}`` with a 4xx status naming the parameter.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import web

from receiver.model import HOUR_MS, MINUTE_MS
from receiver.rules import MetricInfo, RuleHolder
from receiver.store import Store

if TYPE_CHECKING:
    from multidict import MultiMapping

STEPS = {"1m": MINUTE_MS, "1h": HOUR_MS}
MAX_POINTS = 20_000
"""A week of minutes is 10,080 points; past this a range asks for step=1h."""


class QueryError(ValueError):
    """A bad parameter: a 400 (or 404 for an unknown metric) with this message."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def error(message: str, status: int = 400) -> web.Response:
    return web.json_response({"error": message}, status=status)


def add_routes(
    app: web.Application,
    store: Callable[[web.Request], Store],
    rules: Callable[[web.Request], RuleHolder],
    entity_window_ms: int,
) -> None:
    """Register the API; ``store`` and ``rules`` read the app's current ones from a request."""

    async def entities(request: web.Request) -> web.Response:
        since = int(time.time() * 1000) - entity_window_ms
        services: dict[tuple[str, str], list[str]] = {}
        for service, layer, endpoint in await store(request).entities(since):
            endpoints = services.setdefault((service, layer), [])
            if endpoint is not None:
                endpoints.append(endpoint)
        return web.json_response(
            {
                "services": [
                    {"name": name, "layer": layer, "endpoints": sorted(endpoints)}
                    for (name, layer), endpoints in sorted(services.items())
                ]
            }
        )

    async def metrics(request: web.Request) -> web.Response:
        listed = [
            {"name": m.name, "scope": m.scope, "unit": m.unit, "description": m.description}
            for m in rules(request).current.metrics
        ]
        return web.json_response({"metrics": listed})

    async def query(request: web.Request) -> web.Response:
        try:
            metric, service, endpoint, start_ms, end_ms, step_ms = _query_parameters(
                request, rules(request)
            )
        except QueryError as exc:
            return error(str(exc), exc.status)
        values = await store(request).derived(
            metric.name, step_ms, start_ms, end_ms, service=service, endpoint=endpoint
        )
        points = [[v.time_ms // 1000, v.value] for v in values]
        return web.json_response({"metric": metric.name, "unit": metric.unit, "points": points})

    app.router.add_get("/api/v1/entities", entities)
    app.router.add_get("/api/v1/metrics", metrics)
    app.router.add_get("/api/v1/query", query)


def _query_parameters(
    request: web.Request, rules: RuleHolder
) -> tuple[MetricInfo, str, str | None, int, int, int]:
    params = request.query
    name = _required(params, "metric")
    metric = rules.current.metric(name)
    if metric is None:
        raise QueryError(f"metric {name!r} is not defined; GET /api/v1/metrics lists them", 404)
    service = _required(params, "service")
    endpoint = params.get("endpoint") or None
    if metric.scope == "endpoint" and endpoint is None:
        raise QueryError(f"endpoint is required: {name} is an endpoint metric")
    if metric.scope == "service" and endpoint is not None:
        raise QueryError(f"endpoint must not be given: {name} is a service metric")
    start = _seconds(params, "start")
    end = _seconds(params, "end")
    if start > end:
        raise QueryError("start must not be after end")
    step_name = params.get("step", "1m")
    step_ms = STEPS.get(step_name)
    if step_ms is None:
        raise QueryError(f"step {step_name!r} is not supported; use 1m or 1h")
    if (end - start) * 1000 // step_ms > MAX_POINTS:
        raise QueryError(
            f"the range from start to end holds more than {MAX_POINTS} steps; use step=1h or a shorter range"
        )
    return metric, service, endpoint, start * 1000, end * 1000, step_ms


def _required(params: MultiMapping[str], name: str) -> str:
    value = params.get(name)
    if not value:
        raise QueryError(f"{name} is required")
    return value


def _seconds(params: MultiMapping[str], name: str) -> int:
    text = _required(params, name)
    try:
        value = int(text)
    except ValueError:
        raise QueryError(f"{name} must be whole epoch seconds, not {text!r}") from None
    if not 0 <= value < 2**41:
        raise QueryError(f"{name} is out of range: give epoch seconds")
    return value
