"""Two receivers on one DynamoDB table (moto) take different parts of the same minutes at
the same time; both then serve the values a single receiver given everything computes."""

from __future__ import annotations

import asyncio
import threading

import pytest
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from receiver.config import ServeConfig
from receiver.keys import DERIVER
from receiver.server.app import INGEST_PATH, create_app
from receiver.store import open_store_from_url
from tests.apps import serve_app
from tests.builders import T0, Delivery, make_sample

SERVICE = "aws-dynamodb::123456789012"
T0_S = T0 // 1000
RETENTION = {"minute_retention_days": 3650, "hour_retention_days": 3650}


@pytest.fixture
def moto_endpoint(monkeypatch):
    """A moto server on a free loopback port that answers one request at a time.

    DynamoDB applies each write atomically; moto's backend does not lock, so a threaded
    moto server could interleave two updates of one item. One request at a time restores
    DynamoDB's atomicity without weakening what the receivers do.
    """
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    server = make_server(
        "127.0.0.1",
        0,
        DomainDispatcherApplication(create_backend_app),
        threaded=False,
        request_handler=MotoRequestHandler,
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        thread.join(10)


def workload() -> list:
    samples = []
    for minute in range(2):
        for table in ("GameScores", "Orders", "Sessions", "AuditLog"):
            samples.append(make_sample(table, "ConsumedReadCapacityUnits", minute, value=60.0 * (minute + 2), count=6))
            for operation, latency in (("GetItem", 4.0), ("Query", 9.0), ("BatchGetItem", 7.0)):
                samples.append(
                    make_sample(
                        table,
                        "SuccessfulRequestLatency",
                        minute,
                        value=latency * 20,
                        count=20 + minute,
                        operation=operation,
                    )
                )
                samples.append(make_sample(table, "ThrottledRequests", minute, value=1.0, count=1, operation=operation))
    return samples


QUERIES = [
    ("aws_dynamodb_consumed_read_capacity_units", None),
    ("aws_dynamodb_get_successful_request_latency", None),
    ("aws_dynamodb_read_throttled_requests", None),
    ("aws_dynamodb_endpoint_consumed_read_capacity_units", "Orders"),
    ("aws_dynamodb_endpoint_get_successful_request_latency", "GameScores"),
    ("aws_dynamodb_endpoint_query_successful_request_latency", "AuditLog"),
]


async def query_all(client) -> dict:
    found = {}
    for metric, endpoint in QUERIES:
        params = {"metric": metric, "service": SERVICE, "start": T0_S, "end": T0_S + 3600}
        if endpoint:
            params["endpoint"] = endpoint
        response = await client.get("/api/v1/query", params=params)
        assert response.status == 200
        found[(metric, endpoint)] = (await response.json())["points"]
    return found


async def test_two_receivers_writing_one_minute_at_once_give_the_single_receiver_values(moto_endpoint):
    url = f"dynamodb://metrics?region=us-east-1&endpoint_url={moto_endpoint}"
    config = ServeConfig(allow_unauthenticated=True, derive_interval_s=0.01, **RETENTION)
    first_store = open_store_from_url(url, create=True, **RETENTION)
    second_store = open_store_from_url(url, create=True, **RETENTION)
    reference_app = create_app(config, open_store_from_url("memory://", **RETENTION))
    first_app, second_app = create_app(config, first_store), create_app(config, second_store)

    samples = workload()
    # Every series of a minute is split between the receivers, and a few go to both.
    to_first = samples[0::2] + samples[1:6]
    to_second = samples[1::2]
    async with serve_app(reference_app) as reference, serve_app(first_app) as first, serve_app(second_app) as second:
        whole = Delivery(samples)
        assert (await reference.post(INGEST_PATH, data=whole.body, headers=whole.headers)).status == 200
        await reference_app[DERIVER].derive_pending()

        parts = [(first, Delivery(to_first[i::3])) for i in range(3)] + [
            (second, Delivery(to_second[i::3])) for i in range(3)
        ]
        responses = await asyncio.gather(
            *(client.post(INGEST_PATH, data=d.body, headers=d.headers) for client, d in parts)
        )
        assert [r.status for r in responses] == [200] * len(parts)
        await asyncio.gather(first_app[DERIVER].derive_pending(), second_app[DERIVER].derive_pending())
        # Whoever holds the minute's lease finds what the other committed at its stale scan
        # (the other may also be leaving the minute to it: receiver/derive/replicas.py).
        await asyncio.gather(first_app[DERIVER].mark_stale(), second_app[DERIVER].mark_stale())
        await asyncio.gather(first_app[DERIVER].derive_pending(), second_app[DERIVER].derive_pending())

        expected = await query_all(reference)
        assert all(points for points in expected.values())
        assert await query_all(first) == expected
        assert await query_all(second) == expected
