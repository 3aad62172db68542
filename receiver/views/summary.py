"""``GET /api/v1/summary``: the account page's table of tables in one request.

For every endpoint (table or index) of one service, the numbers the account page's table
shows for the range: each of its metrics reduced to one figure, as the page reduced the
points of ``/api/v1/query`` before (receiver/views/static/layout.js TABLE_COLUMNS): the mean
of a rate or a share, the latest value of a setting, the total of a count. The figures are
given as a list in the order the answer's ``figures`` names them, for the endpoint's regions
merged and for each region it reports from; a figure is null when the range holds no value
of it.

Each metric is read with one ``Store.endpoint_totals`` call (a mean or a total) or one
``Store.endpoint_latest`` call (the latest value) for every endpoint at once (the merged
values), then one per region of the service's multi-region endpoints; the calls are made
together (the SQLite store reduces two at a time). Nothing is read per endpoint, and the
store hands over each endpoint's values already reduced: the very numbers the page's
reductions made of the points of ``/api/v1/query``. The regions are those
``Store.entities`` lists since the range's start.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import orjson
from aiohttp import web

from receiver.errors import HttpError, Kind
from receiver.keys import RULES, STORE
from receiver.store.base import Store
from receiver.views.api import MAX_POINTS, STEPS, epoch_seconds

FIGURES: tuple[tuple[str, str], ...] = (
    ("aws_dynamodb_endpoint_consumed_read_capacity_units", "mean"),
    ("aws_dynamodb_endpoint_provisioned_read_capacity_units", "last"),
    ("aws_dynamodb_endpoint_read_capacity_utilization", "mean"),
    ("aws_dynamodb_endpoint_consumed_write_capacity_units", "mean"),
    ("aws_dynamodb_endpoint_provisioned_write_capacity_units", "last"),
    ("aws_dynamodb_endpoint_write_capacity_utilization", "mean"),
    ("aws_dynamodb_endpoint_read_throttled_requests", "sum"),
    ("aws_dynamodb_endpoint_write_throttled_requests", "sum"),
    ("aws_dynamodb_endpoint_read_system_errors", "sum"),
    ("aws_dynamodb_endpoint_write_system_errors", "sum"),
)
"""(metric, reduction) of every number of the account page's table (the columns that add
read and write add the two figures)."""


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/summary", summary)


async def summary(request: web.Request) -> web.Response:
    service, start_ms, end_ms, step_name = _parameters(request)
    step_ms = STEPS[step_name]
    store = request.app[STORE]
    rules = request.app[RULES].current
    figures = [
        (name, reduce) for name, reduce in FIGURES if (m := rules.metric(name)) is not None and m.scope == "endpoint"
    ]

    def figures_of(name: str, reduce: str, region: str | None = None) -> Awaitable[dict[str, float]]:
        return _figures(store, name, reduce, step_ms, start_ms, end_ms, service, region)

    # Every metric's merged figures and the entities at once: the store reads side by side.
    merged, entities = await asyncio.gather(
        asyncio.gather(*(figures_of(name, reduce) for name, reduce in figures)), store.entities(start_ms)
    )
    # The regions each endpoint reports from. A single-region endpoint's values are its
    # region's too (Store.derived), so only the regions of multi-region endpoints are read.
    reported: dict[str, tuple[str, ...]] = {
        endpoint: entity_regions
        for entity_service, _, endpoint, entity_regions in entities
        if entity_service == service and endpoint is not None
    }
    regions = sorted({region for found in reported.values() if len(found) > 1 for region in found})
    by_region = await asyncio.gather(
        *(figures_of(name, reduce, region) for name, reduce in figures for region in regions)
    )
    # Each endpoint's figures as lists in the order of "figures": 2,000 tables answer in
    # under a megabyte, where objects naming every metric took three.
    empty: list[float | None] = [None] * len(figures)
    endpoints: dict[str, dict[str, Any]] = {}

    def entry(endpoint: str) -> dict[str, Any]:
        found = endpoints.get(endpoint)
        if found is None:
            found = endpoints[endpoint] = {"merged": list(empty), "regions": {}}
        return found

    for index in range(len(figures)):
        for endpoint, figure in merged[index].items():
            entry(endpoint)["merged"][index] = figure
        for offset, region in enumerate(regions):
            for endpoint, figure in by_region[index * len(regions) + offset].items():
                if len(reported.get(endpoint, ())) > 1:
                    entry(endpoint)["regions"].setdefault(region, list(empty))[index] = figure
    for endpoint, found in endpoints.items():
        single = reported.get(endpoint, ())
        if len(single) == 1:
            found["regions"] = {single[0]: found["merged"]}
        else:
            found["regions"] = dict(sorted(found["regions"].items()))
    document = {
        "service": service,
        "start": start_ms // 1000,
        "end": end_ms // 1000,
        "step": step_name,
        "figures": [{"metric": name, "reduce": reduce} for name, reduce in figures],
        "endpoints": dict(sorted(endpoints.items())),
    }
    return web.Response(body=orjson.dumps(document), content_type="application/json")


async def _figures(
    store: Store, name: str, reduce: str, step_ms: int, start_ms: int, end_ms: int, service: str, region: str | None
) -> dict[str, float]:
    """Each endpoint's figure of one metric: its points reduced as the page reduced them (the
    total added in time order, one point after the other, as the dashboard adds them)."""
    if reduce == "last":
        return await store.endpoint_latest(name, step_ms, start_ms, end_ms, service=service, region=region)
    totals = await store.endpoint_totals(name, step_ms, start_ms, end_ms, service=service, region=region)
    if reduce == "mean":
        return {endpoint: found.total / found.points for endpoint, found in totals.items()}
    return {endpoint: found.total for endpoint, found in totals.items()}


def _parameters(request: web.Request) -> tuple[str, int, int, str]:
    params = request.query
    service = params.get("service")
    if not service:
        raise HttpError(Kind.BAD_QUERY, "service is required")
    for name in ("start", "end"):
        if not params.get(name):
            raise HttpError(Kind.BAD_QUERY, f"{name} is required")
    start = epoch_seconds(params["start"], "start")
    end = epoch_seconds(params["end"], "end")
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
    return service, start * 1000, end * 1000, step_name
