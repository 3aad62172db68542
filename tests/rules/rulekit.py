"""Builders for the rules tests: CloudWatch samples and rule files in a few words."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from hypothesis import strategies as st

from receiver.model import MINUTE_MS, Sample, Series
from receiver.rules import DerivedValue, RuleSet, load_rules
from receiver_tools.workload import TableSpec
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


# (CloudWatch metric, operations it comes with or None, whether indexes have it)
METRICS = [
    ("ConsumedReadCapacityUnits", None, True),
    ("ConsumedWriteCapacityUnits", None, True),
    ("ProvisionedReadCapacityUnits", None, True),
    ("ProvisionedWriteCapacityUnits", None, True),
    ("SuccessfulRequestLatency", ("GetItem", "BatchGetItem", "PutItem", "Query", "Scan"), False),
    ("ReturnedItemCount", ("Query", "Scan"), False),
    ("ThrottledRequests", ("GetItem", "PutItem", "UpdateItem"), False),
    ("SystemErrors", ("Query", "TransactWriteItems"), False),
    ("ReadThrottleEvents", None, True),
    ("TimeToLiveDeletedItemCount", None, False),
    ("UserErrors", None, False),
    ("AccountMaxReads", None, False),
]


@st.composite
def sample_sets(draw):
    """A set of samples with distinct identities, spread over tables, indexes and minutes."""
    found = {}
    for _ in range(draw(st.integers(1, 25))):
        metric, ops, indexed = draw(st.sampled_from(METRICS))
        dims = {}
        if metric not in ("UserErrors", "AccountMaxReads"):
            dims["TableName"] = draw(st.sampled_from(["A", "B"]))
            if indexed and draw(st.booleans()):
                dims["GlobalSecondaryIndexName"] = "G"
            if ops:
                dims["Operation"] = draw(st.sampled_from(ops))
        count = float(draw(st.integers(1, 500)))
        total = draw(st.floats(0, 1e6, allow_nan=False, allow_infinity=False))
        stats = (("p99", draw(st.floats(0, 1e4))),) if draw(st.booleans()) else ()
        s = sample(
            metric,
            total,
            count,
            minute=draw(st.integers(0, 2)),
            stats=stats,
            region=draw(st.sampled_from(["us-east-1", "eu-west-1"])),
            **dims,
        )
        found[s.identity] = s
    return list(found.values())


def mixed_tables(count: int) -> list[TableSpec]:
    """``count`` tables of the workload with its features mixed among them: a second region,
    indexes, provisioned capacity, TTL, transactions, PartiQL, streams, throttling causes."""
    return [
        TableSpec(
            f"t{index:03d}",
            regions=("us-east-1", "eu-west-1") if index % 6 == 0 else ("us-east-1",),
            indexes=("ByDate",) if index % 3 == 0 else (),
            provisioned=(100.0, 50.0) if index % 2 else None,
            ttl=index % 5 == 0,
            transactions=index % 4 == 0,
            partiql=index % 7 == 0,
            stream=index % 8 == 0,
            throttle_causes=("ProvisionedThroughput",) if index % 2 else ("AccountLimit",),
        )
        for index in range(count)
    ]
