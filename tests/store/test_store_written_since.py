"""``Store.written_since``: the writes since a mark add up to what ``samples`` reads, on
every backend (memory, SQLite, DynamoDB on moto and on dynalite)."""

from __future__ import annotations

import random

import pytest

from receiver.model import MINUTE_MS, Sample
from receiver.store.base import Written
from tests.builders import T0, make_sample, make_series

MINUTE = (T0, T0 + MINUTE_MS)


class Applied:
    """What a reader of ``written_since`` keeps: each identity's sample of the largest order."""

    def __init__(self) -> None:
        self.mark: object | None = None
        self.latest: dict[tuple, tuple[tuple[int, str], Sample]] = {}

    async def read(self, store, start_ms: int, end_ms: int) -> Written:
        written = await store.written_since(start_ms, end_ms, self.mark)
        self.mark = written.mark
        for order, samples in written.writes:
            for sample in samples:
                known = self.latest.get(sample.identity)
                if known is None or known[0] < order:
                    self.latest[sample.identity] = (order, sample)
        return written

    def samples(self) -> list[Sample]:
        return sorted((sample for _, sample in self.latest.values()), key=repr)


async def stored(store, start_ms: int, end_ms: int) -> list[Sample]:
    return sorted(await store.samples(start_ms, end_ms), key=repr)


async def test_everything_written_is_found_without_a_mark(store):
    samples = [make_sample(table=f"T{i}", value=float(i)) for i in range(5)]
    await store.commit("r1", samples[:3])
    await store.commit("r2", samples[3:])
    applied = Applied()
    await applied.read(store, *MINUTE)
    assert applied.samples() == sorted(samples, key=repr)


async def test_a_mark_finds_only_the_later_writes(store):
    await store.commit("r1", [make_sample(table="A"), make_sample(table="B")])
    first = await store.written_since(*MINUTE)
    await store.commit("r2", [make_sample(table="C", value=3.0)])
    later = await store.written_since(*MINUTE, first.mark)
    assert [sample for _, samples in later.writes for sample in samples] == [make_sample(table="C", value=3.0)]
    assert (await store.written_since(*MINUTE, later.mark)).writes == []


async def test_a_correction_comes_with_a_larger_order(store):
    await store.commit("r1", [make_sample(value=1.0)])
    first = await store.written_since(*MINUTE)
    await store.commit("r2", [make_sample(value=2.0)])
    later = await store.written_since(*MINUTE, first.mark)
    (order, samples), *_ = later.writes
    assert samples == [make_sample(value=2.0)]
    assert order > max(order for order, _ in first.writes)


async def test_writes_outside_the_range_are_left_out_and_do_not_move_it_on(store):
    applied = Applied()
    await store.commit("r1", [make_sample(minute=0)])
    await applied.read(store, *MINUTE)
    await store.commit("r2", [make_sample(minute=1), make_sample(minute=-1)])
    written = await applied.read(store, *MINUTE)
    assert written.writes == []
    await store.commit("r3", [make_sample(minute=0, value=7.0)])
    await applied.read(store, *MINUTE)
    assert applied.samples() == [make_sample(minute=0, value=7.0)]


async def test_nothing_written_finds_nothing(store):
    written = await store.written_since(*MINUTE)
    assert written.writes == []
    assert (await store.written_since(*MINUTE, written.mark)).writes == []


@pytest.mark.parametrize("seed", range(3))
async def test_reads_between_random_commits_add_up_to_the_stored_samples(store, seed):
    """Retries of the same bytes, corrections, slices of one delivery, several minutes: after
    every step, what the reader applied is exactly what ``samples`` reads."""
    rng = random.Random(seed)
    series = [make_series(table=f"T{i}") for i in range(6)] + [
        make_series("SuccessfulRequestLatency", table=f"T{i}", operation="GetItem", unit="Milliseconds")
        for i in range(3)
    ]
    span = (T0, T0 + 2 * MINUTE_MS)
    applied = Applied()
    delivered: list[list[Sample]] = []
    for step in range(12):
        kind = rng.choice(["new", "new", "retry", "slices"])
        if kind == "retry" and delivered:
            samples = rng.choice(delivered)
        else:
            samples = [
                make_sample(
                    series=one,
                    minute=rng.choice([0, 1, 2]),
                    value=float(rng.randint(0, 3)),
                    stats=(("p50", float(rng.randint(0, 9))),) if one.metric == "SuccessfulRequestLatency" else (),
                )
                for one in rng.sample(series, rng.randint(1, len(series)))
            ]
            delivered.append(samples)
        if kind == "slices" and len(samples) > 1:
            cut = rng.randint(1, len(samples) - 1)
            await store.write_samples(samples[:cut])
            await store.commit(f"r{step}", samples[cut:])
        else:
            await store.commit(f"r{step}", samples)
        if rng.random() < 0.7:
            await applied.read(store, *span)
            assert applied.samples() == await stored(store, *span)
    await applied.read(store, *span)
    assert applied.samples() == await stored(store, *span)


async def test_a_block_found_after_later_ones_is_applied_by_its_order(make_store):
    """DynamoDB: a replica's block of a smaller seq (its clock is behind, or its write was
    slow) becomes readable after a block of a larger seq was read. It is still found, and
    the reader keeps the later write of the identity they share."""
    from receiver.store.dynamodb.blocks import Sequencer

    ahead, behind = await make_store(), await make_store()
    ahead._samples._sequencer = Sequencer(clock_ns=lambda: 2_000_000_000_000_000_000)
    behind._samples._sequencer = Sequencer(clock_ns=lambda: 1_000_000_000_000_000_000)
    applied = Applied()
    await ahead.commit("later", [make_sample(table="A", value=2.0)])
    await applied.read(ahead, *MINUTE)
    await behind.commit("earlier", [make_sample(table="A", value=1.0), make_sample(table="B", value=5.0)])
    written = await applied.read(ahead, *MINUTE)
    assert [order[0] for order, _ in written.writes] == [1_000_000_000_000_000]  # found, though older
    assert applied.samples() == await stored(ahead, *MINUTE)
    assert applied.samples() == sorted([make_sample(table="A", value=2.0), make_sample(table="B", value=5.0)], key=repr)
