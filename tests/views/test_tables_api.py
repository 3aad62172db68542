"""``GET /api/v1/tables``: the inventory's tables with their ceilings and top keys."""

from __future__ import annotations

from receiver.inventory.documents import ON_DEMAND, PROVISIONED, item_of
from receiver.model import LIMITS, TABLE, TOP_KEYS
from receiver.store import open_store_from_url
from tests.apps import receiver_app, serve_app

ACCOUNT, OTHER = "123456789012", "210987654321"
UPDATED_MS = 1_700_000_000_000


def document(name: str, account: str, region: str, billing_mode: str, **fields) -> dict:
    base = {
        "name": name, "account": account, "region": region, "billing_mode": billing_mode, "indexes": [],
        "provisioned": None, "on_demand_max": None, "warm_throughput": None, "tags": {}, "item_count": 10,
        "size_bytes": 2048, "deleted": None,
    }  # fmt: skip
    return base | fields


ITEMS = [
    item_of(TABLE, ACCOUNT, "us-east-1", "Orders", UPDATED_MS, document("Orders", ACCOUNT, "us-east-1", ON_DEMAND)),
    item_of(
        TABLE, ACCOUNT, "eu-west-1", "Orders", UPDATED_MS,
        document("Orders", ACCOUNT, "eu-west-1", ON_DEMAND, on_demand_max={"read": 500.0, "write": None}),
    ),
    item_of(
        TABLE, ACCOUNT, "us-east-1", "GameScores", UPDATED_MS,
        document("GameScores", ACCOUNT, "us-east-1", PROVISIONED, provisioned={"read": 100.0, "write": 20.0},
                 tags={"team": "games"}),
    ),
    item_of(TABLE, OTHER, "us-east-1", "Billing", UPDATED_MS, document("Billing", OTHER, "us-east-1", ON_DEMAND)),
    item_of(LIMITS, ACCOUNT, "us-east-1", "", UPDATED_MS, {"account_max_read": 80_000.0, "account_max_write": 80_000.0,
                                                           "table_max_read": 40_000.0, "table_max_write": 40_000.0}),
    item_of(TOP_KEYS, ACCOUNT, "us-east-1", "GameScores", UPDATED_MS,
            {"start": 1.0, "end": 2.0, "keys": [{"key": ["p#1"], "value": 9.0}], "rules": ["r"]}),
]  # fmt: skip


async def get_tables(client, **params):
    response = await client.get("/api/v1/tables", params=params)
    return response.status, await response.json()


async def test_tables_are_listed_per_region_with_their_ceilings_and_top_keys() -> None:
    store = open_store_from_url("memory://")
    async with serve_app(receiver_app(store)) as client:
        await store.put_inventory(ITEMS)
        status, body = await get_tables(client, service=f"aws-dynamodb::{ACCOUNT}")
    assert status == 200
    assert body["inventory"] == {"enabled": False, "last_poll": None}
    listed = [(t["name"], t["region"]) for t in body["tables"]]
    assert listed == [("GameScores", "us-east-1"), ("Orders", "eu-west-1"), ("Orders", "us-east-1")]
    games, orders_eu, orders_us = body["tables"]
    assert games["updated"] == UPDATED_MS / 1000
    assert games["tags"] == {"team": "games"} and games["item_count"] == 10 and games["size_bytes"] == 2048
    assert games["ceilings"] == [
        {"endpoint": "GameScores", "read": 100.0, "write": 20.0, "read_source": "provisioned",
         "write_source": "provisioned", "warm_read": None, "warm_write": None}
    ]  # fmt: skip
    assert games["top_keys"]["keys"] == [{"key": ["p#1"], "value": 9.0}]
    # eu-west-1 has no limits item: its write side has no ceiling; us-east-1 has the account's.
    assert (orders_eu["ceilings"][0]["read"], orders_eu["ceilings"][0]["write"]) == (500.0, None)
    assert orders_us["ceilings"][0]["read_source"] == "account_table_max"
    assert orders_us["top_keys"] is None


async def test_service_and_region_narrow_the_list_and_without_them_every_account_is_listed() -> None:
    store = open_store_from_url("memory://")
    async with serve_app(receiver_app(store)) as client:
        await store.put_inventory(ITEMS)
        _, everything = await get_tables(client)
        _, one_region = await get_tables(client, service=f"aws-dynamodb::{ACCOUNT}", region="eu-west-1")
        _, unknown = await get_tables(client, service="aws-dynamodb::999999999999")
    assert everything["tables"][0]["account"] == OTHER and everything["tables"][0]["name"] == "Billing"
    assert len(everything["tables"]) == 4
    assert [(t["name"], t["region"]) for t in one_region["tables"]] == [("Orders", "eu-west-1")]
    assert unknown["tables"] == []


async def test_a_service_that_is_not_an_accounts_is_a_bad_query() -> None:
    async with serve_app(receiver_app()) as client:
        status, body = await get_tables(client, service="GameScores")
    assert status == 400
    assert body == {"error": "service 'GameScores' is not an account's service; give aws-dynamodb::<account id>"}
