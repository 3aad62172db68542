"""The one error every decoder raises for a record it will not take, and why.

Every fault a decoder finds surfaces as a DecodeError carrying a ``reason``: a short
snake_case code from the closed set REASONS, fit for a Prometheus label
(``reason="non_finite"``). The ingest layer quarantines such a record (its bytes and the
reason are kept) and takes the rest of the delivery.
"""

from __future__ import annotations

MALFORMED = "malformed"
EMPTY_RECORD = "empty_record"
UNKNOWN_FORMAT = "unknown_format"
EMPTY_FRAME = "empty_frame"
NO_DATAPOINTS = "no_datapoints"
TOO_MUCH_WORK = "too_much_work"
NON_FINITE = "non_finite"
TIMESTAMP_OUT_OF_RANGE = "timestamp_out_of_range"
METRIC_NAME_MISMATCH = "metric_name_mismatch"

REASONS: dict[str, str] = {
    MALFORMED: "not valid in its format: framing, protobuf or JSON syntax, a field's type, "
    "a missing or repeated field, a quantile set without 0 and 1, a period that ends before it starts",
    EMPTY_RECORD: "the record has no bytes",
    UNKNOWN_FORMAT: "the format was to be detected and the record is neither JSON nor length-prefixed protobuf",
    EMPTY_FRAME: "a protobuf frame has length 0 (an empty message is not a valid one)",
    NO_DATAPOINTS: "a message, resource, scope or metric (protobuf), or the whole record (json), carries no datapoint",
    TOO_MUCH_WORK: "past a bound on work (receiver.formats.limits): frames, resources, scopes, metrics or "
    "datapoints per record; labels, dimensions or statistics per datapoint; resource attributes",
    NON_FINITE: "a statistic (sum, minimum, maximum, a percentile) is NaN or infinite",
    TIMESTAMP_OUT_OF_RANGE: "a period's start or end is before 2000-01-01T00:00:00Z or more than a day after now",
    METRIC_NAME_MISMATCH: "an OpenTelemetry metric named amazonaws.com/<Namespace>/<MetricName> "
    "holds a datapoint whose Namespace and MetricName say otherwise",
}
"""Every reason a DecodeError can carry, with its one-line meaning; no other value occurs."""


class DecodeError(ValueError):
    """A record is not valid in the format it claims or appears to be, or holds a value the
    receiver will not keep.

    ``str(e)`` is one sentence saying what is wrong; the caller adds which record it was.
    ``e.reason`` is one of REASONS (``malformed`` unless the raiser names another).
    """

    def __init__(self, message: str, reason: str = MALFORMED) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown decode error reason {reason!r}")
        super().__init__(message)
        self.reason = reason

    def __reduce__(self) -> tuple[type[DecodeError], tuple[str, str]]:
        # Keeps the reason when the error crosses a process boundary (pickle).
        return (type(self), (str(self), self.reason))
