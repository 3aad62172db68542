"""The rules in force reload on SIGHUP; a broken file keeps the old rules and says why."""

from __future__ import annotations

import asyncio
import logging
import os
import signal

import pytest

from receiver.rules import RuleError, RuleHolder
from tests.rules.rulekit import write

GOOD = "metricPrefix: t\nmetricsRules:\n  - name: {name}\n    exp: x.service(['a'], Layer.X)\n"
BROKEN = "metricPrefix: t\nmetricsRules:\n  - name: m\n    exp: x.rate('PT1M')\n"


def names(holder):
    return [m.name for m in holder.current.metrics]


@pytest.fixture
def rules_dir(tmp_path):
    write(tmp_path, "r.yaml", GOOD.format(name="first"))
    return tmp_path


def test_reload_swaps_in_the_new_rules(rules_dir):
    holder = RuleHolder(rules_dir)
    write(rules_dir, "r.yaml", GOOD.format(name="second"))
    assert holder.reload() is None
    assert names(holder) == ["t_second"]


def test_a_broken_file_keeps_the_old_rules_and_logs_why(rules_dir, caplog):
    holder = RuleHolder(rules_dir)
    old = holder.current
    write(rules_dir, "r.yaml", BROKEN)
    with caplog.at_level(logging.ERROR, logger="receiver.rules.holder"):
        error = holder.reload()
    assert isinstance(error, RuleError) and "rate(...) is not supported" in str(error)
    assert holder.current is old and holder.last_error is error
    assert "previous rules stay in force" in caplog.text and "r.yaml:4:" in caplog.text


def test_a_good_reload_after_a_broken_one_clears_the_error(rules_dir):
    holder = RuleHolder(rules_dir)
    write(rules_dir, "r.yaml", BROKEN)
    holder.reload()
    write(rules_dir, "r.yaml", GOOD.format(name="third"))
    assert holder.reload() is None and holder.last_error is None
    assert names(holder) == ["t_third"]


def test_a_broken_directory_at_start_raises(tmp_path):
    write(tmp_path, "r.yaml", BROKEN)
    with pytest.raises(RuleError):
        RuleHolder(tmp_path)


async def wait_for(predicate, seconds=5.0):
    for _ in range(int(seconds / 0.01)):
        if predicate():
            return True
        await asyncio.sleep(0.01)
    return predicate()


async def test_sighup_reloads_the_rules(rules_dir):
    holder = RuleHolder(rules_dir)
    undo = holder.install_sighup()
    try:
        write(rules_dir, "r.yaml", GOOD.format(name="after_hup"))
        os.kill(os.getpid(), signal.SIGHUP)
        assert await wait_for(lambda: names(holder) == ["t_after_hup"])
    finally:
        undo()


async def test_sighup_with_a_broken_file_keeps_serving_the_old_rules(rules_dir):
    holder = RuleHolder(rules_dir)
    old = holder.current
    undo = holder.install_sighup()
    try:
        write(rules_dir, "r.yaml", BROKEN)
        os.kill(os.getpid(), signal.SIGHUP)
        assert await wait_for(lambda: holder.last_error is not None)
        assert holder.current is old
    finally:
        undo()


async def test_requests_keep_the_rule_set_they_started_with(rules_dir):
    # A handler reads holder.current once; a reload meanwhile does not change its rules.
    holder = RuleHolder(rules_dir)
    in_use = holder.current
    write(rules_dir, "r.yaml", GOOD.format(name="newer"))
    assert await holder.reload_async() is None
    assert [m.name for m in in_use.metrics] == ["t_first"] and names(holder) == ["t_newer"]
