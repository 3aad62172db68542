"""What the DynamoDB store costs, measured on dynalite: the writes of ingest and of the deriver
as they run in the receiver, and the reads of the query API's common requests.

**Writes.** The store (on dynalite, an independent DynamoDB server from npm) commits minutes
of the seeded workload as Firehose delivers them: in deliveries of 1 MiB of 0.7 records (the
CDK stack's buffering size), each a commit. After each commit the receiver's deriver runs a
pass, as it does in the receiver (no rest between passes): the minutes the delivery touched,
a partition at a time, and after a minute's last delivery an hour pass (the receiver runs one
a minute), which stores the open hour at its first pass and then every
``open_hour_interval_s`` (the deriver's clock follows the minutes streamed: each minute is
delivered as it ends). Every write is counted in write request units
(receiver_tools/write_units.py): as dynalite reports them (``ReturnConsumedCapacity``) and as
computed from the items by DynamoDB's size rules, by kind of item and by who wrote it
(ingest: blocks, catalog items, version bumps, request ids; the deriver: derived values,
bucket pointers, entities, catalog, leases). Writes per datapoint divide by the datapoints
streamed. A *steady minute* is the mean of the minutes after the first (the first also writes
the catalogs and stores the hour whole), which must span whole intervals of the open hour's
stores to count them fairly (``steady_minutes``). Dollars per table-month take the steady
minute at on-demand pricing: $0.625 per million write request units (us-east-1), 730 hours a
month.

**Reads.** Then the reads the API makes most, each counted in read request units
(receiver_tools/read_units.py; strongly consistent, 4 KB a unit): one table's metric over
an hour of minutes (``/api/v1/query``), every table's metric reduced over the last minute and
over the hour (``/api/v1/summary``'s ``Store.endpoint_totals``, one of its ten metrics), and
every value of the last minute (the Prometheus exposition's ``Store.bucket_values``). The
hour holds the minutes streamed, so its reads are given per minute too.
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

from receiver.config import REPOSITORY_RULES
from receiver.derive.deriver import OPEN_HOUR_INTERVAL_S, Deriver
from receiver.formats import encode_records
from receiver.model import HOUR_MS, MINUTE_MS, PERIOD_MS, Sample
from receiver.rules import RuleHolder, load_rules
from receiver.store.base import DEFAULT_MINUTE_RETENTION_DAYS
from receiver.store.dynamodb import DynamoDBStore
from receiver_tools.read_units import ReadUnits
from receiver_tools.workload import DEFAULT_ACCOUNT, Workload
from receiver_tools.write_units import WriteUnits

from .bodies import MIB, RECENT_MS, RECORD_BYTES, bench_tables

PRICE_PER_MILLION_WRU = 0.625
"""DynamoDB on-demand, us-east-1: US$ per million write request units."""
PRICE_PER_MILLION_RRU = 0.125
"""DynamoDB on-demand, us-east-1: US$ per million read request units."""
MINUTES_PER_MONTH = 730 * 60
WRITES_PER_DATAPOINT_TARGET = 0.05
DYNALITE = Path(__file__).resolve().parents[1] / "node_modules" / ".bin" / "dynalite"
DELIVERY_BYTES = MIB
"""Firehose's buffering size in the CDK stack (bufferingSizeMiB=1)."""
SERVICE = f"aws-dynamodb::{DEFAULT_ACCOUNT}"
READ_METRIC = "aws_dynamodb_endpoint_consumed_read_capacity_units"
"""The metric the reads ask for: one of the summary's, with a value for every table and index."""
READ_TABLE = "table-00000"
ENTITY_STRIDE_MINUTES = 60
"""How often an entity's item is written, in minutes (entities.py's stride)."""
PHASES = ("ingest", "deriver")
STEADY_KINDS = ("minute values", "hour values")
"""The deriver's kinds of items whose steady minute the report gives on their own."""


def steady_minutes(open_hour_interval_s: float = OPEN_HOUR_INTERVAL_S) -> int:
    """The minutes to stream for a fair steady minute: the first, then one whole interval of
    the open hour's stores (each interval ends with one)."""
    return 1 + max(1, round(open_hour_interval_s / 60))


def dynamodb_cost(tables: int, minutes: int, open_hour_interval_s: float = OPEN_HOUR_INTERVAL_S) -> dict[str, Any]:
    """The DynamoDB store's writes and reads streaming ``minutes`` of ``tables`` tables, the
    deriver storing an open hour every ``open_hour_interval_s`` (0: at every hour pass)."""
    workload = Workload(seed=7, tables=bench_tables(tables), pipeline=False)
    first = RECENT_MS - RECENT_MS % HOUR_MS  # the minutes share one hour, as most minutes do
    samples = [workload.minute(first + index * PERIOD_MS) for index in range(minutes)]
    per_point = sum(map(len, encode_records(samples[0], "opentelemetry0.7", max_record_bytes=RECORD_BYTES)))
    per_delivery = max(1, int(DELIVERY_BYTES / (per_point / len(samples[0]))))
    with _dynalite() as endpoint:
        cost = asyncio.run(_stream(samples, per_delivery, endpoint, tables, open_hour_interval_s))
    return cost | {"open_hour_interval_s": open_hour_interval_s, "steady_minutes": steady_minutes(open_hour_interval_s)}


async def _stream(
    minutes: list[list[Sample]], per_delivery: int, endpoint: str, tables: int, open_hour_interval_s: float
) -> dict[str, Any]:
    store = DynamoDBStore("bench-cost", region="us-east-1", endpoint_url=endpoint, create=True)
    await store.open()
    rules = load_rules(REPOSITORY_RULES)
    now_s = [0.0]  # the deriver's clock: the end of the minute being delivered
    deriver = Deriver(
        store,
        RuleHolder(REPOSITORY_RULES, rules),
        minute_retention_days=DEFAULT_MINUTE_RETENTION_DAYS,
        open_hour_interval_s=open_hour_interval_s,
        clock=lambda: now_s[0],
    )
    try:
        meter = WriteUnits(store.client)
        reported: dict[str, Counter[str]] = {phase: Counter() for phase in PHASES}
        computed: dict[str, Counter[str]] = {phase: Counter() for phase in PHASES}
        items: dict[str, Counter[str]] = {phase: Counter() for phase in PHASES}
        by_minute: list[dict[str, float]] = []
        commits = passes = 0
        derive_s = 0.0

        async def counted(phase: str, work: Any) -> None:
            before = (Counter(meter.reported), Counter(meter.computed), Counter(meter.items))
            await work
            reported[phase].update(meter.reported - before[0])
            computed[phase].update(meter.computed - before[1])
            items[phase].update(meter.items - before[2])

        for index, minute in enumerate(minutes):
            now_s[0] = (minute[0].start_ms - minute[0].start_ms % MINUTE_MS + MINUTE_MS) / 1000
            before_minute = {phase: sum(reported[phase].values()) for phase in PHASES}
            before_entities = reported["deriver"]["entities"]
            before_kinds = Counter(reported["deriver"])
            for offset in range(0, len(minute), per_delivery):
                delivery = minute[offset : offset + per_delivery]
                await counted("ingest", store.commit(f"bench-{index}-{offset}", delivery))
                commits += 1
                deriver.touch(delivery)
                started = time.perf_counter()
                await counted("deriver", deriver.derive_pending(hours=False))
                if offset + per_delivery >= len(minute):
                    await counted("deriver", deriver.derive_hours())  # the receiver's pass once a minute
                derive_s += time.perf_counter() - started
                passes += 1
            by_minute.append({phase: sum(reported[phase].values()) - before_minute[phase] for phase in PHASES})
            by_minute[-1]["entities"] = reported["deriver"]["entities"] - before_entities
            for kind in STEADY_KINDS:
                by_minute[-1][kind] = reported["deriver"][kind] - before_kinds[kind]
        reads = await _reads(store, minutes)
    finally:
        deriver.evaluator.close()
        await store.close()
    datapoints = sum(map(len, minutes))
    # The minutes after the first, which also writes the catalogs and every entity's item.
    # Entity items are written once an hour (receiver/store/dynamodb/entities.py): what the
    # first minute wrote of them beyond a later minute comes back in 60ths, so a steady
    # minute is a minute of a whole hour.
    steady = by_minute[1:] or by_minute
    steady_phase = {phase: statistics.mean(m[phase] for m in steady) for phase in PHASES}
    later_entities = statistics.mean(m["entities"] for m in steady)
    steady_phase["deriver"] += max(0.0, by_minute[0]["entities"] - later_entities) / ENTITY_STRIDE_MINUTES
    per_minute = sum(steady_phase.values())
    steady_kinds = {kind: statistics.mean(m[kind] for m in steady) for kind in STEADY_KINDS}
    per_minute_datapoints = statistics.mean(map(len, minutes[1:] or minutes))
    totals = {phase: sum(reported[phase].values()) for phase in PHASES}
    return {
        "tables": tables,
        "minutes": len(minutes),
        "datapoints": datapoints,
        "datapoints_per_delivery": per_delivery,
        "commits": commits,
        "passes": passes,
        "derive_s": derive_s,
        "reported": {phase: dict(counts) for phase, counts in reported.items()},
        "computed": {phase: dict(counts) for phase, counts in computed.items()},
        "items": {phase: dict(counts) for phase, counts in items.items()},
        "writes_per_datapoint": sum(totals.values()) / datapoints,
        "sample_writes_per_datapoint": totals["ingest"] / datapoints,
        "derived_writes_per_datapoint": totals["deriver"] / datapoints,
        "steady_sample_writes_per_datapoint": steady_phase["ingest"] / per_minute_datapoints,
        "steady_derived_writes_per_datapoint": steady_phase["deriver"] / per_minute_datapoints,
        "steady_writes_per_datapoint": per_minute / per_minute_datapoints,
        "steady_kind_writes_per_datapoint": {
            kind: units / per_minute_datapoints for kind, units in steady_kinds.items()
        },
        "units_per_minute": per_minute,
        "dollars_per_table_month": per_minute / tables * MINUTES_PER_MONTH * PRICE_PER_MILLION_WRU / 1e6,
        "reads": reads,
    }


async def _reads(store: DynamoDBStore, minutes: list[list[Sample]]) -> list[dict[str, Any]]:
    """The read request units of the API's common reads (see the module docstring)."""
    first = minutes[0][0].start_ms - minutes[0][0].start_ms % MINUTE_MS
    last = first + (len(minutes) - 1) * MINUTE_MS
    hour = (last - 59 * MINUTE_MS, last)
    requests: list[tuple[str, Any]] = [
        (
            f"one table's metric over an hour ({len(minutes)} minutes with values)",
            lambda: store.derived(READ_METRIC, MINUTE_MS, *hour, service=SERVICE, endpoint=READ_TABLE),
        ),
        (
            "every table's metric, the last minute (summary, one of its metrics)",
            lambda: store.endpoint_totals(READ_METRIC, MINUTE_MS, last, last, service=SERVICE),
        ),
        (
            f"every table's metric over an hour ({len(minutes)} minutes; summary)",
            lambda: store.endpoint_totals(READ_METRIC, MINUTE_MS, *hour, service=SERVICE),
        ),
        ("every value of the last minute (Prometheus exposition)", lambda: store.bucket_values(MINUTE_MS, last)),
    ]
    found = []
    for name, read in requests:
        meter = ReadUnits(store.client)
        started = time.perf_counter()
        answer = await read()
        elapsed = time.perf_counter() - started
        found.append(
            {"read": name, "units": meter.units, "calls": meter.calls, "answered": len(answer), "seconds": elapsed}
        )
    return found


class _dynalite:
    """A dynalite server on a free loopback port, in memory, for the ``with`` block."""

    def __enter__(self) -> str:
        if not DYNALITE.exists():
            raise RuntimeError(f"dynalite is not installed at {DYNALITE}; run make setup (npm ci)")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self._server = subprocess.Popen(
            [DYNALITE, "--host", "127.0.0.1", "--port", str(port), "--createTableMs", "10"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._saved = {name: os.environ.get(name) for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
        os.environ["AWS_ACCESS_KEY_ID"] = os.environ["AWS_SECRET_ACCESS_KEY"] = "dynalite"
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return f"http://127.0.0.1:{port}"
            except OSError:
                if self._server.poll() is not None or time.monotonic() > deadline:
                    self.__exit__()
                    raise RuntimeError(f"dynalite did not start on port {port}") from None
                time.sleep(0.05)

    def __exit__(self, *_: object) -> None:
        self._server.terminate()
        self._server.wait(10)
        for name, value in self._saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# -- the report -----------------------------------------------------------------------------


def report(cost: dict[str, Any], table: Any) -> list[str]:
    """The printed tables: ``table(headers, rows)`` is run.py's."""
    datapoints = cost["datapoints"]
    parts = [
        f"\nDynamoDB store on dynalite ({cost['tables']} tables, {cost['minutes']} minutes, {datapoints:,} "
        f"datapoints in {cost['commits']} commits of ~{cost['datapoints_per_delivery']:,} (1 MiB of 0.7 "
        f"records), the deriver's pass after each ({cost['derive_s']:.0f} s in all), an open hour stored every "
        f"{cost['open_hour_interval_s']:.0f} s; write request units)"
    ]
    if cost["minutes"] < cost["steady_minutes"]:
        parts.append(
            f"(fewer than {cost['steady_minutes']} minutes: the steady minute leaves out the open hour's next store)"
        )
    rows = []
    for phase in PHASES:
        reported, computed, items = cost["reported"][phase], cost["computed"][phase], cost["items"][phase]
        for kind in sorted(set(reported) | set(computed)):
            rows.append(
                [
                    phase,
                    kind,
                    f"{items.get(kind, 0):,}",
                    f"{reported.get(kind, 0):,.0f}",
                    f"{computed.get(kind, 0):,.0f}",
                    f"{reported.get(kind, 0) / datapoints:.4f}",
                ]
            )
    parts.append(table(["writer", "items", "written", "WRU (dynalite)", "WRU (item sizes)", "per datapoint"], rows))
    parts.append(
        f"writes per datapoint, all {cost['minutes']} minutes: samples (ingest) "
        f"{cost['sample_writes_per_datapoint']:.4f}, derived values (the deriver) "
        f"{cost['derived_writes_per_datapoint']:.4f}, everything {cost['writes_per_datapoint']:.4f}\n"
        f"a steady minute (those after the first; entity items once an hour): samples "
        f"{cost['steady_sample_writes_per_datapoint']:.4f}, derived {cost['steady_derived_writes_per_datapoint']:.4f}, "
        f"everything {cost['steady_writes_per_datapoint']:.4f} ("
        + ", ".join(f"{kind} {units:.4f}" for kind, units in cost["steady_kind_writes_per_datapoint"].items())
        + f"); {cost['units_per_minute']:,.0f} WRU a minute, "
        f"${cost['dollars_per_table_month']:.4f} per table-month at ${PRICE_PER_MILLION_WRU} per million WRU"
    )
    parts.append(
        table(
            ["read", "RRU", "calls", "values", "ms"],
            [
                [
                    read["read"],
                    f"{read['units']:,.1f}",
                    str(read["calls"]),
                    f"{read['answered']:,}",
                    f"{read['seconds'] * 1000:.0f}",
                ]
                for read in cost["reads"]
            ],
        )
    )
    return parts


def target(cost: dict[str, Any]) -> tuple[str, str, bool]:
    """(target, figure, met) for run.py's target table."""
    return (
        f"DynamoDB store <= {WRITES_PER_DATAPOINT_TARGET} writes per datapoint, deriver included "
        f"({cost['tables']} tables, a steady minute)",
        f"{cost['steady_writes_per_datapoint']:.4f} (samples {cost['steady_sample_writes_per_datapoint']:.4f}, "
        f"derived {cost['steady_derived_writes_per_datapoint']:.4f}; all {cost['minutes']} minutes "
        f"{cost['writes_per_datapoint']:.4f}; ${cost['dollars_per_table_month']:.4f} per table-month"
        + ("; too few minutes for the open hour's next store)" if cost["minutes"] < cost["steady_minutes"] else ")"),
        cost["steady_writes_per_datapoint"] <= WRITES_PER_DATAPOINT_TARGET,
    )


def main() -> None:
    """``python -m benchmarks.dynamodb_cost [TABLES [MINUTES [OPEN_HOUR_INTERVAL_S]]]``: this
    measurement alone (by default 2,000 tables, ``steady_minutes()``, the deriver's interval)."""
    import sys

    from .run import table

    defaults = ["2000", "0", str(OPEN_HOUR_INTERVAL_S)]
    tables, minutes, interval_s = (float(arg) for arg in [*sys.argv[1:4], *defaults[len(sys.argv[1:4]) :]])
    cost = dynamodb_cost(int(tables), int(minutes) or steady_minutes(interval_s), interval_s)
    print("\n".join(report(cost, table)))
    print("{}: {} ({})".format(*target(cost)[:2], "met" if target(cost)[2] else "missed"))


if __name__ == "__main__":
    main()
