"""Counts of alarm events and notification deliveries, for /metrics.

Incremented on the event loop's thread only (the evaluator and the notifier run there),
so plain dicts need no lock. Each replica counts the events it won and the deliveries it
made, so summing over replicas gives the totals.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AlarmCountsSnapshot:
    fired: tuple[tuple[str, int], ...]
    """(rule, firing notifications: starts and reminders), by rule."""
    resolved: tuple[tuple[str, int], ...]
    notifications: tuple[tuple[str, str, int], ...]
    """(channel, outcome 'delivered' or 'failed', count)."""


class AlarmCounters:
    def __init__(self) -> None:
        self._fired: Counter[str] = Counter()
        self._resolved: Counter[str] = Counter()
        self._notifications: Counter[tuple[str, str]] = Counter()

    def event(self, rule: str, kind: str) -> None:
        (self._fired if kind == "firing" else self._resolved)[rule] += 1

    def delivery(self, channel: str, delivered: bool) -> None:
        self._notifications[(channel, "delivered" if delivered else "failed")] += 1

    def snapshot(self) -> AlarmCountsSnapshot:
        return AlarmCountsSnapshot(
            fired=tuple(sorted(self._fired.items())),
            resolved=tuple(sorted(self._resolved.items())),
            notifications=tuple(sorted((c, o, n) for (c, o), n in self._notifications.items())),
        )
