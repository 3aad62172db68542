from receiver.proto.otel07 import common_pb2 as _common_pb2
from receiver.proto.otel07 import resource_pb2 as _resource_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ResourceMetrics(_message.Message):
    __slots__ = ("resource", "instrumentation_library_metrics")
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    INSTRUMENTATION_LIBRARY_METRICS_FIELD_NUMBER: _ClassVar[int]
    resource: _resource_pb2.Resource
    instrumentation_library_metrics: _containers.RepeatedCompositeFieldContainer[InstrumentationLibraryMetrics]
    def __init__(self, resource: _Optional[_Union[_resource_pb2.Resource, _Mapping]] = ..., instrumentation_library_metrics: _Optional[_Iterable[_Union[InstrumentationLibraryMetrics, _Mapping]]] = ...) -> None: ...

class InstrumentationLibraryMetrics(_message.Message):
    __slots__ = ("instrumentation_library", "metrics")
    INSTRUMENTATION_LIBRARY_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    instrumentation_library: _common_pb2.InstrumentationLibrary
    metrics: _containers.RepeatedCompositeFieldContainer[Metric]
    def __init__(self, instrumentation_library: _Optional[_Union[_common_pb2.InstrumentationLibrary, _Mapping]] = ..., metrics: _Optional[_Iterable[_Union[Metric, _Mapping]]] = ...) -> None: ...

class Metric(_message.Message):
    __slots__ = ("name", "description", "unit", "double_summary")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    DOUBLE_SUMMARY_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    unit: str
    double_summary: DoubleSummary
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., unit: _Optional[str] = ..., double_summary: _Optional[_Union[DoubleSummary, _Mapping]] = ...) -> None: ...

class DoubleSummary(_message.Message):
    __slots__ = ("data_points",)
    DATA_POINTS_FIELD_NUMBER: _ClassVar[int]
    data_points: _containers.RepeatedCompositeFieldContainer[DoubleSummaryDataPoint]
    def __init__(self, data_points: _Optional[_Iterable[_Union[DoubleSummaryDataPoint, _Mapping]]] = ...) -> None: ...

class DoubleSummaryDataPoint(_message.Message):
    __slots__ = ("labels", "start_time_unix_nano", "time_unix_nano", "count", "sum", "quantile_values")
    class ValueAtQuantile(_message.Message):
        __slots__ = ("quantile", "value")
        QUANTILE_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        quantile: float
        value: float
        def __init__(self, quantile: _Optional[float] = ..., value: _Optional[float] = ...) -> None: ...
    LABELS_FIELD_NUMBER: _ClassVar[int]
    START_TIME_UNIX_NANO_FIELD_NUMBER: _ClassVar[int]
    TIME_UNIX_NANO_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    SUM_FIELD_NUMBER: _ClassVar[int]
    QUANTILE_VALUES_FIELD_NUMBER: _ClassVar[int]
    labels: _containers.RepeatedCompositeFieldContainer[_common_pb2.StringKeyValue]
    start_time_unix_nano: int
    time_unix_nano: int
    count: int
    sum: float
    quantile_values: _containers.RepeatedCompositeFieldContainer[DoubleSummaryDataPoint.ValueAtQuantile]
    def __init__(self, labels: _Optional[_Iterable[_Union[_common_pb2.StringKeyValue, _Mapping]]] = ..., start_time_unix_nano: _Optional[int] = ..., time_unix_nano: _Optional[int] = ..., count: _Optional[int] = ..., sum: _Optional[float] = ..., quantile_values: _Optional[_Iterable[_Union[DoubleSummaryDataPoint.ValueAtQuantile, _Mapping]]] = ...) -> None: ...
