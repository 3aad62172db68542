"""The alarm options of serve: option over environment, defaults, one-sentence errors."""

from __future__ import annotations

import argparse

import pytest

from receiver.alarms.loader import default_alarms_dir
from receiver.config import ConfigError, add_serve_arguments, serve_config
from tests.processes import one_sentence_error, run_cli

TOPIC = "arn:aws:sns:eu-west-1:123456789012:alarms"


def parse(*argv: str, env: dict[str, str] | None = None):
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    return serve_config(parser.parse_args(["--access-key", "k", *argv]), env or {}).alarms


def test_by_default_the_repository_alarms_are_used_and_nothing_is_notified():
    settings = parse()
    assert settings.directory == default_alarms_dir()
    assert (settings.webhooks, settings.slack_webhook, settings.sns_topic_arn) == ((), None, None)


def test_environment_variables_set_every_channel():
    settings = parse(
        env={
            "RECEIVER_ALARM_WEBHOOKS": "http://a.example/x, https://b.example/y",
            "RECEIVER_ALARM_SLACK_WEBHOOK": "https://hooks.slack.com/services/T/B/C",
            "RECEIVER_ALARM_SNS_TOPIC_ARN": TOPIC,
        }
    )
    assert settings.webhooks == ("http://a.example/x", "https://b.example/y")
    assert settings.slack_webhook == "https://hooks.slack.com/services/T/B/C"
    assert (settings.sns_topic_arn, settings.sns_region) == (TOPIC, "eu-west-1")


def test_options_win_over_the_environment(tmp_path):
    settings = parse(
        "--alarms",
        str(tmp_path),
        "--alarm-webhook",
        "http://c.example/",
        env={"RECEIVER_ALARMS": "/nowhere", "RECEIVER_ALARM_WEBHOOKS": "http://a.example/"},
    )
    assert (settings.directory, settings.webhooks) == (tmp_path, ("http://c.example/",))


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--alarms", "/no/such/dir"], "--alarms (RECEIVER_ALARMS) /no/such/dir is not a directory"),
        (["--alarm-webhook", "ftp://x/"], "--alarm-webhook (RECEIVER_ALARM_WEBHOOKS) 'ftp://x/' is not an http"),
        (["--alarm-slack-webhook", "hooks"], "--alarm-slack-webhook (RECEIVER_ALARM_SLACK_WEBHOOK) 'hooks'"),
        (["--alarm-sns-topic", "alarms"], "--alarm-sns-topic (RECEIVER_ALARM_SNS_TOPIC_ARN) 'alarms' is not an SNS"),
    ],
)
def test_a_bad_value_is_one_sentence_naming_the_option(argv, named):
    with pytest.raises(ConfigError) as caught:
        parse(*argv)
    assert str(caught.value).startswith(named)


def test_serve_refuses_a_broken_alarm_file_in_one_sentence_with_its_place(tmp_path):
    (tmp_path / "bad.yaml").write_text("rules:\n  r:\n    expression: x\n    scope: endpoint\n    op: '>'\n")
    line = one_sentence_error(run_cli("serve", "--port", "0", "--store", "memory://", "--alarms", str(tmp_path)))
    assert f"{tmp_path / 'bad.yaml'}:3:" in line and "the alarm rule r has no threshold" in line


def test_check_rules_on_the_command_line_checks_the_repository_alarms():
    result = run_cli("check-rules")
    assert result.returncode == 0
    assert f"alarm rules in {default_alarms_dir()}" in result.stdout
