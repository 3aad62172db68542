"""Exponential backoff with jitter: the one formula behind every retry of the receiver and its tools.

The wait after the n-th failure in a row is a ceiling, ``initial_s × multiplier^(n−1)`` cut to
``max_s``, times a factor drawn uniformly from the ``jitter`` range. The range is the parameter,
rather than a named style, because the callers need different spreads around the same growth:

- ``(0, 1)``, "full jitter" (``FULL_JITTER``): replicas that failed together spread over the
  whole window (the DynamoDB store);
- ``(1 − f, 1 + f)``: a known pace, give or take a fraction (alarm notifications, Firehose's
  documented ±15 % in the emulator);
- ``(0.5, 1)``: spread, yet never an immediate retry (the OTLP exporter);
- ``(1, 1)``, the default: no jitter, and no random draw (the deriver's failing buckets).

The cap applies before the jitter, so a factor above 1 may exceed ``max_s``; a caller whose
cap bounds the jittered wait (the emulator) cuts the result itself.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

FULL_JITTER = (0.0, 1.0)
"""A factor uniform in [0, 1): the widest spread, as AWS recommends for throttled clients."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delays that grow by ``multiplier`` from ``initial_s`` up to ``max_s``, jittered by a factor range."""

    initial_s: float
    max_s: float = math.inf
    multiplier: float = 2.0
    jitter: tuple[float, float] = (1.0, 1.0)
    """The (lowest, highest) factor the capped ceiling is multiplied by."""

    def __post_init__(self) -> None:
        low, high = self.jitter
        if not 0 <= low <= high:
            raise ValueError(f"the jitter range {self.jitter} must be two factors with 0 <= low <= high")
        if self.initial_s < 0 or self.max_s < 0 or self.multiplier < 1:
            raise ValueError(
                f"a backoff needs initial_s and max_s of 0 or more and a multiplier of 1 or more, not {self}"
            )

    def ceiling_s(self, failures: int) -> float:
        """The wait after the ``failures``-th failure in a row (1 for the first), before jitter."""
        if failures < 1:
            raise ValueError(f"failures counts from 1, not {failures}")
        try:
            grown = self.initial_s * self.multiplier ** (failures - 1)
        except OverflowError:  # far past any cap: inf keeps min() right
            grown = math.inf if self.initial_s else 0.0
        return min(grown, self.max_s)

    def delay_s(self, failures: int, rng: random.Random | None = None) -> float:
        """The jittered wait after the ``failures``-th failure in a row (1 for the first).

        ``rng`` makes the jitter reproducible (tests, a seeded emulator); without it the
        ``random`` module's shared generator draws.
        """
        ceiling = self.ceiling_s(failures)
        low, high = self.jitter
        if low == high:
            return ceiling * low
        factor = rng.uniform(low, high) if rng is not None else random.uniform(low, high)
        return ceiling * factor
