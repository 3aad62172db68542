"""What a rule says about one entity in one complete minute: pure functions, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from receiver.alarms.rules import AlarmRule
from receiver.model import FIRING, MINUTE_MS, RESOLVED, AlarmEvent

EntityValues = Mapping[str, Mapping[int, float]]
"""metric -> minute start -> the entity's value."""


@dataclass(frozen=True, slots=True)
class Reading:
    breaching: bool
    """Whether at least ``count`` of the ``period`` minutes ending at the minute breach."""
    value: float
    """For a breach, the latest breaching value; else the minute's value (0 when it has none)."""
    minutes: tuple[int, ...]
    """The minutes the reading speaks of: for a breach the breaching ones, else the minute itself
    (what an explanation reads, receiver/alarms/explain.py)."""


def read(rule: AlarmRule, values: EntityValues, minute_ms: int) -> Reading:
    """The rule's reading for one entity at ``minute_ms`` (minutes without a value never breach)."""

    def lookup(metric: str, at_ms: int) -> float | None:
        return values.get(metric, {}).get(at_ms)

    breaching: list[int] = []
    latest_breach: float | None = None
    for i in range(rule.period):
        at_ms = minute_ms - (rule.period - 1 - i) * MINUTE_MS
        value = rule.expression.evaluate(lookup, at_ms)
        if value is not None and rule.breaches(value):
            breaching.append(at_ms)
            latest_breach = value
    if len(breaching) >= rule.count and latest_breach is not None:
        return Reading(True, latest_breach, tuple(breaching))
    current = rule.expression.evaluate(lookup, minute_ms)
    return Reading(False, 0.0 if current is None else current, (minute_ms,))


def decide(
    rule: AlarmRule, minute_ms: int, reading: Reading, head: AlarmEvent | None, last_firing_ms: int | None
) -> str | None:
    """The event kind to write for this minute, or None.

    ``head`` is the entity's latest event of this rule, ``last_firing_ms`` the minute of its
    latest firing event. A minute at or before the head's is never decided again (so
    restarts and catching up repeat nothing). Breaching while off fires, unless a firing
    was sent less than the silence period ago; breaching while on sends a reminder once
    the silence period has passed (never with a silence period of 0); not breaching while
    on resolves.
    """
    if head is not None and head.minute_ms >= minute_ms:
        return None
    active = head is not None and head.kind == FIRING
    if not reading.breaching:
        return RESOLVED if active else None
    if active and rule.silence == 0:
        return None
    if last_firing_ms is not None and minute_ms - last_firing_ms < rule.silence * MINUTE_MS:
        return None
    return FIRING
