"""One HTTP delivery as Amazon Data Firehose makes it: the request on the wire, one attempt, and
how Firehose judges the answer.

It follows AWS's "HTTP endpoint delivery request and response specifications": a request
carries ``X-Amz-Firehose-Request-Id``, ``-Access-Key``, ``-Source-Arn``, ``-Protocol-Version:
1.0`` and ``-Common-Attributes``, its body maybe gzipped; only a 200 whose body is JSON
(``Content-Type: application/json``, not content-encoded, under 1 MiB) with the request's
``requestId`` and a numeric ``timestamp`` is a success. The emulator (emulator.py) retries
and buffers around it; ``probe`` judges an endpoint's answers with it.
"""

from __future__ import annotations

import base64
import dataclasses
import gzip
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson
from aiohttp.abc import AbstractStreamWriter
from aiohttp.payload import Payload

from receiver.firehose import envelope
from receiver.model import Pairs

MIB = 1024 * 1024
RESPONSE_TIMEOUT_S = 180.0
"""Firehose waits 3 minutes for an answer."""
MAX_RESPONSE_BYTES = MIB
"""An answer must be smaller than 1 MiB (Firehose's HttpEndpoint.ResponseTooLarge)."""
_BODY_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class Attempt:
    """How one HTTP attempt ended, judged as Firehose judges it."""

    ok: bool
    status: int | None = None
    error_code: str | None = None
    """Firehose's error code (``HttpEndpoint.DestinationException`` ...) when not ok."""
    error_message: str | None = None
    permanent: bool = False
    """True for 413: Firehose does not retry and does not back the batch up."""
    seconds: float = 0.0
    reason: str = ""
    """What went wrong, in a few words (for people; ``error_message`` is Firehose's text)."""
    answer: bytes = b""
    """The start of the answer's body."""


def judge_answer(request_id: str, status: int, headers: Mapping[str, str], body: bytes) -> Attempt:
    """Whether an answer is a successful delivery, by Firehose's rules."""
    raw = _printable(body)
    answer = body[:1024]
    if status == 200:
        problem = _answer_problem(request_id, headers, body)
        if problem is None:
            return Attempt(True, status, answer=answer)
        return Attempt(
            False,
            status,
            "HttpEndpoint.InvalidResponseFromDestination",
            f"The response received from the endpoint is invalid: {problem}. Raw response received: {status} {raw}",
            reason=problem,
            answer=answer,
        )
    return Attempt(
        False,
        status,
        "HttpEndpoint.DestinationException",
        f"The following response was received from the endpoint destination. {status}: {raw}",
        permanent=status == 413,
        reason=_error_message(body) or raw,
        answer=answer,
    )


def _error_message(body: bytes) -> str | None:
    """The ``errorMessage`` of a JSON answer, if it has one."""
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    message = answer.get("errorMessage") if isinstance(answer, dict) else None
    return message if isinstance(message, str) else None


def _answer_problem(request_id: str, headers: Mapping[str, str], body: bytes) -> str | None:
    content_type = headers.get("Content-Type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        return "the Content-Type is not application/json"
    if headers.get("Content-Encoding"):
        return "the response is content-encoded"
    if len(body) >= MAX_RESPONSE_BYTES:
        return "the response is 1 MiB or larger"
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "the body is not valid JSON"
    if not isinstance(answer, dict):
        return "the body is not a JSON object"
    if "requestId" not in answer:
        return "the requestId is missing"
    if answer["requestId"] != request_id:
        return "the requestId does not match the request's"
    timestamp = answer.get("timestamp")
    if isinstance(timestamp, bool) or not isinstance(timestamp, (int, float)):
        return "the timestamp is missing or not a number"
    return None


def _printable(body: bytes, limit: int = 512) -> str:
    text = body[:limit].decode("utf-8", "replace")
    return text + ("..." if len(body) > limit else "")


@dataclass(frozen=True, slots=True)
class Request:
    """One Firehose request as sent on the wire: headers and (maybe gzipped) body."""

    request_id: str
    headers: dict[str, str]
    body: bytes


def build_request(
    records: Sequence[bytes],
    *,
    request_id: str | None = None,
    access_key: str | None = None,
    source_arn: str = "",
    common_attributes: Pairs = (),
    compress: bool = False,
    timestamp_ms: int | None = None,
    user_agent: str = "receiver-firehose-emulator",
) -> Request:
    """The request Firehose sends for ``records``; ``user_agent`` tells it apart in logs."""
    request_id = request_id or str(uuid.uuid4())
    payload = {
        "requestId": request_id,
        "timestamp": timestamp_ms if timestamp_ms is not None else int(time.time() * 1000),
        "records": [{"data": base64.b64encode(record).decode("ascii")} for record in records],
    }
    body = orjson.dumps(payload)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": user_agent,
        envelope.PROTOCOL_VERSION_HEADER: "1.0",
        envelope.REQUEST_ID_HEADER: request_id,
    }
    if source_arn:
        headers[envelope.SOURCE_ARN_HEADER] = source_arn
    if access_key is not None:
        headers[envelope.ACCESS_KEY_HEADER] = access_key
    if common_attributes:
        headers[envelope.COMMON_ATTRIBUTES_HEADER] = orjson.dumps(
            {"commonAttributes": dict(common_attributes)}
        ).decode()
    if compress:
        body = gzip.compress(body, compresslevel=6)
        headers["Content-Encoding"] = "gzip"
    return Request(request_id, headers, body)


ProgressHook = Callable[[str, int, int, int], Awaitable[None]]
"""(request id, attempt number, bytes of the body sent so far, body size)."""


class _ProgressBody(Payload):
    """A body sent in chunks with a known length, reporting progress after each chunk."""

    def __init__(self, body: bytes, report: Callable[[int], Awaitable[None]] | None) -> None:
        super().__init__(body, content_type="application/json")
        self._body = body
        self._size = len(body)
        self._report = report

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return self._body.decode(encoding, errors)

    async def write(self, writer: AbstractStreamWriter) -> None:
        await self.write_with_length(writer, None)

    async def write_with_length(self, writer: AbstractStreamWriter, content_length: int | None) -> None:
        end = len(self._body) if content_length is None else min(content_length, len(self._body))
        view = memoryview(self._body)
        for start in range(0, end, _BODY_CHUNK):
            await writer.write(view[start : min(start + _BODY_CHUNK, end)])
            if self._report is not None:
                await self._report(min(start + _BODY_CHUNK, end))


async def send_once(
    session: aiohttp.ClientSession,
    url: str,
    request: Request,
    *,
    timeout_s: float = RESPONSE_TIMEOUT_S,
    ssl_context: ssl.SSLContext | None = None,
    progress: Callable[[int], Awaitable[None]] | None = None,
) -> Attempt:
    """Send one request and judge the answer; network failures become Firehose's error codes."""
    started = time.monotonic()

    def failed(code: str, message: str, reason: str) -> Attempt:
        return Attempt(False, None, code, message, seconds=time.monotonic() - started, reason=reason)

    try:
        async with session.post(
            url,
            data=_ProgressBody(request.body, progress),
            headers=request.headers,
            ssl=ssl_context if ssl_context is not None else True,
            timeout=aiohttp.ClientTimeout(total=timeout_s),
            skip_auto_headers=("Accept-Encoding",),
            allow_redirects=False,
        ) as response:
            body = await response.content.read(MAX_RESPONSE_BYTES + 1)
            if len(body) > MAX_RESPONSE_BYTES:
                return failed(
                    "HttpEndpoint.ResponseTooLarge",
                    "The response is larger than 1 MiB.",
                    "the answer is larger than 1 MiB",
                )
            attempt = judge_answer(request.request_id, response.status, response.headers, body)
    except aiohttp.ClientConnectorCertificateError as exc:
        # An ssl.SSLCertVerificationError, which aiohttp types as a plain Exception.
        detail = getattr(exc.certificate_error, "verify_message", exc.certificate_error)
        reason = f"the server's certificate is not trusted ({detail})"
        return failed("HttpEndpoint.SSLHandshakeFailure", f"The TLS handshake failed: {exc}", reason)
    except aiohttp.ClientSSLError as exc:
        return failed(
            "HttpEndpoint.SSLHandshakeFailure",
            f"The TLS handshake failed: {exc}",
            f"the TLS handshake failed ({exc.strerror or exc})",
        )
    except aiohttp.ClientConnectorError as exc:
        return failed(
            "HttpEndpoint.ConnectionFailed",
            f"Could not connect to the endpoint: {exc}",
            f"cannot connect ({exc.strerror or exc})",
        )
    except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError) as exc:
        return failed(
            "HttpEndpoint.ConnectionReset",
            f"The connection was reset or closed early: {exc}",
            f"the connection was reset or closed early ({exc})",
        )
    except TimeoutError:
        return failed(
            "HttpEndpoint.RequestTimeout",
            f"The endpoint did not answer within {timeout_s:g} s.",
            f"no answer within {timeout_s:g} s",
        )
    except aiohttp.ClientError as exc:
        return failed("HttpEndpoint.ConnectionFailed", f"The request failed: {exc}", f"the request failed ({exc})")
    return dataclasses.replace(attempt, seconds=time.monotonic() - started)


def client_ssl_context(ca_file: Path | None) -> ssl.SSLContext:
    """Verification against ``ca_file`` (or the system's CAs), TLS 1.2 and newer."""
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context
