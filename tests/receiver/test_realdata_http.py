"""Every file of the real payload corpus (../shared/realdata) through the receiver over HTTP:
each good record stored with the values its source expects, each bad one quarantined with
its reason and the rest of its delivery taken, and SkyWalking's e2e expectations met by the
derived metrics (the repository's rules for DynamoDB, SkyWalking's own for S3 and API Gateway)."""

from __future__ import annotations

import asyncio
import gzip as gzip_module
from urllib.parse import quote

import orjson
import pytest

from receiver.config import ServeConfig
from receiver.server.app import INGEST_PATH, create_app
from receiver.store.memory import MemoryStore
from tests.apps import serve_app
from tests.builders import Delivery
from tests.formats.realdata import REALDATA, CorpusCase, available, corpus_cases, corpus_files, covered

pytestmark = pytest.mark.skipif(not available(), reason="../shared/realdata is not there")

CASES = list(corpus_cases())
ALL_TIME = 3650.0
"""The corpus is from 2020-2023: a retention that keeps it (and derives it)."""


def statistics(sample):
    return (
        sample.identity,
        sample.series.unit,
        sample.count,
        sample.sum,
        sample.min,
        sample.max,
        sample.stats,
        sample.labels,
    )


async def deliver(client, case: CorpusCase) -> None:
    delivery = Delivery(records=case.records)
    body, headers = delivery.body, delivery.headers
    if case.body is not None:  # a captured Firehose body: its own request id
        body = case.body
        plain = gzip_module.decompress(body) if case.gzip else body
        headers = {**headers, "X-Amz-Firehose-Request-Id": orjson.loads(plain)["requestId"]}
        if case.gzip:
            headers["Content-Encoding"] = "gzip"
    response = await client.post(INGEST_PATH, data=body, headers=headers)
    assert response.status == 200, await response.text()


def test_every_corpus_file_is_covered():
    assert set(corpus_files()) <= covered(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_each_corpus_case_is_stored_or_quarantined_as_its_source_expects(case):
    store = MemoryStore()
    config = ServeConfig(allow_unauthenticated=True, minute_retention_days=ALL_TIME)
    async with serve_app(create_app(config, store)) as client:
        await deliver(client, case)
        stored = await store.samples(0, 2**62)
        # The store keeps a datapoint by its identity, the last one sent winning: SkyWalking's
        # flat 1.x attributes (sent as 1.0 directly) make labels, not dimensions, of TableName
        # and the like, so two of its datapoints can share an identity.
        expected = {sample.identity: sample for sample in case.samples}
        assert sorted(map(statistics, stored)) == sorted(map(statistics, expected.values()))
        quarantined = await store.quarantined()
        assert [(r.index, r.reason) for r in quarantined] == [
            (index, expected.reason) for index, expected in enumerate(case.expected) if expected.reason
        ]
        assert [r.data for r in quarantined] == [
            record for record, expected in zip(case.records, case.expected) if expected.reason
        ]


async def values_of(client, case: CorpusCase, metric: str, service: str, endpoint: str | None = None) -> list:
    """The metric's points over the hours of the case's samples."""
    start = min(sample.start_ms for sample in case.samples) // 1000 - 3600
    end = max(sample.start_ms for sample in case.samples) // 1000 + 3600
    path = f"/api/v1/query?metric={metric}&service={quote(service)}&start={start}&end={end}"
    if endpoint is not None:
        path += f"&endpoint={quote(endpoint)}"
    answer = await (await client.get(path)).json()
    return answer["points"]


async def derived(client, case: CorpusCase, metric: str, service: str, endpoint: str | None = None) -> list:
    """The metric's points once the deriver has them (it runs every 2 s)."""
    for _ in range(150):
        points = await values_of(client, case, metric, service, endpoint)
        if points:
            return points
        await asyncio.sleep(0.1)
    return []


DYNAMODB_HAS_VALUE = (
    "aws_dynamodb_account_max_writes",
    "aws_dynamodb_max_provisioned_read_capacity_utilization",
    "aws_dynamodb_account_max_table_level_reads",
    "aws_dynamodb_account_max_table_level_writes",
    "aws_dynamodb_time_to_live_deleted_item_count",
    "aws_dynamodb_user_errors",
    "aws_dynamodb_read_system_errors",
    "aws_dynamodb_write_system_errors",
    "aws_dynamodb_scan_returned_item_count",
    "aws_dynamodb_query_returned_item_count",
)


async def test_skywalking_dynamodb_e2e_expectations_hold_but_for_the_mismatched_metric():
    """SkyWalking expects aws-dynamodb::xxxxxxxx with eleven metrics valued. Sent one metric
    per record, ten are; the eleventh, account_provisioned_read_capacity_utilization, comes
    from the datapoint whose MetricName contradicts its metric's name, which is quarantined."""
    [case] = [
        c for c in CASES if c.name == "skywalking_e2e_dynamodb_data-1.json (opentelemetry0.7, one metric per record)"
    ]
    store = MemoryStore()
    config = ServeConfig(allow_unauthenticated=True, minute_retention_days=ALL_TIME)
    async with serve_app(create_app(config, store)) as client:
        await deliver(client, case)
        service = "aws-dynamodb::xxxxxxxx"
        for metric in DYNAMODB_HAS_VALUE:
            assert await derived(client, case, metric, service), metric
        entities = await (await client.get("/api/v1/entities")).json()
        assert {"name": service, "layer": "AWS_DYNAMODB"}.items() <= entities["services"][0].items()
        assert (
            await values_of(client, case, "aws_dynamodb_account_provisioned_read_capacity_utilization", service) == []
        )
        [record] = await store.quarantined()
        assert record.reason == "metric_name_mismatch"


@pytest.mark.parametrize(
    "source, checks",
    [
        (
            "skywalking_e2e_s3_data-1.json",
            [("aws_s3_4xx", "aws-s3::skywalking", None), ("aws_s3_5xx", "aws-s3::skywalking", None)],
        ),
        (
            "skywalking_e2e_api-gateway_data-1.json",
            [
                ("aws_gateway_service_4xx", "aws-api-gateway::$default:6m85d5acx7", None),
                ("aws_gateway_endpoint_latency", "aws-api-gateway::$default:6m85d5acx7", "ANY:/graphql"),
            ],
        ),
    ],
)
async def test_skywalking_s3_and_gateway_e2e_expectations_hold_with_skywalkings_own_rules(source, checks):
    [case] = [c for c in CASES if c.name == f"{source} (opentelemetry0.7, one message)"]
    config = ServeConfig(
        allow_unauthenticated=True, minute_retention_days=ALL_TIME, rules_dir=REALDATA / "skywalking-otel-rules"
    )
    async with serve_app(create_app(config, MemoryStore())) as client:
        await deliver(client, case)
        for metric, service, endpoint in checks:
            assert await derived(client, case, metric, service, endpoint), metric
