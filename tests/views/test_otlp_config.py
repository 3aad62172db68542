"""`--export-otlp URL` / RECEIVER_EXPORT_OTLP, and the retry policy's pure parts."""

from __future__ import annotations

import argparse
import random

import pytest

from receiver.config import ConfigError, add_serve_arguments, serve_config
from receiver.exporters.otlp import OtlpExportSettings, retry_after_s

URL = "http://collector:4318/v1/metrics"


def parse(*argv: str, env: dict[str, str] | None = None):
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    return serve_config(parser.parse_args(["--access-key", "k", *argv]), env or {})


def test_export_is_off_by_default():
    assert parse().otlp_export is None


def test_the_option_sets_the_export_url():
    assert parse("--export-otlp", URL).otlp_export == OtlpExportSettings(URL)


def test_the_environment_sets_the_export_url_and_the_option_wins():
    assert parse(env={"RECEIVER_EXPORT_OTLP": URL}).otlp_export.url == URL
    other = "https://otlp.example.com/api/v1/otlp/v1/metrics"
    assert parse("--export-otlp", other, env={"RECEIVER_EXPORT_OTLP": URL}).otlp_export.url == other


def test_the_export_takes_a_minute_as_complete_when_metrics_does():
    config = parse("--export-otlp", URL, "--metrics-settle-seconds", "120")
    assert config.otlp_export.settle_s == config.metrics_settle_s == 120.0


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("collector:4318/v1/metrics", "is not an http or https URL"),
        ("grpc://collector:4317", "is not an http or https URL"),
        ("http:///v1/metrics", "has no host"),
        ("http://collector:43x8/v1/metrics", "is not a valid URL"),
    ],
)
def test_a_bad_export_url_is_one_sentence_naming_it(url, problem):
    with pytest.raises(ConfigError) as caught:
        parse("--export-otlp", url)
    message = str(caught.value)
    assert message.startswith(f"--export-otlp (RECEIVER_EXPORT_OTLP) {url!r} {problem}; give the full")
    assert "\n" not in message


@pytest.mark.parametrize(("header", "seconds"), [("7", 7.0), ("0", 0.0), ("Thu, 01 Jan 1970 00:01:40 GMT", 40.0)])
def test_retry_after_reads_seconds_and_http_dates(header, seconds):
    assert retry_after_s(header, now_s=60.0) == seconds


@pytest.mark.parametrize("header", [None, "", "soon", "-5", "Thu, 01 Jan 1970 00:01:40"])
def test_retry_after_ignores_what_it_cannot_read(header):
    assert retry_after_s(header, now_s=60.0) is None


def test_backoff_doubles_within_jitter_and_stops_at_the_maximum():
    rng = random.Random(7)
    backoff = OtlpExportSettings("http://collector:4318/v1/metrics", backoff_initial_s=1.0, backoff_max_s=10.0).backoff
    waits = [backoff.delay_s(failures, rng) for failures in range(1, 8)]
    ceilings = [1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]
    assert all(ceiling / 2 <= wait <= ceiling for wait, ceiling in zip(waits, ceilings, strict=True))
    assert len(set(waits)) == len(waits)  # jittered, not a fixed ladder
