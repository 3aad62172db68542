"""The rules inside the receiver: the metrics catalog, check-rules, SIGHUP reload."""

from __future__ import annotations

import json
import shutil
import signal
import time
import urllib.request

import pytest

from receiver.config import REPOSITORY_RULES
from receiver.rules import load_rules
from tests.apps import receiver_app, serve_app
from tests.builders import Delivery, make_samples
from tests.processes import ReceiverProcess, one_sentence_error, post, run_cli

EXTRA_RULE = """\
filter: "{ tags -> tags.Namespace == 'AWS/DynamoDB' }"
expSuffix: >-
  tag({tags -> tags.host_name = 'aws-dynamodb::' + tags.cloud_account_id})
  .service(['host_name'], Layer.AWS_DYNAMODB)
metricPrefix: aws_dynamodb
metricsRules:
  - name: extra_consumed_read_sum
    unit: units
    description: Σ Sum of consumed read capacity units over the minute.
    exp: amazonaws_com_AWS_DynamoDB_ConsumedReadCapacityUnits_sum.sum(['cloud_account_id'])
"""


async def test_metrics_catalog_lists_every_rule_metric():
    app = receiver_app()
    async with serve_app(app) as client:
        response = await client.get("/api/v1/metrics")
        body = await response.json()
    assert response.status == 200
    expected = {m.name for m in load_rules(REPOSITORY_RULES).metrics}
    assert {m["name"] for m in body["metrics"]} == expected
    by_name = {m["name"]: m for m in body["metrics"]}
    latency = by_name["aws_dynamodb_endpoint_get_successful_request_latency"]
    assert latency["scope"] == "endpoint"
    assert latency["unit"] == "ms"
    assert "SampleCount" in latency["description"]
    assert by_name["aws_dynamodb_consumed_read_capacity_units"]["scope"] == "service"


def test_check_rules_lists_the_repository_metrics():
    result = run_cli("check-rules")
    assert result.returncode == 0
    assert "aws_dynamodb_endpoint_consumed_read_capacity_units" in result.stdout
    assert f"{len(load_rules(REPOSITORY_RULES).metrics)} metrics" in result.stdout


def test_check_rules_prints_the_first_error_with_its_place(tmp_path):
    (tmp_path / "broken.yaml").write_text("metricPrefix: t\nmetricsRules:\n  - name: x\n    exp: a.sum(['b'\n")
    result = run_cli("check-rules", str(tmp_path))
    assert result.returncode == 1
    assert "broken.yaml:4:" in result.stderr


def test_serve_with_broken_rules_is_one_sentence(tmp_path):
    (tmp_path / "broken.yaml").write_text("metricPrefix: t\nmetricsRules:\n  - name: x\n    exp: a.rate('PT1M')\n")
    line = one_sentence_error(run_cli("serve", "--port", "0", "--store", "memory://", "--rules", str(tmp_path)))
    assert "broken.yaml" in line


def catalog(url: str) -> set[str]:
    with urllib.request.urlopen(url + "/api/v1/metrics", timeout=10) as response:
        return {m["name"] for m in json.loads(response.read())["metrics"]}


def wait_for(predicate, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.slow
def test_sighup_reloads_rules_and_a_broken_file_keeps_the_old_ones(tmp_path):
    rules = tmp_path / "rules"
    shutil.copytree(REPOSITORY_RULES, rules)
    with ReceiverProcess("--store", "memory://", "--allow-unauthenticated", "--rules", str(rules)) as receiver:
        receiver.wait_listening()
        before = catalog(receiver.url)

        (rules / "aws-dynamodb" / "extra.yaml").write_text(EXTRA_RULE)
        receiver.proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: "aws_dynamodb_extra_consumed_read_sum" in catalog(receiver.url))
        assert catalog(receiver.url) == before | {"aws_dynamodb_extra_consumed_read_sum"}

        (rules / "aws-dynamodb" / "zz-broken.yaml").write_text(
            "metricPrefix: t\nmetricsRules: [{name: y, exp: 'a.+'}]\n"
        )
        receiver.proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: "rules not reloaded" in receiver.log)
        assert "zz-broken.yaml" in receiver.log
        assert "aws_dynamodb_extra_consumed_read_sum" in catalog(receiver.url)
        # Deliveries go on as before.
        assert post(receiver.url, Delivery(make_samples(3)))[0] == 200
        receiver.terminate()
        assert receiver.wait() == 0
