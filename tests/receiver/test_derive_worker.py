"""Rule evaluation in a worker process gives what evaluation in this process gives."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import time

import pytest

from receiver.config import REPOSITORY_RULES
from receiver.derive import worker
from receiver.derive.regions import evaluate_by_region
from receiver.derive.rollup import rollup_hour
from receiver.derive.worker import ProcessEvaluator, ThreadEvaluator, pack_samples, unpack_samples
from receiver.model import HOUR_MS, MINUTE_MS, Sample, Series
from receiver.rules import load_rules
from receiver.server.app import INGEST_PATH
from receiver_tools.emulator import EmulatorConfig, FirehoseEmulator
from receiver_tools.workload import TableSpec, Workload
from tests.builders import T0, make_sample
from tests.chain.workload import recent_workload
from tests.processes import ReceiverProcess, child_processes, is_running

pytestmark = pytest.mark.slow

TABLES = [
    TableSpec("GameScores", indexes=("ByPlayer",), provisioned=(50.0, 20.0)),
    TableSpec("Orders", regions=("us-east-1", "eu-west-1"), ttl=True, transactions=True),
]
ONE_RULE = """\
metricPrefix: test
metricsRules:
  - name: reads
    exp: amazonaws_com_AWS_DynamoDB_ConsumedReadCapacityUnits_sum.sum(['cloud_account_id']).service(['cloud_account_id'], Layer.AWS_DYNAMODB)
"""


@pytest.fixture(scope="module")
def rules():
    return load_rules(REPOSITORY_RULES)


@pytest.fixture(scope="module")
def minute() -> list[Sample]:
    return Workload(seed=11, tables=TABLES).minute(T0)


@pytest.fixture
async def evaluator():
    opened = ProcessEvaluator()
    yield opened
    opened.close()


def test_samples_cross_as_tuples_and_come_back_equal(minute):
    # Two Series objects with one key and different units stay two objects.
    seconds = Series(*minute[0].series.key, "Seconds")
    samples = [*minute, minute[0]._replace(series=seconds, start_ms=T0 + 60_000, end_ms=T0 + 120_000)]
    table, fields = pack_samples(samples)
    assert all(type(row) is tuple for row in table)
    assert not any(isinstance(field, (Sample, Series)) for field in fields)
    back = unpack_samples((table, fields))
    assert back == samples
    assert all(type(sample) is Sample for sample in back)
    assert back[-1].series.unit == "Seconds" and back[0].series.unit != "Seconds"
    assert len({id(sample.series) for sample in back}) == len({id(sample.series) for sample in samples})


async def test_the_worker_gives_the_values_of_this_process(evaluator, rules, minute):
    expected = evaluate_by_region(rules, minute).values
    assert len(expected) > 50
    assert any(not value.merged for value in expected)  # "Orders" reports from two regions
    assert (await evaluator.evaluate(rules, minute)).values == expected
    assert (await ThreadEvaluator().evaluate(rules, minute)).values == expected
    assert (await evaluator.evaluate(rules, [])).values == rules.evaluate([]) == []


async def test_reloaded_rules_reach_the_worker(evaluator, rules, minute, tmp_path):
    (tmp_path / "one.yaml").write_text(ONE_RULE)
    other = load_rules(tmp_path)
    first = await evaluator.evaluate(rules, minute)
    second = await evaluator.evaluate(other, minute)
    assert {value.metric for value in second.values} == {"test_reads"}
    assert second.values == other.evaluate(minute)
    assert await evaluator.evaluate(rules, minute) == first


async def test_a_killed_worker_is_replaced(evaluator, rules, minute):
    expected = evaluate_by_region(rules, minute)
    assert await evaluator.evaluate(rules, minute) == expected
    workers = multiprocessing.active_children()
    assert len(workers) == 1
    os.kill(workers[0].pid, signal.SIGKILL)
    workers[0].join(10)
    assert await evaluator.evaluate(rules, minute) == expected
    assert [child.pid for child in multiprocessing.active_children()] != [workers[0].pid]


async def test_without_a_worker_the_rules_run_in_a_thread(monkeypatch, rules, caplog):
    def no_semaphores(*args, **kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(worker, "ProcessPoolExecutor", no_semaphores)
    samples = [make_sample("GameScores", "ConsumedReadCapacityUnits", 0, value=120.0, count=4)]
    evaluator = ProcessEvaluator()
    assert await evaluator.evaluate(rules, samples) == evaluate_by_region(rules, samples)
    assert await evaluator.evaluate(rules, samples) == evaluate_by_region(rules, samples)
    assert [r.message for r in caplog.records].count(
        "no worker process for rule evaluation, evaluating in a thread"
    ) == 1
    evaluator.close()


async def test_the_worker_survives_a_value_that_cannot_be_computed(evaluator, rules, minute):
    # One account's two regions' user errors add up past the largest float: only that
    # account's value is left out (and counted); the worker goes on with the next call.
    poisoned = [
        Sample(
            Series("111111111111", region, "AWS/DynamoDB", "UserErrors", (), "Count"),
            T0,
            T0 + 60_000,
            1.0,
            1.7e308,
            1.7e308,
            1.7e308,
            (),
            (),
        )
        for region in ("us-east-1", "eu-west-1")
    ]
    evaluation = await evaluator.evaluate(rules, [*minute, *poisoned])
    assert evaluation == evaluate_by_region(rules, [*minute, *poisoned])
    assert evaluation.not_computed == {"aws_dynamodb_user_errors": 1}
    assert "aws-dynamodb::111111111111" not in {value.service for value in evaluation.values}
    assert evaluation.values == evaluate_by_region(rules, minute).values  # everyone else's values, all of them
    assert (await evaluator.evaluate(rules, minute)).values == evaluate_by_region(rules, minute).values


async def test_close_stops_the_worker(rules, minute):
    evaluator = ProcessEvaluator()
    await evaluator.evaluate(rules, minute)
    workers = multiprocessing.active_children()
    assert len(workers) == 1
    evaluator.close()
    workers[0].join(10)
    assert not workers[0].is_alive()
    assert multiprocessing.active_children() == []


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
async def test_the_worker_ends_with_the_receiver(stop):
    with ReceiverProcess("--store", "memory://", "--allow-unauthenticated") as receiver:
        receiver.wait_listening()
        config = EmulatorConfig(url=receiver.url + INGEST_PATH, record_format="json", seed=3)
        async with FirehoseEmulator(config) as stream:
            for minute in recent_workload(minutes=2).minutes:
                await stream.put_samples(minute)
        deadline = time.monotonic() + 30
        while not any("spawn_main" in line for line in child_processes(receiver.proc.pid).values()):
            assert time.monotonic() < deadline, "the receiver never started its evaluation worker"
            await asyncio.sleep(0.1)
        children = list(child_processes(receiver.proc.pid))
        receiver.proc.send_signal(stop)
        assert receiver.wait() == (0 if stop == signal.SIGTERM else -signal.SIGKILL)
        deadline = time.monotonic() + 15
        while any(map(is_running, children)):
            assert time.monotonic() < deadline, f"left running: {[c for c in children if is_running(c)]}"
            await asyncio.sleep(0.1)


def by_partition(samples):
    from receiver.rules.incremental import PartitionedEvaluation

    return PartitionedEvaluation.by_partition(samples)


def changed_families(before, after):
    from receiver.rules.incremental import changed_families

    return changed_families(before, after)


def same_changes(left, right) -> bool:
    """Equal changes, whatever the order of their values (sets iterate in another order in
    another process)."""
    from receiver.model import derived_key

    return (
        sorted(left.upserts, key=derived_key) == sorted(right.upserts, key=derived_key)
        and sorted(left.removals) == sorted(right.removals)
        and (left.not_computed, left.total) == (right.not_computed, right.total)
    )


async def test_a_minute_kept_in_the_worker_changes_as_one_kept_in_this_process(evaluator, rules, minute):
    from receiver.model import derived_key

    groups = by_partition(minute)
    in_thread = ThreadEvaluator()
    first = await evaluator.update(MINUTE_MS, rules, T0, groups, None, [T0])
    assert same_changes(first, await in_thread.update(MINUTE_MS, rules, T0, groups, None, [T0]))
    assert {derived_key(v): v for v in first.upserts} == {
        derived_key(v): v for v in evaluate_by_region(rules, minute).values
    }
    # One table changes: the same few changes come back from both.
    table = next(key for key in groups if key[2] == "Orders")
    changed = {table: [s._replace(sum=s.sum + 1.0) for s in groups[table]]}
    families = {table: changed_families(groups[table], changed[table])}
    second = await evaluator.update(MINUTE_MS, rules, T0, changed, families, [T0])
    assert same_changes(second, await in_thread.update(MINUTE_MS, rules, T0, changed, families, [T0]))
    assert 0 < len(second.upserts) < len(first.upserts)
    # A minute not kept (never sent, or forgotten: not live) is asked for whole.
    assert await evaluator.update(MINUTE_MS, rules, T0 + 60_000, changed, families, [T0, T0 + 60_000]) is None
    assert await evaluator.update(MINUTE_MS, rules, T0, changed, families, [T0 + 60_000]) is None


async def test_a_worker_killed_with_its_minutes_asks_for_them_whole(evaluator, rules, minute):
    groups = by_partition(minute)
    assert await evaluator.update(MINUTE_MS, rules, T0, groups, None, [T0]) is not None
    (worker_process,) = multiprocessing.active_children()
    os.kill(worker_process.pid, signal.SIGKILL)
    worker_process.join(10)
    assert await evaluator.update(MINUTE_MS, rules, T0, groups, {key: {"any"} for key in groups}, [T0]) is None
    again = await evaluator.update(MINUTE_MS, rules, T0, groups, None, [T0])
    assert len(again.upserts) == len(evaluate_by_region(rules, minute).values)


async def test_an_hour_kept_in_the_worker_changes_as_one_kept_in_this_process(evaluator, rules, minute):
    from receiver.derive.hours import derive_hour_values
    from receiver.model import derived_key

    hour = T0 - T0 % HOUR_MS
    rolled = rollup_hour(minute, hour)
    groups = by_partition(rolled)
    in_thread = ThreadEvaluator()
    first = await evaluator.update(HOUR_MS, rules, hour, groups, None, [hour])
    assert same_changes(first, await in_thread.update(HOUR_MS, rules, hour, groups, None, [hour]))
    assert {derived_key(v): v for v in first.upserts} == {
        derived_key(v): v for v in derive_hour_values(rules, minute, hour)
    }
    table = next(key for key in groups if key[2] == "Orders")
    changed = {table: [s._replace(sum=s.sum + 1.0) for s in groups[table]]}
    families = {table: changed_families(groups[table], changed[table])}
    second = await evaluator.update(HOUR_MS, rules, hour, changed, families, [hour])
    assert same_changes(second, await in_thread.update(HOUR_MS, rules, hour, changed, families, [hour]))
    assert 0 < len(second.upserts) < len(first.upserts)
    # Hours and minutes are kept apart: the minute of the same start is not held.
    assert await evaluator.update(MINUTE_MS, rules, hour, changed, families, [hour]) is None
