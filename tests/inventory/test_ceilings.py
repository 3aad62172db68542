"""A table's ceilings (receiver/inventory/documents.py ``ceilings``) in either capacity mode."""

from __future__ import annotations

from receiver.inventory.documents import ON_DEMAND, PROVISIONED, Ceiling, ceilings

LIMITS = {"account_max_read": 80_000.0, "account_max_write": 80_000.0, "table_max_read": 40_000.0,
          "table_max_write": 40_000.0}  # fmt: skip


def table(billing_mode: str, **fields) -> dict:
    document = {"name": "Orders", "billing_mode": billing_mode, "indexes": [], "provisioned": None,
                "on_demand_max": None, "warm_throughput": None}  # fmt: skip
    document.update(fields)
    return document


def index(name: str, kind: str = "global", **fields) -> dict:
    document = {"name": name, "kind": kind, "provisioned": None, "on_demand_max": None, "warm_throughput": None}
    document.update(fields)
    return document


def test_a_provisioned_table_and_its_index_are_capped_by_their_provisioned_capacity() -> None:
    document = table(
        PROVISIONED,
        provisioned={"read": 100.0, "write": 50.0},
        indexes=[index("ByDate", provisioned={"read": 10.0, "write": 5.0}), index("Local", kind="local")],
    )
    assert ceilings(document, LIMITS) == [
        Ceiling("Orders", 100.0, 50.0, "provisioned", "provisioned", None, None),
        Ceiling("Orders/ByDate", 10.0, 5.0, "provisioned", "provisioned", None, None),
    ]


def test_an_on_demand_table_takes_its_maximum_else_the_accounts_per_table_maximum() -> None:
    document = table(
        ON_DEMAND,
        on_demand_max={"read": 1_000.0, "write": -1.0},  # -1: no maximum
        warm_throughput={"read": 12_000.0, "write": 4_000.0, "status": "ACTIVE"},
        indexes=[index("ByDate")],
    )
    assert ceilings(document, LIMITS) == [
        Ceiling("Orders", 1_000.0, 40_000.0, "on_demand_max", "account_table_max", 12_000.0, 4_000.0),
        Ceiling("Orders/ByDate", 40_000.0, 40_000.0, "account_table_max", "account_table_max", None, None),
    ]


def test_without_limits_an_on_demand_table_without_a_maximum_has_no_ceiling() -> None:
    assert ceilings(table(ON_DEMAND), None) == [Ceiling("Orders", None, None, None, None, None, None)]
