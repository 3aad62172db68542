"""Where notifications go: a generic JSON webhook, a Slack incoming webhook, an SNS topic.

Each channel sends one notification per call and raises DeliveryError when it was not
accepted; ``permanent`` says whether trying again could help (the notifier retries the
others with backoff).
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any, Protocol

import aiohttp

from receiver.alarms.rules import AlarmRule
from receiver.model import FIRING, AlarmEvent

HTTP_TIMEOUT_S = 10.0
SNS_SUBJECT_LIMIT = 100


class DeliveryError(Exception):
    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.permanent = permanent


class Channel(Protocol):
    name: str

    async def send(self, event: AlarmEvent, rule: AlarmRule) -> None: ...


def notification_body(event: AlarmEvent, rule: AlarmRule) -> dict[str, Any]:
    """The JSON document the webhook posts and SNS publishes (documented in docs-alarms.md)."""
    return {
        "status": event.kind,
        "rule": event.rule,
        "scope": rule.scope,
        "service": event.service,
        "endpoint": event.endpoint,
        "expression": rule.expression.text,
        "op": rule.op,
        "threshold": event.threshold,
        "value": event.value,
        "minute": _iso(event.minute_ms),
        "period_minutes": rule.period,
        "count": rule.count,
        "message": event.message,
        "sequence": event.seq,
        "sent_at": _iso(event.created_ms),
    }


def headline(event: AlarmEvent) -> str:
    return f"[{'FIRING' if event.kind == FIRING else 'RESOLVED'}] {event.message}"


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _post(session: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> None:
    try:
        async with session.post(url, json=body, timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S)) as response:
            if response.status < 300:
                return
            # 429 and 5xx may pass; another 4xx is a wrong URL or payload, and stays so.
            permanent = 400 <= response.status < 500 and response.status not in (408, 429)
            raise DeliveryError(f"answered HTTP {response.status}", permanent=permanent)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise DeliveryError(f"could not be reached ({type(exc).__name__}: {exc})") from None


class WebhookChannel:
    """POST the notification body as JSON."""

    def __init__(self, url: str, session: aiohttp.ClientSession) -> None:
        self.url = url
        self.name = "webhook"
        self._session = session

    async def send(self, event: AlarmEvent, rule: AlarmRule) -> None:
        await _post(self._session, self.url, notification_body(event, rule))


def slack_escape(text: str) -> str:
    """``text`` as Slack shows it literally: ``&``, ``<`` and ``>`` as ``&amp;``, ``&lt;``,
    ``&gt;`` (Slack's documented escaping; nothing else is). Without it a table name such as
    ``<!channel>`` would notify everyone, and ``<https://x|text>`` would be a disguised link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class SlackChannel:
    """POST ``{"text": ...}``, which Slack's (and Mattermost's, Rocket.Chat's ...) incoming webhooks take.

    The text is escaped (``slack_escape``): it holds names and messages from rule files and
    from the data, never markup of ours.
    """

    def __init__(self, url: str, session: aiohttp.ClientSession) -> None:
        self.url = url
        self.name = "slack"
        self._session = session

    async def send(self, event: AlarmEvent, rule: AlarmRule) -> None:
        await _post(self._session, self.url, {"text": slack_escape(headline(event))})


class SnsChannel:
    """Publish to an SNS topic: the body as JSON in Message, the headline as Subject."""

    def __init__(self, topic_arn: str, client: Any) -> None:
        self.topic_arn = topic_arn
        self.name = "sns"
        self._client = client

    async def send(self, event: AlarmEvent, rule: AlarmRule) -> None:
        subject = headline(event)
        if len(subject) > SNS_SUBJECT_LIMIT:
            subject = subject[: SNS_SUBJECT_LIMIT - 1] + "…"
        # SNS refuses control characters in a subject.
        subject = "".join(ch if ch.isprintable() else " " for ch in subject)
        try:
            await asyncio.to_thread(
                self._client.publish,
                TopicArn=self.topic_arn,
                Subject=subject,
                Message=json.dumps(notification_body(event, rule)),
                MessageAttributes={"status": {"DataType": "String", "StringValue": event.kind}},
            )
        except Exception as exc:  # noqa: BLE001 - botocore raises many kinds; all mean "not published"
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
            permanent = code in ("NotFound", "InvalidParameter", "AuthorizationError", "InvalidParameterValue")
            raise DeliveryError(
                f"SNS publish to {self.topic_arn} failed ({type(exc).__name__}: {exc})", permanent=permanent
            ) from None
