"""The receiver's command line, ``python -m receiver COMMAND``.

``serve``, ``check-rules`` and ``quarantine`` are the receiver's; ``demo``, ``probe`` and ``replay``
are tools from ``receiver_tools`` (not in the container image), imported only when their command
runs: a command's arguments are added when it is parsed (``receiver.cli.lazy.LazyParser``).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path

from receiver.cli.lazy import LazyParser, import_tool
from receiver.config import add_serve_arguments

TOOLS = {
    "demo": "run the receiver fed by an emulated DynamoDB metric stream (make demo)",
    "probe": "check an ingest endpoint against the Firehose spec",
    "replay": "re-deliver Firehose S3 error output or backups (a folder or s3://bucket/prefix)",
}
"""The commands of ``receiver_tools``: each is its module there, with ``add_arguments`` and ``main``."""


def build_parser() -> argparse.ArgumentParser:
    """The command line; it imports no command's module until that command is parsed."""
    parser = argparse.ArgumentParser(
        prog="python -m receiver",
        description="Receives CloudWatch metric streams from Amazon Data Firehose.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=LazyParser)
    commands.add_parser("serve", help="run the receiver", configure=add_serve_arguments)
    commands.add_parser(
        "check-rules",
        help="parse and check rule files, print the metrics they define",
        configure=_check_rules_arguments,
    )
    for name, help_text in TOOLS.items():
        commands.add_parser(name, help=help_text, configure=_tool_arguments(name))
    commands.add_parser(
        "quarantine",
        help="list the records set aside as undecodable, or re-deliver them (list, replay)",
        configure=_quarantine_arguments,
    )
    return parser


def _check_rules_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", nargs="?", help="rules directory (default: the repository's rules/)")
    parser.add_argument(
        "--alarms",
        metavar="DIR",
        help="check this alarm rules directory too (default: the repository's alarms/ when DIR is not given)",
    )


def _tool_arguments(name: str) -> Callable[[argparse.ArgumentParser], None]:
    def configure(parser: argparse.ArgumentParser) -> None:
        import_tool(parser, name).add_arguments(parser)

    return configure


def _quarantine_arguments(parser: argparse.ArgumentParser) -> None:
    from receiver.cli import quarantine

    quarantine.add_arguments(parser)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)

    if args.command == "serve":
        from receiver.cli.serve import serve_command

        return serve_command(args)
    if args.command == "check-rules":
        from receiver.alarms.loader import default_alarms_dir
        from receiver.rules import check_rules_main

        alarms = Path(args.alarms) if args.alarms else (None if args.directory else default_alarms_dir())
        return check_rules_main(Path(args.directory) if args.directory else None, alarms_dir=alarms)
    if args.command in TOOLS:
        tool_main: Callable[[argparse.Namespace], int] = import_tool(parser, args.command).main
        return tool_main(args)
    if args.command == "quarantine":
        from receiver.cli import quarantine

        return quarantine.main(args)
    parser.error(f"unknown command {args.command}")
