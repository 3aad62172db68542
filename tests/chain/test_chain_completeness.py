"""Minutes complete when their data is in: an emulated metric stream sends a minute in
pieces, then corrects it late, then sends one short; the receiver's clock stands still, so
nothing here can settle by time unless the test moves it.

Through the project's Firehose emulator into a receiver with one alarm rule and a webhook:
the alarm on the throttling in the pieced minute is sent once its last expected series is
in, long before the settle time; a late value corrects the minute's values; a minute missing
one expected series is complete only when the clock passes its settle time.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from receiver.alarms.settings import AlarmSettings
from receiver.config import ServeConfig
from receiver.derive.completeness import ALL_ARRIVED, HISTORY_MINUTES, SETTLED
from receiver.keys import COMPLETENESS
from receiver.model import MINUTE_MS, Sample
from receiver.server.app import INGEST_PATH, create_app
from receiver.store import open_store_from_url
from receiver_tools.emulator import EmulatorConfig, FirehoseEmulator
from tests.alarms.test_alarms_notify import Sink
from tests.apps import serve_app
from tests.builders import T0, make_sample

pytestmark = pytest.mark.slow

SETTLE_S = 300.0
HISTORY = [T0 + i * MINUTE_MS for i in range(HISTORY_MINUTES)]
PIECED = HISTORY[-1] + MINUTE_MS
SHORT = PIECED + MINUTE_MS
SERVICE = "aws-dynamodb::123456789012"
RULE = """\
rules:
  writes_throttled:
    expression: aws_dynamodb_endpoint_write_throttled_requests
    scope: endpoint
    op: ">"
    threshold: 0
    period: 1
    message: "{endpoint}: {value} writes throttled"
"""


class Clock:
    """The receiver's clock: the newest history minute has just settled."""

    def __init__(self) -> None:
        self.now_s = (HISTORY[-1] + MINUTE_MS) / 1000 + SETTLE_S + 1

    def __call__(self) -> float:
        return self.now_s


def table_samples(table: str, at: int, throttled: float = 0.0, consumed: float = 600.0) -> list[Sample]:
    return [
        make_sample(table, "ConsumedWriteCapacityUnits", start_ms=at, value=consumed, count=10),
        make_sample(table, "ThrottledRequests", start_ms=at, value=throttled, count=1, operation="PutItem"),
    ]


async def eventually(check, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


async def test_a_minute_sent_in_pieces_late_and_short(tmp_path: Path) -> None:
    (tmp_path / "alarms").mkdir()
    (tmp_path / "alarms" / "rule.yaml").write_text(RULE)
    sink, clock = Sink(), Clock()
    async with serve_app(sink.app) as hook:
        config = ServeConfig(
            allow_unauthenticated=True,
            minute_retention_days=3650,
            hour_retention_days=3650,
            derive_interval_s=0.05,
            metrics_settle_s=SETTLE_S,
            alarms=AlarmSettings(tmp_path / "alarms", webhooks=(hook.base + "/hook",)),
        )
        store = open_store_from_url("memory://", minute_retention_days=3650, hour_retention_days=3650)
        async with serve_app(create_app(config, store, clock=clock)) as receiver:
            completeness = receiver.app[COMPLETENESS]
            emulator = EmulatorConfig(url=receiver.base + INGEST_PATH, buffer_interval_s=0, seed=5)
            async with FirehoseEmulator(emulator) as stream:

                async def send(samples: list[Sample]) -> None:
                    await stream.put_samples(samples)
                    await stream.flush()

                async def value(metric: str, endpoint: str, at: int) -> float | None:
                    query = {"metric": metric, "service": SERVICE, "endpoint": endpoint,
                             "start": str(at // 1000), "end": str(at // 1000)}  # fmt: skip
                    points = (await (await receiver.get("/api/v1/query", params=query)).json())["points"]
                    return points[0][1] if points else None

                # Settled minutes of both tables, as many as make a series expected.
                for at in HISTORY:
                    await send(table_samples("GameScores", at) + table_samples("Orders", at))
                consumed = "aws_dynamodb_endpoint_consumed_write_capacity_units"

                async def history_derived() -> bool:
                    return await value(consumed, "Orders", HISTORY[-1]) is not None

                await eventually(history_derived, "the history minutes were not derived")

                # The pieced minute: GameScores first, then Orders with its throttling.
                await send(table_samples("GameScores", PIECED))

                async def first_piece_derived() -> bool:
                    return await value(consumed, "GameScores", PIECED) is not None

                await eventually(first_piece_derived, "the first piece was not derived")
                status = completeness.status(PIECED)
                assert not status.complete
                assert [(s.expected, s.arrived) for s in status.sources] == [(4, 2)]
                assert sink.bodies == []

                await send(table_samples("Orders", PIECED, throttled=7.0))

                async def notified() -> bool:
                    return bool(sink.bodies)

                await eventually(notified, "no notification once the pieced minute was in")
                status = completeness.status(PIECED)
                assert (status.complete, status.by) == (True, ALL_ARRIVED)
                assert clock() < (PIECED + MINUTE_MS) / 1000 + SETTLE_S  # long before it settles
                (body,) = sink.bodies
                assert (body["status"], body["endpoint"], body["value"]) == ("firing", "Orders", 7.0)

                # Late: a corrected datapoint of the complete minute replaces the first.
                await send([table_samples("GameScores", PIECED, consumed=1200.0)[0]])

                async def corrected() -> bool:
                    return await value(consumed, "GameScores", PIECED) == 1200.0 / 60

                await eventually(corrected, "the late value did not correct the minute")

                # Short: Orders never reports this minute.
                await send(table_samples("GameScores", SHORT))

                async def short_derived() -> bool:
                    return await value(consumed, "GameScores", SHORT) is not None

                await eventually(short_derived, "the short minute was not derived")

                async def short_observed() -> bool:  # the values are stored just before
                    return [s.arrived for s in completeness.status(SHORT).sources] == [2]

                await eventually(short_observed, "the short minute's series were not counted")
                assert completeness.latest_complete_minute() == PIECED
                metrics = await (await receiver.get("/metrics", headers={"Accept-Encoding": "identity"})).text()
                awaited = 'account="123456789012",region="us-east-1"'
                assert f"metric_stream_receiver_awaited_minute_expected_series{{{awaited}}} 4" in metrics
                assert f"metric_stream_receiver_awaited_minute_arrived_series{{{awaited}}} 2" in metrics
                clock.now_s = (SHORT + MINUTE_MS) / 1000 + SETTLE_S
                assert completeness.latest_complete_minute() == SHORT
                assert completeness.status(SHORT).by == SETTLED

            # What the Pipeline page reads: each minute, how it became complete.
            window = {"start": str(HISTORY[0] // 1000), "end": str(SHORT // 1000)}
            answer = await (await receiver.get("/api/v1/pipeline", params=window)).json()
            pieced, short = [m for m in answer["minutes"] if m["minute"] * 1000 in (PIECED, SHORT)]
            assert (pieced["expected"], pieced["arrived"], pieced["complete"], pieced["by"]) == (
                4,
                4,
                True,
                ALL_ARRIVED,
            )
            assert (short["expected"], short["arrived"], short["complete"], short["by"]) == (4, 2, True, SETTLED)
            assert short["completed"] == (SHORT + MINUTE_MS) / 1000 + SETTLE_S
            assert (answer["metric_update_price_per_1000"], answer["settle_seconds"]) == (0.003, SETTLE_S)
            assert answer["latest_complete_minute"] == SHORT // 1000
            metrics = await (await receiver.get("/metrics", headers={"Accept-Encoding": "identity"})).text()
            assert 'metric_stream_receiver_minutes_completed_total{by="all_arrived"} 1' in metrics
            assert f'metric_stream_receiver_minutes_completed_total{{by="settled"}} {HISTORY_MINUTES + 1}' in metrics
