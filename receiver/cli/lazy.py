"""Command-line parts shared by ``python -m receiver`` and its commands.

A command's arguments are added to its parser only when that command is parsed, so building the
command line imports no command module; in particular the tool commands (demo, probe, replay,
``quarantine replay``) import ``receiver_tools`` only when they run, and ``serve`` never does.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

Configure = Callable[[argparse.ArgumentParser], None]


class LazyParser(argparse.ArgumentParser):
    """A (sub)command parser whose arguments ``configure`` adds when it first parses.

    argparse hands a subcommand's own arguments to that subcommand's ``parse_known_args``, so
    the parsers of the commands not given are never configured; ``--help`` of the command line
    lists them by their ``help`` alone.
    """

    def __init__(self, *args: Any, configure: Configure | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._configure = configure

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        if self._configure is not None:
            configure, self._configure = self._configure, None
            configure(self)
        return super().parse_known_args(args, namespace)


def import_tool(parser: argparse.ArgumentParser, name: str) -> ModuleType:
    """``receiver_tools.<name>``; a usage error when the package is absent (the container image)."""
    try:
        return importlib.import_module(f"receiver_tools.{name}")
    except ModuleNotFoundError as exc:
        if exc.name not in ("receiver_tools", f"receiver_tools.{name}"):
            raise
        parser.error(
            "this command needs the receiver_tools package, which the container image leaves out: "
            "run it from a checkout of the repository (.venv/bin/python -m receiver ...)"
        )
        raise  # parser.error exits
