"""The whole receiver's cost on a streamed account: one receiver on SQLite at real and at
accelerated time, and one against two replicas sharing a dynalite store.

Each run starts fresh processes on a fresh store, sends warm-up minutes (every series,
derived before the clock starts), then streams ``minutes`` minutes of the account. The
replica runs send two warm-up minutes, one alone and two replicas alike: consecutive
minutes are different replicas' turns (receiver/derive/replicas.py), so each replica has
derived a minute of every series before the clock starts, as replicas that have run a
while have.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from receiver.model import PERIOD_MS

from ..processes import DYNALITE_ENV, Dynalite, Serve
from .account import Account, Delivery, deliveries
from .stream import Outcome, Pace, Stream

MIB = 1 << 20


@dataclass(frozen=True, slots=True)
class WholePlan:
    """How much a whole-receiver measurement streams."""

    tables: int
    minutes: int
    """Emulated minutes streamed per run (after the warm-up minutes)."""
    minute_s: float
    """Wall seconds per emulated minute in the "real time" runs: 60 is real time; less
    squeezes a minute's deliveries into a shorter span (quick mode)."""
    replica_tables: int
    replica_minutes: int
    """0: no replicas run."""
    body_mib: float = 1.0
    """Record data per delivery: the stack's Firehose buffer size (stacks/settings.py)."""
    compress: bool = True
    """The stack's Firehose gzips its requests (stacks/delivery.py)."""
    late_minutes: int = 2
    """CloudWatch streams a minute a few minutes after it ends: the first streamed minute
    starts this many minutes before the runs are prepared."""


@dataclass(frozen=True, slots=True)
class Prepared:
    """A run's deliveries: the warm-up minutes, then the streamed minutes."""

    warmup: list[list[Delivery]]
    minutes: list[list[Delivery]]


REPLICA_WARMUP_MINUTES = 2
"""Warm-up minutes of the replica runs: one per replica of the two (see the docstring)."""


def prepare(account: Account, plan: WholePlan, minutes: int, warmup_minutes: int = 1) -> Prepared:
    """The deliveries of ``warmup_minutes`` warm-up minutes and of ``minutes`` minutes, timed
    as CloudWatch would stream them now: the first streamed minute started ``late_minutes``
    ago."""
    now_ms = int(time.time() * 1000)
    first_ms = now_ms - now_ms % PERIOD_MS - plan.late_minutes * PERIOD_MS
    body_bytes = int(plan.body_mib * MIB)

    def cut(index: int) -> list[Delivery]:
        return deliveries(account.minute(index, first_ms), body_bytes, plan.compress)

    return Prepared([cut(index) for index in range(-warmup_minutes, 0)], [cut(index) for index in range(minutes)])


def sqlite_run(account: Account, plan: WholePlan, pace: Pace, work: Path) -> dict[str, Any]:
    """One receiver on a fresh SQLite file."""
    prepared = prepare(account, plan, plan.minutes)
    # Absolute: the receiver runs in the repository's root, the poller wherever this runs.
    database = (work / "whole" / "metrics.db").resolve()
    database.parent.mkdir(parents=True, exist_ok=True)
    for stale in database.parent.glob(database.name + "*"):
        stale.unlink()
    url = f"sqlite:///{database}"
    with ExitStack() as stack:
        serve = Serve("sqlite", url)
        stack.callback(serve.stop)
        serve.wait_listening()
        load = os.getloadavg()[0]
        outcome = asyncio.run(Stream([serve], account.service, url).run(prepared.warmup, prepared.minutes, pace))
    return figures(account, plan, pace, "sqlite", outcome, load)


def replica_runs(account: Account, plan: WholePlan, pace: Pace) -> dict[str, Any]:
    """The same stream to one receiver alone, then split between two, each on a fresh
    dynalite store; with each replica's CPU against the one alone's."""
    minutes = plan.replica_minutes
    alone = _dynalite_run(account, plan, pace, replicas=1, minutes=minutes)
    two = _dynalite_run(account, plan, pace, replicas=2, minutes=minutes)
    alone_cpu = alone["cpu_s_per_minute"][0]
    return {
        "alone": alone,
        "two": two,
        "share_of_alone": [cpu / alone_cpu for cpu in two["cpu_s_per_minute"]],
    }


def _dynalite_run(account: Account, plan: WholePlan, pace: Pace, replicas: int, minutes: int) -> dict[str, Any]:
    prepared = prepare(account, plan, minutes, REPLICA_WARMUP_MINUTES)
    with ExitStack() as stack:
        # This process reads the store too (the poller), with dynalite's stand-in credentials.
        stack.enter_context(environment(DYNALITE_ENV))
        dynalite = Dynalite()
        stack.callback(dynalite.stop)
        url = dynalite.store_url(f"whole-{uuid.uuid4().hex[:8]}")
        receivers = []
        for index in range(replicas):
            # One after the other: the first creates the store's table.
            serve = Serve(f"replica {index + 1}", url, "--create-store", env=DYNALITE_ENV)
            stack.callback(serve.stop)
            receivers.append(serve.wait_listening())
        others = {"dynalite": (dynalite.proc.pid, dynalite.check_alive)}
        load = os.getloadavg()[0]
        stream_to = Stream(receivers, account.service, url, others)
        outcome = asyncio.run(stream_to.run(prepared.warmup, prepared.minutes, pace))
    store = f"dynalite, {replicas} replica{'s' if replicas > 1 else ''}"
    return figures(account, plan, pace, store, outcome, load)


@contextmanager
def environment(settings: dict[str, str]) -> Iterator[None]:
    """``settings`` in this process's environment, and no AWS profile or session token,
    until the block ends."""
    names = (*settings, "AWS_PROFILE", "AWS_SESSION_TOKEN")
    saved = {name: os.environ.get(name) for name in names}
    for name in names:
        os.environ.pop(name, None)
    os.environ.update(settings)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def figures(
    account: Account, plan: WholePlan, pace: Pace, store: str, outcome: Outcome, load_at_start: float
) -> dict[str, Any]:
    """A run's figures as plain data (for the JSON and the printed table). The machine's
    load average at both ends tells whether other work shared its cores."""
    minutes = len({item.delivery.minute_ms for item in outcome.sent})
    delays = sorted(item.delay_s for item in outcome.sent)
    last = max(outcome.sent, key=lambda item: item.acked_at)
    cpu_per_minute = [cpu / minutes for cpu in outcome.cpu_s]
    return {
        "store": store,
        "pace": pace.name,
        "minute_s": pace.minute_s,
        "tables": account.tables,
        "minutes": minutes,
        "replicas": len(outcome.cpu_s),
        "deliveries": len(outcome.sent),
        "deliveries_per_replica": [
            sum(1 for item in outcome.sent if item.replica == index) for index in range(len(outcome.cpu_s))
        ],
        "attempts": sum(item.attempts for item in outcome.sent),
        "datapoints": sum(item.delivery.datapoints for item in outcome.sent),
        "wire_bytes": sum(len(item.delivery.body) for item in outcome.sent),
        "wall_s": outcome.wall_s,
        "cpu_s": outcome.cpu_s,
        "cpu_s_per_minute": cpu_per_minute,
        "tables_per_vcpu": [account.tables * 60 / cpu if cpu > 0 else None for cpu in cpu_per_minute],
        "delay_p50_s": nearest_rank(delays, 0.50),
        "delay_p99_s": nearest_rank(delays, 0.99),
        "delay_max_s": delays[-1],
        "delay_last_s": last.delay_s,
        "peak_rss_bytes": outcome.peak_rss,
        "worker_peak_rss_bytes": outcome.worker_peak_rss,
        "other_cpu_s": outcome.extra_cpu_s,
        "body_mib": plan.body_mib,
        "gzip": plan.compress,
        "load_average": [load_at_start, os.getloadavg()[0]],
    }


def nearest_rank(ordered: list[float], fraction: float) -> float:
    """The nearest-rank percentile of ascending ``ordered``."""
    rank = max(1, -(-int(fraction * 1000) * len(ordered) // 1000))
    return ordered[min(rank, len(ordered)) - 1]
