"""The receiver killed with SIGKILL in the middle of a delivery, restarted, and Firehose retries."""

from __future__ import annotations

import asyncio
import signal

import pytest

from receiver_tools.emulator import EmulatorConfig, FirehoseEmulator, Hooks, RetryPolicy
from tests.chain.expected import assert_api_matches, expected_values
from tests.chain.workload import ACCESS_KEY, INGEST_PATH, recent_workload, same_datapoints, stored_samples
from tests.processes import ReceiverProcess

pytestmark = pytest.mark.slow


async def test_a_receiver_killed_mid_body_loses_nothing_and_counts_nothing_twice(tmp_path):
    db = tmp_path / "metrics.db"
    store = f"sqlite:///{db}"
    stretch = recent_workload(minutes=10)
    receivers = [ReceiverProcess("--store", store, "--access-key", ACCESS_KEY).wait_listening()]
    port = receivers[0].port
    loop = asyncio.get_running_loop()
    restarted: list[asyncio.Task] = []

    async def restart_on_the_same_port() -> None:
        await asyncio.sleep(0.3)  # the emulator's first retries find nobody listening
        receiver = ReceiverProcess("--store", store, "--access-key", ACCESS_KEY, "--port", str(port))
        receivers.append(receiver)
        await loop.run_in_executor(None, receiver.wait_listening)

    async def kill_mid_body(request_id: str, attempt: int, sent: int, total: int) -> None:
        # The second request, first attempt, part of its body sent: the first request is
        # committed, this one is still being read.
        if not restarted and len(stream.results) == 1 and sent < total:
            # No await before the restart is scheduled: the client cancels this body
            # writer as soon as it notices the connection is gone.
            victim = receivers[0].proc
            victim.send_signal(signal.SIGKILL)
            victim.wait(10)
            restarted.append(asyncio.create_task(restart_on_the_same_port()))

    config = EmulatorConfig(
        url=f"http://127.0.0.1:{port}{INGEST_PATH}",
        access_key=ACCESS_KEY,
        record_format="json",
        buffer_bytes=128 * 1024,
        max_record_bytes=8 * 1024,
        retry=RetryPolicy(duration_s=300),
        time_scale=0.1,
        seed=2,  # backoff 0.1 s, 0.2 s, ...
    )
    try:
        async with FirehoseEmulator(config, Hooks(body_progress=kill_mid_body)) as stream:
            for minute in stretch.minutes:
                await stream.put_samples(minute)
            await stream.flush()
            # CloudWatch may send a minute again: a repeat must not count twice either.
            for minute in stretch.minutes[:3]:
                await stream.put_samples(minute)
        await asyncio.gather(*restarted)

        assert restarted, "the receiver was never killed mid-delivery"
        assert receivers[0].proc.returncode == -signal.SIGKILL
        assert {r.outcome for r in stream.results} == {"delivered"}, stream.results
        assert stream.results[1].attempts > 1  # the interrupted request was retried
        assert len(stream.results) >= 4

        survivor = receivers[-1]
        await assert_api_matches(survivor.url, expected_values(stretch.samples), stretch.start_s, stretch.end_s)
        survivor.terminate()
        assert survivor.wait() == 0
    finally:
        for receiver in receivers:
            receiver.stop()

    assert same_datapoints(await stored_samples(db), stretch.samples)
