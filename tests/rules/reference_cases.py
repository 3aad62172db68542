"""Seeded inputs for the rules engine, and a bit-exact digest of what it gives over them.

``tests/rules/data/reference_digests.json`` holds the digests main's engine gave (before the
engine's internals were rewritten for speed); ``test_rules_engine_reference.py`` holds the
engine to them. Regenerate only when a rule or the rules' meaning changes on purpose:
``.venv/bin/python -m tests.rules.reference_cases > tests/rules/data/reference_digests.json``.

The digest covers every field of every value (floats by ``float.hex``, so 0.0 and -0.0
differ) and the counts of values not computed, in the order the engine gives them.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Callable, Iterator, Sequence

from benchmarks.whole.account import Account
from receiver.derive.regions import evaluate_by_region
from receiver.model import DerivedValue, Sample
from receiver.rules import RuleSet
from receiver.rules.incremental import PartitionedEvaluation
from receiver.rules.ruleset import Evaluation
from receiver_tools.workload import Workload
from tests.builders import T0
from tests.rules.rulekit import mixed_tables, pack, sample

NAMESPACES = ("AWS/DynamoDB", "Receiver/DynamoDBInventory", "AWS/Firehose", "AWS/CloudWatch/MetricStreams")
EXTREMES = (0.0, -0.0, 1.0, 2.5, 12345.678, 1e-300, 5e-324, 1e308, -1e308, 1.7e308, math.inf, -math.inf, math.nan)
"""Values that test the edges: signed zeros, the smallest and largest floats, values past
them (an hour's rolled-up sum can be inf) and NaN."""
COUNTS = (0.0, -0.0, 1.0, 3.0, 1e308)
DIMENSIONS = {
    "TableName": ("A", "B", "C"),
    "GlobalSecondaryIndexName": ("G", "H", ""),
    "Operation": ("GetItem", "PutItem", "Query", "Scan", "UpdateItem", "BatchGetItem", "TransactWriteItems", ""),
    "DeliveryStreamName": ("s1", "s2"),
    "MetricStreamName": ("m1",),
    "ReceivingRegion": ("eu-west-1", "us-west-2"),
}
"""Dimension values of the extreme samples; '' groups with a missing label in aggregations."""


def canonical(evaluation: Evaluation) -> list[object]:
    """The evaluation as plain data, floats by their bits."""
    return [[_value(v) for v in evaluation.values], sorted(evaluation.not_computed.items())]


def _value(value: DerivedValue) -> list[object]:
    return [
        value.metric,
        value.scope,
        value.service,
        value.endpoint,
        value.layer,
        value.time_ms,
        _number(value.value),
        value.instance,
        value.region,
        value.merged,
    ]


def _number(value: float) -> str:
    # A value may come out an int (a count read as such); its type is part of the value.
    return value.hex() if isinstance(value, float) else f"{type(value).__name__}:{value!r}"


def digest(data: object) -> str:
    return hashlib.sha256(json.dumps(data, separators=(",", ":")).encode()).hexdigest()


def account_minute(tables: int, seed: int) -> list[Sample]:
    """A minute of the whole-receiver bench's account: every metric of the DynamoDB pack."""
    return Account(tables, seed).minute(0, T0)


def pipeline_minutes(seed: int) -> list[Sample]:
    """Two minutes of the workload with the pipeline's own metrics (Firehose, metric streams)."""
    workload = Workload(seed=seed, tables=mixed_tables(24), pipeline=True)
    return [s for minute in workload.minutes(T0, 2) for s in minute]


def extreme_samples(rules: RuleSet, seed: int, size: int = 600) -> list[Sample]:
    """Samples of every family the rules read, with extreme values, over two minutes."""
    rng = random.Random(seed)
    metrics = sorted(_metrics(rules))
    found: dict[object, Sample] = {}
    for _ in range(size):
        namespace, metric = rng.choice(metrics)
        dimensions = {
            name: rng.choice(choices)
            for name, choices in DIMENSIONS.items()
            if rng.random() < 0.5 or name == "TableName"
        }
        stats = tuple((p, rng.choice(EXTREMES)) for p in ("p50", "p90", "p99", "p99.9") if rng.random() < 0.5)
        made = sample(
            metric,
            rng.choice(EXTREMES),
            rng.choice(COUNTS),
            minute=rng.randint(0, 1),
            low=rng.choice(EXTREMES),
            high=rng.choice(EXTREMES),
            stats=stats,
            namespace=namespace,
            account=rng.choice(("123456789012", "210987654321")),
            region=rng.choice(("us-east-1", "eu-west-1")),
            **dimensions,
        )
        found[made.identity] = made
    return list(found.values())


def _metrics(rules: RuleSet) -> set[tuple[str, str]]:
    """(namespace, metric) of every family the rules read."""
    prefixes = {"amazonaws_com_" + n.replace("/", "_") + "_": n for n in NAMESPACES}
    found = set()
    for family in rules.families():
        base = family.removesuffix("_sum").removesuffix("_count")
        # The longest matching prefix: 'AWS_CloudWatch_MetricStreams_' before 'AWS_'.
        for prefix in sorted(prefixes, key=len, reverse=True):
            if base.startswith(prefix):
                found.add((prefixes[prefix], base[len(prefix) :]))
                break
    return found


def partitioned(rules: RuleSet, samples: Sequence[Sample], seed: int) -> list[object]:
    """What a partitioned evaluation gives: updated in shuffled batches, then a fifth of its
    partitions replaced with other values (the changes it reports, and every value)."""
    rng = random.Random(seed)
    evaluation = PartitionedEvaluation(rules)
    groups = evaluation.by_partition(samples)
    keys = list(groups)
    rng.shuffle(keys)
    for start in range(0, len(keys), 9):
        evaluation.update({key: groups[key] for key in keys[start : start + 9]})
    first = canonical(evaluation.evaluation())
    evaluation.changes()
    replaced = {
        key: [s._replace(sum=s.sum * 3.0 + 1.0, max=s.max * 2.0) for s in groups[key]] for key in keys[: len(keys) // 5]
    }
    evaluation.update(replaced)
    changed, not_computed = evaluation.changes()
    changes = []
    for start, key in sorted(changed):
        value = evaluation.value(start, key)
        changes.append([start, list(key), None if value is None else _number(value)])
    return [first, changes, sorted(not_computed.items()), canonical(evaluation.evaluation())]


def cases() -> Iterator[tuple[str, Callable[[], object]]]:
    """(name, what to digest) for every reference case."""
    rules = pack()
    inputs: list[tuple[str, Callable[[], list[Sample]]]] = [
        ("account-40-7", lambda: account_minute(40, 7)),
        ("account-120-11", lambda: account_minute(120, 11)),
        ("pipeline-5", lambda: pipeline_minutes(5)),
        ("pipeline-9", lambda: pipeline_minutes(9)),
    ]
    inputs += [(f"extreme-{seed}", lambda seed=seed: extreme_samples(rules, seed)) for seed in (1, 2, 3, 4)]
    for name, make in inputs:
        yield f"{name}/by-region", lambda make=make: canonical(evaluate_by_region(rules, make()))
        yield f"{name}/evaluation", lambda make=make: canonical(rules.evaluation(make()))
        if PartitionedEvaluation(rules).supported:
            yield f"{name}/partitioned", lambda make=make: partitioned(rules, make(), 13)


if __name__ == "__main__":
    print(json.dumps({name: digest(make()) for name, make in cases()}, indent=1, sort_keys=True))
