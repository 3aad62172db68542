"""The one shape every stream format decodes into.

A CloudWatch metric stream sends, per metric series and per one-minute period, the
statistics of that period. A ``Series`` names the metric (it repeats every minute, so
decoders intern it); a ``Sample`` is one period of one series.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

Pairs = tuple[tuple[str, str], ...]
"""Name/value pairs, sorted by name."""

Stats = tuple[tuple[str, float], ...]
"""Extra statistics by CloudWatch name (``p99``, ``p99.9``, ``TM(10%:90%)``), sorted."""

SeriesKey = tuple[str, str, str, str, Pairs]
"""``Series.key``: account, region, namespace, metric and dimensions."""


@dataclass(frozen=True, slots=True)
class Series:
    """One CloudWatch metric series: what stays the same from minute to minute."""

    account: str
    region: str
    namespace: str
    metric: str
    dimensions: Pairs
    unit: str
    """The CloudWatch unit name (``Count``, ``Milliseconds``, ``None`` ...)."""

    @property
    def key(self) -> SeriesKey:
        """The series part of a sample's identity (the unit is not part of it)."""
        return (self.account, self.region, self.namespace, self.metric, self.dimensions)


class Sample(NamedTuple):
    """The statistics of one series over one period.

    ``labels`` are attributes that do not identify the datapoint: the Firehose request's
    common attributes and what the stream says about itself (exporter ARN, stream name).
    Decoders share one labels tuple between all samples of a record.

    A named tuple rather than a dataclass: a receiver builds one per datapoint, and a tuple
    can be built from columns in C (``map(tuple.__new__, repeat(Sample), zip(...))``).
    """

    series: Series
    start_ms: int
    """The period's start, epoch milliseconds."""
    end_ms: int
    """The period's end, epoch milliseconds (start + 60 000 for metric streams)."""
    count: float  # type: ignore[assignment]  # the statistic's name; it shadows tuple.count on purpose
    sum: float
    min: float
    max: float
    stats: Stats = ()
    labels: Pairs = ()

    @property
    def identity(self) -> tuple[str, str, str, str, Pairs, int, int]:
        """Equal for the same datapoint whichever format or request it came in."""
        return (*self.series.key, self.start_ms, self.end_ms)


@dataclass(frozen=True, slots=True)
class QuarantinedRecord:
    """A Firehose record set aside because it did not decode, kept to be re-delivered.

    Its delivery was taken without it (answered 200), so this is the only copy: ``data``
    is the record exactly as Firehose sent it (base64-decoded), and ``labels`` the
    delivery's common attributes, which a re-delivery sends again.
    """

    request_id: str
    index: int
    """The record's position in its delivery; (request_id, index) is its identity."""
    received_ms: int
    reason: str
    """A short code (receiver.formats.errors), the label of the quarantine counter."""
    detail: str
    """One sentence naming what is wrong."""
    data: bytes
    labels: Pairs = ()

    @property
    def key(self) -> tuple[str, int]:
        return (self.request_id, self.index)


SAMPLE_FIELDS = len(Sample._fields)
"""How many fields a Sample has: code that flattens samples into one list steps by it."""


@dataclass(frozen=True, slots=True)
class DerivedValue:
    """One derived metric's value for one entity and one time bucket (a minute or an hour)."""

    metric: str
    scope: str
    """'service', 'endpoint' or 'instance'."""
    service: str
    endpoint: str | None
    """The endpoint's name for endpoint scope, else None."""
    layer: str
    time_ms: int
    """The bucket's start, epoch milliseconds: the CloudWatch period's start for a minute."""
    value: float
    instance: str | None = None
    """The instance's name for instance scope, else None."""


MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
"""The time constants, defined here only: every other module imports them."""

PERIOD_MS = MINUTE_MS
"""Metric streams send one-minute periods; the json format gives only the start."""


def percentile_name(quantile: float) -> str:
    """The CloudWatch statistic name of an OpenTelemetry quantile: 0.99 -> ``p99``."""
    text = f"{quantile * 100:.6f}".rstrip("0").rstrip(".")
    return f"p{text}"
