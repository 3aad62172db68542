"""The Batch (receiver/batch.py): datapoints filed in groups of one metric and start, given
back as they came, compared bit for bit, and rolled back to a mark."""

from __future__ import annotations

from receiver.batch import Batch, Group, as_batch
from tests.builders import make_sample, make_samples

P = (("p50", 1.0), ("p99", 9.0))


def mixed() -> list:
    """Two metrics over two minutes, interleaved, one datapoint with percentiles."""
    return [
        make_sample("A", "ConsumedReadCapacityUnits", minute=0),
        make_sample("A", "ConsumedWriteCapacityUnits", minute=0, stats=P),
        make_sample("B", "ConsumedReadCapacityUnits", minute=0),
        make_sample("A", "ConsumedReadCapacityUnits", minute=1),
        make_sample("B", "ConsumedWriteCapacityUnits", minute=0),
    ]


def test_datapoints_are_grouped_by_metric_and_start_in_the_order_they_came():
    samples = mixed()
    batch = Batch.of(samples)
    assert [(group.metric[1], group.start_ms, len(group)) for group in batch.groups] == [
        ("ConsumedReadCapacityUnits", samples[0].start_ms, 2),
        ("ConsumedWriteCapacityUnits", samples[0].start_ms, 2),
        ("ConsumedReadCapacityUnits", samples[3].start_ms, 1),
    ]
    assert batch.samples() == [samples[0], samples[2], samples[1], samples[4], samples[3]]
    assert len(batch) == 5 and batch.starts() == {samples[0].start_ms, samples[3].start_ms}


def test_a_batch_gives_back_each_datapoint_with_its_statistics_and_labels():
    sample = make_sample(stats=P, labels=(("k", "v"),), low=0.5, high=12.0)
    assert Batch.of([sample]).samples() == [sample]


def test_numbers_are_compared_bit_for_bit():
    zero, negative_zero = make_sample(value=0.0, low=0.0, high=0.0), make_sample(value=-0.0, low=0.0, high=0.0)
    assert zero == negative_zero  # as floats
    assert Batch.of([zero]) != Batch.of([negative_zero])
    assert Batch.of([zero]) == Batch.of([zero])


def test_batches_differ_in_any_column():
    base = make_sample(stats=P)
    for other in (
        base._replace(count=3.0),
        base._replace(max=99.0),
        base._replace(end_ms=base.end_ms + 1),
        base._replace(stats=(("p50", 1.0), ("p99", 9.5))),
        base._replace(stats=(("p50", 1.0), ("p90", 9.0))),
        base._replace(labels=()),
        base._replace(series=make_sample(table="Other").series),
    ):
        assert Batch.of([base]) != Batch.of([other]), other


def test_rollback_leaves_the_batch_as_it_was_at_the_mark():
    first = make_samples(3)
    batch = Batch.of(first)
    mark = batch.mark()
    batch.add_samples([make_sample("Table0001", stats=P), make_sample("X", "ConsumedWriteCapacityUnits", minute=2)])
    assert len(batch) == 5
    batch.filler = object()  # the compiled decoder's state for the batch goes too
    batch.rollback(mark)
    assert batch == Batch.of(first) and batch.filler is None
    again = make_sample("Table0002", "ConsumedWriteCapacityUnits", minute=2)
    batch.add_samples([again])  # a group dropped by the rollback is made afresh
    assert batch.samples() == [*first, again]


def test_a_batch_is_taken_as_it_is_and_samples_are_filed():
    batch = Batch.of(make_samples(2))
    assert as_batch(batch) is batch
    assert as_batch(make_samples(2)) == batch


def test_a_group_of_mixed_statistics_keeps_each_datapoints_own():
    samples = [make_sample("A", stats=P), make_sample("B"), make_sample("C", stats=(("p90", 3.0),)), make_sample("D")]
    batch = Batch.of(samples)
    [group] = batch.groups
    assert group.layouts == [("p50", "p99"), (), ("p90",), ()]
    assert list(group.stats) == [1.0, 9.0, 3.0]
    assert batch.samples() == samples
    one_by_one = Group(group.metric, group.start_ms)
    for sample in samples:
        one_by_one.add(sample)
    assert one_by_one == group
