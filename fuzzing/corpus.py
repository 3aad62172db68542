"""Seed inputs for fuzzing: real records and Firehose bodies made with the project's encoders."""

from __future__ import annotations

import gzip
from dataclasses import dataclass

from receiver.formats import FORMATS, encode_records
from receiver.model import PERIOD_MS, Sample
from receiver_tools.workload import TableSpec, Workload
from tests.builders import Delivery

SEED_MINUTE_MS = 1_700_000_040_000
_TABLES = (
    TableSpec(name="GameScores", indexes=("TopScores",), provisioned=(100.0, 50.0), transactions=True),
    TableSpec(name="Sessions", regions=("us-east-1", "eu-west-1"), ttl=True),
)


@dataclass(frozen=True, slots=True)
class Corpus:
    """Valid inputs to start mutating from."""

    records: dict[str, tuple[bytes, ...]]
    """Per format: small records, a few datapoints each."""
    deliveries: tuple[Delivery, ...]
    """Whole requests (body and headers): every format, plain and gzip."""


def seed_samples(minutes: int = 2) -> list[Sample]:
    workload = Workload(seed=11, tables=_TABLES)
    return [s for m in range(minutes) for s in workload.minute(SEED_MINUTE_MS + m * PERIOD_MS)]


def build_corpus() -> Corpus:
    samples = seed_samples()
    records: dict[str, tuple[bytes, ...]] = {}
    deliveries: list[Delivery] = []
    for fmt in FORMATS:
        # Small records (a few datapoints) so one mutation touches a large share of the input.
        records[fmt] = tuple(encode_records(samples[:40], fmt, max_record_bytes=600))
        for compress in (False, True):
            deliveries.append(Delivery(samples[:60], fmt=fmt, compress=compress))
    return Corpus(records, tuple(deliveries))


def plain_body(delivery: Delivery) -> bytes:
    """The envelope JSON of a delivery, gunzipped if it was sent compressed."""
    if delivery.headers.get("Content-Encoding") == "gzip":
        return gzip.decompress(delivery.body)
    return delivery.body
