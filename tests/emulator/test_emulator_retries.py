"""How the emulator judges answers, retries, gives up, and writes Firehose's error output."""

from __future__ import annotations

import base64
import random
import re

import boto3
import orjson
import pytest
from moto import mock_aws

from receiver_tools.emulator import EmulatorConfig, FirehoseEmulator, RetryPolicy
from receiver_tools.firehose_request import judge_answer
from tests.builders import make_samples
from tests.emulator.endpoints import fail_then_ok, failing, scripted
from tests.processes import free_port

JSON = {"Content-Type": "application/json"}
RID = "3f2b8c1e-0000-4000-8000-000000000001"
FAST = 0.002
"""Time scale: a 300 s retry window lasts 0.6 s."""


def config(url: str, **changes) -> EmulatorConfig:
    return EmulatorConfig(url=url, seed=3, time_scale=FAST, **changes)


def test_valid_answer_is_a_success():
    assert judge_answer(RID, 200, JSON, orjson.dumps({"requestId": RID, "timestamp": 1700000000000})).ok


@pytest.mark.parametrize(
    ("status", "headers", "body", "code"),
    [
        (200, JSON, {"requestId": "another", "timestamp": 1}, "HttpEndpoint.InvalidResponseFromDestination"),
        (200, JSON, {"requestId": RID, "timestamp": "1"}, "HttpEndpoint.InvalidResponseFromDestination"),
        (200, JSON, {"requestId": RID}, "HttpEndpoint.InvalidResponseFromDestination"),
        (200, JSON, {"timestamp": 1}, "HttpEndpoint.InvalidResponseFromDestination"),
        (
            200,
            {"Content-Type": "text/plain"},
            {"requestId": RID, "timestamp": 1},
            "HttpEndpoint.InvalidResponseFromDestination",
        ),
        (
            200,
            {**JSON, "Content-Encoding": "gzip"},
            {"requestId": RID, "timestamp": 1},
            "HttpEndpoint.InvalidResponseFromDestination",
        ),
        (200, JSON, b"OK", "HttpEndpoint.InvalidResponseFromDestination"),
        (201, JSON, {"requestId": RID, "timestamp": 1}, "HttpEndpoint.DestinationException"),
        (500, JSON, {"requestId": RID, "timestamp": 1}, "HttpEndpoint.DestinationException"),
        (401, JSON, {"requestId": RID, "timestamp": 1}, "HttpEndpoint.DestinationException"),
    ],
    ids=[
        "other-request-id",
        "string-timestamp",
        "no-timestamp",
        "no-request-id",
        "text-plain",
        "content-encoded",
        "not-json",
        "201",
        "500",
        "401",
    ],
)
def test_other_answers_are_retriable_failures(status, headers, body, code):
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    attempt = judge_answer(RID, status, headers, raw)
    assert (attempt.ok, attempt.error_code, attempt.permanent) == (False, code, False)


def test_413_is_a_permanent_failure():
    attempt = judge_answer(RID, 413, JSON, b"{}")
    assert (attempt.ok, attempt.permanent) == (False, True)


def test_backoff_doubles_from_one_second_with_jitter_and_a_two_minute_cap():
    policy = RetryPolicy()
    rng = random.Random(5)
    waits = [policy.backoff_s(n, rng) for n in range(1, 11)]
    for n, wait in enumerate(waits[:7], 1):
        assert 0.85 * 2 ** (n - 1) <= wait <= 1.15 * 2 ** (n - 1)
    assert max(waits) <= 120
    assert waits[-1] > 100  # 2**9 s, capped
    assert len({round(w / 2**n, 6) for n, w in enumerate(waits[:7])}) > 1  # jittered, not exact


async def test_retries_keep_the_request_id_and_body_until_acknowledged():
    async with scripted(fail_then_ok(2)) as endpoint:
        async with FirehoseEmulator(config(endpoint.url)) as stream:
            await stream.put_samples(make_samples(5))
    assert len(endpoint.received) == 3
    assert len({r.headers["X-Amz-Firehose-Request-Id"] for r in endpoint.received}) == 1
    assert len({r.raw_body for r in endpoint.received}) == 1
    (result,) = stream.results
    assert (result.outcome, result.attempts) == ("delivered", 3)


async def test_413_is_not_retried_and_the_batch_is_dropped(tmp_path):
    async with scripted(failing(413)) as endpoint:
        async with FirehoseEmulator(config(endpoint.url, error_output=str(tmp_path))) as stream:
            await stream.put_samples(make_samples(5))
    assert len(endpoint.received) == 1
    assert stream.results[0].outcome == "dropped"
    assert not any(tmp_path.rglob("*"))


async def test_zero_retry_duration_means_a_single_attempt():
    url = f"http://127.0.0.1:{free_port()}/aws/firehose/metrics"  # nothing listens there
    async with FirehoseEmulator(config(url, retry=RetryPolicy(duration_s=0))) as stream:
        await stream.put_samples(make_samples(1))
    (result,) = stream.results
    assert (result.attempts, result.outcome, result.error_code) == (1, "lost", "HttpEndpoint.ConnectionFailed")


async def test_after_the_retry_duration_records_go_to_the_error_output_folder(tmp_path):
    samples = make_samples(30)
    async with scripted(failing(503)) as endpoint:
        cfg = config(endpoint.url, error_output=str(tmp_path), stream_name="dynamo-firehose", max_record_bytes=1024)
        async with FirehoseEmulator(cfg) as stream:
            await stream.put_samples(samples)
    (result,) = stream.results
    assert result.outcome == "error-output"
    assert result.attempts == len(endpoint.received) > 3
    (obj,) = [p for p in tmp_path.rglob("*") if p.is_file()]
    relative = obj.relative_to(tmp_path).as_posix()
    assert re.fullmatch(
        r"http-endpoint-failed/\d{4}/\d{2}/\d{2}/\d{2}/dynamo-firehose-1-"
        r"\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-[0-9a-f-]{36}",
        relative,
    )
    documents = [orjson.loads(line) for line in obj.read_bytes().splitlines()]
    assert [base64.b64decode(d["rawData"]) for d in documents] == endpoint.received[0].records
    first = documents[0]
    assert first["attemptsMade"] == result.attempts
    assert first["errorCode"] == "HttpEndpoint.DestinationException"
    assert "503" in first["errorMessage"]
    assert first["arrivalTimestamp"] <= first["attemptEndingTimestamp"]
    assert {"subsequenceNumber", "dataId"} <= first.keys()


async def test_error_output_can_be_an_s3_prefix():
    url = f"http://127.0.0.1:{free_port()}/aws/firehose/metrics"
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="firehose-backup")
        async with FirehoseEmulator(config(url, error_output="s3://firehose-backup/errors")) as stream:
            await stream.put_samples(make_samples(3))
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="firehose-backup")["Contents"]]
        assert len(keys) == 1 and keys[0].startswith("errors/http-endpoint-failed/")
        body = s3.get_object(Bucket="firehose-backup", Key=keys[0])["Body"].read()
    assert orjson.loads(body.splitlines()[0])["errorCode"] == "HttpEndpoint.ConnectionFailed"
    assert stream.results[0].error_object == f"s3://firehose-backup/{keys[0]}"
