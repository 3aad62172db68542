"""The fuzz and soak drivers' own logic: the memory verdict, the input split, the restart plan."""

from __future__ import annotations

import random
from itertools import pairwise

from fuzzing.memory import RssSeries
from fuzzing.run import SHARES, main, split
from soak.plan import restart_schedule

MIB = 2**20


def test_rss_that_keeps_growing_does_not_level_off():
    series = RssSeries([100 * MIB + i * 4 * MIB for i in range(20)])
    assert not series.levels_off(16 * MIB)


def test_rss_that_plateaus_after_warm_up_levels_off():
    series = RssSeries([60 * MIB, 80 * MIB, 90 * MIB] + [92 * MIB, 91 * MIB] * 10)
    assert series.levels_off(16 * MIB)


def test_split_gives_every_target_its_share_and_the_exact_total():
    counts = split(100_003)
    assert sum(counts.values()) == 100_003
    assert set(counts) == set(SHARES)
    assert all(counts[t] >= int(100_003 * share) for t, share in SHARES.items())


def test_restarts_fall_in_the_first_half_and_alternate_signals():
    schedule = restart_schedule(600, random.Random(1))
    assert len(schedule) == 5 and all(0 < r.at_s < 300 for r in schedule)
    assert [r.at_s for r in schedule] == sorted(r.at_s for r in schedule)
    signals = [r.signal for r in schedule]
    assert all(a != b for a, b in pairwise(signals))


def test_a_short_run_still_restarts_with_both_signals():
    schedule = restart_schedule(120, random.Random(2))
    assert {r.signal for r in schedule} == {"SIGTERM", "SIGKILL"}
    assert all(0 < r.at_s < 60 for r in schedule)


def test_short_fuzz_run_reports_counts_and_no_crash(capsys, tmp_path):
    assert main(["--inputs", "400", "--seed", "7", "--crash-dir", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "400 inputs" in printed and "no crashes" in printed
    assert "HTTP 400" in printed
