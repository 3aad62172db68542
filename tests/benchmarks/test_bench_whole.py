"""The whole-receiver benchmark (benchmarks/whole/): its account, how a minute is cut into
deliveries, its CPU accounting, and tiny runs whose figures come from what happened."""

from __future__ import annotations

import base64
import gzip
import os
import signal
import subprocess
import sys
import time

import orjson
import pytest

from benchmarks.processes import children, cpu_seconds
from benchmarks.run import main as bench_main
from benchmarks.whole import bench
from benchmarks.whole.account import FORMAT, Account, account_tables, deliveries
from benchmarks.whole.measure import WholePlan, prepare, replica_runs, sqlite_run
from benchmarks.whole.stream import Pace
from receiver.formats import SeriesCache, decode_record
from receiver.model import PERIOD_MS
from tests.builders import T0

TINY = WholePlan(tables=12, minutes=2, minute_s=3, replica_tables=12, replica_minutes=1, body_mib=0.02)
"""A dozen tables, bodies of 20 KiB so that each minute takes several deliveries, and a
"minute" of 3 s: seconds of wall time per run."""


def decoded(delivery) -> list:
    """The samples a delivery's body carries, decoded as the receiver decodes them."""
    envelope = orjson.loads(gzip.decompress(delivery.body))
    cache = SeriesCache()
    return [
        sample
        for record in envelope["records"]
        for sample in decode_record(base64.b64decode(record["data"]), FORMAT, cache=cache)
    ]


def streamed_datapoints(account: Account, minutes: int) -> int:
    return sum(len(account.minute(index, T0)) for index in range(minutes))


def test_the_account_uses_every_feature_of_the_workload():
    tables = account_tables(2000)
    assert {len(t.regions) for t in tables} == {1, 2}
    assert {len(t.indexes) for t in tables} == {0, 1, 2}
    assert {t.provisioned is None for t in tables} == {True, False}
    assert {t.global_version for t in tables if len(t.regions) > 1} == {"2019.11.21", "2017.11.29"}
    for feature in ("ttl", "transactions", "partiql", "stream", "kinesis", "new_index", "throttle_causes"):
        assert any(getattr(t, feature) for t in tables), feature
        assert not all(getattr(t, feature) for t in tables), feature
    causes = {cause for t in tables if t.provisioned is None for cause in t.throttle_causes}
    assert causes == {"AccountLimit", "KeyRangeThroughput", "MaxOnDemandThroughput"}


def test_a_minute_is_the_same_datapoints_in_every_run_moved_to_its_time():
    account = Account(5)
    first, later = account.minute(1, T0), account.minute(1, T0 + 7 * PERIOD_MS)
    assert {s.start_ms for s in first} == {T0 + PERIOD_MS}
    assert {s.start_ms for s in later} == {T0 + 8 * PERIOD_MS}
    assert [(s.series, s.sum, s.stats) for s in first] == [(s.series, s.sum, s.stats) for s in later]
    other = account.minute(2, T0 - PERIOD_MS)  # another minute at the same time: other values
    assert [(s.series, s.sum) for s in other] != [(s.series, s.sum) for s in later]


def test_warm_up_minutes_are_the_minutes_just_before_the_stream():
    account = Account(5)
    prepared = prepare(account, TINY, 2, warmup_minutes=2)
    starts = [{d.minute_ms for d in minute} for minute in (*prepared.warmup, *prepared.minutes)]
    assert all(len(minute) == 1 for minute in starts)
    firsts = [minute.pop() for minute in starts]
    assert firsts == [firsts[0] + index * PERIOD_MS for index in range(4)]
    assert len(prepare(account, TINY, 2).warmup) == 1


def test_a_minute_is_cut_into_deliveries_of_whole_tables_under_the_body_size():
    account = Account(30)
    samples = account.minute(0, T0)
    body_bytes = 20 * 1024
    cut = deliveries(samples, body_bytes, compress=True)

    assert len(cut) > 3
    assert all(d.record_bytes <= body_bytes for d in cut)
    # Every sample once, in order, and what each delivery says it carries.
    carried = [decoded(d) for d in cut]
    assert [len(batch) for batch in carried] == [d.datapoints for d in cut]
    assert [s.identity for batch in carried for s in batch] == [s.identity for s in samples]
    # Whole tables: each table's samples in one delivery only, and its probe among them.
    holder: dict[str, int] = {}
    for index, batch in enumerate(carried):
        for sample in batch:
            table = dict(sample.series.dimensions).get("TableName")
            if table:
                assert holder.setdefault(table, index) == index, table
    for index, delivery in enumerate(cut):
        assert {name for name, at in holder.items() if at == index} == set(delivery.tables)
        assert delivery.probe in delivery.tables
    assert {d.minute_ms for d in cut} == {T0}


def test_a_minute_whose_tables_are_interleaved_is_refused():
    samples = Account(2).minute(0, T0)
    first = [s for s in samples if dict(s.series.dimensions).get("TableName") == "table-00000"]
    second = [s for s in samples if dict(s.series.dimensions).get("TableName") == "table-00001"]
    with pytest.raises(ValueError, match="must come together"):
        deliveries(first[:1] + second + first[1:], 1 << 20, compress=False)


def test_a_table_larger_than_a_body_is_refused_with_the_fix():
    samples = Account(1).minute(0, T0)
    with pytest.raises(ValueError, match="use larger bodies"):
        deliveries(samples, 1024, compress=False)


def test_cpu_seconds_count_every_process_below_the_one_given():
    # A shell whose child burns 0.5 s of CPU and then sleeps: the shell itself uses next to
    # none. /proc counts in clock ticks, which round down: 0.4 s is surely counted.
    burn = "import time\nwhile time.process_time() < 0.5: pass\ntime.sleep(30)"
    shell = subprocess.Popen(["sh", "-c", f'"{sys.executable}" -c "$0"; true', burn])
    try:
        deadline = time.monotonic() + 30
        while cpu_seconds(shell.pid) < 0.4 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert cpu_seconds(shell.pid) >= 0.4
    finally:
        for child in children(shell.pid):
            os.kill(child, signal.SIGKILL)
        shell.kill()
        shell.wait()


def test_bad_durations_get_one_sentence(capsys):
    with pytest.raises(SystemExit) as exited:
        bench_main(["--whole-only", "--whole-minutes", "0"])
    assert exited.value.code == 2
    assert "--whole-minutes: '0' is not a whole number of at least 1" in capsys.readouterr().err


def check_run(run: dict, account: Account, minutes: int, replicas: int) -> None:
    """A run's figures are computed from what was sent and measured."""
    assert run["tables"] == account.tables
    assert run["minutes"] == minutes
    assert run["datapoints"] == streamed_datapoints(account, minutes)
    assert run["deliveries"] == sum(run["deliveries_per_replica"])
    assert run["attempts"] >= run["deliveries"]
    assert len(run["cpu_s"]) == replicas
    for cpu, per_minute, per_vcpu in zip(run["cpu_s"], run["cpu_s_per_minute"], run["tables_per_vcpu"], strict=True):
        assert cpu > 0
        assert per_minute == pytest.approx(cpu / minutes)
        assert per_vcpu == pytest.approx(account.tables * 60 / per_minute)
    assert 0 <= run["delay_p50_s"] <= run["delay_p99_s"] <= run["delay_max_s"]
    assert 0 <= run["delay_last_s"] <= run["delay_max_s"]
    assert all(rss > 0 for rss in run["peak_rss_bytes"])
    # A replica's rules worker starts with the first bucket it derives: with replicas taking
    # turns, one replica of a tiny stream may derive none, but some replica derived them all.
    assert any(rss > 0 for rss in run["worker_peak_rss_bytes"])


@pytest.mark.slow
def test_a_tiny_stream_to_one_receiver_on_sqlite_at_both_paces(tmp_path):
    account = Account(TINY.tables)
    expected_deliveries = sum(map(len, prepare(account, TINY, TINY.minutes).minutes))

    paced = sqlite_run(account, TINY, Pace(TINY.minute_s), tmp_path)
    check_run(paced, account, TINY.minutes, replicas=1)
    assert paced["deliveries"] == expected_deliveries > TINY.minutes
    assert paced["pace"] == "a minute per 3 s"
    # The span is the stream's wall minutes at least.
    assert paced["wall_s"] >= TINY.minutes * TINY.minute_s

    accelerated = sqlite_run(account, TINY, Pace(None), tmp_path)
    check_run(accelerated, account, TINY.minutes, replicas=1)
    assert accelerated["pace"] == "accelerated"

    whole = {"plan": {}, "runs": [paced, accelerated], "replicas": None}
    assert [verdict for _, _, verdict in bench.targets(whole)] == [None, None, None]  # too small to judge
    printed = bench.report(whole, lambda headers, rows: "\n".join(" | ".join(row) for row in rows))
    assert f"{paced['datapoints']:,}" in printed and "Two replicas: not measured" in printed


@pytest.mark.slow
@pytest.mark.aws
def test_two_replicas_on_dynalite_split_the_deliveries_of_the_stream_one_alone_takes():
    account = Account(TINY.replica_tables)
    replicas = replica_runs(account, TINY, Pace(TINY.minute_s))
    alone, two = replicas["alone"], replicas["two"]

    check_run(alone, account, TINY.replica_minutes, replicas=1)
    check_run(two, account, TINY.replica_minutes, replicas=2)
    assert alone["deliveries_per_replica"] == [alone["deliveries"]]
    assert two["deliveries"] == alone["deliveries"]
    first, second = two["deliveries_per_replica"]
    assert abs(first - second) <= 1 and first + second == two["deliveries"]
    assert replicas["share_of_alone"] == pytest.approx([cpu / alone["cpu_s"][0] for cpu in two["cpu_s"]])
    assert alone["other_cpu_s"]["dynalite"] > 0 and two["other_cpu_s"]["dynalite"] > 0
    assert "Two replicas on one dynalite store" in bench.report(
        {"runs": [], "replicas": replicas}, lambda headers, rows: "\n".join(map(str, [headers, *rows]))
    )
