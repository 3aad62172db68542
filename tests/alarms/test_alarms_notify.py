"""Delivery: webhook and Slack to a local HTTP sink, SNS to moto; retries, give-ups, counts."""

from __future__ import annotations

import json
import socket

import boto3
import pytest
from aiohttp import ClientSession, web
from moto import mock_aws

from receiver.alarms.channels import SlackChannel, SnsChannel, WebhookChannel
from receiver.alarms.counters import AlarmCounters
from receiver.alarms.notifier import Notifier, RetryPolicy
from receiver.backoff import Backoff
from receiver.model import FIRING, RESOLVED, AlarmEvent
from tests.alarms.kit import SERVICE, minute, rule
from tests.apps import serve_app

QUICK = RetryPolicy(attempts=3, backoff=Backoff(0.01, 0.02, jitter=(0.8, 1.2)))
BODY = """\
expression: aws_dynamodb_endpoint_write_throttled_requests
scope: endpoint
op: ">"
threshold: 0
period: 5
count: 2
message: "{endpoint}: {value} throttled"
"""


def event(kind=FIRING):
    return AlarmEvent(
        "throttled", SERVICE, "GameScores", 1, kind, minute(3), 4.0, 0.0, "GameScores: 4 throttled", minute(4) + 1500
    )


class Sink:
    """An HTTP endpoint answering the statuses given, in turn (200 once they run out)."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.bodies: list[dict] = []
        self.app = web.Application()
        self.app.router.add_post("/hook", self.hook)

    async def hook(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.json())
        return web.Response(status=self.statuses.pop(0) if self.statuses else 200)


async def deliver(channel, rule_):
    counters = AlarmCounters()
    await Notifier([channel], counters, QUICK).deliver(event(), rule_)
    return counters.snapshot().notifications


async def test_the_webhook_posts_the_documented_body(tmp_path):
    sink = Sink()
    async with serve_app(sink.app) as client, ClientSession() as session:
        counts = await deliver(WebhookChannel(client.base + "/hook", session), rule(tmp_path, BODY))
    assert counts == (("webhook", "delivered", 1),)
    assert sink.bodies == [
        {
            "status": "firing",
            "rule": "throttled",
            "scope": "endpoint",
            "service": SERVICE,
            "endpoint": "GameScores",
            "expression": "aws_dynamodb_endpoint_write_throttled_requests",
            "op": ">",
            "threshold": 0.0,
            "value": 4.0,
            "minute": "2023-11-14T22:17:00Z",
            "period_minutes": 5,
            "count": 2,
            "message": "GameScores: 4 throttled",
            "sequence": 1,
            "sent_at": "2023-11-14T22:18:01Z",
        }
    ]


async def test_a_failing_webhook_is_retried_until_it_takes_the_notification(tmp_path):
    sink = Sink(503, 500)
    async with serve_app(sink.app) as client, ClientSession() as session:
        counts = await deliver(WebhookChannel(client.base + "/hook", session), rule(tmp_path, BODY))
    assert len(sink.bodies) == 3 and counts == (("webhook", "delivered", 1),)


async def test_a_webhook_failing_every_attempt_is_counted_as_failed_and_logged(tmp_path, caplog):
    sink = Sink(500, 500, 500, 500)
    async with serve_app(sink.app) as client, ClientSession() as session:
        counts = await deliver(WebhookChannel(client.base + "/hook", session), rule(tmp_path, BODY))
    assert len(sink.bodies) == QUICK.attempts and counts == (("webhook", "failed", 1),)
    assert "alarm notification not delivered" in caplog.text


async def test_a_refused_webhook_url_is_not_retried(tmp_path):
    sink = Sink(404)
    async with serve_app(sink.app) as client, ClientSession() as session:
        counts = await deliver(WebhookChannel(client.base + "/hook", session), rule(tmp_path, BODY))
    assert len(sink.bodies) == 1 and counts == (("webhook", "failed", 1),)


async def test_an_unreachable_webhook_fails_after_the_retries(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    async with ClientSession() as session:
        counts = await deliver(WebhookChannel(f"http://127.0.0.1:{port}/hook", session), rule(tmp_path, BODY))
    assert counts == (("webhook", "failed", 1),)


async def test_slack_gets_a_text_with_the_status_and_message(tmp_path):
    sink = Sink()
    async with serve_app(sink.app) as client, ClientSession() as session:
        channel = SlackChannel(client.base + "/hook", session)
        await Notifier([channel], AlarmCounters(), QUICK).deliver(event(RESOLVED), rule(tmp_path, BODY))
    assert sink.bodies == [{"text": "[RESOLVED] GameScores: 4 throttled"}]


async def test_slack_text_is_escaped_so_a_table_name_cannot_ping_or_link(tmp_path):
    # A message carries the table's name as its owner wrote it: Slack must show it as text,
    # not as a @channel mention or a disguised link (Slack's escaping: & < > only).
    message = "<!channel> & <https://evil.example|Orders>: 4 > 0 throttled"
    hostile = AlarmEvent("throttled", SERVICE, "<!channel>", 1, FIRING, minute(3), 4.0, 0.0, message, minute(4))
    sink = Sink()
    async with serve_app(sink.app) as client, ClientSession() as session:
        channel = SlackChannel(client.base + "/hook", session)
        await Notifier([channel], AlarmCounters(), QUICK).deliver(hostile, rule(tmp_path, BODY))
    assert sink.bodies == [
        {"text": "[FIRING] &lt;!channel&gt; &amp; &lt;https://evil.example|Orders&gt;: 4 &gt; 0 throttled"}
    ]


@pytest.fixture
def aws():
    with mock_aws():
        yield


async def test_sns_publishes_the_body_with_the_headline_as_subject(tmp_path, aws):
    sns, sqs = boto3.client("sns", region_name="eu-west-1"), boto3.client("sqs", region_name="eu-west-1")
    topic = sns.create_topic(Name="alarms")["TopicArn"]
    queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    counts = await deliver(SnsChannel(topic, sns), rule(tmp_path, BODY))
    assert counts == (("sns", "delivered", 1),)
    (message,) = sqs.receive_message(QueueUrl=queue)["Messages"]
    envelope = json.loads(message["Body"])
    assert envelope["Subject"] == "[FIRING] GameScores: 4 throttled"
    assert json.loads(envelope["Message"])["endpoint"] == "GameScores"


async def test_sns_to_a_missing_topic_is_counted_as_failed(tmp_path, aws):
    sns = boto3.client("sns", region_name="eu-west-1")
    counts = await deliver(SnsChannel("arn:aws:sns:eu-west-1:123456789012:missing", sns), rule(tmp_path, BODY))
    assert counts == (("sns", "failed", 1),)


async def test_submit_never_waits_and_a_full_queue_is_counted(tmp_path, monkeypatch):
    monkeypatch.setattr("receiver.alarms.notifier.QUEUE_LIMIT", 1)
    counters = AlarmCounters()
    sink_channel = WebhookChannel("http://127.0.0.1:9/hook", None)  # never sent: no worker runs
    notifier = Notifier([sink_channel], counters, QUICK)
    notifier.submit(event(), rule(tmp_path, BODY))
    notifier.submit(event(), rule(tmp_path, BODY))
    assert counters.snapshot().notifications == (("webhook", "failed", 1),)
