"""The receiver down longer than Firehose's retry duration: error output in S3, then `replay`."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from receiver_tools.emulator import EmulatorConfig, FirehoseEmulator, RetryPolicy
from receiver_tools.replay import Source, replay
from tests.chain.expected import assert_api_matches, expected_values
from tests.chain.workload import ACCESS_KEY, INGEST_PATH, recent_workload, same_datapoints, stored_samples
from tests.processes import ReceiverProcess, free_port

pytestmark = pytest.mark.slow
BUCKET = "firehose-backup"


async def test_batches_written_to_the_error_output_are_restored_by_replay_even_twice(tmp_path):
    db = tmp_path / "metrics.db"
    stretch = recent_workload(minutes=10)
    port = free_port()  # the receiver is not running yet
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        firehose = EmulatorConfig(
            url=f"http://127.0.0.1:{port}{INGEST_PATH}",
            access_key=ACCESS_KEY,
            record_format="opentelemetry1.0",
            buffer_bytes=128 * 1024,
            max_record_bytes=8 * 1024,
            retry=RetryPolicy(duration_s=60),
            time_scale=0.005,  # a 0.3 s retry window
            error_output=f"s3://{BUCKET}/failed/",
            seed=4,
        )
        async with FirehoseEmulator(firehose) as stream:
            for minute in stretch.minutes:
                await stream.put_samples(minute)
        assert {r.outcome for r in stream.results} == {"error-output"}
        assert {r.error_code for r in stream.results} == {"HttpEndpoint.ConnectionFailed"}
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
        assert len(keys) == len(stream.results) > 1
        assert all(key.startswith("failed/http-endpoint-failed/") for key in keys)

        with ReceiverProcess("--store", f"sqlite:///{db}", "--access-key", ACCESS_KEY, "--port", str(port)) as receiver:
            receiver.wait_listening()
            target = EmulatorConfig(
                url=receiver.url + INGEST_PATH, access_key=ACCESS_KEY, retry=RetryPolicy(duration_s=30)
            )
            sent_records = sum(r.records for r in stream.results)
            for _ in range(2):  # replaying again must change nothing
                report = await replay(Source(f"s3://{BUCKET}/failed/"), target)
                assert report.ok, report
                assert (report.records, report.error_output_objects) == (sent_records, len(keys))
                await assert_api_matches(receiver.url, expected_values(stretch.samples), stretch.start_s, stretch.end_s)
            receiver.terminate()
            assert receiver.wait() == 0

    assert same_datapoints(await stored_samples(db), stretch.samples)
