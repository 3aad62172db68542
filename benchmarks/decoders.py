"""The OpenTelemetry decoders side by side on the benchmark bodies, against the limit: the
compiled decoder (receiver/formats/_decode.pyx) into a Batch of columns, as ingest decodes
(``fill``, a new batch per slice of SLICE_SAMPLES datapoints), and into Samples
(``decode``), and the careful walk (walk.py, the reference and the fallback), each beside
upb's ``ExportMetricsServiceRequest.FromString`` of the same messages.

    PYTHONPATH=. .venv/bin/python -m benchmarks.decoders [--tables 1000] [--mib 8] [--repeats 5]

Each decoder gets its own SeriesCache, first filled by a warm-up body holding every series
(a running receiver has met them all), then times the body's records ("seen"); "first" times
the same body on an empty cache (every series parsed once). The limit and the decoders take
turns, run after run, and the best of ``--repeats`` runs of each is shown, in the process's
CPU time (time.process_time), so a busy machine's other work is counted as little as can be.
"decode/limit" is the limit's time over the decoder's: above 1, the decoder is the faster.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from receiver.batch import Batch
from receiver.firehose.records import SLICE_SAMPLES
from receiver.formats import SeriesCache, otel, otel07, otel10, walk
from receiver.formats.limits import latest_end_ms, now_ms
from receiver.model import Pairs
from receiver.server import gctune

from .bodies import MIB, Body, SampleSource, make_body, warmup_body
from .micro import limit_work

FLAVORS = {otel07.NAME: otel07.FLAVOR, otel10.NAME: otel10.FLAVOR}
Decode = Callable[..., object]


def decoders() -> dict[str, Decode]:
    found: dict[str, Decode] = {}
    if otel.compiled_fill is not None:
        found["compiled, batch"] = _into_batches(otel.compiled_fill)
    if otel.compiled_decode is not None:
        found["compiled"] = otel.compiled_decode
    found["careful walk"] = lambda data, extra, flavor, latest, *, cache: walk.walk(data, extra, flavor, latest, cache)
    return found


def _into_batches(fill: Callable[..., bool | None]) -> Decode:
    """``fill`` as a Decode: each record into the slice's batch, a new batch once a slice is
    full; the batch stands for the record's datapoints (its length: the slice's so far)."""
    state = {"batch": Batch(), "before": 0}

    def decode(data: bytes, extra: Pairs, flavor: walk.Flavor, latest: int, *, cache: SeriesCache) -> object:
        batch = state["batch"]
        if state["before"] >= SLICE_SAMPLES:
            batch = state["batch"] = Batch()
            state["before"] = 0
        if not fill(batch, data, extra, flavor, latest, cache=cache):
            return None
        size = len(batch)
        added, state["before"] = size - state["before"], size
        return range(added)

    return decode


def run(decode: Decode, body: Body, cache: SeriesCache, latest: int) -> Callable[[], object]:
    flavor = FLAVORS[body.fmt]

    def work() -> None:
        total = 0
        for record in body.records:
            got = decode(record, (), flavor, latest, cache=cache)
            if got is None:
                raise AssertionError("a benchmark record was declined")
            total += len(got)  # type: ignore[arg-type]
        if total != body.datapoints:
            raise AssertionError(f"decoded {total} datapoints of {body.datapoints}")

    return work


def cpu_seconds(work: Callable[[], object]) -> float:
    started = time.process_time()
    work()
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tables", type=int, default=1000)
    parser.add_argument("--mib", type=float, default=8.0)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    gctune.tune()  # as `receiver serve` does
    latest = latest_end_ms(now_ms())
    source = SampleSource(args.tables)
    found = decoders()
    print(f"the receiver runs: {otel.DECODER}")
    print(
        f"{'format':<18} {'decoder':<16} {'datapoints':>10} {'µs/dp seen':>11} {'µs/dp first':>12} {'decode/limit':>13}"
    )
    for fmt in FLAVORS:
        warm = warmup_body(source, fmt)
        body = make_body(source, fmt, int(args.mib * MIB))
        works: list[Callable[[], object]] = [limit_work(body)]
        for decode in found.values():
            cache = SeriesCache()
            run(decode, warm, cache, latest)()
            works.append(run(decode, body, cache, latest))
        best = [float("inf")] * len(works)
        for _ in range(args.repeats):
            for index, work in enumerate(works):
                best[index] = min(best[index], cpu_seconds(work))
        per_dp = 1e6 / body.datapoints
        print(f"{fmt:<18} {'limit (upb)':<16} {body.datapoints:>10} {best[0] * per_dp:>11.3f} {'':>12} {'':>13}")
        for (name, decode), seconds in zip(found.items(), best[1:]):
            first = cpu_seconds(run(decode, body, SeriesCache(), latest))
            print(
                f"{fmt:<18} {name:<16} {body.datapoints:>10} {seconds * per_dp:>11.3f} {first * per_dp:>12.3f} "
                f"{best[0] / seconds:>12.0%}"
            )


if __name__ == "__main__":
    main()
