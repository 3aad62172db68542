"""Values per region beside the merged ones (receiver/derive/regions.py), on the DynamoDB pack:
the merged values are exactly what the rules give over every region, and each region's values
are what they give over that region's samples alone."""

from __future__ import annotations

import dataclasses

import pytest

from receiver.config import REPOSITORY_RULES
from receiver.derive.regions import by_region, evaluate_by_region
from receiver.rules import load_rules
from tests.builders import make_sample

CONSUMED = "aws_dynamodb_endpoint_consumed_read_capacity_units"
ACCOUNT_CONSUMED = "aws_dynamodb_consumed_read_capacity_units"


@pytest.fixture(scope="module")
def rules():
    return load_rules(REPOSITORY_RULES)


def consumed(values, metric=CONSUMED):
    return sorted((v.endpoint, v.region, v.merged, v.value) for v in values if v.metric == metric)


def test_one_region_costs_one_evaluation_and_names_its_region(rules):
    samples = [make_sample("A", value=60.0, region="eu-west-1"), make_sample("B", value=120.0, region="eu-west-1")]
    values = evaluate_by_region(rules, samples).values
    assert consumed(values) == [("A", "eu-west-1", True, 1.0), ("B", "eu-west-1", True, 2.0)]
    # The same values as the rules give, region aside.
    assert [dataclasses.replace(v, region="") for v in values] == rules.evaluate(samples)


def test_a_table_in_two_regions_has_a_merged_value_and_one_per_region(rules):
    samples = [
        make_sample("Global", value=60.0, region="us-east-1"),
        make_sample("Global", value=180.0, region="eu-west-1"),
        make_sample("Local", value=30.0, region="eu-west-1"),
    ]
    values = evaluate_by_region(rules, samples).values
    assert consumed(values) == [
        ("Global", "", True, 4.0),
        ("Global", "eu-west-1", False, 3.0),
        ("Global", "us-east-1", False, 1.0),
        ("Local", "eu-west-1", True, 0.5),
    ]
    # The merged values are the rules' over every region, and account values stay account-wide.
    assert sorted((v.metric, v.endpoint or "", v.value) for v in values if v.merged) == sorted(
        (v.metric, v.endpoint or "", v.value) for v in rules.evaluate(samples)
    )
    assert consumed(values, ACCOUNT_CONSUMED) == [(None, "", True, 4.5)]


def test_exports_take_each_region_once(rules):
    samples = [
        make_sample("Global", value=60.0, region="us-east-1"),
        make_sample("Global", value=180.0, region="eu-west-1"),
        make_sample("Local", value=30.0, region="eu-west-1"),
    ]
    exported = by_region(evaluate_by_region(rules, samples).values)
    assert consumed(exported) == [
        ("Global", "eu-west-1", False, 3.0),
        ("Global", "us-east-1", False, 1.0),
        ("Local", "eu-west-1", True, 0.5),
    ]
    # A value stored before values had regions (merged, no region) is still exported.
    old = dataclasses.replace(rules.evaluate(samples[2:])[0], region="")
    assert by_region([old]) == [old]
