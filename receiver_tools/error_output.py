"""Firehose's S3 error output for an HTTP endpoint: where a batch goes when its retries run out,
as a folder or an ``s3://bucket/prefix``, and the documents it holds (read back by ``replay``)."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import orjson

from receiver_tools.firehose_request import Attempt

FAILED_FOLDER = "http-endpoint-failed/"
"""Where Firehose puts failed HTTP endpoint records under the error output prefix."""


class ErrorOutput:
    """Firehose's S3 error output for an HTTP endpoint, in a folder or an S3 bucket.

    Objects are named ``<prefix>http-endpoint-failed/YYYY/MM/DD/HH/<stream>-1-YYYY-MM-DD-HH-MM-SS-<uuid>``
    (UTC), and hold one JSON document per record, one per line.
    """

    def __init__(self, location: str) -> None:
        self.location = location
        self._bucket, self._prefix, self._folder = split_location(location)
        self._client: Any = None

    def key(self, stream_name: str, now: dt.datetime) -> str:
        hour_path = now.strftime("%Y/%m/%d/%H")
        stamp = now.strftime("%Y-%m-%d-%H-%M-%S")
        return f"{self._prefix}{FAILED_FOLDER}{hour_path}/{stream_name}-1-{stamp}-{uuid.uuid4()}"

    async def write(self, stream_name: str, documents: Iterable[dict[str, Any]]) -> str:
        """Write one object; return where it went (a path or an s3:// URL)."""
        data = b"".join(orjson.dumps(doc) + b"\n" for doc in documents)
        key = self.key(stream_name, dt.datetime.now(dt.UTC))
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self._put, key, data)

    def _put(self, key: str, data: bytes) -> str:
        if self._folder is not None:
            path = self._folder / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            return str(path)
        if self._client is None:
            import boto3  # only when an s3:// output is used

            self._client = boto3.client("s3")
        self._client.put_object(Bucket=self._bucket, Key=key, Body=data)
        return f"s3://{self._bucket}/{key}"


def split_location(location: str) -> tuple[str | None, str, Path | None]:
    """``s3://bucket/prefix`` -> (bucket, 'prefix/', None); a folder -> (None, '', Path)."""
    if location.startswith("s3://"):
        bucket, _, prefix = location[5:].partition("/")
        if not bucket:
            raise ValueError(f"{location!r} names no bucket; write s3://BUCKET/PREFIX")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        return bucket, prefix, None
    if "://" in location:
        raise ValueError(f"{location!r} is neither a folder nor an s3://bucket/prefix URL")
    return None, "", Path(location)


def error_documents(
    records: Sequence[bytes], arrivals_ms: Sequence[int], attempts: int, last: Attempt, ended_ms: int
) -> list[dict[str, Any]]:
    """The error output documents of a failed batch, one per record (fields as AWS documents)."""
    return [
        {
            "attemptsMade": attempts,
            "arrivalTimestamp": arrival,
            "errorCode": last.error_code,
            "errorMessage": last.error_message,
            "attemptEndingTimestamp": ended_ms,
            "rawData": base64.b64encode(record).decode("ascii"),
            "subsequenceNumber": 0,
            "dataId": f"{uuid.uuid4().int:040d}.{index}",
        }
        for index, (record, arrival) in enumerate(zip(records, arrivals_ms, strict=True))
    ]
