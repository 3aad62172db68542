"""`python -m receiver demo` (`make demo`): the receiver fed by an emulated DynamoDB metric stream.

Starts `python -m receiver serve` on 127.0.0.1 (port 12801, or a free one if that is taken)
with SQLite at ./data/demo.db, backfills three hours of the seeded workload through the
Firehose protocol (the emulator: gzip, access key, retries), then streams each new minute as
it completes. Ctrl-C or SIGTERM stops the stream and the receiver.

The workload is seeded by minute, so running the demo again re-sends identical datapoints
for minutes already stored: they overwrite themselves and nothing is counted twice.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any

from receiver import logs
from receiver.model import PERIOD_MS
from receiver_tools.demo_aws import TAG_LABELS, demo_dynamodb, inventory_regions
from receiver_tools.emulator import EmulatorConfig, FirehoseEmulator, RetryPolicy
from receiver_tools.workload import DEFAULT_TABLES, Workload

DEFAULT_PORT = 12801
DEFAULT_STORE = "sqlite:///./data/demo.db"
STREAM_LAG_S = 5.0
"""How long after a minute ends its datapoints are sent (CloudWatch streams with some lag)."""


class DemoError(RuntimeError):
    """The demo cannot go on; ``str(e)`` says why in one sentence."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--port",
        default=str(DEFAULT_PORT),
        help=f"port for the receiver (default {DEFAULT_PORT}; a free one if it is taken)",
    )
    parser.add_argument("--store", default=DEFAULT_STORE, help=f"the receiver's store (default {DEFAULT_STORE})")
    parser.add_argument("--backfill-minutes", default="180", help="minutes of history to send first (default 180)")
    parser.add_argument(
        "--speed",
        default="1",
        help="run the emulated clock this many times faster: with 60, a new minute "
        "streams every second (default 1; for tests)",
    )
    parser.add_argument("--seed", default="7", help="the workload's seed (default 7)")


def main(args: argparse.Namespace) -> int:
    try:
        settings = _settings(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    logs.configure("ERROR")  # the demo reports failed deliveries itself, in a line each
    try:
        return asyncio.run(_run(*settings))
    except DemoError as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C before the demo's own handler was in place
        return 130


def _settings(args: argparse.Namespace) -> tuple[int, str, int, float, int]:
    try:
        port = int(args.port)
        if not 0 <= port <= 65535:
            raise ValueError
    except ValueError:
        raise ValueError(f"--port {args.port!r} is not a port number from 0 to 65535") from None
    try:
        backfill = int(args.backfill_minutes)
        if not 0 <= backfill <= 7 * 24 * 60:
            raise ValueError
    except ValueError:
        raise ValueError(f"--backfill-minutes {args.backfill_minutes!r} must be 0 to 10080 minutes") from None
    try:
        speed = float(args.speed)
        if not 0 < speed <= 100_000:
            raise ValueError
    except ValueError:
        raise ValueError(f"--speed {args.speed!r} must be a number above 0") from None
    try:
        seed = int(args.seed)
    except ValueError:
        raise ValueError(f"--seed {args.seed!r} must be a whole number") from None
    return port, args.store, backfill, speed, seed


class ReceiverChild:
    """The receiver subprocess; its log is kept in memory and shown if it fails."""

    def __init__(
        self, port: int, store: str, access_key: str, args: Sequence[str] = (), env: Mapping[str, str] | None = None
    ) -> None:
        self.port = port
        self.tail: collections.deque[str] = collections.deque(maxlen=40)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "receiver",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--store",
                store,
                "--log-level",
                "WARNING",
                *args,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            # The key goes by the environment: it stays out of the process list, and a key
            # token_urlsafe starts with "-" (one in 64) is not taken for an option.
            env={**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1", "RECEIVER_ACCESS_KEYS": access_key},
        )
        threading.Thread(target=self._collect, daemon=True).start()

    def _collect(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.tail.append(line.rstrip("\n"))

    def failure(self, what: str) -> DemoError:
        time.sleep(0.2)  # let the last lines arrive
        log = "\n".join(self.tail) or "(no output)"
        return DemoError(f"{what}; the receiver said:\n{log}")

    async def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.port}/readyz"
        loop = asyncio.get_running_loop()
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise self.failure("the receiver stopped while starting")
            if await loop.run_in_executor(None, _answers, url):
                return
            await asyncio.sleep(0.1)
        raise self.failure(f"the receiver was not ready after {timeout:g} s")

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def pick_port(wanted: int) -> int:
    """``wanted`` if it is free on 127.0.0.1, else any free port."""
    for port in (wanted, 0):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise DemoError("no free port on 127.0.0.1")


class EmulatedClock:
    """Wall-clock time, or time running ``speed`` times faster from the moment it starts."""

    def __init__(self, speed: float) -> None:
        self.speed = speed
        self._start_wall = time.time()
        self._start = time.monotonic()

    def now_ms(self) -> int:
        return int((self._start_wall + (time.monotonic() - self._start) * self.speed) * 1000)

    def real_seconds_until(self, emulated_ms: int) -> float:
        return max(0.0, (emulated_ms - self.now_ms()) / 1000 / self.speed)


async def _run(port: int, store: str, backfill_minutes: int, speed: float, seed: int) -> int:
    _prepare_store_folder(store)
    access_key = secrets.token_urlsafe(16)
    with demo_dynamodb(DEFAULT_TABLES, pick_port(0)) as aws:
        return await _run_with(port, store, backfill_minutes, speed, seed, access_key, aws)


async def _run_with(
    port: int, store: str, backfill_minutes: int, speed: float, seed: int, access_key: str, aws: Mapping[str, str]
) -> int:
    print(f"Starting the receiver ({_store_label(store)}) ...", flush=True)
    inventory = ("--inventory", inventory_regions(DEFAULT_TABLES), "--inventory-tag-labels", TAG_LABELS)
    child = ReceiverChild(pick_port(port), store, access_key, inventory, aws)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await _until_stopped(_serve_demo(child, access_key, backfill_minutes, speed, seed, store), stop)
    finally:
        print("\nStopping ...", flush=True)
        await loop.run_in_executor(None, child.stop)
    print("Stopped. Run `make demo` again to continue where you left off.", flush=True)
    return 0


async def _until_stopped(work: Coroutine[Any, Any, None], stop: asyncio.Event) -> None:
    """Run ``work`` until it ends (its error propagates) or ``stop`` is set."""
    task = asyncio.create_task(work)
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _serve_demo(
    child: ReceiverChild, access_key: str, backfill_minutes: int, speed: float, seed: int, store: str
) -> None:
    await child.wait_ready()
    base = f"http://127.0.0.1:{child.port}"
    await _inventory_polled(base)
    workload = Workload(seed=seed)
    clock = EmulatedClock(speed)
    config = EmulatorConfig(
        url=f"{base}/aws/firehose/metrics",
        access_key=access_key,
        gzip=True,
        buffer_bytes=1024 * 1024,
        buffer_interval_s=60,
        time_scale=1 / speed,
        retry=RetryPolicy(duration_s=300),
        error_output=_error_folder(store),
        stream_name="demo-firehose",
        metric_stream_name="demo-metric-stream",
        common_attributes=(("source", "receiver-demo"),),
    )
    now = clock.now_ms()
    next_minute = now - now % PERIOD_MS
    async with FirehoseEmulator(config) as stream:
        if backfill_minutes:
            print(
                f"Backfilling {_duration(backfill_minutes)} of an emulated DynamoDB metric stream "
                f"({len(workload.tables)} tables) through the Firehose protocol ...",
                flush=True,
            )
            first = next_minute - backfill_minutes * PERIOD_MS
            datapoints = 0
            for minute in workload.minutes(first, backfill_minutes):
                datapoints += len(minute)
                await stream.put_samples(minute)
                _check_alive(child)
            await stream.flush()
            _report_failures(stream)
            requests = len(stream.results)
            print(
                f"Sent {datapoints:,} datapoints in {requests} Firehose request{'s' if requests != 1 else ''}.",
                flush=True,
            )
            await _values_shown(base)
        _welcome(base)
        while True:
            emulated_send = next_minute + PERIOD_MS + int(STREAM_LAG_S * 1000)
            await asyncio.sleep(clock.real_seconds_until(emulated_send))
            _check_alive(child)
            samples = workload.minute(next_minute)
            sent_before = len(stream.results)
            await stream.put_samples(samples)
            await stream.flush()
            _report_failures(stream, since=sent_before)
            stamp = time.strftime("%H:%M", time.gmtime(next_minute / 1000))
            print(f"  {stamp} UTC: {len(samples)} datapoints streamed", flush=True)
            next_minute += PERIOD_MS


def _duration(minutes: int) -> str:
    if minutes % 60 == 0:
        hours = minutes // 60
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


async def _values_shown(base: str, timeout: float = 30.0) -> None:
    """Wait until the receiver has derived values from the backfill, so the dashboard shows them."""
    await _until(f"{base}/api/v1/entities", lambda answer: bool(answer.get("services")), timeout)


async def _inventory_polled(base: str, timeout: float = 30.0) -> None:
    """Wait until the receiver's inventory has polled the demo's tables once, so the minutes
    sent next are derived with their ceilings; past ``timeout`` the demo goes on without."""
    await _until(
        f"{base}/api/v1/tables", lambda answer: bool((answer.get("inventory") or {}).get("last_poll")), timeout
    )


async def _until(url: str, done: Callable[[dict[str, Any]], bool], timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = await loop.run_in_executor(None, _get_json, url)
        if answer is not None and done(answer):
            return
        await asyncio.sleep(0.2)


def _get_json(url: str) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            answer = json.loads(response.read())
    except (OSError, ValueError):
        return None
    return answer if isinstance(answer, dict) else None


def _check_alive(child: ReceiverChild) -> None:
    if child.proc.poll() is not None:
        raise child.failure(f"the receiver exited with code {child.proc.returncode}")


def _report_failures(stream: FirehoseEmulator, since: int = 0) -> None:
    for result in stream.results[since:]:
        if result.outcome != "delivered":
            where = f", saved to {result.error_object}" if result.error_object else ""
            print(f"  a delivery failed ({result.error_code}){where}", flush=True)


def _welcome(base: str) -> None:
    print(
        f"""
The receiver is running with an emulated DynamoDB metric stream.

  Dashboard:  {base}/
  API:        {base}/api/v1/entities
              {base}/api/v1/metrics

A new minute of metrics arrives every minute. Press Ctrl-C to stop.
""",
        flush=True,
    )


def _store_path(store: str) -> Path | None:
    return Path(store[len("sqlite:///") :]) if store.startswith("sqlite:///") else None


def _prepare_store_folder(store: str) -> None:
    path = _store_path(store)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)


def _store_label(store: str) -> str:
    path = _store_path(store)
    return f"SQLite at {path}" if path is not None else store


def _error_folder(store: str) -> str | None:
    """Undeliverable batches go next to the store, as Firehose would put them in S3."""
    path = _store_path(store)
    return str(path.parent / "demo-firehose-errors") if path is not None else None
