"""Debian's nginx as the TLS gateway in tests, configured from deploy/nginx's template.

The test configuration is the users' template with its placeholders filled in, wrapped in a
minimal main configuration whose pid, logs and temporary files live in a temporary folder:
so the tests exercise exactly what users deploy.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from tests.certs import TlsFiles
from tests.processes import ROOT, free_port

TEMPLATE = ROOT / "deploy" / "nginx" / "firehose-receiver.conf.template"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
_PLACEHOLDER = re.compile(r"\$\{(\w+)\}")


def render_template(text: str, values: Mapping[str, str]) -> str:
    """``text`` with each ``${NAME}`` replaced; KeyError naming any placeholder left unfilled."""
    for name, value in values.items():
        text = text.replace("${" + name + "}", value)
    config_lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    missing = sorted({m for line in config_lines for m in _PLACEHOLDER.findall(line)})
    if missing:
        raise KeyError(f"placeholders without a value: {', '.join(missing)}")
    return text


class NginxGateway:
    """nginx serving TLS on a free loopback port and proxying the ingest path to ``receiver``."""

    def __init__(
        self,
        folder: Path,
        receiver: str,
        tls: TlsFiles,
        edit: Callable[[str], str] | None = None,
    ) -> None:
        """``receiver`` is host:port; ``edit`` may change the rendered server block (tests only)."""
        self.folder = folder
        self.receiver = receiver
        self.tls = tls
        self.edit = edit
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/aws/firehose/metrics"

    def start(self, attempts: int = 3) -> NginxGateway:
        # The free port is found before nginx binds it; another process may take it first.
        for _ in range(attempts):
            self.port = free_port()
            self._write_config()
            self.proc = subprocess.Popen(
                [
                    NGINX,
                    "-p",
                    str(self.folder),
                    "-c",
                    str(self.folder / "nginx.conf"),
                    "-e",
                    str(self.folder / "error.log"),
                    "-g",
                    "daemon off;",
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            if self._wait_listening():
                return self
        raise RuntimeError(f"nginx did not start:\n{self.error_log}")

    def _write_config(self) -> None:
        server = render_template(
            TEMPLATE.read_text(),
            {
                "LISTEN": f"127.0.0.1:{self.port}",
                "SERVER_NAME": "localhost",
                "TLS_CERTIFICATE": str(self.tls.server_cert),
                "TLS_CERTIFICATE_KEY": str(self.tls.server_key),
                "RECEIVER": self.receiver,
            },
        )
        if self.edit is not None:
            server = self.edit(server)
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "firehose-receiver.conf").write_text(server)
        tmp = self.folder
        # Running as root, nginx would start its workers as nobody, who cannot enter the
        # test's private temporary folder; keep them as the user running the tests.
        user = "user root;" if os.geteuid() == 0 else ""
        (self.folder / "nginx.conf").write_text(f"""
{user}
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    include {tmp}/firehose-receiver.conf;
}}
""")

    def _wait_listening(self, timeout: float = 15.0) -> bool:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return True
            except OSError:
                time.sleep(0.05)
        self.stop()
        return False

    @property
    def error_log(self) -> str:
        path = self.folder / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    @property
    def access_log(self) -> str:
        path = self.folder / "access.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def __enter__(self) -> NginxGateway:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
