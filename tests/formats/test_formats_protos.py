"""The 0.7 definitions: v0.7.0's field numbers, loadable beside opentelemetry-proto 1.x."""

from __future__ import annotations

import subprocess
import sys

from google.protobuf.descriptor import Descriptor

from receiver.proto.otel07 import common_pb2, metrics_pb2, metrics_service_pb2, resource_pb2


def numbers(descriptor: Descriptor) -> dict[str, int]:
    return {field.name: field.number for field in descriptor.fields}


def test_field_numbers_are_those_of_v0_7_0() -> None:
    assert numbers(metrics_service_pb2.ExportMetricsServiceRequest.DESCRIPTOR) == {"resource_metrics": 1}
    assert numbers(metrics_pb2.ResourceMetrics.DESCRIPTOR) == {"resource": 1, "instrumentation_library_metrics": 2}
    assert numbers(metrics_pb2.InstrumentationLibraryMetrics.DESCRIPTOR) == {"instrumentation_library": 1, "metrics": 2}
    assert numbers(metrics_pb2.Metric.DESCRIPTOR) == {"name": 1, "description": 2, "unit": 3, "double_summary": 11}
    assert numbers(metrics_pb2.DoubleSummary.DESCRIPTOR) == {"data_points": 1}
    assert numbers(metrics_pb2.DoubleSummaryDataPoint.DESCRIPTOR) == {
        "labels": 1,
        "start_time_unix_nano": 2,
        "time_unix_nano": 3,
        "count": 4,
        "sum": 5,
        "quantile_values": 6,
    }
    assert numbers(metrics_pb2.DoubleSummaryDataPoint.ValueAtQuantile.DESCRIPTOR) == {"quantile": 1, "value": 2}
    assert numbers(common_pb2.StringKeyValue.DESCRIPTOR) == {"key": 1, "value": 2}
    assert numbers(common_pb2.KeyValue.DESCRIPTOR) == {"key": 1, "value": 2}
    assert numbers(common_pb2.AnyValue.DESCRIPTOR) == {
        "string_value": 1,
        "bool_value": 2,
        "int_value": 3,
        "double_value": 4,
        "array_value": 5,
        "kvlist_value": 6,
    }
    assert numbers(common_pb2.InstrumentationLibrary.DESCRIPTOR) == {"name": 1, "version": 2}
    assert numbers(resource_pb2.Resource.DESCRIPTOR) == {"attributes": 1, "dropped_attributes_count": 2}


def test_packages_cannot_clash_with_opentelemetry_proto() -> None:
    from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as otel10

    ours = metrics_service_pb2.ExportMetricsServiceRequest.DESCRIPTOR.full_name
    theirs = otel10.ExportMetricsServiceRequest.DESCRIPTOR.full_name
    assert ours.startswith("cwstream.otel07.") and theirs.startswith("opentelemetry.proto.")


def test_both_load_in_one_process_in_either_order() -> None:
    for first, second in (
        ("receiver.proto.otel07.metrics_service_pb2", "opentelemetry.proto.collector.metrics.v1.metrics_service_pb2"),
        ("opentelemetry.proto.collector.metrics.v1.metrics_service_pb2", "receiver.proto.otel07.metrics_service_pb2"),
    ):
        code = (
            f"import {first}, {second}, receiver.proto.summary_view_pb2, receiver.formats; "
            f"print({first}.ExportMetricsServiceRequest().ByteSize() + {second}.ExportMetricsServiceRequest().ByteSize())"
        )
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "0"
