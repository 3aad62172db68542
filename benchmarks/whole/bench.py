"""The whole-receiver part of ``make bench``: what benchmarks/run.py calls, prints and judges."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from .account import Account
from .measure import MIB, WholePlan, replica_runs, sqlite_run
from .stream import REAL_TIME_S, Pace

TABLES_PER_VCPU = 100_000
DELAY_P99_S = 5.0
REPLICA_SHARE = 0.60
JUDGED_TABLES = 2000
"""Tables per vCPU and the delay are judged for a 2,000-table account streamed at real time;
smaller or squeezed runs (quick mode) print their figures unjudged."""


def measure(plan: WholePlan, work: Path, log: Callable[[str], None]) -> dict[str, Any]:
    """One receiver on SQLite at real time and accelerated; then, unless the plan streams
    them no minutes, one receiver alone and two replicas on dynalite, at real time."""
    pace = Pace(plan.minute_s)
    log(f"  generating the account: {plan.tables} tables")
    account = Account(plan.tables)
    runs = []
    for run_pace in (pace, Pace(None)):
        log(f"  {plan.tables} tables, {plan.minutes} minutes, {run_pace.name}, SQLite")
        runs.append(sqlite_run(account, plan, run_pace, work))
        log("    " + _summary(runs[-1]))
    replicas = None
    if plan.replica_minutes:
        if plan.replica_tables != plan.tables:
            account = Account(plan.replica_tables)
        log(f"  {plan.replica_tables} tables, {plan.replica_minutes} minutes, {pace.name}, dynalite: 1 and 2 replicas")
        replicas = replica_runs(account, plan, pace)
        for run in (replicas["alone"], replicas["two"]):
            log("    " + _summary(run))
    return {"plan": _plan_dict(plan), "runs": runs, "replicas": replicas}


def _plan_dict(plan: WholePlan) -> dict[str, Any]:
    return {name: getattr(plan, name) for name in plan.__slots__}


def _summary(run: dict[str, Any]) -> str:
    cpu = ", ".join(f"{value:.2f}" for value in run["cpu_s_per_minute"])
    return (
        f"{run['store']}, {run['pace']}: {run['datapoints']:,} datapoints in {run['deliveries']} deliveries; "
        f"CPU s per minute {cpu}; delay p50 {run['delay_p50_s']:.1f} s, p99 {run['delay_p99_s']:.1f} s"
    )


def report(whole: dict[str, Any], table: Callable[[list[str], list[list[str]]], str]) -> str:
    """The printed section: one row per receiver of each run."""
    rows = []
    replicas = whole["replicas"]
    for run in [*whole["runs"], *((replicas["alone"], replicas["two"]) if replicas else ())]:
        for index in range(run["replicas"]):
            rows.append(
                [
                    run["store"] + (f" #{index + 1}" if run["replicas"] > 1 else ""),
                    run["pace"],
                    f"{run['tables']:,}",
                    str(run["minutes"]),
                    f"{run['deliveries_per_replica'][index]}",
                    f"{run['datapoints']:,}",
                    f"{run['cpu_s_per_minute'][index]:.2f}",
                    _count(run["tables_per_vcpu"][index]),
                    f"{run['delay_p50_s']:.1f}",
                    f"{run['delay_p99_s']:.1f}",
                    f"{run['delay_last_s']:.1f}",
                    f"{run['peak_rss_bytes'][index] / MIB:.0f}",
                    f"{run['worker_peak_rss_bytes'][index] / MIB:.0f}",
                    f"{run['load_average'][0]:.1f}-{run['load_average'][1]:.1f}",
                ]
            )
    if replicas:
        share = ", ".join(f"{value:.0%}" for value in replicas["share_of_alone"])
        closing = f"Two replicas on one dynalite store: each spends {share} of the CPU one replica alone spends."
    else:
        closing = "Two replicas: not measured in this run (--whole-replica-minutes N measures them)."
    return "\n".join(
        [
            "\nThe whole receiver on a streamed account (python -m receiver serve and its worker; CPU from /proc "
            "of the process tree; delay: from a delivery's ack until its values are queryable, over deliveries)",
            table(
                [
                    "store",
                    "pace",
                    "tables",
                    "minutes",
                    "deliveries",
                    "datapoints",
                    "CPU s/minute",
                    "tables/vCPU",
                    "delay p50 s",
                    "p99 s",
                    "last s",
                    "RSS MiB",
                    "worker MiB",
                    "load",
                ],
                rows,
            ),
            closing,
        ]
    )


def _count(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def targets(whole: dict[str, Any]) -> list[tuple[str, str, bool | None]]:
    """(target, figure, met; None when the run is too small or not at real time to judge)."""
    real = whole["runs"][0]
    judged = real["minute_s"] == REAL_TIME_S and real["tables"] >= JUDGED_TABLES
    per_vcpu = real["tables_per_vcpu"][0] or 0.0
    return [
        (
            f">= {TABLES_PER_VCPU:,} tables per vCPU in real time",
            f"{per_vcpu:,.0f} ({real['cpu_s_per_minute'][0]:.2f} CPU s per minute of {real['tables']:,} tables)",
            per_vcpu >= TABLES_PER_VCPU if judged else None,
        ),
        (
            f"values queryable <= {DELAY_P99_S:g} s after the ack (p99, {real['tables']:,} tables)",
            f"{real['delay_p99_s']:.1f} s (p50 {real['delay_p50_s']:.1f} s, over {real['deliveries']} deliveries)",
            real["delay_p99_s"] <= DELAY_P99_S if judged else None,
        ),
        _replica_target(whole["replicas"]),
    ]


def _replica_target(replicas: dict[str, Any] | None) -> tuple[str, str, bool | None]:
    name = f"two replicas on one store each <= {REPLICA_SHARE:.0%} of one alone's CPU"
    if not replicas:
        return name, "not measured", None
    alone, two, shares = replicas["alone"], replicas["two"], replicas["share_of_alone"]
    figure = (
        ", ".join(f"{share:.0%}" for share in shares)
        + f" ({' and '.join(f'{cpu:.2f}' for cpu in two['cpu_s_per_minute'])} against "
        f"{alone['cpu_s_per_minute'][0]:.2f} CPU s per minute of {alone['tables']:,} tables)"
    )
    # The replicas' account may be smaller: the share of one alone's CPU is what is judged.
    judged = alone["minute_s"] == REAL_TIME_S
    return name, figure, all(share <= REPLICA_SHARE for share in shares) if judged else None
