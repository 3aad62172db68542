"""The DynamoDB table behind ``dynamodb://``: the client, opening (or creating) the table, every call.

All synchronous: the store runs these on worker threads (boto3's botocore clients are
thread-safe). Without ``create`` the receiver needs only DescribeTable to open, so TTL is
set up by whoever creates the table (the CDK stack, or ``--create-store``).
Failures that may pass are retried per retry.py; the others propagate as botocore
exceptions, which the store turns into StoreError. Only ``connect`` raises
StoreConfigError, for what no retry can fix (missing table, credentials, foreign schema).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, PartialCredentialsError

from receiver.store.base import StoreConfigError, StoreError
from receiver.store.dynamodb.items import Item
from receiver.store.dynamodb.retry import (
    THROTTLING_CODES,
    Attempts,
    RetryPolicy,
    call,
    describe,
    error_code,
    is_transient,
)

log = logging.getLogger("receiver.store.dynamodb_table")  # the name it has always logged under

BATCH_ITEMS = 25
"""BatchWriteItem's limit per call."""
BATCH_GET_KEYS = 100
"""BatchGetItem's limit per call."""

TTL_ATTRIBUTE = "expires_at"
PING_TIMEOUT_S = 3.0
"""A ping retries failures that may pass (5xx, a lost connection) for at most this long."""
TABLE_WAIT_S = 300.0
"""How long ``connect`` waits for a table being created to become ACTIVE."""

_CREDENTIAL_CODES = frozenset(
    {
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "MissingAuthenticationTokenException",
        "IncompleteSignatureException",
    }
)
_UNUSABLE_STATUSES = frozenset({"DELETING", "ARCHIVING", "ARCHIVED", "INACCESSIBLE_ENCRYPTION_CREDENTIALS"})
_PING_KEY: Item = {"pk": {"S": "PING"}, "sk": {"S": "PING"}}

_loader: Any = None
_loader_lock = threading.Lock()


def _new_session() -> botocore.session.Session:
    """A session of its own per store (credentials resolve per store; sessions are not
    thread-safe), sharing the parsed service models: they cost ~0.1 s of CPU per session."""
    global _loader
    session = botocore.session.Session()
    with _loader_lock:
        if _loader is None:
            _loader = session.get_component("data_loader")
        else:
            session.register_component("data_loader", _loader)
    return session


class DynamoDBTable:
    """One table through one botocore client (what boto3 hands out); every method is a blocking call."""

    def __init__(self, name: str, region: str, endpoint_url: str | None, policy: RetryPolicy, connections: int) -> None:
        self.name = name
        self.region = region
        self.endpoint_url = endpoint_url
        self.policy = policy
        self._connections = connections
        self._client: Any = None
        self._ping_client: Any = None
        self.where = f"the DynamoDB table {name!r} in {region}" + (f" at {endpoint_url}" if endpoint_url else "")

    @property
    def client(self) -> Any:
        """The DynamoDB client (after ``connect``)."""
        if self._client is None:
            raise StoreError(f"{self.where} is not connected")
        return self._client

    @property
    def ping_client(self) -> Any:
        """The health check's own client (after ``connect``)."""
        if self._ping_client is None:
            raise StoreError(f"{self.where} is not connected")
        return self._ping_client

    # -- opening -----------------------------------------------------------------

    def connect(self, create: bool) -> None:
        """Make the clients and check the table (creating it with ``create``); raises StoreConfigError."""
        config = Config(
            # One retry policy, ours (retry.py), so an operation's time stays bounded.
            retries={"total_max_attempts": 1},
            connect_timeout=5,
            read_timeout=30,
            max_pool_connections=self._connections,
            tcp_keepalive=True,
            # The store builds every request itself and DynamoDB checks them anyway;
            # client-side validation was over half of botocore's CPU per sample.
            parameter_validation=False,
        )
        # The health check's own client: one connection nobody else queues on, and timeouts
        # that fit a probe (a readiness check or a scrape gives up within seconds).
        ping_config = config.merge(
            Config(connect_timeout=PING_TIMEOUT_S, read_timeout=PING_TIMEOUT_S, max_pool_connections=1)
        )
        session = _new_session()
        try:
            client = session.create_client(
                "dynamodb", region_name=self.region, endpoint_url=self.endpoint_url, config=config
            )
            ping_client = session.create_client(
                "dynamodb", region_name=self.region, endpoint_url=self.endpoint_url, config=ping_config
            )
        except (BotoCoreError, ValueError) as exc:
            raise StoreConfigError(
                f"cannot make a DynamoDB client for {self.where} ({exc}); check region and endpoint_url"
            ) from None
        self._client, self._ping_client = client, ping_client
        try:
            self._check_table(create)
        except BaseException:
            self.close()
            raise

    def _check_table(self, create: bool) -> None:
        try:
            table = self._describe()
            if table is None:
                if not create:
                    raise StoreConfigError(
                        f"{self.where} does not exist; create it (the CDK stack does) or pass --create-store"
                    )
                table = self._create()
            self._check_schema(table)
            self._wait_until_active(table)
            if create:
                self._enable_ttl()
        except (NoCredentialsError, PartialCredentialsError):
            raise StoreConfigError(
                f"no AWS credentials were found for {self.where}; give the receiver a role "
                "or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            ) from None
        except (ClientError, BotoCoreError) as exc:
            if error_code(exc) in _CREDENTIAL_CODES:
                raise StoreConfigError(
                    f"DynamoDB refused the receiver's credentials for {self.where} ({describe(exc)}); "
                    "check the credentials and the IAM policy"
                ) from None
            raise StoreError(f"{self.where} could not be opened: {describe(exc)}") from None

    def _describe(self) -> dict[str, Any] | None:
        """DescribeTable's Table, or None if there is no such table."""
        try:
            described = call(self._attempts("describing"), self.client.describe_table, TableName=self.name)
            table: dict[str, Any] = described["Table"]
            return table
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return None
            raise

    def _create(self) -> dict[str, Any]:
        try:
            self.client.create_table(
                TableName=self.name,
                KeySchema=[
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
                AttributeDefinitions=[
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "S"},
                ],
                BillingMode="PAY_PER_REQUEST",
            )
            log.info("creating %s", self.where)
        except ClientError as exc:
            # Another replica started creating it first: wait for that one.
            if error_code(exc) != "ResourceInUseException":
                raise
        table = self._describe()
        if table is None:
            raise StoreError(f"{self.where} vanished right after it was created")
        return table

    def _check_schema(self, table: dict[str, Any]) -> None:
        keys = {key["AttributeName"]: key["KeyType"] for key in table.get("KeySchema", [])}
        types = {a["AttributeName"]: a["AttributeType"] for a in table.get("AttributeDefinitions", [])}
        if keys != {"pk": "HASH", "sk": "RANGE"} or types.get("pk") != "S" or types.get("sk") != "S":
            raise StoreConfigError(
                f"{self.where} is not a receiver store: it needs partition key pk and sort key sk, "
                f"both strings, and has {keys}; point --store at another table"
            )

    def _wait_until_active(self, table: dict[str, Any]) -> None:
        deadline = time.monotonic() + TABLE_WAIT_S
        delay = 0.01  # emulators are ready at once; AWS takes seconds, so the delay grows
        while (status := table.get("TableStatus", "ACTIVE")) not in ("ACTIVE", "UPDATING"):
            if status in _UNUSABLE_STATUSES:
                raise StoreConfigError(
                    f"{self.where} cannot be used while it is {status}; point --store at another table"
                )
            if time.monotonic() + delay > deadline:
                raise StoreError(f"{self.where} is still {status} after {TABLE_WAIT_S:.0f} s")
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
            described = self._describe()
            if described is None:
                raise StoreError(f"{self.where} vanished while it was {status}")
            table = described

    def _enable_ttl(self) -> None:
        try:
            ttl = self.client.describe_time_to_live(TableName=self.name)["TimeToLiveDescription"]
            if ttl.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
                if ttl.get("AttributeName") != TTL_ATTRIBUTE:
                    log.warning(
                        "%s expires items by %r, not %r: old samples and request ids will not expire",
                        self.where, ttl.get("AttributeName"), TTL_ATTRIBUTE,
                    )  # fmt: skip
                return
            self.client.update_time_to_live(
                TableName=self.name, TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE}
            )
        except ClientError as exc:
            if error_code(exc) == "UnknownOperationException":
                # Local emulators (dynalite) lack TTL; the store's reads skip expired items anyway.
                log.warning(
                    "%s: the endpoint does not support time to live, so expired items stay in the table "
                    "(reads skip them)", self.where,
                )  # fmt: skip
            elif "already enabled" not in describe(exc):  # another replica enabled it meanwhile
                raise

    def close(self) -> None:
        clients = (self._client, self._ping_client)
        self._client = self._ping_client = None
        for client in clients:
            if client is not None:
                client.close()

    # -- calls -------------------------------------------------------------------

    def write_batch(self, items: list[Item], deadline: float, abort: threading.Event) -> None:
        """Put up to BATCH_ITEMS items with distinct keys, retrying unprocessed ones until ``deadline``.

        On failure sets ``abort`` so the other batches of the same commit stop early.
        """
        self._batch([{"PutRequest": {"Item": item}} for item in items], deadline, abort)

    def delete_batch(self, keys: list[Item], deadline: float, abort: threading.Event) -> None:
        """Delete the items at up to BATCH_ITEMS distinct ``keys`` (absent ones are no error), as ``write_batch``."""
        self._batch([{"DeleteRequest": {"Key": key}} for key in keys], deadline, abort)

    def _batch(self, pending: list[dict[str, Any]], deadline: float, abort: threading.Event) -> None:
        attempts = Attempts(self.policy, deadline, f"writing to {self.where}", abort)
        try:
            while pending:
                attempts.check()
                try:
                    response = self.client.batch_write_item(RequestItems={self.name: pending})
                except (ClientError, BotoCoreError) as exc:
                    if not is_transient(exc):
                        raise
                    attempts.wait(describe(exc))
                    continue
                pending = response.get("UnprocessedItems", {}).get(self.name, [])
                if pending:
                    attempts.wait(f"{len(pending)} unprocessed items")
        except BaseException:
            abort.set()
            raise

    def put(self, item: Item, deadline: float | None = None) -> None:
        call(self._attempts("writing to", deadline), self.client.put_item, TableName=self.name, Item=item)

    def put_if(self, item: Item, condition: str, values: Item, deadline: float | None = None) -> bool:
        """PutItem under ``condition``; False when the condition did not hold (nothing written)."""
        return self._if_holds("writing to", self.client.put_item, condition, values, deadline, Item=item)

    def delete_if(self, key: Item, condition: str, values: Item, deadline: float | None = None) -> bool:
        """DeleteItem under ``condition``; False when the condition did not hold (nothing deleted)."""
        return self._if_holds("deleting from", self.client.delete_item, condition, values, deadline, Key=key)

    def _if_holds(
        self, doing: str, method: Any, condition: str, values: Item, deadline: float | None, **request: Any
    ) -> bool:
        try:
            call(
                self._attempts(doing, deadline), method,
                TableName=self.name, ConditionExpression=condition, ExpressionAttributeValues=values, **request,
            )  # fmt: skip
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def update(
        self, key: Item, expression: str, values: Item, condition: str | None = None, deadline: float | None = None
    ) -> bool:
        """UpdateItem (under ``condition`` if given); False when the condition did not hold."""
        request: dict[str, Any] = {
            "TableName": self.name, "Key": key, "UpdateExpression": expression, "ExpressionAttributeValues": values,
        }  # fmt: skip
        if condition is not None:
            request["ConditionExpression"] = condition
        try:
            call(self._attempts("updating", deadline), self.client.update_item, **request)
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def get(self, key: Item, projection: str | None = None) -> Item | None:
        """The item at ``key`` (strongly consistent: another replica's commit is visible at once)."""
        request: dict[str, Any] = {"TableName": self.name, "Key": key, "ConsistentRead": True}
        if projection is not None:
            request["ProjectionExpression"] = projection
        return call(self._attempts("reading"), self.client.get_item, **request).get("Item")

    def batch_get(self, keys: list[Item]) -> list[Item]:
        """The items at up to BATCH_GET_KEYS ``keys`` that exist, strongly consistent, in no order."""
        attempts = self._attempts("reading")
        pending: dict[str, Any] = {self.name: {"Keys": keys, "ConsistentRead": True}}
        found: list[Item] = []
        while pending:
            response = call(attempts, self.client.batch_get_item, RequestItems=pending)
            found += response.get("Responses", {}).get(self.name, [])
            pending = response.get("UnprocessedKeys") or {}
            if pending:
                attempts.wait(f"{len(pending[self.name]['Keys'])} unprocessed keys")
        return found

    def ping(self) -> None:
        """A data-plane read of one (absent) item on the ping client: the cheapest proof the table answers.

        Throttling is an answer: the table is there and busy, and the store's own retries
        get writes through it, so a busy store is up (calling it down would take every
        replica out of service at once). Other failures that may pass are retried for
        PING_TIMEOUT_S; past that, or on any other error, the store is down.
        """
        client = self.ping_client
        attempts = Attempts(self.policy, time.monotonic() + PING_TIMEOUT_S, f"pinging {self.where}")
        while True:
            try:
                client.get_item(TableName=self.name, Key=_PING_KEY, ProjectionExpression="pk")
                return
            except (ClientError, BotoCoreError) as exc:
                if error_code(exc) in THROTTLING_CODES:
                    return
                if not is_transient(exc):
                    raise
                attempts.wait(describe(exc))

    def query(self, **kwargs: Any) -> list[Item]:
        """Every item of a strongly consistent Query, all pages."""
        return [item for page in self.pages(**kwargs) for item in page.get("Items", [])]

    def count(self, **kwargs: Any) -> int:
        """How many items a strongly consistent Query matches (after its filter), all pages."""
        return sum(page["Count"] for page in self.pages(**kwargs, Select="COUNT"))

    def pages(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """The pages of a strongly consistent Query, fetched as they are consumed."""
        attempts = self._attempts("querying")
        request = {"TableName": self.name, "ConsistentRead": True, **kwargs}
        while True:
            page = call(attempts, self.client.query, **request)
            yield page
            last = page.get("LastEvaluatedKey")
            if not last:
                return
            request["ExclusiveStartKey"] = last

    def _attempts(self, verb: str, deadline: float | None = None) -> Attempts:
        if deadline is None:
            deadline = time.monotonic() + self.policy.timeout_s
        return Attempts(self.policy, deadline, f"{verb} {self.where}")
