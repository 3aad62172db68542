"""In-process measurements: the limit (raw protobuf / JSON parsing), decode, and the stages
of one delivery (gunzip, envelope, decode, SQLite commit) to see where the time goes."""

from __future__ import annotations

import asyncio
import gzip
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as otel10_service

from receiver import firehose
from receiver.formats import decode_record
from receiver.formats.framing import split_frames
from receiver.ingest import decode_all
from receiver.proto.otel07 import metrics_service_pb2 as otel07_service
from receiver.store.sqlite import SQLiteStore

from .bodies import Body

_FULL_PARSERS = {
    "opentelemetry0.7": otel07_service.ExportMetricsServiceRequest.FromString,
    "opentelemetry1.0": otel10_service.ExportMetricsServiceRequest.FromString,
}


def best_seconds(work: Callable[[], object], repeats: int) -> float:
    """The fastest of ``repeats`` runs: the least disturbed by the other work on the machine."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def limit_work(body: Body) -> Callable[[], object]:
    """Parsing every message with the format's full generated classes (json: orjson per line)."""
    if body.fmt == "json":
        lines = [line for record in body.records for line in record.split(b"\n") if line]
        return lambda: [orjson.loads(line) for line in lines]
    parse = _FULL_PARSERS[body.fmt]
    frames = [bytes(frame) for record in body.records for frame in split_frames(record)]
    return lambda: [parse(frame) for frame in frames]


def decode_work(body: Body) -> Callable[[], object]:
    """Records -> samples, as the receiver does it (format given, as with --format)."""
    def work() -> None:
        samples = 0
        for record in body.records:
            samples += len(decode_record(record, body.fmt))
        if samples != body.datapoints:
            raise AssertionError(f"decoded {samples} datapoints of {body.datapoints}")
    return work


def stage_seconds(
    warmup: Body, body: Body, wire: bytes, compressed: bool, request_id: str, folder: Path
) -> dict[str, float]:
    """Seconds of each stage of taking one delivery, run one after the other in this process.

    The store and the decoders first take ``warmup`` (every series), as a running receiver has.
    """
    decode_all(warmup.records, warmup.fmt, ())
    stages: dict[str, float] = {}
    started = time.perf_counter()
    plain = gzip.decompress(wire) if compressed else wire
    stages["gunzip"] = time.perf_counter() - started
    started = time.perf_counter()
    delivery = firehose.parse_delivery(plain, request_id)
    stages["envelope (JSON + base64)"] = time.perf_counter() - started
    started = time.perf_counter()
    samples = decode_all(delivery.records, body.fmt, ())
    stages["decode"] = time.perf_counter() - started

    async def commit() -> float:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder) as scratch:
            store = SQLiteStore(Path(scratch) / "stages.db")
            await store.open()
            try:
                await store.commit("warm-up", decode_all(warmup.records, warmup.fmt, ()))
                began = time.perf_counter()
                await store.commit(request_id, samples)
                return time.perf_counter() - began
            finally:
                await store.close()

    stages["SQLite commit"] = asyncio.run(commit())
    return stages
