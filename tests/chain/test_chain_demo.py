"""`python -m receiver demo`: backfills, streams, and stops everything it started on Ctrl-C or SIGTERM."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import orjson
import pytest

from tests.processes import ROOT

pytestmark = pytest.mark.slow
BACKFILL_MINUTES = 5


class Demo:
    """The demo as a subprocess, its output collected line by line."""

    def __init__(self, db: Path) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-u",
                "-m",
                "receiver",
                "demo",
                "--port",
                "0",
                "--store",
                f"sqlite:///{db}",
                "--backfill-minutes",
                str(BACKFILL_MINUTES),
                "--speed",
                "600",
            ],  # a minute every 0.1 s
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        threading.Thread(target=self._collect, daemon=True).start()

    def _collect(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, self.output)
            if match:
                return match
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"no {pattern!r} in the demo's output:\n{self.output}")


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return orjson.loads(response.read())


def processes_mentioning(text: str) -> list[int]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text.encode() in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except OSError:
            continue  # the process ended while we looked
    return found


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_the_demo_streams_into_the_receiver_and_stops_everything(tmp_path, stop_signal):
    db = tmp_path / "demo.db"
    demo = Demo(db)
    try:
        base = demo.wait_for(r"Dashboard:\s+(http://127\.0\.0\.1:\d+)/")[1]
        assert f"{base}/api/v1/entities" in demo.output
        services = get_json(f"{base}/api/v1/entities")["services"]
        assert services[0]["name"] == "aws-dynamodb::123456789012"
        assert {"GameScores", "Orders", "Sessions", "AuditLog"} <= set(services[0]["endpoints"])

        # Streamed minutes arrive after the backfilled ones (the clock runs 600 times faster).
        demo.wait_for(r"datapoints streamed(.|\n)*datapoints streamed(.|\n)*datapoints streamed")
        now = int(time.time())
        query = (
            f"{base}/api/v1/query?metric=aws_dynamodb_consumed_read_capacity_units"
            f"&service=aws-dynamodb::123456789012&start={now - 3600}&end={now + 86400}"
        )
        deadline = time.monotonic() + 30
        while len(get_json(query)["points"]) < BACKFILL_MINUTES + 2:
            assert time.monotonic() < deadline, get_json(query)
            time.sleep(0.2)
        port = int(base.rsplit(":", 1)[1])

        # The demo's own DynamoDB API (moto) holds the workload's tables: the inventory
        # polled them before the backfill, so those minutes have their ceilings.
        inventory = get_json(f"{base}/api/v1/tables?service=aws-dynamodb::123456789012")
        described = {(t["name"], t["region"]): t for t in inventory["tables"]}
        assert {("GameScores", "us-east-1"), ("Sessions", "eu-west-1"), ("Inventory", "us-west-2")} <= set(described)
        games = described[("GameScores", "us-east-1")]
        assert (games["billing_mode"], games["provisioned"], games["tags"]["team"]) == (
            "PROVISIONED", {"read": 900, "write": 300}, "games"
        )  # fmt: skip
        ceiling = get_json(query.replace("aws_dynamodb_consumed_read_capacity_units", "aws_dynamodb_endpoint_read_ceiling")
                           + "&endpoint=GameScores")  # fmt: skip
        assert ceiling["points"] and {value for _, value in ceiling["points"]} == {900.0}

        demo.proc.send_signal(stop_signal)
        assert demo.proc.wait(30) == 0, demo.output
    finally:
        if demo.proc.poll() is None:
            demo.proc.kill()
    assert "Stopped." in demo.output
    assert processes_mentioning(str(db)) == []  # the receiver it started is gone too
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    assert "Traceback" not in demo.output
