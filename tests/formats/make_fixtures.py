"""Builds the binary record fixtures in tests/data/formats from their text-format sources.

Run from the repository root: ``.venv/bin/python tests/formats/make_fixtures.py``.
"""

from __future__ import annotations

from pathlib import Path

from google.protobuf import text_format
from google.protobuf.message import Message
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as otel10_service

from receiver.formats.framing import frame
from receiver.proto.otel07 import metrics_service_pb2 as otel07_service

DATA = Path(__file__).resolve().parents[1] / "data" / "formats"

SOURCES: dict[str, type[Message]] = {
    "aws-otel07-example": otel07_service.ExportMetricsServiceRequest,
    "aws-otel10-example": otel10_service.ExportMetricsServiceRequest,
}


def record_from_text(name: str) -> bytes:
    """The record a fixture's ``.txtpb`` message makes: serialized, length-prefixed."""
    message = text_format.Parse((DATA / f"{name}.txtpb").read_text(), SOURCES[name]())
    return frame(message.SerializeToString())


def main() -> None:
    for name in SOURCES:
        (DATA / f"{name}.bin").write_bytes(record_from_text(name))
        print(f"wrote {DATA / name}.bin")


if __name__ == "__main__":
    main()
