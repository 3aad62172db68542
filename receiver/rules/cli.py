"""``python -m receiver check-rules [DIR]``: the metrics a rules directory defines."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from receiver.rules.errors import RuleError
from receiver.rules.loader import load_rules


def default_rules_dir() -> Path:
    """The repository's ``rules/`` directory."""
    return Path(__file__).resolve().parents[2] / "rules"


def check_rules_main(
    directory: Path | None = None, out: TextIO | None = None, err: TextIO | None = None, alarms_dir: Path | None = None
) -> int:
    """Print the metrics ``directory`` defines (0), or its first error (1).

    With ``alarms_dir``, its alarm rules are checked too, against these metrics.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    directory = Path(directory) if directory is not None else default_rules_dir()
    try:
        rules = load_rules(directory)
    except RuleError as error:
        print(error, file=err)
        return 1
    metrics = rules.metrics
    rows = [(m.name, m.scope, m.layer, m.unit or "-") for m in metrics]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[3], file=out)
    print(f"{len(metrics)} metrics from {len(rules.files)} files in {directory}", file=out)
    if alarms_dir is not None:
        from receiver.alarms.loader import check_metrics, load_alarms

        try:
            alarms = load_alarms(alarms_dir)
            check_metrics(alarms, {m.name: m.scope for m in metrics})
        except RuleError as error:
            print(error, file=err)
            return 1
        print(f"{len(alarms)} alarm rules in {alarms_dir}", file=out)
    return 0
