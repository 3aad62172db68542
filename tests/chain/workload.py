"""What the end-to-end tests share: a recent stretch of the workload and what a stopped
receiver's store holds (TLS files: the ``tls`` fixture of the root conftest)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from receiver.model import PERIOD_MS, Sample
from receiver.store import open_store_from_url
from receiver_tools.workload import Workload

ACCESS_KEY = "chain-test-key"
INGEST_PATH = "/aws/firehose/metrics"


@dataclass(frozen=True, slots=True)
class Stretch:
    """Some recent minutes of the workload: what is sent and the query range covering it."""

    minutes: list[list[Sample]]
    start_s: int
    end_s: int

    @property
    def samples(self) -> list[Sample]:
        return [s for minute in self.minutes for s in minute]


def recent_workload(minutes: int = 10, seed: int = 21) -> Stretch:
    """The last ``minutes`` complete minutes (within the receiver's retention, so they show)."""
    now = int(time.time() * 1000)
    first = now - now % PERIOD_MS - minutes * PERIOD_MS
    return Stretch(
        list(Workload(seed=seed).minutes(first, minutes)), first // 1000, (first + minutes * PERIOD_MS) // 1000
    )


async def stored_samples(db: Path) -> list[Sample]:
    """Every sample in a SQLite store file (the receiver must have stopped)."""
    store = open_store_from_url(f"sqlite:///{db}")
    await store.open()
    try:
        return await store.samples(0, 2**62)
    finally:
        await store.close()


def same_datapoints(stored: list[Sample], sent: list[Sample]) -> bool:
    """The stored set is exactly the sent set (labels aside), each datapoint once."""
    fields = lambda s: (s.identity, s.count, s.sum, s.min, s.max, s.stats)  # noqa: E731
    return len(stored) == len({s.identity for s in sent}) and sorted(map(fields, stored)) == sorted(
        {fields(s) for s in sent}
    )
