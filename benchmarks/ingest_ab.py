"""Ingest end to end, one checkout against another, taking turns: ``python -m benchmarks.ingest_ab``.

The same distinct 0.7 bodies (plain, SQLite ``synchronous=FULL``, bodies past the minute
retention so the deriver leaves them alone) are sent to ``python -m receiver serve`` started
from each checkout in turn, round after round, so a busy spell of the shared machine falls
on both. Each round also parses the same records with upb (the limit) just before. Per run:
datapoints/s over the wall time, its share of the limit, the receiver's CPU per datapoint
(its process and children, from /proc, around the timed requests), the cores it kept busy
(that CPU over the wall time), its minor page faults per datapoint, and the senders' own CPU
per datapoint (this process, which shares the machine with the receiver); and the load
average. ``--senders`` sends from several connections at once.

    python -m benchmarks.ingest_ab --tree main=/tmp/main --tree this=. --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

from receiver.formats import FORMATS
from receiver.server.app import INGEST_PATH

from . import e2e, micro
from .bodies import MIB, OUTSIDE_RETENTION_MS, SampleSource, make_body, warmup_body, wire_request
from .processes import ROOT, Serve, cpu_seconds, minor_faults

_OTEL07 = FORMATS[0]


def _tree(text: str) -> tuple[str, Path, str]:
    """NAME=PATH[?QUERY]: a checkout, and a query for its SQLite store URL (``synchronous=normal``)."""
    name, _, rest = text.partition("=")
    path, _, query = rest.partition("?")
    if not path or not (Path(path) / "receiver" / "__main__.py").is_file():
        raise argparse.ArgumentTypeError(f"{text!r}: give NAME=PATH[?QUERY], PATH a checkout of this project")
    return name, Path(path).resolve(), f"?{query}" if query else ""


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ingest_ab", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--tree", type=_tree, action="append", help="NAME=PATH[?STORE_QUERY] (repeatable); default: this one"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=6, help="timed requests per sender and run")
    parser.add_argument("--senders", type=int, nargs="+", default=[1])
    parser.add_argument("--mib", type=float, default=5)
    parser.add_argument("--tables", type=int, default=2000)
    parser.add_argument("--gzip", action="store_true")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the receivers (repeatable)")
    return parser.parse_args(argv)


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main(argv: list[str] | None = None) -> None:
    args = _arguments(argv)
    trees = args.tree or [("this", ROOT, "")]
    env = dict(item.partition("=")[::2] for item in args.env)
    source = SampleSource(args.tables, OUTSIDE_RETENTION_MS)
    most = max(args.senders) * args.requests
    print(f"building {most + 1} distinct {args.mib:g} MiB 0.7 bodies", file=sys.stderr, flush=True)
    bodies = [make_body(source, _OTEL07, int(args.mib * MIB)) for _ in range(most)]
    warm = warmup_body(source, _OTEL07)
    limit_of = micro.limit_work(bodies[0])
    work = ROOT / "out" / "bench" / "work" / "ingest_ab"
    print("round tree senders dp/s limit% cpu_us/dp cores faults/dp sender_us/dp p50_s p99_s load", flush=True)
    for round_number in range(1, args.rounds + 1):
        for senders in args.senders:
            for name, path, query in trees:
                limit_dps = bodies[0].datapoints / micro.best_seconds(limit_of, 3)
                requests = [(*wire_request(body, args.gzip), body.datapoints) for body in bodies]
                warmup = (*wire_request(warm, args.gzip), warm.datapoints)
                split = [requests[i * args.requests : (i + 1) * args.requests] for i in range(senders)]
                load_before = _load()
                run, cpu_s, faults, sender_s = _measure(path, work / f"{name}.db", query, warmup, split, env)
                print(
                    f"{round_number} {name} {senders} {run.datapoints_per_s:,.0f} "
                    f"{run.datapoints_per_s / limit_dps:.1%} {cpu_s * 1e6 / run.datapoints:.2f} "
                    f"{cpu_s / run.seconds:.2f} "
                    f"{faults / run.datapoints:.3f} {sender_s * 1e6 / run.datapoints:.2f} "
                    f"{run.percentile_s(0.5):.3f} {run.percentile_s(0.99):.3f} "
                    f"{load_before}/{_load()}",
                    flush=True,
                )


def _measure(
    tree: Path,
    database: Path,
    query: str,
    warmup: e2e.Request,
    per_sender: list[list[e2e.Request]],
    env: dict[str, str],
) -> tuple[e2e.Run, float, int, float]:
    """(the run, the receiver's CPU seconds and minor faults over the timed requests, and this
    process's CPU seconds meanwhile)."""
    database.parent.mkdir(parents=True, exist_ok=True)
    for stale in database.parent.glob(database.name + "*"):
        stale.unlink()
    with Serve("ab", f"sqlite:///{database}{query}", root=tree, env=env) as receiver:
        url = receiver.base_url + INGEST_PATH

        async def both() -> tuple[e2e.Run, float, int, float]:
            await e2e._send(url, warmup, [])
            cpu_before, faults_before = cpu_seconds(receiver.pid), minor_faults(receiver.pid)
            sender_before = time.process_time()
            run = await e2e._send(url, None, per_sender)
            sender_s = time.process_time() - sender_before
            return run, cpu_seconds(receiver.pid) - cpu_before, minor_faults(receiver.pid) - faults_before, sender_s

        return asyncio.run(both())


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
