"""What the workload's metric stream and its Firehose stream report about themselves.

A metric stream whose namespace filter includes ``AWS/Firehose`` and
``AWS/CloudWatch/MetricStreams`` also carries the metrics of its own delivery. Each region of
the workload has one metric stream (``demo-metric-stream``) into one Firehose stream
(``demo-firehose``), as a stack deployed per region makes them; every minute of a region gives:

* ``AWS/CloudWatch/MetricStreams``, per stream (``MetricStreamName``) and again without a
  dimension (CloudWatch's sum over the account's streams): ``MetricUpdate``, the datapoints the
  stream carries that minute in that region (the DynamoDB ones and these alike), and
  ``TotalMetricUpdate``, that plus one for each set of up to five additional statistics (the
  latency percentiles); ``PublishErrorRate`` only in the minutes Firehose throttles the stream.
* ``AWS/Firehose`` (``DeliveryStreamName``): the records and bytes the stream put into Firehose
  and Firehose delivered, ``DeliveryToHttpEndpoint.Success`` and ``.DataFreshness``,
  ``ThrottledRecords``, and ``DeliveryToS3.Records`` when records went to the S3 backup.

Bytes and records are estimates. The bytes are ``BYTES_PER_DATAPOINT`` a datapoint and
``BYTES_PER_STATISTIC`` an additional statistic: what this repository's OpenTelemetry 1.0
encoder takes for the workload's datapoints, uncompressed (about 260 bytes, each percentile 13
more). CloudWatch does not document how it splits a stream into Firehose records: the workload
puts up to ``DATAPOINTS_PER_RECORD`` datapoints in one.

Two episodes recur every day at fixed times (UTC), in every region:

* ``OUTAGE_HOUR``: the receiver refuses half of Firehose's requests for an hour. Each minute
  one request fails and its retry succeeds (``Success`` 0.5), and the age of the oldest
  undelivered record rises by ``FRESHNESS_RISE_S`` a minute. Firehose's retry queue is not
  modelled: each minute half of its records are delivered and the other half are counted as
  written to the S3 backup (``DeliveryToS3.Records``), as records whose retries ran out are.
  The episode is the pipeline metrics' story only: the DynamoDB datapoints are all there.
* ``THROTTLED_MINUTES``: Firehose throttles one record in ten the stream puts; the stream
  reports the share of its updates it could not write as ``PublishErrorRate``.

Values are drawn from a random stream of their own per (seed, minute, region), so a minute is
the same whenever it is generated, and the DynamoDB datapoints keep their values.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Sequence

from receiver.model import PERIOD_MS, Sample, Series

DELIVERY_STREAM = "demo-firehose"
METRIC_STREAM = "demo-metric-stream"
FIREHOSE = "AWS/Firehose"
METRIC_STREAMS = "AWS/CloudWatch/MetricStreams"

BYTES_PER_DATAPOINT = 260
BYTES_PER_STATISTIC = 13
DATAPOINTS_PER_RECORD = 20
STATISTICS_PER_UPDATE = 5
"""Each set of up to five additional statistics of a datapoint is billed as one more update."""
FRESHNESS_S = (60.0, 120.0)
"""The age of the oldest undelivered record in a healthy minute: a 60 s buffer and the delivery."""
FRESHNESS_RISE_S = 20.0
OUTAGE_HOUR = 2
"""02:00 to 02:59 UTC."""
THROTTLED_MINUTES = range(14 * 60 + 20, 14 * 60 + 23)
"""14:20 to 14:22 UTC, as minutes of the day."""
THROTTLED_SHARE = 0.1

_MINUTES_A_DAY = 24 * 60


def pipeline_minute(seed: int, account: str, start_ms: int, samples: Sequence[Sample]) -> list[Sample]:
    """The pipeline's datapoints of the minute at ``start_ms``, for each region of ``samples``
    (the minute's DynamoDB datapoints of ``account``)."""
    by_region: dict[str, list[Sample]] = defaultdict(list)
    for sample in samples:
        by_region[sample.series.region].append(sample)
    out: list[Sample] = []
    for region in sorted(by_region):
        out += _RegionMinute(seed, account, region, start_ms).samples(by_region[region])
    return out


class _RegionMinute:
    """The pipeline's datapoints of one region in one minute."""

    def __init__(self, seed: int, account: str, region: str, start_ms: int) -> None:
        self.account = account
        self.region = region
        self.start_ms = start_ms
        self.rng = random.Random(f"{seed}:pipeline:{start_ms}:{region}")
        minute_of_day = (start_ms // PERIOD_MS) % _MINUTES_A_DAY
        self.outage_minute = minute_of_day % 60 if minute_of_day // 60 == OUTAGE_HOUR else None
        self.throttled = minute_of_day in THROTTLED_MINUTES

    def samples(self, dynamodb: Sequence[Sample]) -> list[Sample]:
        # The pipeline's own datapoints are updates of the stream too: count them first.
        own = 11 + (self.outage_minute is not None) + 2 * self.throttled
        updates = len(dynamodb) + own
        statistics = sum(len(s.stats) for s in dynamodb)
        billed = updates + sum(math.ceil(len(s.stats) / STATISTICS_PER_UPDATE) for s in dynamodb)
        size = BYTES_PER_DATAPOINT * updates + BYTES_PER_STATISTIC * statistics
        records = math.ceil(updates / DATAPOINTS_PER_RECORD)
        # At least one record is throttled, and one gets through.
        throttled = min(records - 1, max(1, round(records * THROTTLED_SHARE))) if self.throttled else 0
        incoming = records - throttled
        incoming_bytes = size * incoming // records
        backed_up = incoming // 2 if self.outage_minute is not None else 0
        delivered = incoming - backed_up
        delivered_bytes = incoming_bytes * delivered // incoming

        out = [
            *self._stream("MetricUpdate", float(updates)),
            *self._stream("TotalMetricUpdate", float(billed)),
        ]
        if self.throttled:
            out += self._stream("PublishErrorRate", throttled / records)
        out += [
            self._firehose("IncomingRecords", "Count", 1, incoming),
            self._firehose("IncomingBytes", "Bytes", 1, incoming_bytes),
            self._firehose("ThrottledRecords", "Count", 1, throttled),
            self._firehose("DeliveryToHttpEndpoint.Records", "Count", 1, delivered),
            self._firehose("DeliveryToHttpEndpoint.Bytes", "Bytes", 1, delivered_bytes),
            self._success(),
            self._freshness(),
        ]
        if self.outage_minute is not None:
            out.append(self._firehose("DeliveryToS3.Records", "Count", 1, backed_up))
        return out

    def _success(self) -> Sample:
        """One request a minute (a 60 s buffer); in the outage it fails once and its retry succeeds."""
        if self.outage_minute is None:
            return self._sample(FIREHOSE, "DeliveryToHttpEndpoint.Success", "Count", 1, 1.0, 1.0, 1.0)
        return self._sample(FIREHOSE, "DeliveryToHttpEndpoint.Success", "Count", 2, 1.0, 0.0, 1.0)

    def _freshness(self) -> Sample:
        """Sampled six times in the minute; the oldest record's age is the Maximum."""
        if self.outage_minute is None:
            oldest = round(self.rng.uniform(*FRESHNESS_S), 1)
        else:  # from the healthy ceiling up, FRESHNESS_RISE_S a minute (the noise is less than that)
            rise = FRESHNESS_RISE_S * (self.outage_minute + 1)
            oldest = round(FRESHNESS_S[1] + rise + self.rng.uniform(0.0, FRESHNESS_RISE_S / 2), 1)
        youngest = round(oldest - self.rng.uniform(5.0, 30.0), 1)
        return self._sample(
            FIREHOSE, "DeliveryToHttpEndpoint.DataFreshness", "Seconds", 6, 3 * (youngest + oldest), youngest, oldest
        )

    def _stream(self, metric: str, value: float) -> list[Sample]:
        """A metric stream datapoint, for the stream and again without a dimension (one stream:
        the same value)."""
        named = (("MetricStreamName", METRIC_STREAM),)
        return [self._sample(METRIC_STREAMS, metric, "None", 1, value, value, value, dims) for dims in (named, ())]

    def _firehose(self, metric: str, unit: str, count: int, total: float) -> Sample:
        return self._sample(FIREHOSE, metric, unit, count, float(total), total / count, total / count)

    def _sample(
        self,
        namespace: str,
        metric: str,
        unit: str,
        count: int,
        total: float,
        low: float,
        high: float,
        dimensions: tuple[tuple[str, str], ...] | None = None,
    ) -> Sample:
        if dimensions is None:
            dimensions = (("DeliveryStreamName", DELIVERY_STREAM),)
        series = Series(self.account, self.region, namespace, metric, dimensions, unit)
        return Sample(series, self.start_ms, self.start_ms + PERIOD_MS, float(count), total, low, high)
