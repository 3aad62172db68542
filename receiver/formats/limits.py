"""The bounds every decoder enforces: which times a period may have, and how much work one
record may cause.

The work bounds keep a hostile record's decoding cost per byte close to a real record's. Each
is several times what CloudWatch sends: at most 30 dimensions per metric (so 32 labels in
0.7 and 3 attributes plus 30 dimensions in 1.0), at most 20 extra statistics besides
SampleCount, Sum, Minimum and Maximum, 4 resource attributes, and records of at most
1,024,000 bytes whose frames each hold a resource (about 200 bytes with its ARN) and a metric.
"""

from __future__ import annotations

import time

from receiver.model import DAY_MS

OLDEST_MS = 946_684_800_000
"""2000-01-01T00:00:00Z: no period starts or ends earlier (CloudWatch keeps 15 months)."""
FUTURE_SLACK_MS = DAY_MS
"""A period may end at most this long after the receiver's clock: a day covers any clock skew
a sender may have, while a year-9999 timestamp (or one near 2**63 ms, which would overflow
the store's integer arithmetic) is refused."""

MAX_FRAMES_PER_RECORD = 10_000
"""Length-prefixed messages in one record. A real frame carries a resource and at least one
datapoint, a few hundred bytes, so a full record has a few thousand at most."""
MAX_PARTS_PER_RECORD = 10_000
"""Resources, scopes and metrics (each kind counted on its own) in one record. Each costs a
Python object to look at however few bytes it takes (two for an empty one), so a record
of a million of them would cost seconds; a real one holds a metric per series at most."""
MAX_DATAPOINTS_PER_RECORD = 20_000
"""Datapoints in one record: a real datapoint takes 100 bytes or more (its labels, times,
count, sum, minimum and maximum), so a full record holds about 10,000 at most."""
MAX_LABELS_PER_DATAPOINT = 64
"""Labels (0.7), attributes (1.0) or dimensions (1.0 ``Dimensions``, json ``dimensions``) of one
datapoint."""
MAX_STATISTICS_PER_DATAPOINT = 64
"""Quantile values (OpenTelemetry) or statistics (json ``value`` keys) of one datapoint."""
MAX_RESOURCE_ATTRIBUTES = 64
"""Attributes of one OpenTelemetry resource."""


def now_ms() -> int:
    """The receiver's clock, epoch milliseconds: the default "now" of decode_record."""
    return int(time.time() * 1000)


def latest_end_ms(now: int) -> int:
    """The latest period end accepted when the clock reads ``now`` (epoch ms)."""
    return now + FUTURE_SLACK_MS


def period_in_range(start_ms: int, end_ms: int, latest_ms: int) -> bool:
    """Whether a period's start and end both lie within OLDEST_MS .. ``latest_ms``."""
    return OLDEST_MS <= start_ms <= latest_ms and OLDEST_MS <= end_ms <= latest_ms


def out_of_range_message(what: str, start_ms: int, end_ms: int, latest_ms: int) -> str:
    """The one sentence for a period outside the accepted range."""
    return (
        f"the period of {what} ({start_ms}..{end_ms} ms) is outside "
        f"{OLDEST_MS}..{latest_ms} ms (2000-01-01 to a day after now)"
    )
