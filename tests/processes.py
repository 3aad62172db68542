"""Running `python -m receiver` as a real process in tests: `serve` on a free loopback port
until the test ends, or any command run to its end."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from fuzzing.memory import child_pids
from receiver.server.app import INGEST_PATH
from tests.builders import Delivery
from tests.certs import TlsFiles

ROOT = Path(__file__).resolve().parent.parent
_LISTENING = re.compile(r"listening.*?(?P<url>https?://[\d.]+:(?P<port>\d+))")


CLI_ACCESS_KEY = "cli-test-key"


def run_cli(
    *args: str, env: Mapping[str, str | None] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """`python -m receiver ARGS` run to its end, its output captured as text.

    The command sees none of this process's RECEIVER_ settings but an access key (so that
    `serve` gets as far as the option a test gets wrong), then ``env`` (None removes a name).
    """
    merged = {name: value for name, value in os.environ.items() if not name.startswith("RECEIVER_")}
    merged |= {"PYTHONUNBUFFERED": "1", "RECEIVER_ACCESS_KEYS": CLI_ACCESS_KEY, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "receiver", *args],
        cwd=ROOT,
        env={name: value for name, value in merged.items() if value is not None},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def one_sentence_error(result: subprocess.CompletedProcess[str]) -> str:
    """The one line a failed command wrote: an error a user can cause is one sentence."""
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


class ReceiverProcess:
    """`python -m receiver serve ARGS` on 127.0.0.1 at a free port (a later ``--port`` in ``args``
    takes a given one), HTTPS with ``tls``; stderr is collected by a thread so the pipe never
    fills. ``wait_listening`` waits for its "listening" line; leaving the block kills it."""

    def __init__(self, *args: str, env: dict[str, str] | None = None, tls: TlsFiles | None = None) -> None:
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        if tls is not None:
            args = (*args, "--tls-cert", str(tls.server_cert), "--tls-key", str(tls.server_key))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "receiver", "serve", "--host", "127.0.0.1", "--port", "0", *args],
            cwd=ROOT,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._listening = threading.Event()
        self.url = ""
        self.port = 0
        threading.Thread(target=self._collect, daemon=True).start()

    def _collect(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))
            match = _LISTENING.search(line)
            if match and not self._listening.is_set():
                self.url, self.port = match["url"], int(match["port"])
                self._listening.set()

    def wait_listening(self, timeout: float = 30) -> ReceiverProcess:
        deadline = time.monotonic() + timeout
        while not self._listening.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()  # never leave a half-started receiver behind
                raise RuntimeError("receiver did not start:\n" + "\n".join(self.lines))
        return self

    def terminate(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = 60) -> int:
        code = self.proc.wait(timeout)
        time.sleep(0.05)  # let the collector thread take the last lines
        return code

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    def __enter__(self) -> ReceiverProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def post(url: str, delivery: Delivery, context: ssl.SSLContext | None = None) -> tuple[int, dict]:
    """POSTs ``delivery`` to the Firehose endpoint of the receiver at ``url``: status and JSON answer."""
    request = urllib.request.Request(url + INGEST_PATH, data=delivery.body, headers=delivery.headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30, context=context) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def free_port() -> int:
    """A loopback port nothing listens on (at the moment of asking)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def child_processes(pid: int) -> dict[int, str]:
    """The processes whose parent is ``pid``, with their command lines."""
    found = {}
    for child in child_pids(pid):
        try:
            found[child] = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # it ended meanwhile
    return found


def is_running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
