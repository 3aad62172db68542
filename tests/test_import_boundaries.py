"""The architecture's import rules (a stage never imports a later one; stacks/ never imports the
receiver; receiver/ never imports receiver_tools), read from the source with ``ast``: each rule is one
named case, and the checker itself is proved on small sources so that each case can fail.

An import counts wherever it is written (a function's lazy import is a dependency too), except
for the rules marked ``at_import_time_only``: there only the imports that run when the module is
imported count (module level, class bodies, ``try``/``if`` blocks at module level; not inside a
function, not under ``if TYPE_CHECKING:``). ``receiver/`` never imports ``receiver_tools`` so, since
the command line loads the tools lazily when their commands run; views/ reads the objects the app
holds (``request.app[KEY]``) and may name their types, but never loads the stages that build them. The same rule is checked at run time below: building the
command line, and ``serve``, import no ``receiver_tools`` module.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True, slots=True)
class Import:
    module: str
    """The module imported, absolute (``from a import b`` gives ``a`` and ``a.b``: b may be a module)."""
    line: int
    at_import_time: bool
    """Runs when the importing module is imported: not inside a function, not under TYPE_CHECKING."""


def imports_of(source: str, module: str, *, is_package: bool = False) -> list[Import]:
    """Every import statement of ``source``, the source of ``module``."""
    package = module if is_package else module.rpartition(".")[0]
    found: list[Import] = []

    def visit(node: ast.AST, at_import_time: bool) -> None:
        if isinstance(node, ast.Import):
            found.extend(Import(alias.name, node.lineno, at_import_time) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.append(Import(base, node.lineno, at_import_time))
            found.extend(
                Import(f"{base}.{alias.name}", node.lineno, at_import_time) for alias in node.names if alias.name != "*"
            )
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            at_import_time = False
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, False)
            for child in node.orelse:
                visit(child, at_import_time)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, at_import_time)

    visit(ast.parse(source), True)
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes)


@dataclass(frozen=True, slots=True)
class Rule:
    importers: tuple[str, ...]
    """Modules (and their submodules) the rule holds for."""
    forbidden: tuple[str, ...]
    """Modules (and their submodules) they must not import."""
    at_import_time_only: bool = False
    """Only the imports that run when the importer is imported count."""
    exempt: tuple[str, ...] = ()
    """Modules (and their submodules) of ``importers`` the rule does not hold for."""

    def holds_for(self, module: str) -> bool:
        return _within(module, self.importers) and not _within(module, self.exempt)

    def violations(self, source: str, module: str, *, is_package: bool = False) -> list[str]:
        if not self.holds_for(module):
            return []
        found = [
            imported
            for imported in imports_of(source, module, is_package=is_package)
            if _within(imported.module, self.forbidden) and (imported.at_import_time or not self.at_import_time_only)
        ]
        # `from a import b` is read as both a and a.b: name the more precise one.
        return [
            f"{module}:{imported.line} imports {imported.module}"
            for imported in found
            if not any(
                other.line == imported.line and other.module.startswith(imported.module + ".") for other in found
            )
        ]


FIREHOSE = ("receiver.firehose", "receiver.server")
"""The HTTP endpoint: the firehose/ package (body, envelope, handler, records) and the server."""
SERVER = ("receiver.server", "receiver.cli")
"""The composition root (the app, its site and connections) and the command line that starts it."""

RULES = {
    "receiver_never_imports_receiver_tools_at_import_time": Rule(
        ("receiver",), ("receiver_tools",), at_import_time_only=True
    ),
    "stacks_never_import_the_receiver_or_its_tools": Rule(("stacks", "app"), ("receiver", "receiver_tools")),
    "formats_know_no_store_views_or_http_endpoint": Rule(
        ("receiver.formats",), ("receiver.store", "receiver.views", *FIREHOSE)
    ),
    "rules_know_no_store_and_no_http": Rule(
        ("receiver.rules",), ("receiver.store", "aiohttp", "receiver.views", *FIREHOSE)
    ),
    "store_knows_no_http_endpoint_views_or_alarms": Rule(
        ("receiver.store",), ("receiver.views", "receiver.alarms", *FIREHOSE)
    ),
    "alarms_and_exporters_never_import_views": Rule(("receiver.alarms", "receiver.exporters"), ("receiver.views",)),
    "inventory_knows_no_http_views_deriver_alarms_or_exporters": Rule(
        ("receiver.inventory",),
        ("aiohttp", "receiver.views", "receiver.derive", "receiver.alarms", "receiver.exporters", *FIREHOSE),
    ),
    "store_knows_no_inventory": Rule(("receiver.store",), ("receiver.inventory",)),
    "views_never_import_the_endpoint_server_or_formats_at_import_time": Rule(
        ("receiver.views",), ("receiver.firehose", "receiver.server", "receiver.formats"), at_import_time_only=True
    ),
    "only_the_server_and_the_cli_import_the_server": Rule(
        ("receiver", "receiver_tools"), ("receiver.server",), exempt=(*SERVER, "receiver.keys")
    ),
    "the_app_keys_name_the_server_for_type_checking_only": Rule(
        ("receiver.keys",), ("receiver.server",), at_import_time_only=True
    ),
}
"""Each rule of ARCHITECTURE.md's import rules that the code keeps today (alarm events are
plain records in receiver/model.py, so the store knows no alarms/, and so are inventory items,
so it knows no inventory/ either; views/ reads what the app
holds through receiver/keys.py, whose types are imported for type checking only)."""


def source_modules() -> Iterator[tuple[str, Path, bool]]:
    """(module, path, is_package) of the repository's Python source outside tests and tooling dirs."""
    for top in ("receiver", "receiver_tools", "stacks"):
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            is_package = parts[-1] == "__init__"
            yield ".".join(parts[:-1] if is_package else parts), path, is_package
    yield "app", ROOT / "app.py", False


@pytest.mark.parametrize("name", RULES)
def test_the_source_keeps_the_import_rule(name: str) -> None:
    rule = RULES[name]
    checked = 0
    violations: list[str] = []
    for module, path, is_package in source_modules():
        if rule.holds_for(module):
            checked += 1
            violations += rule.violations(path.read_text(encoding="utf-8"), module, is_package=is_package)
    assert checked, f"{name}: no module of {rule.importers} found"
    assert not violations, f"{name} broken:\n" + "\n".join(violations)


# ---- each rule can fail: a violating import in a small source of an importer ------------------

VIOLATING = {
    "receiver_never_imports_receiver_tools_at_import_time": [
        ("receiver.cli.quarantine", "from receiver_tools.emulator import FirehoseEmulator\n"),
        ("receiver.cli.quarantine", "import receiver_tools.replay\n"),
        ("receiver.views.api", "try:\n    from receiver_tools import demo\nexcept ImportError:\n    demo = None\n"),
        ("receiver.cli", "class Tools:\n    import receiver_tools\n"),
        ("receiver.cli", "from typing import TYPE_CHECKING\nif not TYPE_CHECKING:\n    import receiver_tools\n"),
    ],
    "stacks_never_import_the_receiver_or_its_tools": [
        ("stacks.service", "from receiver.config import ServeConfig\n"),
        ("stacks.service", "def port():\n    from receiver import server\n    return server.PORT\n"),
        ("app", "import receiver_tools.workload\n"),
    ],
    "formats_know_no_store_views_or_http_endpoint": [
        ("receiver.formats.otel", "from receiver.store import Store\n"),
        ("receiver.formats.otel", "from ..store.memory import MemoryStore\n"),
        ("receiver.formats", "from receiver.firehose import envelope\n"),
        ("receiver.formats.detect", "def f():\n    import receiver.views.api\n"),
        ("receiver.formats.jsonfmt", "from receiver.firehose.body import read_body\n"),
        ("receiver.formats.jsonfmt", "from receiver.firehose.handler import handle\n"),
        ("receiver.formats.jsonfmt", "from receiver.server import create_app\n"),
    ],
    "rules_know_no_store_and_no_http": [
        ("receiver.rules.evaluator", "import aiohttp.web\n"),
        ("receiver.rules.evaluator", "from aiohttp import web\n"),
        ("receiver.rules.loader", "from ..store.base import Store\n"),
        (
            "receiver.rules.holder",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from receiver.store import Store\n",
        ),
        ("receiver.rules", "from receiver.server import INGEST_PATH\n", True),
    ],
    "store_knows_no_http_endpoint_views_or_alarms": [
        ("receiver.store.sqlite.store", "from receiver.server import TELEMETRY\n"),
        ("receiver.store.memory", "from receiver.views import api\n"),
        ("receiver.store", "from ..firehose.envelope import EnvelopeError\n", True),
        ("receiver.store.sqlite.db", "from receiver.alarms.rules import AlarmRule\n"),
    ],
    "alarms_and_exporters_never_import_views": [
        ("receiver.alarms.metrics", "from receiver.views.prometheus import PREFIX, Family, Point\n"),
        ("receiver.exporters.otlp", "from receiver.views.prometheus import DEFAULT_SETTLE_S\n"),
        ("receiver.alarms.runtime", "def routes(app):\n    from ..views import alarms\n"),
        (
            "receiver.alarms",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from receiver.views import api\n",
            True,
        ),
    ],
    "inventory_knows_no_http_views_deriver_alarms_or_exporters": [
        ("receiver.inventory.poller", "from receiver.derive.deriver import MINUTE_MS\n"),
        ("receiver.inventory.tags", "from receiver.views.prometheus import label_name\n"),
        ("receiver.inventory.poller", "from aiohttp import web\n"),
        ("receiver.inventory.insights", "def notify():\n    from receiver.alarms import explain\n"),
        ("receiver.inventory", "from ..server.app import create_app\n", True),
    ],
    "store_knows_no_inventory": [
        ("receiver.store.dynamodb.inventory", "from receiver.inventory.documents import table_of\n"),
        ("receiver.store.memory", "from ..inventory import poller\n"),
    ],
    "views_never_import_the_endpoint_server_or_formats_at_import_time": [
        ("receiver.views.prometheus", "from receiver.firehose.body import InflightBudget\n"),
        ("receiver.views.prometheus", "from receiver.firehose.telemetry import Telemetry\n"),
        ("receiver.views.api", "from ..server.app import INGEST_PATH\n"),
        ("receiver.views.quarantine", "import receiver.formats\n"),
        ("receiver.views", "from . import dashboard\nfrom ..formats.errors import DecodeError\n", True),
    ],
    "only_the_server_and_the_cli_import_the_server": [
        ("receiver.views.api", "from receiver.server.app import INGEST_PATH\n"),
        ("receiver.firehose.handler", "def answer():\n    from receiver.server import connections\n"),
        (
            "receiver.alarms.runtime",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from receiver.server.app import InFlight\n",
        ),
        ("receiver", "from .server import app\n", True),
        ("receiver_tools.demo", "from receiver.server.app import create_app\n"),
    ],
    "the_app_keys_name_the_server_for_type_checking_only": [
        ("receiver.keys", "from receiver.server.app import InFlight\n"),
        (
            "receiver.keys",
            "from typing import TYPE_CHECKING\nif not TYPE_CHECKING:\n    from receiver.server import app\n",
        ),
    ],
}


def _violating_cases() -> Iterator[object]:
    for name, cases in VIOLATING.items():
        for module, source, *package in cases:
            yield pytest.param(
                name, module, source, bool(package), id=f"{name}-{module}-{source.splitlines()[-1].strip()}"
            )


@pytest.mark.parametrize(("name", "module", "source", "is_package"), list(_violating_cases()))
def test_each_rule_fails_on_a_violating_import(name: str, module: str, source: str, is_package: bool) -> None:
    assert RULES[name].violations(source, module, is_package=is_package)


ALLOWED = [
    # Lazy imports of the tools, where the receiver's command line has them.
    (
        "receiver_never_imports_receiver_tools_at_import_time",
        "receiver.cli.quarantine",
        "def main():\n    from receiver_tools.replay import target_config\n",
    ),
    (
        "receiver_never_imports_receiver_tools_at_import_time",
        "receiver.cli.quarantine",
        "async def replay():\n    import receiver_tools.emulator\n",
    ),
    (
        "receiver_never_imports_receiver_tools_at_import_time",
        "receiver.cli.quarantine",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from receiver_tools.emulator import EmulatorConfig\n",
    ),
    # Names that only share a prefix, and the stage's own neighbours.
    ("formats_know_no_store_views_or_http_endpoint", "receiver.formats.otel", "from receiver.storage import x\n"),
    ("formats_know_no_store_views_or_http_endpoint", "receiver.formats.otel", "from . import series\n"),
    ("formats_know_no_store_views_or_http_endpoint", "receiver.formats.otel", "from receiver.model import Sample\n"),
    ("rules_know_no_store_and_no_http", "receiver.rules.evaluator", "import aiohttp_cors_like\n"),
    ("stacks_never_import_the_receiver_or_its_tools", "stacks.service", "import receivers\n"),
    # The read side names the types of what the app holds, for type checking only.
    (
        "views_never_import_the_endpoint_server_or_formats_at_import_time",
        "receiver.views.prometheus",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from receiver.firehose.telemetry import Telemetry\n",
    ),
    (
        "views_never_import_the_endpoint_server_or_formats_at_import_time",
        "receiver.views.prometheus",
        "from receiver.keys import INGEST, TELEMETRY\nfrom receiver.store.base import StoreError\n",
    ),
    (
        "views_never_import_the_endpoint_server_or_formats_at_import_time",
        "receiver.views.api",
        "from receiver.errors import HttpError, Kind\n",
    ),
    (
        "alarms_and_exporters_never_import_views",
        "receiver.exporters.otlp",
        "from receiver.model import DEFAULT_SETTLE_S\n",
    ),
    ("alarms_and_exporters_never_import_views", "receiver.alarms.api", "from receiver.viewsets import x\n"),
    # The server and the command line import the server; so may the app's keys (the next rule
    # holds them to type checking).
    (
        "only_the_server_and_the_cli_import_the_server",
        "receiver.cli.serve",
        "def run():\n    from receiver.server.site import serve\n",
    ),
    (
        "only_the_server_and_the_cli_import_the_server",
        "receiver.server.site",
        "from receiver.server.app import create_app\n",
    ),
    ("only_the_server_and_the_cli_import_the_server", "receiver.keys", "from receiver.server.app import InFlight\n"),
    (
        "the_app_keys_name_the_server_for_type_checking_only",
        "receiver.keys",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from receiver.server.app import InFlight\n",
    ),
    ("only_the_server_and_the_cli_import_the_server", "receiver.views.api", "from receiver.serverless import x\n"),
]


@pytest.mark.parametrize(("name", "module", "source"), ALLOWED)
def test_a_rule_lets_pass_what_it_does_not_forbid(name: str, module: str, source: str) -> None:
    assert RULES[name].violations(source, module) == []


def test_relative_imports_resolve_from_their_package() -> None:
    found = {i.module for i in imports_of("from ..store import base\nfrom .x import y\n", "receiver.formats.otel")}
    assert {"receiver.store", "receiver.store.base", "receiver.formats.x", "receiver.formats.x.y"} <= found
    found = {i.module for i in imports_of("from . import otel\n", "receiver.formats", is_package=True)}
    assert "receiver.formats.otel" in found


# ---- at run time: the command line builds, and serve starts, without receiver_tools -------------

_PROBE = """
import sys
from receiver.cli import build_parser, main
parser = build_parser()
assert not [m for m, v in sys.modules.items() if v and m.split(".")[0] == "receiver_tools"], "build_parser"
for argv in ({argvs}):
    try:
        main(argv)
    except SystemExit:
        pass
print("tools imported:", sorted(m for m, v in sys.modules.items() if v and m.split(".")[0] == "receiver_tools"))
"""


def _tools_imported(*argvs: list[str], missing_tools: bool = False) -> tuple[str, str]:
    code = _PROBE.format(argvs=", ".join(repr(a) for a in argvs) + ",")
    if missing_tools:  # as in the container image, which leaves receiver_tools out
        code = "import sys; sys.modules['receiver_tools'] = None\n" + code
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.rpartition("tools imported: ")[2].strip(), done.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["serve", "--help"],
        ["check-rules", "--help"],
        ["--help"],
        ["quarantine", "--help"],
        ["quarantine", "list", "--help"],
        ["quarantine", "list", "--store", "memory://"],
    ],
    ids=" ".join,
)
def test_the_receiver_commands_import_no_tool(argv: list[str]) -> None:
    assert _tools_imported(argv)[0] == "[]"


@pytest.mark.parametrize(
    ("argv", "module"),
    [
        (["demo", "--help"], "receiver_tools.demo"),
        (["probe", "--help"], "receiver_tools.probe"),
        (["replay", "--help"], "receiver_tools.replay"),
        (["quarantine", "replay", "--help"], "receiver_tools.replay"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else v,
)
def test_a_tool_command_imports_its_tool(argv: list[str], module: str) -> None:
    assert module in _tools_imported(argv)[0]


@pytest.mark.parametrize(
    "argv", [["demo"], ["probe", "--help"], ["quarantine", "replay", "--to", "http://x/"]], ids=" ".join
)
def test_a_tool_command_without_the_tools_says_so_in_one_sentence(argv: list[str]) -> None:
    err = _tools_imported(argv, missing_tools=True)[1]
    assert "needs the receiver_tools package, which the container image leaves out" in err
    assert "Traceback" not in err
