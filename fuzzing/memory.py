"""Resident memory of this process over a run, and the check that it levels off."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes(pid: int | str = "self") -> int:
    """Current resident set size (Linux /proc)."""
    with open(f"/proc/{pid}/statm") as statm:
        return int(statm.read().split()[1]) * _PAGE


def child_pids(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux /proc)."""
    children = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                # The command name, in parentheses, may hold spaces: the parent follows it.
                if int(stat.read().rsplit(")", 1)[1].split()[1]) == pid:
                    children.append(int(entry))
        except OSError:
            continue  # it ended meanwhile
    return children


def children_rss_bytes(pid: int) -> int:
    """The summed resident set size of the processes whose parent is ``pid``."""
    total = 0
    for child in child_pids(pid):
        try:
            total += rss_bytes(child)
        except OSError:
            continue  # it ended meanwhile
    return total


@dataclass(slots=True)
class RssSeries:
    """RSS readings in order; ``levels_off`` compares the second half's peak with the first's.

    A leak grows with the work done, so the peak of the later half of a run would pass the
    peak of the earlier half by a margin that grows with the run; allocator noise and caches
    warmed once stay within ``slack_bytes``.
    """

    readings: list[int] = field(default_factory=list)

    def add(self, value: int) -> None:
        self.readings.append(value)

    def growth(self) -> int:
        half = len(self.readings) // 2
        if half == 0:
            return 0
        return max(self.readings[half:]) - max(self.readings[:half])

    def levels_off(self, slack_bytes: int) -> bool:
        return self.growth() <= slack_bytes
