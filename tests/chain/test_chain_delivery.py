"""emulator -> nginx (TLS) -> receiver -> store: every datapoint arrives, every value is right."""

from __future__ import annotations

import pytest

from receiver_tools.emulator import EmulatorConfig, FirehoseEmulator
from tests.chain.expected import assert_api_matches, expected_values
from tests.chain.nginx import NginxGateway
from tests.chain.workload import ACCESS_KEY, recent_workload, same_datapoints, stored_samples
from tests.processes import ReceiverProcess

pytestmark = pytest.mark.slow


async def test_a_workload_through_the_tls_gateway_arrives_whole_with_the_defined_values(tmp_path, tls):
    db = tmp_path / "metrics.db"
    stretch = recent_workload(minutes=10)
    with ReceiverProcess("--store", f"sqlite:///{db}", "--access-key", ACCESS_KEY) as receiver:
        receiver.wait_listening()
        with NginxGateway(tmp_path / "nginx", f"127.0.0.1:{receiver.port}", tls) as gateway:
            config = EmulatorConfig(
                url=gateway.url,
                access_key=ACCESS_KEY,
                ca_file=tls.ca_cert,
                gzip=True,
                record_format="opentelemetry0.7",
                buffer_bytes=48 * 1024,
                max_record_bytes=8 * 1024,
                common_attributes=(("environment", "test"),),
                seed=1,
            )
            async with FirehoseEmulator(config) as stream:
                for minute in stretch.minutes:
                    await stream.put_samples(minute)
            assert len(stream.results) > 3  # minutes split across requests
            assert {r.outcome for r in stream.results} == {"delivered"}, stream.results
        # nginx logs a request after sending its response, so the client may be told before
        # the line is written; once nginx has exited, every line is there.
        assert gateway.access_log.count('"POST /aws/firehose/metrics HTTP/1.1" 200') == len(stream.results)

        await assert_api_matches(receiver.url, expected_values(stretch.samples), stretch.start_s, stretch.end_s)
        receiver.terminate()
        assert receiver.wait() == 0

    assert same_datapoints(await stored_samples(db), stretch.samples)
