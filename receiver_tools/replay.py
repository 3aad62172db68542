"""`python -m receiver replay SOURCE --to URL`: re-deliver what Firehose backed up to S3.

SOURCE is a folder or ``s3://bucket/prefix``; every object under it is read (gzip-compressed
objects too, as Firehose writes them with GZIP backup compression) and is one of:

* Firehose's **error output** for HTTP endpoints (``http-endpoint-failed/...``): JSON
  documents, one per record, each with the record base64-encoded in ``rawData``;
* a **backup of the source records** (S3 backup mode "all data"): the stream's records
  concatenated as Firehose writes them, without delimiters. In the OpenTelemetry formats
  that is a run of length-prefixed messages, in ``json`` a run of newline-ended lines; both
  are split back into records of at most 1,024,000 bytes.

The records go to the endpoint through the Firehose emulator (same headers, retries and
judgement of answers as Firehose). Replaying twice is safe: the receiver stores datapoints
by identity, so a repeat overwrites itself.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import json
import os
import sys
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from receiver import logs
from receiver.firehose import envelope
from receiver.formats import DecodeError
from receiver.formats.framing import read_varint
from receiver.formats.packing import pack
from receiver_tools.emulator import EmulatorConfig, FirehoseEmulator, RetryPolicy
from receiver_tools.error_output import split_location

ERROR_OUTPUT = "error output"
RAW_BACKUP = "source records"
_MAX_OBJECT_BYTES = 1 << 30
"""An inflated object larger than this is refused (Firehose's objects are at most 128 MiB)."""


class ReplayError(ValueError):
    """An unreadable source or object; ``str(e)`` says which and why."""


# ---- sources ---------------------------------------------------------------------------------


class Source:
    """Objects of a folder (recursively, by path) or of an S3 prefix (by key)."""

    def __init__(self, location: str) -> None:
        try:
            self._bucket, self._prefix, self._folder = split_location(location)
        except ValueError as exc:
            raise ReplayError(str(exc)) from None
        self.location = location
        self._client: Any = None
        if self._folder is not None and not self._folder.exists():
            raise ReplayError(f"SOURCE {location} does not exist")

    def names(self) -> list[str]:
        if self._folder is not None:
            if self._folder.is_file():
                return [str(self._folder)]
            folder = self._folder
            return sorted(
                str(p)
                for p in folder.rglob("*")
                if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
            )
        client = self._s3()
        names: list[str] = []
        try:
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=self._bucket, Prefix=self._prefix):
                names += [item["Key"] for item in page.get("Contents", []) if not item["Key"].endswith("/")]
        except Exception as exc:  # noqa: BLE001 - botocore's errors: no bucket, no access, no network
            raise ReplayError(f"cannot list {self.location}: {exc}") from None
        return sorted(names)

    def read(self, name: str) -> bytes:
        if self._folder is not None:
            return Path(name).read_bytes()
        try:
            data: bytes = self._s3().get_object(Bucket=self._bucket, Key=name)["Body"].read()
            return data
        except Exception as exc:  # noqa: BLE001 - botocore's errors, as above
            raise ReplayError(f"cannot read s3://{self._bucket}/{name}: {exc}") from None

    def _s3(self) -> Any:
        if self._client is None:
            import boto3  # only for s3:// sources; honours AWS_ENDPOINT_URL_S3 and the usual credentials

            self._client = boto3.client("s3")
        return self._client


# ---- objects -> records ---------------------------------------------------------------------


def records_of(data: bytes, name: str = "object") -> tuple[str, list[bytes]]:
    """(kind, records) of one backup object; ReplayError when it is neither kind."""
    data = _inflate(data, name)
    if not data.strip():
        return RAW_BACKUP, []
    if data.lstrip()[:1] == b"{":
        documents = _json_documents(data)
        if documents is not None and all(isinstance(d, dict) and "rawData" in d for d in documents):
            # Sent as they are, even a record that does not decode: the receiver quarantines
            # it and takes the rest, so nothing of the object is lost.
            return ERROR_OUTPUT, [_raw_data(d, i, name) for i, d in enumerate(documents)]
        if documents is not None and all(isinstance(d, dict) and "metric_name" in d for d in documents):
            return RAW_BACKUP, pack(_lines(data), envelope.MAX_RECORD_BYTES)
    messages = _messages(data)
    if messages is not None:
        return RAW_BACKUP, pack(messages, envelope.MAX_RECORD_BYTES)
    raise ReplayError(
        f"{name} is neither Firehose error output (JSON with rawData) nor a backup of metric "
        "stream records (length-prefixed OpenTelemetry messages or json lines)"
    )


def _inflate(data: bytes, name: str) -> bytes:
    if data[:2] != b"\x1f\x8b":
        return data
    out = bytearray()
    rest = data
    try:
        while rest:  # several gzip members follow each other in a concatenated object
            inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            out += inflater.decompress(rest, _MAX_OBJECT_BYTES + 1 - len(out))
            if len(out) > _MAX_OBJECT_BYTES:
                raise ReplayError(f"{name} inflates to more than {_MAX_OBJECT_BYTES} bytes")
            if not inflater.eof:
                raise ReplayError(f"{name} is a gzip stream that ends early")
            rest = inflater.unused_data
    except zlib.error as exc:
        raise ReplayError(f"{name} looks gzip-compressed but cannot be inflated ({exc})") from None
    return bytes(out)


def _json_documents(data: bytes) -> list[Any] | None:
    """The JSON documents of ``data``, one per line (or concatenated); None if not JSON."""
    documents = []
    for line in data.splitlines():
        if not line.strip():
            continue
        try:
            documents.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            return _concatenated_json(data)
    return documents


def _concatenated_json(data: bytes) -> list[Any] | None:
    decoder = json.JSONDecoder()
    text = data.decode("utf-8", "replace")
    pos, documents = 0, []
    while pos < len(text):
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos == len(text):
            break
        try:
            document, pos = decoder.raw_decode(text, pos)
        except ValueError:
            return None
        documents.append(document)
    return documents


def _raw_data(document: dict[str, Any], index: int, name: str) -> bytes:
    raw = document.get("rawData")
    try:
        if not isinstance(raw, str):
            raise ValueError
        record = base64.b64decode(raw, validate=True)
    except (ValueError, binascii.Error):
        raise ReplayError(f"{name}: document {index} has no valid base64 rawData") from None
    if not 0 < len(record) <= envelope.MAX_RECORD_BYTES:
        raise ReplayError(
            f"{name}: document {index} holds a record of {len(record)} bytes, not 1 to {envelope.MAX_RECORD_BYTES}"
        )
    return record


def _lines(data: bytes) -> Iterator[bytes]:
    for line in data.splitlines(keepends=True):
        if line.strip():
            yield line if line.endswith(b"\n") else line + b"\n"


def _messages(data: bytes) -> list[bytes] | None:
    """Length-prefixed messages (prefix included), or None if ``data`` is not exactly that."""
    messages = []
    pos, size = 0, len(data)
    while pos < size:
        try:
            length, start = read_varint(data, pos, size)
        except DecodeError:
            return None
        end = start + length
        if length == 0 or end > size or end - pos > envelope.MAX_RECORD_BYTES:
            return None
        messages.append(data[pos:end])
        pos = end
    return messages


# ---- replay -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReplayReport:
    objects: int
    records: int
    error_output_objects: int
    backup_objects: int
    skipped: tuple[str, ...]
    """Objects that could not be read, each with the reason."""
    delivered_batches: int
    failed_batches: int

    @property
    def ok(self) -> bool:
        return not self.skipped and not self.failed_batches


async def replay(
    source: Source, config: EmulatorConfig, progress: Callable[[str], None] = lambda _: None
) -> ReplayReport:
    """Re-deliver every record under ``source`` to ``config.url``."""
    loop = asyncio.get_running_loop()
    names = await loop.run_in_executor(None, source.names)
    if not names:
        raise ReplayError(f"there are no objects under {source.location}")
    records = error_objects = backup_objects = 0
    skipped: list[str] = []
    async with FirehoseEmulator(config) as stream:
        for number, name in enumerate(names, 1):
            try:
                data = await loop.run_in_executor(None, source.read, name)
                kind, found = records_of(data, name)
            except (ReplayError, OSError) as exc:
                skipped.append(str(exc))
                progress(f"[{number}/{len(names)}] {name}: skipped, {exc}")
                continue
            await stream.put_records(found)
            records += len(found)
            error_objects += kind == ERROR_OUTPUT
            backup_objects += kind == RAW_BACKUP
            progress(f"[{number}/{len(names)}] {name}: {len(found)} records ({kind})")
    results = stream.results
    return ReplayReport(
        objects=len(names),
        records=records,
        error_output_objects=error_objects,
        backup_objects=backup_objects,
        skipped=tuple(skipped),
        delivered_batches=sum(r.outcome == "delivered" for r in results),
        failed_batches=sum(r.outcome != "delivered" for r in results),
    )


# ---- command line -----------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="SOURCE", help="a folder or s3://bucket/prefix of Firehose backup objects")
    add_target_arguments(parser)


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    """Where and how records are re-delivered (``replay`` and ``quarantine replay``)."""
    parser.add_argument(
        "--to",
        dest="url",
        required=True,
        metavar="URL",
        help="the full ingest URL, e.g. https://metrics.example.com/aws/firehose/metrics",
    )
    parser.add_argument("--access-key", help="the key the endpoint expects (or FIREHOSE_ACCESS_KEY)")
    parser.add_argument("--ca-file", help="verify HTTPS against this CA bundle instead of the system's")
    parser.add_argument("--gzip", action="store_true", help="gzip the request bodies")
    parser.add_argument(
        "--retry-seconds",
        default="60",
        help="how long to retry a failing request, as Firehose's retry duration (default 60)",
    )


def main(args: argparse.Namespace) -> int:
    try:
        config = target_config(args, "receiver-replay")
        source = Source(args.source)
    except ValueError as exc:  # ReplayError included: a bad option or SOURCE
        print(f"error: {exc}", file=sys.stderr)
        return 2
    logs.configure("WARNING")  # failed attempts and their retries show as they happen
    try:
        report = asyncio.run(replay(source, config, progress=lambda line: print(line, file=sys.stderr)))
    except ReplayError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(
        f"replayed {report.records} records from {report.objects} objects "
        f"({report.error_output_objects} error output, {report.backup_objects} source record backups): "
        f"{report.delivered_batches} requests delivered, {report.failed_batches} failed, "
        f"{len(report.skipped)} objects skipped"
    )
    for reason in report.skipped:
        print(f"  skipped: {reason}", file=sys.stderr)
    return 0 if report.ok else 1


def target_config(args: argparse.Namespace, stream_name: str) -> EmulatorConfig:
    """The emulated stream that re-delivers, from ``add_target_arguments``' options;
    ValueError naming a bad one."""
    parts = urlsplit(args.url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"--to {args.url!r} must be a full http:// or https:// URL to the ingest path")
    try:
        retry = float(args.retry_seconds)
    except ValueError:
        retry = -1.0
    if not 0 <= retry <= 7200:
        raise ValueError(f"--retry-seconds {args.retry_seconds!r} must be seconds from 0 to 7200")
    ca_file = Path(args.ca_file) if args.ca_file else None
    if ca_file is not None and not ca_file.is_file():
        raise ValueError(f"--ca-file {ca_file} is not a readable file")
    return EmulatorConfig(
        url=args.url,
        access_key=args.access_key or os.environ.get("FIREHOSE_ACCESS_KEY"),
        gzip=args.gzip,
        ca_file=ca_file,
        retry=RetryPolicy(duration_s=retry),
        stream_name=stream_name,
        buffer_bytes=4 * 1024 * 1024,
        buffer_interval_s=900,
    )
