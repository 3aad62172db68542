"""`python -m receiver quarantine list|replay`: the records set aside because they did not
decode, and their re-delivery once the receiver reads them (a fixed decoder or rule).

``replay`` sends the records to an ingest URL through the Firehose emulator, with the
common attributes their delivery had, and forgets each group of them once its deliveries
were answered 200. Records are read a few at a time: each may be a mebibyte. A record
that still does not decode is quarantined again by the receiver that takes it (under the
new request id), so nothing is lost either way.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from receiver import logs
from receiver.cli.lazy import LazyParser, import_tool
from receiver.model import Pairs, QuarantinedRecord
from receiver.store import Store, StoreConfigError, StoreError, open_store_from_url

if TYPE_CHECKING:
    from receiver_tools.emulator import EmulatorConfig

DEFAULT_STORE = "sqlite:///./data/metrics.db"
BATCH = 50
"""Records read from the store per round of a replay: up to 50 MiB of them."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION", parser_class=LazyParser)
    listing = actions.add_parser("list", help="print the quarantined records, oldest first")
    # The re-delivery options are replay's (receiver_tools), added only when `replay` is parsed.
    replaying = actions.add_parser(
        "replay",
        help="re-deliver the quarantined records to an ingest URL",
        configure=lambda p: import_tool(p, "replay").add_target_arguments(p),
    )
    for sub in (listing, replaying):
        sub.add_argument("--store", help=f"store URL (RECEIVER_STORE, default {DEFAULT_STORE})")
    listing.add_argument("--limit", type=int, default=100, help="print at most this many records (default 100)")


def main(args: argparse.Namespace) -> int:
    url = args.store or os.environ.get("RECEIVER_STORE") or DEFAULT_STORE
    if url.startswith("memory://"):
        print(
            "error: a memory:// store lives inside its receiver; list its quarantine with "
            "GET /api/v1/quarantine instead",
            file=sys.stderr,
        )
        return 2
    try:
        store = open_store_from_url(url)
        if args.action == "list":
            return asyncio.run(_list(store, args.limit))
        from receiver_tools.replay import target_config

        config = target_config(args, "receiver-quarantine-replay")
        logs.configure("WARNING")  # failed attempts and their retries show as they happen
        report = asyncio.run(_replay(store, config))
    except (StoreConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except StoreError as exc:
        print(f"error: the store cannot be read: {exc}", file=sys.stderr)
        return 1
    print(f"re-delivered and forgot {report.delivered} quarantined records; {report.failed} not delivered")
    return 0 if not report.failed else 1


async def _replay(store: Store, config: EmulatorConfig) -> ReplayReport:
    await store.open()
    try:
        return await replay(store, config, progress=lambda line: print(line, file=sys.stderr))
    finally:
        await store.close()


async def _list(store: Store, limit: int) -> int:
    await store.open()
    try:
        records = await store.quarantined(limit)
        total = await store.count_quarantined()
    finally:
        await store.close()
    print(f"{total} quarantined records" + (f", the oldest {len(records)} shown" if total > len(records) else ""))
    for record in records:
        received = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.received_ms / 1000))
        print(
            f"{received}  {record.request_id}  record {record.index}  {record.reason}  "
            f"{len(record.data)} bytes  {record.detail}"
        )
    return 0


@dataclass(slots=True)
class ReplayReport:
    delivered: int = 0
    """Records delivered (answered 200) and so forgotten."""
    failed: int = 0
    """Records of the group whose delivery failed; the replay stops there."""


async def replay(
    store: Store, config: EmulatorConfig, *, progress: Callable[[str], None] = lambda _: None
) -> ReplayReport:
    """Send every quarantined record to ``config.url`` and forget those delivered.

    Records are sent in groups sharing their common attributes, one emulated Firehose
    stream per group (which retries as Firehose does). A group whose deliveries all got 200
    is forgotten; at the first that failed the replay stops, and it stays quarantined.
    """
    from receiver_tools.emulator import FirehoseEmulator

    report = ReplayReport()
    # Only what was quarantined before the replay began: a record that still does not
    # decode comes back under a new request id, and must not be sent round again.
    began_ms = int(time.time() * 1000)
    while True:
        # Delivered records are forgotten, so each round reads the oldest left.
        batch = [r for r in await store.quarantined(BATCH) if r.received_ms < began_ms]
        if not batch:
            return report
        for labels, group in _by_labels(batch).items():
            async with FirehoseEmulator(replace(config, common_attributes=labels)) as stream:
                await stream.put_records([record.data for record in group])
            if not all(result.outcome == "delivered" for result in stream.results):
                report.failed += len(group)
                progress(f"{len(group)} records with common attributes {dict(labels)}: not delivered; stopping")
                return report
            await store.delete_quarantined([record.key for record in group])
            report.delivered += len(group)
            progress(f"{len(group)} records with common attributes {dict(labels)}: delivered")


def _by_labels(records: list[QuarantinedRecord]) -> dict[Pairs, list[QuarantinedRecord]]:
    groups: dict[Pairs, list[QuarantinedRecord]] = {}
    for record in records:
        groups.setdefault(record.labels, []).append(record)
    return groups
