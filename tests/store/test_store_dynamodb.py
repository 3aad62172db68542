"""What only the DynamoDB store does: its table, its keys, exact numbers, expiry, several replicas.

Most tests run twice, on moto and on dynalite (an independent DynamoDB server): two
implementations catch what one mock forgives. The shared contract tests run on both
through the ``store`` fixture in conftest.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import socket
import struct
import threading
from decimal import Decimal

import boto3
import botocore.session
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from receiver.backoff import FULL_JITTER, Backoff
from receiver.model import HOUR_MS, MINUTE_MS, DerivedValue, QuarantinedRecord, Sample
from receiver.store import StoreConfigError, StoreError
from receiver.store.dynamodb import DynamoDBStore
from receiver.store.dynamodb.items import decode_number, encode_number
from receiver.store.dynamodb.retry import RetryPolicy
from tests.builders import LABELS, T0, make_sample, make_series, many_samples

ALL_TIME = (0, 2**62)
DAY_S = 86_400
SERVICE = "aws-dynamodb::123456789012"
GRANTED = {
    "GetItem", "PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "BatchGetItem", "Query",
    "DescribeTable", "ConditionCheckItem",
}  # fmt: skip
"""Exactly what the CDK stack grants the receiver's task role on the table."""


def raw_item(store: DynamoDBStore, pk: str, sk: str) -> dict:
    """An item as DynamoDB holds it, read past the store."""
    key = {"pk": {"S": pk}, "sk": {"S": sk}}
    return store.client.get_item(TableName=store.table_name, Key=key, ConsistentRead=True)["Item"]


def record_operations(store: DynamoDBStore) -> list[str]:
    """The DynamoDB API calls the store's client makes from now on."""
    calls: list[str] = []
    store.client.meta.events.register("before-call.dynamodb", lambda model, **_: calls.append(model.name))
    return calls


def quarantined_record(index: int) -> QuarantinedRecord:
    return QuarantinedRecord("r1", index, T0, "json", "not JSON", b"{" * 1000, LABELS)


def value(metric="aws_dynamodb_endpoint_x", endpoint="GameScores", time_ms=T0, v=1.0) -> DerivedValue:
    scope = "endpoint" if endpoint else "service"
    return DerivedValue(metric, scope, SERVICE, endpoint, "AWS_DYNAMODB", time_ms, v)


# -- the table -------------------------------------------------------------------


async def test_create_makes_the_table_the_stack_makes(dynamodb_factory):
    store = dynamodb_factory()
    await store.open()
    client = boto3.client("dynamodb", region_name="us-east-1")
    table = client.describe_table(TableName="metrics")["Table"]
    assert sorted((k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]) == [("pk", "HASH"), ("sk", "RANGE")]
    attributes = {(a["AttributeName"], a["AttributeType"]) for a in table["AttributeDefinitions"]}
    assert attributes == {("pk", "S"), ("sk", "S")}
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ttl = client.describe_time_to_live(TableName="metrics")["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expires_at")
    await store.close()


async def test_create_on_an_endpoint_without_ttl_warns_and_works(dynalite_factory, caplog):
    store = dynalite_factory()
    with caplog.at_level(logging.WARNING, logger="receiver.store.dynamodb.table"):
        await store.open()
    assert "does not support time to live" in caplog.text
    await store.commit("r1", [make_sample()])
    assert await store.samples(*ALL_TIME) == [make_sample()]
    await store.close()


async def test_a_missing_table_without_create_is_a_config_error_and_stays_missing(make_store):
    with pytest.raises(StoreConfigError) as caught:
        await make_store("absent", create=False)
    message = str(caught.value)
    assert "absent" in message and "--create-store" in message
    assert "\n" not in message and ". " not in message
    with pytest.raises(StoreConfigError):  # nothing was created on the way
        await make_store("absent", create=False)


async def test_a_table_of_another_schema_is_a_config_error(dynamodb_factory):
    store = dynamodb_factory("foreign", create=False)
    boto3.client("dynamodb", region_name="us-east-1").create_table(
        TableName="foreign",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    with pytest.raises(StoreConfigError, match="not a receiver store"):
        await store.open()


async def test_replicas_creating_the_table_at_once_all_open(make_store):
    replicas = await asyncio.gather(*(make_store("shared", create=True) for _ in range(3)))
    await replicas[0].commit("r1", [make_sample()])
    assert await replicas[2].is_committed("r1")


async def test_a_store_opened_again_finds_what_was_stored(make_store):
    first = await make_store()
    samples = [make_sample(series=make_series(table=f"T{i}"), minute=m) for i in range(3) for m in range(2)]
    await first.commit("r1", samples)
    await first.close()
    again = await make_store(create=False)
    assert sorted(await again.samples(*ALL_TIME), key=repr) == sorted(samples, key=repr)
    assert await again.is_committed("r1")


async def test_missing_credentials_are_a_config_error(dynamodb_factory, monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(StoreConfigError, match="no AWS credentials"):
        await dynamodb_factory().open()


async def test_an_unreachable_endpoint_is_a_store_error_after_the_retry_bound(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = DynamoDBStore(
        "metrics", region="us-east-1", endpoint_url=f"http://127.0.0.1:{port}",
        retry=RetryPolicy(timeout_s=0.3, backoff=Backoff(0.01, 0.05, jitter=FULL_JITTER)),
    )  # fmt: skip
    with pytest.raises(StoreError) as caught:
        await store.open()
    assert not isinstance(caught.value, StoreConfigError)
    assert f"127.0.0.1:{port}" in str(caught.value)


# -- what the receiver may call -------------------------------------------------------


async def test_the_receiver_calls_only_what_the_stack_grants(dynamodb_factory, monkeypatch):
    """Opening an existing table and every operation, including count_samples and
    count_quarantined (no Scan) and replacing and deleting quarantined records."""
    creator = dynamodb_factory()  # --create-store is a one-off with more rights
    await creator.open()
    await creator.close()
    calls: list[str] = []
    real_create_client = botocore.session.Session.create_client

    def recording_client(self, *args, **kwargs):
        client = real_create_client(self, *args, **kwargs)
        client.meta.events.register("before-call.dynamodb", lambda model, **_: calls.append(model.name))
        return client

    monkeypatch.setattr(botocore.session.Session, "create_client", recording_client)
    store = dynamodb_factory(create=False)
    await store.open()
    await store.ping()
    await store.write_samples([make_sample(minute=m) for m in range(2)])
    await store.commit("r1", [make_sample(minute=m) for m in range(3)], [quarantined_record(0), quarantined_record(1)])
    await store.commit("r2", [], [quarantined_record(0)])  # replaces: reads and deletes the first's parts
    await store.is_committed("r1")
    await store.quarantined()
    await store.count_quarantined()
    await store.delete_quarantined([("r1", 0), ("r1", 1)])
    await store.samples(*ALL_TIME)
    await store.samples(T0, T0 + MINUTE_MS, namespace="AWS/DynamoDB", metrics=["ConsumedReadCapacityUnits"])
    await store.count_samples()
    version = (await store.versions(MINUTE_MS, [T0]))[T0]
    await store.stale_buckets(MINUTE_MS, 0)
    await store.put_derived(MINUTE_MS, T0, version, [value()])
    await store.derived("aws_dynamodb_endpoint_x", MINUTE_MS, T0, T0, service=SERVICE, endpoint="GameScores")
    await store.bucket_values(MINUTE_MS, T0)
    await store.latest_bucket(MINUTE_MS, T0 + MINUTE_MS)
    await store.entities(0)
    await store.prune(T0)
    await store.close()
    assert set(calls) <= GRANTED, set(calls) - GRANTED
    assert calls[0] == "DescribeTable"


# -- keys and items ----------------------------------------------------------------


async def test_a_slice_of_one_metric_and_start_is_one_block_item_under_its_metric_hour(make_store):
    store = await make_store(minute_retention_days=2)
    samples = [make_sample(table=f"T{i:02d}", minute=3) for i in range(50)]
    await store.commit("r1", samples)
    start = samples[0].start_ms
    hour = start - start % HOUR_MS
    pk = f"S#AWS/DynamoDB#ConsumedReadCapacityUnits#{hour:013d}"
    items = store.client.query(
        TableName=store.table_name, KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": {"S": pk}}
    )["Items"]
    assert len(items) == 1
    item = items[0]
    assert item["sk"]["S"].startswith(f"{start:013d}#p")
    assert set(item) == {"pk", "sk", "d", "expires_at"}
    assert int(item["expires_at"]["N"]) == start // 1000 + 2 * DAY_S


async def test_the_request_id_item_expires_after_the_request_ttl(make_store, clock):
    store = await make_store(request_ttl_s=3600)
    await store.commit("req-1", [])
    item = raw_item(store, "R#req-1", "R")
    assert int(item["expires_at"]["N"]) == math.ceil(clock.now + 3600)


@pytest.mark.parametrize(
    ("first", "second"),
    [(("a#b", "c"), ("a", "b#c")), (("a%23b", "c"), ("a#b", "c")), (("ns", "m%"), ("ns", "m%25"))],
    ids=["hash", "escaped-hash", "percent"],
)
async def test_names_holding_the_key_separator_stay_apart(make_store, first, second):
    store = await make_store()
    one = make_sample(series=make_series(namespace=first[0], metric=first[1]))
    two = make_sample(series=make_series(namespace=second[0], metric=second[1]))
    await store.commit("r1", [one, two])
    for sample in (one, two):
        series = sample.series
        assert await store.samples(*ALL_TIME, namespace=series.namespace, metrics=[series.metric]) == [sample]
    assert await store.count_samples() == 2


async def test_dimensions_longer_than_a_sort_key_are_stored(make_store):
    store = await make_store()
    dimensions = tuple(sorted((f"Dim{i:02d}", "v" * 200 + "é✓") for i in range(30)))  # ~6 KB
    sample = make_sample(series=dataclasses.replace(make_series(), dimensions=dimensions))
    await store.commit("r1", [sample, make_sample()])
    assert sorted(await store.samples(*ALL_TIME), key=repr) == sorted([sample, make_sample()], key=repr)


async def test_a_request_id_longer_than_a_key_is_remembered(make_store):
    store = await make_store()
    long_id = "x" * 3000
    await store.commit(long_id, [make_sample()])
    assert await store.is_committed(long_id)
    assert not await store.is_committed(long_id[:-1] + "y")


@pytest.mark.parametrize("start_ms", [-MINUTE_MS, 10**13], ids=["negative", "after-2286"])
async def test_a_start_outside_the_sort_key_range_stores_nothing(make_store, start_ms):
    store = await make_store()
    bad = make_sample()._replace(start_ms=start_ms, end_ms=start_ms + MINUTE_MS)
    with pytest.raises(StoreError, match="outside"):
        await store.commit("r1", [make_sample(minute=1), bad])
    assert await store.count_samples() == 0
    assert not await store.is_committed("r1")


# -- numbers ------------------------------------------------------------------------

EXACT = [
    0.1, 1e-300, 123456789.123456789, 1.7976931348623157e308, -1.7976931348623157e308, 5e-324,
    -2.5e-320, 1e-130, -1e-130, 9.999999999999999e125, 1e126, 2.0**53 + 2, 1 / 3, 0.0,
]  # fmt: skip
"""Inside and outside DynamoDB's Number range (1e-130 to 1e126), subnormals, 17-digit values."""


async def test_statistics_read_back_bit_for_bit(make_store):
    store = await make_store()
    samples = [
        make_sample(minute=i)._replace(count=x, sum=-x, min=x / 3, max=x, stats=(("p50", -x), ("p99", x)))
        for i, x in enumerate(EXACT)
    ]
    await store.commit("r1", samples)
    found = await store.samples(*ALL_TIME)
    assert found == samples

    def bits(sample: Sample) -> list[bytes]:
        numbers = [sample.count, sample.sum, sample.min, sample.max, *(v for _, v in sample.stats)]
        return [struct.pack("<d", n) for n in numbers if n != 0.0]  # DynamoDB may drop the sign of a zero

    assert [bits(s) for s in found] == [bits(s) for s in samples]


async def test_derived_values_read_back_bit_for_bit(make_store):
    store = await make_store()
    values = [value(endpoint=f"T{i}", v=x) for i, x in enumerate(EXACT)]
    assert await store.put_derived(MINUTE_MS, T0, 1, values)
    found = await store.bucket_values(MINUTE_MS, T0)
    assert sorted(struct.pack("<d", v.value) for v in found) == sorted(struct.pack("<d", v.value) for v in values)


async def test_a_non_finite_derived_value_is_refused(make_store):
    store = await make_store()
    with pytest.raises(StoreError, match="finite"):
        await store.put_derived(MINUTE_MS, T0, 1, [value(v=1.0), value(endpoint="B", v=math.nan)])
    assert await store.bucket_values(MINUTE_MS, T0) == []


@settings(max_examples=500)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_every_finite_float_is_encoded_exactly_and_within_dynamodbs_number_range(x):
    attribute = encode_number(x)
    assert struct.pack("<d", decode_number(attribute)) == struct.pack("<d", x)
    if "N" in attribute:
        number = abs(Decimal(attribute["N"]))
        assert number == 0 or Decimal("1e-130") <= number < Decimal("1e126")


def test_numbers_outside_dynamodbs_range_are_encoded_as_strings():
    assert encode_number(0.5) == {"N": "0.5"}
    assert encode_number(1e-300) == {"S": "1e-300"}
    assert encode_number(-1.7976931348623157e308) == {"S": "-1.7976931348623157e+308"}
    assert decode_number({"S": "1e-300"}) == 1e-300


# -- expiry and ranges ---------------------------------------------------------------


async def test_samples_past_the_minute_retention_are_no_longer_read(make_store, clock):
    store = await make_store(minute_retention_days=1)
    old, recent = make_sample(minute=0), make_sample(minute=24 * 60)
    await store.commit("r1", [old, recent])
    clock.now = T0 / 1000 + DAY_S + 1  # old has expired; DynamoDB's TTL may not have deleted it yet
    assert await store.samples(*ALL_TIME) == [recent]
    assert await store.count_samples() == 1


async def test_derived_values_expire_with_the_retention_of_their_step(make_store, clock):
    """The DynamoDB form of the contract's prune test: time passes instead of prune() deleting."""
    store = await make_store()
    hour = T0 - T0 % HOUR_MS
    await store.put_derived(MINUTE_MS, T0, 1, [value()])
    await store.put_derived(HOUR_MS, hour, 1, [value(time_ms=hour)])
    await store.prune(int(clock.now * 1000) + 8 * DAY_S * 1000)  # nothing to do: expiry is by time
    clock.advance(8 * DAY_S)  # past the 7-day minute retention
    assert await store.bucket_values(MINUTE_MS, T0) == []
    assert await store.derived("aws_dynamodb_endpoint_x", MINUTE_MS, 0, 2**62) == []
    assert await store.latest_bucket(MINUTE_MS, 2**62) is None
    assert await store.entities(0) == []
    assert await store.bucket_values(HOUR_MS, hour) == [value(time_ms=hour)]
    clock.advance(83 * DAY_S)  # past the 90-day hour retention
    assert await store.bucket_values(HOUR_MS, hour) == []


async def test_a_range_of_many_hours_reads_only_the_hours_that_hold_samples(make_store):
    store = await make_store()
    # Two metrics, two hours a day apart: the long read asks the catalog which partitions exist.
    samples = [
        make_sample(series=make_series(metric), minute=m)
        for metric in ("ConsumedReadCapacityUnits", "ThrottledRequests")
        for m in (0, 24 * 60)
    ]
    await store.commit("r1", samples)
    calls = record_operations(store)
    found = await store.samples(T0 - 30 * 24 * HOUR_MS, T0 + 30 * 24 * HOUR_MS)
    assert sorted(found, key=repr) == sorted(samples, key=repr)
    # The metric catalog, each metric's hours, then the four partitions that exist.
    assert calls.count("Query") == 1 + 2 + 4


async def test_short_and_long_ranges_read_the_same_samples(make_store):
    store = await make_store()
    samples = [make_sample(series=make_series(table=f"T{i % 3}"), minute=m) for i, m in enumerate(range(0, 600, 7))]
    await store.commit("r1", samples)
    window = (T0 + 95 * MINUTE_MS, T0 + 170 * MINUTE_MS)  # two hours: read hour by hour
    inside = [s for s in samples if window[0] <= s.start_ms < window[1]]
    assert sorted(await store.samples(*window), key=repr) == sorted(inside, key=repr)
    wide = await store.samples(T0 - 5 * HOUR_MS, T0 + 20 * HOUR_MS)  # through the hour catalog
    assert sorted(wide, key=repr) == sorted(samples, key=repr)


# -- several replicas ------------------------------------------------------------------


async def test_two_replicas_writing_one_minute_see_the_union_once(make_store):
    first, second = await make_store("shared"), await make_store("shared", create=False)
    series = [make_series(table=f"T{i:03d}") for i in range(100)]
    part_one = [make_sample(series=s, minute=0, value=float(i)) for i, s in enumerate(series[:60])]
    part_two = [make_sample(series=s, minute=0, value=float(i + 40)) for i, s in enumerate(series[40:])]
    await asyncio.gather(first.commit("r1", part_one), second.commit("r2", part_two))
    expected = sorted({s.identity: s for s in part_one + part_two}.values(), key=repr)
    for replica in (first, second):
        found = await replica.samples(*ALL_TIME)
        assert sorted(found, key=repr) == expected
        assert await replica.count_samples() == 100
        assert await replica.is_committed("r1") and await replica.is_committed("r2")


MOTO_NOT_ATOMIC = (
    "moto's in-process backend checks a write's condition and applies it without a lock, so threads racing "
    "on one item can let an older conditional write or counter update win; DynamoDB and dynalite make each "
    "item write atomic, which is what these tests prove the store relies on correctly"
)


@pytest.mark.parametrize("make_store", ["dynalite"], indirect=True)  # see MOTO_NOT_ATOMIC
async def test_concurrent_commits_of_one_minute_lose_no_version_bump(make_store):
    first, second = await make_store("shared"), await make_store("shared", create=False)
    await asyncio.gather(
        *((first, second)[i % 2].commit(f"r{i}", [make_sample(series=make_series(table=f"T{i}"))]) for i in range(8))
    )
    hour = T0 - T0 % HOUR_MS
    assert await first.versions(MINUTE_MS, [T0]) == {T0: 8}
    assert await second.versions(HOUR_MS, [hour]) == {hour: 8}


@pytest.mark.parametrize("make_store", ["dynalite"], indirect=True)  # see MOTO_NOT_ATOMIC
async def test_concurrent_derivations_of_one_bucket_keep_the_newest(make_store):
    first, second = await make_store("shared"), await make_store("shared", create=False)
    order = [3, 6, 1, 5, 2, 4]
    await asyncio.gather(
        *(
            (first if i % 2 else second).put_derived(
                MINUTE_MS, T0, version, [value(endpoint="A", v=float(version)), value(endpoint=f"only-{version}")]
            )
            for i, version in enumerate(order)
        )
    )
    newest = [value(endpoint="A", v=6.0), value(endpoint="only-6")]
    assert await first.bucket_values(MINUTE_MS, T0) == newest
    assert await second.derived("aws_dynamodb_endpoint_x", MINUTE_MS, T0, T0) == newest


async def test_an_older_derivation_finishing_after_a_newer_one_leaves_no_trace(make_store):
    slow, fast = await make_store("shared"), await make_store("shared", create=False)
    paused, resume = threading.Event(), threading.Event()

    def hold_first_read(**_) -> None:  # the slow replica stops right after reading the pointer
        if not paused.is_set():
            paused.set()
            resume.wait(10)

    slow.client.meta.events.register("after-call.dynamodb.GetItem", hold_first_read)
    gone = value(metric="aws_dynamodb_endpoint_gone")
    older = asyncio.create_task(slow.put_derived(MINUTE_MS, T0, 1, [value(v=1.0), gone]))
    await asyncio.to_thread(paused.wait, 10)
    assert await fast.put_derived(MINUTE_MS, T0, 2, [value(v=2.0)])
    resume.set()
    assert not await older  # it still wrote its "gone" metric, which version 2 does not have
    for replica in (slow, fast):
        assert await replica.bucket_values(MINUTE_MS, T0) == [value(v=2.0)]
        assert await replica.derived("aws_dynamodb_endpoint_gone", MINUTE_MS, 0, 2**62) == []
        assert await replica.stale_buckets(MINUTE_MS, 0) == []


async def test_a_commit_on_one_replica_makes_the_bucket_stale_on_the_other(make_store):
    first, second = await make_store("shared"), await make_store("shared", create=False)
    await first.commit("r1", [make_sample()])
    version = (await second.versions(MINUTE_MS, [T0]))[T0]
    assert await second.put_derived(MINUTE_MS, T0, version, [value()])
    await first.commit("r2", [make_sample(series=make_series(table="B"))])
    assert await second.stale_buckets(MINUTE_MS, 0) == [T0]
    assert (await second.versions(MINUTE_MS, [T0]))[T0] == version + 1


# -- lifecycle ---------------------------------------------------------------------------


async def test_close_lets_a_commit_in_flight_finish(make_store):
    store = await make_store()
    samples = many_samples(600, tables=200)
    commit = asyncio.create_task(store.commit("big", samples))
    await asyncio.sleep(0)  # the commit has started
    await store.close()
    await commit
    again = await make_store(create=False)
    assert await again.count_samples() == 600 and await again.is_committed("big")


async def test_the_event_loop_keeps_running_during_a_large_commit(make_store):
    store = await make_store()
    job = asyncio.create_task(store.commit("big", many_samples(1000, tables=250)))
    ticks = 0
    while not job.done():  # a blocking store would finish the job before the first tick
        ticks += 1
        await asyncio.sleep(0)
    await job
    assert ticks >= 10


async def test_ping_fails_once_the_table_is_gone(dynamodb_factory):
    store = dynamodb_factory()
    await store.open()
    boto3.client("dynamodb", region_name="us-east-1").delete_table(TableName="metrics")
    with pytest.raises(StoreError, match="metrics"):
        await store.ping()
    await store.close()


async def test_labels_and_units_are_kept_per_sample(make_store):
    store = await make_store()
    plain = make_sample(minute=0, labels=())
    labelled = make_sample(
        series=dataclasses.replace(make_series(), unit="None"), minute=1, labels=(*LABELS, ("k", "v"))
    )
    await store.commit("r1", [plain, labelled])
    assert await store.samples(*ALL_TIME) == [plain, labelled]
