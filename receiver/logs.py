"""Logging set-up: plain lines by default, one JSON object per line with RECEIVER_LOG_FORMAT=json.

Logged values come from clients (table names, header values), so neither format lets a
value forge or lose a line: text lines escape control characters, JSON lines escape what
orjson cannot encode.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time

import orjson

# Attributes every LogRecord has; anything else was passed with ``extra=`` and is a field.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}

_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
"""What must not reach a text log as is: C0 and C1 controls (newline, NUL, ESC, ...), the
Unicode line and paragraph separators, and lone surrogates (aiohttp decodes header bytes
that are not UTF-8 with surrogateescape, and they cannot be written as UTF-8)."""
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_SURROGATES = re.compile("[\ud800-\udfff]")


def _escape_one(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if char in _NAMED:
        return _NAMED[char]
    if 0xDC80 <= code <= 0xDCFF:
        return f"\\x{code - 0xDC00:02x}"  # the undecodable byte surrogateescape stands for
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def escape(text: str) -> str:
    """``text`` on one line, control characters written as Python-style escapes."""
    return _UNSAFE.sub(_escape_one, text)


def _without_surrogates(text: str) -> str:
    return _SURROGATES.sub(_escape_one, text)


_INT64 = range(-(2**63), 2**64)
"""The integers orjson encodes."""


def _encodable(value: object) -> object:
    """``value`` with everything orjson refuses made into text: lone surrogates escaped,
    integers past 64 bits and unknown objects as strings."""
    if isinstance(value, str):
        return _without_surrogates(value)
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):
        return value if value in _INT64 else str(value)
    if isinstance(value, dict):
        return {_without_surrogates(str(k)): _encodable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_encodable(v) for v in value]
    return _without_surrogates(str(value))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        try:
            return orjson.dumps(entry, default=str).decode()
        except TypeError:  # orjson.JSONEncodeError: a lone surrogate, a huge integer, ...
            pass
        # The slow path only for a line that needs it; the line is never dropped.
        try:
            return orjson.dumps(_encodable(entry)).decode()
        except TypeError:
            return json.dumps({k: repr(v) for k, v in entry.items()}, ensure_ascii=True)


class PlainFormatter(logging.Formatter):
    """``time level logger: message key=value ...`` with the ``extra=`` fields appended.

    The message and the fields are escaped onto one line; a traceback follows on its own
    lines, each indented, so only a record's first line ever starts with a time.
    """

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        record.message = escape(record.getMessage())
        record.asctime = self.formatTime(record, self.datefmt)
        line = self.formatMessage(record)
        fields = [escape(f"{k}={v}") for k, v in vars(record).items() if k not in _STANDARD]
        if fields:
            line = f"{line} {' '.join(fields)}"
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        stack = record.stack_info and self.formatStack(record.stack_info)
        details = [text for text in (record.exc_text, stack) if text]
        for text in details:
            line += "\n" + "\n".join("    " + escape(part) for part in text.splitlines())
        return line


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
