"""A minute evaluated a partition at a time gives exactly what the rules give over all of it:
whatever the batches, the order of updates, replaced or forgotten partitions, failing
closures, entities named from several tables, and values past the largest float."""

from __future__ import annotations

import pickle
import random
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from receiver.model import Sample
from receiver.rules import RuleSet
from receiver.rules.incremental import PartitionedEvaluation
from receiver.rules.partitions import partition_of, split
from receiver_tools.workload import Workload
from tests.builders import T0
from tests.rules.rulekit import mixed_tables, pack, rules_from, sample, sample_sets


def same(left: object, right: object) -> bool:
    """Equal to the last bit (pickled: 0.0 and -0.0 differ, as do NaNs' payloads)."""
    return pickle.dumps(left) == pickle.dumps(right)


def check_batches(rules: RuleSet, samples: Sequence[Sample], seed: int, batch: int = 7) -> PartitionedEvaluation:
    """Update the partitions of ``samples`` in shuffled batches; the result equals the whole."""
    incremental = PartitionedEvaluation(rules)
    groups = incremental.by_partition(samples)
    keys = list(groups)
    random.Random(seed).shuffle(keys)
    for start in range(0, len(keys), batch):
        incremental.update({key: groups[key] for key in keys[start : start + batch]})
    assert same(incremental.evaluation(), rules.evaluation(samples))
    return incremental


def workload_minute(tables: int = 24) -> list[Sample]:
    workload = Workload(seed=5, tables=mixed_tables(tables), pipeline=True)
    return workload.minute(T0)


def test_every_rule_of_the_pack_can_be_taken_apart():
    splits = {rule.metric: split(rule.expression) for rule in pack().rules}
    assert not [metric for metric, parts in splits.items() if parts.whole]
    # Endpoint values come from one table's samples; account values add up every table's.
    assert splits["aws_dynamodb_endpoint_consumed_read_capacity_units"].local
    service = splits["aws_dynamodb_consumed_read_capacity_units"]
    assert not service.local
    assert [unit.label for unit in service.units] == ["TableName"]


def test_a_workload_minute_is_the_same_in_any_batches():
    samples = workload_minute()
    partitions = PartitionedEvaluation.by_partition(samples)
    assert len(partitions) > 24  # tables, plus the pipeline's streams and account-wide series
    for seed, batch in ((1, 1), (2, 5), (3, 1000)):
        check_batches(pack(), samples, seed, batch)


def test_replacing_and_forgetting_partitions_follows_the_samples():
    samples = workload_minute(12)
    incremental = check_batches(pack(), samples, seed=4)
    groups = incremental.by_partition(samples)
    table = next(key for key in groups if key[2] == "t003")
    doubled = [s._replace(sum=s.sum * 2, max=s.max * 2) for s in groups[table]]
    incremental.update({table: doubled})
    current = [s for key, group in groups.items() if key != table for s in group] + doubled
    assert same(incremental.evaluation(), pack().evaluation(current))
    incremental.update({table: []})
    rest = [s for key, group in groups.items() if key != table for s in group]
    assert same(incremental.evaluation(), pack().evaluation(rest))
    assert not [v for v in incremental.evaluation().values if v.endpoint and v.endpoint.startswith("t003")]
    incremental.update(groups)
    assert same(incremental.evaluation(), pack().evaluation(samples))


def test_a_partition_holds_every_series_of_its_table_and_nothing_else():
    index_sample = sample("ConsumedReadCapacityUnits", 5.0, TableName="A", GlobalSecondaryIndexName="G")
    table_sample = sample("ConsumedReadCapacityUnits", 5.0, TableName="A")
    account_wide = sample("AccountMaxReads", 5.0)
    other = sample("ConsumedReadCapacityUnits", 5.0, account="999999999999", TableName="A")
    assert partition_of(index_sample) == partition_of(table_sample) == ("123456789012", "TableName", "A")
    assert partition_of(account_wide) == ("123456789012", "TableName", "")
    assert partition_of(other) != partition_of(table_sample)
    firehose = sample("DeliveryToHttpEndpoint.Success", 1.0, namespace="AWS/Firehose", DeliveryStreamName="s")
    assert partition_of(firehose) == ("123456789012", "DeliveryStreamName", "s")
    unknown = sample("Anything", 1.0, namespace="Custom/Thing", TableName="A")
    assert partition_of(unknown) == ("123456789012", "", "")


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_random_sample_sets_and_random_updates(data):
    samples = data.draw(sample_sets())
    seed = data.draw(st.integers(0, 1000))
    incremental = check_batches(pack(), samples, seed, batch=data.draw(st.integers(1, 4)))
    # Change some partitions: new values for some samples, some samples gone.
    groups = incremental.by_partition(samples)
    changed = {}
    for key in data.draw(st.lists(st.sampled_from(sorted(groups)), max_size=3, unique=True)):
        kept = [s._replace(sum=s.sum + 1.5) for s in groups[key] if data.draw(st.booleans())]
        changed[key] = kept
    incremental.update(changed)
    current = [s for key, group in groups.items() for s in changed.get(key, group)]
    assert same(incremental.evaluation(), pack().evaluation(current))


ENDPOINT_BY_OPERATION = """
filter: "{ tags -> tags.Namespace == 'AWS/DynamoDB' }"
expSuffix: >-
  tag({tags -> tags.host_name = 'acct::' + tags.cloud_account_id})
  .endpoint(['host_name'], ['Operation'], Layer.AWS_DYNAMODB)
metricPrefix: t
metricsRules:
  - name: latency_by_operation
    exp: >-
      amazonaws_com_AWS_DynamoDB_SuccessfulRequestLatency_sum.sum(['cloud_account_id', 'TableName', 'Operation'])
      / amazonaws_com_AWS_DynamoDB_SuccessfulRequestLatency_count.sum(['cloud_account_id', 'TableName', 'Operation'])
  - name: table_of_operation
    exp: >-
      amazonaws_com_AWS_DynamoDB_SuccessfulRequestLatency_sum.sum(['cloud_account_id', 'TableName', 'Operation'])
      .tag({tags -> tags.TableName = 'all'}).sum(['cloud_account_id', 'Operation', 'TableName'])
"""


def test_an_entity_named_from_several_tables_gets_the_value_over_all_of_them(tmp_path):
    # Each table's points are local, but the endpoint (the operation) gathers every table:
    # its value is the mean over every table's point, not a mean of per-table means.
    rules = rules_from(tmp_path, ENDPOINT_BY_OPERATION)
    assert split(rules.rules[0].expression).local
    assert not split(rules.rules[1].expression).local  # the tag rewrites TableName
    samples = [
        sample("SuccessfulRequestLatency", total, count, TableName=table, Operation=operation)
        for table, total, count in (("A", 10.0, 2.0), ("B", 30.0, 1.0), ("C", 7.0, 7.0))
        for operation in ("GetItem", "Query")
    ]
    incremental = check_batches(rules, samples, seed=1, batch=1)
    table_b = partition_of(samples[2])
    incremental.update({table_b: []})
    rest = [s for s in samples if partition_of(s) != table_b]
    assert same(incremental.evaluation(), rules.evaluation(rest))


FAILING_CLOSURE = """
filter: "{ tags -> tags.Namespace == 'AWS/DynamoDB' }"
expSuffix: >-
  tag({tags -> tags.host_name = 'acct::' + tags.cloud_account_id})
  .endpoint(['host_name'], ['TableName'], Layer.AWS_DYNAMODB)
metricPrefix: t
metricsRules:
  - name: fails_without_an_index
    exp: >-
      amazonaws_com_AWS_DynamoDB_ConsumedReadCapacityUnits_sum
      .tag({tags -> tags.x = tags.GlobalSecondaryIndexName + tags.Missing})
      .sum(['cloud_account_id', 'TableName'])
  - name: account_total_fails_without_an_index
    exp: >-
      amazonaws_com_AWS_DynamoDB_ConsumedReadCapacityUnits_sum
      .tag({tags -> tags.x = tags.GlobalSecondaryIndexName + tags.Missing})
      .sum(['cloud_account_id']).tag({tags -> tags.TableName = 'all'})
  - name: never_fails
    exp: amazonaws_com_AWS_DynamoDB_ConsumedReadCapacityUnits_sum.sum(['cloud_account_id', 'TableName'])
"""


def test_a_closure_failing_in_one_table_costs_its_rule_every_value_as_over_the_whole_minute(tmp_path):
    rules = rules_from(tmp_path, FAILING_CLOSURE)
    with_index = [sample("ConsumedReadCapacityUnits", 3.0, TableName=t, GlobalSecondaryIndexName="G") for t in "AB"]
    without = sample("ConsumedReadCapacityUnits", 4.0, TableName="C")
    incremental = check_batches(rules, [*with_index, without], seed=2, batch=2)
    assert {v.metric for v in incremental.evaluation().values} == {"t_never_fails"}
    # The failing table gone, the rules give values again; back, they fail again.
    incremental.update({partition_of(without): []})
    assert same(incremental.evaluation(), rules.evaluation(with_index))
    assert {v.metric for v in incremental.evaluation().values} == {
        "t_never_fails",
        "t_fails_without_an_index",
        "t_account_total_fails_without_an_index",
    }
    incremental.update({partition_of(without): [without]})
    assert same(incremental.evaluation(), rules.evaluation([*with_index, without]))


def test_values_past_the_largest_float_are_left_out_and_counted_alike():
    samples = [sample("ConsumedReadCapacityUnits", 1.7e308, TableName=t) for t in "ABC"]
    samples += [sample("ConsumedReadCapacityUnits", 5.0, TableName="D")]
    incremental = check_batches(pack(), samples, seed=3, batch=1)
    assert incremental.evaluation().not_computed


def test_unknown_namespaces_are_kept_together_per_account(tmp_path):
    rules = rules_from(
        tmp_path,
        """
filter: "{ tags -> tags.Namespace == 'Custom/Thing' }"
expSuffix: >-
  tag({tags -> tags.host_name = 'acct::' + tags.cloud_account_id})
  .service(['host_name'], Layer.AWS_DYNAMODB)
metricPrefix: t
metricsRules:
  - name: per_table_sum
    exp: amazonaws_com_Custom_Thing_Calls_sum.sum(['cloud_account_id', 'TableName']).sum(['cloud_account_id'])
""",
    )
    samples = [sample("Calls", float(i), namespace="Custom/Thing", TableName=f"T{i}") for i in range(5)]
    assert len(PartitionedEvaluation.by_partition(samples)) == 1
    check_batches(rules, samples, seed=5, batch=1)


def test_a_rule_mixing_resources_cannot_be_taken_apart(tmp_path):
    rules = rules_from(
        tmp_path,
        """
expSuffix: >-
  tag({tags -> tags.host_name = 'acct::' + tags.cloud_account_id})
  .service(['host_name'], Layer.AWS_DYNAMODB)
metricPrefix: t
metricsRules:
  - name: mixed
    exp: >-
      amazonaws_com_AWS_DynamoDB_ConsumedReadCapacityUnits_sum.sum(['cloud_account_id'])
      + amazonaws_com_AWS_Firehose_IncomingRecords_sum.sum(['cloud_account_id'])
  - name: mixed_below_a_cut
    exp: >-
      (amazonaws_com_AWS_DynamoDB_ConsumedReadCapacityUnits_sum
      + amazonaws_com_AWS_Firehose_IncomingRecords_sum).sum(['cloud_account_id'])
""",
    )
    assert not split(rules.rules[0].expression).whole  # two cuts, each of one resource
    assert split(rules.rules[1].expression).whole
    incremental = PartitionedEvaluation(rules)
    assert not incremental.supported
    with pytest.raises(ValueError, match="cannot be evaluated a partition at a time"):
        incremental.update({})


class Mirror:
    """What a store holds when it applies each ``changes`` of a PartitionedEvaluation."""

    def __init__(self) -> None:
        self.values: dict[tuple[int, tuple[str, ...]], float] = {}

    def apply(self, incremental: PartitionedEvaluation) -> dict[str, int]:
        changed, not_computed = incremental.changes()
        for start, key in changed:
            value = incremental.value(start, key)
            if value is None:
                self.values.pop((start, key), None)
            else:
                self.values[(start, key)] = value
        return not_computed

    @staticmethod
    def of(evaluation) -> dict[tuple[int, tuple[str, ...]], float]:
        return {
            (v.time_ms, (v.metric, v.scope, v.service, v.endpoint or "", v.instance or "", v.layer)): v.value
            for v in evaluation.values
        }


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_the_changes_applied_one_after_another_give_the_values(data):
    samples = data.draw(sample_sets())
    incremental = PartitionedEvaluation(pack())
    mirror = Mirror()
    groups = incremental.by_partition(samples)
    current = {key: [] for key in groups}
    for _ in range(data.draw(st.integers(1, 5))):
        update = {}
        for key in data.draw(st.lists(st.sampled_from(sorted(groups)), min_size=1, unique=True)):
            kept = [s._replace(sum=s.sum + data.draw(st.sampled_from([0.0, 2.0]))) for s in groups[key]]
            update[key] = [s for s in kept if data.draw(st.booleans())]
        incremental.update(update)
        current.update(update)
        not_computed = mirror.apply(incremental)
        whole = pack().evaluation([s for group in current.values() for s in group])
        assert mirror.values == Mirror.of(whole)
        assert not_computed == whole.not_computed


def test_a_minute_whose_samples_all_go_reports_each_of_its_values_gone():
    samples = [sample("ConsumedReadCapacityUnits", 5.0, TableName=t, minute=m) for t in "AB" for m in (0, 1)]
    incremental = PartitionedEvaluation(pack())
    mirror = Mirror()
    groups = incremental.by_partition(samples)
    incremental.update(groups)
    mirror.apply(incremental)
    assert {start for start, _ in mirror.values} == {T0, T0 + 60_000}
    incremental.update({key: [s for s in group if s.start_ms == T0] for key, group in groups.items()})
    mirror.apply(incremental)
    assert mirror.values == Mirror.of(pack().evaluation([s for s in samples if s.start_ms == T0]))
    assert {start for start, _ in mirror.values} == {T0}


def test_only_the_rules_reading_a_changed_family_run_again(monkeypatch):
    from receiver.rules import incremental
    from receiver.rules.incremental import changed_families

    samples = workload_minute(6)
    evaluation = PartitionedEvaluation(pack())
    groups = evaluation.by_partition(samples)
    evaluation.update(groups)
    evaluation.changes()
    ran = []
    real = incremental.run_rule
    monkeypatch.setattr(incremental, "run_rule", lambda rule, *a, **k: ran.append(rule) or real(rule, *a, **k))
    table = next(key for key in groups if key[2] == "t001")
    after = [s._replace(sum=s.sum + 1) if s.series.metric == "ConsumedReadCapacityUnits" else s for s in groups[table]]
    families = {table: changed_families(groups[table], after)}
    assert families[table] == {
        "amazonaws_com_AWS_DynamoDB_ConsumedReadCapacityUnits",
        "amazonaws_com_AWS_DynamoDB_ConsumedReadCapacityUnits_sum",
        "amazonaws_com_AWS_DynamoDB_ConsumedReadCapacityUnits_count",
    }
    evaluation.update({table: after}, families)
    assert ran and all(families[table] & rule.shape.families for rule in ran)
    assert len({rule.metric for rule in ran}) < len(pack().rules) / 4
    current = [s for key, group in groups.items() if key != table for s in group] + after
    assert same(evaluation.evaluation(), pack().evaluation(current))
