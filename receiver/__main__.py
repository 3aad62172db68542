"""`python -m receiver COMMAND`: the receiver's command line."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from receiver import logs
from receiver.config import ConfigError, add_serve_arguments, serve_config
from receiver.store import StoreConfigError, StoreError, open_store_from_url


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m receiver",
        description="Receives CloudWatch metric streams from Amazon Data Firehose.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve_parser = commands.add_parser("serve", help="run the receiver")
    add_serve_arguments(serve_parser)
    check_parser = commands.add_parser(
        "check-rules", help="parse and check rule files, print the metrics they define"
    )
    check_parser.add_argument("directory", nargs="?", help="rules directory (default: the repository's rules/)")
    check_parser.add_argument(
        "--alarms", metavar="DIR",
        help="check this alarm rules directory too (default: the repository's alarms/ when DIR is not given)")
    from receiver import demo, probe, quarantine, replay

    demo.add_arguments(commands.add_parser(
        "demo", help="run the receiver fed by an emulated DynamoDB metric stream (make demo)"))
    probe.add_arguments(commands.add_parser(
        "probe", help="check an ingest endpoint against the Firehose spec"))
    replay.add_arguments(commands.add_parser(
        "replay", help="re-deliver Firehose S3 error output or backups (a folder or s3://bucket/prefix)"))
    quarantine.add_arguments(commands.add_parser(
        "quarantine", help="list the records set aside as undecodable, or re-deliver them (list, replay)"))
    args = parser.parse_args(argv)

    if args.command == "serve":
        return _serve(args)
    if args.command == "check-rules":
        from receiver.rules import check_rules_main

        from receiver.alarms.loader import default_alarms_dir

        alarms = Path(args.alarms) if args.alarms else (None if args.directory else default_alarms_dir())
        return check_rules_main(Path(args.directory) if args.directory else None, alarms_dir=alarms)
    if args.command in ("demo", "probe", "replay", "quarantine"):
        mains = {"demo": demo.main, "probe": probe.main, "replay": replay.main, "quarantine": quarantine.main}
        return mains[args.command](args)
    parser.error(f"unknown command {args.command}")
    return 2


def _serve(args: argparse.Namespace) -> int:
    from receiver import gctune
    from receiver.server import serve

    gctune.tune()
    try:
        config = serve_config(args)
        logs.configure(config.log_level)
        options: dict[str, object] = {
            "minute_retention_days": config.minute_retention_days,
            "hour_retention_days": config.hour_retention_days,
        }
        if config.create_store and config.store_url.startswith("dynamodb://"):
            options["create"] = True
        store = open_store_from_url(config.store_url, **options)
        asyncio.run(serve(config, store))
    except (ConfigError, StoreConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except StoreError as exc:
        print(f"error: the store cannot be opened: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
