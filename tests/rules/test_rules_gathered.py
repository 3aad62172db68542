"""The aggregation above a cut kept from each partition's part (receiver/rules/gathered.py)
gives, to the bit, what the aggregation gives over the union of every partition's points:
after any sequence of new, changed and forgotten partitions, with ±0, subnormals, values
near the largest float, points not computed (±inf), empty label values, several accounts
and regions; and a partitioned evaluation using it gives what ``RuleSet.evaluation`` gives.
Breaking the update (an old part left in) makes these checks fail."""

from __future__ import annotations

import math
import pickle
import random
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from receiver.model import Sample
from receiver.rules import RuleSet
from receiver.rules import families as f
from receiver.rules import gathered as g
from receiver.rules.families import exact
from receiver.rules.gathered import Gathered, aggregation_above
from receiver.rules.incremental import PartitionedEvaluation
from receiver.rules.partitions import split
from tests.rules.rulekit import rules_from, sample
from tests.rules.test_rules_incremental import Mirror

SPECIAL = [0.0, -0.0, 5e-324, -5e-324, 2.2250738585072014e-308, 1e-310, 1.5, -2.25, 0.1, 1e308, -1e308]
"""Values where exactness shows: signed zeros, subnormals, the largest magnitudes."""

VALUES = st.one_of(
    st.sampled_from(SPECIAL),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([math.inf, -math.inf]),
)

ACCOUNTS = ["111111111111", "222222222222"]
REGIONS = ["us-east-1", "eu-west-1"]
BYS = [("cloud_account_id",), ("cloud_account_id", "cloud_region"), ("cloud_account_id", "Operation"), ()]


def same(left: object, right: object) -> bool:
    """Equal to the last bit (pickled: 0.0 and -0.0 differ)."""
    return pickle.dumps(left) == pickle.dumps(right)


def by_group(family: f.Family) -> list[tuple[object, float]]:
    return sorted(zip(family.layout.labels, family.values), key=lambda item: item[0])


@st.composite
def partition_points(draw: st.DrawFn, table: str) -> list[f.Point]:
    """One partition's points: an account, a table, and points of its regions and operations
    (the operation sometimes '' or absent, which group together)."""
    account = draw(st.sampled_from(ACCOUNTS))
    points = []
    for index in range(draw(st.integers(0, 4))):
        labels = {"cloud_account_id": account, "TableName": table, "n": str(index)}
        labels["cloud_region"] = draw(st.sampled_from(REGIONS))
        operation = draw(st.sampled_from(["GetItem", "Query", "", None]))
        if operation is not None:
            labels["Operation"] = operation
        points.append(f.Point(tuple(sorted(labels.items())), draw(VALUES)))
    return points


def union(held: dict[str, list[f.Point]], seed: int) -> f.Family:
    """Every partition's points, partitions in a shuffled order."""
    tables = sorted(held)
    random.Random(seed).shuffle(tables)
    return f.Family.of(point for table in tables for point in held[table])


class Kept:
    """A ``Gathered`` and the points each partition was last given with, as the partitioned
    evaluation keeps them (its cuts), so that they can be taken out again."""

    def __init__(self, how: str, by: tuple[str, ...]) -> None:
        self.gathered = Gathered(how, by)
        self.given: dict[tuple[str, str, str], f.Family] = {}

    def put(self, partition: tuple[str, str, str], points: f.Family | None) -> None:
        old = self.given.pop(partition, None)
        if old is not None:
            self.gathered.remove(partition, old)
        if points:
            self.gathered.add(partition, points)
            self.given[partition] = points


def check_gathered(gathered: Gathered, held: dict[str, list[f.Point]], seed: int) -> bool:
    """The gathered groups against the aggregation over the union; whether it decided."""
    found = gathered.family(f.Memo())
    whole = f.aggregate(union(held, seed), gathered.how, gathered.by)
    if found is None:
        # Undecided only where the points' order can decide: both orders must then be tried.
        return False
    assert same(by_group(found), by_group(whole))
    return True


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_gathered_groups_follow_any_sequence_of_partition_updates(data):
    how = data.draw(st.sampled_from(["sum", "avg", "max", "min"]))
    by = data.draw(st.sampled_from(BYS))
    kept = Kept(how, by)
    held: dict[str, list[f.Point]] = {}
    for step in range(data.draw(st.integers(1, 8))):
        table = data.draw(st.sampled_from(["A", "B", "C", "D", ""]))
        if table in held and data.draw(st.booleans()):
            del held[table]  # forgotten
            kept.put(("x", "TableName", table), None)
        else:
            points = data.draw(partition_points(table))
            held[table] = points
            kept.put(("x", "TableName", table), f.Family.of(points))
        check_gathered(kept.gathered, held, seed=step)


def test_plain_values_are_decided_and_exact():
    # Many partitions, values whose float sums depend on order: the exact sum does not.
    for how in ("sum", "avg", "max", "min"):
        kept = Kept(how, ("cloud_account_id",))
        held: dict[str, list[f.Point]] = {}
        rng = random.Random(3)
        for table in range(200):
            name = f"t{table}"
            value = rng.choice(SPECIAL[2:-2]) * 1e300 + rng.random()
            held[name] = [f.Point((("cloud_account_id", ACCOUNTS[table % 2]), ("TableName", name)), value)]
            kept.put(("x", "TableName", name), f.Family.of(held[name]))
        for name in list(held)[::3]:
            held[name] = [f.Point(held[name][0].labels, 0.1 * rng.random())]
            kept.put(("x", "TableName", name), f.Family.of(held[name]))
        assert check_gathered(kept.gathered, held, seed=1)


def test_exact_units_are_whole_and_round_back():
    for value in [*SPECIAL[:-2], 1.7976931348623157e308, 3.0e-320, -123.456]:
        assert exact(value) / (1 << 1074) == value or value == 0
    assert exact(5e-324) == 1
    assert exact(-1.0) == -(1 << 1074)


def points(*values: float) -> dict[str, list[f.Point]]:
    """One point per partition, all in one group."""
    return {str(i): [f.Point((("cloud_account_id", "a"), ("n", str(i))), v)] for i, v in enumerate(values)}


def gathered_over(how: str, held: dict[str, list[f.Point]]) -> Kept:
    kept = Kept(how, ("cloud_account_id",))
    for table, found in held.items():
        kept.put(("a", "TableName", table), f.Family.of(found))
    return kept


@pytest.mark.parametrize(
    ("how", "values", "expected"),
    [
        ("max", (-0.0, 0.0, -0.0), 0.0),  # max() keeps the first of equals: the fold does not
        ("min", (0.0, -0.0, 0.0), -0.0),
        ("sum", (1e308, 1e308, -1e308), 1e308),  # fsum overflows part-way in this order only
        ("sum", (1.7e308, 1.7e308), math.inf),
        ("sum", (-0.0, -0.0), 0.0),
        ("avg", (-0.0,), -0.0),
        ("sum", (math.inf, 1.0), math.inf),
        ("sum", (-math.inf, 1.0), -math.inf),
        ("sum", (-math.inf, math.inf), math.inf),
        ("max", (-math.inf, 1.0), math.inf),
    ],
)
def test_the_folds_do_not_depend_on_the_order_and_gathering_agrees(how, values, expected):
    held = points(*values)
    for seed in range(6):
        assert same(f.aggregate(union(held, seed), how, ("cloud_account_id",)).values, [expected])
    found = gathered_over(how, held).gathered.family(f.Memo())
    assert found is not None and same(found.values, [expected])


def test_a_mean_past_the_largest_float_is_left_to_the_union():
    kept = gathered_over("avg", points(1.7e308, 1.7e308))
    assert kept.gathered.family(f.Memo()) is None
    kept.put(("a", "TableName", "1"), None)  # gone again: decided
    found = kept.gathered.family(f.Memo())
    assert found is not None and found.values == [1.7e308]


RULES = """
filter: "{ tags -> tags.Namespace == 'AWS/DynamoDB' }"
expSuffix: >-
  tag({tags -> tags.host_name = 'acct::' + tags.cloud_account_id})
  .service(['host_name'], Layer.AWS_DYNAMODB)
metricPrefix: t
metricsRules:
  - name: total
    exp: amazonaws_com_AWS_DynamoDB_ConsumedReadCapacityUnits_sum.sum(['cloud_account_id'])
  - name: mean
    exp: amazonaws_com_AWS_DynamoDB_ConsumedReadCapacityUnits_sum.avg(['cloud_account_id'])
  - name: largest
    exp: amazonaws_com_AWS_DynamoDB_ConsumedReadCapacityUnits_sum.max(['cloud_account_id'])
  - name: smallest
    exp: amazonaws_com_AWS_DynamoDB_ConsumedReadCapacityUnits_sum.min(['cloud_account_id'])
  - name: scaled
    exp: (amazonaws_com_AWS_DynamoDB_ConsumedReadCapacityUnits_sum * 1e300).sum(['cloud_account_id'])
  - name: scaled_down
    exp: (0 - amazonaws_com_AWS_DynamoDB_ConsumedReadCapacityUnits_sum * 1e300).sum(['cloud_account_id'])
  - name: ratio_by_region
    exp: >-
      (amazonaws_com_AWS_DynamoDB_ConsumedReadCapacityUnits_sum
      / amazonaws_com_AWS_DynamoDB_ConsumedReadCapacityUnits_count).avg(['cloud_account_id', 'cloud_region']) / 60
  - name: per_second
    exp: >-
      amazonaws_com_AWS_DynamoDB_ConsumedReadCapacityUnits_sum.sum(['cloud_account_id'])
      / amazonaws_com_AWS_DynamoDB_ConsumedReadCapacityUnits_count.sum(['cloud_account_id'])
  - name: by_operation
    exp: >-
      amazonaws_com_AWS_DynamoDB_ConsumedReadCapacityUnits_sum.sum(['cloud_account_id', 'Operation'])
      .max(['cloud_account_id'])
"""

SAMPLE_VALUES = st.one_of(
    st.sampled_from([0.0, -0.0, 5e-324, -5e-324, 1e-310, 1.5, -2.25, 1e308, -1e308]),
    st.floats(-1e6, 1e6, allow_nan=False),
)


@st.composite
def table_samples(draw: st.DrawFn, table: str) -> list[Sample]:
    """One table's samples (none: the table is gone)."""
    account = ACCOUNTS[0] if table in "AB" else ACCOUNTS[1]
    found = {}
    for _ in range(draw(st.integers(0, 3))):
        operation = draw(st.sampled_from(["GetItem", "Query", ""]))
        dims = {"TableName": table} if table else {}
        if operation:
            dims["Operation"] = operation
        s = sample(
            "ConsumedReadCapacityUnits",
            draw(SAMPLE_VALUES),
            float(draw(st.integers(0, 3))),
            account=account,
            region=draw(st.sampled_from(REGIONS)),
            **dims,
        )
        found[s.identity] = s
    return list(found.values())


def check_sequence(rules: RuleSet, steps: list[dict[str, list[Sample]]]) -> None:
    """Apply each step's tables to a partitioned evaluation; after each, its values and its
    changes equal the rules' over the samples held."""
    incremental = PartitionedEvaluation(rules)
    mirror = Mirror()
    current: dict[str, list[Sample]] = {}
    for step in steps:
        update = {}
        for table, samples in step.items():
            # A table's partition is read from its samples; a table with none is forgotten.
            key = incremental.by_partition(samples or current.get(table, []))
            for partition in key:
                update[partition] = samples
        incremental.update(update)
        current.update(step)
        every = [s for samples in current.values() for s in samples]
        whole = rules.evaluation(every)
        not_computed = mirror.apply(incremental)
        assert same(incremental.evaluation(), whole)
        assert mirror.values == Mirror.of(whole)
        assert not_computed == whole.not_computed


@st.composite
def sequences(draw: st.DrawFn) -> list[dict[str, list[Sample]]]:
    steps = []
    for _ in range(draw(st.integers(1, 6))):
        tables = draw(st.lists(st.sampled_from(["A", "B", "C", "D", ""]), min_size=1, max_size=3, unique=True))
        steps.append({table: draw(table_samples(table)) for table in tables})
    return steps


@pytest.fixture(scope="module")
def gathered_rules(tmp_path_factory: pytest.TempPathFactory) -> RuleSet:
    rules = rules_from(tmp_path_factory.mktemp("gathered"), RULES)
    for rule in rules.rules:
        parts = split(rule.expression)
        assert not parts.local
        assert all(aggregation_above(rule.expression, unit.expr) is not None for unit in parts.units)
    return rules


@settings(max_examples=150, deadline=None)
@given(sequences())
def test_partitioned_values_with_gathered_cuts_equal_the_whole_evaluation(gathered_rules, steps):
    check_sequence(gathered_rules, steps)


FIXED = [
    {"A": [sample("ConsumedReadCapacityUnits", 5.0, account=ACCOUNTS[0], TableName="A")]},
    {"B": [sample("ConsumedReadCapacityUnits", 7.0, account=ACCOUNTS[0], TableName="B")]},
    {"A": [sample("ConsumedReadCapacityUnits", 1.0, account=ACCOUNTS[0], TableName="A")]},
    {"B": []},
]


def test_the_fixed_sequence_passes(gathered_rules):
    check_sequence(gathered_rules, FIXED)


@contextmanager
def old_parts_kept(monkeypatch: pytest.MonkeyPatch, how: str) -> Iterator[None]:
    """A broken update: a partition's old part stays in its groups' totals, or in its groups."""

    def totals_kept(self: g._Group, partition: tuple[str, str, str]) -> None:
        del self.parts[partition]

    def parts_kept(self: g._Group, partition: tuple[str, str, str]) -> None:
        pass

    with monkeypatch.context() as patch:
        patch.setattr(g._Group, "remove", totals_kept if how == "totals" else parts_kept)
        yield


@pytest.mark.parametrize("broken", ["totals", "parts"])
def test_an_update_that_keeps_the_old_part_fails_the_checks(gathered_rules, monkeypatch, broken):
    with old_parts_kept(monkeypatch, broken), pytest.raises(AssertionError):
        check_sequence(gathered_rules, FIXED)
