"""The alarm rules reload on SIGHUP with the metric rules; a broken file keeps the old ones."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import textwrap
import time

import pytest

from receiver.alarms.runtime import Alarms
from receiver.alarms.settings import AlarmSettings
from receiver.rules import RuleError, RuleHolder
from receiver.store.memory import MemoryStore
from tests.processes import ReceiverProcess
from tests.rules.rulekit import write

METRICS = """\
metricPrefix: t
metricsRules:
  - name: {name}
    exp: x.sum(['cloud_account_id']).service(['cloud_account_id'], Layer.X)
"""


def alarm_file(*names: str, metric: str = "t_errors") -> str:
    rules = "".join(
        textwrap.dedent(f"""\
          {name}:
            expression: {metric}
            scope: service
            op: ">"
            threshold: 0
            period: 1
        """)
        for name in names
    )
    return "rules:\n" + textwrap.indent(rules, "  ")


@pytest.fixture
def dirs(tmp_path):
    metrics, alarms = tmp_path / "rules", tmp_path / "alarms"
    metrics.mkdir()
    alarms.mkdir()
    write(metrics, "m.yaml", METRICS.format(name="errors"))
    write(alarms, "a.yaml", alarm_file("first"))
    return metrics, alarms


def alarms_for(holder: RuleHolder, directory) -> Alarms:
    return Alarms(AlarmSettings(directory), MemoryStore(), scopes(holder), settle_s=0)


def scopes(holder: RuleHolder) -> dict[str, str]:
    return {metric.name: metric.scope for metric in holder.current.metrics}


def names(alarms: Alarms) -> list[str]:
    assert [rule.name for rule in alarms.evaluator.rules] == [rule.name for rule in alarms.rules]
    return [rule.name for rule in alarms.rules]


def test_reload_swaps_in_the_new_alarm_rules(dirs):
    metrics, directory = dirs
    holder = RuleHolder(metrics)
    alarms = alarms_for(holder, directory)
    write(directory, "a.yaml", alarm_file("first", "second"))
    assert alarms.reload(scopes(holder)) is None
    assert names(alarms) == ["first", "second"]


@pytest.mark.parametrize(
    "broken, reason",
    [
        (alarm_file("first") + "    wrong: 1\n", "unknown setting"),
        ("rules: [", "not valid YAML"),
        (alarm_file("first", metric="t_nothing"), "which no metric rule defines"),
    ],
)
def test_a_broken_alarm_file_keeps_the_old_rules_with_one_line_naming_it(dirs, caplog, broken, reason):
    metrics, directory = dirs
    holder = RuleHolder(metrics)
    alarms = alarms_for(holder, directory)
    old = alarms.rules
    write(directory, "a.yaml", broken)
    with caplog.at_level(logging.INFO, logger="receiver.alarms"):
        error = alarms.reload(scopes(holder))
    assert isinstance(error, RuleError) and reason in str(error)
    assert alarms.rules is old and names(alarms) == ["first"]
    [line] = [r for r in caplog.records if r.name == "receiver.alarms"]
    assert line.levelno == logging.ERROR and line.exc_info is None
    assert "previous alarm rules stay in force" in line.getMessage()
    assert f"{directory / 'a.yaml'}:" in line.getMessage() and reason in line.getMessage()


async def test_sighup_reloads_the_metric_rules_then_the_alarm_rules_against_them(dirs):
    metrics, directory = dirs
    holder = RuleHolder(metrics)
    alarms = alarms_for(holder, directory)
    undo = holder.install_sighup(then=lambda: alarms.reload_async(scopes(holder)))
    try:
        # The alarm rule reads a metric the new metric rules define: checked against those.
        write(metrics, "m.yaml", METRICS.format(name="renamed"))
        write(directory, "a.yaml", alarm_file("first", "second", metric="t_renamed"))
        os.kill(os.getpid(), signal.SIGHUP)
        for _ in range(500):
            if names(alarms) == ["first", "second"]:
                break
            await asyncio.sleep(0.01)
        assert names(alarms) == ["first", "second"]
        assert [m.name for m in holder.current.metrics] == ["t_renamed"]
    finally:
        undo()


def wait_for_line(receiver: ReceiverProcess, text: str, after: int, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in receiver.lines[after:]:
            if text in line:
                return line
        assert receiver.proc.poll() is None, receiver.log
        time.sleep(0.05)
    raise AssertionError(f"no line with {text!r}:\n{receiver.log}")


@pytest.mark.slow
def test_serve_reloads_the_alarm_rules_on_sighup(tmp_path):
    directory = tmp_path / "alarms"
    directory.mkdir()
    write(directory, "a.yaml", alarm_file("first", metric="aws_dynamodb_user_errors"))
    with ReceiverProcess("--store", "memory://", "--access-key", "k" * 40, "--alarms", str(directory)) as receiver:
        receiver.wait_listening()
        write(directory, "a.yaml", alarm_file("first", "second", metric="aws_dynamodb_user_errors"))
        seen = len(receiver.lines)
        receiver.proc.send_signal(signal.SIGHUP)
        line = wait_for_line(receiver, "alarm rules reloaded", seen)
        assert "rules=2" in line
        write(directory, "a.yaml", "rules: [")
        seen = len(receiver.lines)
        receiver.proc.send_signal(signal.SIGHUP)
        line = wait_for_line(receiver, "alarm rules not reloaded", seen)
        assert str(directory / "a.yaml") in line and "not valid YAML" in line
        receiver.terminate()
        assert receiver.wait() == 0
        assert "Traceback" not in receiver.log
