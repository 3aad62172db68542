"""``GET /api/v1/summary``: every figure equals what the per-table queries of ``/api/v1/query``
reduce to, merged and per region, for every endpoint of the service, on the memory store and
on SQLite (whose store reduces the values itself); bad parameters are 400."""

from __future__ import annotations

import pytest

from receiver.store import open_store_from_url
from receiver.views.summary import FIGURES
from tests.apps import receiver_app, serve_app
from tests.builders import T0, make_sample, make_series

SERVICE = "aws-dynamodb::123456789012"
OTHER = "aws-dynamodb::210987654321"
T0_S = T0 // 1000
MINUTES = 6
WEST, EAST = "eu-west-1", "us-east-1"


def _samples():
    samples = []
    for minute in range(MINUTES):
        # "Global" in two regions, throttled in one; "Local" in one region, provisioned.
        samples += [
            make_sample("Global", "ConsumedReadCapacityUnits", minute, value=60.0 * (minute + 1), region=WEST),
            make_sample("Global", "ConsumedReadCapacityUnits", minute, value=6.0 * (minute + 3), region=EAST),
            make_sample("Global", "ProvisionedReadCapacityUnits", minute, value=100.0 + minute, region=WEST),
            make_sample("Global", "ProvisionedReadCapacityUnits", minute, value=40.0, region=EAST),
            make_sample("Local", "ConsumedWriteCapacityUnits", minute, value=30.0 + minute, region=WEST),
            make_sample("Local", "ProvisionedWriteCapacityUnits", minute, value=10.0, region=WEST),
            make_sample("Local", "ConsumedReadCapacityUnits", minute, value=7.0, account="210987654321"),
        ]
        # "Global" writes in one region, then in both: its merged values lie in two regions
        # ('' once both report); "Local" misses a minute.
        samples.append(make_sample("Global", "ConsumedWriteCapacityUnits", minute, value=0.7 * minute, region=WEST))
        if minute >= 3:
            samples.append(make_sample("Global", "ConsumedWriteCapacityUnits", minute, value=0.1, region=EAST))
        if minute != 2:
            samples.append(make_sample("Local", "ConsumedReadCapacityUnits", minute, value=0.3 * minute, region=WEST))
        if minute % 2 == 0:
            samples += [
                make_sample(
                    "Global", "ThrottledRequests", minute, value=2.0 + minute, region=WEST, operation="GetItem"
                ),
                make_sample("Local", "SystemErrors", minute, value=1.0, region=WEST, operation="PutItem"),
            ]
    samples.append(
        make_sample(series=make_series("ThrottledRequests", "Local", region=WEST, operation="UpdateItem"), minute=1)
    )
    # Minutes on both sides of the next hour's start (T0 is 14 minutes into its hour).
    samples += [
        make_sample("Local", "ConsumedWriteCapacityUnits", minute, value=1.0 + minute, region=WEST)
        for minute in (44, 45, 46, 48)
    ]
    return samples


@pytest.fixture(params=["memory", "sqlite"])
async def client(request, tmp_path):
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path}/metrics.db"
    store = open_store_from_url(url, minute_retention_days=3650, hour_retention_days=3650)
    app = receiver_app(store, derive_interval_s=0.01, minute_retention_days=3650, hour_retention_days=3650)
    async with serve_app(app) as client:
        await client.deliver(_samples())
        yield client


async def summary(client, **params):
    """The status and answer, each endpoint's lists of figures made {metric: figure}."""
    args = {"service": SERVICE, "start": T0_S, "end": T0_S + MINUTES * 60, **params}
    response = await client.get("/api/v1/summary", params=args)
    body = await response.json()
    if response.status == 200:
        names = [figure["metric"] for figure in body["figures"]]
        for figures in body["endpoints"].values():
            assert all(len(values) == len(names) for values in [figures["merged"], *figures["regions"].values()])
            figures["merged"] = dict(zip(names, figures["merged"], strict=True))
            figures["regions"] = {r: dict(zip(names, values, strict=True)) for r, values in figures["regions"].items()}
    return response.status, body


async def expected(client, endpoint, region=None, step="1m", start=T0_S, end=T0_S + MINUTES * 60):
    """Each figure as the dashboard worked it out from /api/v1/query: null without points."""
    figures = {}
    for metric, reduce in FIGURES:
        params = {"metric": metric, "service": SERVICE, "endpoint": endpoint, "start": start, "end": end, "step": step}
        if region is not None:
            params["region"] = region
        response = await client.get("/api/v1/query", params=params)
        assert response.status == 200, await response.text()
        values = [value for _, value in (await response.json())["points"]]
        if not values:
            figures[metric] = None
        elif reduce == "mean":
            figures[metric] = _added(values) / len(values)
        elif reduce == "sum":
            figures[metric] = _added(values)
        else:
            figures[metric] = values[-1]
    return figures


def _added(values):
    total = 0.0
    for value in values:
        total += value
    return total


async def test_every_figure_equals_the_per_table_queries_merged_and_per_region(client) -> None:
    status, body = await summary(client)
    assert status == 200, body
    assert body["service"] == SERVICE and body["step"] == "1m"
    assert [(f["metric"], f["reduce"]) for f in body["figures"]] == list(FIGURES)
    assert sorted(body["endpoints"]) == ["Global", "Local"]
    assert sorted(body["endpoints"]["Global"]["regions"]) == [WEST, EAST]
    assert sorted(body["endpoints"]["Local"]["regions"]) == [WEST]
    for endpoint, figures in body["endpoints"].items():
        assert figures["merged"] == await expected(client, endpoint), endpoint
        for region, by_region in figures["regions"].items():
            assert by_region == await expected(client, endpoint, region), (endpoint, region)
    # Worked out by hand: the mean of the merged minutes, the latest setting, the total count.
    merged = body["endpoints"]["Global"]["merged"]
    consumed = [(60.0 * (m + 1) + 6.0 * (m + 3)) / 60 for m in range(MINUTES)]
    assert merged["aws_dynamodb_endpoint_consumed_read_capacity_units"] == pytest.approx(sum(consumed) / MINUTES)
    assert (
        merged["aws_dynamodb_endpoint_provisioned_read_capacity_units"] == (100.0 + 5 + 40.0) / 2
    )  # Sum / SampleCount
    assert merged["aws_dynamodb_endpoint_read_throttled_requests"] == 2.0 + 4.0 + 6.0
    assert body["endpoints"]["Global"]["regions"][EAST]["aws_dynamodb_endpoint_read_throttled_requests"] is None
    assert merged["aws_dynamodb_endpoint_write_throttled_requests"] is None
    local = body["endpoints"]["Local"]["merged"]
    assert local["aws_dynamodb_endpoint_write_throttled_requests"] == 10.0
    assert local["aws_dynamodb_endpoint_write_system_errors"] == 3.0


async def test_hourly_figures_equal_the_hourly_queries(client) -> None:
    start = T0_S // 3600 * 3600
    end = start + 3 * 3600
    status, body = await summary(client, step="1h", start=start, end=end)
    assert status == 200, body
    assert body["step"] == "1h"
    assert sorted(body["endpoints"]) == ["Global", "Local"]
    for endpoint, figures in body["endpoints"].items():
        assert figures["merged"] == await expected(client, endpoint, step="1h", start=start, end=end)
        for region, by_region in figures["regions"].items():
            assert by_region == await expected(client, endpoint, region, step="1h", start=start, end=end)


async def test_only_the_services_endpoints_and_only_the_range(client) -> None:
    status, body = await summary(client, service=OTHER)
    assert status == 200
    assert list(body["endpoints"]) == ["Local"]
    assert body["endpoints"]["Local"]["merged"]["aws_dynamodb_endpoint_consumed_read_capacity_units"] == pytest.approx(
        7.0 / 60
    )
    assert (await summary(client, service="aws-dynamodb::000000000000"))[1]["endpoints"] == {}
    # A range before the data holds nothing.
    assert (await summary(client, start=T0_S - 7200, end=T0_S - 3600))[1]["endpoints"] == {}
    # The first two minutes only.
    status, body = await summary(client, end=T0_S + 60)
    figures = body["endpoints"]["Global"]["regions"][WEST]
    assert figures["aws_dynamodb_endpoint_provisioned_read_capacity_units"] == 101.0 / 2
    assert figures == await expected(client, "Global", WEST, end=T0_S + 60)


async def test_ranges_across_an_hour_and_over_gaps_equal_the_per_table_queries(client) -> None:
    ranges = [
        (T0_S + 40 * 60, T0_S + 50 * 60),  # across the hour's end, a minute missing
        (T0_S + 45 * 60, T0_S + 46 * 60),
        (T0_S + 47 * 60, T0_S + 47 * 60),  # one minute without values
        (T0_S, T0_S + 60 * 60),
    ]
    for start, end in ranges:
        status, body = await summary(client, start=start, end=end)
        assert status == 200, body
        for endpoint, figures in body["endpoints"].items():
            assert figures["merged"] == await expected(client, endpoint, start=start, end=end), (start, endpoint)
            for region, by_region in figures["regions"].items():
                assert by_region == await expected(client, endpoint, region, start=start, end=end), (start, region)
    _, body = await summary(client, start=T0_S + 40 * 60, end=T0_S + 50 * 60)
    local = body["endpoints"]["Local"]["merged"]
    assert local["aws_dynamodb_endpoint_consumed_write_capacity_units"] == pytest.approx((45 + 46 + 47 + 49) / 4 / 60)
    assert (await summary(client, start=T0_S + 47 * 60, end=T0_S + 47 * 60))[1]["endpoints"] == {}


async def test_an_endpoint_whose_merged_values_lie_in_two_regions(client) -> None:
    # Global's writes: eu-west-1 alone for three minutes (merged values of that region), then
    # both regions (merged values of no region).
    status, body = await summary(client)
    assert status == 200, body
    figures = body["endpoints"]["Global"]
    name = "aws_dynamodb_endpoint_consumed_write_capacity_units"
    merged = [0.7 * m / 60 for m in range(3)] + [(0.7 * m + 0.1) / 60 for m in range(3, MINUTES)]
    assert figures["merged"][name] == pytest.approx(sum(merged) / MINUTES)
    assert figures["merged"] == await expected(client, "Global")
    assert figures["regions"][WEST][name] == pytest.approx(sum(0.7 * m / 60 for m in range(MINUTES)) / MINUTES)
    assert figures["regions"][EAST][name] == pytest.approx(0.1 / 60)
    for region in (WEST, EAST):
        assert figures["regions"][region] == await expected(client, "Global", region)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"service": ""}, "service is required"),
        ({"start": ""}, "start is required"),
        ({"end": ""}, "end is required"),
        ({"start": "soon"}, "start must be whole epoch seconds"),
        ({"end": "-1"}, "end is out of range"),
        ({"start": str(T0_S + 600), "end": str(T0_S)}, "start must not be after end"),
        ({"step": "5m"}, "step '5m' is not supported"),
        ({"start": "0", "end": str(T0_S)}, "more than 20000 steps"),
    ],
)
async def test_a_bad_parameter_is_400_naming_it(client, params, message) -> None:
    status, body = await summary(client, **params)
    assert status == 400
    assert message in body["error"]
