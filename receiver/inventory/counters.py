"""Counts of the inventory poller's AWS calls and its state, for /metrics.

Incremented on the event loop's thread only (the poller awaits its boto3 calls there and
counts after each returns), so plain dicts need no lock. Each replica counts the calls it
made; only the replica holding the inventory lease makes any.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

OK = "ok"
THROTTLED = "throttled"
DENIED = "denied"
FAILED = "failed"
OUTCOMES = (OK, THROTTLED, DENIED, FAILED)
"""How a call ended: answered; throttled (after botocore's own retries); refused for lack of
permission or credentials; any other failure (a connection lost, a timeout, an error answer)."""


@dataclass(frozen=True, slots=True)
class InventoryCountsSnapshot:
    calls: tuple[tuple[str, str, int], ...]
    """(API name, outcome, calls), sorted by API then outcome; only pairs that happened."""
    last_poll_ms: int | None
    """When the last complete poll ended (epoch milliseconds): every account and region listed
    and described. None before the first one."""
    tables: int
    """Tables the inventory knows in every account and region, deleted tables left out."""
    holding_lease: bool
    """Whether this replica holds the inventory lease (and so is the one polling)."""


class InventoryCounters:
    def __init__(self) -> None:
        self._calls: Counter[tuple[str, str]] = Counter()
        self.last_poll_ms: int | None = None
        self.tables = 0
        self.holding_lease = False

    def call(self, api: str, outcome: str) -> None:
        if outcome not in OUTCOMES:
            raise ValueError(f"a call's outcome is one of {OUTCOMES}, not {outcome!r}")
        self._calls[(api, outcome)] += 1

    def count(self, api: str, outcome: str) -> int:
        """Calls of ``api`` that ended with ``outcome``."""
        return self._calls[(api, outcome)]

    def total(self, outcome: str | None = None) -> int:
        """Calls made so far, or those that ended with ``outcome``."""
        return sum(n for (_, o), n in self._calls.items() if outcome is None or o == outcome)

    def snapshot(self) -> InventoryCountsSnapshot:
        return InventoryCountsSnapshot(
            calls=tuple(sorted((api, outcome, n) for (api, outcome), n in self._calls.items())),
            last_poll_ms=self.last_poll_ms,
            tables=self.tables,
            holding_lease=self.holding_lease,
        )
