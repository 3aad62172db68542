"""What the store keeps of alarms: one event per notification, numbered per (rule, entity).

An alarm's history is the chain of its events: seq 1, 2, 3 ... for one rule and one entity.
A replica that decides to notify writes the next number with an insert-if-absent; when two
replicas decide the same thing from the same history, they race for the same number and
only the winner notifies. So each firing is sent once however many replicas evaluate it.
"""

from __future__ import annotations

from dataclasses import dataclass

FIRING = "firing"
RESOLVED = "resolved"
KINDS = (FIRING, RESOLVED)


@dataclass(frozen=True, slots=True)
class AlarmEvent:
    """One notification of one rule for one entity."""

    rule: str
    service: str
    endpoint: str | None
    """The endpoint for an endpoint-scope rule, else None."""
    seq: int
    """1 for the entity's first event of this rule, then one more per event."""
    kind: str
    """``firing`` (the alarm started, or a reminder after its silence period) or ``resolved``."""
    minute_ms: int
    """Start of the complete minute whose evaluation produced the event."""
    value: float
    """The rule's value in that minute (NaN-free; 0 when the minute had no value)."""
    threshold: float
    message: str
    created_ms: int
    """When the event was written (epoch milliseconds)."""

    @property
    def key(self) -> tuple[str, str, str]:
        """(rule, service, endpoint or ""): whose chain the event belongs to."""
        return (self.rule, self.service, self.endpoint or "")

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"an alarm event's kind is one of {KINDS}, not {self.kind!r}")
        if self.seq < 1:
            raise ValueError(f"an alarm event's seq starts at 1, not {self.seq}")


def latest_per_key(events: list[AlarmEvent]) -> list[AlarmEvent]:
    """The event with the highest seq of each (rule, service, endpoint), sorted by key."""
    heads: dict[tuple[str, str, str], AlarmEvent] = {}
    for event in events:
        head = heads.get(event.key)
        if head is None or event.seq > head.seq:
            heads[event.key] = event
    return [heads[key] for key in sorted(heads)]
