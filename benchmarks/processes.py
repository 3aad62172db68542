"""The processes the benchmarks start, and what /proc says about them.

A receiver is ``python -m receiver serve`` in its own process, on a free loopback port; its
rules worker is a child process of its own. Its cost is the CPU time of the whole tree, read
from ``/proc/<pid>/stat``, and its memory the peak resident size (``VmHWM``) of each member.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DYNALITE = ROOT / "node_modules" / ".bin" / "dynalite"
_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
_LISTENING = re.compile(r"listening.*?https?://[\d.]+:(?P<port>\d+)")
_LOG_TAIL = 20
"""Lines of a process's log quoted when it fails."""


def _stat_fields(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (which may hold spaces)."""
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                # After the name: state, then the parent's pid.
                if int(_stat_fields(int(entry))[1]) == pid:
                    found.append(int(entry))
            except (OSError, IndexError, ValueError):
                continue  # it ended meanwhile
    return found


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``: children, their children, and so on."""
    found: list[int] = []
    frontier = [pid]
    while frontier:
        below = [child for parent in frontier for child in children(parent)]
        found += below
        frontier = below
    return found


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of ``pid`` and of every process below it.

    Each process counts its own time and that of its children it has waited for
    (cutime, cstime), so a worker that ended and was reaped is still counted, once.
    """
    ticks = 0
    for member in (pid, *descendants(pid)):
        try:
            fields = _stat_fields(member)
        except OSError:
            continue  # it ended between the listing and the reading
        # utime, stime, cutime, cstime: fields 14-17 of stat(5), 12-15 after the name.
        ticks += sum(int(value) for value in fields[11:15])
    return ticks / _TICKS_PER_S


def minor_faults(pid: int) -> int:
    """Minor page faults of ``pid`` and of the children it has waited for (stat(5) fields 10
    and 11): pages the kernel had to map in, most of them memory freshly allocated."""
    fields = _stat_fields(pid)
    return int(fields[7]) + int(fields[8])


def peak_rss_bytes(pid: int | str = "self") -> int:
    """VmHWM: the most resident memory ``pid`` (this process by default) has had."""
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"/proc/{pid}/status has no VmHWM line")
    return int(match[1]) * 1024


def command_line(pid: int) -> str:
    with suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    return ""


def free_port() -> int:
    """A loopback port nothing listens on at the moment of asking."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Serve:
    """``python -m receiver serve`` on 127.0.0.1 with ``store``; its log is kept by a thread
    so the pipe never fills, and quoted when the process fails."""

    def __init__(
        self, name: str, store: str, *options: str, env: Mapping[str, str] | None = None, root: Path = ROOT
    ) -> None:
        self.name = name
        # The receiver sees none of this process's RECEIVER_ or AWS_ settings (it talks to no
        # real AWS), and imports the receiver of this checkout (or of ``root``), not whichever
        # one an editable install points at.
        clean = {key: value for key, value in os.environ.items() if not key.startswith(("RECEIVER_", "AWS_"))}
        command = [sys.executable, "-m", "receiver", "serve", "--host", "127.0.0.1", "--port", "0"]
        self.proc = subprocess.Popen(
            [*command, "--store", store, "--allow-unauthenticated", *options],
            cwd=root,
            env={**clean, "PYTHONPATH": str(root), "PYTHONUNBUFFERED": "1", **(env or {})},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self.port = 0
        self._listening = threading.Event()
        threading.Thread(target=self._collect, daemon=True).start()

    def _collect(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))
            del self.lines[:-200]  # a run logs a line per request: keep the end only
            match = _LISTENING.search(line)
            if match and not self._listening.is_set():
                self.port = int(match["port"])
                self._listening.set()

    def wait_listening(self, timeout_s: float = 60) -> Serve:
        deadline = time.monotonic() + timeout_s
        while not self._listening.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"receiver {self.name} did not start:\n{self.log_tail()}")
        return self

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def check_alive(self) -> None:
        """Raise, quoting the log, if the receiver has ended."""
        code = self.proc.poll()
        if code is not None:
            raise RuntimeError(f"receiver {self.name} ended with exit code {code}:\n{self.log_tail()}")

    def log_tail(self) -> str:
        time.sleep(0.1)  # let the collector take the last lines
        return "\n".join(self.lines[-_LOG_TAIL:])

    def worker_pids(self) -> list[int]:
        """The rules worker(s): children started by multiprocessing's spawn."""
        return [pid for pid in children(self.pid) if "spawn_main" in command_line(pid)]

    def __enter__(self) -> Serve:
        return self.wait_listening()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not ended within 30 s."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


class Dynalite:
    """A dynalite server (an independent DynamoDB implementation, from npm) in memory on a
    free loopback port."""

    def __init__(self) -> None:
        if not DYNALITE.exists():
            raise RuntimeError(f"dynalite is not installed at {DYNALITE}; run make setup (npm ci)")
        self.port = free_port()
        self.proc = subprocess.Popen(
            [str(DYNALITE), "--host", "127.0.0.1", "--port", str(self.port), "--createTableMs", "10"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"dynalite did not start on port {self.port}") from None
                time.sleep(0.05)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def store_url(self, table: str) -> str:
        return f"dynamodb://{table}?region=us-east-1&endpoint_url={self.endpoint}"

    def check_alive(self) -> None:
        code = self.proc.poll()
        if code is not None:
            raise RuntimeError(f"dynalite ended with exit code {code}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


DYNALITE_ENV = {"AWS_ACCESS_KEY_ID": "dynalite", "AWS_SECRET_ACCESS_KEY": "dynalite"}
"""dynalite checks only that credentials are there."""
