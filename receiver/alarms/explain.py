"""Explanations an alarm rule adds to its message (``explain:``), read from the store.

A rule names one by the setting ``explain`` and places its text with ``{cause}``::

    table_write_throttled:
      expression: aws_dynamodb_endpoint_write_throttled_requests
      explain: write_throttle_cause
      message: "{endpoint}: {value} writes throttled in a minute; {cause}"

An explanation lists the metrics it reads for the alarm's entity (``metrics``, checked
against the metric rules like an expression's) and turns their values in the minutes
behind a notification into one phrase (``explain``, a pure function). The evaluator does
the reading (receiver/alarms/evaluator.py): for a firing notification the breaching
minutes of the period, for a resolved one the minute evaluated.

The throttle-cause explanations read DynamoDB's throttle events by cause (the
``<Read|Write><Cause>ThrottleEvents`` metrics) and name the cause with the most events in
those minutes, with the count and a one-line remedy; "cause not reported" when the stream
carries none of them. Where the table inventory holds the table's most throttled keys
(Contributor Insights, receiver/inventory) for a window that overlaps those minutes, the
phrase ends with the top key and its count.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from receiver.inventory.documents import TopKeysDocument
from receiver.model import MINUTE_MS

NOT_REPORTED = "cause not reported"


class Explanation(Protocol):
    @property
    def name(self) -> str:
        """What a rule's ``explain`` setting calls it."""
        ...

    def metrics(self, scope: str) -> frozenset[str]:
        """Every metric the explanation reads for an entity of ``scope``."""
        ...

    def explain(self, scope: str, values: Mapping[str, Mapping[int, float]], minutes: Collection[int]) -> str:
        """The phrase for ``{cause}`` from ``values`` (metric -> minute start -> the entity's value)."""
        ...

    @property
    def names_top_key(self) -> bool:
        """Whether the phrase ends with the entity's most throttled key, where it is known."""
        ...


@dataclass(frozen=True, slots=True)
class Cause:
    key: str
    """The middle of the metric's name: ``aws_dynamodb_endpoint_write_<key>_throttle_events``."""
    label: str
    remedy: str


CAUSES = (
    Cause(
        "provisioned_throughput",
        "provisioned throughput exceeded",
        "raise the provisioned capacity, or the auto scaling maximum",
    ),
    Cause(
        "account_limit",
        "the account's per-table throughput quota reached",
        "ask AWS (Service Quotas) to raise the account's table-level read/write quota",
    ),
    Cause(
        "key_range_throughput",
        "a hot partition (key range throughput exceeded)",
        "spread the requests over more partition key values",
    ),
    Cause(
        "max_on_demand_throughput",
        "the table's on-demand maximum reached",
        "raise the table's maximum on-demand throughput",
    ),
)
"""In the order ties are broken: of two causes with as many events, the one listed first."""

DIRECTIONS = ("read", "write")


@dataclass(frozen=True, slots=True)
class Candidate:
    metric: str
    direction: str
    """``read`` or ``write``."""
    cause: Cause


@dataclass(frozen=True, slots=True)
class Finding:
    candidate: Candidate
    events: float

    def text(self) -> str:
        noun = "event" if self.events == 1 else "events"
        return (
            f"cause: {self.candidate.cause.label}, {self.events:.6g} {self.candidate.direction} throttle {noun}; "
            f"{self.candidate.cause.remedy}"
        )


def dominant(candidates: Sequence[Candidate], totals: Mapping[str, float]) -> Finding | None:
    """The candidate whose metric has the most events in ``totals`` (metric -> events).

    A tie goes to the candidate listed first; None when no candidate has any event
    (a metric missing from ``totals`` has none).
    """
    best: Finding | None = None
    for candidate in candidates:
        events = totals.get(candidate.metric, 0.0)
        if events > 0 and (best is None or events > best.events):
            best = Finding(candidate, events)
    return best


@dataclass(frozen=True, slots=True)
class ThrottleCause:
    """The dominant throttle cause of the given directions (read, write or both)."""

    name: str
    directions: tuple[str, ...]
    names_top_key: bool = True

    def candidates(self, scope: str) -> tuple[Candidate, ...]:
        prefix = "aws_dynamodb_endpoint_" if scope == "endpoint" else "aws_dynamodb_"
        return tuple(
            Candidate(f"{prefix}{direction}_{cause.key}_throttle_events", direction, cause)
            for cause in CAUSES
            for direction in self.directions
        )

    def metrics(self, scope: str) -> frozenset[str]:
        return frozenset(candidate.metric for candidate in self.candidates(scope))

    def explain(self, scope: str, values: Mapping[str, Mapping[int, float]], minutes: Collection[int]) -> str:
        totals = {metric: sum(by_minute.get(minute, 0.0) for minute in minutes) for metric, by_minute in values.items()}
        finding = dominant(self.candidates(scope), totals)
        return NOT_REPORTED if finding is None else finding.text()


def top_key_phrase(documents: Sequence[TopKeysDocument], minutes: Collection[int]) -> str:
    """'; most throttled key: <key> (<n> throttled requests, Contributor Insights)' from the
    documents whose window overlaps ``minutes`` (the one with the larger count wins); ''
    when none does or none names a key."""
    first_s, last_s = min(minutes) / 1000, (max(minutes) + MINUTE_MS) / 1000
    best: tuple[float, list[str]] | None = None
    for document in documents:
        if document["end"] < first_s or document["start"] > last_s or not document["keys"]:
            continue
        top = document["keys"][0]
        if best is None or top["value"] > best[0]:
            best = (top["value"], top["key"])
    if best is None:
        return ""
    value, key = best
    noun = "request" if value == 1 else "requests"
    return f"; most throttled key: {' | '.join(key)} ({value:.6g} throttled {noun}, Contributor Insights)"


EXPLANATIONS: dict[str, Explanation] = {
    explanation.name: explanation
    for explanation in (
        ThrottleCause("throttle_cause", DIRECTIONS),
        ThrottleCause("read_throttle_cause", ("read",)),
        ThrottleCause("write_throttle_cause", ("write",)),
    )
}
"""Every explanation a rule may name, by name."""
