"""``dynamodb://TABLE?region=R...``: which store each URL opens, and one clear sentence for every bad one."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from receiver.store import Store, StoreConfigError, open_store_from_url
from receiver.store.dynamodb import DynamoDBStore
from receiver.store.dynamodb.url import dynamodb_arguments


def test_a_dynamodb_url_gives_a_dynamodb_store_of_that_table_and_region():
    store = open_store_from_url("dynamodb://receiver-metrics?region=eu-west-1")
    assert isinstance(store, DynamoDBStore) and isinstance(store, Store)
    assert store.table_name == "receiver-metrics"
    assert repr(store) == "DynamoDBStore('receiver-metrics', region='eu-west-1')"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("region=us-east-1", {"table": "metrics", "region": "us-east-1"}),
        (
            "region=us-east-1&endpoint_url=http://127.0.0.1:8000",
            {"table": "metrics", "region": "us-east-1", "endpoint_url": "http://127.0.0.1:8000"},
        ),
        ("region=us-east-1&create=true", {"table": "metrics", "region": "us-east-1", "create": True}),
        ("create=No&region=us-east-1", {"table": "metrics", "region": "us-east-1", "create": False}),
    ],
    ids=["region", "endpoint", "create", "no-create"],
)
def test_the_query_options_become_store_arguments(query, expected):
    assert dynamodb_arguments(f"dynamodb://metrics?{query}", f"metrics?{query}") == expected


async def test_options_given_by_the_caller_win_over_the_url():
    with mock_aws():
        store = open_store_from_url("dynamodb://metrics?region=us-east-1&create=false", create=True)
        await store.open()  # creates the table instead of refusing the missing one
        await store.close()
        assert boto3.client("dynamodb", region_name="us-east-1").list_tables()["TableNames"] == ["metrics"]


def test_a_constructor_option_the_store_lacks_is_a_type_error():
    with pytest.raises(TypeError):
        open_store_from_url("dynamodb://metrics?region=us-east-1", synchronous="full")


@pytest.mark.parametrize(
    ("url", "hint"),
    [
        ("dynamodb://", "names no table"),
        ("dynamodb://?region=us-east-1", "names no table"),
        ("dynamodb:///metrics?region=us-east-1", "table name"),
        ("dynamodb://ab?region=us-east-1", "table name"),
        ("dynamodb://bad name?region=us-east-1", "table name"),
        ("dynamodb://metrics", "no region"),
        ("dynamodb://metrics?region=", "no region"),
        ("dynamodb://metrics?endpoint_url=http://127.0.0.1:8000", "no region"),
        ("dynamodb://metrics?region=Virginia", "us-east-1"),
        ("dynamodb://metrics?region=us-east-1&consistent=true", "unknown option"),
        ("dynamodb://metrics?region=us-east-1&region=eu-west-1", "twice"),
        ("dynamodb://metrics?region", "malformed"),
        ("dynamodb://metrics?region=us-east-1&endpoint_url=localhost:8000", "http://"),
        ("dynamodb://metrics?region=us-east-1&create=maybe", "create=true"),
        ("dynamodb://metrics?region=us-east-1&retention_days=7", "unknown option"),
    ],
)
def test_a_bad_dynamodb_url_is_one_sentence_naming_it(url, hint):
    with pytest.raises(StoreConfigError) as caught:
        open_store_from_url(url)
    message = str(caught.value)
    assert repr(url) in message
    assert hint in message
    assert "\n" not in message and ". " not in message


@pytest.mark.parametrize(
    "arguments",
    [
        {"table": "x"},
        {"region": "moon"},
        {"minute_retention_days": 0},
        {"hour_retention_days": math.inf},
        {"max_workers": 0},
    ],
    ids=["table", "region", "minute-retention", "hour-retention", "workers"],
)
def test_the_constructor_checks_its_arguments_too(arguments):
    with pytest.raises(StoreConfigError):
        DynamoDBStore(**{"table": "metrics", "region": "us-east-1", **arguments})


def test_parsing_a_url_imports_no_boto3():
    # The CLI parses --store before anything else; boto3 costs ~0.3 s to import.
    code = (
        "import sys; from receiver.store import open_store_from_url, StoreConfigError\n"
        "try: open_store_from_url('dynamodb://metrics')\n"
        "except StoreConfigError: pass\n"
        "assert 'boto3' not in sys.modules and 'botocore' not in sys.modules, 'boto3 imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])
