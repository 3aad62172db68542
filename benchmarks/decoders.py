"""Microseconds per datapoint of the OpenTelemetry decoders, side by side, on the benchmark
bodies: the compiled decoder (receiver/formats/_decode.pyx), the pure-Python fast path
(fastpath.py) and the careful walk (walk.py, the reference).

    PYTHONPATH=. .venv/bin/python -m benchmarks.decoders [--tables 1000] [--mib 8] [--repeats 5]

Each decoder gets its own SeriesCache, first filled by a warm-up body holding every series
(a running receiver has met them all), then times the body's records; "first sight" times
the same body on an empty cache (every series parsed once). Times are the process's CPU
time (time.process_time), so a busy machine's other work is not counted; the best of
``--repeats`` runs is shown.
"""

from __future__ import annotations

import argparse
import importlib
import time
from collections.abc import Callable

from receiver.formats import SeriesCache, otel07, otel10, walk
from receiver.formats.limits import latest_end_ms, now_ms

from .bodies import MIB, Body, SampleSource, make_body, warmup_body

FLAVORS = {otel07.NAME: otel07.FLAVOR, otel10.NAME: otel10.FLAVOR}


def decoders() -> dict[str, Callable[..., object]]:
    found: dict[str, Callable[..., object]] = {}
    try:
        found["compiled"] = importlib.import_module("receiver.formats._decode").decode
    except ImportError:
        print("the compiled decoder is not built (make extension): left out")
    found["careful walk"] = lambda data, extra, flavor, latest, *, cache: walk.walk(data, extra, flavor, latest, cache)
    return found


def seconds(decode: Callable[..., object], body: Body, cache: SeriesCache, latest: int) -> float:
    flavor = FLAVORS[body.fmt]
    started = time.process_time()
    total = 0
    for record in body.records:
        got = decode(record, (), flavor, latest, cache=cache)
        if got is None:
            raise AssertionError("a benchmark record was declined")
        total += len(got)  # type: ignore[arg-type]
    spent = time.process_time() - started
    if total != body.datapoints:
        raise AssertionError(f"decoded {total} datapoints of {body.datapoints}")
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tables", type=int, default=1000)
    parser.add_argument("--mib", type=float, default=8.0)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    latest = latest_end_ms(now_ms())
    source = SampleSource(args.tables)
    found = decoders()
    print(f"{'format':<18} {'decoder':<20} {'datapoints':>10} {'µs/dp seen':>11} {'µs/dp first':>12}")
    for fmt in FLAVORS:
        warm = warmup_body(source, fmt)
        body = make_body(source, fmt, int(args.mib * MIB))
        for name, decode in found.items():
            cold = seconds(decode, body, SeriesCache(), latest)
            cache = SeriesCache()
            seconds(decode, warm, cache, latest)
            best = min(seconds(decode, body, cache, latest) for _ in range(args.repeats))
            per_seen, per_first = best / body.datapoints * 1e6, cold / body.datapoints * 1e6
            print(f"{fmt:<18} {name:<20} {body.datapoints:>10} {per_seen:>11.3f} {per_first:>12.3f}")


if __name__ == "__main__":
    main()
