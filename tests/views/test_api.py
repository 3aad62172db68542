"""The query API over HTTP, fed through the Firehose endpoint: entities, metrics, query."""

from __future__ import annotations

import asyncio

import pytest

from receiver.config import ServeConfig
from receiver.keys import DERIVER
from receiver.model import HOUR_MS
from receiver.server.app import INGEST_PATH, create_app
from receiver.store import open_store_from_url
from tests.apps import serve_app
from tests.builders import T0, Delivery, make_sample

SERVICE = "aws-dynamodb::123456789012"
T0_S = T0 // 1000
DAY = 86_400


@pytest.fixture
async def client():
    # Retention long enough that the builders' 2023 samples are current.
    config = ServeConfig(
        allow_unauthenticated=True, derive_interval_s=0.01, minute_retention_days=3650, hour_retention_days=3650
    )
    app = create_app(config, open_store_from_url("memory://", minute_retention_days=3650, hour_retention_days=3650))
    async with serve_app(app) as client:
        samples = []
        for minute in range(3):
            for table in ("GameScores", "Orders"):
                samples.append(
                    make_sample(table, "ConsumedReadCapacityUnits", minute, value=60.0 * (minute + 1), count=3)
                )
                samples.append(
                    make_sample(table, "SuccessfulRequestLatency", minute, value=50.0, count=10, operation="GetItem")
                )
        await client.deliver(samples)
        yield client


async def get(client, path, **params):
    response = await client.get(path, params=params)
    return response.status, await response.json()


async def test_entities_list_the_account_and_its_tables(client):
    status, body = await get(client, "/api/v1/entities")
    assert status == 200
    assert body == {
        "services": [
            {
                "name": SERVICE,
                "layer": "AWS_DYNAMODB",
                "endpoints": ["GameScores", "Orders"],
                "regions": {"GameScores": ["us-east-1"], "Orders": ["us-east-1"]},
            }
        ]
    }


async def test_query_gives_each_minute_of_a_table(client):
    status, body = await get(
        client,
        "/api/v1/query",
        metric="aws_dynamodb_endpoint_consumed_read_capacity_units",
        service=SERVICE,
        endpoint="Orders",
        start=T0_S,
        end=T0_S + 600,
    )
    assert status == 200
    assert body["metric"] == "aws_dynamodb_endpoint_consumed_read_capacity_units"
    assert body["unit"] == "units/s"
    # Σ Sum ÷ 60 s: 60, 120, 180 units in the three minutes.
    assert body["points"] == [[T0_S, 1.0], [T0_S + 60, 2.0], [T0_S + 120, 3.0]]


async def test_query_of_a_service_metric_adds_the_tables(client):
    status, body = await get(
        client,
        "/api/v1/query",
        metric="aws_dynamodb_consumed_read_capacity_units",
        service=SERVICE,
        start=T0_S,
        end=T0_S + 60,
    )
    assert status == 200
    assert body["points"] == [[T0_S, 2.0], [T0_S + 60, 4.0]]


async def test_query_range_is_inclusive_and_leaves_out_empty_minutes(client):
    _, body = await get(
        client,
        "/api/v1/query",
        metric="aws_dynamodb_endpoint_get_successful_request_latency",
        service=SERVICE,
        endpoint="GameScores",
        start=T0_S + 60,
        end=T0_S + 3600,
    )
    assert body["points"] == [[T0_S + 60, 5.0], [T0_S + 120, 5.0]]


async def test_hourly_step_gives_the_hour_values(client):
    hour_s = (T0 - T0 % HOUR_MS) // 1000
    app_deriver = client.app[DERIVER]
    await app_deriver.derive_pending(hours=True)
    _, body = await get(
        client,
        "/api/v1/query",
        metric="aws_dynamodb_endpoint_consumed_read_capacity_units",
        service=SERVICE,
        endpoint="Orders",
        start=hour_s,
        end=hour_s + 3600,
        step="1h",
    )
    # The hour's average rate: (60 + 120 + 180) units over 3600 s.
    assert body["points"] == [[hour_s, pytest.approx(360 / 3600)]]


async def test_the_deriver_runs_by_itself_after_a_delivery(client):
    sample = make_sample("Late", "ConsumedReadCapacityUnits", 5, value=600.0, count=1)
    delivery = Delivery([sample])
    response = await client.post(INGEST_PATH, data=delivery.body, headers=delivery.headers)
    assert response.status == 200
    for _ in range(300):
        _, body = await get(
            client,
            "/api/v1/query",
            metric="aws_dynamodb_endpoint_consumed_read_capacity_units",
            service=SERVICE,
            endpoint="Late",
            start=T0_S,
            end=T0_S + 3600,
        )
        if body["points"]:
            break
        await asyncio.sleep(0.02)
    assert body["points"] == [[T0_S + 300, 10.0]]


@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        ({"service": SERVICE, "start": T0_S, "end": T0_S}, 400, "metric is required"),
        ({"metric": "nope", "service": SERVICE, "start": T0_S, "end": T0_S}, 404, "metric 'nope' is not defined"),
        ({"metric": "aws_dynamodb_user_errors", "start": T0_S, "end": T0_S}, 400, "service is required"),
        ({"metric": "aws_dynamodb_user_errors", "service": SERVICE, "end": T0_S}, 400, "start is required"),
        (
            {"metric": "aws_dynamodb_user_errors", "service": SERVICE, "start": "yesterday", "end": T0_S},
            400,
            "start must be whole epoch seconds",
        ),
        (
            {"metric": "aws_dynamodb_user_errors", "service": SERVICE, "start": T0_S, "end": T0_S - 1},
            400,
            "start must not be after end",
        ),
        (
            {"metric": "aws_dynamodb_user_errors", "service": SERVICE, "start": T0_S, "end": T0_S, "step": "5m"},
            400,
            "step '5m'",
        ),
        (
            {"metric": "aws_dynamodb_user_errors", "service": SERVICE, "start": T0_S, "end": T0_S + 30 * DAY},
            400,
            "use step=1h",
        ),
        (
            {"metric": "aws_dynamodb_endpoint_user_errors_x", "service": SERVICE, "start": T0_S, "end": T0_S},
            404,
            "not defined",
        ),
        (
            {"metric": "aws_dynamodb_endpoint_read_throttled_requests", "service": SERVICE, "start": T0_S, "end": T0_S},
            400,
            "endpoint is required",
        ),
        (
            {
                "metric": "aws_dynamodb_user_errors",
                "service": SERVICE,
                "endpoint": "GameScores",
                "start": T0_S,
                "end": T0_S,
            },
            400,
            "endpoint must not be given",
        ),
    ],
)
async def test_bad_parameters_are_named(client, params, status, message):
    got, body = await get(client, "/api/v1/query", **params)
    assert got == status
    assert message in body["error"]
