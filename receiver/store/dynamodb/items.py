"""The DynamoDB store's table layout for samples and request ids, and decoding them back.

Pure functions over the low-level (``{"S": ...}``/``{"N": ...}``) item format; no boto3 here.

One table, partition key ``pk`` (S), sort key ``sk`` (S), TTL attribute ``expires_at``:

========================  ==================================  =====================================
item                      pk                                  sk
========================  ==================================  =====================================
sample                    ``S#<namespace>#<metric>#<hour>``   ``<start_ms>#<end_ms>#<series digest>``
metric catalog            ``M``                               ``<namespace>#<metric>``
hours of a metric         ``H#<namespace>#<metric>``          ``<hour>``
committed request id      ``R#<request id>``                  ``R``
========================  ==================================  =====================================

(Bucket versions and derived values have keys of their own: see derived.py.)

- ``<hour>`` and ``<start_ms>`` are epoch milliseconds in 13 digits (until the year 2286),
  so sort keys order by time and "metric M between t0 and t1" is one Query per hour with
  ``sk BETWEEN``.
- Namespace and metric are escaped (``%`` -> ``%25``, ``#`` -> ``%23``): CloudWatch allows
  ``#`` in custom namespaces, and escaping keeps the keys injective.
- The series digest is a 128-bit BLAKE2b of (account, region, dimensions). A readable sort
  key could overflow DynamoDB's 1,024-byte limit (CloudWatch allows 30 dimensions with
  values of 1,024 characters), and would need escaping; the item carries every field in
  plain attributes anyway.
- Statistics are DynamoDB Numbers written from ``repr(float)``, the shortest text that
  parses back to the same double, so they round-trip exactly. DynamoDB Numbers span only
  1e-130 to 1e126 in magnitude; a finite double outside that (1e-300, 1e308) is stored as
  a String of the same text instead. Reads accept either.
- Percentiles and labels are compact JSON arrays of pairs (orjson writes floats as the
  shortest round-trip text too).

Hot partitions: every sample of one metric in one hour lands in one partition, and a
partition takes about 1,000 writes of 1 KB per second. A metric stream sends each series
once a minute, so that is room for ~60,000 series per metric (all tables and operations
of all accounts feeding this table); bursts above it are throttled and retried by the
store. Past that scale, add a shard suffix to the sample partition key.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

import orjson

from receiver.model import HOUR_MS, Pairs, Sample, Series

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


def series_digest(series: Series) -> str:
    """Identifies (account, region, dimensions) within one metric's partition."""
    canonical = orjson.dumps([series.account, series.region, series.dimensions])
    return hashlib.blake2b(canonical, digest_size=16).hexdigest()


def sample_sk(start_ms: int, end_ms: int, digest: str) -> str:
    return f"{start_ms:013d}#{end_ms}#{digest}"


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


class SeriesAttributes:
    """What every sample item of one Series shares: computed once per Series per request."""

    __slots__ = ("attributes", "digest", "metric", "namespace")

    def __init__(self, series: Series) -> None:
        self.namespace = series.namespace
        self.metric = series.metric
        self.digest = series_digest(series)
        self.attributes: Item = {
            "account": {"S": series.account},
            "region": {"S": series.region},
            "namespace": {"S": series.namespace},
            "metric": {"S": series.metric},
            "dimensions": {"S": orjson.dumps(series.dimensions).decode()},
            "unit": {"S": series.unit},
        }


def sample_item(sample: Sample, series: SeriesAttributes, labels: dict[str, str] | None, retention_s: int) -> Item:
    """The item of one sample; ``labels`` is its pre-encoded labels attribute (None: no labels)."""
    start_ms = sample.start_ms
    item: Item = {
        "pk": {"S": sample_pk(series.namespace, series.metric, hour_of(start_ms))},
        "sk": {"S": sample_sk(start_ms, sample.end_ms, series.digest)},
        **series.attributes,
        "start_ms": {"N": str(start_ms)},
        "end_ms": {"N": str(sample.end_ms)},
        "count": encode_number(sample.count),
        "sum": encode_number(sample.sum),
        "min": encode_number(sample.min),
        "max": encode_number(sample.max),
        "expires_at": {"N": str(start_ms // 1000 + retention_s)},
    }
    if sample.stats:
        item["stats"] = {"S": orjson.dumps(sample.stats).decode()}
    if labels is not None:
        item["labels"] = labels
    return item


def labels_attribute(labels: Pairs) -> dict[str, str] | None:
    return {"S": orjson.dumps(labels).decode()} if labels else None


class SampleDecoder:
    """Turns sample items back into Samples, sharing one Series / labels object per distinct value."""

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
