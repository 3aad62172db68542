"""The alarm options of ``serve`` (each with an environment fallback)."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from receiver.alarms.loader import default_alarms_dir

# arn:partition:sns:region:account:name
_TOPIC_ARN = re.compile(r"arn:aws[a-z-]*:sns:([a-z0-9-]+):\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?")


class AlarmConfigError(ValueError):
    """A wrong alarm option; one sentence naming it."""


@dataclass(frozen=True, slots=True)
class AlarmSettings:
    directory: Path | None = default_alarms_dir()
    """None: no alarm rules (the default directory is missing, as in an image built without it)."""
    webhooks: tuple[str, ...] = ()
    slack_webhook: str | None = None
    sns_topic_arn: str | None = None

    @property
    def sns_region(self) -> str | None:
        match = _TOPIC_ARN.fullmatch(self.sns_topic_arn or "")
        return match.group(1) if match else None


def add_alarm_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--alarms", metavar="DIR", help="alarm rules directory (RECEIVER_ALARMS, default the repository's alarms/)"
    )
    parser.add_argument(
        "--alarm-webhook",
        action="append",
        dest="alarm_webhooks",
        metavar="URL",
        help="POST each alarm notification as JSON to this URL; repeat for several "
        "(RECEIVER_ALARM_WEBHOOKS, comma-separated)",
    )
    parser.add_argument(
        "--alarm-slack-webhook",
        metavar="URL",
        help="a Slack-compatible incoming webhook URL (RECEIVER_ALARM_SLACK_WEBHOOK)",
    )
    parser.add_argument(
        "--alarm-sns-topic",
        metavar="ARN",
        help="publish alarm notifications to this SNS topic (RECEIVER_ALARM_SNS_TOPIC_ARN)",
    )


def alarm_settings(
    args: argparse.Namespace, pick: Callable[[object, str], str | None], env_list: Callable[[str], tuple[str, ...]]
) -> AlarmSettings:
    """The alarm settings from options over environment; AlarmConfigError on a bad value."""
    directory = pick(getattr(args, "alarms", None), "RECEIVER_ALARMS")
    candidate = Path(directory) if directory else default_alarms_dir()
    path: Path | None = candidate
    if not directory and not candidate.is_dir():
        path = None
    elif not candidate.is_dir():
        raise AlarmConfigError(
            f"--alarms (RECEIVER_ALARMS) {candidate} is not a directory; give an alarm rules directory"
        )
    webhooks = tuple(getattr(args, "alarm_webhooks", None) or env_list("RECEIVER_ALARM_WEBHOOKS"))
    for url in webhooks:
        _check_url(url, "--alarm-webhook (RECEIVER_ALARM_WEBHOOKS)")
    slack = pick(getattr(args, "alarm_slack_webhook", None), "RECEIVER_ALARM_SLACK_WEBHOOK")
    if slack is not None:
        _check_url(slack, "--alarm-slack-webhook (RECEIVER_ALARM_SLACK_WEBHOOK)")
    topic = pick(getattr(args, "alarm_sns_topic", None), "RECEIVER_ALARM_SNS_TOPIC_ARN")
    if topic is not None and not _TOPIC_ARN.fullmatch(topic):
        raise AlarmConfigError(
            f"--alarm-sns-topic (RECEIVER_ALARM_SNS_TOPIC_ARN) {topic!r} is not an SNS topic ARN; "
            "give arn:aws:sns:REGION:ACCOUNT:NAME"
        )
    return AlarmSettings(path, webhooks, slack, topic)


def _check_url(url: str, name: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AlarmConfigError(f"{name} {url!r} is not an http:// or https:// URL")
