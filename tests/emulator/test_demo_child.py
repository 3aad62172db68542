"""The demo's receiver child takes its access key from the environment, not its command line."""

from __future__ import annotations

import aiohttp
import orjson

from receiver.firehose.envelope import ACCESS_KEY_HEADER, REQUEST_ID_HEADER
from receiver.server.app import INGEST_PATH
from receiver_tools.demo import ReceiverChild, pick_port


async def test_a_key_that_starts_with_a_dash_serves_and_stays_off_the_command_line() -> None:
    # secrets.token_urlsafe starts a key with "-" one time in 64; on the command line argparse
    # took such a key for an option and the receiver stopped with a usage error.
    key = "-leading-dash-key"
    child = ReceiverChild(pick_port(0), "memory://", key)
    try:
        await child.wait_ready(timeout=30)
        assert not any(key in argument for argument in child.proc.args)
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"http://127.0.0.1:{child.port}{INGEST_PATH}",
                data=orjson.dumps({"requestId": "r1", "timestamp": 1, "records": []}),
                headers={ACCESS_KEY_HEADER: key, REQUEST_ID_HEADER: "r1", "Content-Type": "application/json"},
            ) as response,
        ):
            assert response.status == 200
    finally:
        child.stop()
