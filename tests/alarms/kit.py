"""Helpers for the alarm tests: rules from YAML text, minutes of derived values, a clock."""

from __future__ import annotations

import itertools
import textwrap
from pathlib import Path

from receiver.alarms.counters import AlarmCounters
from receiver.alarms.evaluator import AlarmEvaluator
from receiver.alarms.loader import load_alarm_file
from receiver.alarms.notifier import Notifier
from receiver.alarms.rules import AlarmRule
from receiver.model import MINUTE_MS, DerivedValue
from receiver.store.base import Store

SERVICE = "aws-dynamodb::123456789012"
M0 = 1_700_000_040_000  # a minute boundary
METRIC = "aws_dynamodb_endpoint_write_throttled_requests"

_versions = itertools.count(1)


def minute(i: int) -> int:
    return M0 + i * MINUTE_MS


def rule(tmp_path: Path, body: str, name: str = "throttled") -> AlarmRule:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"rules:\n  {name}:\n" + textwrap.indent(textwrap.dedent(body), "    "))
    (loaded,) = load_alarm_file(path)
    return loaded


async def put_minute(store: Store, i: int, tables: dict[str, float], metric: str = METRIC) -> None:
    """Store the minute's values of ``metric`` per table (replacing the minute's values)."""
    await put_metrics(store, i, {metric: tables})


async def put_metrics(store: Store, i: int, metrics: dict[str, dict[str, float]]) -> None:
    """Store the minute's values, metric -> table -> value (replacing the minute's values)."""
    values = [
        DerivedValue(metric, "endpoint", SERVICE, table, "AWS_DYNAMODB", minute(i), value)
        for metric, tables in metrics.items()
        for table, value in tables.items()
    ]
    assert await store.put_derived(MINUTE_MS, minute(i), next(_versions), values)


class Clock:
    """Stands at the moment minute ``i`` just became complete (settle 0)."""

    def __init__(self) -> None:
        self.now = minute(0) / 1000

    def __call__(self) -> float:
        return self.now

    def at(self, i: int) -> None:
        self.now = (minute(i) + MINUTE_MS) / 1000


def evaluator(store: Store, rules: list[AlarmRule], clock: Clock, catch_up: int = 0) -> AlarmEvaluator:
    counters = AlarmCounters()
    return AlarmEvaluator(
        store, rules, Notifier([], counters), counters, settle_s=0, catch_up_minutes=catch_up, clock=clock
    )
