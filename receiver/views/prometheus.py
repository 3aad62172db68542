"""`GET /metrics`: the Prometheus text exposition format (version 0.0.4).

Two kinds of families:

* every derived metric's value for the **latest complete minute**, as a gauge with labels
  ``service``, ``endpoint`` (endpoint scope), ``service_instance`` (instance scope) and
  ``layer``; the metric's description and unit make its HELP;
* the receiver's own counters, histogram and gauges, prefixed ``metric_stream_receiver_``.

The latest complete minute is the newest minute with derived values that ended at least
``settle_s`` ago (see MinuteWindow for why). Samples carry no timestamps: Prometheus stamps
them with the scrape time, so its staleness handling works and nothing is ever refused as
out of order; the minute they describe is exposed as a gauge of its own,
``metric_stream_receiver_latest_complete_minute_timestamp_seconds``.

The format is written here rather than with prometheus_client: the derived families change
with every minute and every rules reload, which that library models with a custom collector
holding no state of its own, so it would contribute little beyond escaping; this module
is that escaping plus a histogram, and the format is small and stable.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web

from receiver.derive.deriver import STEP_NAMES
from receiver.derive.regions import by_region
from receiver.inventory.tags import Labeller, label_name, no_tags
from receiver.keys import ALARMS, COMPLETENESS, DERIVER, INGEST, INVENTORY, RULES, SCRAPE, STORE, TAG_LABELS, TELEMETRY
from receiver.model import DEFAULT_SETTLE_S, MINUTE_MS, DerivedValue
from receiver.store.base import StoreError

if TYPE_CHECKING:
    from receiver.alarms.counters import AlarmCountsSnapshot
    from receiver.derive.completeness import Completeness
    from receiver.derive.deriver import DeriveCountsSnapshot
    from receiver.firehose.telemetry import HistogramSnapshot, TelemetrySnapshot
    from receiver.inventory.counters import InventoryCountsSnapshot
    from receiver.rules.ruleset import MetricInfo
    from receiver.store.base import Store

log = logging.getLogger("receiver.views.prometheus")

PATH = "/metrics"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PREFIX = "metric_stream_receiver_"
"""The receiver's own metrics; the derived ones keep SkyWalking's names."""

DEFAULT_STALE_AFTER_S = 600.0
"""How long past the settle time the latest complete minute stays exposed.

If nothing newer arrives (the stream or Firehose stopped), repeating the last minute
forever would look like steady traffic. Past this the derived gauges disappear, so
Prometheus marks them stale, dashboards show a gap and ``absent()`` alerts can fire.
"""

STORE_TIMEOUT_S = 5.0
"""The store's share of one scrape: well inside Prometheus's default 10 s scrape timeout,
so a hanging store still leaves the receiver's own metrics (and store_up 0) visible."""

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_TYPES = frozenset({"counter", "gauge", "histogram", "summary", "untyped"})
_SUFFIXES = {
    "counter": ("",),
    "gauge": ("",),
    "untyped": ("",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("", "_sum", "_count"),
}

Labels = tuple[tuple[str, str], ...]


# -- the text format -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Point:
    """One sample line: the family's name plus ``suffix``, labels and value."""

    labels: Labels
    value: float
    suffix: str = ""


@dataclass(frozen=True, slots=True)
class Family:
    """One metric family: a single HELP and TYPE line and its samples."""

    name: str
    type: str
    help: str
    points: tuple[Point, ...]


def render(families: Iterable[Family]) -> str:
    """The families in the text format; ValueError for a bad or repeated name.

    Each family's samples follow its HELP and TYPE lines, so they are grouped as the format
    requires; a family without samples is written as HELP and TYPE only.
    """
    lines: list[str] = []
    seen: set[str] = set()
    for family in families:
        _check_family(family)
        if family.name in seen:
            raise ValueError(f"metric family {family.name!r} appears twice")
        seen.add(family.name)
        lines.append(f"# HELP {family.name} {_escape_help(family.help)}")
        lines.append(f"# TYPE {family.name} {family.type}")
        for point in family.points:
            lines.append(f"{family.name}{point.suffix}{_labels(point.labels)} {format_value(point.value)}")
    return "\n".join(lines) + "\n" if lines else ""


def format_value(value: float) -> str:
    """A sample value as Go's ParseFloat reads it back exactly (repr is the shortest round trip)."""
    if isinstance(value, int):  # counters, and bool as 0 or 1
        return str(int(value))
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _check_family(family: Family) -> None:
    if not _METRIC_NAME.fullmatch(family.name):
        raise ValueError(f"{family.name!r} is not a valid Prometheus metric name")
    if family.type not in _TYPES:
        raise ValueError(f"{family.type!r} is not a Prometheus metric type")
    allowed = _SUFFIXES[family.type]
    for point in family.points:
        if point.suffix not in allowed:
            raise ValueError(f"suffix {point.suffix!r} does not belong to a {family.type} ({family.name})")
        for name, _ in point.labels:
            if not _LABEL_NAME.fullmatch(name) or name.startswith("__"):
                raise ValueError(f"{name!r} is not a valid label name ({family.name})")


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{name}="{_escape_label_value(value)}"' for name, value in labels) + "}"


def _escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def histogram(name: str, help: str, snapshot: HistogramSnapshot, labels: Labels = ()) -> Family:
    """A histogram family: cumulative ``_bucket`` lines up to ``le="+Inf"``, ``_sum``, ``_count``."""
    points = [
        Point((*labels, ("le", format_value(bound))), count, "_bucket")
        for bound, count in zip(snapshot.bounds, snapshot.cumulative)
    ]
    points.append(Point((*labels, ("le", "+Inf")), snapshot.count, "_bucket"))
    points.append(Point(labels, snapshot.sum, "_sum"))
    points.append(Point(labels, snapshot.count, "_count"))
    return Family(name, "histogram", help, tuple(points))


# -- which minute ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MinuteWindow:
    """Which stored minute ``/metrics`` exposes.

    At time ``now`` the latest complete minute is the newest minute M (its start) with
    derived values that ``completeness`` says is complete (all its expected series in, see
    receiver/derive/completeness.py), or, without it, such that ``M + 60 s + settle_s <= now``.
    Its values are exposed while ``now < M + 60 s + settle_s + stale_after_s``; after that,
    none (see the defaults; DEFAULT_SETTLE_S is receiver/model.py's).
    """

    settle_s: float = DEFAULT_SETTLE_S
    stale_after_s: float = DEFAULT_STALE_AFTER_S
    completeness: Completeness | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.settle_s) and self.settle_s >= 0):
            raise ValueError(f"the settle time must be 0 or more seconds, not {self.settle_s}")
        if not (math.isfinite(self.stale_after_s) and self.stale_after_s > 0):
            raise ValueError(f"the stale-after time must be more than 0 seconds, not {self.stale_after_s}")

    def before_ms(self, now_ms: int) -> int:
        """The bound for ``Store.latest_bucket``: minutes starting before it are complete."""
        if self.completeness is not None:
            return self.completeness.latest_complete_minute(now_ms) + 1
        return now_ms - MINUTE_MS - round(self.settle_s * 1000) + 1

    def is_current(self, minute_ms: int, now_ms: int) -> bool:
        """Whether a complete minute is recent enough to expose."""
        ends_ms = minute_ms + MINUTE_MS
        return now_ms < ends_ms + round((self.settle_s + self.stale_after_s) * 1000)


# -- the families ----------------------------------------------------------------------


def derived_families(
    values: Iterable[DerivedValue], metrics: Sequence[MetricInfo], tags: Labeller = no_tags
) -> list[Family]:
    """One gauge family per metric with values, in the rules' order.

    Values of a metric the current rules no longer define (a reload removed it) are left
    out: there is nothing to describe them with. A table reporting from several regions is
    one series per region, labelled ``region`` (derive/regions.py ``by_region``). ``tags``
    gives a value's table tags, labelled ``tag_<key>`` (receiver/inventory/tags.py).
    """
    by_metric: dict[str, dict[Labels, float]] = {}
    for value in by_region(values):
        labels = entity_labels(value) + tuple((label_name(k), v) for k, v in tags(value))
        by_metric.setdefault(value.metric, {})[labels] = value.value
    families = []
    for info in metrics:
        points = by_metric.get(info.name)
        if points:
            families.append(
                Family(
                    info.name,
                    "gauge",
                    f"{info.description.strip()} [unit: {info.unit}; latest complete minute]",
                    tuple(Point(labels, v) for labels, v in sorted(points.items())),
                )
            )
    return families


def entity_labels(value: DerivedValue) -> Labels:
    """``service``, then ``endpoint`` or ``service_instance`` by scope, then ``region`` where
    the value has one, then ``layer``.

    ``service_instance`` rather than ``instance``, which Prometheus sets to the target.
    """
    labels: list[tuple[str, str]] = [("service", value.service)]
    if value.endpoint is not None:
        labels.append(("endpoint", value.endpoint))
    if value.instance is not None:
        labels.append(("service_instance", value.instance))
    if value.region:
        labels.append(("region", value.region))
    labels.append(("layer", value.layer))
    return tuple(labels)


@dataclass(frozen=True, slots=True)
class ReceiverState:
    """What the receiver's own families are made of, read at one scrape."""

    telemetry: TelemetrySnapshot
    inflight_bytes: int
    inflight_limit_bytes: int
    store_up: bool
    latest_minute_ms: int | None


def receiver_families(state: ReceiverState) -> list[Family]:
    t = state.telemetry
    families = [
        Family(
            PREFIX + "firehose_requests_total",
            "counter",
            "Firehose deliveries answered, by HTTP status.",
            tuple(Point((("status", str(status)),), count) for status, count in t.requests_by_status),
        ),
        Family(
            PREFIX + "firehose_duplicate_requests_total",
            "counter",
            "Deliveries whose request id was already committed (Firehose retries), answered 200 without storing again.",
            (Point((), t.duplicates),),
        ),
        Family(
            PREFIX + "firehose_records_total",
            "counter",
            "Records in committed deliveries, quarantined ones included.",
            (Point((), t.records),),
        ),
        Family(
            PREFIX + "firehose_samples_total",
            "counter",
            "CloudWatch datapoints (samples) committed to the store.",
            (Point((), t.samples),),
        ),
        Family(
            PREFIX + "firehose_received_bytes_total",
            "counter",
            "Request body bytes read, as sent (compressed when the delivery is gzipped).",
            (Point((), t.body_bytes),),
        ),
        Family(
            PREFIX + "firehose_decode_errors_total",
            "counter",
            "Deliveries refused with 400, by what could not be read: the body (size, gzip, cut short) "
            "or the envelope (headers, JSON, base64, request id).",
            tuple(Point((("reason", reason),), count) for reason, count in t.decode_errors),
        ),
        Family(
            PREFIX + "records_quarantined_total",
            "counter",
            "Records set aside because they did not decode, by reason; the rest of their delivery was "
            "taken. They are kept in the store for re-delivery (python -m receiver quarantine).",
            tuple(Point((("reason", reason),), count) for reason, count in t.quarantined),
        ),
        Family(
            PREFIX + "firehose_aborted_requests_total",
            "counter",
            "Deliveries whose client disconnected before sending the whole body (no answer sent).",
            (Point((), t.aborted),),
        ),
        histogram(
            PREFIX + "firehose_request_duration_seconds",
            "Time from a delivery's headers to its answer, in seconds.",
            t.latency,
        ),
        Family(
            PREFIX + "inflight_body_bytes",
            "gauge",
            "Memory held by deliveries in flight now: their bodies (compressed and decompressed) "
            "and what their decoding may take.",
            (Point((), state.inflight_bytes),),
        ),
        Family(
            PREFIX + "inflight_body_bytes_limit",
            "gauge",
            "The in-flight byte budget; past it new deliveries get 503 and Firehose retries.",
            (Point((), state.inflight_limit_bytes),),
        ),
        Family(
            PREFIX + "store_up",
            "gauge",
            "1 when the store answers its readiness probe (which waits behind no other work), "
            "else 0: 0 is broken, not busy.",
            (Point((), int(state.store_up)),),
        ),
    ]
    if state.latest_minute_ms is not None:
        families.append(
            Family(
                PREFIX + "latest_complete_minute_timestamp_seconds",
                "gauge",
                "Start (epoch seconds) of the latest complete minute, the minute the derived gauges show; "
                "they are left out once it is older than the stale-after time.",
                (Point((), state.latest_minute_ms // 1000),),
            )
        )
    return families


def deriver_families(counts: DeriveCountsSnapshot) -> list[Family]:
    """The deriver's counters (receiver/derive/deriver.py): values left out, buckets set aside."""
    set_aside = dict(counts.set_aside)
    return [
        Family(
            PREFIX + "values_not_computed_total",
            "counter",
            "Derived values that could not be computed (a sum or product past the largest floating-point "
            "number) and were left out, "
            "by metric and step (minute or hour); each bucket's lost values are counted once.",
            tuple(Point((("metric", metric), ("step", step)), n) for step, metric, n in counts.not_computed),
        ),
        Family(
            PREFIX + "derive_buckets_set_aside_total",
            "counter",
            "Minutes and hours whose derivation kept failing and was set aside until new samples for them "
            "arrive, by step.",
            tuple(Point((("step", step),), set_aside.get(step, 0)) for step in STEP_NAMES.values()),
        ),
    ]


def alarm_families(counts: AlarmCountsSnapshot) -> list[Family]:
    """The alarm counters (receiver/alarms/counters.py), with alarm rules configured."""
    return [
        Family(
            PREFIX + "alarms_fired_total",
            "counter",
            "Alarm firing notifications this replica sent (starts and reminders), by rule.",
            tuple(Point((("rule", rule),), n) for rule, n in counts.fired),
        ),
        Family(
            PREFIX + "alarms_resolved_total",
            "counter",
            "Alarm resolved notifications this replica sent, by rule.",
            tuple(Point((("rule", rule),), n) for rule, n in counts.resolved),
        ),
        Family(
            PREFIX + "alarm_notifications_total",
            "counter",
            "Alarm notification deliveries by channel (webhook, slack, sns) and outcome (delivered, "
            "failed: given up after the retries).",
            tuple(Point((("channel", c), ("outcome", o)), n) for c, o, n in counts.notifications),
        ),
    ]


def inventory_families(counts: InventoryCountsSnapshot) -> list[Family]:
    """The inventory poller's counters (receiver/inventory/counters.py), with the inventory on."""
    families = [
        Family(
            PREFIX + "inventory_calls_total",
            "counter",
            "AWS API calls of the table inventory by API and outcome (ok, throttled, denied, failed); "
            "only the replica holding the inventory lease makes them.",
            tuple(Point((("api", api), ("outcome", outcome)), n) for api, outcome, n in counts.calls),
        ),
        Family(
            PREFIX + "inventory_tables",
            "gauge",
            "Tables the inventory knows (deleted tables left out), in every account and region.",
            (Point((), counts.tables),),
        ),
        Family(
            PREFIX + "inventory_lease_held",
            "gauge",
            "1 while this replica holds the inventory lease and so is the one polling, else 0.",
            (Point((), 1 if counts.holding_lease else 0),),
        ),
    ]
    if counts.last_poll_ms is not None:
        families.append(
            Family(
                PREFIX + "inventory_last_poll_timestamp_seconds",
                "gauge",
                "When this replica's last complete poll of the inventory ended (epoch seconds).",
                (Point((), counts.last_poll_ms / 1000),),
            )
        )
    return families


def completeness_families(completeness: Completeness) -> list[Family]:
    """How minutes became complete, and the minute awaited now: the series each account and
    region is expected to send in it, and those in (receiver/derive/completeness.py)."""
    now_ms = int(completeness.clock() * 1000)
    latest = completeness.latest_complete_minute(now_ms)
    awaited = completeness.status(latest + MINUTE_MS, now_ms)
    families = [
        Family(
            PREFIX + "minutes_completed_total",
            "counter",
            "Minutes this replica derived that became complete, by how: all their expected series "
            "arrived (all_arrived) or their settle time passed (settled).",
            tuple(Point((("by", by),), n) for by, n in sorted(completeness.completed_by.items())),
        )
    ]
    if awaited.sources:
        where = [(("account", s.account), ("region", s.region)) for s in awaited.sources]
        families += [
            Family(
                PREFIX + "awaited_minute_expected_series",
                "gauge",
                "Series each account and region normally sends, expected in the minute after the latest complete one.",
                tuple(Point(at, s.expected) for at, s in zip(where, awaited.sources, strict=True)),
            ),
            Family(
                PREFIX + "awaited_minute_arrived_series",
                "gauge",
                "Of the expected series, those the minute after the latest complete one holds so far.",
                tuple(Point(at, s.arrived) for at, s in zip(where, awaited.sources, strict=True)),
            ),
        ]
    return families


def exposition(
    derived: list[DerivedValue],
    metrics: Sequence[MetricInfo],
    state: ReceiverState,
    extra: Sequence[Family] = (),
    tags: Labeller = no_tags,
) -> bytes:
    """The whole ``/metrics`` body; a derived family that collides with ours is dropped.

    ``extra``: more of the receiver's own families (the deriver's and alarm counters).
    """
    own = [*receiver_families(state), *extra]
    own_names = {family.name for family in own}
    families = [f for f in derived_families(derived, metrics, tags) if f.name not in own_names]
    return render([*families, *own]).encode("utf-8")


# -- the route -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScrapeSettings:
    """``app[SCRAPE]``: which minute ``/metrics`` exposes, and the clock it reads."""

    window: MinuteWindow
    clock: Callable[[], float] = time.time


def add_routes(app: web.Application) -> None:
    """Register ``GET /metrics``; it reads the app's store, rules, counters and ``app[SCRAPE]``."""
    app.router.add_get(PATH, metrics)


async def metrics(request: web.Request) -> web.Response:
    app = request.app
    settings = app[SCRAPE]
    now_ms = int(settings.clock() * 1000)
    snapshot = app[TELEMETRY].snapshot()
    latest, values, store_up = await _read_store(app[STORE], settings.window, now_ms)
    budget = app[INGEST].budget
    state = ReceiverState(snapshot, budget.in_use, budget.limit, store_up, latest)
    more = deriver_families(app[DERIVER].counts())
    if ALARMS in app:
        more += alarm_families(app[ALARMS].counters.snapshot())
    if INVENTORY in app:
        more += inventory_families(app[INVENTORY].counters.snapshot())
    if COMPLETENESS in app:
        more += completeness_families(app[COMPLETENESS])
    tags = await app[TAG_LABELS].labeller() if TAG_LABELS in app else no_tags
    # Thousands of tables make tens of thousands of lines: format them off the loop.
    body = await asyncio.to_thread(exposition, values, app[RULES].current.metrics, state, more, tags)
    response = web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})
    response.enable_compression()  # gzip when the scraper accepts it (Prometheus does)
    return response


async def _read_store(store: Store, window: MinuteWindow, now_ms: int) -> tuple[int | None, list[DerivedValue], bool]:
    """(latest complete minute, its values if current, whether the store is up).

    Up is the readiness probe's answer, which waits behind no other work: a store whose
    reads are slow because it is busy is up, and only its derived gauges are left out.
    """
    try:
        async with asyncio.timeout(STORE_TIMEOUT_S):
            await store.ping()
    except (StoreError, TimeoutError) as exc:
        reason = str(exc) or f"no answer within {STORE_TIMEOUT_S:g} s"
        log.warning("/metrics: the store is down, derived metrics left out", extra={"error": reason})
        return None, [], False
    latest: int | None = None
    try:
        async with asyncio.timeout(STORE_TIMEOUT_S):
            latest = await store.latest_bucket(MINUTE_MS, window.before_ms(now_ms))
            values = []
            if latest is not None and window.is_current(latest, now_ms):
                values = await store.bucket_values(MINUTE_MS, latest)
    except (StoreError, TimeoutError) as exc:
        reason = str(exc) or f"no answer within {STORE_TIMEOUT_S:g} s"
        log.warning(
            "/metrics: the store's values did not come in time, derived metrics left out", extra={"error": reason}
        )
        return latest, [], True
    return latest, values, True
