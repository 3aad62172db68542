"""`POST /aws/firehose/metrics`: one Firehose delivery in, one committed batch of samples out.

Order of checks: headers are text (400), access key (401), request id (400), already
committed (200 at once), body within cap and budget (400 / 503), envelope (400), store
(503). A record that does not decode is quarantined and the rest is taken (200); the ack
goes out once the store has committed both (receiver/firehose/records.py).

Each failure is a receiver/errors.py HttpError (the stages' own exceptions are classified
there), answered with its kind's status in Firehose's envelope: ``errorMessage``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from aiohttp import ClientError, web
from aiohttp.http_exceptions import HttpProcessingError

from receiver.derive.deriver import Deriver
from receiver.errors import STATUS, HttpError, Kind, http_error
from receiver.firehose import envelope
from receiver.firehose.body import DEFAULT_STALL_TIMEOUT_S, BodyReader, InflightBudget
from receiver.firehose.records import Decoding, Stored, decode_allowance, store_records
from receiver.firehose.telemetry import DECODE_ERROR_REASONS, Telemetry
from receiver.formats import SeriesCache
from receiver.model import QuarantinedRecord
from receiver.store import Store

log = logging.getLogger("receiver.ingest")


class AccessKeys:
    """The configured keys, compared in constant time and never kept in plain text."""

    def __init__(self, keys: Sequence[str]) -> None:
        self._digests = [hashlib.sha256(k.encode()).digest() for k in keys]

    @property
    def enabled(self) -> bool:
        return bool(self._digests)

    def accepts(self, given: str | None) -> bool:
        if not self._digests:
            return True
        # Hashing first makes every comparison the same length; no early exit across keys.
        digest = hashlib.sha256((given or "").encode("utf-8", "surrogateescape")).digest()
        matched = False
        for expected in self._digests:
            matched |= hmac.compare_digest(digest, expected)
        return matched and given is not None


class Aborted(Exception):
    """The client went away before its body was read: no answer can reach it."""


@dataclass(frozen=True, slots=True)
class IngestSettings:
    keys: AccessKeys
    budget: InflightBudget
    record_format: str | None
    series_cache: SeriesCache
    """The application's one series cache: every delivery's records decode against it, so a
    series is parsed once per receiver, not once per delivery."""
    read_timeout_s: float = DEFAULT_STALL_TIMEOUT_S
    """How long a body may pause before the delivery ends (``--read-timeout``)."""
    decoding: Decoding = field(default_factory=Decoding)


async def handle_delivery(
    request: web.Request,
    settings: IngestSettings,
    store: Store,
    deriver: Deriver | None = None,
    telemetry: Telemetry | None = None,
) -> web.Response:
    started = time.perf_counter()
    request_id = ""
    records = samples = 0
    failure: HttpError | None = None
    duplicate = aborted = False
    quarantined: list[QuarantinedRecord] = []
    try:
        _check_headers(request)
        request_id = request.headers.get(envelope.REQUEST_ID_HEADER, "")
        if not settings.keys.accepts(request.headers.get(envelope.ACCESS_KEY_HEADER)):
            raise HttpError(Kind.UNAUTHORIZED, f"the {envelope.ACCESS_KEY_HEADER} header is missing or wrong")
        if not request_id:
            raise HttpError(Kind.ENVELOPE, f"the {envelope.REQUEST_ID_HEADER} header is missing")
        duplicate = await store.is_committed(request_id)
        if not duplicate:
            stored = await _deliver(request, request_id, settings, store, deriver)
            records, samples, quarantined = stored.records, stored.samples, stored.quarantined
    except Aborted:
        aborted = True
    except Exception as exc:
        failure = http_error(exc)
        if failure is None:
            # A bug, not the client's input: say so in JSON; Firehose retries a 500.
            log.exception("delivery failed unexpectedly", extra={"request_id": request_id})
            failure = HttpError(Kind.INTERNAL, "the receiver failed unexpectedly; the delivery will be retried")
    status = failure.status if failure is not None else 200
    error = failure.message if failure is not None else None
    # A 400's kind is what could not be read: body or envelope (telemetry's reason).
    reason = failure.kind.value if failure is not None and failure.kind.value in DECODE_ERROR_REASONS else None
    elapsed_s = time.perf_counter() - started
    for record in quarantined:
        log.warning(
            "record quarantined",
            extra={
                "request_id": request_id,
                "record": record.index,
                "reason": record.reason,
                "error": record.detail,
                "bytes": len(record.data),
            },
        )
    if aborted:
        log.info(
            "delivery aborted: the client disconnected before sending the whole body",
            extra={"request_id": request_id, "ms": round(elapsed_s * 1000, 1)},
        )
        if telemetry is not None:
            telemetry.record_aborted()
        # Nobody is left to read an answer; aiohttp closes the connection.
        return web.Response(status=STATUS[Kind.BODY])
    log.log(
        logging.INFO if status == 200 else logging.WARNING,
        "delivery",
        extra={
            "request_id": request_id,
            "status": status,
            "records": records,
            "samples": samples,
            "ms": round(elapsed_s * 1000, 1),
            "duplicate": duplicate,
            "quarantined": len(quarantined),
            "source_arn": request.headers.get(envelope.SOURCE_ARN_HEADER, ""),
            "protocol_version": request.headers.get(envelope.PROTOCOL_VERSION_HEADER, ""),
            **({"error": error} if error else {}),
        },
    )
    if telemetry is not None:
        # total_bytes: the body as read off the connection so far, before our gunzip
        # (not in aiohttp's documented API, hence getattr: telemetry never fails a delivery).
        telemetry.record_delivery(
            status=status,
            seconds=elapsed_s,
            body_bytes=getattr(request.content, "total_bytes", 0),
            records=records,
            samples=samples,
            duplicate=duplicate,
            decode_error=reason,
            quarantined=[record.reason for record in quarantined],
        )
    return web.Response(
        status=status,
        body=envelope.response_body(request_id, error),
        content_type="application/json",
        headers=failure.headers if failure is not None else None,
    )


async def _deliver(
    request: web.Request,
    request_id: str,
    settings: IngestSettings,
    store: Store,
    deriver: Deriver | None,
) -> Stored:
    """Read, check, decode and store one delivery."""
    labels = envelope.parse_common_attributes(request.headers.get(envelope.COMMON_ATTRIBUTES_HEADER))
    if request.content_length is not None and request.content_length > envelope.MAX_BODY_BYTES:
        raise HttpError(Kind.BODY, _too_large_message())
    reader = BodyReader(settings.budget, envelope.MAX_BODY_BYTES, settings.read_timeout_s)
    allowance = 0
    try:
        # Each chunk as it was received (several at once when the loop was busy), never
        # cut up into smaller copies.
        body = await reader.read(request.content.iter_any(), request.headers.get("Content-Encoding"))
        delivery = envelope.parse_delivery(body, request_id)
        del body  # the records hold what is needed; free the envelope before decoding
        # The records take the body's place (it shrinks as they are cut out of it); what
        # decoding adds is one slice of samples, counted too, so that the budget bounds
        # the memory of deliveries in flight in every format.
        wanted = decode_allowance(sum(map(len, delivery.records)))
        settings.budget.reserve(reader.held, wanted)
        allowance = wanted
        stored = await store_records(
            store,
            settings.decoding,
            request_id,
            delivery.records,
            settings.record_format,
            labels,
            cache=settings.series_cache,
        )
        if deriver is not None:
            deriver.touch_starts(stored.starts)
    except ConnectionResetError:
        raise Aborted() from None
    except (ClientError, HttpProcessingError):
        raise HttpError(Kind.BODY, "the request body ended early or is malformed") from None
    finally:
        settings.budget.release(reader.held + allowance)
    return stored


def _check_headers(request: web.Request) -> None:
    """Refuse a header whose value is not UTF-8 text with a 400 naming it.

    aiohttp keeps the bytes it cannot decode as lone surrogates; such a value cannot be
    compared, logged as JSON or echoed in the JSON answer, so nothing reads it.
    """
    for name, value in request.headers.items():
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise HttpError(Kind.ENVELOPE, f"the {_printable(name)} header is not valid UTF-8") from None


def _printable(name: str) -> str:
    return name.encode("ascii", "backslashreplace").decode("ascii")


def _too_large_message() -> str:
    return (
        f"the body is larger than {envelope.MAX_BODY_BYTES} bytes, more than Firehose's largest "
        "delivery; lower the delivery stream's buffering size"
    )
