"""The receiver's image built and run with buildah (chroot isolation): no container engine needed.

A container here is buildah's working container; each command runs in it with
``buildah run --isolation chroot`` on the host's network, as the image's user.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent.parent
IMAGE = os.environ.get("IMAGE", "localhost/dynamodb-metric-stream-receiver:dev")
_LISTENING = re.compile(r"listening.*?url=(?P<url>http://[\d.]+:(?P<port>\d+))")


def build_image() -> None:
    """image/build.sh: the base when missing, then the receiver image (cached layers)."""
    result = subprocess.run(
        [str(ROOT / "image" / "build.sh")],
        cwd=ROOT,
        env={**os.environ, "IMAGE": IMAGE},
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if result.returncode != 0:
        raise RuntimeError(f"image/build.sh failed ({result.returncode}):\n{result.stderr}")


def image_config(image: str = IMAGE) -> dict[str, Any]:
    """The Docker-format config of an image in buildah's storage (User, Entrypoint, Healthcheck ...)."""
    result = subprocess.run(
        ["buildah", "inspect", "--type", "image", image], capture_output=True, text=True, check=True, timeout=60
    )
    return json.loads(result.stdout)["Docker"]["config"]


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def _argv(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
    except OSError:
        return []


class Container:
    """A working container from the image; removed on exit."""

    def __init__(self, image: str = IMAGE) -> None:
        self.name = subprocess.run(
            ["buildah", "from", "--pull=never", image], capture_output=True, text=True, check=True, timeout=120
        ).stdout.strip()

    def command(self, argv: list[str], env: dict[str, str], mounts: tuple[str, ...] = ()) -> list[str]:
        options = ["--isolation", "chroot", "--network", "host"]
        options += [f"--mount={mount}" for mount in mounts]
        options += [f"--env={key}={value}" for key, value in env.items()]
        return ["buildah", "run", *options, self.name, "--", *argv]

    def run(self, argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.command(argv, env), capture_output=True, text=True, timeout=120)

    def remove(self) -> None:
        subprocess.run(["buildah", "rm", self.name], capture_output=True, timeout=120)

    def __enter__(self) -> Container:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


class ContainerReceiver:
    """The image's entrypoint running in a container: its log, its port, its process.

    SIGTERM goes to the receiver process itself, as ECS sends it to the container's PID 1:
    signalling `buildah run` would make buildah kill the process instead of forwarding.
    """

    def __init__(self, container: Container, entrypoint: list[str], env: dict[str, str]) -> None:
        # The test's SQLite store goes on a tmpfs: nothing written lands in the container's layer.
        self.proc = subprocess.Popen(
            container.command(entrypoint, env, mounts=("type=tmpfs,destination=/tmp",)),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self.url = ""
        self._listening = threading.Event()
        threading.Thread(target=self._collect, daemon=True).start()

    def _collect(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            match = _LISTENING.search(line)
            if match and not self._listening.is_set():
                self.url = match["url"]
                self._listening.set()

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    def wait_listening(self, timeout: float = 120) -> ContainerReceiver:
        deadline = time.monotonic() + timeout
        while not self._listening.wait(0.1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the receiver in the image did not start:\n" + self.log)
        return self

    def receiver_pid(self) -> int:
        """The entrypoint's process: below buildah's chroot helpers, the one running the receiver."""
        pending = [self.proc.pid]
        while pending:
            pid = pending.pop()
            argv = _argv(pid)
            if argv[1:3] == ["-m", "receiver"] and not Path(argv[0]).name.startswith("buildah"):
                return pid
            pending += _children(pid)
        raise RuntimeError("no receiver process under buildah run:\n" + self.log)

    def terminate(self) -> None:
        os.kill(self.receiver_pid(), signal.SIGTERM)

    def wait(self, timeout: float = 90) -> int:
        code = self.proc.wait(timeout)
        time.sleep(0.1)  # let the collector take the last lines
        return code

    def stop(self) -> None:
        """Kill what is still running (after a failed test); the receiver first, so none is orphaned."""
        if self.proc.poll() is None:
            try:
                os.kill(self.receiver_pid(), signal.SIGKILL)
            except (RuntimeError, ProcessLookupError):
                self.proc.kill()
            self.proc.wait(30)
