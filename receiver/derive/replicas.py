"""Which buckets this replica derives first, so that replicas on one store split the work.

A bucket's lease (the deriver's ``_hold``) goes to whoever asks first, and every replica
commits to every live minute (Firehose spreads deliveries over them), so without more one
replica would take nearly every bucket and the others would only ingest. Each replica
therefore holds a *slot*: one of ``SLOTS`` leases named ``derive/slot/<i>``, the lowest it
can take, renewed every ``lease_s / 3``. At each renewal it counts the live slots of the
others (``take_lease`` for no time at all: False when another holds the slot; True when it
is free, and the lease then ends as it starts, so it stays free) and so knows how many
replicas there are, n, and its rank among them, r. Bucket b of a step is this replica's
*turn* when ``b // step % n == r``:
consecutive minutes (and hours) take turns round the replicas.

A replica takes the lease of a bucket in its turn at once; one out of turn only after it
has waited ``DEFER_S`` for the replica whose turn it is (which finds the bucket at its next
stale scan, receiver/derive/deriver.py ``STALE_SCAN_S``). So a replica that stops still
loses its leases after ``lease_s`` and another takes over, as before; the turns only decide
who asks first. A replica alone is always in its turn.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from receiver.store import Store

log = logging.getLogger("receiver.derive")

SLOTS = 8
"""Replicas that take turns; more than this many share the turns of the last."""
DEFER_S = 5.0
"""How long a replica leaves a bucket out of its turn to the replica whose turn it is:
more than two stale scans of that replica, which finds the bucket within one."""


class Turns:
    """This replica's slot, and whose turn each bucket is (see the module docstring)."""

    def __init__(self, store: Store, holder: str, lease_s: float, clock: Callable[[], float]) -> None:
        self.store = store
        self.holder = holder
        self.lease_s = lease_s
        self.clock = clock
        self.slot: int | None = None
        """The slot this replica holds (None: every slot is another's)."""
        self.rank = 0
        self.replicas = 1
        self._renew_at = -1.0

    def _name(self, slot: int) -> str:
        return f"derive/slot/{slot}"

    async def refresh(self) -> None:
        """Renew this replica's slot and count the others', when due."""
        now = self.clock()
        if now < self._renew_at:
            return
        self._renew_at = now + self.lease_s / 3
        now_ms = int(now * 1000)
        duration_ms = int(self.lease_s * 1000)
        if self.slot is not None and not await self.store.take_lease(
            self._name(self.slot), self.holder, now_ms, duration_ms
        ):
            self.slot = None  # lost (this replica stalled past its lease): take another
        others: list[int] = []
        for slot in range(SLOTS):
            if slot == self.slot:
                continue
            if self.slot is None:
                if await self.store.take_lease(self._name(slot), self.holder, now_ms, duration_ms):
                    self.slot = slot
                else:
                    others.append(slot)
            elif not await self.store.take_lease(self._name(slot), self.holder, now_ms, 0):
                others.append(slot)  # another replica holds it; a free one stays free
        replicas = len(others) + (self.slot is not None)
        rank = sum(1 for slot in others if self.slot is None or slot < self.slot)
        if (replicas, rank) != (self.replicas, self.rank):
            log.info("replicas deriving from this store", extra={"replicas": replicas, "rank": rank})
        self.replicas, self.rank = max(replicas, 1), rank

    def in_turn(self, step_ms: int, bucket_ms: int) -> bool:
        """Whether ``bucket_ms`` of ``step_ms`` is this replica's turn."""
        return self.slot is not None and (bucket_ms // step_ms) % self.replicas == self.rank
