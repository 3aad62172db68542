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


def _sample(series: Series, start_ms: int, total: float, count: float = 1.0, stats=()) -> Sample:
    return make_sample(series=series, start_ms=start_ms, value=total, count=count, stats=stats, labels=())


def busy_account(minute_ms: int) -> list[Sample]:
    """Two tables and an index of one account, with gaps, and several metrics left without data.

    Without data on purpose: query/scan latency, returned and TTL-deleted items, write
    throttles, conditional check failures and transaction conflicts.
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
            ]
        if i == 3:  # one minute alone: drawn as a dot
            samples.append(_sample(_series("SystemErrors", Operation="PutItem", **orders), start, 1.0))
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
