"""`python -m receiver probe URL --access-key K`: check an endpoint against the Firehose spec.

Each check sends one spec-exact request, as Firehose would, and judges the answer as
Firehose does (see ``receiver_tools.firehose_request.judge_answer``). The deliveries carry one datapoint
of a reserved account, ``000000000000`` (no AWS account has that id), for a table named
``receiver-probe``, labelled ``receiver_probe=true``: they never mix with a real account's
values, and are easy to recognise.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import ssl
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
from multidict import CIMultiDict

from receiver.firehose import envelope
from receiver.formats import FORMATS, encode_records
from receiver.model import PERIOD_MS, Sample, Series
from receiver_tools.firehose_request import Attempt, Request, build_request, client_ssl_context, judge_answer, send_once

PROBE_ACCOUNT = "000000000000"
PROBE_TABLE = "receiver-probe"
PROBE_LABEL = ("receiver_probe", "true")
SLOW_ANSWER_S = 30.0
"""Firehose gives up after 3 minutes; an answer slower than this is a warning sign."""


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    passed: bool
    detail: str


@dataclass(frozen=True, slots=True)
class ProbeSettings:
    url: str
    access_key: str
    record_format: str = "opentelemetry0.7"
    ca_file: Path | None = None
    timeout_s: float = 180.0


def probe_records(record_format: str, now_ms: int | None = None) -> list[bytes]:
    """One consumed-capacity datapoint of the reserved account, for the last complete minute."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    start = now_ms - now_ms % PERIOD_MS - PERIOD_MS
    series = Series(
        PROBE_ACCOUNT, "us-east-1", "AWS/DynamoDB", "ConsumedReadCapacityUnits", (("TableName", PROBE_TABLE),), "Count"
    )
    labels = (("metric_stream_name", "receiver-probe"),) if record_format == "json" else ()
    sample = Sample(series, start, start + PERIOD_MS, 1.0, 1.0, 1.0, 1.0, labels=labels)
    return encode_records([sample], record_format)


class Prober:
    """Runs the checks against one endpoint."""

    def __init__(self, settings: ProbeSettings, session: aiohttp.ClientSession) -> None:
        self.settings = settings
        self.session = session
        self.ssl = client_ssl_context(settings.ca_file) if settings.url.startswith("https:") else None
        self.times: list[float] = []

    def request(self, *, access_key: str | None = None, compress: bool = False) -> Request:
        return build_request(
            probe_records(self.settings.record_format),
            access_key=self.settings.access_key if access_key is None else access_key,
            source_arn="arn:aws:firehose:us-east-1:000000000000:deliverystream/receiver-probe",
            common_attributes=(PROBE_LABEL,),
            compress=compress,
            user_agent="receiver-probe",
        )

    async def send(self, request: Request) -> Attempt:
        attempt = await send_once(
            self.session, self.settings.url, request, timeout_s=self.settings.timeout_s, ssl_context=self.ssl
        )
        if attempt.status is not None:
            self.times.append(attempt.seconds)
        return attempt

    async def run(self) -> list[Check]:
        checks: list[Check] = []
        for name, check in self.checks():
            try:
                passed, detail = await check()
            except Exception as exc:  # noqa: BLE001 - one broken check must not hide the others
                passed, detail = False, f"the check itself failed: {exc}"
            checks.append(Check(name, passed, detail))
        if self.times:
            slowest = max(self.times)
            checks.append(
                Check(
                    "answers well within Firehose's 3 minutes",
                    slowest < SLOW_ANSWER_S,
                    f"slowest answer {_ms(slowest)}",
                )
            )
        else:
            checks.append(Check("answers well within Firehose's 3 minutes", False, "no answer arrived"))
        return checks

    def checks(self) -> list[tuple[str, Callable[[], Awaitable[tuple[bool, str]]]]]:
        return [
            ("valid delivery is acknowledged", self.valid_delivery),
            ("gzip delivery is acknowledged", self.gzip_delivery),
            ("retry of a delivered request id is acknowledged", self.repeated_request),
            ("absolute-form request target is acknowledged", self.absolute_form),
            ("wrong access key is refused with 401", self.wrong_key),
            ("missing request id is refused with 400", self.missing_request_id),
        ]

    async def valid_delivery(self) -> tuple[bool, str]:
        return _acknowledged(await self.send(self.request()))

    async def gzip_delivery(self) -> tuple[bool, str]:
        return _acknowledged(await self.send(self.request(compress=True)))

    async def repeated_request(self) -> tuple[bool, str]:
        request = self.request()
        first = await self.send(request)
        if not first.ok:
            return False, f"the first delivery failed: {_describe(first)}"
        return _acknowledged(await self.send(request))

    async def wrong_key(self) -> tuple[bool, str]:
        wrong = "probe-wrong-key-" + uuid.uuid4().hex
        return _refused(await self.send(self.request(access_key=wrong)), 401)

    async def missing_request_id(self) -> tuple[bool, str]:
        request = self.request()
        headers = {k: v for k, v in request.headers.items() if k != envelope.REQUEST_ID_HEADER}
        return _refused(await self.send(Request(request.request_id, headers, request.body)), 400)

    async def absolute_form(self) -> tuple[bool, str]:
        request = self.request()
        started = time.monotonic()
        try:
            status, headers, body = await raw_post(
                self.settings.url, request, self.ssl, self.settings.timeout_s, absolute_form=True
            )
        except ConnectionError as exc:
            return False, str(exc)
        elapsed = time.monotonic() - started
        self.times.append(elapsed)
        return _acknowledged(
            dataclasses.replace(judge_answer(request.request_id, status, headers, body), seconds=elapsed)
        )


def _acknowledged(attempt: Attempt) -> tuple[bool, str]:
    if attempt.ok:
        return True, f"200 with a valid answer in {_ms(attempt.seconds)}"
    return False, _describe(attempt)


def _refused(attempt: Attempt, wanted: int) -> tuple[bool, str]:
    if attempt.status == wanted:
        return True, f"{wanted} in {_ms(attempt.seconds)}"
    return False, f"expected {wanted}, got {_describe(attempt)}"


def _describe(attempt: Attempt) -> str:
    if attempt.status is None:
        return attempt.reason
    if attempt.ok:
        return f"{attempt.status} (acknowledged)"
    if attempt.status == 200:
        return f"200, but {attempt.reason}"
    return f"{attempt.status}: {_shorten(attempt.reason)}"


def _shorten(text: str, limit: int = 100) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


async def raw_post(
    url: str, request: Request, context: ssl.SSLContext | None, timeout_s: float, *, absolute_form: bool
) -> tuple[int, CIMultiDict[str], bytes]:
    """POST over a bare connection, so the request line can carry the absolute URL as
    Firehose's does (``POST https://host/path HTTP/1.1``); HTTP clients always send the path."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    target = url if absolute_form else (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    head = [
        f"POST {target} HTTP/1.1",
        f"Host: {parts.netloc}",
        f"Content-Length: {len(request.body)}",
        "Connection: close",
    ]
    head += [f"{name}: {value}" for name, value in request.headers.items()]
    wire = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + request.body

    async def exchange() -> bytes:
        reader, writer = await asyncio.open_connection(
            parts.hostname, port, ssl=context, server_hostname=parts.hostname if context else None
        )
        try:
            writer.write(wire)
            await writer.drain()
            return await reader.read(-1)
        finally:
            writer.close()

    try:
        raw = await asyncio.wait_for(exchange(), timeout_s)
    except ssl.SSLCertVerificationError as exc:
        raise ConnectionError(f"the server's certificate is not trusted ({exc.verify_message})") from None
    except (OSError, TimeoutError) as exc:
        raise ConnectionError(f"the request failed: {exc or type(exc).__name__}") from None
    return parse_response(raw)


def parse_response(raw: bytes) -> tuple[int, CIMultiDict[str], bytes]:
    """Status, headers and body of a whole HTTP/1.1 response (Content-Length or chunked)."""
    head, separator, body = raw.partition(b"\r\n\r\n")
    if not separator:
        raise ConnectionError("the answer ended before its headers did")
    lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        raise ConnectionError(f"the answer's status line is malformed: {lines[0]!r}") from None
    headers: CIMultiDict[str] = CIMultiDict()
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.add(name.strip(), value.strip())
    if headers.get("Transfer-Encoding", "").lower() == "chunked":
        body = _dechunk(body)
    elif "Content-Length" in headers:
        body = body[: int(headers["Content-Length"])]
    return status, headers, body


def _dechunk(data: bytes) -> bytes:
    out = bytearray()
    pos = 0
    while True:
        line_end = data.find(b"\r\n", pos)
        if line_end < 0:
            raise ConnectionError("a chunked answer ended early")
        size = int(data[pos:line_end].split(b";")[0], 16)
        if size == 0:
            return bytes(out)
        out += data[line_end + 2 : line_end + 2 + size]
        pos = line_end + 2 + size + 2


def format_table(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    lines = [f"{'check':<{width}}  result  detail", f"{'-' * width}  ------  ------"]
    lines += [f"{c.name:<{width}}  {'PASS' if c.passed else 'FAIL':<6}  {c.detail}" for c in checks]
    return "\n".join(lines)


# ---- command line ------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "url", metavar="URL", help="the full ingest URL, e.g. https://metrics.example.com/aws/firehose/metrics"
    )
    parser.add_argument("--access-key", help="the key Firehose sends (or FIREHOSE_ACCESS_KEY)")
    parser.add_argument("--ca-file", help="verify HTTPS against this CA bundle instead of the system's")
    parser.add_argument(
        "--format",
        dest="record_format",
        default="opentelemetry0.7",
        help=f"record format of the test deliveries: {', '.join(FORMATS)} (default opentelemetry0.7)",
    )


def main(args: argparse.Namespace) -> int:
    try:
        settings = _settings(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if settings.url.startswith("http:"):
        print("note: plain HTTP is fine on this machine; Firehose itself sends only HTTPS to port 443\n")
    checks = asyncio.run(_run(settings))
    print(format_table(checks))
    failed = [c for c in checks if not c.passed]
    print(
        f"\n{len(checks) - len(failed)} of {len(checks)} checks passed"
        + ("" if not failed else "; the endpoint does not behave as Firehose requires")
    )
    return 1 if failed else 0


async def _run(settings: ProbeSettings) -> list[Check]:
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        return await Prober(settings, session).run()


def _settings(args: argparse.Namespace) -> ProbeSettings:
    parts = urlsplit(args.url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"URL {args.url!r} must be a full http:// or https:// URL to the ingest path")
    key = args.access_key or os.environ.get("FIREHOSE_ACCESS_KEY")
    if not key:
        raise ValueError("--access-key is required (or FIREHOSE_ACCESS_KEY): the probe checks the key is enforced")
    if args.record_format not in FORMATS:
        raise ValueError(f"--format {args.record_format!r} is not one of {', '.join(FORMATS)}")
    ca_file = Path(args.ca_file) if args.ca_file else None
    if ca_file is not None and not ca_file.is_file():
        raise ValueError(f"--ca-file {ca_file} is not a readable file")
    return ProbeSettings(args.url, key, args.record_format, ca_file)
