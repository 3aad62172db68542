"""One minute's stored samples, kept in step with the store's writes a pass at a time.

A pass reads only the writes made since the pass before (``Store.written_since``), applies
them here, and learns which partitions (receiver/rules/partitions.py) they changed and in
which metrics: the rules then run again over those partitions alone. Applying a write
keeps, for each identity, the sample of the largest write order, which is exactly what
``Store.samples`` reads, so the partitions hold what a read of the whole minute would give
(the deriver's tests compare the values with a whole evaluation).

The inventory's ceilings (receiver/derive/ceilings.py) are samples of the minute too: they
depend on the tables the minute holds and on the inventory, so they are worked out again
when either changes, and the partitions whose ceilings changed count as changed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from receiver.derive.ceilings import Endpoint, endpoint_ceilings, endpoint_of
from receiver.derive.completeness import Source
from receiver.inventory.documents import Ceiling
from receiver.model import MINUTE_MS, Sample
from receiver.rules.families import family_names
from receiver.rules.incremental import changed_families, same_sample
from receiver.rules.partitions import Partition, partition_of
from receiver.store.base import WriteOrder

Identity = tuple[object, ...]


@dataclass(slots=True)
class MinuteSamples:
    """The samples of one minute by partition, as of the writes applied so far."""

    minute_ms: int
    mark: object | None = None
    """The store's mark after the last writes applied (None: none read yet)."""
    synced: int | None = None
    """The version the minute's stored values were derived at from this state, where the
    rules run kept the same partitions (None: they did not, or another replica's values
    may be stored)."""
    stored: dict[Partition, dict[Identity, tuple[WriteOrder, Sample]]] = field(default_factory=dict)
    ceilings: dict[Partition, tuple[Sample, ...]] = field(default_factory=dict)
    """The ceiling samples of each partition that has some."""
    endpoints: set[Endpoint] = field(default_factory=set)
    """The DynamoDB tables and indexes the minute has samples of."""
    ceilings_from: object = None
    """The inventory's ceilings the ceiling samples were worked out from."""
    present: dict[Source, set[int]] = field(default_factory=dict)
    """The hashes of the minute's series by account and region (for completeness)."""

    def apply(
        self, writes: Sequence[tuple[WriteOrder, Sequence[Sample]]], known: Mapping[Endpoint, Ceiling]
    ) -> dict[Partition, set[str]]:
        """Apply writes read from the store, with the inventory's ceilings as they are now;
        the partitions whose samples changed, with the families that changed in each."""
        changed: dict[Partition, set[tuple[str, str]]] = {}
        endpoints = len(self.endpoints)
        for order, samples in writes:
            for sample in samples:
                identity = sample.identity
                partition = partition_of(sample)
                group = self.stored.get(partition)
                if group is None:
                    group = self.stored[partition] = {}
                known_sample = group.get(identity)
                if known_sample is not None and known_sample[0] >= order:
                    continue  # a write older than the one kept (found late)
                group[identity] = (order, sample)
                if known_sample is not None and same_sample(known_sample[1], sample):
                    continue  # the same datapoint again (a retry): nothing changes
                series = sample.series
                changed.setdefault(partition, set()).add((series.namespace, series.metric))
                if known_sample is None:
                    self.present.setdefault((series.account, series.region), set()).add(hash(series))
                    endpoint = endpoint_of(sample)
                    if endpoint is not None:
                        self.endpoints.add(endpoint)
        families = {
            partition: {name for namespace, metric in metrics for name in family_names(namespace, metric)}
            for partition, metrics in changed.items()
        }
        if known is not self.ceilings_from or len(self.endpoints) != endpoints:
            self._new_ceilings(known, families)
        return families

    def _new_ceilings(self, known: Mapping[Endpoint, Ceiling], families: dict[Partition, set[str]]) -> None:
        """Work the ceiling samples out again; a partition whose ceilings changed is changed."""
        self.ceilings_from = known
        found: dict[Partition, list[Sample]] = {}
        if known:
            for sample in endpoint_ceilings(self.endpoints, dict(known), self.minute_ms, MINUTE_MS):
                found.setdefault(partition_of(sample), []).append(sample)
        ceilings = {partition: tuple(samples) for partition, samples in found.items()}
        for partition in ceilings.keys() | self.ceilings.keys():
            before, after = self.ceilings.get(partition, ()), ceilings.get(partition, ())
            if before != after:
                families.setdefault(partition, set()).update(changed_families(before, after))
        self.ceilings = ceilings

    def group(self, partition: Partition) -> tuple[Sample, ...]:
        """Every sample of one partition: its stored samples, then its ceilings."""
        stored = self.stored.get(partition, {})
        return (*(sample for _, sample in stored.values()), *self.ceilings.get(partition, ()))

    def groups(self) -> dict[Partition, tuple[Sample, ...]]:
        """Every partition's samples."""
        return {partition: self.group(partition) for partition in self.stored.keys() | self.ceilings.keys()}

    def series_by_source(self) -> dict[Source, frozenset[int]]:
        """``completeness.series_by_source`` of the stored samples."""
        return {source: frozenset(hashes) for source, hashes in self.present.items()}
