"""The demo's DynamoDB API: a moto server on 127.0.0.1 holding the workload's tables, so the
receiver's table inventory (``serve --inventory``) has tables to describe, with their capacity
modes, indexes, TTL, streams and tags. Nothing of it leaves the machine.

moto answers ListTables, DescribeTable, ListTagsOfResource, DescribeTimeToLive and
DescribeContinuousBackups as DynamoDB does; calls it does not know are counted by the
inventory as failed, which the dashboard shows as missing facts.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from typing import Any

from receiver_tools.workload import TableSpec

REGION = "us-east-1"
TEAMS = {"GameScores": "games", "Sessions": "platform", "AuditLog": "security"}
"""Each table's ``team`` tag (the rest: ``shop``), shown as the label ``tag_team``."""
TAG_LABELS = "team"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo", "AWS_SESSION_TOKEN": "demo"}


def _key(name: str) -> list[dict[str, str]]:
    return [{"AttributeName": name, "KeyType": "HASH"}]


def create_table(client: Any, spec: TableSpec) -> None:
    """``spec`` as a table: provisioned with its capacity (and its indexes alike), or on
    demand with a maximum of four times its usual traffic, so its headroom shows."""
    indexes = [{"IndexName": index, "KeySchema": _key(f"{index}Key"), "Projection": {"ProjectionType": "ALL"}}
               for index in spec.indexes]  # fmt: skip
    options: dict[str, Any] = {}
    if spec.provisioned is not None:
        read, write = spec.provisioned
        capacity = {"ReadCapacityUnits": int(read), "WriteCapacityUnits": int(write)}
        options = {"BillingMode": "PROVISIONED", "ProvisionedThroughput": capacity}
        for index in indexes:
            index["ProvisionedThroughput"] = {"ReadCapacityUnits": int(read / 2), "WriteCapacityUnits": int(write / 2)}
    else:
        options = {
            "BillingMode": "PAY_PER_REQUEST",
            "OnDemandThroughput": {
                "MaxReadRequestUnits": int(4 * spec.reads_per_s),
                "MaxWriteRequestUnits": int(4 * spec.writes_per_s),
            },
        }
    if indexes:
        options["GlobalSecondaryIndexes"] = indexes
    if spec.stream:
        options["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    attributes = {"id", *(f"{index}Key" for index in spec.indexes)}
    client.create_table(
        TableName=spec.name,
        KeySchema=_key("id"),
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in sorted(attributes)],
        Tags=[{"Key": "team", "Value": TEAMS.get(spec.name, "shop")}, {"Key": "env", "Value": "demo"}],
        **options,
    )
    if spec.ttl:
        client.update_time_to_live(
            TableName=spec.name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires"}
        )


@contextlib.contextmanager
def demo_dynamodb(tables: Sequence[TableSpec], port: int) -> Iterator[dict[str, str]]:
    """A moto server on 127.0.0.1:``port`` with ``tables`` created in each of their regions;
    yields the environment that points boto3 (and so the receiver's inventory) at it."""
    import boto3
    from moto.server import ThreadedMotoServer

    # A line per request otherwise, and a traceback for each call moto does not implement.
    logging.getLogger("werkzeug").setLevel(logging.CRITICAL)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        url = f"http://127.0.0.1:{port}"
        for spec in tables:
            for region in spec.regions:
                client = boto3.client(
                    "dynamodb",
                    region_name=region,
                    endpoint_url=url,
                    aws_access_key_id="demo",
                    aws_secret_access_key="demo",
                )
                create_table(client, spec)
        yield {"AWS_ENDPOINT_URL": url, "AWS_DEFAULT_REGION": REGION, **CREDENTIALS}
    finally:
        server.stop()


def inventory_regions(tables: Sequence[TableSpec]) -> str:
    """Every region of the workload's tables, for ``--inventory``."""
    return ",".join(sorted({region for spec in tables for region in spec.regions}))
