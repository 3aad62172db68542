"""Where the deriver evaluates rules: a thread of this process, or a worker process.

Evaluating the rules over a busy minute takes seconds of pure Python. In a thread it holds
the GIL all that time, and every delivery the receiver is taking meanwhile waits for the
GIL at each socket read and each SQLite call: with 2,000 tables, the benchmark took 5,300
datapoints per second while the deriver caught up, against 95,000 with the deriver idle.
``serve`` therefore evaluates in worker processes; the receiver's own process only packs
the samples and unpacks the values, about a twentieth of the evaluation's time. Minutes
kept a partition at a time (``update`` of a minute) live in one worker; hours and whole
evaluations (minutes of rules that cannot be taken apart) in another, so a minute's update
never waits behind an hour that takes seconds.

The samples cross as plain tuples, each series once (pickling ``Sample`` and ``Series``
objects directly costs four times as much). The rules are pickled once per reload and
unpickled by the worker only when they changed; their bytes (about 90 KiB for the
repository's rules, against megabytes of samples) go with every call, so a worker started
again after a crash has them.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import threading
from collections.abc import Collection, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from itertools import chain, repeat, starmap
from typing import Any, Protocol

from receiver.derive.hours import HourStates
from receiver.derive.partitioned import Changes, MinuteStates
from receiver.derive.regions import evaluate_by_region
from receiver.model import MINUTE_MS, SAMPLE_FIELDS, DerivedValue, Sample, Series
from receiver.rules import Evaluation, RuleSet
from receiver.rules.partitions import Partition

log = logging.getLogger("receiver.derive")

_new_tuple = tuple.__new__


class Evaluator(Protocol):
    async def evaluate(self, rules: RuleSet, samples: Sequence[Sample]) -> Evaluation:
        """``evaluate_by_region(rules, samples)``, wherever it runs."""
        ...

    async def update(
        self,
        step_ms: int,
        rules: RuleSet,
        bucket_ms: int,
        changed: Mapping[Partition, Sequence[Sample]],
        families: Mapping[Partition, Collection[str]] | None,
        live: Collection[int],
    ) -> Changes | None:
        """``MinuteStates.update`` (a minute) or ``HourStates.update`` (an hour) of the
        buckets kept wherever the rules run."""
        ...

    def close(self) -> None:
        """Stop any worker; evaluate may still be called and starts a new one."""
        ...


class ThreadEvaluator:
    """Evaluates in a thread of this process: for tests and for embedding the receiver."""

    def __init__(self) -> None:
        self._minutes = MinuteStates()
        self._hours = HourStates()

    async def evaluate(self, rules: RuleSet, samples: Sequence[Sample]) -> Evaluation:
        return await asyncio.to_thread(evaluate_by_region, rules, samples)

    async def update(
        self,
        step_ms: int,
        rules: RuleSet,
        bucket_ms: int,
        changed: Mapping[Partition, Sequence[Sample]],
        families: Mapping[Partition, Collection[str]] | None,
        live: Collection[int],
    ) -> Changes | None:
        states = self._minutes if step_ms == MINUTE_MS else self._hours
        return await asyncio.to_thread(states.update, rules, bucket_ms, changed, families, live)

    def close(self) -> None:
        pass


class _Worker:
    """One worker process (a pool of one), started on first use and again after it died;
    None from ``pool`` once there can be no worker (evaluation in threads from then on)."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._impossible = False

    def pool(self) -> ProcessPoolExecutor | None:
        if self._pool is None and not self._impossible:
            try:
                # spawn: a fork of this threaded, event-looping process could inherit held locks.
                self._pool = ProcessPoolExecutor(
                    max_workers=1, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_start
                )
            except OSError as exc:  # no usable /dev/shm for the pool's semaphores
                log.warning("no worker process for rule evaluation, evaluating in a thread", extra={"error": str(exc)})
                self._impossible = True
        return self._pool

    def drop(self, wait: bool) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=wait, cancel_futures=True)


class ProcessEvaluator:
    """Evaluates in two worker processes: one keeps the minutes in step, the other the hours
    and whole evaluations, so a minute's update never waits behind an hour's."""

    def __init__(self) -> None:
        self._minutes = _Worker()
        self._hours = _Worker()
        self._rules: RuleSet | None = None
        self._rules_blob = b""
        self._rules_version = 0
        self._in_thread = ThreadEvaluator()
        """Where the rules run when there can be no worker (and for its buckets)."""

    def _rules_for_worker(self, rules: RuleSet) -> None:
        if rules is not self._rules:  # a reload: the worker gets the new rules once
            self._rules_blob = pickle.dumps(rules, pickle.HIGHEST_PROTOCOL)
            self._rules, self._rules_version = rules, self._rules_version + 1

    async def update(
        self,
        step_ms: int,
        rules: RuleSet,
        bucket_ms: int,
        changed: Mapping[Partition, Sequence[Sample]],
        families: Mapping[Partition, Collection[str]] | None,
        live: Collection[int],
    ) -> Changes | None:
        worker = self._minutes if step_ms == MINUTE_MS else self._hours
        if worker.pool() is None:
            return await self._in_thread.update(step_ms, rules, bucket_ms, changed, families, live)
        self._rules_for_worker(rules)
        partitions = list(changed)
        packed = await asyncio.to_thread(pack_samples, list(chain.from_iterable(changed.values())))
        counts = [len(changed[partition]) for partition in partitions]
        pool = worker.pool()
        if pool is None:  # the worker died meanwhile and no other can start: the caller starts over
            return None
        try:
            answer = await asyncio.wrap_future(
                pool.submit(
                    update_packed,
                    step_ms,
                    self._rules_version,
                    self._rules_blob,
                    bucket_ms,
                    (partitions, counts, packed),
                    None
                    if families is None
                    else {partition: frozenset(found) for partition, found in families.items()},
                    frozenset(live),
                )
            )
        except BrokenProcessPool:
            # The worker died with every bucket it kept: the caller starts the bucket over.
            log.warning("the rule evaluation worker died")
            worker.drop(wait=False)
            return None
        if answer is None:
            return None
        rows, removals, not_computed, total = answer
        return Changes(await asyncio.to_thread(unpack_values, rows), removals, not_computed, total)

    async def evaluate(self, rules: RuleSet, samples: Sequence[Sample]) -> Evaluation:
        self._rules_for_worker(rules)
        packed = await asyncio.to_thread(pack_samples, samples)
        for attempt in (1, 2):
            pool = self._hours.pool()
            if pool is None:
                return await self._in_thread.evaluate(rules, samples)
            try:
                rows, not_computed = await asyncio.wrap_future(
                    pool.submit(evaluate_packed, self._rules_version, self._rules_blob, packed)
                )
            except BrokenProcessPool:
                # The worker died, now or since the last call (killed, out of memory, could
                # not start): the next call starts another one.
                log.warning("the rule evaluation worker died", extra={"attempt": attempt})
                self._hours.drop(wait=False)
            else:
                return Evaluation(await asyncio.to_thread(unpack_values, rows), not_computed)
        log.error("the rule evaluation worker died twice; this pass evaluates in a thread")
        return await self._in_thread.evaluate(rules, samples)

    def close(self) -> None:
        self._minutes.drop(wait=True)
        self._hours.drop(wait=True)


def _worker_start() -> None:
    """In the worker, once: ignore Ctrl-C, and exit when the receiver does."""
    # Ctrl-C reaches the whole process group; the receiver itself decides when to stop,
    # and it may still need the worker for its last pass.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A receiver killed outright (SIGKILL, out of memory) cannot stop its worker, and the
    # worker's own copy of the task queue keeps it waiting for work: watch the parent.
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent.sentinel,), daemon=True).start()


def _exit_with(parent_sentinel: int) -> None:
    multiprocessing.connection.wait([parent_sentinel])
    os._exit(1)


Packed = tuple[list[tuple[Any, ...]], list[Any]]
"""(each distinct Series as a tuple of its fields, every sample's fields one after the
other with the Series replaced by its index in the first list)."""


def pack_samples(samples: Sequence[Sample]) -> Packed:
    fields: list[Any] = list(chain.from_iterable(samples))  # a column's type is its field's
    series: list[Series] = fields[0::SAMPLE_FIELDS]
    index = {one: position for position, one in enumerate(dict.fromkeys(series))}  # a Series hashes once
    fields[0::SAMPLE_FIELDS] = map(index.__getitem__, series)
    return [_series_fields(one) for one in index], fields


def _series_fields(series: Series) -> tuple[Any, ...]:
    return (series.account, series.region, series.namespace, series.metric, series.dimensions, series.unit)


def unpack_samples(packed: Packed) -> list[Sample]:
    table, fields = packed
    series = list(starmap(Series, table))
    fields[0::SAMPLE_FIELDS] = map(series.__getitem__, fields[0::SAMPLE_FIELDS])
    rows = zip(*[iter(fields)] * SAMPLE_FIELDS)
    return list(map(_new_tuple, repeat(Sample), rows))


def pack_values(values: Sequence[DerivedValue]) -> list[tuple[Any, ...]]:
    return [
        (v.metric, v.scope, v.service, v.endpoint, v.layer, v.time_ms, v.value, v.instance, v.region, v.merged)
        for v in values
    ]


def unpack_values(rows: Sequence[tuple[Any, ...]]) -> list[DerivedValue]:
    return list(starmap(DerivedValue, rows))


_worker_rules: tuple[int, RuleSet] | None = None
"""In the worker: the rules it was last sent, with their version."""


_worker_minutes = MinuteStates()
"""In the worker: the minutes it keeps in step (receiver/derive/partitioned.py)."""

_worker_hours = HourStates()
"""In the worker: the hours it keeps in step (receiver/derive/hours.py)."""


def _rules_in_worker(version: int, rules_blob: bytes) -> RuleSet:
    global _worker_rules
    if _worker_rules is None or _worker_rules[0] != version:
        _worker_rules = (version, pickle.loads(rules_blob))
    return _worker_rules[1]


def evaluate_packed(version: int, rules_blob: bytes, packed: Packed) -> tuple[list[tuple[Any, ...]], dict[str, int]]:
    """In the worker: the packed values of the rules over the packed samples, and the
    count of values not computed per metric."""
    evaluation = evaluate_by_region(_rules_in_worker(version, rules_blob), unpack_samples(packed))
    return pack_values(evaluation.values), evaluation.not_computed


_PackedChanges = tuple[list[tuple[Any, ...]], list[Any], dict[str, int], int]
"""``Changes`` as the worker answers them: the upserts packed (``pack_values``)."""

_PackedPartitions = tuple[list[Partition], list[int], Packed]
"""Partitions as they cross to the worker: each partition, its sample count, and every
sample packed one partition after the other."""


def update_packed(
    step_ms: int,
    version: int,
    rules_blob: bytes,
    bucket_ms: int,
    changed: _PackedPartitions,
    families: dict[Partition, frozenset[str]] | None,
    live: frozenset[int],
) -> _PackedChanges | None:
    """In the worker: ``MinuteStates.update`` or ``HourStates.update`` of packed partitions,
    the changes packed."""
    rules = _rules_in_worker(version, rules_blob)
    states = _worker_minutes if step_ms == MINUTE_MS else _worker_hours
    return _packed(states.update(rules, bucket_ms, _unpack_partitions(changed), families, live))


def _unpack_partitions(changed: _PackedPartitions) -> dict[Partition, list[Sample]]:
    partitions, counts, packed = changed
    samples = unpack_samples(packed)
    by_partition: dict[Partition, list[Sample]] = {}
    offset = 0
    for partition, count in zip(partitions, counts):
        by_partition[partition] = samples[offset : offset + count]
        offset += count
    return by_partition


def _packed(changes: Changes | None) -> _PackedChanges | None:
    if changes is None:
        return None
    return pack_values(changes.upserts), changes.removals, changes.not_computed, changes.total
