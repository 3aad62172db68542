"""A minute's passes read only the writes since the pass before (``Store.written_since``) and
still store, to the last bit, what evaluating every stored sample of the minute gives:
over random commits, Firehose retries of the same bytes, corrections, a delivery written in
slices, several minutes at once and two replicas sharing the store."""

from __future__ import annotations

import pickle
import random

import pytest

from receiver.derive.deriver import Deriver
from receiver.derive.regions import evaluate_by_region
from receiver.model import MINUTE_MS, Sample, derived_key
from receiver.store import MemoryStore
from tests.builders import T0, make_sample, make_series

MINUTES = (T0, T0 + MINUTE_MS)
TABLES = [f"T{i}" for i in range(5)]


@pytest.fixture(params=["memory", "sqlite"])
async def any_store(request, tmp_path):
    from receiver.store import SQLiteStore

    opened = MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "metrics.db")
    await opened.open()
    yield opened
    await opened.close()


def bits(values) -> dict:
    """Each value by its key, pickled: equal to the last bit (0.0 and -0.0 differ)."""
    return {derived_key(v): pickle.dumps(v) for v in values}


def random_batch(rng: random.Random) -> list[Sample]:
    """Samples of a few tables in two regions and two minutes, sums, counts and latencies."""
    found = []
    for _ in range(rng.randint(1, 8)):
        table = rng.choice(TABLES)
        region = rng.choice(["us-east-1", "us-east-1", "eu-west-1"])
        minute = rng.choice([0, 0, 1])
        kind = rng.randrange(3)
        value = float(rng.randint(0, 40)) * rng.choice([1.0, 0.1])
        if kind == 0:
            found.append(make_sample(table, "ConsumedReadCapacityUnits", minute, value=value, region=region))
        elif kind == 1:
            found.append(
                make_sample(table, "ThrottledRequests", minute, value=value, operation="GetItem", region=region)
            )
        else:
            series = make_series(
                "SuccessfulRequestLatency", table, operation="GetItem", unit="Milliseconds", region=region
            )
            found.append(
                make_sample(series=series, minute=minute, value=value + 1, count=3, stats=(("p99", value * 2),))
            )
    return found


async def assert_whole(store, rules) -> None:
    for start in MINUTES:
        stored = await store.bucket_values(MINUTE_MS, start)
        whole = evaluate_by_region(rules.current, await store.samples(start, start + MINUTE_MS)).values
        assert bits(stored) == bits(whole)


@pytest.mark.parametrize("seed", range(4))
async def test_passes_over_random_commits_store_what_the_whole_minute_gives(any_store, rules, seed):
    store = any_store
    rng = random.Random(seed)
    deriver = Deriver(store, rules, minute_retention_days=100_000)
    read = []
    real = store.written_since

    async def written_since(start_ms, end_ms, mark=None):
        read.append(mark is None)
        return await real(start_ms, end_ms, mark)

    store.written_since = written_since
    sent: list[list[Sample]] = []
    for step in range(14):
        choice = rng.random()
        if choice < 0.2 and sent:
            batch = rng.choice(sent)  # Firehose sends a delivery again: the same bytes
        else:
            batch = random_batch(rng)  # new datapoints, or corrections of stored ones
            sent.append(batch)
        if len(batch) > 1 and rng.random() < 0.4:
            cut = rng.randint(1, len(batch) - 1)
            await store.write_samples(batch[:cut])  # a delivery written a slice at a time
            await store.commit(f"r{step}", batch[cut:])
        else:
            await store.commit(f"r{step}", batch)
        deriver.touch(batch)
        if rng.random() < 0.7:
            await deriver.derive_pending(hours=False)
            await assert_whole(store, rules)
    await deriver.derive_pending(hours=False)
    await assert_whole(store, rules)
    # Each minute read everything once, at its first pass; every later pass only what was new.
    assert read.count(True) == len(MINUTES)
    assert len(read) > len(MINUTES)


async def test_a_new_deriver_reads_every_write_again(any_store, rules):
    store = any_store
    now = [T0 / 1000 + 10.0]
    first = Deriver(store, rules, minute_retention_days=100_000, clock=lambda: now[0])
    samples = [make_sample(table, minute=0, value=float(i)) for i, table in enumerate(TABLES)]
    await store.commit("a", samples)
    first.touch(samples)
    await first.derive_pending(hours=False)
    # A restart: the new deriver knows nothing of the minute, so it starts over from all of it.
    correction = make_sample("T1", minute=0, value=99.0)
    await store.commit("b", [correction])
    now[0] += first.lease_s + 1  # the first one's lease runs out
    second = Deriver(store, rules, minute_retention_days=100_000, clock=lambda: now[0])
    second.touch([correction])
    await second.derive_pending(hours=False)
    await assert_whole(store, rules)


async def test_two_replicas_each_committing_keep_the_values_whole(any_store, rules):
    store = any_store
    now = [T0 / 1000 + 10.0]
    replicas = [
        Deriver(store, rules, minute_retention_days=100_000, clock=lambda: now[0], holder=name) for name in "ab"
    ]
    rng = random.Random(11)
    for step in range(16):
        batch = random_batch(rng)
        committer = rng.choice(replicas)
        await store.commit(f"r{step}", batch)
        committer.touch(batch)
        await committer.derive_pending(hours=False)
        for replica in replicas:
            await replica.mark_stale(hours=False)
            await replica.derive_pending(hours=False)
        await assert_whole(store, rules)
        now[0] += rng.choice([1.0, 1.0, 40.0])  # now and then a lease runs out and changes hands
