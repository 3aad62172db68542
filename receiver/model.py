"""The one shape every stream format decodes into.

A CloudWatch metric stream sends, per metric series and per one-minute period, the
statistics of that period. A ``Series`` names the metric (it repeats every minute, so
decoders intern it); a ``Sample`` is one period of one series.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

Pairs = tuple[tuple[str, str], ...]
"""Name/value pairs, sorted by name."""

Stats = tuple[tuple[str, float], ...]
"""Extra statistics by CloudWatch name (``p99``, ``p99.9``, ``TM(10%:90%)``), sorted."""

SeriesKey = tuple[str, str, str, str, Pairs]
"""``Series.key``: account, region, namespace, metric and dimensions."""


@dataclass(frozen=True, slots=True)
class Series:
    """One CloudWatch metric series: what stays the same from minute to minute.

    Every stage keys tables by Series (the stores' rows, the deriver's groups), so its hash
    is worked out once, when it is made: a lookup then costs what one by ``id()`` would,
    and equal series from any decoder find the same entry.
    """

    account: str
    region: str
    namespace: str
    metric: str
    dimensions: Pairs
    unit: str
    """The CloudWatch unit name (``Count``, ``Milliseconds``, ``None`` ...)."""
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        fields = (self.account, self.region, self.namespace, self.metric, self.dimensions, self.unit)
        object.__setattr__(self, "_hash", hash(fields))

    def __hash__(self) -> int:
        return self._hash

    def __reduce__(self) -> tuple[type[Series], tuple[str, str, str, str, Pairs, str]]:
        # Made afresh when unpickled: a string's hash differs from one process to the next.
        return (Series, (self.account, self.region, self.namespace, self.metric, self.dimensions, self.unit))

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
    region: str = ""
    """The cloud region the value describes: the region of the samples it was computed from,
    or '' when they came from several regions (and for account values, which always span
    the account's regions)."""
    merged: bool = True
    """Whether this is the entity's value over every region, the value SkyWalking's metric
    names stand for. An entity reporting from one region has one value, merged and of that
    region; one reporting from several has a merged value (region '') and one value per
    region (merged False)."""


DerivedKey = tuple[str, str, str | None, str | None, str, int]
"""(metric, service, endpoint, instance, region, time): a derived value's place in its bucket;
a bucket holds one value per place."""


def derived_key(value: DerivedValue) -> DerivedKey:
    return (value.metric, value.service, value.endpoint, value.instance, value.region, value.time_ms)


MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
"""The time constants, defined here only: every other module imports them."""

PERIOD_MS = MINUTE_MS
"""Metric streams send one-minute periods; the json format gives only the start."""

DEFAULT_SETTLE_S = 300.0
"""How long after a minute ends before its values are taken as final (``--metrics-settle-seconds``):
the "latest complete minute" of ``/metrics``, of OTLP export and of alarm evaluation.

CloudWatch metric streams deliver a minute's datapoints two to three minutes after it
ends, and Firehose then holds them for up to its buffering interval before it sends them
(the CDK stacks' ``bufferingIntervalSeconds``, 60 s by default; Firehose's own default is
300 s). Five minutes covers both with a minute to spare. With a longer buffering interval,
set the settle time to about 180 s plus that interval, or partial minutes show.
"""


def percentile_name(quantile: float) -> str:
    """The CloudWatch statistic name of an OpenTelemetry quantile: 0.99 -> ``p99``."""
    text = f"{quantile * 100:.6f}".rstrip("0").rstrip(".")
    return f"p{text}"


# -- alarm events ---------------------------------------------------------------------
# What the store keeps of alarms: one event per notification, numbered per (rule, entity).
# An alarm's history is the chain of its events: seq 1, 2, 3 ... for one rule and one
# entity. A replica that decides to notify writes the next number with an insert-if-absent;
# when two replicas decide the same thing from the same history, they race for the same
# number and only the winner notifies, so each firing is sent once however many replicas
# evaluate it. Plain records here, so the store keeps them without knowing alarms/.

FIRING = "firing"
RESOLVED = "resolved"
KINDS = (FIRING, RESOLVED)


@dataclass(frozen=True, slots=True)
class AlarmEvent:
    """One notification of one rule for one entity."""

    rule: str
    service: str
    endpoint: str | None
    """The endpoint for an endpoint-scope rule, else None."""
    seq: int
    """1 for the entity's first event of this rule, then one more per event."""
    kind: str
    """``firing`` (the alarm started, or a reminder after its silence period) or ``resolved``."""
    minute_ms: int
    """Start of the complete minute whose evaluation produced the event."""
    value: float
    """The rule's value in that minute (NaN-free; 0 when the minute had no value)."""
    threshold: float
    message: str
    created_ms: int
    """When the event was written (epoch milliseconds)."""

    @property
    def key(self) -> tuple[str, str, str]:
        """(rule, service, endpoint or ""): whose chain the event belongs to."""
        return (self.rule, self.service, self.endpoint or "")

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"an alarm event's kind is one of {KINDS}, not {self.kind!r}")
        if self.seq < 1:
            raise ValueError(f"an alarm event's seq starts at 1, not {self.seq}")


def latest_per_key(events: list[AlarmEvent]) -> list[AlarmEvent]:
    """The event with the highest seq of each (rule, service, endpoint), sorted by key."""
    heads: dict[tuple[str, str, str], AlarmEvent] = {}
    for event in events:
        head = heads.get(event.key)
        if head is None or event.seq > head.seq:
            heads[event.key] = event
    return [heads[key] for key in sorted(heads)]


# -- the table inventory ----------------------------------------------------------------
# What the inventory poller (receiver/inventory) learns from the DynamoDB and CloudWatch
# APIs, kept by every store so that replicas share one inventory. The store sees a JSON
# body and a key, nothing of what the body means; receiver/inventory/documents.py does.

TABLE = "table"
"""A table's description: DescribeTable, its tags, backups and Contributor Insights."""
LIMITS = "limits"
"""An account's DynamoDB limits in a region (DescribeLimits); its name is ''."""
TOP_KEYS = "top_keys"
"""A table's most throttled keys (Contributor Insights' GetInsightRuleReport)."""
INVENTORY_KINDS = (TABLE, LIMITS, TOP_KEYS)


@dataclass(frozen=True, slots=True)
class InventoryItem:
    """One thing the inventory knows, as the store keeps it: upserted by ``key``."""

    kind: str
    account: str
    region: str
    name: str
    """The table's name; '' for an account's limits."""
    updated_ms: int
    """When the poller learned it (epoch milliseconds)."""
    body: str
    """A JSON object (receiver/inventory/documents.py gives its fields)."""

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.kind, self.account, self.region, self.name)

    def __post_init__(self) -> None:
        if self.kind not in INVENTORY_KINDS:
            raise ValueError(f"an inventory item's kind is one of {INVENTORY_KINDS}, not {self.kind!r}")
