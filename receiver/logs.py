"""Logging set-up: plain lines by default, one JSON object per line with RECEIVER_LOG_FORMAT=json."""

from __future__ import annotations

import logging
import os
import sys
import time

import orjson

# Attributes every LogRecord has; anything else was passed with ``extra=`` and is a field.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class PlainFormatter(logging.Formatter):
    """``time level logger: message key=value ...`` with the ``extra=`` fields appended."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = [f"{k}={v}" for k, v in vars(record).items() if k not in _STANDARD]
        return f"{line} {' '.join(fields)}" if fields else line


def configure(level: str = "INFO", fmt: str | None = None) -> None:
    """Send the receiver's logs to stderr in the chosen format."""
    fmt = (fmt or os.environ.get("RECEIVER_LOG_FORMAT") or "text").lower()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else PlainFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiohttp's access log would repeat our own per-request line.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
