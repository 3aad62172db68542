"""The real payload corpus (``../shared/realdata``, see its README.md) as Firehose records with
what each source project expects from them, for the decoder tests and the HTTP-level tests.

    from tests.formats.realdata import available, corpus_cases

    for case in corpus_cases():          # one or more cases per corpus file
        case.records                      # the Firehose records (decoded ``data``) to send
        case.expected                     # per record: the samples, or the DecodeError reason
        case.body, case.gzip              # telegraf files: the Firehose body as captured

The expectations are built from the corpus files themselves (their JSON, text format and
*_expect.json files), never from the receiver's decoders: only the unit's CloudWatch name
comes from receiver.formats.units (AWS's table, tested on its own). Every expected sample's
labels are what a record gives with no Firehose common attributes.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf import json_format, text_format
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as otel10_service

from receiver.formats.framing import frame
from receiver.formats.units import from_ucum
from receiver.model import PERIOD_MS, Pairs, Sample, Series, percentile_name
from receiver.proto.otel07 import metrics_service_pb2 as otel07_service

REALDATA = Path(__file__).resolve().parents[3] / "shared" / "realdata"
"""``../shared/realdata`` from the project root."""
OTEL07, OTEL10, JSON = "opentelemetry0.7", "opentelemetry1.0", "json"
NS_PER_MS = 1_000_000
ACCOUNT, REGION = "cloud.account.id", "cloud.region"
OTEL10_EXAMPLE_SHIFT_MS = 1_604_948_400_000
"""AWS's 1.0 example has periods a minute after the epoch, which the receiver refuses
(``timestamp_out_of_range``); shifted by this much (the 0.7 example's start) it decodes."""
MISMATCHED_METRIC = "amazonaws.com/AWS/DynamoDB/AccountProvisionedReadCapacityUtilization"
"""The SkyWalking DynamoDB e2e metric whose MetricName label says ProvisionedReadCapacityUnits."""


def available() -> bool:
    """Whether the corpus folder is there (CI has it; a bare checkout may not)."""
    return (REALDATA / "README.md").is_file()


@dataclass(frozen=True, slots=True)
class Expected:
    """What one record must decode to: its samples in order, or a refusal with ``reason``."""

    samples: tuple[Sample, ...] = ()
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class CorpusCase:
    """One way of sending one corpus file, and what must come of it."""

    name: str
    source: str
    """The corpus file (name inside REALDATA)."""
    fmt: str
    """The records' format, as a stream configured for it sends them (``--format`` may fix it)."""
    records: tuple[bytes, ...]
    expected: tuple[Expected, ...]
    """One per record."""
    body: bytes | None = None
    """A captured Firehose body (telegraf), to post as it is; None: build one from ``records``."""
    gzip: bool = False
    """``body`` is gzip-compressed: send it with ``Content-Encoding: gzip``."""

    @property
    def samples(self) -> list[Sample]:
        """Every sample the accepted records give, in order."""
        return [sample for expected in self.expected for sample in expected.samples]


def corpus_cases() -> Iterator[CorpusCase]:
    """Every case of every corpus file (nothing when the folder is absent)."""
    if not available():
        return
    yield from telegraf_cases()
    yield from convertor_cases()
    yield from e2e_cases()
    yield from awsdocs_cases()


# A. telegraf: Firehose bodies of JSON records, captured from AWS


def telegraf_cases() -> Iterator[CorpusCase]:
    for name, compressed in (
        ("telegraf_record.json", False),
        ("telegraf_records.json", False),
        ("telegraf_records.gz", True),
    ):
        body = (REALDATA / name).read_bytes()
        envelope = json.loads(gzip.decompress(body) if compressed else body)
        records = tuple(base64.b64decode(item["data"]) for item in envelope["records"])
        yield CorpusCase(
            f"{name} (captured Firehose body, json)",
            name,
            JSON,
            records,
            tuple(Expected(tuple(json_samples(record))) for record in records),
            body=body,
            gzip=compressed,
        )


def json_samples(record: bytes) -> Iterator[Sample]:
    """telegraf's expectation: each line one metric with max/min/sum/count = the JSON values,
    tags = dimensions + account + region, time = the timestamp; other statistics as given."""
    for line in record.splitlines():
        if not line.strip():
            continue
        item = json.loads(line)
        value = dict(item["value"])
        count, total, low, high = (float(value.pop(key)) for key in ("count", "sum", "min", "max"))
        series = Series(
            item["account_id"],
            item["region"],
            item["namespace"],
            item["metric_name"],
            tuple(sorted(item.get("dimensions", {}).items())),
            item.get("unit", "None"),
        )
        labels = (("metric_stream_name", item["metric_stream_name"]),) if "metric_stream_name" in item else ()
        start = item["timestamp"]
        yield Sample(
            series,
            start,
            start + PERIOD_MS,
            count,
            total,
            low,
            high,
            tuple(sorted((k, float(v)) for k, v in value.items())),
            labels,
        )


# C. SkyWalking: 0.7 protobuf-JSON captured from real streams, with OAP's 1.x conversion

CONVERTOR_CASES = ("gateway-http-1", "gateway-http-2", "gateway-rest-1", "s3-data-1", "s3-data-2")


def convertor_cases() -> Iterator[CorpusCase]:
    for case in CONVERTOR_CASES:
        source = f"skywalking_convertor_{case}_source.json"
        message = json_format.Parse((REALDATA / source).read_text(), otel07_service.ExportMetricsServiceRequest())
        expect = json.loads((REALDATA / f"skywalking_convertor_{case}_expect.json").read_text())
        samples = tuple(otlp_json_samples(expect))
        yield CorpusCase(
            f"{source} (0.7, one message)", source, OTEL07, (frame(message.SerializeToString()),), (Expected(samples),)
        )


def otlp_json_samples(document: dict[str, Any], attributes_as: str = "dimensions") -> Iterator[Sample]:
    """The samples an OTLP 1.x JSON document (SkyWalking's converted form: flat string
    attributes) describes: counts, sums, quantiles (proto3 zero when omitted), times and
    units unchanged. ``attributes_as`` says where the attributes besides Namespace and
    MetricName go: ``dimensions`` (as they were 0.7 labels) or ``labels`` (as 1.0 attributes
    outside CloudWatch's three, which the receiver keeps as sample labels)."""
    for resource_metrics in document["resourceMetrics"]:
        resource = {a["key"]: a["value"]["stringValue"] for a in resource_metrics["resource"]["attributes"]}
        resource_labels = {k: v for k, v in resource.items() if k not in (ACCOUNT, REGION)}
        for scope in resource_metrics["scopeMetrics"]:
            for metric in scope["metrics"]:
                for point in metric["summary"]["dataPoints"]:
                    attributes = {a["key"]: a["value"]["stringValue"] for a in point["attributes"]}
                    namespace, metric_name = attributes.pop("Namespace"), attributes.pop("MetricName")
                    others = tuple(sorted(attributes.items()))
                    series = Series(
                        resource[ACCOUNT],
                        resource[REGION],
                        namespace,
                        metric_name,
                        others if attributes_as == "dimensions" else (),
                        from_ucum(metric.get("unit", "")),
                    )
                    labels = dict(resource_labels)
                    if attributes_as == "labels":
                        labels.update(attributes)
                    quantiles = {
                        float(q.get("quantile", 0.0)): float(q.get("value", 0.0))
                        for q in point.get("quantileValues", [])
                    }
                    yield Sample(
                        series,
                        int(point["startTimeUnixNano"]) // NS_PER_MS,
                        int(point["timeUnixNano"]) // NS_PER_MS,
                        float(point.get("count", 0)),
                        float(point.get("sum", 0.0)),
                        quantiles.pop(0.0),
                        quantiles.pop(1.0),
                        tuple(sorted((percentile_name(q), v) for q, v in quantiles.items())),
                        tuple(sorted(labels.items())),
                    )


def otlp_json_to_otel07(document: dict[str, Any]) -> otel07_service.ExportMetricsServiceRequest:
    """Invert OAP's 0.7 -> 1.x conversion: every string attribute becomes a 0.7 label."""
    request = otel07_service.ExportMetricsServiceRequest()
    for resource_metrics in document["resourceMetrics"]:
        out = request.resource_metrics.add()
        for attribute in resource_metrics["resource"]["attributes"]:
            added = out.resource.attributes.add()
            added.key, added.value.string_value = attribute["key"], attribute["value"]["stringValue"]
        for scope in resource_metrics["scopeMetrics"]:
            library = out.instrumentation_library_metrics.add()
            for metric in scope["metrics"]:
                converted = library.metrics.add()
                converted.name, converted.unit = metric["name"], metric.get("unit", "")
                for point in metric["summary"]["dataPoints"]:
                    dp = converted.double_summary.data_points.add()
                    for attribute in point["attributes"]:
                        label = dp.labels.add()
                        label.key, label.value = attribute["key"], attribute["value"]["stringValue"]
                    dp.start_time_unix_nano = int(point["startTimeUnixNano"])
                    dp.time_unix_nano = int(point["timeUnixNano"])
                    dp.count = int(point.get("count", 0))
                    dp.sum = float(point.get("sum", 0.0))
                    for quantile in point.get("quantileValues", []):
                        value_at = dp.quantile_values.add()
                        value_at.quantile = float(quantile.get("quantile", 0.0))
                        value_at.value = float(quantile.get("value", 0.0))
    return request


def one_metric_per_message(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(metric name, a document holding only that metric), metric by metric."""
    for resource_metrics in document["resourceMetrics"]:
        for scope in resource_metrics["scopeMetrics"]:
            for metric in scope["metrics"]:
                yield (
                    metric["name"],
                    {"resourceMetrics": [{**resource_metrics, "scopeMetrics": [{**scope, "metrics": [metric]}]}]},
                )


def e2e_cases() -> Iterator[CorpusCase]:
    """SkyWalking's e2e mock data: OTLP 1.x JSON as OAP receives it after converting 0.7."""
    for source in (
        "skywalking_e2e_api-gateway_data-1.json",
        "skywalking_e2e_api-gateway_data-2.json",
        "skywalking_e2e_s3_data-1.json",
        "skywalking_e2e_dynamodb_data-1.json",
    ):
        document = json.loads((REALDATA / source).read_text())
        if source == "skywalking_e2e_dynamodb_data-1.json":
            # One metric names AccountProvisionedReadCapacityUtilization but its datapoint says
            # ProvisionedReadCapacityUnits: sent whole, the record is refused; one metric per
            # record (several records), only that record is.
            for fmt, encode in ((OTEL07, _encode07), (OTEL10, _encode10)):
                yield CorpusCase(
                    f"{source} ({fmt}, one message)",
                    source,
                    fmt,
                    (encode(document),),
                    (Expected(reason="metric_name_mismatch"),),
                )
                records, expected = [], []
                for name, single in one_metric_per_message(document):
                    records.append(encode(single))
                    expected.append(
                        Expected(reason="metric_name_mismatch")
                        if name == MISMATCHED_METRIC
                        else Expected(tuple(otlp_json_samples(single, _attributes_as(fmt))))
                    )
                yield CorpusCase(
                    f"{source} ({fmt}, one metric per record)", source, fmt, tuple(records), tuple(expected)
                )
            continue
        for fmt, encode in ((OTEL07, _encode07), (OTEL10, _encode10)):
            yield CorpusCase(
                f"{source} ({fmt}, one message)",
                source,
                fmt,
                (encode(document),),
                (Expected(tuple(otlp_json_samples(document, _attributes_as(fmt)))),),
            )


def _attributes_as(fmt: str) -> str:
    return "dimensions" if fmt == OTEL07 else "labels"


def _encode07(document: dict[str, Any]) -> bytes:
    return frame(otlp_json_to_otel07(document).SerializeToString())


def _encode10(document: dict[str, Any]) -> bytes:
    """The document sent as 1.0 as it is: its flat attributes are not CloudWatch's
    ``Dimensions`` list, so the receiver keeps them as labels."""
    message = json_format.ParseDict(document, otel10_service.ExportMetricsServiceRequest())
    return frame(message.SerializeToString())


# D. AWS's documented examples


def awsdocs_cases() -> Iterator[CorpusCase]:
    arn = "arn:aws:cloudwatch:us-east-1:123456789012:metric-stream/MyMetricStream"
    labels: Pairs = (("aws.exporter.arn", arn), ("cloud.provider", "aws"))
    source = "awsdocs_otel07_example.textproto"
    message07 = text_format.Parse((REALDATA / source).read_text(), otel07_service.ExportMetricsServiceRequest())
    series = Series(
        "2345678901", "us-east-1", "AWS/DynamoDB", "ConsumedReadCapacityUnits", (("TableName", "MyTable"),), "None"
    )
    yield CorpusCase(
        f"{source} (0.7)",
        source,
        OTEL07,
        (frame(message07.SerializeToString()),),
        (
            Expected(
                (
                    Sample(
                        series, 1604948400000, 1604948460000, 1.0, 1.0, 1.0, 1.0, (("p95", 1.0), ("p99", 1.0)), labels
                    ),
                    Sample(series, 1604948460000, 1604948520000, 2.0, 5.0, 2.0, 3.0, (), labels),
                )
            ),
        ),
    )

    source = "awsdocs_otel10_example.textproto"
    text = (REALDATA / source).read_text()
    published = text_format.Parse(text, otel10_service.ExportMetricsServiceRequest())
    yield CorpusCase(
        f"{source} (1.0, as published: periods in 1970)",
        source,
        OTEL10,
        (frame(published.SerializeToString()),),
        (Expected(reason="timestamp_out_of_range"),),
    )
    shifted = text_format.Parse(text, otel10_service.ExportMetricsServiceRequest())
    for point in shifted.resource_metrics[0].scope_metrics[0].metrics[0].summary.data_points:
        point.start_time_unix_nano += OTEL10_EXAMPLE_SHIFT_MS * NS_PER_MS
        point.time_unix_nano += OTEL10_EXAMPLE_SHIFT_MS * NS_PER_MS
    series = Series(
        "123456789012",
        "us-east-1",
        "AWS/DynamoDB",
        "ConsumedReadCapacityUnits",
        (("TableName", "MyTable"),),
        "NoneTranslated",
    )
    at = OTEL10_EXAMPLE_SHIFT_MS
    yield CorpusCase(
        f"{source} (1.0, periods shifted to 2020)",
        source,
        OTEL10,
        (frame(shifted.SerializeToString()),),
        (
            Expected(
                (
                    Sample(series, at + 60_000, at + 120_000, 1.0, 1.0, 1.0, 1.0, (("p95", 1.0), ("p99", 1.0)), labels),
                    Sample(series, at + 70_000, at + 130_000, 2.0, 5.0, 2.0, 3.0, (), labels),
                )
            ),
        ),
    )

    source = "awsdocs_json_example.json"
    line = json.dumps(json.loads((REALDATA / source).read_text()), separators=(",", ":")).encode() + b"\n"
    series = Series(
        "1234567890", "us-east-1", "AWS/EC2", "DiskWriteOps", (("InstanceId", "i-123456789012"),), "Seconds"
    )
    yield CorpusCase(
        f"{source} (json, compacted to one line)",
        source,
        JSON,
        (line,),
        (
            Expected(
                (
                    Sample(
                        series,
                        1611929698000,
                        1611929758000,
                        3.0,
                        20.0,
                        0.0,
                        18.0,
                        (("TM(25%:75%)", 16.43), ("p99", 17.56), ("p99.9", 17.8764)),
                        (("metric_stream_name", "MyMetricStream"),),
                    ),
                )
            ),
        ),
    )


def corpus_files() -> list[str]:
    """The payload files of the corpus (what corpus_cases must cover): every file at its top
    level except the README and SkyWalking's e2e verify cases and expected outputs."""
    if not available():
        return []
    return sorted(path.name for path in REALDATA.iterdir() if path.is_file() and _is_payload(path.name))


def _is_payload(name: str) -> bool:
    return name != "README.md" and not name.endswith((".yml", ".yaml")) and not name.endswith("_expect.json")


def covered(cases: Iterable[CorpusCase]) -> set[str]:
    return {case.source for case in cases}
