"""Alarms inside the receiver: two receivers on one store notify once, /api/v1/alarms, /metrics."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

from receiver.alarms.settings import AlarmSettings
from receiver.config import ServeConfig
from receiver.model import FIRING, MINUTE_MS, RESOLVED, AlarmEvent
from receiver.server.app import create_app
from receiver.store import SQLiteStore
from receiver.views.alarms import alarms_document
from tests.alarms.kit import SERVICE
from tests.alarms.test_alarms_notify import Sink
from tests.apps import serve_app

RULE = """\
rules:
  throttled:
    expression: aws_dynamodb_endpoint_write_throttled_requests
    scope: endpoint
    op: ">"
    threshold: 0
    period: 3
    count: 2
    message: "{endpoint}: {value} writes throttled"
"""


def config(alarms_dir: Path, hook: str) -> ServeConfig:
    return ServeConfig(
        allow_unauthenticated=True, metrics_settle_s=0, alarms=AlarmSettings(alarms_dir, webhooks=(hook,))
    )


async def test_two_receivers_on_one_store_send_one_notification_and_serve_it(tmp_path):
    (tmp_path / "alarms").mkdir()
    (tmp_path / "alarms" / "a.yaml").write_text(RULE)
    db = tmp_path / "metrics.db"
    seed = SQLiteStore(db)
    await seed.open()
    now_ms = int(time.time() * 1000)
    latest = now_ms - MINUTE_MS - now_ms % MINUTE_MS  # the latest complete minute (settle 0)
    for i in (2, 1, 0):
        await seed.put_derived(MINUTE_MS, latest - i * MINUTE_MS, 10 - i, [_value(latest - i * MINUTE_MS, 5.0)])
    await seed.close()

    sink = Sink()
    async with serve_app(sink.app) as hook:
        async with contextlib.AsyncExitStack() as stack:
            receivers = [
                await stack.enter_async_context(
                    serve_app(create_app(config(tmp_path / "alarms", hook.base + "/hook"), SQLiteStore(db)))
                )
                for _ in range(2)
            ]
            document = await _wait_for_active(receivers[0])
            await _wait_for_active(receivers[1])
            fired = [await _fired(receiver) for receiver in receivers]
        # Both receivers have stopped: every queued notification went out.
    assert len(sink.bodies) == 1
    assert sink.bodies[0]["status"] == "firing" and sink.bodies[0]["endpoint"] == "GameScores"
    (active,) = document["active"]
    assert (active["rule"], active["endpoint"], active["value"], active["message"]) == (
        "throttled",
        "GameScores",
        5.0,
        "GameScores: 5 writes throttled",
    )
    assert active["since"] == (latest - MINUTE_MS) // 1000
    assert document["recent"][0]["status"] == "firing"
    assert sorted(fired) == [0, 1]  # counted by the replica that sent it


async def _fired(client) -> int:
    text = await (await client.get("/metrics", headers={"Accept-Encoding": "identity"})).text()
    for line in text.splitlines():
        if line.startswith('metric_stream_receiver_alarms_fired_total{rule="throttled"} '):
            return int(float(line.split()[-1]))
    return 0


def _value(time_ms: int, value: float):
    from receiver.model import DerivedValue

    return DerivedValue(
        "aws_dynamodb_endpoint_write_throttled_requests",
        "endpoint",
        SERVICE,
        "GameScores",
        "AWS_DYNAMODB",
        time_ms,
        value,
    )


async def _wait_for_active(client) -> dict:
    for _ in range(200):
        response = await client.get("/api/v1/alarms")
        document = await response.json()
        if document["active"]:
            return document
        await asyncio.sleep(0.05)
    raise AssertionError(f"no active alarm: {document}")


def event(seq, kind, minute_ms, endpoint="T"):
    return AlarmEvent("r", SERVICE, endpoint, seq, kind, minute_ms, 1.0, 0.0, f"{kind} {seq}", minute_ms + 90_000)


def test_the_document_dates_an_alarm_from_the_start_of_its_episode_and_lists_recent_newest_first():
    m = 1_700_000_040_000
    history = [
        event(1, FIRING, m),
        event(2, RESOLVED, m + MINUTE_MS),
        event(3, FIRING, m + 5 * MINUTE_MS),
        event(4, FIRING, m + 9 * MINUTE_MS),
        event(1, FIRING, m + 2 * MINUTE_MS, endpoint="U"),
        event(2, RESOLVED, m + 3 * MINUTE_MS, endpoint="U"),
    ]
    heads = [history[3], history[5]]
    document = alarms_document(heads, history, [], m + 10 * MINUTE_MS)
    (active,) = document["active"]
    assert (active["endpoint"], active["since"], active["minute"]) == (
        "T",
        (m + 5 * MINUTE_MS) // 1000,
        (m + 9 * MINUTE_MS) // 1000,
    )
    assert [e["minute"] for e in document["recent"]] == sorted((e.minute_ms // 1000 for e in history), reverse=True)
