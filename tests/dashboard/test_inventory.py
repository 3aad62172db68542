"""The table inventory on the dashboard (issue 17): the table page's card of what the table is,
its headroom panel, the ceiling and most throttled keys in "why throttled", and the account
page's tag filter and grouping, in Chromium.

A receiver of its own holds the inventory account: inventory items in its store (as the
poller writes them), samples delivered as usual, and the headroom metrics stored as derived
values. What the charts draw is compared with what the query API answers; what the card says
is compared with the inventory documents below.

- "Orders": provisioned, with a global and a local index, every setting on, tags
  team=payments env=prod, throttled writes, and its most throttled keys;
- "Events": on demand in eu-west-1 and us-east-1 (a global table), its read maximum its own,
  its write maximum the account's per-table one; team=analytics env=prod;
- "Archive": deleted, env=test; "Sessions": provisioned, its tags unavailable (a problem);
- "Unlisted": reports metrics but the inventory has not described it yet.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from urllib.parse import quote, urlsplit

import pytest
import pytest_asyncio
from playwright.async_api import expect

from receiver.inventory.documents import ON_DEMAND, PROVISIONED, item_of
from receiver.inventory.poller import LEASE
from receiver.inventory.settings import InventorySettings
from receiver.keys import STORE
from receiver.model import LIMITS, MINUTE_MS, TABLE, TOP_KEYS, DerivedValue, Sample, Series
from receiver.store import open_store_from_url
from tests.apps import AppClient, receiver_app, repository_rules, serve_app
from tests.builders import make_sample
from tests.dashboard.conftest import Tab, query_points, screenshot_pages, show, shown
from tests.dashboard.fill import MINUTES, current_minute_ms

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

ACCOUNT = "567890123456"
SERVICE = f"aws-dynamodb::{ACCOUNT}"
EAST, WEST = "us-east-1", "eu-west-1"
PREFIX = "aws_dynamodb_endpoint_"
LAYER = "AWS_DYNAMODB"
HEADROOM = [
    f"{PREFIX}{direction}_{name}"
    for direction in ("read", "write")
    for name in ("ceiling", "ceiling_utilization", "warm_throughput", "warm_utilization")
]
POLLED_MINUTES_AGO = 3
ACCOUNT_HASH = f"#/account/{quote(SERVICE, safe='')}"

CHARTS = """(panel) => [...document.querySelectorAll(`section[data-panel="${panel}"] figure.chart`)].map((figure) => ({
  id: figure.dataset.chart,
  state: figure.dataset.state,
  metrics: [...figure.querySelectorAll(".legend li")].map((item) => item.dataset.metric),
  vertices: Object.fromEntries([...figure.querySelectorAll("path.line")].map(
    (path) => [path.dataset.metric, (path.getAttribute("d").match(/[ML]/g) || []).length])),
}))"""
PANELS = "() => [...document.querySelectorAll('section[data-panel]')].map((section) => section.dataset.panel)"
ROWS = """(table) => [...document.querySelectorAll(`table[data-table="${table}"] tbody tr[data-row]`)].map((row) => ({
  id: row.dataset.row,
  group: row.parentElement.dataset.group ?? (row.parentElement.dataset.ungrouped === "" ? null : undefined),
  cells: Object.fromEntries([...row.cells].map((cell) => [cell.dataset.column,
    { value: cell.dataset.value, text: cell.textContent }])),
}))"""
GROUPS = """() => [...document.querySelectorAll('table[data-table="tables"] tr.group-heading th')].map(
  (th) => th.firstChild.textContent)"""


def table_hash(endpoint: str, query: str = "") -> str:
    return f"#/table/{quote(SERVICE, safe='')}/{quote(endpoint, safe='')}{query}"


# -- the inventory's documents ---------------------------------------------------------------


def throughput(read: float | None, write: float | None) -> dict:
    return {"read": read, "write": write}


def index(name: str, kind: str, provisioned: dict | None = None, warm: dict | None = None) -> dict:
    return {
        "name": name,
        "kind": kind,
        "status": "ACTIVE",
        "item_count": 5_000 if kind == "global" else 7_000,
        "size_bytes": 640_000,
        "provisioned": provisioned,
        "on_demand_max": None,
        "warm_throughput": warm,
    }


def table(name: str, region: str, **fields) -> dict:
    """A table document (receiver/inventory/documents.py TableDocument): an active, provisioned
    table without settings, changed by ``fields``."""
    document = {
        "name": name,
        "account": ACCOUNT,
        "region": region,
        "arn": f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/{name}",
        "status": "ACTIVE",
        "created": 1_700_000_000.0,
        "billing_mode": PROVISIONED,
        "table_class": "STANDARD",
        "deletion_protection": False,
        "item_count": 100,
        "size_bytes": 12_000,
        "tags": {},
        "indexes": [],
        "provisioned": throughput(50, 20),
        "on_demand_max": None,
        "warm_throughput": None,
        "ttl": {"status": "DISABLED", "attribute": None},
        "stream": {"enabled": False, "view_type": None, "label": None},
        "replicas": [],
        "point_in_time_recovery": "DISABLED",
        "contributor_insights": {"status": "DISABLED", "rules": []},
        "deleted": None,
        "problems": {},
    }
    document.update(fields)
    return document


ORDERS = table(
    "Orders",
    EAST,
    table_class="STANDARD_INFREQUENT_ACCESS",
    deletion_protection=True,
    item_count=1_234_567,
    size_bytes=2_470_000_000,
    tags={"team": "payments", "env": "prod"},
    indexes=[
        index("ByCustomer", "global", throughput(100, 40), {"read": 3000, "write": 1000, "status": "ACTIVE"}),
        index("ByDate", "local"),
    ],
    provisioned=throughput(500, 200),
    warm_throughput={"read": 12_000, "write": 4_000, "status": "ACTIVE"},
    ttl={"status": "ENABLED", "attribute": "expiresAt"},
    stream={"enabled": True, "view_type": "NEW_AND_OLD_IMAGES", "label": "2026-01-01T00:00:00.000"},
    point_in_time_recovery="ENABLED",
    contributor_insights={"status": "ENABLED", "rules": ["DynamoDBContributorInsights-PKT-Orders", "SKT-Orders"]},
)
EVENTS = {
    region: table(
        "Events",
        region,
        billing_mode=ON_DEMAND,
        provisioned=None,
        on_demand_max=throughput(10_000, None),
        tags={"team": "analytics", "env": "prod"},
        replicas=[{"region": EAST, "status": "ACTIVE"}, {"region": WEST, "status": "ACTIVE"}],
    )
    for region in (EAST, WEST)
}
LIMITS_DOCUMENT = {
    "account_max_read": 80_000,
    "account_max_write": 80_000,
    "table_max_read": 40_000,
    "table_max_write": 40_000,
}
ARCHIVE = table("Archive", EAST, status="DELETED", tags={"env": "test"}, deleted=None)
SESSIONS = table(
    "Sessions",
    EAST,
    problems={"ListTagsOfResource": "AccessDenied: not authorized to perform dynamodb:ListTagsOfResource"},
)
TOP_KEYS_DOCUMENT = {
    "keys": [
        {"key": ["customer#42", "2026-03-01"], "value": 120.0},
        {"key": ["customer#7"], "value": 30.0},
    ],
    "rules": ["DynamoDBContributorInsights-PKT-Orders", "SKT-Orders"],
}


def inventory_items(now_ms: int) -> list:
    updated = now_ms - POLLED_MINUTES_AGO * MINUTE_MS
    archive = {**ARCHIVE, "deleted": (now_ms - 3600_000) / 1000}
    top_keys = {**TOP_KEYS_DOCUMENT, "start": (now_ms - 1800_000) / 1000, "end": now_ms / 1000}
    return [
        item_of(TABLE, ACCOUNT, EAST, "Orders", updated, ORDERS),
        *(item_of(TABLE, ACCOUNT, region, "Events", updated, document) for region, document in EVENTS.items()),
        item_of(TABLE, ACCOUNT, EAST, "Archive", updated, archive),
        item_of(TABLE, ACCOUNT, EAST, "Sessions", updated, SESSIONS),
        item_of(LIMITS, ACCOUNT, EAST, "", updated, LIMITS_DOCUMENT),
        item_of(LIMITS, ACCOUNT, WEST, "", updated, LIMITS_DOCUMENT),
        item_of(TOP_KEYS, ACCOUNT, EAST, "Orders", updated, top_keys),
    ]


# -- the samples and the headroom values -----------------------------------------------------


def sample(region: str, metric: str, start: int, total: float, count: float = 1.0, **dimensions: str) -> Sample:
    series = Series(ACCOUNT, region, "AWS/DynamoDB", metric, tuple(sorted(dimensions.items())), "Count")
    return make_sample(series=series, start_ms=start, value=total, count=count, labels=())


def orders_read(i: int) -> float:
    """Orders' consumed read units/s in minute i."""
    return 100.0 + 10 * i


def samples(minute_ms: int) -> list[Sample]:
    orders = {"TableName": "Orders"}
    by_customer = {"TableName": "Orders", "GlobalSecondaryIndexName": "ByCustomer"}
    found: list[Sample] = []
    for i in range(MINUTES):
        start = minute_ms - (MINUTES - i) * MINUTE_MS
        found += [
            sample(EAST, "ConsumedReadCapacityUnits", start, 60 * orders_read(i), 6, **orders),
            sample(EAST, "ConsumedWriteCapacityUnits", start, 60 * 80.0, 6, **orders),
            sample(EAST, "ProvisionedReadCapacityUnits", start, 500.0, **orders),
            sample(EAST, "ConsumedReadCapacityUnits", start, 60 * 20.0, 2, **by_customer),
            sample(EAST, "ConsumedReadCapacityUnits", start, 60 * 900.0, 9, TableName="Events"),
            sample(WEST, "ConsumedReadCapacityUnits", start, 60 * 300.0, 3, TableName="Events"),
            sample(EAST, "ConsumedReadCapacityUnits", start, 60 * 5.0, 1, TableName="Archive"),
            sample(EAST, "ConsumedReadCapacityUnits", start, 60 * 7.0, 1, TableName="Sessions"),
            sample(EAST, "ConsumedReadCapacityUnits", start, 60 * 3.0, 1, TableName="Unlisted"),
        ]
        if i % 3 == 1:
            found += [
                sample(EAST, "ThrottledRequests", start, 6.0, 6, Operation="PutItem", **orders),
                sample(EAST, "WriteThrottleEvents", start, 6.0, 6, **orders),
                sample(EAST, "WriteProvisionedThroughputThrottleEvents", start, 5.0, 5, **orders),
                sample(EAST, "WriteKeyRangeThroughputThrottleEvents", start, 1.0, 1, **orders),
            ]
    return found


def headroom(minute: int, i: int) -> list[DerivedValue]:
    """The headroom metrics of minute i: Orders' (provisioned, every one) and Events' (on demand,
    ceilings only: no warm throughput), as the rules would derive them."""

    def value(metric: str, endpoint: str, number: float, region: str = EAST, merged: bool = True) -> DerivedValue:
        return DerivedValue(
            PREFIX + metric, "endpoint", SERVICE, endpoint, LAYER, minute, number, region=region, merged=merged
        )

    read = orders_read(i)
    values = [
        value("read_ceiling", "Orders", 500.0),
        value("write_ceiling", "Orders", 200.0),
        value("read_ceiling_utilization", "Orders", 100 * read / 500),
        value("write_ceiling_utilization", "Orders", 100 * 80 / 200),
        value("read_warm_throughput", "Orders", 12_000.0),
        value("write_warm_throughput", "Orders", 4_000.0),
        value("read_warm_utilization", "Orders", 100 * read / 12_000),
        value("write_warm_utilization", "Orders", 100 * 80 / 4_000),
    ]
    # Events in each region, then merged (Σ consumed ÷ Σ ceilings).
    for region, consumed in ((EAST, 900.0), (WEST, 300.0)):
        values += [
            value("read_ceiling", "Events", 10_000.0, region, merged=False),
            value("write_ceiling", "Events", 40_000.0, region, merged=False),
            value("read_ceiling_utilization", "Events", 100 * consumed / 10_000, region, merged=False),
        ]
    values += [
        value("read_ceiling", "Events", 20_000.0, ""),
        value("write_ceiling", "Events", 80_000.0, ""),
        value("read_ceiling_utilization", "Events", 100 * 1200 / 20_000, ""),
    ]
    return values


async def store_headroom(client: AppClient, minute_ms: int) -> None:
    """Each minute's headroom values in place of whatever the deriver made of them: the
    bucket's other values are kept, and the bucket's version is raised past its samples'."""
    store = client.app[STORE]
    for i in range(MINUTES):
        minute = minute_ms - (MINUTES - i) * MINUTE_MS
        kept = [value for value in await store.bucket_values(MINUTE_MS, minute) if value.metric not in HEADROOM]
        version = (await store.versions(MINUTE_MS, [minute]))[minute] + 1
        assert await store.put_derived(MINUTE_MS, minute, version, kept + headroom(minute, i))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def receiver() -> AsyncIterator[AppClient]:
    undefined = [metric for metric in HEADROOM if repository_rules().metric(metric) is None]
    assert not undefined, f"the rules do not define {undefined} (rules/aws-dynamodb/dynamodb-ceiling.yaml)"
    store = open_store_from_url("memory://")
    await store.open()
    # Another replica holds the poller's lease for the day: this one polls no AWS account and
    # serves the inventory the store holds.
    now_ms = int(time.time() * 1000)
    assert await store.take_lease(LEASE, "another replica", now_ms, 86_400_000)
    await store.put_inventory(inventory_items(now_ms))
    async with serve_app(receiver_app(store, inventory=InventorySettings((EAST, WEST)))) as client:
        minute_ms = current_minute_ms()
        await client.deliver(samples(minute_ms))
        await store_headroom(client, minute_ms)
        yield client


async def api_points(receiver: AppClient, metric: str, endpoint: str, region: str | None = None) -> list:
    return await query_points(receiver, metric, SERVICE, endpoint, region=region)


def fact(tab: Tab, key: str):
    return tab.page.locator(f'section[data-panel="inventory"] [data-fact="{key}"]')


async def assert_facts(tab: Tab, expected: dict[str, list[str]]) -> None:
    for key, texts in expected.items():
        for text in texts:
            await expect(fact(tab, key)).to_contain_text(text)


# -- the card ---------------------------------------------------------------------------------


async def test_the_card_says_what_a_provisioned_table_is(tab, receiver):
    await show(tab, receiver, table_hash("Orders"))
    card = tab.page.locator('section[data-panel="inventory"]')
    await expect(card.get_by_role("heading", level=2)).to_contain_text("What the table is")
    # Polled three minutes before the fixture started (a minute more if the clock turned since).
    await expect(card.locator(".polled")).to_have_text(
        re.compile(f"polled ({POLLED_MINUTES_AGO}|{POLLED_MINUTES_AGO + 1}) min ago")
    )
    await assert_facts(
        tab,
        {
            "billing-mode": ["Provisioned"],
            "read-ceiling": ["500 units/s", "provisioned"],
            "write-ceiling": ["200 units/s", "provisioned"],
            "warm-throughput": ["read 12,000 · write 4,000 units/s"],
            "size": ["1,234,567 items · 2.47 GB", "about every six hours"],
            "table-class": ["Standard-IA"],
            "ttl": ["on, attribute expiresAt"],
            "stream": ["on, new and old images"],
            "replicas": ["none"],
            "point-in-time-recovery": ["on"],
            "deletion-protection": ["on"],
            "contributor-insights": ["on", "2 rules"],
        },
    )
    # Its indexes: the global one with its own ceilings, linking to its page; the local one shares the table's.
    rows = {row["id"]: row["cells"] for row in await tab.page.evaluate(ROWS, "indexes")}
    assert set(rows) == {"ByCustomer", "ByDate"}
    assert rows["ByCustomer"]["kind"]["text"] == "global"
    assert rows["ByCustomer"]["read"]["text"] == "100 (provisioned)"
    assert rows["ByCustomer"]["write"]["text"] == "40 (provisioned)"
    assert rows["ByDate"]["read"]["text"] == "the table's"
    await expect(card.get_by_role("link", name="ByCustomer")).to_have_attribute("href", table_hash("Orders/ByCustomer"))
    await expect(card.locator(".tag")).to_have_text(["envprod", "teampayments"])
    await expect(card.locator(".deleted")).to_have_count(0)
    await expect(card.locator(".problems")).to_have_count(0)
    # The card comes before the charts.
    assert (await tab.page.evaluate(PANELS))[0] == "inventory"
    assert tab.errors == []


async def test_the_card_of_an_on_demand_table_names_where_each_ceiling_comes_from(tab, receiver):
    await show(tab, receiver, table_hash("Events", f"?region={WEST}"))
    card = tab.page.locator('section[data-panel="inventory"]')
    await expect(card).to_have_attribute("data-region", WEST)
    await assert_facts(
        tab,
        {
            "billing-mode": ["On-demand"],
            "read-ceiling": ["10,000 units/s", "on-demand maximum"],
            "write-ceiling": ["40,000 units/s", "account per-table maximum"],
            "warm-throughput": ["none known"],
            "replicas": [f"{EAST}, {WEST}"],
        },
    )
    await expect(card.locator('[data-fact="read-ceiling"] .detail')).to_have_text("on-demand maximum")
    await expect(card.locator('[data-fact="write-ceiling"] .detail')).to_have_text("account per-table maximum")


async def test_a_table_in_several_regions_asks_for_one(tab, receiver):
    await show(tab, receiver, table_hash("Events"))
    note = tab.page.locator('[data-inventory="regions"]')
    await expect(note).to_contain_text("in each of its regions")
    await expect(tab.page.locator('section[data-panel="inventory"]')).to_have_count(0)
    # On demand in both regions: the merged headroom says how such a table throttles.
    await expect(tab.page.locator('section[data-panel="headroom"] .on-demand-note')).to_be_visible()
    await note.get_by_role("link", name=EAST).click()
    await shown(tab)
    assert urlsplit(tab.page.url).fragment == table_hash("Events", f"?region={EAST}")[1:]
    await expect(tab.page.locator('section[data-panel="inventory"]')).to_have_attribute("data-region", EAST)


async def test_an_index_page_describes_the_index(tab, receiver):
    await show(tab, receiver, table_hash("Orders/ByCustomer"))
    card = tab.page.locator('section[data-panel="inventory"]')
    await expect(card.get_by_role("heading", level=2)).to_contain_text("What the index is")
    await assert_facts(
        tab,
        {
            "kind": ["global secondary index", "of table Orders"],
            "read-ceiling": ["100 units/s", "provisioned"],
            "warm-throughput": ["read 3,000 · write 1,000 units/s"],
            "size": ["5,000 items · 640 KB"],
        },
    )
    await expect(card.get_by_role("link", name="Orders")).to_have_attribute("href", table_hash("Orders"))


async def test_a_deleted_table_says_so(tab, receiver):
    await show(tab, receiver, table_hash("Archive"))
    notice = tab.page.locator('section[data-panel="inventory"] .deleted')
    await expect(notice).to_contain_text("This table was deleted")
    await expect(notice).to_have_attribute("role", "status")


async def test_a_failed_call_is_a_quiet_note(tab, receiver):
    await show(tab, receiver, table_hash("Sessions"))
    problem = tab.page.locator('section[data-panel="inventory"] .problems li[data-api="ListTagsOfResource"]')
    await expect(problem).to_have_text(
        "tags unavailable: AccessDenied: not authorized to perform dynamodb:ListTagsOfResource"
    )
    await expect(tab.page.locator('section[data-panel="inventory"] .tags')).to_contain_text("none")


async def test_a_table_not_polled_yet_says_so(tab, receiver):
    await show(tab, receiver, table_hash("Unlisted"))
    await expect(tab.page.locator('[data-inventory="unknown"]')).to_contain_text(
        "The inventory has not polled this table yet"
    )
    await expect(tab.page.locator('section[data-panel="inventory"]')).to_have_count(0)


async def test_without_the_inventory_one_line_says_how_to_turn_it_on(tab):
    async with serve_app(receiver_app()) as plain:
        minute_ms = current_minute_ms()
        await plain.deliver(samples(minute_ms))
        await show(tab, plain, table_hash("Orders"))
        note = tab.page.locator('[data-inventory="off"]')
        await expect(note).to_contain_text("The table inventory is off")
        await expect(note.locator("code")).to_have_text(["--inventory REGION", "RECEIVER_INVENTORY=REGION"])
        await expect(tab.page.locator('section[data-panel="inventory"]')).to_have_count(0)
        panels = await tab.page.evaluate(PANELS)
        assert "headroom" not in panels
        # Why throttled is there, without a ceiling or keys.
        assert "why-throttled" in panels
        await expect(tab.page.locator('section[data-panel="why-throttled"] .ceiling')).to_have_count(0)
        await expect(tab.page.locator('table[data-table="top-keys"]')).to_have_count(0)
        # The account page has no tag controls.
        await show(tab, plain, ACCOUNT_HASH)
        await expect(tab.page.locator(".tag-controls")).to_have_count(0)
        assert [row for row, _ in await rows(tab)] == ALL_ROWS
    assert tab.errors == []


# -- headroom --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "region", "charts"),
    [
        (
            "Orders",
            None,
            ["ceiling-utilization", "read-ceiling", "write-ceiling", "warm-utilization", "read-warm", "write-warm"],
        ),
        # Events has ceilings but no warm throughput: those charts are left out.
        ("Events", WEST, ["ceiling-utilization", "read-ceiling", "write-ceiling"]),
    ],
)
async def test_the_headroom_panel_charts_what_the_api_answers(tab, receiver, endpoint, region, charts):
    await show(tab, receiver, table_hash(endpoint, f"?region={region}" if region else ""))
    drawn = await tab.page.evaluate(CHARTS, "headroom")
    assert [chart["id"] for chart in drawn] == charts
    for chart in drawn:
        assert chart["state"] == "data", chart
        for metric in chart["metrics"]:
            points = await api_points(receiver, metric, endpoint, region)
            assert chart["vertices"].get(metric, 0) == len(points), (chart["id"], metric)
    read = next(chart for chart in drawn if chart["id"] == "read-ceiling")
    assert read["metrics"] == [f"{PREFIX}consumed_read_capacity_units", f"{PREFIX}read_ceiling"]
    assert read["vertices"][f"{PREFIX}read_ceiling"] == MINUTES
    # The panel follows the capacity charts.
    panels = await tab.page.evaluate(PANELS)
    assert panels.index("headroom") == panels.index("inventory") + 1
    # The on-demand note is an on-demand table's alone.
    note = tab.page.locator('section[data-panel="headroom"] .on-demand-note')
    if endpoint == "Events":
        await expect(note).to_contain_text("more than doubles its previous peak within 30 minutes")
        await expect(note).to_contain_text("warm throughput")
    else:
        await expect(note).to_have_count(0)
    assert tab.errors == []


async def test_the_headroom_panel_is_absent_without_its_metrics(tab, receiver):
    await show(tab, receiver, table_hash("Sessions"))
    await expect(tab.page.locator('figure[data-chart="read-capacity"]')).to_have_attribute("data-state", "data")
    assert "headroom" not in await tab.page.evaluate(PANELS)
    for metric in HEADROOM:
        assert await api_points(receiver, metric, "Sessions") == []


# -- why throttled ---------------------------------------------------------------------------


async def test_why_throttled_shows_the_ceiling_and_the_most_throttled_keys(tab, receiver):
    await show(tab, receiver, table_hash("Orders"))
    panel = tab.page.locator('section[data-panel="why-throttled"]')
    ceiling = panel.get_by_role("complementary", name="Ceiling")
    await expect(ceiling.locator('[data-side="read"]')).to_have_text("Read500 units/sprovisioned")
    await expect(ceiling.locator('[data-side="write"]')).to_have_text("Write200 units/sprovisioned")
    await expect(ceiling.locator('[data-side="warm"]')).to_contain_text("read 12,000 · write 4,000 units/s")
    keys = panel.locator('table[data-table="top-keys"]')
    await expect(keys.locator("caption")).to_contain_text("from Contributor Insights")
    rows = await tab.page.evaluate(ROWS, "top-keys")
    assert [
        (row["cells"]["partition"]["text"], row["cells"]["sort"]["text"], row["cells"]["throttled"]["value"])
        for row in rows
    ] == [("customer#42", "2026-03-01", "120"), ("customer#7", "—", "30")]
    # The window Contributor Insights reported.
    entry = next(
        entry
        for entry in (await (await receiver.get("/api/v1/tables", params={"service": SERVICE})).json())["tables"]
        if entry["name"] == "Orders"
    )
    assert float(await keys.get_attribute("data-start")) == entry["top_keys"]["start"]
    assert float(await keys.get_attribute("data-end")) == entry["top_keys"]["end"]
    # The causes and the throttled minutes are still there.
    await expect(panel.locator('li[data-cause="provisioned"]')).to_be_visible()
    await expect(panel.locator('table[data-table="throttled-buckets"] tbody tr')).not_to_have_count(0)


async def test_a_table_without_throttling_or_keys_has_no_why_throttled_panel(tab, receiver):
    await show(tab, receiver, table_hash("Events", f"?region={EAST}"))
    # Events is not throttled and has no keys: no why-throttled panel.
    assert "why-throttled" not in await tab.page.evaluate(PANELS)
    await show(tab, receiver, table_hash("Orders/ByCustomer"))
    await expect(tab.page.locator('table[data-table="top-keys"]')).to_have_count(0)


# -- the account page's tags ----------------------------------------------------------------


async def rows(tab: Tab) -> list[tuple[str, str | None]]:
    return [(row["id"], row["group"]) for row in await tab.page.evaluate(ROWS, "tables")]


def tags_control(tab: Tab, name: str):
    return tab.page.get_by_role("group", name="Tags").locator(f'select[name="{name}"]')


def fragment(tab: Tab) -> str:
    return "#" + urlsplit(tab.page.url).fragment


ALL_ROWS = [
    "Archive", "Events", f"Events@{WEST}", f"Events@{EAST}", "Orders", "Orders/ByCustomer", "Sessions", "Unlisted",
]  # fmt: skip


async def test_the_account_lists_every_table_until_a_tag_is_chosen(tab, receiver):
    await show(tab, receiver, ACCOUNT_HASH)
    assert [row for row, _ in await rows(tab)] == ALL_ROWS
    await expect(tags_control(tab, "tag").locator("option")).to_have_text(["any table", "env", "team"])
    await expect(tags_control(tab, "tag-value")).to_have_count(0)
    await expect(tags_control(tab, "group-by").locator("option")).to_have_text(["no grouping", "env", "team"])
    assert tab.errors == []


async def test_the_tag_filter_lists_the_tables_with_the_tag_and_lives_in_the_address(tab, receiver):
    await show(tab, receiver, ACCOUNT_HASH)
    await tags_control(tab, "tag").select_option("team")
    await shown(tab)
    assert fragment(tab) == ACCOUNT_HASH + "?tag=team"
    # Any value of team: Events in each region and Orders with its index.
    assert [row for row, _ in await rows(tab)] == [
        "Events", f"Events@{WEST}", f"Events@{EAST}", "Orders", "Orders/ByCustomer"
    ]  # fmt: skip
    await expect(tags_control(tab, "tag-value").locator("option")).to_have_text(["any value", "analytics", "payments"])
    await tags_control(tab, "tag-value").select_option("payments")
    await shown(tab)
    assert fragment(tab) == ACCOUNT_HASH + "?tag=team&tag-value=payments"
    assert [row for row, _ in await rows(tab)] == ["Orders", "Orders/ByCustomer"]
    await expect(tab.page.locator('table[data-table="tables"] caption')).to_contain_text("team = payments")
    # The range keeps the filter; a reload shows it again.
    await tab.page.locator("#ranges").get_by_role("link", name="6h").click()
    await shown(tab)
    assert fragment(tab) == ACCOUNT_HASH + "?range=6h&tag=team&tag-value=payments"
    await tab.page.reload()
    await shown(tab)
    await expect(tags_control(tab, "tag")).to_have_value("team")
    await expect(tags_control(tab, "tag-value")).to_have_value("payments")
    assert [row for row, _ in await rows(tab)] == ["Orders", "Orders/ByCustomer"]
    # Any table again: the address names no tag.
    await tags_control(tab, "tag").select_option("")
    await shown(tab)
    assert fragment(tab) == ACCOUNT_HASH + "?range=6h"
    assert [row for row, _ in await rows(tab)] == ALL_ROWS
    assert tab.errors == []


async def test_grouping_by_a_tag_puts_the_rows_under_each_value_untagged_last(tab, receiver):
    await show(tab, receiver, ACCOUNT_HASH)
    await tags_control(tab, "group-by").select_option("team")
    await shown(tab)
    assert fragment(tab) == ACCOUNT_HASH + "?group-by=team"
    assert await tab.page.evaluate(GROUPS) == ["team: analytics", "team: payments", "without team"]
    assert await rows(tab) == [
        ("Events", "analytics"), (f"Events@{WEST}", "analytics"), (f"Events@{EAST}", "analytics"),
        ("Orders", "payments"), ("Orders/ByCustomer", "payments"),
        ("Archive", None), ("Sessions", None), ("Unlisted", None),
    ]  # fmt: skip
    # Sorting sorts within each group.
    header = tab.page.locator('table[data-table="tables"] th[data-column="consumed_read"]')
    await header.get_by_role("button").click()
    await expect(header).to_have_attribute("aria-sort", "descending")
    assert [row for row, group in await rows(tab) if group is None] == ["Sessions", "Archive", "Unlisted"]
    assert [row for row, group in await rows(tab) if group == "payments"] == ["Orders", "Orders/ByCustomer"]
    # A filter and a grouping together, from the address alone (the sort chosen stays).
    await show(tab, receiver, ACCOUNT_HASH + "?tag=env&tag-value=prod&group-by=team")
    assert await tab.page.evaluate(GROUPS) == ["team: analytics", "team: payments"]
    assert [row for row, _ in await rows(tab)] == [
        "Events", f"Events@{EAST}", f"Events@{WEST}", "Orders", "Orders/ByCustomer"
    ]  # fmt: skip
    await expect(tags_control(tab, "group-by")).to_have_value("team")
    assert tab.errors == []


async def test_a_tag_no_table_has_lists_none_and_says_so(tab, receiver):
    await show(tab, receiver, ACCOUNT_HASH + "?tag=team&tag-value=nobody")
    await expect(tab.page.locator('[data-empty="tagged"]')).to_have_text(
        "No table or index of the account has the tag team = nobody."
    )
    await expect(tags_control(tab, "tag-value")).to_have_value("nobody")


async def test_the_inventory_pages_log_no_errors_and_are_screenshotted(tab, receiver):
    pages = {
        "table-inventory": table_hash("Orders"),
        "table-inventory-on-demand": table_hash("Events", f"?region={WEST}"),
        "table-inventory-deleted": table_hash("Archive"),
        "account-tags": ACCOUNT_HASH + "?group-by=team",
        "account-tags-filtered": ACCOUNT_HASH + "?tag=team&tag-value=payments",
    }
    await screenshot_pages(tab, receiver, pages)
