"""`POST /aws/firehose/metrics`: one Firehose delivery in, one committed batch of samples out.

Order of checks: access key (401), request id (400), already committed (200 at once),
body within cap and budget (400 / 503), envelope (400), records (400), store (503).
A request is all-or-nothing: nothing is stored unless every record decodes.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain
from operator import attrgetter

from aiohttp import ClientError, web
from aiohttp.http_exceptions import HttpProcessingError

from receiver import firehose
from receiver.body import BadEncoding, BodyReader, BodyTooLarge, InflightBudget, OverBudget
from receiver.derive import Deriver
from receiver.formats import DecodeError, decode_record
from receiver.model import Pairs, Sample
from receiver.store import Store, StoreError
from receiver.telemetry import Telemetry

log = logging.getLogger("receiver.ingest")

RETRY_AFTER_S = 5
"""Firehose ignores Retry-After and backs off by itself; other clients may use it."""


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


@dataclass(slots=True)
class Failure(Exception):
    status: int
    message: str
    reason: str | None = None
    """For a 400: what could not be read (telemetry's decode error reason)."""


class RecordError(firehose.EnvelopeError):
    """A record that does not decode: a 400 like any malformed envelope, counted apart."""


@dataclass(frozen=True, slots=True)
class IngestSettings:
    keys: AccessKeys
    budget: InflightBudget
    record_format: str | None


def _decode_one(index: int, data: bytes, record_format: str | None, labels: Pairs) -> list[Sample]:
    try:
        return decode_record(data, record_format, labels)
    except DecodeError as exc:
        raise RecordError(f"record {index}: {exc}") from None


@dataclass(slots=True)
class Decoded:
    """What a delivery's records decoded to, tallied while a store takes them."""

    samples: int = 0
    starts: set[int] = field(default_factory=set)
    """The periods' starts, for the deriver."""


def decode_slices(
    records: list[bytes], record_format: str | None, labels: Pairs, decoded: Decoded
) -> Iterator[list[Sample]]:
    """Each record's samples in turn (RecordError for a bad one), tallied in ``decoded``.

    Each record is dropped from ``records`` once decoded, so a store that commits slice by
    slice never holds a 64 MiB body's records and all its samples at once.
    """
    for index in range(len(records)):
        data, records[index] = records[index], b""
        samples = _decode_one(index, data, record_format, labels)
        del data
        decoded.samples += len(samples)
        decoded.starts.update(map(_start_of, samples))
        yield samples


_start_of = attrgetter("start_ms")


def decode_all(records: list[bytes], record_format: str | None, labels: Pairs) -> list[Sample]:
    """Every record's samples, or EnvelopeError naming the first bad record (``records`` is
    left as it was)."""
    return list(chain.from_iterable(decode_slices(list(records), record_format, labels, Decoded())))


async def commit_delivery(
    store: Store, request_id: str, records: list[bytes], record_format: str | None, labels: Pairs
) -> Decoded:
    """Decode ``records`` and commit their samples under ``request_id``, all or nothing.

    A store with ``commit_stream`` (SQLite) decodes and writes slice by slice inside one
    transaction; any other store gets every sample at once, decoded off the event loop.
    """
    decoded = Decoded()
    slices = decode_slices(records, record_format, labels, decoded)
    commit_stream = getattr(store, "commit_stream", None)
    if commit_stream is not None:
        await commit_stream(request_id, slices)
    else:
        samples = await asyncio.get_running_loop().run_in_executor(
            None, lambda: list(chain.from_iterable(slices)))
        await store.commit(request_id, samples)
    return decoded


async def handle_delivery(
    request: web.Request,
    settings: IngestSettings,
    store: Store,
    deriver: Deriver | None = None,
    telemetry: Telemetry | None = None,
) -> web.Response:
    started = time.perf_counter()
    request_id = request.headers.get(firehose.REQUEST_ID_HEADER, "")
    records = samples = 0
    status, error, reason = 200, None, None
    duplicate = False
    try:
        if not settings.keys.accepts(request.headers.get(firehose.ACCESS_KEY_HEADER)):
            raise Failure(401, f"the {firehose.ACCESS_KEY_HEADER} header is missing or wrong")
        if not request_id:
            raise Failure(400, f"the {firehose.REQUEST_ID_HEADER} header is missing", "envelope")
        duplicate = await store.is_committed(request_id)
        if not duplicate:
            records, samples = await _deliver(request, request_id, settings, store, deriver)
    except Failure as failure:
        status, error, reason = failure.status, failure.message, failure.reason
    except firehose.EnvelopeError as exc:
        status, error = 400, str(exc)
        reason = "record" if isinstance(exc, RecordError) else "envelope"
    except StoreError as exc:
        status, error = 503, f"the store is unavailable, retry later ({exc})"
    except Exception:
        # A bug, not the client's input: say so in JSON; Firehose retries a 500.
        log.exception("delivery failed unexpectedly", extra={"request_id": request_id})
        status, error = 500, "the receiver failed unexpectedly; the delivery will be retried"
    # Never answer 413: Firehose would drop the batch without backing it up to S3.
    headers = {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else {}
    log.log(
        logging.INFO if status == 200 else logging.WARNING,
        "delivery",
        extra={
            "request_id": request_id,
            "status": status,
            "records": records,
            "samples": samples,
            "ms": round((time.perf_counter() - started) * 1000, 1),
            "duplicate": duplicate,
            "source_arn": request.headers.get(firehose.SOURCE_ARN_HEADER, ""),
            "protocol_version": request.headers.get(firehose.PROTOCOL_VERSION_HEADER, ""),
            **({"error": error} if error else {}),
        },
    )
    if telemetry is not None:
        # total_bytes: the body as read off the connection so far, before our gunzip
        # (not in aiohttp's documented API, hence getattr: telemetry never fails a delivery).
        telemetry.record_delivery(
            status=status, seconds=time.perf_counter() - started,
            body_bytes=getattr(request.content, "total_bytes", 0),
            records=records, samples=samples, duplicate=duplicate, decode_error=reason,
        )
    return web.Response(
        status=status,
        body=firehose.response_body(request_id, error),
        content_type="application/json",
        headers=headers,
    )


async def _deliver(
    request: web.Request,
    request_id: str,
    settings: IngestSettings,
    store: Store,
    deriver: Deriver | None,
) -> tuple[int, int]:
    """Read, check, decode and commit one delivery; return (records, samples)."""
    labels = firehose.parse_common_attributes(
        request.headers.get(firehose.COMMON_ATTRIBUTES_HEADER)
    )
    if request.content_length is not None and request.content_length > firehose.MAX_BODY_BYTES:
        raise Failure(400, _too_large_message(), "body")
    reader = BodyReader(settings.budget, firehose.MAX_BODY_BYTES)
    try:
        body = await reader.read(
            request.content.iter_chunked(1 << 16), request.headers.get("Content-Encoding")
        )
        delivery = firehose.parse_delivery(body, request_id)
        del body  # the records hold what is needed; free the envelope before decoding
        records = len(delivery.records)
        decoded = await commit_delivery(
            store, request_id, delivery.records, settings.record_format, labels)
        if deriver is not None:
            deriver.touch_starts(decoded.starts)
    except (BodyTooLarge, BadEncoding) as exc:
        raise Failure(400, str(exc), "body") from None
    except OverBudget:
        raise Failure(503, "the receiver is busy with other deliveries, retry later") from None
    except (ClientError, HttpProcessingError):
        raise Failure(400, "the request body ended early or is malformed", "body") from None
    finally:
        settings.budget.release(reader.held)
    return records, decoded.samples


def _too_large_message() -> str:
    return (
        f"the body is larger than {firehose.MAX_BODY_BYTES} bytes, more than Firehose's largest "
        "delivery; lower the delivery stream's buffering size"
    )
