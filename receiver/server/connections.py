"""The server's connections: a header deadline, a limit on open connections, and logs of
what goes wrong below HTTP that neither flood nor leak.

aiohttp 3.x's server has no read deadline. Its keep-alive timeout closes a connection that
has no complete request some time after it opened or after its last answer; that is the
idle timeout here (``serve --idle-timeout``). ``Connection`` adds what it lacks:

- a header deadline: a request's headers must be complete ``read_timeout_s`` after the
  connection opened, or after the first byte of a later request on a kept-alive connection
  (a body's own deadline is receiver/firehose/body.py's stall timeout);
- a limit on open connections, so idle or slow clients cannot take every file descriptor:
  past it a new connection is answered 503 and closed at once;
- malformed requests answered with a JSON 400 and logged in one line without their raw
  bytes: aiohttp would log the offending header line, access key and all, with a traceback.

It leans on two attributes aiohttp's RequestHandler has had through 3.x, ``_waiter`` (set
while it waits for a request) and ``_request_count`` (requests parsed); the tests in
tests/receiver/test_server_limits.py fail should either change.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import time
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMethod, HttpProcessingError, InvalidHeader, LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from receiver.errors import HttpError, Kind

log = logging.getLogger("receiver.server.connections")


def raw_answer(error: HttpError) -> bytes:
    """``error.response()`` as the bytes of a whole HTTP/1.1 answer that closes the connection,
    for when there is no request to answer through aiohttp."""
    body = json.dumps({"error": error.message}).encode()
    head = [
        f"HTTP/1.1 {error.status} {HTTPStatus(error.status).phrase}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *(f"{name}: {value}" for name, value in error.headers.items()),
        "Connection: close",
    ]
    return "\r\n".join([*head, "", ""]).encode("ascii") + body


REFUSAL = raw_answer(HttpError(Kind.BUSY, "too many open connections, retry later"))
"""The whole answer to a connection past the limit, written before any request is read."""


class RateLimitedLog:
    """One log line per interval at most; the lines left out are counted in the next one
    (``suppressed=N``), or in a last line at ``close``."""

    def __init__(self, logger: logging.Logger, message: str, interval_s: float, level: int = logging.WARNING) -> None:
        self._logger = logger
        self._message = message
        self._interval_s = interval_s
        self._level = level
        self._quiet_until = float("-inf")
        self.suppressed = 0

    def __call__(self, **extra: Any) -> None:
        now = time.monotonic()
        if now < self._quiet_until:
            self.suppressed += 1
            return
        self._quiet_until = now + self._interval_s
        self._emit(extra)

    def close(self) -> None:
        """Log the count of lines left out since the last one, if any."""
        if self.suppressed:
            self._emit({})

    def _emit(self, extra: dict[str, Any]) -> None:
        if self.suppressed:
            extra = {**extra, "suppressed": self.suppressed}
            self.suppressed = 0
        self._logger.log(self._level, self._message, extra=extra)


class ConnectionLimit:
    """Counts the connections open on a site and refuses those past ``limit``."""

    def __init__(self, limit: int, log_interval_s: float) -> None:
        self.limit = limit
        self.open = 0
        self._refusals = RateLimitedLog(
            log, "refused a connection: at the connection limit (--max-connections)", log_interval_s
        )

    def admit(self) -> bool:
        if self.open >= self.limit:
            self._refusals(limit=self.limit)
            return False
        self.open += 1
        return True

    def release(self) -> None:
        self.open -= 1

    def close(self) -> None:
        self._refusals.close()


class Connection(RequestHandler):
    """aiohttp's HTTP/1.1 connection with a header deadline, the connection limit, and
    malformed requests answered in JSON without logging their bytes."""

    __slots__ = ("_header_deadline", "_limit", "_read_timeout_s", "_refused")

    def __init__(self, manager: web.Server, *, limit: ConnectionLimit, read_timeout_s: float, **options: Any) -> None:
        super().__init__(manager, **options)
        self._limit = limit
        self._read_timeout_s = read_timeout_s
        self._header_deadline: asyncio.TimerHandle | None = None
        self._refused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self._limit.admit():
            # Answered and closed before aiohttp sees the connection: no request task, and
            # the descriptor is free again as soon as the answer is written.
            self._refused = True
            transport.write(REFUSAL)  # type: ignore[attr-defined]
            transport.close()
            return
        super().connection_made(transport)
        self._start_header_deadline()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._refused:
            return
        self._limit.release()
        self._cancel_header_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        # A byte while waiting for a request starts one: its headers are now due. Bytes of
        # a body, or of a request already being handled, never start the clock.
        if data and self._header_deadline is None and self._waiting_for_request():
            self._start_header_deadline()
        parsed = self._request_count
        super().data_received(data)
        if self._request_count != parsed:
            self._cancel_header_deadline()

    def _waiting_for_request(self) -> bool:
        waiter = self._waiter
        return waiter is not None and not waiter.done()

    def _start_header_deadline(self) -> None:
        self._cancel_header_deadline()
        self._header_deadline = self._loop.call_later(self._read_timeout_s, self._headers_too_slow)

    def _cancel_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        log.debug(
            "closed a connection whose request headers took longer than the read timeout",
            extra={"peer": _peer(self.peername), "read_timeout_s": self._read_timeout_s},
        )
        # As aiohttp's own keep-alive timeout does with a connection waiting for a request.
        self.force_close()

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        # 400 with a parser error: the client sent something that is not HTTP. Anything
        # else (a handler's bug: 500) keeps aiohttp's handling and its traceback.
        if status != 400 or not isinstance(exc, HttpProcessingError):
            return super().handle_error(request, status, exc, message)
        reason = safe_reason(exc)
        # Like aiohttp: a bad method on a connection's first request is usually TLS or a
        # scanner on the plain-HTTP port, not worth a warning.
        quiet = self._request_count == 1 and isinstance(exc, BadHttpMethod)
        log.log(
            logging.DEBUG if quiet else logging.WARNING,
            "malformed HTTP request",
            extra={"peer": request.remote or "", "reason": reason},
        )
        response = HttpError(Kind.BAD_REQUEST, f"malformed HTTP request: {reason}").response()
        response.force_close()
        return response


_REASONS: tuple[tuple[type[HttpProcessingError], str], ...] = (
    (LineTooLong, "a request line or header is too long"),
    (InvalidHeader, "an invalid header"),
    (BadHttpMethod, "an invalid method"),
)


def safe_reason(exc: HttpProcessingError) -> str:
    """What was wrong with a request, without the request's own bytes.

    aiohttp's parser errors quote the offending line (an access key header included). The
    C parser's have the form ``<llhttp's fixed reason>:\\n\\n  <raw bytes>\\n  ^``: its first
    line is kept. Other errors are told by their type alone.
    """
    text = str(exc.message)
    first, newline, rest = text.partition("\n")
    if newline and rest.startswith("\n  ") and "'" not in first and '"' not in first:
        return first.rstrip(":").strip() or "malformed request"
    for kind, reason in _REASONS:
        if isinstance(exc, kind):
            return reason
    return "malformed request"


def _peer(peername: object) -> str:
    """The client's address, as ``request.remote`` gives it."""
    if isinstance(peername, tuple) and peername:
        return str(peername[0])
    return str(peername or "")


_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})

ExceptionHandler = Callable[[asyncio.AbstractEventLoop, dict[str, Any]], object]


class AcceptErrors:
    """The event loop's exception handler while serving: running out of file descriptors
    (or memory) in accept() is logged once per interval with a count, not as a traceback
    per attempt.

    asyncio reports such an accept() error through the loop's exception handler, once for
    every connection waiting in the backlog, and tries again a second later: with the
    descriptors gone that is a traceback hundreds of times a second. Anything else goes on to
    the handler that was there before.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, interval_s: float) -> None:
        self._loop = loop
        self._previous: ExceptionHandler | None = loop.get_exception_handler()
        self._log = RateLimitedLog(
            log, "cannot accept connections, out of system resources; retrying every second", interval_s, logging.ERROR
        )

    def install(self) -> None:
        self._loop.set_exception_handler(self)

    def close(self) -> None:
        """Put the previous handler back and log what was left out."""
        self._loop.set_exception_handler(self._previous)
        self._log.close()

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, OSError) and exc.errno in _OUT_OF_RESOURCES:
            self._log(error=exc.strerror or str(exc))
            return
        if self._previous is not None:
            self._previous(loop, context)
        else:
            loop.default_exception_handler(context)
