"""A minute kept in step a partition at a time stores exactly what evaluate_by_region gives
over all of its samples: the merged values, each value's region, the per-region values of
entities that span regions, through minutes that come to span regions and stop."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from receiver.derive.partitioned import MinuteValues, NeedsEverything
from receiver.derive.regions import evaluate_by_region
from receiver.model import derived_key
from receiver.rules.incremental import PartitionedEvaluation, changed_families
from tests.rules.rulekit import pack, sample, sample_sets


class Stored:
    """A bucket's values as a store holds them, kept in step as the deriver keeps it: each
    update's changes applied, or the whole minute put again when its state starts over."""

    def __init__(self) -> None:
        self.rows = {}
        self.minute = MinuteValues(pack())
        self.current = {}

    def update(self, changed):
        before = {partition: self.current.get(partition, ()) for partition in changed}
        self.current.update(changed)
        families = {partition: changed_families(before[partition], group) for partition, group in changed.items()}
        try:
            changes = self.minute.update(changed, families)
        except NeedsEverything:
            self.minute = MinuteValues(pack())
            changes = self.minute.update(self.current)
            self.rows = {}
        for key in changes.removals:
            del self.rows[key]  # a removal names a stored value
        for value in changes.upserts:
            self.rows[derived_key(value)] = value
        return changes


def expected(samples):
    evaluation = evaluate_by_region(pack(), samples)
    return {derived_key(v): v for v in evaluation.values}, evaluation.not_computed


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_updates_in_any_order_store_what_evaluate_by_region_gives(data):
    samples = data.draw(sample_sets())
    groups = PartitionedEvaluation.by_partition(samples)
    stored = Stored()
    for _ in range(data.draw(st.integers(1, 5))):
        update = {}
        for key in data.draw(st.lists(st.sampled_from(sorted(groups)), min_size=1, unique=True)):
            update[key] = [s for s in groups[key] if data.draw(st.booleans())]
        changes = stored.update(update)
        rows, not_computed = expected([s for group in stored.current.values() for s in group])
        assert stored.rows == rows
        assert {derived_key(v): v for v in stored.minute.values()} == rows
        assert changes.not_computed == not_computed


def test_a_minute_that_comes_to_span_regions_restates_its_values():
    east = sample("ConsumedReadCapacityUnits", 6.0, TableName="A", region="us-east-1")
    west = sample("ConsumedReadCapacityUnits", 4.0, TableName="A", region="eu-west-1")
    other = sample("ConsumedReadCapacityUnits", 1.0, TableName="B", region="eu-west-1")
    stored = Stored()
    partition_a = PartitionedEvaluation.by_partition([east])
    partition_b = PartitionedEvaluation.by_partition([other])
    stored.update(partition_a)
    assert {v.region for v in stored.rows.values() if v.endpoint == "A"} == {"us-east-1"}
    # Table B brings a second region: the minute starts over with every partition.
    alone = MinuteValues(pack())
    alone.update(partition_a)
    with pytest.raises(NeedsEverything):
        alone.update(partition_b)
    stored.update(partition_b)
    assert stored.rows == expected([east, other])[0]
    # A global table: A gets a merged value and one per region.
    (key_a,) = partition_a
    stored.update({key_a: [east, west]})
    assert stored.rows == expected([east, west, other])[0]
    regions_a = {
        (v.region, v.merged)
        for v in stored.rows.values()
        if v.metric.endswith("endpoint_consumed_read_capacity_units") and v.endpoint == "A"
    }
    assert regions_a == {("", True), ("us-east-1", False), ("eu-west-1", False)}
    # Back to one region.
    (key_b,) = partition_b
    stored.update({key_a: [west], key_b: []})
    assert stored.rows == expected([west])[0]
    stored.update({key_a: []})
    assert stored.rows == {}
