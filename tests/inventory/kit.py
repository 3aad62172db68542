"""What the inventory tests share: an AWS environment that reaches nothing real, clients
answered by botocore's Stubber, DynamoDB answers in the shapes the service model gives, and
moto clients that also answer the one call moto lacks (DescribeContributorInsights)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from receiver.inventory.clients import OWN, AccountAccess, InventoryClients
from receiver.inventory.documents import TableDocument, item_of, table_of
from receiver.inventory.settings import InventorySettings
from receiver.model import TABLE, InventoryItem
from receiver.store.base import Store

ACCOUNT = "123456789012"
"""moto's default account, and the stubs' own account."""
OTHER_ACCOUNT = "210987654321"
REGION = "us-east-1"
CREATED = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def settings(*regions: str, roles: tuple[str, ...] = (), interval_s: float = 300.0) -> InventorySettings:
    return InventorySettings(regions or (REGION,), roles, interval_s)


async def tables(store: Store, account: str = ACCOUNT, region: str = REGION) -> dict[str, TableDocument]:
    return {
        item.name: table_of(item)
        for item in await store.inventory(TABLE)
        if item.account == account and item.region == region
    }


async def table_items(store: Store) -> dict[str, InventoryItem]:
    return {item.name: item for item in await store.inventory(TABLE)}


def client_error(code: str, message: str = "", status: int = 400) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}},
                       "Operation")  # fmt: skip


async def stop(task: asyncio.Task[None]) -> None:
    """Cancel a poller's run() and wait until it returned and no boto3 call is still running
    on a worker thread (a call must not outlive the mock that answers it)."""
    task.cancel()
    await task
    await asyncio.get_running_loop().shutdown_default_executor()


async def eventually(check: Callable[[], Any], timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "the condition never came true"
        await asyncio.sleep(0.02)


# ---- Stubber clients ----


def _client(service: str, region: str) -> Any:
    return boto3.client(
        service,
        region_name=region,
        aws_access_key_id="stub",
        aws_secret_access_key="stub",
        endpoint_url=f"https://{service}.{region}.stub.invalid",  # never sent: the Stubber answers
    )


class StubClients:
    """A ClientSource whose clients botocore's Stubber answers, in the order queued.

    ``accounts`` maps each source (OWN, role ARNs) to its account id, or to a ClientError that
    its STS call raises."""

    def __init__(self, accounts: dict[str, str | ClientError] | None = None) -> None:
        self.accounts: dict[str, str | ClientError] = accounts if accounts is not None else {OWN: ACCOUNT}
        self.stubbers: dict[tuple[str, str, str], Stubber] = {}
        self.clients: dict[tuple[str, str, str], Any] = {}
        self.asked: list[tuple[str, str, str]] = []
        """Every client asked for: (source, region, service)."""

    def stub(self, service: str, region: str = REGION, source: str = OWN) -> Stubber:
        key = (source, region, service)
        if key not in self.stubbers:
            client = _client(service, region)
            self.clients[key] = client
            self.stubbers[key] = Stubber(client)
            self.stubbers[key].activate()
        return self.stubbers[key]

    def unstubbed(self, service: str, region: str = REGION, source: str = OWN) -> Any:
        """A client of its own, without a Stubber (its event handlers decide what calls do)."""
        client = _client(service, region)
        self.clients[(source, region, service)] = client
        return client

    def sources(self) -> tuple[str, ...]:
        return tuple(self.accounts)

    def cached_access(self, source: str) -> AccountAccess | None:
        return None

    def new_access(self, source: str) -> AccountAccess:
        account = self.accounts[source]
        if isinstance(account, ClientError):
            raise account
        return AccountAccess(account, source)

    def client(self, access: AccountAccess, region: str, service: str) -> Any:
        self.asked.append((access.source, region, service))
        if (access.source, region, service) not in self.clients:
            self.stub(service, region, access.source)
        return self.clients[(access.source, region, service)]

    def assert_answered(self) -> None:
        for stubber in self.stubbers.values():
            stubber.assert_no_pending_responses()


def describe_table(
    name: str,
    *,
    mode: str | None = "PROVISIONED",
    read: int = 5,
    write: int = 5,
    account: str = ACCOUNT,
    region: str = REGION,
    **more: Any,
) -> dict[str, Any]:
    """A DescribeTable answer (the shape of the service model's TableDescription)."""
    table: dict[str, Any] = {
        "TableName": name,
        "TableStatus": "ACTIVE",
        "TableArn": f"arn:aws:dynamodb:{region}:{account}:table/{name}",
        "CreationDateTime": CREATED,
        "ItemCount": 10,
        "TableSizeBytes": 1000,
        "ProvisionedThroughput": {"ReadCapacityUnits": read, "WriteCapacityUnits": write},
    }
    if mode is not None:
        table["BillingModeSummary"] = {"BillingMode": mode}
    table.update(more)
    return {"Table": table}


def queue_region(stubber: Stubber, names: list[str], limits: dict[str, int] | None = None) -> None:
    """The start of a region's poll: ListTables (one page), DescribeLimits."""
    stubber.add_response("list_tables", {"TableNames": names}, {})
    stubber.add_response(
        "describe_limits",
        limits
        or {
            "AccountMaxReadCapacityUnits": 80000,
            "AccountMaxWriteCapacityUnits": 80000,
            "TableMaxReadCapacityUnits": 40000,
            "TableMaxWriteCapacityUnits": 40000,
        },
        {},
    )


def queue_table(
    stubber: Stubber,
    name: str,
    *,
    table: dict[str, Any] | None = None,
    tags: list[dict[str, str]] | ClientError | None = None,
    insights: dict[str, Any] | None = None,
    account: str = ACCOUNT,
    region: str = REGION,
) -> None:
    """One table's five calls, in the order the poller makes them."""
    described = table or describe_table(name, account=account, region=region)
    stubber.add_response("describe_table", described, {"TableName": name})
    arn = described["Table"]["TableArn"]
    if isinstance(tags, ClientError):
        error = tags.response["Error"]
        status = tags.response["ResponseMetadata"]["HTTPStatusCode"]
        stubber.add_client_error(
            "list_tags_of_resource", error["Code"], error["Message"], status, expected_params={"ResourceArn": arn}
        )
    else:
        stubber.add_response("list_tags_of_resource", {"Tags": tags or []}, {"ResourceArn": arn})
    stubber.add_response(
        "describe_time_to_live", {"TimeToLiveDescription": {"TimeToLiveStatus": "DISABLED"}}, {"TableName": name}
    )
    stubber.add_response(
        "describe_continuous_backups",
        {"ContinuousBackupsDescription": {"ContinuousBackupsStatus": "ENABLED",
                                          "PointInTimeRecoveryDescription": {"PointInTimeRecoveryStatus": "DISABLED"}}},
        {"TableName": name},
    )  # fmt: skip
    stubber.add_response(
        "describe_contributor_insights",
        insights or {"TableName": name, "ContributorInsightsStatus": "DISABLED"},
        {"TableName": name},
    )


async def put_table(store: Store, document: TableDocument, updated_ms: int = 0) -> None:
    await store.put_inventory(
        [item_of(TABLE, document["account"], document["region"], document["name"], updated_ms, document)]
    )


# ---- moto clients ----


class MotoClients(InventoryClients):
    """The real clients (on moto), whose DynamoDB clients also answer DescribeContributorInsights,
    which moto does not implement: ``insights`` maps a table to its answer (DISABLED otherwise)."""

    def __init__(self, roles: tuple[str, ...] = (), insights: dict[str, dict[str, Any]] | None = None) -> None:
        super().__init__(roles, REGION)
        self.insights = insights or {}

    def client(self, access: AccountAccess, region: str, service: str) -> Any:
        made = super().client(access, region, service)
        if service == "dynamodb":
            made.meta.events.register(
                "before-call.dynamodb.DescribeContributorInsights", self._answer, unique_id="tests-insights"
            )
        return made

    def _answer(self, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        name = json.loads(params["body"])["TableName"] if isinstance(params.get("body"), (bytes, str)) else ""
        answer = self.insights.get(name, {"TableName": name, "ContributorInsightsStatus": "DISABLED"})
        return AWSResponse("", 200, {}, None), answer
