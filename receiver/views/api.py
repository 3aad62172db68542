"""The query API: ``/api/v1/entities``, ``/api/v1/metrics`` and ``/api/v1/query``.

Values come from the derived values the deriver keeps in the store; nothing is computed
per request. A bad parameter is an HttpError (BAD_QUERY, or NOT_FOUND for an unknown
metric) naming it, answered ``{"error": ...}`` by the app's middleware.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from aiohttp import web

from receiver.errors import HttpError, Kind
from receiver.keys import CONFIG, RULES, STORE
from receiver.model import DAY_MS, HOUR_MS, MINUTE_MS

if TYPE_CHECKING:
    from multidict import MultiMapping

    from receiver.rules import MetricInfo, RuleHolder

STEPS = {"1m": MINUTE_MS, "1h": HOUR_MS}
MAX_POINTS = 20_000
"""A week of minutes is 10,080 points; past this a range asks for step=1h."""


def add_routes(app: web.Application) -> None:
    """Register the API; its handlers read the store, the rules and the config from the app."""
    app.router.add_get("/api/v1/entities", entities)
    app.router.add_get("/api/v1/metrics", metrics)
    app.router.add_get("/api/v1/query", query)


async def entities(request: web.Request) -> web.Response:
    """The services and endpoints with values within the minute retention, and the regions
    each endpoint reports from."""
    window_ms = int(request.app[CONFIG].minute_retention_days * DAY_MS)
    since = int(time.time() * 1000) - window_ms
    services: dict[tuple[str, str], dict[str, list[str]]] = {}
    for service, layer, endpoint, regions in await request.app[STORE].entities(since):
        endpoints = services.setdefault((service, layer), {})
        if endpoint is not None:
            endpoints[endpoint] = list(regions)
    return web.json_response(
        {
            "services": [
                {
                    "name": name,
                    "layer": layer,
                    "endpoints": sorted(endpoints),
                    "regions": dict(sorted(endpoints.items())),
                }
                for (name, layer), endpoints in sorted(services.items())
            ]
        }
    )


async def metrics(request: web.Request) -> web.Response:
    listed = [
        {"name": m.name, "scope": m.scope, "unit": m.unit, "description": m.description}
        for m in request.app[RULES].current.metrics
    ]
    return web.json_response({"metrics": listed})


async def query(request: web.Request) -> web.Response:
    metric, service, endpoint, region, start_ms, end_ms, step_ms = _query_parameters(request, request.app[RULES])
    values = await request.app[STORE].derived(
        metric.name, step_ms, start_ms, end_ms, service=service, endpoint=endpoint, region=region
    )
    points = [[v.time_ms // 1000, v.value] for v in values]
    return web.json_response({"metric": metric.name, "unit": metric.unit, "points": points})


def _query_parameters(
    request: web.Request, rules: RuleHolder
) -> tuple[MetricInfo, str, str | None, str | None, int, int, int]:
    params = request.query
    name = _required(params, "metric")
    metric = rules.current.metric(name)
    if metric is None:
        raise HttpError(Kind.NOT_FOUND, f"metric {name!r} is not defined; GET /api/v1/metrics lists them")
    service = _required(params, "service")
    endpoint = params.get("endpoint") or None
    if metric.scope == "endpoint" and endpoint is None:
        raise HttpError(Kind.BAD_QUERY, f"endpoint is required: {name} is an endpoint metric")
    if metric.scope == "service" and endpoint is not None:
        raise HttpError(Kind.BAD_QUERY, f"endpoint must not be given: {name} is a service metric")
    region = params.get("region") or None
    if region is not None and metric.scope != "endpoint":
        raise HttpError(Kind.BAD_QUERY, f"region must not be given: {name} is an account-wide {metric.scope} metric")
    start = _seconds(params, "start")
    end = _seconds(params, "end")
    if start > end:
        raise HttpError(Kind.BAD_QUERY, "start must not be after end")
    step_name = params.get("step", "1m")
    step_ms = STEPS.get(step_name)
    if step_ms is None:
        raise HttpError(Kind.BAD_QUERY, f"step {step_name!r} is not supported; use 1m or 1h")
    if (end - start) * 1000 // step_ms > MAX_POINTS:
        raise HttpError(
            Kind.BAD_QUERY,
            f"the range from start to end holds more than {MAX_POINTS} steps; use step=1h or a shorter range",
        )
    return metric, service, endpoint, region, start * 1000, end * 1000, step_ms


def _required(params: MultiMapping[str], name: str) -> str:
    value = params.get(name)
    if not value:
        raise HttpError(Kind.BAD_QUERY, f"{name} is required")
    return value


def _seconds(params: MultiMapping[str], name: str) -> int:
    return epoch_seconds(_required(params, name), name)


def epoch_seconds(text: str, name: str) -> int:
    """The query parameter ``name``'s ``text`` as whole epoch seconds; a bad query otherwise."""
    try:
        value = int(text)
    except ValueError:
        raise HttpError(Kind.BAD_QUERY, f"{name} must be whole epoch seconds, not {text!r}") from None
    if not 0 <= value < 2**41:
        raise HttpError(Kind.BAD_QUERY, f"{name} is out of range: give epoch seconds")
    return value
