"""Where the deriver evaluates rules: a thread of this process, or a worker process.

Evaluating the rules over a busy minute takes seconds of pure Python. In a thread it holds
the GIL all that time, and every delivery the receiver is taking meanwhile waits for the
GIL at each socket read and each SQLite call: with 2,000 tables, the benchmark took 5,300
datapoints per second while the deriver caught up, against 95,000 with the deriver idle.
``serve`` therefore evaluates in one worker process; the receiver's own process only packs
the samples and unpacks the values, about a twentieth of the evaluation's time.

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
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from itertools import chain, repeat, starmap
from typing import Any, Protocol

from receiver.derive.regions import evaluate_by_region
from receiver.model import SAMPLE_FIELDS, DerivedValue, Sample, Series
from receiver.rules import Evaluation, RuleSet

log = logging.getLogger("receiver.derive")

_new_tuple = tuple.__new__


class Evaluator(Protocol):
    async def evaluate(self, rules: RuleSet, samples: Sequence[Sample]) -> Evaluation:
        """``evaluate_by_region(rules, samples)``, wherever it runs."""
        ...

    def close(self) -> None:
        """Stop any worker; evaluate may still be called and starts a new one."""
        ...


class ThreadEvaluator:
    """Evaluates in a thread of this process: for tests and for embedding the receiver."""

    async def evaluate(self, rules: RuleSet, samples: Sequence[Sample]) -> Evaluation:
        return await asyncio.to_thread(evaluate_by_region, rules, samples)

    def close(self) -> None:
        pass


class ProcessEvaluator:
    """Evaluates in one worker process, started on first use and again if it dies."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._rules: RuleSet | None = None
        self._rules_blob = b""
        self._rules_version = 0
        self._no_worker = False

    async def evaluate(self, rules: RuleSet, samples: Sequence[Sample]) -> Evaluation:
        if rules is not self._rules:  # a reload: the worker gets the new rules once
            self._rules_blob = pickle.dumps(rules, pickle.HIGHEST_PROTOCOL)
            self._rules, self._rules_version = rules, self._rules_version + 1
        packed = await asyncio.to_thread(pack_samples, samples)
        for attempt in (1, 2):
            pool = self._pool or self._start()
            if pool is None:
                return await asyncio.to_thread(evaluate_by_region, rules, samples)
            try:
                rows, not_computed = await asyncio.wrap_future(
                    pool.submit(evaluate_packed, self._rules_version, self._rules_blob, packed)
                )
            except BrokenProcessPool:
                # The worker died, now or since the last call (killed, out of memory, could
                # not start): the next call starts another one.
                log.warning("the rule evaluation worker died", extra={"attempt": attempt})
                self._drop_pool(wait=False)
            else:
                return Evaluation(await asyncio.to_thread(unpack_values, rows), not_computed)
        log.error("the rule evaluation worker died twice; this pass evaluates in a thread")
        return await asyncio.to_thread(evaluate_by_region, rules, samples)

    def _start(self) -> ProcessPoolExecutor | None:
        """The worker pool, or None (and evaluation in threads from now on) if there can be none."""
        if self._no_worker:
            return None
        try:
            # spawn: a fork of this threaded, event-looping process could inherit held locks.
            self._pool = ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_start
            )
        except OSError as exc:  # no usable /dev/shm for the pool's semaphores
            log.warning("no worker process for rule evaluation, evaluating in a thread", extra={"error": str(exc)})
            self._no_worker = True
            return None
        return self._pool

    def close(self) -> None:
        self._drop_pool(wait=True)

    def _drop_pool(self, wait: bool) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=wait, cancel_futures=True)


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


def evaluate_packed(version: int, rules_blob: bytes, packed: Packed) -> tuple[list[tuple[Any, ...]], dict[str, int]]:
    """In the worker: the packed values of the rules over the packed samples, and the
    count of values not computed per metric."""
    global _worker_rules
    if _worker_rules is None or _worker_rules[0] != version:
        _worker_rules = (version, pickle.loads(rules_blob))
    evaluation = evaluate_by_region(_worker_rules[1], unpack_samples(packed))
    return pack_values(evaluation.values), evaluation.not_computed
