"""The deriver adds the inventory's ceilings to each bucket (receiver/derive/ceilings.py):
minute and hour values against the table's ceiling, from what the store's inventory holds."""

from __future__ import annotations

import pytest

from receiver.derive.ceilings import REFRESH_S
from receiver.derive.deriver import Deriver
from receiver.inventory.documents import ON_DEMAND, PROVISIONED, item_of
from receiver.model import HOUR_MS, LIMITS, MINUTE_MS, TABLE
from tests.builders import T0, make_sample

ACCOUNT = "123456789012"
SERVICE = f"aws-dynamodb::{ACCOUNT}"
HOUR = T0 - T0 % HOUR_MS


def table_document(name: str, billing_mode: str, **fields) -> dict:
    document = {
        "name": name,
        "account": ACCOUNT,
        "region": "us-east-1",
        "billing_mode": billing_mode,
        "indexes": [],
        "provisioned": None,
        "on_demand_max": None,
        "warm_throughput": None,
        "deleted": None,
    }
    document.update(fields)
    return document


LIMITS_DOCUMENT = {
    "account_max_read": 80_000.0,
    "account_max_write": 80_000.0,
    "table_max_read": 40_000.0,
    "table_max_write": 40_000.0,
}


class Ticks:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def derive_minutes(deriver, store, samples):
    await store.commit(f"r{len(samples)}-{samples[0].start_ms}", samples)
    deriver.touch(samples)
    await deriver.derive_pending()


async def value_of(store, metric, table, step_ms=MINUTE_MS, time_ms=T0):
    found = await store.derived(metric, step_ms, time_ms, time_ms, service=SERVICE, endpoint=table)
    return found[0].value if found else None


async def test_on_demand_and_provisioned_tables_are_measured_against_their_ceilings(store, rules):
    await store.put_inventory(
        [
            item_of(TABLE, ACCOUNT, "us-east-1", "Orders", T0, table_document("Orders", ON_DEMAND)),
            item_of(
                TABLE,
                ACCOUNT,
                "us-east-1",
                "GameScores",
                T0,
                table_document("GameScores", PROVISIONED, provisioned={"read": 200.0, "write": 50.0}),
            ),
            item_of(LIMITS, ACCOUNT, "us-east-1", "", T0, LIMITS_DOCUMENT),
        ]
    )
    deriver = Deriver(store, rules, minute_retention_days=100_000, monotonic=Ticks())
    samples = [
        make_sample("Orders", "ConsumedReadCapacityUnits", 0, value=120_000.0, count=100),  # 2,000 units/s
        make_sample("GameScores", "ConsumedReadCapacityUnits", 0, value=6_000.0, count=100),  # 100 units/s
    ]
    await derive_minutes(deriver, store, samples)
    # On demand without a maximum of its own: the account's per-table maximum.
    assert await value_of(store, "aws_dynamodb_endpoint_read_ceiling", "Orders") == 40_000.0
    assert await value_of(store, "aws_dynamodb_endpoint_read_ceiling_utilization", "Orders") == pytest.approx(5.0)
    assert await value_of(store, "aws_dynamodb_endpoint_read_ceiling_utilization", "GameScores") == pytest.approx(50.0)
    # The hour: its average consumption over the ceiling.
    await deriver.derive_bucket(HOUR_MS, HOUR)
    assert await value_of(
        store, "aws_dynamodb_endpoint_read_ceiling_utilization", "GameScores", HOUR_MS, HOUR
    ) == pytest.approx(50.0 / 60)


async def test_without_an_inventory_there_is_no_ceiling_and_other_values_are_unchanged(store, rules):
    deriver = Deriver(store, rules, minute_retention_days=100_000)
    samples = [make_sample("Orders", "ConsumedReadCapacityUnits", 0, value=600.0, count=10)]
    await derive_minutes(deriver, store, samples)
    assert await value_of(store, "aws_dynamodb_endpoint_read_ceiling_utilization", "Orders") is None
    assert await value_of(store, "aws_dynamodb_endpoint_consumed_read_capacity_units", "Orders") == 10.0


async def test_the_inventory_is_read_again_after_the_refresh_time_and_deleted_tables_have_no_ceiling(store, rules):
    ticks = Ticks()
    deriver = Deriver(store, rules, minute_retention_days=100_000, monotonic=ticks)
    orders = table_document("Orders", ON_DEMAND, on_demand_max={"read": 1_000.0, "write": 500.0})
    await store.put_inventory([item_of(TABLE, ACCOUNT, "us-east-1", "Orders", T0, orders)])
    await derive_minutes(deriver, store, [make_sample("Orders", "ConsumedReadCapacityUnits", 0, value=600.0)])
    assert await value_of(store, "aws_dynamodb_endpoint_read_ceiling", "Orders") == 1_000.0

    orders["on_demand_max"] = {"read": 2_000.0, "write": 500.0}
    await store.put_inventory([item_of(TABLE, ACCOUNT, "us-east-1", "Orders", T0, orders)])
    minute_1 = [make_sample("Orders", "ConsumedReadCapacityUnits", 1, value=600.0)]
    await derive_minutes(deriver, store, minute_1)
    assert await value_of(store, "aws_dynamodb_endpoint_read_ceiling", "Orders", time_ms=T0 + MINUTE_MS) == 1_000.0

    ticks.now += REFRESH_S
    minute_2 = [make_sample("Orders", "ConsumedReadCapacityUnits", 2, value=600.0)]
    await derive_minutes(deriver, store, minute_2)
    assert await value_of(store, "aws_dynamodb_endpoint_read_ceiling", "Orders", time_ms=T0 + 2 * MINUTE_MS) == 2_000.0

    orders["deleted"] = T0 / 1000
    await store.put_inventory([item_of(TABLE, ACCOUNT, "us-east-1", "Orders", T0, orders)])
    ticks.now += REFRESH_S
    minute_3 = [make_sample("Orders", "ConsumedReadCapacityUnits", 3, value=600.0)]
    await derive_minutes(deriver, store, minute_3)
    assert await value_of(store, "aws_dynamodb_endpoint_read_ceiling", "Orders", time_ms=T0 + 3 * MINUTE_MS) is None
