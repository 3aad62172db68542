"""Tables per region: one name in two regions keeps its merged values under SkyWalking's names,
and gains its values per region on the query API (`region=`), in /api/v1/entities, on /metrics
and in OTLP. Fed through the Firehose endpoint; expected values are worked out here."""

from __future__ import annotations

import pytest

from receiver.exporters.otlp_encode import encode_minute
from receiver.keys import RULES, STORE
from receiver.model import MINUTE_MS
from receiver.store import open_store_from_url
from receiver.views.prometheus import derived_families, render
from tests.apps import receiver_app, serve_app
from tests.builders import T0, make_sample

SERVICE = "aws-dynamodb::123456789012"
T0_S = T0 // 1000
CONSUMED = "aws_dynamodb_endpoint_consumed_read_capacity_units"
LATENCY = "aws_dynamodb_endpoint_get_successful_request_latency"


@pytest.fixture
async def client():
    # Retention long enough that the builders' 2023 samples are current.
    store = open_store_from_url("memory://", minute_retention_days=3650, hour_retention_days=3650)
    app = receiver_app(store, derive_interval_s=0.01, minute_retention_days=3650, hour_retention_days=3650)
    async with serve_app(app) as client:
        await client.deliver(
            [
                # "Global" in two regions: 120 and 600 units in the minute, latency 10 ms
                # over 10 requests and 40 ms over 30.
                make_sample("Global", "ConsumedReadCapacityUnits", 0, value=120.0, region="us-east-1"),
                make_sample("Global", "ConsumedReadCapacityUnits", 0, value=600.0, region="eu-west-1"),
                make_sample("Global", "SuccessfulRequestLatency", 0, 100.0, count=10, operation="GetItem"),
                make_sample(
                    "Global", "SuccessfulRequestLatency", 0, 1200.0, count=30, operation="GetItem", region="eu-west-1"
                ),
                # "Local" in one region only.
                make_sample("Local", "ConsumedReadCapacityUnits", 0, value=60.0, region="eu-west-1"),
            ]
        )
        yield client


async def query(client, metric, endpoint=None, **params):
    args = {"metric": metric, "service": SERVICE, "start": T0_S, "end": T0_S + 60, **params}
    if endpoint is not None:
        args["endpoint"] = endpoint
    response = await client.get("/api/v1/query", params=args)
    return response.status, await response.json()


async def test_without_a_region_the_values_merge_every_region_as_skywalking_does(client) -> None:
    assert (await query(client, CONSUMED, "Global"))[1]["points"] == [[T0_S, (120 + 600) / 60]]
    # Σ Sum ÷ Σ SampleCount over both regions: a mean weighted by requests.
    assert (await query(client, LATENCY, "Global"))[1]["points"] == [[T0_S, (100 + 1200) / (10 + 30)]]


async def test_a_region_narrows_an_endpoint_metric_to_the_table_there(client) -> None:
    assert (await query(client, CONSUMED, "Global", region="us-east-1"))[1]["points"] == [[T0_S, 120 / 60]]
    assert (await query(client, CONSUMED, "Global", region="eu-west-1"))[1]["points"] == [[T0_S, 600 / 60]]
    assert (await query(client, LATENCY, "Global", region="eu-west-1"))[1]["points"] == [[T0_S, 1200 / 30]]
    assert (await query(client, CONSUMED, "Local", region="eu-west-1"))[1]["points"] == [[T0_S, 1.0]]
    assert (await query(client, CONSUMED, "Local", region="us-east-1"))[1]["points"] == []


async def test_a_region_on_an_account_metric_is_refused(client) -> None:
    status, body = await query(client, "aws_dynamodb_consumed_read_capacity_units", region="us-east-1")
    assert status == 400
    assert "region must not be given" in body["error"]


async def test_entities_say_which_regions_each_table_reports_from(client) -> None:
    response = await client.get("/api/v1/entities")
    [service] = (await response.json())["services"]
    assert service["endpoints"] == ["Global", "Local"]
    assert service["regions"] == {"Global": ["eu-west-1", "us-east-1"], "Local": ["eu-west-1"]}


async def test_metrics_and_otlp_carry_one_series_per_region(client) -> None:
    values = [v for v in await client.app[STORE].bucket_values(MINUTE_MS, T0) if v.metric == CONSUMED]
    infos = [info for info in client.app[RULES].current.metrics if info.name == CONSUMED]
    text = render(derived_families(values, infos))
    lines = sorted(line for line in text.splitlines() if line.startswith(CONSUMED))
    assert lines == [
        f'{CONSUMED}{{service="{SERVICE}",endpoint="Global",region="eu-west-1",layer="AWS_DYNAMODB"}} 10.0',
        f'{CONSUMED}{{service="{SERVICE}",endpoint="Global",region="us-east-1",layer="AWS_DYNAMODB"}} 2.0',
        f'{CONSUMED}{{service="{SERVICE}",endpoint="Local",region="eu-west-1",layer="AWS_DYNAMODB"}} 1.0',
    ]
    [request] = encode_minute(values, lambda name: None)
    points = request.resource_metrics[0].scope_metrics[0].metrics[0].gauge.data_points
    assert sorted(
        ({a.key: a.value.string_value for a in point.attributes}["cloud.region"], point.as_double) for point in points
    ) == [("eu-west-1", 1.0), ("eu-west-1", 10.0), ("us-east-1", 2.0)]
