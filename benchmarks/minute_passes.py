"""The minute passes alone: what the deriver spends on a minute that arrives in deliveries.

Minutes of the seeded account (benchmarks/whole/account.py) are committed into a SQLite
store in about 13 deliveries each, whole tables per delivery (the account-wide series with
the last), and after each delivery the deriver runs a minute pass as ``serve`` does: the
rules in its worker process. The figure is CPU time, this process's and the worker's, per
pass and per minute. The first minute of a run is the deriver's first sight of its series;
the later ones are the steady state.

Each run is a fresh process, so that one run's caches do not help another. ``--before PATH``
also measures the code of another checkout (PYTHONPATH=PATH; e.g. ``git archive main``),
runs of the two alternating, with the load average at each run:

    .venv/bin/python -m benchmarks.minute_passes [--tables N] [--minutes N] [--rounds N] [--before PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from itertools import groupby
from pathlib import Path
from typing import Any

from benchmarks.bodies import RECENT_MS
from benchmarks.whole.account import Account
from receiver.config import REPOSITORY_RULES
from receiver.derive.deriver import Deriver
from receiver.derive.worker import ProcessEvaluator
from receiver.model import Sample
from receiver.rules import RuleHolder
from receiver.server import gctune
from receiver.store.sqlite import SQLiteStore

DELIVERIES = 13
"""Deliveries a minute: what 2,000 tables take at 5 MiB bodies (docs/performance.md)."""
ROOT = Path(__file__).resolve().parents[1]


def cut(samples: list[Sample], deliveries: int) -> list[list[Sample]]:
    """A minute's samples in ``deliveries`` parts of whole tables, the account-wide series
    (no TableName) with the last: as Firehose buffers a metric stream (account.deliveries)."""
    tables: list[list[Sample]] = []
    account_wide: list[Sample] = []
    for name, members in groupby(samples, key=lambda s: dict(s.series.dimensions).get("TableName", "")):
        if name:
            tables.append(list(members))
        else:
            account_wide += members
    count = min(deliveries, len(tables))
    parts = [
        [s for table in tables[i * len(tables) // count : (i + 1) * len(tables) // count] for s in table]
        for i in range(count)
    ]
    parts[-1] += account_wide
    return parts


def worker_cpu_s() -> float:
    """CPU seconds of this process's children alive now (the rules' workers).

    Read here rather than with benchmarks/processes.py: with ``--before`` this file runs
    against another checkout's ``benchmarks`` package, which may lack what this one has, and
    ``processes.cpu_seconds`` lists /proc, too slow around a pass of milliseconds."""
    total = 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    for child in multiprocessing.active_children():
        try:
            fields = Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


def cpu_s() -> float:
    return time.process_time() + worker_cpu_s()


def run(tables: int, minutes: int) -> dict[str, Any]:
    """Stream ``minutes`` minutes of ``tables`` tables, a minute pass after each delivery;
    CPU seconds of each pass, by minute."""
    gctune.tune()  # as `receiver serve` does: this runs in a fresh process
    account = Account(tables)
    first_ms = RECENT_MS - minutes * 60_000

    async def stream(database: Path) -> dict[str, Any]:
        store = SQLiteStore(database)
        evaluator = ProcessEvaluator()
        await store.open()
        deriver = Deriver(store, RuleHolder(REPOSITORY_RULES), minute_retention_days=3650, evaluator=evaluator)
        passes: list[list[float]] = []
        try:
            for index in range(minutes):
                samples = account.minute(index, first_ms)
                passes.append([])
                for number, delivery in enumerate(cut(samples, DELIVERIES)):
                    await store.commit(f"minute-{index}-{number}", delivery)
                    deriver.touch(delivery)
                    before = cpu_s()
                    await deriver.derive_pending(hours=False)
                    passes[-1].append(cpu_s() - before)
            workers = worker_cpu_s()
        finally:
            evaluator.close()
            await store.close()
        return {"tables": tables, "datapoints": len(samples), "passes": passes, "worker_cpu_s": workers}

    with tempfile.TemporaryDirectory(prefix="minute-passes-") as work:
        return asyncio.run(stream(Path(work) / "metrics.db"))


def measured(code: Path, tables: int, minutes: int) -> dict[str, Any]:
    """``run`` in a fresh process importing the receiver from ``code``."""
    environment = {**os.environ, "PYTHONPATH": f"{code}{os.pathsep}{ROOT}"}
    # This file run by its path: a checkout of before it was written has none.
    script = (
        "import json, runpy, receiver; "
        f"found = runpy.run_path({str(Path(__file__))!r})['run']({tables}, {minutes}); "
        "found['receiver'] = receiver.__file__; print(json.dumps(found))"
    )
    load = os.getloadavg()[0]
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=code, env=environment, capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise RuntimeError(f"the minute passes' run failed in {code}:\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["load"] = [load, os.getloadavg()[0]]
    result["wall_s"] = time.perf_counter() - started
    return result


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """CPU seconds per minute (first and later) and per pass of the later minutes."""
    minutes = [sum(passes) for passes in result["passes"]]
    later = [cpu for passes in result["passes"][1:] for cpu in passes] or result["passes"][0]
    return {
        "first_minute_cpu_s": minutes[0],
        "later_minute_cpu_s": statistics.mean(minutes[1:]) if len(minutes) > 1 else None,
        "pass_cpu_s_median": statistics.median(later),
        "pass_cpu_s_max": max(later),
        "load": result["load"],
        "worker_cpu_s": result["worker_cpu_s"],
        "receiver": result["receiver"],
    }


def compare(tables: int, minutes: int, rounds: int, before: Path | None) -> dict[str, Any]:
    """Runs of this checkout (and of ``before``), alternating: their summaries by side."""
    sides = {"after": ROOT} if before is None else {"before": before, "after": ROOT}
    found: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
    for index in range(rounds):
        order = list(sides.items()) if index % 2 == 0 else list(sides.items())[::-1]
        for side, code in order:
            result = summary(measured(code, tables, minutes))
            found[side].append(result)
            print(f"  {side}: {json.dumps(result)}", file=sys.stderr, flush=True)
    return {"tables": tables, "minutes": minutes, "runs": found}


def report(figures: dict[str, Any], table: Callable[[list[str], list[list[str]]], str]) -> list[str]:
    """The printed table: ``table(headers, rows)`` is run.py's (or ``markdown``)."""
    rows = []
    for side, runs in figures["runs"].items():
        for found in runs:
            later = found["later_minute_cpu_s"]
            rows.append(
                [
                    side,
                    f"{found['first_minute_cpu_s']:.2f}",
                    "-" if later is None else f"{later:.2f}",
                    f"{found['pass_cpu_s_median']:.3f}, {found['pass_cpu_s_max']:.3f}",
                    f"{found['load'][0]:.1f}-{found['load'][1]:.1f}",
                ]
            )
    return [
        f"\nMinute passes, {figures['tables']:,} tables, {DELIVERIES} deliveries a minute, {figures['minutes']} "
        "minutes a run (CPU s of the receiver's process and its worker; the first minute is first sight)",
        table(["code", "first minute", "later minutes", "per later pass (median, max)", "load avg"], rows),
    ]


def markdown(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return "\n".join([*lines, *("| " + " | ".join(row) + " |" for row in rows)])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", type=int, default=2000)
    parser.add_argument("--minutes", type=int, default=2, help="minutes streamed per run (the first is first sight)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--before", type=Path, help="a checkout of the code to compare with (its root)")
    args = parser.parse_args(argv)
    if args.before is not None and not (args.before / "receiver").is_dir():
        parser.error(f"--before {args.before} holds no receiver/ package: give the root of a checkout")
    figures = compare(args.tables, args.minutes, args.rounds, args.before)
    print("\n".join(report(figures, markdown)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
