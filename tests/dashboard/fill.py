"""Known samples near the present, so the dashboard's 1 h to 7 d ranges contain them.

Each helper returns the samples of one scene; the tests compare what the page shows with
what the query API answers for them, so no value here is asserted directly.
"""

from __future__ import annotations

import time

from receiver.model import MINUTE_MS, Sample, Series
from tests.builders import make_sample

ACCOUNT = "123456789012"
OTHER_ACCOUNT = "210987654321"
SERVICE = f"aws-dynamodb::{ACCOUNT}"
OTHER_SERVICE = f"aws-dynamodb::{OTHER_ACCOUNT}"
INDEX = "GameScores/TopScores"
MINUTES = 10
"""Minutes of data, ending a minute before the present one."""


def current_minute_ms() -> int:
    now_ms = int(time.time() * 1000)
    return now_ms - now_ms % MINUTE_MS


def _series(metric: str, account: str = ACCOUNT, unit: str = "Count", **dimensions: str) -> Series:
    return Series(account, "us-east-1", "AWS/DynamoDB", metric, tuple(sorted(dimensions.items())), unit)


def _sample(
    series: Series, start_ms: int, total: float, count: float = 1.0, stats=(), high: float | None = None
) -> Sample:
    return make_sample(series=series, start_ms=start_ms, value=total, count=count, stats=stats, labels=(), high=high)


def busy_account(minute_ms: int) -> list[Sample]:
    """Two tables and an index of one account, with gaps, and several metrics left without data.

    Without data on purpose: query/scan latency, returned and TTL-deleted items, write
    throttles, conditional check failures and transaction conflicts. GameScores' read throttles
    come from two causes whose larger one alternates.
    """
    game = {"TableName": "GameScores"}
    index = {"TableName": "GameScores", "GlobalSecondaryIndexName": "TopScores"}
    orders = {"TableName": "Orders"}
    samples: list[Sample] = []
    for i in range(MINUTES):
        start = minute_ms - (MINUTES - i) * MINUTE_MS
        samples += [
            _sample(_series("ConsumedReadCapacityUnits", **game), start, 60.0 * (i + 1), 5),
            _sample(_series("ConsumedWriteCapacityUnits", **game), start, 30.0 * (i + 1), 5),
            _sample(_series("ProvisionedReadCapacityUnits", **game), start, 100.0),
            _sample(_series("ProvisionedWriteCapacityUnits", **game), start, 50.0),
            _sample(
                _series("SuccessfulRequestLatency", unit="Milliseconds", Operation="GetItem", **game),
                start,
                40.0 + i,
                10,
                stats=(("p50", 3.0), ("p90", 6.0), ("p99", 9.5 + i)),
            ),
            _sample(
                _series("SuccessfulRequestLatency", unit="Milliseconds", Operation="UpdateItem", **game),
                start,
                25.0 + 2 * i,
                5,
                stats=(("p50", 4.0), ("p99", 12.0 + i)),
            ),
            _sample(_series("ConsumedReadCapacityUnits", **index), start, 12.0 * (i + 1), 3),
            _sample(_series("ProvisionedReadCapacityUnits", **index), start, 20.0),
            _sample(_series("ConsumedReadCapacityUnits", **orders), start, 6.0, 2),
            _sample(_series("ConsumedWriteCapacityUnits", **orders), start, 90.0, 9),
            _sample(_series("AccountMaxReads"), start, 80_000.0),
            _sample(_series("UserErrors"), start, 4.0 + i % 3, 4),
        ]
        if i % 2 == 0:  # every other minute: the lines have gaps
            samples += [
                _sample(_series("ThrottledRequests", Operation="GetItem", **game), start, 2.0, 2),
                _sample(_series("ReadThrottleEvents", **game), start, 3.0, 3),
                _sample(_series("ReadKeyRangeThroughputThrottleEvents", **game), start, 2.0 if i % 4 == 0 else 1.0),
                _sample(_series("ReadProvisionedThroughputThrottleEvents", **game), start, 1.0 if i % 4 == 0 else 2.0),
            ]
        if i == 3:  # one minute alone: drawn as a dot
            samples.append(_sample(_series("SystemErrors", Operation="PutItem", **orders), start, 1.0))
        if i == 5:
            samples.append(_sample(_series("SystemErrors", Operation="UpdateItem", **game), start, 1.0))
    return samples


def quiet_account(minute_ms: int, account: str = OTHER_ACCOUNT) -> list[Sample]:
    """One table with reads in the last few minutes."""
    return [
        _sample(
            _series("ConsumedReadCapacityUnits", account=account, TableName="Inventory"),
            minute_ms - k * MINUTE_MS,
            120.0,
            4,
        )
        for k in range(1, 4)
    ]


DEEP_ACCOUNT = "345678901234"
DEEP_SERVICE = f"aws-dynamodb::{DEEP_ACCOUNT}"
RECEIVING_REGIONS = ("eu-west-1", "ap-southeast-2")
BUILDING_INDEX = "Ledger/ByDate"
STREAM_LABEL = "2026-12-06T09:00:00.000"
THROTTLED_MINUTES = {
    # minute: (ThrottledRequests by Operation, throttle events by metric); one cause leads each.
    2: (
        {"UpdateItem": 3.0},
        {"WriteProvisionedThroughputThrottleEvents": 4.0, "WriteKeyRangeThroughputThrottleEvents": 1.0},
    ),
    5: (
        {"TransactWriteItems": 2.0, "GetItem": 1.0},
        {"WriteAccountLimitThrottleEvents": 5.0, "ReadMaxOnDemandThroughputThrottleEvents": 2.0},
    ),
    8: (
        {"UpdateItem": 4.0},
        {"WriteMaxOnDemandThroughputThrottleEvents": 6.0, "ReadKeyRangeThroughputThrottleEvents": 1.0},
    ),
}


def deep_account(minute_ms: int) -> list[Sample]:
    """An account whose table "Ledger" uses everything issue 16 charts, beside "Plain", which uses none of it.

    Ledger: many operations (UpdateItem, DeleteItem, TransactWriteItems, PartiQL, GetRecords),
    throttling of several causes in THROTTLED_MINUTES, a global table replicating to
    RECEIVING_REGIONS, a stream, Kinesis Data Streams change data capture with one bad minute,
    and the index ByDate being built. Plain: read capacity only.
    """
    account = DEEP_ACCOUNT

    def series(metric: str, unit: str = "Count", **dimensions: str) -> Series:
        return _series(metric, account=account, unit=unit, **dimensions)

    ledger = {"TableName": "Ledger"}
    index = {"TableName": "Ledger", "GlobalSecondaryIndexName": "ByDate"}
    stream = {"StreamLabel": STREAM_LABEL, **ledger}
    cdc = {"DelegatedOperation": "PutRecords", **ledger}
    latencies = [
        ({"Operation": "UpdateItem"}, 8.0),
        ({"Operation": "DeleteItem"}, 6.0),
        ({"Operation": "TransactWriteItems"}, 21.0),
        ({"Operation": "ExecuteStatement", "Verb": "PartiQLSelect"}, 11.0),
        ({"Operation": "GetRecords", "StreamLabel": STREAM_LABEL}, 15.0),
    ]
    samples: list[Sample] = []
    for i in range(MINUTES):
        start = minute_ms - (MINUTES - i) * MINUTE_MS
        samples += [
            _sample(series("ConsumedReadCapacityUnits", **ledger), start, 30.0 * (i + 1), 3),
            _sample(series("ConsumedWriteCapacityUnits", **ledger), start, 45.0, 5),
            _sample(series("ConsumedReadCapacityUnits", TableName="Plain"), start, 12.0, 2),
            *(
                _sample(
                    series("SuccessfulRequestLatency", unit="Milliseconds", **operation, **ledger),
                    start,
                    (mean + i) * 4,
                    4,
                    stats=(("p50", mean), ("p99", 2 * mean + i)),
                )
                for operation, mean in latencies
            ),
            *(
                _sample(
                    series("ReplicationLatency", unit="Milliseconds", ReceivingRegion=region, **ledger),
                    start,
                    (200.0 + 100 * k + 10 * i) * 6,
                    6,
                )
                for k, region in enumerate(RECEIVING_REGIONS)
            ),
            *(
                _sample(series("PendingReplicationCount", ReceivingRegion=region, **ledger), start, 3.0 + k + i % 2)
                for k, region in enumerate(RECEIVING_REGIONS)
            ),
            _sample(series("ReturnedRecordsCount", Operation="GetRecords", **stream), start, 40.0 + i, 4),
            _sample(
                series("ReturnedBytes", unit="Bytes", Operation="GetRecords", **stream), start, 9000.0 + 100 * i, 4
            ),
            _sample(
                series("AgeOfOldestUnreplicatedRecord", unit="Milliseconds", **cdc),
                start,
                800.0,
                4,
                high=400.0 + 50 * i,
            ),
            _sample(
                series("OnlineIndexPercentageProgress", unit="Percent", **index), start, 5.0 * i, 1, high=10.0 * (i + 1)
            ),
            _sample(series("OnlineIndexConsumedWriteCapacity", **index), start, 120.0 + 10 * i, 6),
        ]
        if i % 3 == 0:
            samples.append(_sample(series("OnlineIndexThrottleEvents", **index), start, 2.0, 2))
        if i == 4:
            samples += [
                _sample(series("FailedToReplicateRecordCount", **cdc), start, 3.0, 3),
                _sample(series("ThrottledPutRecordCount", **cdc), start, 7.0, 2, high=5.0),
            ]
        if i == 6:
            samples.append(_sample(series("SystemErrors", Operation="DeleteItem", **ledger), start, 2.0, 2))
        requests, events = THROTTLED_MINUTES.get(i, ({}, {}))
        samples += [
            _sample(series("ThrottledRequests", Operation=operation, **ledger), start, total, total)
            for operation, total in requests.items()
        ]
        samples += [_sample(series(metric, **ledger), start, total, total) for metric, total in events.items()]
    return samples


REGIONAL_ACCOUNT = "456789012345"
REGIONAL_SERVICE = f"aws-dynamodb::{REGIONAL_ACCOUNT}"
TABLE_REGIONS = ("eu-west-1", "us-east-1")
"""The regions the global table "Players" of the regional account reports from."""


def regional_account(minute_ms: int) -> list[Sample]:
    """An account whose global table "Players" and its index "Players/ByScore" report from both
    TABLE_REGIONS with values of their own, beside "Sessions" in eu-west-1 alone.

    Players in us-east-1 reads every minute with GetItem taking about 10 ms; in eu-west-1 it reads
    ten times more, only in the last six minutes, takes about 40 ms and throttles reads every
    third minute. Each region replicates to the other.
    """

    def sample(
        region: str, metric: str, start: int, total: float, count: float = 1.0, stats=(), **dimensions: str
    ) -> Sample:
        unit = "Milliseconds" if metric.endswith("Latency") else "Count"
        series = Series(REGIONAL_ACCOUNT, region, "AWS/DynamoDB", metric, tuple(sorted(dimensions.items())), unit)
        return make_sample(series=series, start_ms=start, value=total, count=count, stats=stats, labels=())

    def get_latency(region: str, start: int, mean: float, p99: float) -> Sample:
        stats = (("p50", mean - 2), ("p99", p99))
        return sample(region, "SuccessfulRequestLatency", start, mean * 5, 5, stats, Operation="GetItem", **players)

    players = {"TableName": "Players"}
    index = {"TableName": "Players", "GlobalSecondaryIndexName": "ByScore"}
    east, west = "us-east-1", "eu-west-1"
    samples: list[Sample] = []
    for i in range(MINUTES):
        start = minute_ms - (MINUTES - i) * MINUTE_MS
        samples += [
            sample(east, "ConsumedReadCapacityUnits", start, 30.0 + 6 * i, 3, **players),
            sample(east, "ConsumedWriteCapacityUnits", start, 12.0, 2, **players),
            sample(east, "ProvisionedReadCapacityUnits", start, 100.0, **players),
            get_latency(east, start, 10.0 + i, 20.0 + i),
            sample(east, "ReplicationLatency", start, 300.0 * 4, 4, ReceivingRegion=west, **players),
            sample(east, "ConsumedReadCapacityUnits", start, 6.0, 2, **index),
            sample(west, "ProvisionedReadCapacityUnits", start, 400.0, **players),
            sample(west, "ReplicationLatency", start, 500.0 * 4, 4, ReceivingRegion=east, **players),
            sample(west, "ConsumedReadCapacityUnits", start, 60.0 + 12 * i, 4, **index),
            sample(west, "ConsumedReadCapacityUnits", start, 24.0, 2, TableName="Sessions"),
        ]
        if i >= MINUTES - 6:
            samples += [
                sample(west, "ConsumedReadCapacityUnits", start, 300.0 + 60 * i, 6, **players),
                sample(west, "ConsumedWriteCapacityUnits", start, 48.0, 4, **players),
                get_latency(west, start, 40.0 + i, 80.0 + i),
            ]
        if i % 3 == 0:
            samples += [
                sample(west, "ThrottledRequests", start, 4.0, 4, Operation="GetItem", **players),
                sample(west, "ReadThrottleEvents", start, 5.0, 5, **players),
                sample(west, "ReadProvisionedThroughputThrottleEvents", start, 5.0, 5, **players),
            ]
    return samples
