"""Builders for the rules tests: CloudWatch samples and rule files in a few words."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from receiver.model import MINUTE_MS, Sample, Series
from receiver.rules import DerivedValue, RuleSet, load_rules
from tests.apps import repository_rules
from tests.builders import T0, make_sample

ACCOUNT = "123456789012"
SERVICE = f"aws-dynamodb::{ACCOUNT}"
"""A minute boundary."""
MINUTE = MINUTE_MS
DATA = Path(__file__).parent / "data"


def pack() -> RuleSet:
    """The repository's rules (loaded once for the run)."""
    return repository_rules()


def sample(
    metric: str,
    total: float,
    count: float = 1.0,
    *,
    minute: int = 0,
    low: float | None = None,
    high: float | None = None,
    stats: tuple[tuple[str, float], ...] = (),
    namespace: str = "AWS/DynamoDB",
    account: str = ACCOUNT,
    region: str = "us-east-1",
    labels: tuple[tuple[str, str], ...] = (),
    **dimensions: str,
) -> Sample:
    """One CloudWatch datapoint of ``metric`` with the given Sum and SampleCount."""
    series = Series(account, region, namespace, metric, tuple(sorted(dimensions.items())), "Count")
    return make_sample(
        series=series,
        minute=minute,
        value=total,
        count=count,
        low=total / count if low is None and count else (low or 0.0),
        high=total / count if high is None and count else (high or 0.0),
        stats=stats,
        labels=labels,
    )


def values(derived: Iterable[DerivedValue], metric: str) -> dict[tuple[str, str | None, int], float]:
    """{(service, endpoint, minute index): value} of one metric."""
    return {(d.service, d.endpoint, (d.time_ms - T0) // MINUTE): d.value for d in derived if d.metric == metric}


def evaluate(*samples: Sample) -> list[DerivedValue]:
    """The DynamoDB pack's values over ``samples``."""
    return pack().evaluate(samples)


def endpoint_value(derived: Iterable[DerivedValue], metric: str, endpoint: str = "GameScores", minute: int = 0):
    return values(derived, metric).get((SERVICE, endpoint, minute))


def service_value(derived: Iterable[DerivedValue], metric: str, minute: int = 0):
    return values(derived, metric).get((SERVICE, None, minute))


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def rules_from(tmp_path: Path, text: str, name: str = "rules.yaml") -> RuleSet:
    """A RuleSet from one rule file's text."""
    write(tmp_path, name, text)
    return load_rules(tmp_path)
