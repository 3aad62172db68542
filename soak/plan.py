"""What a soak run sends and when the receiver is restarted: all from one seed."""

from __future__ import annotations

import random
from dataclasses import dataclass

from receiver.model import PERIOD_MS
from receiver_tools.workload import TableSpec, Workload

TABLES = 24
"""24 tables (some with an index, some global, some provisioned) make about 520 datapoints a minute."""


def soak_workload(seed: int) -> Workload:
    tables = [
        TableSpec(
            name=f"SoakTable{i:02d}",
            indexes=("ByOwner",) if i % 3 == 0 else (),
            regions=("us-east-1", "eu-west-1") if i % 4 == 1 else ("us-east-1",),
            provisioned=(500.0, 200.0) if i % 2 == 0 else None,
            ttl=i % 5 == 2,
            transactions=i % 6 == 3,
        )
        for i in range(TABLES)
    ]
    return Workload(seed=seed, tables=tables)


@dataclass(frozen=True, slots=True)
class Restart:
    at_s: float
    """Seconds into the run."""
    signal: str
    """``SIGTERM`` (graceful: drains, derives what is pending) or ``SIGKILL`` (a crash)."""


def restart_schedule(duration_s: float, rng: random.Random) -> list[Restart]:
    """About one restart a minute (at least two) spread over the first half of the run,
    alternating SIGTERM and SIGKILL from a random first one; the second half runs one
    receiver throughout, so its memory can be seen to level off."""
    half = duration_s / 2
    count = max(2, round(half / 60))
    slot = half / (count + 1)
    kill = rng.random() < 0.5
    restarts = []
    for index in range(count):
        at_s = slot * (index + 1) + rng.uniform(-slot / 4, slot / 4)
        restarts.append(Restart(at_s, "SIGKILL" if kill else "SIGTERM"))
        kill = not kill
    return restarts


def first_minute_ms(now_ms: int, minutes: int) -> int:
    """The first emulated minute so that the last one sent ends a few minutes before now:
    every minute lies within the receiver's retention and none is in the future."""
    return (now_ms // PERIOD_MS - minutes - 5) * PERIOD_MS
