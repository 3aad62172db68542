"""`make fuzz`: at least 100,000 mutated inputs against the envelope parser, each decoder and
the HTTP handler (in-process, over loopback), with counts, crashes and memory reported.

    .venv/bin/python -m fuzzing.run [--inputs N] [--seed S]

Exit status 0 when nothing crashed and memory levelled off, 1 otherwise. Crashing inputs are
written to out/fuzz/crashes/ (or --crash-dir; emptied at the start of each run) for replay.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import sys
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from receiver.config import ServeConfig
from receiver.firehose import envelope
from receiver.formats import FORMATS, SeriesCache
from receiver.server.app import INGEST_PATH, create_app
from receiver.store import MemoryStore
from tests.apps import serve_app

from .corpus import Corpus, build_corpus, plain_body
from .memory import RssSeries, rss_bytes
from .mutate import mutate_bytes, mutate_envelope, mutate_json_record
from .protomutate import mutate_otel_record
from .requests import mutated_request
from .targets import run_common_attributes, run_decoder, run_envelope

CRASH_DIR = Path("out/fuzz/crashes")
SHARES = {  # of the inputs, per target
    **{f"decoder:{fmt}": 0.15 for fmt in FORMATS},
    "decoder:detect": 0.10,
    "envelope": 0.25,
    "common-attributes": 0.05,
    "http": 0.15,
}
HTTP_APP_INPUTS = 2_500
"""The HTTP target starts a fresh app and memory store this often, so accepted mutated
deliveries cannot grow the store (and the RSS) without end."""
RSS_EVERY = 1_000
RSS_SLACK_BYTES = 32 * 1024 * 1024


@dataclass(slots=True)
class Report:
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    crashes: dict[tuple[str, str], int] = field(default_factory=dict)
    rss: RssSeries = field(default_factory=RssSeries)
    inputs: int = 0
    crash_dir: Path = CRASH_DIR

    def count(self, target: str, outcome: str) -> None:
        self.outcomes[(target, outcome)] += 1
        self.inputs += 1
        if self.inputs % RSS_EVERY == 0:
            self.rss.add(rss_bytes())

    def crash(self, target: str, data: bytes, exc: BaseException | str) -> None:
        what = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
        frame = "" if isinstance(exc, str) else traceback.extract_tb(exc.__traceback__)[-1]
        key = (target, f"{what[:160]} at {frame.filename}:{frame.lineno}" if frame else what[:160])
        self.count(target, "CRASH")
        if key not in self.crashes:
            self.crash_dir.mkdir(parents=True, exist_ok=True)
            (self.crash_dir / f"{target.replace(':', '-')}-{len(self.crashes)}.bin").write_bytes(data)
        self.crashes[key] = self.crashes.get(key, 0) + 1


def fuzz_decoders(corpus: Corpus, rng: random.Random, counts: dict[str, int], report: Report) -> None:
    cache = SeriesCache()
    for fmt in (*FORMATS, None):
        target = f"decoder:{fmt or 'detect'}"
        for _ in range(counts[target]):
            source = fmt or rng.choice(FORMATS)
            data = structural_mutation(rng.choice(corpus.records[source]), source, rng)
            try:
                report.count(target, run_decoder(data, fmt, cache=cache))
            except Exception as exc:  # noqa: BLE001 - a crash is what we look for
                report.crash(target, data, exc)


def structural_mutation(record: bytes, fmt: str, rng: random.Random) -> bytes:
    """Half byte-level (framing, parsers), half field-level (the decoders' value checks)."""
    if rng.random() < 0.5:
        return mutate_bytes(record, rng)
    if fmt == "json":
        return mutate_json_record(record, rng)
    return mutate_otel_record(record, fmt, rng)


def fuzz_envelope(corpus: Corpus, rng: random.Random, count: int, report: Report) -> None:
    bodies = [(plain_body(d), d.request_id) for d in corpus.deliveries]
    cache = SeriesCache()
    for _ in range(count):
        body, request_id = rng.choice(bodies)
        data = mutate_envelope(body, rng) if rng.random() < 0.6 else mutate_bytes(body, rng)
        try:
            report.count("envelope", run_envelope(data, request_id, cache=cache))
        except Exception as exc:  # noqa: BLE001
            report.crash("envelope", data, exc)


def fuzz_common_attributes(rng: random.Random, count: int, report: Report) -> None:
    seed = b'{"commonAttributes": {"team": "storage", "env": "prod"}}'
    for _ in range(count):
        data = mutate_bytes(seed, rng)
        header = data.decode("latin-1")
        try:
            report.count("common-attributes", run_common_attributes(header))
        except Exception as exc:  # noqa: BLE001
            report.crash("common-attributes", data, exc)


END_OF_TIME_MS = 2**62


async def fuzz_http(corpus: Corpus, rng: random.Random, count: int, report: Report) -> None:
    done = 0
    while done < count:
        store = MemoryStore()
        async with serve_app(create_app(ServeConfig(allow_unauthenticated=True), store)) as client:
            for _ in range(min(HTTP_APP_INPUTS, count - done)):
                done += 1
                request = mutated_request(rng.choice(corpus.deliveries), rng)
                await _post_one(client, store, request, report)
            # aiohttp keeps each app's handlers in an LRU cache of 1,024 entries, so an app
            # and its store outlive their run: empty the store (samples, values and
            # quarantined records, all past any retention) lest the RSS check see a leak.
            await store.prune(END_OF_TIME_MS)


async def _post_one(client, store: MemoryStore, request, report: Report) -> None:
    dump = request.body + b"\n--headers--\n" + repr(request.headers).encode()
    before = await store.count_samples()
    try:
        async with client.post(INGEST_PATH, data=request.body, headers=request.headers) as response:
            status, body = response.status, await response.read()
    except Exception as exc:  # noqa: BLE001 - the connection itself failed
        report.crash("http", dump, exc)
        return
    problem = _answer_problem(status, body, request.headers.get(envelope.REQUEST_ID_HEADER, ""))
    if (
        problem is None
        and status != 200
        and (await store.count_samples() != before or await store.is_committed(request.request_id))
    ):
        problem = f"refused with {status} but stored part of the request"
    if problem is not None:
        report.crash("http", dump, problem)
    else:
        report.count("http", f"HTTP {status}")


def _answer_problem(status: int, body: bytes, request_id: str) -> str | None:
    if not (status == 200 or 400 <= status < 500):
        return f"answered {status}"  # the body carries the request id; the input file has the rest
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        return f"answered {status} with a body that is not JSON"
    if not isinstance(answer, dict) or answer.get("requestId") != request_id:
        return f"answered {status} without the request id"
    if status != 200 and not answer.get("errorMessage"):
        return f"answered {status} without an errorMessage"
    return None


def split(total: int) -> dict[str, int]:
    counts = {target: int(total * share) for target, share in SHARES.items()}
    counts["envelope"] += total - sum(counts.values())  # rounding
    return counts


def print_report(report: Report, seconds: float, rss_ok: bool) -> None:
    print(f"\n{report.inputs:,} inputs in {seconds:.0f} s\n")
    targets = sorted({t for t, _ in report.outcomes})
    width = max(len(t) for t in targets)
    print(f"{'target':<{width}}  outcomes")
    for target in targets:
        parts = ", ".join(f"{o} {n:,}" for (t, o), n in sorted(report.outcomes.items()) if t == target)
        print(f"{target:<{width}}  {parts}")
    mib = [r / 2**20 for r in report.rss.readings]
    if mib:
        print(
            f"\nRSS every {RSS_EVERY:,} inputs: start {mib[0]:.0f} MiB, peak {max(mib):.0f} MiB, "
            f"end {mib[-1]:.0f} MiB; second half's peak over the first's: "
            f"{report.rss.growth() / 2**20:+.1f} MiB (limit {RSS_SLACK_BYTES / 2**20:.0f}) -> "
            f"{'levels off' if rss_ok else 'GROWS'}"
        )
    if report.crashes:
        print(
            f"\n{sum(report.crashes.values())} crashes, {len(report.crashes)} distinct (inputs in {report.crash_dir}/):"
        )
        for (target, what), n in report.crashes.items():
            print(f"  {target}: {what} (x{n})")
    else:
        print("\nno crashes")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzzing.run", description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=100_000, help="inputs in all (default 100000)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random, printed)")
    parser.add_argument(
        "--crash-dir", type=Path, default=CRASH_DIR, help=f"where crashing inputs are written (default {CRASH_DIR})"
    )
    args = parser.parse_args(argv)
    if args.inputs < 1:
        parser.error(f"--inputs must be at least 1, not {args.inputs}")
    # One log line per refused delivery would drown the report; a 500 is caught as a crash.
    # Restored afterwards: tests run main() in-process, and later tests read those logs.
    receiver_log = logging.getLogger("receiver")
    level = receiver_log.level
    receiver_log.setLevel(logging.CRITICAL)
    try:
        return _fuzz(args)
    finally:
        receiver_log.setLevel(level)


def _fuzz(args: argparse.Namespace) -> int:
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    print(f"fuzzing with --seed {seed}: {args.inputs:,} inputs", flush=True)
    rng = random.Random(seed)
    for stale in args.crash_dir.glob("*.bin"):  # the folder holds this run's crashes only
        stale.unlink()
    corpus = build_corpus()
    counts = split(args.inputs)
    report = Report(crash_dir=args.crash_dir)
    report.rss.add(rss_bytes())
    started = time.monotonic()
    fuzz_decoders(corpus, rng, counts, report)
    fuzz_envelope(corpus, rng, counts["envelope"], report)
    fuzz_common_attributes(rng, counts["common-attributes"], report)
    asyncio.run(fuzz_http(corpus, rng, counts["http"], report))
    rss_ok = report.rss.levels_off(RSS_SLACK_BYTES)
    print_report(report, time.monotonic() - started, rss_ok)
    return 0 if rss_ok and not report.crashes else 1


if __name__ == "__main__":
    sys.exit(main())
