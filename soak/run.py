"""`make soak`: the Firehose emulator drives a real receiver (SQLite) at a steady rate, with
random duplicates and receiver restarts (SIGTERM and SIGKILL), then checks every value.

    .venv/bin/python -m soak.run [--minutes 10] [--rate 1.0] [--seed N]

Prints throughput, error counts and the receiver's RSS over time (its rule evaluation
worker included); exits 0 when every value the query API answers equals the one computed
from the generated workload, nothing was lost and the receiver's RSS levelled off, 1
otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from fuzzing.memory import RssSeries, children_rss_bytes, rss_bytes
from receiver.model import PERIOD_MS
from receiver.server.app import INGEST_PATH
from receiver_tools.emulator import EmulatorConfig, FirehoseEmulator, RetryPolicy
from tests.chain.expected import Query, Values, assert_api_matches, expected_values
from tests.processes import ReceiverProcess, free_port

from .plan import Restart, first_minute_ms, restart_schedule, soak_workload

RSS_EVERY_S = 5.0
STATUS_EVERY_S = 30.0
DUPLICATE_CHANCE = 0.05
"""Per emulated minute: the chance that an earlier minute is sent again (CloudWatch and
Firehose both repeat data)."""
SQLITE_PAGE_CACHE_BYTES = (64 + 16) * 1024 * 1024
"""The receiver's SQLite page cache caps, its writer's and its reader's (``PRAGMA
cache_size`` in receiver/store/sqlite/db.py): they fill as the database grows, so RSS may
rise by up to this much before it levels off."""
RSS_SLACK_BYTES = SQLITE_PAGE_CACHE_BYTES + 16 * 1024 * 1024


@dataclass(slots=True)
class Progress:
    minutes_sent: int = 0
    datapoints: int = 0
    duplicate_datapoints: int = 0
    restarts: list[str] = field(default_factory=list)
    rss: list[tuple[float, int, int]] = field(default_factory=list)
    """(seconds into the run, receiver pid, RSS bytes of the receiver and its worker)."""


class Receiver:
    """The receiver process, restarted on the same port so the emulator's URL stays valid."""

    def __init__(self, port: int, db: Path) -> None:
        self.port = port
        self.db = db
        self.process = self._start()

    def _start(self) -> ReceiverProcess:
        # ReceiverProcess collects the log lines; at INFO it learns the port from "listening".
        process = ReceiverProcess(
            "--port", str(self.port), "--store", f"sqlite:///{self.db}", "--allow-unauthenticated"
        )
        try:
            return process.wait_listening(60)
        except RuntimeError:
            process.stop()  # never leave a receiver behind that did not come up
            raise

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def restart(self, how: str) -> int:
        """Stop with ``how`` and start again; return the old process's exit code."""
        old = self.process
        old.proc.send_signal(getattr(signal, how))
        code = old.wait(120)
        self.process = self._start()
        return code

    def stop(self) -> int:
        self.process.terminate()
        return self.process.wait(120)


async def produce(
    stream: FirehoseEmulator, first_ms: int, total: int, rate: float, seed: int, progress: Progress, rng: random.Random
) -> None:
    """One emulated minute every 1/rate seconds, now and then an earlier one again."""
    workload = soak_workload(seed)
    started = time.monotonic()
    for index in range(total):
        delay = started + index / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        samples = workload.minute(first_ms + index * PERIOD_MS)
        await stream.put_samples(samples)
        progress.minutes_sent += 1
        progress.datapoints += len(samples)
        if index and rng.random() < DUPLICATE_CHANCE:
            again = workload.minute(first_ms + rng.randrange(index) * PERIOD_MS)
            await stream.put_samples(again)
            progress.duplicate_datapoints += len(again)


async def restart_receiver(receiver: Receiver, schedule: list[Restart], started: float, progress: Progress) -> None:
    for restart in schedule:
        await asyncio.sleep(max(0.0, started + restart.at_s - time.monotonic()))
        code = await asyncio.to_thread(receiver.restart, restart.signal)
        progress.restarts.append(f"planned at {restart.at_s:.0f} s: {restart.signal} (exit {code})")
        print(
            f"  {time.monotonic() - started:5.0f} s  restarted the receiver with {restart.signal} "
            f"(it exited with {code})",
            flush=True,
        )


async def watch(receiver: Receiver, stream: FirehoseEmulator, started: float, progress: Progress) -> None:
    next_status = started + STATUS_EVERY_S
    while True:
        await asyncio.sleep(RSS_EVERY_S)
        now = time.monotonic()
        pid = receiver.process.proc.pid
        try:
            # The receiver's own process and its rule evaluation worker.
            progress.rss.append((now - started, pid, rss_bytes(pid) + children_rss_bytes(pid)))
        except OSError:
            continue  # between a stop and the next start
        if now >= next_status:
            next_status += STATUS_EVERY_S
            delivered = sum(r.records for r in stream.results if r.outcome == "delivered")
            failed = sum(r.attempts - 1 for r in stream.results)
            print(
                f"  {now - started:5.0f} s  minutes sent {progress.minutes_sent:,}, datapoints "
                f"{progress.datapoints:,} (+{progress.duplicate_datapoints:,} repeated), records delivered "
                f"{delivered:,}, failed attempts {failed}, receiver RSS "
                f"{progress.rss[-1][2] / 2**20:.0f} MiB, database {_size(receiver.db) / 2**20:.0f} MiB",
                flush=True,
            )


def _size(db: Path) -> int:
    return sum(p.stat().st_size for p in db.parent.glob(db.name + "*") if p.is_file())


def expected_for(seed: int, first_ms: int, total: int) -> dict[Query, Values]:
    """Expected values minute by minute (each minute's values depend on that minute only),
    so the whole workload is never held in memory at once."""
    workload = soak_workload(seed)
    merged: dict[Query, Values] = {}
    for index in range(total):
        for query, values in expected_values(workload.minute(first_ms + index * PERIOD_MS)).items():
            merged.setdefault(query, {}).update(values)
    return merged


def steady_rss(progress: Progress, schedule: list[Restart], duration_s: float) -> RssSeries:
    """RSS readings of the receiver that ran through the second half (no restarts there),
    from 30 s after its start: what must level off."""
    last_restart = schedule[-1].at_s if schedule else 0.0
    series = RssSeries()
    for at, _, value in progress.rss:
        if at >= max(last_restart + 30.0, duration_s / 2):
            series.add(value)
    return series


def print_summary(
    progress: Progress, stream: FirehoseEmulator, seconds: float, steady: RssSeries, rss_ok: bool, problems: list[str]
) -> None:
    outcomes: dict[str, int] = {}
    for result in stream.results:
        outcomes[result.outcome] = outcomes.get(result.outcome, 0) + 1
    failed = sum(r.attempts - 1 for r in stream.results)
    sent = progress.datapoints + progress.duplicate_datapoints
    print(
        f"\nsoak: {seconds:.0f} s, {progress.minutes_sent:,} emulated minutes, {sent:,} datapoints sent "
        f"({progress.duplicate_datapoints:,} of them repeats): {sent / seconds:,.0f} datapoints/s"
    )
    print(
        f"batches: {len(stream.results):,} ({', '.join(f'{k} {v:,}' for k, v in sorted(outcomes.items()))}); "
        f"failed delivery attempts retried: {failed}"
    )
    print(f"restarts: {len(progress.restarts)}" + "".join(f"\n  {line}" for line in progress.restarts))
    print("receiver RSS over time (MiB):")
    for at, pid, value in progress.rss[:: max(1, len(progress.rss) // 24)]:
        print(f"  {at:6.0f} s  pid {pid:<7d} {value / 2**20:6.1f}")
    if steady.readings:
        print(
            f"steady stretch: {len(steady.readings)} readings, second half's peak over the first's "
            f"{steady.growth() / 2**20:+.1f} MiB (limit {RSS_SLACK_BYTES / 2**20:.0f}: the SQLite page "
            f"cache's {SQLITE_PAGE_CACHE_BYTES / 2**20:.0f} + 16) -> "
            f"{'levels off' if rss_ok else 'GROWS'}"
        )
    else:
        print("steady stretch: no readings (run too short)")
    if problems:
        print(f"\nVALUES WRONG: {len(problems)} problems\n" + "\n".join(problems[:20]))
    else:
        print("values: every metric of every entity and minute equals the workload's")


async def soak(minutes: float, rate: float, seed: int, workdir: Path) -> int:
    duration_s = minutes * 60
    rng = random.Random(seed)
    total = max(1, int(duration_s * rate))
    first_ms = first_minute_ms(int(time.time() * 1000), total)
    schedule = restart_schedule(duration_s, rng)
    receiver = await asyncio.to_thread(Receiver, free_port(), workdir / "soak.db")
    print(
        f"soak --minutes {minutes:g} --rate {rate:g} --seed {seed}: receiver at {receiver.url} "
        f"(SQLite {workdir / 'soak.db'}), {total:,} emulated minutes, {len(schedule)} restarts planned",
        flush=True,
    )
    config = EmulatorConfig(
        url=receiver.url + INGEST_PATH,
        gzip=True,
        buffer_bytes=1024 * 1024,
        buffer_interval_s=10,
        retry=RetryPolicy(duration_s=3600),
        time_scale=0.1,  # backoff from 0.1 s, buffer interval 1 s, retries for 6 minutes
        seed=seed,
    )
    progress = Progress()
    started = time.monotonic()
    problems: list[str] = []
    try:
        async with FirehoseEmulator(config) as stream:
            watcher = asyncio.create_task(watch(receiver, stream, started, progress))
            restarter = asyncio.create_task(restart_receiver(receiver, schedule, started, progress))
            await produce(stream, first_ms, total, rate, seed, progress, rng)
            await restarter
        seconds = time.monotonic() - started
        watcher.cancel()
        expected = await asyncio.to_thread(expected_for, seed, first_ms, total)
        try:
            await assert_api_matches(
                receiver.url, expected, first_ms // 1000, first_ms // 1000 + total * 60, timeout=180
            )
        except AssertionError as exc:
            problems.append(str(exc))
        lost = [r for r in stream.results if r.outcome != "delivered"]
        problems += [f"batch {r.request_id}: {r.outcome} ({r.error_code}: {r.error_message})" for r in lost]
        steady = steady_rss(progress, schedule, duration_s)
        rss_ok = steady.levels_off(RSS_SLACK_BYTES) and len(steady.readings) >= 4
        print_summary(progress, stream, seconds, steady, rss_ok, problems)
    finally:
        code = await asyncio.to_thread(receiver.stop)
    if code != 0:
        problems.append(f"the receiver exited with {code} on SIGTERM")
        print(problems[-1])
    return 0 if not problems and rss_ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m soak.run", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="how long to run (default 10)")
    parser.add_argument(
        "--rate", type=float, default=1.0, help="emulated minutes sent per second (default 1, about 520 datapoints/s)"
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random, printed)")
    parser.add_argument("--keep", action="store_true", help="keep the SQLite file and print where it is")
    args = parser.parse_args(argv)
    if not args.minutes > 0:
        parser.error(f"--minutes must be above 0, not {args.minutes}")
    if not 0 < args.rate <= 100:
        parser.error(f"--rate must be above 0 and at most 100 emulated minutes per second, not {args.rate}")
    logging.basicConfig(level=logging.ERROR)  # the emulator's per-attempt warnings are counted instead
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    workdir = Path(tempfile.mkdtemp(prefix="soak-"))
    try:
        return asyncio.run(soak(args.minutes, args.rate, seed, workdir))
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
