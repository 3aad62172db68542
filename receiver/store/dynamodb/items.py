"""The DynamoDB store's table layout for samples and request ids, item sizes, and reading
the per-datapoint items of older receivers.

Pure functions over the low-level (``{"S": ...}``/``{"N": ...}``) item format; no boto3 here.

One table, partition key ``pk`` (S), sort key ``sk`` (S), TTL attribute ``expires_at``:

========================  ==================================  =====================================
item                      pk                                  sk
========================  ==================================  =====================================
sample block              ``S#<namespace>#<metric>#<hour>``   ``<start_ms>#p<seq><writer>``
metric catalog            ``M``                               ``<namespace>#<metric>``
hours of a metric         ``H#<namespace>#<metric>``          ``<hour>``
committed request id      ``R#<request id>``                  ``R``
========================  ==================================  =====================================

(Sample blocks are described in blocks.py; bucket versions and derived values have keys of
their own: see derived.py.)

- ``<hour>`` and ``<start_ms>`` are epoch milliseconds in 13 digits (until the year 2286),
  so sort keys order by time and "metric M between t0 and t1" is one Query per hour with
  ``sk BETWEEN``.
- Namespace and metric are escaped (``%`` -> ``%25``, ``#`` -> ``%23``): CloudWatch allows
  ``#`` in custom namespaces, and escaping keeps the keys injective.

Receivers before packed blocks wrote one item per datapoint in the same partitions, sort key
``<start_ms>#<end_ms>#<series digest>`` (a 128-bit BLAKE2b of account, region and
dimensions), the sample's fields as plain attributes (``account``, ``region``,
``namespace``, ``metric``, ``unit``; ``dimensions``, ``stats`` and ``labels`` as JSON;
``start_ms``, ``end_ms``, ``count``, ``sum``, ``min``, ``max`` as Numbers, or Strings
outside DynamoDB's Number range). The same Query reads them beside the blocks, and
``SampleDecoder`` turns them back into Samples; a block replaces such an item's datapoint.
They expire with the minute retention like blocks, so a table holds none a week (the
default retention) after its last older receiver stopped.

Hot partitions: the blocks of one metric in one hour land in one partition, and a
partition takes about 1,000 writes of 1 KB per second. A block holds a metric's datapoints
of one delivery at about 20-30 bytes each compressed (the 2,000-table bench,
docs/performance.md), so that is room for about two million series per metric sending once
a minute; bursts above it are throttled and retried by the store. Past that scale, add a
shard suffix to the sample partition key.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

import orjson

from receiver.model import HOUR_MS, Pairs, Sample, Series

ITEM_BYTES = 409_600
"""The largest item DynamoDB takes: 400 KB, attribute names included."""
WRITE_UNIT_BYTES = 1024
"""One write request unit writes up to 1 KB of item (on-demand; a write capacity unit alike)."""

Item = dict[str, dict[str, Any]]
"""One item in the low-level attribute-value format of the boto3 client."""

MAX_START_MS = 10**13
"""Sort keys hold 13 digits of start time; later (or negative) starts cannot be stored."""

CATALOG_PK = "M"
CATALOG_REFRESH_S = 24 * 3600.0
"""A catalog entry is rewritten (its expiry pushed out) at most once per this interval."""

_REQUEST_SK = "R"
_MAX_PLAIN_REQUEST_ID = 1000
"""Longer ids are hashed: a partition key holds at most 2,048 bytes."""

_SMALLEST_NUMBER = Decimal("1e-130")
_TOO_LARGE_NUMBER = Decimal("1e126")
_EMPTY_JSON = "[]"


def escape(text: str) -> str:
    """``text`` without ``#`` (the key separator); injective because ``%`` is escaped first."""
    return text.replace("%", "%25").replace("#", "%23")


def hour_of(start_ms: int) -> int:
    return start_ms - start_ms % HOUR_MS


def metric_key(namespace: str, metric: str) -> str:
    """The escaped ``<namespace>#<metric>`` shared by a metric's keys."""
    return f"{escape(namespace)}#{escape(metric)}"


def sample_pk(namespace: str, metric: str, hour_ms: int) -> str:
    return f"S#{metric_key(namespace, metric)}#{hour_ms:013d}"


def hours_pk(namespace: str, metric: str) -> str:
    return f"H#{metric_key(namespace, metric)}"


def start_range(start_ms: int, end_ms: int) -> tuple[str, str]:
    """Inclusive sort-key bounds selecting starts in ``[start_ms, end_ms)``, for ``BETWEEN``.

    After the 13 digits a sort key goes on with ``#``, which sorts just before ``$``.
    """
    return f"{start_ms:013d}", f"{end_ms - 1:013d}$"


def request_key(request_id: str) -> Item:
    if len(request_id.encode()) <= _MAX_PLAIN_REQUEST_ID:
        pk = f"R#{request_id}"
    else:
        # "RH#" cannot be produced by the plain form, whose prefix is "R#".
        pk = f"RH#{hashlib.sha256(request_id.encode()).hexdigest()}"
    return {"pk": {"S": pk}, "sk": {"S": _REQUEST_SK}}


def request_item(request_id: str, committed_ms: int, expires_at: int) -> Item:
    return {
        **request_key(request_id),
        "committed_ms": {"N": str(committed_ms)},
        "expires_at": {"N": str(expires_at)},
    }


def catalog_item(namespace: str, metric: str, expires_at: int) -> Item:
    return {
        "pk": {"S": CATALOG_PK},
        "sk": {"S": metric_key(namespace, metric)},
        "namespace": {"S": namespace},
        "metric": {"S": metric},
        "expires_at": {"N": str(expires_at)},
    }


def hour_item(namespace: str, metric: str, hour_ms: int, expires_at: int) -> Item:
    return {
        "pk": {"S": hours_pk(namespace, metric)},
        "sk": {"S": f"{hour_ms:013d}"},
        "expires_at": {"N": str(expires_at)},
    }


def encode_number(value: float) -> dict[str, str]:
    """A finite float as a DynamoDB Number when it fits one, else as a String; both exact."""
    text = repr(value)
    magnitude = abs(value)
    if magnitude == 0.0 or 1e-129 <= magnitude <= 1e125:
        return {"N": text}
    # Near the limits compare the very text DynamoDB will parse.
    exact = abs(Decimal(text))
    if _SMALLEST_NUMBER <= exact < _TOO_LARGE_NUMBER:
        return {"N": text}
    return {"S": text}


def decode_number(attribute: dict[str, str]) -> float:
    text = attribute.get("N")
    return float(attribute["S"] if text is None else text)


def item_size(item: Item) -> int:
    """The item's size by DynamoDB's rules: each attribute's name and value in bytes.

    Strings and names count their UTF-8 bytes, binaries their raw bytes, a Number one byte
    per two significant digits and one more, a Boolean or null one byte; lists and maps
    3 bytes and one per element beside what they hold. (What DynamoDB bills and limits, as
    its developer guide's "DynamoDB item sizes and formats" gives them.)
    """
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def write_units(item: Item) -> int:
    """Write request units of putting ``item``: one per started KB, at least one."""
    return max(1, -(-item_size(item) // WRITE_UNIT_BYTES))


def _value_size(value: dict[str, Any]) -> int:
    ((kind, held),) = value.items()
    if kind == "S":
        return len(held.encode())
    if kind == "B":
        return len(held)
    if kind == "N":
        return _number_size(held)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(text.encode()) for text in held)
    if kind == "NS":
        return sum(_number_size(text) for text in held)
    if kind == "BS":
        return sum(len(data) for data in held)
    if kind == "L":
        return 3 + sum(1 + _value_size(element) for element in held)
    if kind == "M":
        return 3 + sum(1 + len(name.encode()) + _value_size(element) for name, element in held.items())
    raise ValueError(f"unknown DynamoDB attribute type {kind!r}")


def _number_size(text: str) -> int:
    """1 byte per two significant digits, and 1 (leading and trailing zeros do not count)."""
    digits = Decimal(text).normalize().as_tuple().digits
    significant = len(digits) if any(digits) else 1
    return 1 + -(-significant // 2)


class SampleDecoder:
    """Turns the per-datapoint items of older receivers back into Samples, sharing one
    Series / labels object per distinct value."""

    def __init__(self) -> None:
        self._series: dict[tuple[str, ...], Series] = {}
        self._pairs: dict[str, Pairs] = {_EMPTY_JSON: ()}

    def __call__(self, item: Item) -> Sample:
        key = (
            item["account"]["S"],
            item["region"]["S"],
            item["namespace"]["S"],
            item["metric"]["S"],
            item["dimensions"]["S"],
            item["unit"]["S"],
        )
        series = self._series.get(key)
        if series is None:
            account, region, namespace, metric, dimensions, unit = key
            pairs = self._decode_pairs(dimensions)
            series = self._series[key] = Series(account, region, namespace, metric, pairs, unit)
        stats = item.get("stats")
        labels = item.get("labels")
        return Sample(
            series,
            int(item["start_ms"]["N"]),
            int(item["end_ms"]["N"]),
            decode_number(item["count"]),
            decode_number(item["sum"]),
            decode_number(item["min"]),
            decode_number(item["max"]),
            self._decode_stats(stats["S"]) if stats else (),
            self._decode_pairs(labels["S"]) if labels else (),
        )

    def _decode_pairs(self, text: str) -> Pairs:
        pairs = self._pairs.get(text)
        if pairs is None:
            pairs = self._pairs[text] = tuple((name, value) for name, value in orjson.loads(text))
        return pairs

    @staticmethod
    def _decode_stats(text: str) -> tuple[tuple[str, float], ...]:
        # float(): orjson reads a whole-number value such as 2.0 back as a float already,
        # but the model's type is float whatever JSON says.
        return tuple((name, float(value)) for name, value in orjson.loads(text))
