"""In-process measurements: the limit (raw protobuf / JSON parsing), decode, and the stages
of one delivery (gunzip, envelope, decode, SQLite commit) to see where the time goes."""

from __future__ import annotations

import asyncio
import gzip
import multiprocessing
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import orjson
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as otel10_service

from receiver.batch import Batch
from receiver.config import REPOSITORY_RULES
from receiver.derive.deriver import Deriver
from receiver.derive.worker import ProcessEvaluator
from receiver.firehose import envelope
from receiver.firehose.records import SLICE_SAMPLES, decode_all
from receiver.formats import SeriesCache, decode_into
from receiver.formats.framing import split_frames
from receiver.model import HOUR_MS, MINUTE_MS
from receiver.proto.otel07 import metrics_service_pb2 as otel07_service
from receiver.rules import RuleHolder
from receiver.server import gctune
from receiver.store.sqlite import SQLiteStore

from .bodies import MIB, Body, SampleSource
from .processes import peak_rss_bytes

_FULL_PARSERS = {
    "opentelemetry0.7": otel07_service.ExportMetricsServiceRequest.FromString,
    "opentelemetry1.0": otel10_service.ExportMetricsServiceRequest.FromString,
}


def best_seconds(work: Callable[[], object], repeats: int) -> float:
    """The fastest of ``repeats`` runs: the least disturbed by the other work on the machine."""
    return best_of_each([work], repeats)[0]


def best_of_each(works: list[Callable[[], object]], repeats: int) -> list[float]:
    """The fastest of ``repeats`` runs of each work, the works taking turns: a busy spell of
    the machine then falls on all of them alike rather than on one."""
    best = [float("inf")] * len(works)
    for _ in range(repeats):
        for index, work in enumerate(works):
            started = time.perf_counter()
            work()
            best[index] = min(best[index], time.perf_counter() - started)
    return best


def limit_work(body: Body) -> Callable[[], object]:
    """Parsing every message with the format's full generated classes (json: orjson per line)."""
    if body.fmt == "json":
        lines = [line for record in body.records for line in record.split(b"\n") if line]
        return lambda: [orjson.loads(line) for line in lines]
    parse = _FULL_PARSERS[body.fmt]
    frames = [bytes(frame) for record in body.records for frame in split_frames(record)]
    return lambda: [parse(frame) for frame in frames]


def decode_work(body: Body, warmup: Body) -> Callable[[], object]:
    """Records -> batches of columns, as ingest does it (``decode_into``, the format given,
    as with --format, and the decoder the receiver runs: ``otel.DECODER``), a new batch for
    each slice of SLICE_SAMPLES datapoints, with one series cache across runs, as a receiver
    keeps one across deliveries, first filled by ``warmup`` (every series: a running receiver
    has met them all)."""
    cache = SeriesCache()
    decode_all(warmup.records, warmup.fmt, (), cache=cache)

    def work() -> None:
        decoded = 0
        batch = Batch()
        for record in body.records:
            decode_into(batch, record, body.fmt, cache=cache)
            size = len(batch)
            if size >= SLICE_SAMPLES:
                decoded += size
                batch = Batch()
        decoded += len(batch)
        if decoded != body.datapoints:
            raise AssertionError(f"decoded {decoded} datapoints of {body.datapoints}")

    return work


def stage_seconds(
    warmup: Body, body: Body, wire: bytes, compressed: bool, request_id: str, folder: Path
) -> dict[str, float]:
    """Seconds of each stage of taking one delivery, run one after the other in this process.

    The store and the decoders first take ``warmup`` (every series), as a running receiver has.
    """
    cache = SeriesCache()
    decode_all(warmup.records, warmup.fmt, (), cache=cache)
    stages: dict[str, float] = {}
    started = time.perf_counter()
    plain = gzip.decompress(wire) if compressed else wire
    stages["gunzip"] = time.perf_counter() - started
    started = time.perf_counter()
    delivery = envelope.parse_delivery(plain, request_id)
    stages["envelope (JSON + base64)"] = time.perf_counter() - started
    started = time.perf_counter()
    samples, _ = decode_all(delivery.records, body.fmt, (), cache=cache)
    stages["decode"] = time.perf_counter() - started

    async def commit() -> float:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder) as scratch:
            store = SQLiteStore(Path(scratch) / "stages.db")
            await store.open()
            try:
                await store.commit("warm-up", decode_all(warmup.records, warmup.fmt, (), cache=cache)[0])
                began = time.perf_counter()
                await store.commit(request_id, samples)
                return time.perf_counter() - began
            finally:
                await store.close()

    stages["SQLite commit"] = asyncio.run(commit())
    return stages


def derive_pass_figures(source_tables: int, folder: Path) -> dict[str, float]:
    """What the deriver spends on passes over a stored minute and hour of every series,
    store reads and writes included (``derive_pass_seconds``), with a fresh SQLite store
    filled in one process and derived in another: the peak memory is the deriver's alone,
    not that of the workload that made the samples."""
    spawn = multiprocessing.get_context("spawn")
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as scratch:
        database = Path(scratch) / "derive.db"
        with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
            hour, per_minute = pool.submit(fill_hour, source_tables, database).result()
        with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
            figures = pool.submit(derive_pass_seconds, database, hour).result()
    return {"samples_per_minute": float(per_minute), **figures}


def fill_hour(source_tables: int, database: Path) -> tuple[int, int]:
    """A SQLite store holding a whole hour of every series (the minutes are the workload's,
    repeated at later times, each committed as one delivery); (the hour, samples a minute)."""

    async def run() -> tuple[int, int]:
        source = SampleSource(source_tables)
        per_minute = len(source.every_series()) // 2
        store = SQLiteStore(database)
        await store.open()
        try:
            first = source.take(per_minute)
            hour = first[0].start_ms - first[0].start_ms % HOUR_MS + HOUR_MS  # the first whole hour
            minutes = 1 + (hour + HOUR_MS - first[0].start_ms) // MINUTE_MS
            await store.commit("minute-0", first)
            for index in range(1, minutes):
                await store.commit(f"minute-{index}", source.take(per_minute))
            return hour, per_minute
        finally:
            await store.close()

    return asyncio.run(run())


def derive_pass_seconds(database: Path, hour: int) -> dict[str, float]:
    """In a fresh process over a store ``fill_hour`` filled, with the rules in the worker
    process ``receiver serve`` uses: one pass over the hour's first minute, one over the
    hour (a deriver that just started rolls it up from every sample), then, after the
    hour's last minute is committed again with every Sum changed (a correction of every
    series), one more pass over the hour (from the minutes that changed). For each pass its
    wall time, this process's CPU time and peak memory (VmHWM, reset before each pass: what
    the process held before is included); the worker's peak over all of them."""
    gctune.tune()  # as `receiver serve` does: this runs in a fresh process

    async def run() -> dict[str, float]:
        store = SQLiteStore(database)
        evaluator = ProcessEvaluator()  # its worker starts at the first evaluation
        await store.open()
        try:
            deriver = Deriver(store, RuleHolder(REPOSITORY_RULES), minute_retention_days=3650, evaluator=evaluator)
            figures: dict[str, float] = {}

            async def timed(name: str, step: int) -> None:
                Path("/proc/self/clear_refs").write_text("5")  # VmHWM from here on
                started, cpu = time.perf_counter(), time.process_time()
                await deriver.derive_bucket(step, hour)
                figures[f"{name}_s"] = time.perf_counter() - started
                figures[f"{name}_cpu_s"] = time.process_time() - cpu
                figures[f"{name}_peak_rss_mib"] = peak_rss_bytes() / MIB

            await timed("minute", MINUTE_MS)
            await timed("hour", HOUR_MS)
            last = hour + HOUR_MS - MINUTE_MS
            corrected = [s._replace(sum=s.sum + 1.0) for s in await store.samples(last, last + MINUTE_MS)]
            await store.commit("correction", corrected)
            del corrected
            await timed("hour_update", HOUR_MS)
            figures["peak_rss_mib"] = max(figures["minute_peak_rss_mib"], figures["hour_peak_rss_mib"])
            workers = multiprocessing.active_children()
            figures["worker_peak_rss_mib"] = max(peak_rss_bytes(p.pid) for p in workers) / MIB
            return figures
        finally:
            evaluator.close()
            await store.close()

    return asyncio.run(run())
