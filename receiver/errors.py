"""The HTTP side's failures: one exception, one table of statuses.

Every way a request can fail is a ``Kind``; ``STATUS`` is the one table of their HTTP
statuses, and every 503 says ``Retry-After``. A stage raises its own exception (the
envelope's EnvelopeError, the body's BodyTooLarge, the store's StoreError ...);
``http_error`` says which kind each one is, where an answer is written. The message is the
answer's text: the Firehose endpoint sends it as ``errorMessage`` in Firehose's envelope,
everything else as ``{"error": message}`` (``HttpError.response``).

A leaf: the stages' exceptions are imported inside ``http_error``, when a failure is
classified, so any stage can import this module without importing the others.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType

from aiohttp import web


class Kind(enum.Enum):
    """What went wrong; its value names it in logs and telemetry (``body``, ``envelope``)."""

    UNAUTHORIZED = "unauthorized"
    """A Firehose delivery without a configured access key."""
    ENVELOPE = "envelope"
    """The Firehose envelope is malformed: headers, JSON, base64, request id, limits."""
    BODY = "body"
    """A body that cannot be read: too large, not what its Content-Encoding says, cut short."""
    BAD_REQUEST = "bad_request"
    """Not well-formed HTTP (the connection's parser refused it)."""
    BAD_QUERY = "bad_query"
    """A query parameter of the read side is missing or wrong."""
    NOT_FOUND = "not_found"
    """No such path, metric or file."""
    METHOD_NOT_ALLOWED = "method_not_allowed"
    """The path exists, the method does not (the answer's Allow lists those that do)."""
    BUSY = "busy"
    """Over the in-flight byte budget, or at the connection limit: retry later."""
    STORE_UNAVAILABLE = "store_unavailable"
    """The store failed or does not answer: retry later."""
    INTERNAL = "internal"
    """A bug: the receiver failed unexpectedly (Firehose retries a 500)."""


STATUS: Mapping[Kind, int] = MappingProxyType({
    Kind.UNAUTHORIZED: 401,
    Kind.ENVELOPE: 400,
    Kind.BODY: 400,
    Kind.BAD_REQUEST: 400,
    Kind.BAD_QUERY: 400,
    Kind.NOT_FOUND: 404,
    Kind.METHOD_NOT_ALLOWED: 405,
    Kind.BUSY: 503,
    Kind.STORE_UNAVAILABLE: 503,
    Kind.INTERNAL: 500,
})  # fmt: skip
"""The HTTP status of each kind. Never 413: Firehose drops such a batch without backing it up."""

RETRY_AFTER_S = 5
"""Every 503 says when to retry. Firehose ignores it and backs off by itself; other clients
may use it."""


class HttpError(Exception):
    """A request's failure: its kind (hence its status) and a message naming what is wrong."""

    def __init__(self, kind: Kind, message: str, *, allow: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.allow = allow
        """The Allow header of a METHOD_NOT_ALLOWED."""

    @property
    def status(self) -> int:
        return STATUS[self.kind]

    @property
    def headers(self) -> dict[str, str]:
        """Retry-After on a 503, Allow when known."""
        headers = {"Retry-After": str(RETRY_AFTER_S)} if self.status == 503 else {}
        if self.allow:
            headers["Allow"] = self.allow
        return headers

    def response(self, **fields: object) -> web.Response:
        """The JSON answer ``{**fields, "error": message}`` with the kind's status and headers."""
        return web.json_response({**fields, "error": self.message}, status=self.status, headers=self.headers)


def http_error(exc: BaseException) -> HttpError | None:
    """The failure an exception that reached the HTTP side stands for; None for one that is
    no known failure (a bug, or an aiohttp answer that is not an error)."""
    # Imported here, not at the top, to keep this module a leaf (see the docstring).
    from receiver.firehose.body import BadEncoding, BodyTooLarge, OverBudget
    from receiver.firehose.envelope import EnvelopeError
    from receiver.store.base import StoreError

    match exc:
        case HttpError():
            return exc
        case EnvelopeError():
            return HttpError(Kind.ENVELOPE, str(exc))
        case BodyTooLarge() | BadEncoding():
            return HttpError(Kind.BODY, str(exc))
        case OverBudget():
            return HttpError(Kind.BUSY, "the receiver is busy with other deliveries, retry later")
        case StoreError():
            return HttpError(Kind.STORE_UNAVAILABLE, f"the store is unavailable, retry later ({exc})")
        # aiohttp's own refusals (its router's), in JSON like the rest.
        case web.HTTPNotFound():
            return HttpError(Kind.NOT_FOUND, exc.reason)
        case web.HTTPMethodNotAllowed():
            return HttpError(Kind.METHOD_NOT_ALLOWED, exc.reason, allow=exc.headers.get("Allow"))
        case web.HTTPBadRequest():
            return HttpError(Kind.BAD_REQUEST, exc.reason)
    return None
