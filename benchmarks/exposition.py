"""`/metrics` written two ways: the receiver's own exposition against prometheus_client's.

The derived families of one minute (every endpoint metric of the repository's rules, for
every table, plus the service metrics) are built from the same ``DerivedValue``s and written
once by ``receiver.views.prometheus`` and once by a prometheus_client custom collector, the
way that library serves values it does not own. Both outputs are read back with
prometheus_client's own parser and compared sample by sample, so a faster writer that
wrote something else would show as ``same samples: no``.
"""

from __future__ import annotations

import random
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families

from receiver.config import REPOSITORY_RULES
from receiver.model import DerivedValue
from receiver.rules import load_rules
from receiver.rules.ruleset import MetricInfo
from receiver.views.prometheus import derived_families, entity_labels, render

ACCOUNT = "123456789012"
MINUTE_MS = 1_700_000_040_000


@dataclass(frozen=True, slots=True)
class ExpositionFigures:
    tables: int
    samples: int
    ours_s: float
    library_s: float
    ours_peak_bytes: int
    library_peak_bytes: int
    body_bytes: int
    same_samples: bool

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


def minute_of_values(metrics: list[MetricInfo], tables: int, seed: int = 1) -> list[DerivedValue]:
    """One value per (metric, entity): every table for endpoint metrics, the account otherwise."""
    rng = random.Random(seed)
    values = []
    for info in metrics:
        endpoints = [f"table-{i:05d}" for i in range(tables)] if info.scope == "endpoint" else [None]
        for endpoint in endpoints:
            values.append(
                DerivedValue(
                    info.name, info.scope, ACCOUNT, endpoint, info.layer, MINUTE_MS, round(rng.uniform(0, 5000), 3)
                )
            )
    return values


class DerivedCollector:
    """prometheus_client's custom collector over one minute of derived values."""

    def __init__(self, values: list[DerivedValue], metrics: list[MetricInfo]) -> None:
        self._values = values
        self._metrics = metrics

    def collect(self) -> Iterator[GaugeMetricFamily]:
        by_metric: dict[str, list[DerivedValue]] = {}
        for value in self._values:
            by_metric.setdefault(value.metric, []).append(value)
        for info in self._metrics:
            values = by_metric.get(info.name)
            if not values:
                continue
            names = [name for name, _ in entity_labels(values[0])]
            family = GaugeMetricFamily(
                info.name, f"{info.description.strip()} [unit: {info.unit}; latest complete minute]", labels=names
            )
            for value in values:
                family.add_metric([label for _, label in entity_labels(value)], value.value)
            yield family


def _samples(text: bytes) -> list[tuple[str, tuple[tuple[str, str], ...], float]]:
    return sorted(
        (sample.name, tuple(sorted(sample.labels.items())), sample.value)
        for family in text_string_to_metric_families(text.decode())
        for sample in family.samples
    )


def _best(work: Callable[[], bytes], repeats: int) -> tuple[float, bytes]:
    best, out = float("inf"), b""
    for _ in range(repeats):
        started = time.perf_counter()
        out = work()
        best = min(best, time.perf_counter() - started)
    return best, out


def _peak(work: Callable[[], bytes]) -> int:
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def measure(tables: int, repeats: int) -> ExpositionFigures:
    metrics = list(load_rules(REPOSITORY_RULES).metrics)
    values = minute_of_values(metrics, tables)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DerivedCollector(values, metrics))  # type: ignore[arg-type]

    def ours() -> bytes:
        return render(derived_families(values, metrics)).encode()

    def library() -> bytes:
        return generate_latest(registry)

    ours_s, ours_text = _best(ours, repeats)
    library_s, library_text = _best(library, repeats)
    return ExpositionFigures(
        tables=tables,
        samples=len(values),
        ours_s=ours_s,
        library_s=library_s,
        ours_peak_bytes=_peak(ours),
        library_peak_bytes=_peak(library),
        body_bytes=len(ours_text),
        same_samples=_samples(ours_text) == _samples(library_text),
    )
