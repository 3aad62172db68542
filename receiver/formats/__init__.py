"""The three CloudWatch metric-stream record formats, decoded to and encoded from Samples.

``opentelemetry0.7`` and ``opentelemetry1.0`` records are length-prefixed protobuf
ExportMetricsServiceRequests; ``json`` records are newline-separated JSON objects. How a
record's format is told from its bytes: see ``receiver.formats.detect``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from receiver.batch import Batch
from receiver.model import Pairs, Sample

from . import jsonfmt, otel, otel07, otel10
from .detect import detect_format
from .errors import REASONS, DecodeError
from .limits import now_ms as _clock_ms
from .series import SeriesCache

__all__ = [
    "FORMATS",
    "REASONS",
    "DecodeError",
    "SeriesCache",
    "decode_into",
    "decode_record",
    "detect_format",
    "encode_records",
]

FORMATS: tuple[str, ...] = (otel07.NAME, otel10.NAME, jsonfmt.NAME)


class _Decoder(Protocol):
    def __call__(self, data: bytes, extra_labels: Pairs, now: int, /, *, cache: SeriesCache) -> list[Sample]: ...


_DECODERS: dict[str, _Decoder] = {
    otel07.NAME: otel07.decode,
    otel10.NAME: otel10.decode,
    jsonfmt.NAME: jsonfmt.decode,
}
_ENCODERS: dict[str, Callable[[Iterable[Sample], int], list[bytes]]] = {
    otel07.NAME: otel07.encode,
    otel10.NAME: otel10.encode,
    jsonfmt.NAME: jsonfmt.encode,
}


def decode_record(
    data: bytes,
    fmt: str | None = None,
    extra_labels: Pairs = (),
    *,
    cache: SeriesCache,
    now_ms: int | None = None,
) -> list[Sample]:
    """The samples of one Firehose record (its decoded ``data``), at least one.

    ``fmt`` None detects the format. ``extra_labels`` (the Firehose request's common
    attributes, sorted by name) are merged into every sample's labels; on a name clash the
    stream's own value wins. ``cache`` is the application's SeriesCache: required, so that no
    caller decodes with a cold cache by mistake (a series met before is looked up, not
    parsed), and equal series decode to one object. ``now_ms`` (epoch ms, default the clock)
    is the time the latest accepted period end (now + 1 day) counts from.

    A record that is not taken whole raises DecodeError: ``str(e)`` says what is wrong in one
    sentence, ``e.reason`` is one of REASONS (errors.py): malformed input, but also a value
    the store would not keep (a non-finite statistic, a period out of range), a metric name
    at odds with its labels, and a record past a work bound. No sample of such a record is
    returned, so nothing of it is stored and nothing is dropped silently. ValueError (not a
    DecodeError) for an unknown ``fmt``: that is the caller's mistake, not the record's.
    """
    if fmt is None:
        fmt = detect_format(data)
    decoder = _DECODERS.get(fmt)
    if decoder is None:
        raise ValueError(f"unknown record format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return decoder(data, extra_labels, _clock_ms() if now_ms is None else now_ms, cache=cache)


def decode_into(
    batch: Batch,
    data: bytes,
    fmt: str | None = None,
    extra_labels: Pairs = (),
    *,
    cache: SeriesCache,
    now_ms: int | None = None,
) -> None:
    """Append the datapoints of one Firehose record to ``batch``: what ingest decodes with.

    The same datapoints as ``decode_record`` gives, filed into the batch's groups
    (receiver/batch.py) in the order that gives them; the arguments and errors are
    ``decode_record``'s. A record that raises DecodeError leaves the batch as it was. The
    OpenTelemetry formats go through ``otel.decode_into`` (the compiled decoder writes the
    columns itself); json records are decoded into Samples and filed.
    """
    if fmt is None:
        fmt = detect_format(data)
    now = _clock_ms() if now_ms is None else now_ms
    if fmt == otel07.NAME:
        otel.decode_into(batch, data, extra_labels, otel07.FLAVOR, now, cache=cache)
    elif fmt == otel10.NAME:
        otel.decode_into(batch, data, extra_labels, otel10.FLAVOR, now, cache=cache)
    else:
        batch.add_samples(decode_record(data, fmt, extra_labels, cache=cache, now_ms=now))


def encode_records(samples: Iterable[Sample], fmt: str, *, max_record_bytes: int = 1_024_000) -> list[bytes]:
    """The records CloudWatch would stream for ``samples``, each at most ``max_record_bytes``.

    OpenTelemetry formats: length-prefixed ExportMetricsServiceRequests, several per record;
    consecutive samples of one resource (account, region, labels) share a ResourceMetrics and
    consecutive samples of one metric share a Metric. ``json``: one object per line, each
    newline-terminated. Sample order is kept. ``decode_record`` of the records gives the
    samples back, for labels the format can carry (OpenTelemetry: any, as resource
    attributes; json: ``metric_stream_name`` only, others are not written). ValueError for a
    sample the format cannot carry unchanged, e.g. a non-percentile statistic or a fractional
    count in an OpenTelemetry format, or a datapoint larger than a record.
    """
    encoder = _ENCODERS.get(fmt)
    if encoder is None:
        raise ValueError(f"unknown record format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if max_record_bytes < 1:
        raise ValueError("max_record_bytes must be positive")
    return encoder(samples, max_record_bytes)
