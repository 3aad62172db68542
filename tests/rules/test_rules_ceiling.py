"""Ground truth of the ceiling rules (rules/aws-dynamodb/dynamodb-ceiling.yaml): utilization
against the inventory's ceilings in either capacity mode, worked out here by hand."""

from __future__ import annotations

import pytest

from receiver.derive.ceilings import ceiling_samples
from receiver.inventory.documents import Ceiling
from receiver.model import MINUTE_MS
from tests.builders import T0
from tests.rules.rulekit import ACCOUNT, endpoint_value, evaluate, sample

GAME = (ACCOUNT, "us-east-1", "GameScores", "")
GAME_INDEX = (ACCOUNT, "us-east-1", "GameScores", "ByPlayer")


def known(read: float | None, write: float | None, warm: tuple[float | None, float | None] = (None, None)):
    return Ceiling("GameScores", read, write, "provisioned", "provisioned", *warm)


def with_ceilings(samples, ceilings_by_endpoint):
    return [*samples, *ceiling_samples(samples, ceilings_by_endpoint, T0)]


def test_read_and_write_ceiling_utilization_are_consumed_per_second_over_the_ceiling() -> None:
    consumed = [
        sample("ConsumedReadCapacityUnits", 1_200.0, 40, TableName="GameScores"),  # 20 units/s
        sample("ConsumedWriteCapacityUnits", 1_500.0, 30, TableName="GameScores"),  # 25 units/s
    ]
    derived = evaluate(*with_ceilings(consumed, {GAME: known(80.0, 100.0)}))
    assert endpoint_value(derived, "aws_dynamodb_endpoint_read_ceiling") == 80.0
    assert endpoint_value(derived, "aws_dynamodb_endpoint_write_ceiling") == 100.0
    assert endpoint_value(derived, "aws_dynamodb_endpoint_read_ceiling_utilization") == pytest.approx(100 * 20 / 80)
    assert endpoint_value(derived, "aws_dynamodb_endpoint_write_ceiling_utilization") == pytest.approx(100 * 25 / 100)


def test_an_index_is_measured_against_its_own_ceiling() -> None:
    consumed = [
        sample("ConsumedReadCapacityUnits", 600.0, 10, TableName="GameScores"),
        sample("ConsumedReadCapacityUnits", 3_000.0, 10, TableName="GameScores", GlobalSecondaryIndexName="ByPlayer"),
    ]
    ceilings = {GAME: known(100.0, 100.0), GAME_INDEX: known(200.0, 200.0)}
    derived = evaluate(*with_ceilings(consumed, ceilings))
    assert endpoint_value(derived, "aws_dynamodb_endpoint_read_ceiling_utilization") == pytest.approx(10.0)
    assert endpoint_value(
        derived, "aws_dynamodb_endpoint_read_ceiling_utilization", "GameScores/ByPlayer"
    ) == pytest.approx(100 * 50 / 200)


def test_warm_throughput_and_its_utilization() -> None:
    consumed = [sample("ConsumedWriteCapacityUnits", 6_000.0, 60, TableName="GameScores")]  # 100 units/s
    derived = evaluate(*with_ceilings(consumed, {GAME: known(None, 40_000.0, (12_000.0, 4_000.0))}))
    assert endpoint_value(derived, "aws_dynamodb_endpoint_write_warm_throughput") == 4_000.0
    assert endpoint_value(derived, "aws_dynamodb_endpoint_write_warm_utilization") == pytest.approx(2.5)
    assert endpoint_value(derived, "aws_dynamodb_endpoint_read_warm_throughput") == 12_000.0
    # No read was consumed, and a ceiling the inventory does not know gives no value.
    assert endpoint_value(derived, "aws_dynamodb_endpoint_read_warm_utilization") is None
    assert endpoint_value(derived, "aws_dynamodb_endpoint_read_ceiling") is None


def test_a_table_in_two_regions_merges_as_consumed_over_the_sum_of_its_ceilings() -> None:
    consumed = [
        sample("ConsumedReadCapacityUnits", 600.0, 10, TableName="GameScores"),  # 10/s
        sample("ConsumedReadCapacityUnits", 2_400.0, 10, region="eu-west-1", TableName="GameScores"),  # 40/s
    ]
    ceilings = {GAME: known(100.0, 1.0), (ACCOUNT, "eu-west-1", "GameScores", ""): known(150.0, 1.0)}
    derived = evaluate(*with_ceilings(consumed, ceilings))
    assert endpoint_value(derived, "aws_dynamodb_endpoint_read_ceiling") == 250.0
    assert endpoint_value(derived, "aws_dynamodb_endpoint_read_ceiling_utilization") == pytest.approx(100 * 50 / 250)


def test_only_tables_with_samples_in_the_bucket_get_ceiling_samples() -> None:
    consumed = [sample("ConsumedReadCapacityUnits", 60.0, 1, TableName="GameScores")]
    other = (ACCOUNT, "us-east-1", "Quiet", "")
    added = ceiling_samples(consumed, {GAME: known(10.0, 5.0), other: known(1.0, 1.0)}, T0)
    assert {(s.series.metric, dict(s.series.dimensions)["TableName"], s.sum) for s in added} == {
        ("ReadCeiling", "GameScores", 10.0),
        ("WriteCeiling", "GameScores", 5.0),
    }
    assert all(s.start_ms == T0 and s.end_ms == T0 + MINUTE_MS and s.count == 1.0 for s in added)
