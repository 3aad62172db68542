# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The compiled decoder of OpenTelemetry 0.7 and 1.x summary records (issue 19).

It takes the place of the pure-Python fast path (fastpath.py) and keeps its contract:
``decode`` returns the samples of one delimited record exactly as the careful walk (walk.py)
gives them, or None to leave the record to the careful walk. It reads the protobuf wire
format itself, field by field, in one pass over the record's bytes:

* everything the careful walk's parser (upb, through the summary view) would read
  differently or refuse is declined: a cut-short varint or length, a frame of length 0,
  a group, a known field with an unexpected wire type, a singular field given twice, a
  string that is not UTF-8, a datapoint field the view does not know (1.x ``flags``,
  exemplars), labels split in two runs, any limits.py bound passed, an empty resource,
  scope or metric, a resource the careful reader refuses;
* series are found in the caller's SeriesCache under the key the fast path used,
  ``(context, label bytes)``, and parsed by walk.series_of only when not seen yet;
* a fault of one datapoint (a bad period, a non-finite value, a missing minimum or
  maximum, an odd or repeated quantile, labels the careful reader refuses) stops building
  samples; once the rest of the record is known to be sound, the careful walk judges that
  datapoint alone (walk.judge_point), so the error raised is the careful walk's own.
  Should it not raise, the record goes to the careful walk whole.
"""

from libc.math cimport isfinite
from libc.string cimport memcpy
from cpython.object cimport PyObject, PyTypeObject
from cpython.ref cimport Py_INCREF
from cpython.tuple cimport PyTuple_New, PyTuple_SET_ITEM
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.unicode cimport PyUnicode_DecodeUTF8
from cpython.float cimport PyFloat_FromDouble
from cpython.dict cimport PyDict_GetItemWithError
from cpython.long cimport PyLong_FromUnsignedLongLong

from google.protobuf.message import DecodeError as ProtobufDecodeError

from receiver.model import Sample
from receiver.model import percentile_name
from receiver.proto import summary_view_pb2

from .errors import DecodeError
from .limits import (
    MAX_DATAPOINTS_PER_RECORD,
    MAX_FRAMES_PER_RECORD,
    MAX_PARTS_PER_RECORD,
    MAX_STATISTICS_PER_DATAPOINT,
    OLDEST_MS,
)
from .series import merge_labels
from .walk import judge_point, resource_labels, series_of

cdef extern from "Python.h":
    object PyType_GenericAlloc(PyTypeObject *type, Py_ssize_t nitems)
    void PyObject_GC_UnTrack(void *op)

cdef object _parse_resource = summary_view_pb2.Resource.FromString
cdef object _Sample = Sample
cdef PyTypeObject* _SampleType = <PyTypeObject*>Sample
cdef object _EMPTY = ()

cdef Py_ssize_t _MAX_FRAMES = MAX_FRAMES_PER_RECORD
cdef Py_ssize_t _MAX_PARTS = MAX_PARTS_PER_RECORD
cdef Py_ssize_t _MAX_POINTS = MAX_DATAPOINTS_PER_RECORD
cdef Py_ssize_t _MAX_STATS = MAX_STATISTICS_PER_DATAPOINT
cdef unsigned long long _NS_PER_MS = 1000000
cdef unsigned long long _OLDEST_NS = <unsigned long long>OLDEST_MS * 1000000ULL

cdef enum:
    QUANTILE_ROOM = 64  # MAX_STATISTICS_PER_DATAPOINT; checked at import below

if MAX_STATISTICS_PER_DATAPOINT > QUANTILE_ROOM:
    raise ImportError("receiver.formats._decode was built for at most 64 statistics per datapoint")

# A return code of the readers: the record is sound so far, or declined.
cdef enum:
    OK = 0
    DECLINE = -1

# Wire types.
cdef enum:
    VARINT = 0
    I64 = 1
    LEN = 2
    I32 = 5


cdef inline Py_ssize_t _varint(const unsigned char* p, Py_ssize_t pos, Py_ssize_t end,
                               unsigned long long* out) noexcept nogil:
    """The position after the varint at ``pos`` (its value in ``out``); -1 if it is cut short
    or does not fit 64 bits."""
    cdef unsigned long long result = 0
    cdef unsigned long long byte
    cdef int shift = 0
    while shift < 64:
        if pos >= end:
            return -1
        byte = p[pos]
        pos += 1
        if shift == 63 and byte > 1:
            return -1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            out[0] = result
            return pos
        shift += 7
    return -1


cdef inline Py_ssize_t _tag(const unsigned char* p, Py_ssize_t pos, Py_ssize_t end,
                            unsigned long long* out) noexcept nogil:
    """The position after a field's tag; -1 for a tag upb would refuse (field number 0, more
    than 32 bits)."""
    pos = _varint(p, pos, end, out)
    if pos < 0 or out[0] > 0xFFFFFFFFULL or (out[0] >> 3) == 0:
        return -1
    return pos


cdef inline Py_ssize_t _skip(const unsigned char* p, Py_ssize_t pos, Py_ssize_t end,
                             unsigned long long tag) noexcept nogil:
    """The position after the value of an unknown field; -1 if it is not well formed."""
    cdef unsigned long long length
    cdef int wire = tag & 7
    if wire == VARINT:
        return _varint(p, pos, end, &length)
    if wire == I64:
        pos += 8
    elif wire == I32:
        pos += 4
    elif wire == LEN:
        pos = _varint(p, pos, end, &length)
        if pos < 0 or length > <unsigned long long>(end - pos):
            return -1
        pos += <Py_ssize_t>length
    else:
        return -1  # groups, and the two wire types that do not exist
    return pos if pos <= end else -1


cdef inline Py_ssize_t _length(const unsigned char* p, Py_ssize_t pos, Py_ssize_t end,
                               Py_ssize_t* stop) noexcept nogil:
    """The start of a length-delimited value at ``pos`` (its end in ``stop``); -1 if it runs
    past ``end``."""
    cdef unsigned long long length
    pos = _varint(p, pos, end, &length)
    if pos < 0 or length > <unsigned long long>(end - pos):
        return -1
    stop[0] = pos + <Py_ssize_t>length
    return pos


cdef inline double _double(const unsigned char* p) noexcept nogil:
    cdef double value
    memcpy(&value, p, 8)  # little-endian hosts only (checked at import)
    return value


cdef inline unsigned long long _fixed64(const unsigned char* p) noexcept nogil:
    cdef unsigned long long value
    memcpy(&value, p, 8)
    return value


import sys as _sys
if _sys.byteorder != "little":
    raise ImportError("receiver.formats._decode reads fixed-width numbers as little-endian")


cdef struct Point:
    Py_ssize_t label_start
    Py_ssize_t label_end
    int labels
    int has_start, has_end, has_count, has_sum
    unsigned long long start, end, count
    double total
    int quantiles
    int has_low, has_high
    double low, high
    int others
    double other_q[QUANTILE_ROOM]
    double other_v[QUANTILE_ROOM]


cdef int _read_point(const unsigned char* p, Py_ssize_t pos, Py_ssize_t end, int label_tag,
                     Point* point) noexcept nogil:
    """Read one datapoint's fields into ``point``; DECLINE for anything the fast reading does
    not take (the careful walk then reads, or refuses, the record)."""
    cdef unsigned long long tag, value
    cdef Py_ssize_t stop, inner, inner_stop, field
    cdef int has_q, has_v
    cdef double q, v
    point.label_start = -1
    point.label_end = -1
    point.labels = 0
    point.has_start = point.has_end = point.has_count = point.has_sum = 0
    point.start = point.end = point.count = 0
    point.total = 0.0
    point.quantiles = 0
    point.has_low = point.has_high = 0
    point.low = point.high = 0.0
    point.others = 0
    while pos < end:
        field = pos
        tag = p[pos]
        if tag >= 0x80:
            return DECLINE  # a field number past 15, or a tag written long
        pos += 1
        if tag == <unsigned long long>label_tag:
            pos = _length(p, pos, end, &stop)
            if pos < 0:
                return DECLINE
            if point.label_start < 0:
                point.label_start = field
            elif point.label_end != field:
                return DECLINE  # labels in two runs
            point.label_end = stop
            point.labels += 1
            pos = stop
        elif tag == 0x11 or tag == 0x19 or tag == 0x21 or tag == 0x29:
            if pos + 8 > end:
                return DECLINE
            if tag == 0x11:
                if point.has_start:
                    return DECLINE
                point.has_start = 1
                point.start = _fixed64(p + pos)
            elif tag == 0x19:
                if point.has_end:
                    return DECLINE
                point.has_end = 1
                point.end = _fixed64(p + pos)
            elif tag == 0x21:
                if point.has_count:
                    return DECLINE
                point.has_count = 1
                point.count = _fixed64(p + pos)
            else:
                if point.has_sum:
                    return DECLINE
                point.has_sum = 1
                point.total = _double(p + pos)
            pos += 8
        elif tag == 0x32:
            inner = _length(p, pos, end, &inner_stop)
            if inner < 0:
                return DECLINE
            q = v = 0.0
            has_q = has_v = 0
            while inner < inner_stop:
                value = p[inner]
                if inner + 9 > inner_stop:
                    return DECLINE
                if value == 0x09 and not has_q:
                    has_q = 1
                    q = _double(p + inner + 1)
                elif value == 0x11 and not has_v:
                    has_v = 1
                    v = _double(p + inner + 1)
                else:
                    return DECLINE
                inner += 9
            point.quantiles += 1
            if q == 0.0:
                point.has_low = 1
                point.low = v
            elif q == 1.0:
                point.has_high = 1
                point.high = v
            elif point.others < QUANTILE_ROOM:
                point.other_q[point.others] = q
                point.other_v[point.others] = v
                point.others += 1
            pos = inner_stop
        else:
            return DECLINE
    return OK


cdef class _Record:
    """The state of decoding one record."""

    cdef const unsigned char* p
    cdef object data
    cdef object flavor
    cdef object name
    cdef object extra_labels
    cdef object cache
    # The SeriesCache's tables, read directly (its lookup methods are their bound dict.get).
    cdef dict by_key
    cdef dict own
    cdef dict percentiles
    cdef bint has_own
    cdef int label_tag
    cdef object latest_ms
    cdef unsigned long long limit_ns
    cdef list out
    cdef Py_ssize_t resources, scopes, metrics, points
    # The first datapoint at fault: its bytes, context and labels (None while there is none).
    cdef object bad
    cdef dict merged

    cdef int request(self, Py_ssize_t pos, Py_ssize_t end) except -2:
        cdef unsigned long long tag
        cdef Py_ssize_t stop
        cdef int seen = 0
        while pos < end:
            pos = _tag(self.p, pos, end, &tag)
            if pos < 0:
                return DECLINE
            if tag == 0x0A:
                pos = _length(self.p, pos, end, &stop)
                if pos < 0:
                    return DECLINE
                seen += 1
                self.resources += 1
                if self.resources > _MAX_PARTS:
                    return DECLINE
                if self.resource_metrics(pos, stop) < 0:
                    return DECLINE
                pos = stop
            elif (tag >> 3) == 1:
                return DECLINE
            else:
                pos = _skip(self.p, pos, end, tag)
                if pos < 0:
                    return DECLINE
        return OK if seen else DECLINE

    cdef int resource_metrics(self, Py_ssize_t pos, Py_ssize_t end) except -2:
        cdef unsigned long long tag
        cdef Py_ssize_t stop, start = pos
        cdef Py_ssize_t res_start = -1, res_stop = -1
        cdef int scopes = 0
        # First pass: where the resource is and how many scopes there are (the resource may
        # follow its scopes on the wire).
        while pos < end:
            pos = _tag(self.p, pos, end, &tag)
            if pos < 0:
                return DECLINE
            if tag == 0x0A or tag == 0x12:
                pos = _length(self.p, pos, end, &stop)
                if pos < 0:
                    return DECLINE
                if tag == 0x0A:
                    if res_start >= 0:
                        return DECLINE  # two resources merge: the careful walk's business
                    res_start, res_stop = pos, stop
                else:
                    scopes += 1
                pos = stop
            elif (tag >> 3) == 1 or (tag >> 3) == 2:
                return DECLINE
            else:
                pos = _skip(self.p, pos, end, tag)
                if pos < 0:
                    return DECLINE
        self.scopes += scopes
        if scopes == 0 or self.scopes > _MAX_PARTS:
            return DECLINE
        resource = self.read_resource(res_start, res_stop)
        if resource is None:
            return DECLINE
        pos = start
        while pos < end:
            pos = _tag(self.p, pos, end, &tag)
            pos = _length(self.p, pos, end, &stop) if (tag == 0x0A or tag == 0x12) else _skip(self.p, pos, end, tag)
            if tag == 0x12:
                if self.scope(pos, stop, resource) < 0:
                    return DECLINE
                pos = stop
            elif tag == 0x0A:
                pos = stop
        return OK

    cdef object read_resource(self, Py_ssize_t pos, Py_ssize_t end):
        """(account, region, labels) of a Resource message, or None to decline."""
        cdef unsigned long long tag
        cdef Py_ssize_t stop, start = pos
        attributes = []
        if pos >= 0:
            while pos < end:
                pos = _tag(self.p, pos, end, &tag)
                if pos < 0:
                    return None
                if tag == 0x0A:
                    pos = _length(self.p, pos, end, &stop)
                    if pos < 0:
                        return None
                    attributes.append(PyBytes_FromStringAndSize(<const char*>self.p + pos, stop - pos))
                    pos = stop
                elif (tag >> 3) == 1:
                    return None
                else:
                    pos = _skip(self.p, pos, end, tag)
                    if pos < 0:
                        return None
        key = (self.name, tuple(attributes), self.extra_labels)
        known = self.cache.resource(key)
        if known is not None:
            return known
        try:
            view = _parse_resource(
                b"" if start < 0 else PyBytes_FromStringAndSize(<const char*>self.p + start, end - start)
            )
            return self.cache.remember_resource(key, resource_labels(view, self.flavor, self.extra_labels))
        except (DecodeError, ProtobufDecodeError):
            return None

    cdef int scope(self, Py_ssize_t pos, Py_ssize_t end, object resource) except -2:
        cdef unsigned long long tag
        cdef Py_ssize_t stop
        cdef int metrics = 0
        while pos < end:
            pos = _tag(self.p, pos, end, &tag)
            if pos < 0:
                return DECLINE
            if tag == 0x12:
                pos = _length(self.p, pos, end, &stop)
                if pos < 0:
                    return DECLINE
                metrics += 1
                self.metrics += 1
                if self.metrics > _MAX_PARTS:
                    return DECLINE
                if self.metric(pos, stop, resource) < 0:
                    return DECLINE
                pos = stop
            elif (tag >> 3) == 2:
                return DECLINE
            else:
                pos = _skip(self.p, pos, end, tag)
                if pos < 0:
                    return DECLINE
        return OK if metrics else DECLINE

    cdef int metric(self, Py_ssize_t pos, Py_ssize_t end, object resource) except -2:
        cdef unsigned long long tag
        cdef Py_ssize_t stop, field
        cdef Py_ssize_t name_start = -1, name_stop = 0, unit_start = -1, unit_stop = 0
        cdef Py_ssize_t summary_start = -1, summary_stop = 0
        cdef int points = 0
        while pos < end:
            pos = _tag(self.p, pos, end, &tag)
            if pos < 0:
                return DECLINE
            field = tag >> 3
            if field == 1 or field == 3 or field == 11:
                if (tag & 7) != LEN:
                    return DECLINE
                pos = _length(self.p, pos, end, &stop)
                if pos < 0:
                    return DECLINE
                if field == 1:
                    if name_start >= 0:
                        return DECLINE
                    name_start, name_stop = pos, stop
                elif field == 3:
                    if unit_start >= 0:
                        return DECLINE
                    unit_start, unit_stop = pos, stop
                else:
                    if summary_start >= 0:
                        return DECLINE
                    summary_start, summary_stop = pos, stop
                pos = stop
            else:
                pos = _skip(self.p, pos, end, tag)
                if pos < 0:
                    return DECLINE
        if summary_start < 0:
            return DECLINE  # no datapoints
        try:
            name = PyUnicode_DecodeUTF8(<const char*>self.p + name_start, name_stop - name_start, NULL) \
                if name_start >= 0 else ""
            unit = PyUnicode_DecodeUTF8(<const char*>self.p + unit_start, unit_stop - unit_start, NULL) \
                if unit_start >= 0 else ""
        except UnicodeDecodeError:
            return DECLINE
        account, region, labels = resource
        context = (self.name, account, region, unit, name)
        pos, end = summary_start, summary_stop
        while pos < end:
            pos = _tag(self.p, pos, end, &tag)
            if pos < 0:
                return DECLINE
            if tag == 0x0A:
                pos = _length(self.p, pos, end, &stop)
                if pos < 0:
                    return DECLINE
                points += 1
                self.points += 1
                if self.points > _MAX_POINTS:
                    return DECLINE
                if self.point(pos, stop, context, labels) < 0:
                    return DECLINE
                pos = stop
            elif (tag >> 3) == 1:
                return DECLINE
            else:
                pos = _skip(self.p, pos, end, tag)
                if pos < 0:
                    return DECLINE
        return OK if points else DECLINE

    cdef int point(self, Py_ssize_t pos, Py_ssize_t end, object context, object labels) except -2:
        cdef Point point
        cdef int i
        cdef object series, own, stats, sample, key, run
        cdef double q, v
        if _read_point(self.p, pos, end, self.label_tag, &point) < 0:
            return DECLINE
        if self.bad is not None:
            return OK  # only the record's soundness matters now
        if point.label_start >= 0:
            run = PyBytes_FromStringAndSize(<const char*>self.p + point.label_start,
                                            point.label_end - point.label_start)
        else:
            run = b""
        key = (context, run)
        series = _get(self.by_key, key)
        if series is None:
            series = self.new_series(key, point.label_start, point.label_end)
            if series is None:
                return self.fault(pos, end, context, labels)
        if not (_OLDEST_NS <= point.start < self.limit_ns and _OLDEST_NS <= point.end < self.limit_ns
                and point.start < point.end):
            return self.fault(pos, end, context, labels)
        if (point.quantiles > _MAX_STATS or not point.has_low or not point.has_high
                or not (isfinite(point.total) and isfinite(point.low) and isfinite(point.high))):
            return self.fault(pos, end, context, labels)
        if point.others:
            found = []
            for i in range(point.others):
                q = point.other_q[i]
                v = point.other_v[i]
                name = _get(self.percentiles, q)
                if name is None:
                    if not (0.0 < q < 1.0):
                        return self.fault(pos, end, context, labels)
                    name = self.cache.remember_percentile(q, percentile_name(q))
                if not isfinite(v):
                    return self.fault(pos, end, context, labels)
                found.append((name, v))
            found.sort()
            for i in range(1, len(found)):
                if found[i - 1][0] == found[i][0]:
                    return self.fault(pos, end, context, labels)
            stats = tuple(found)
        else:
            stats = _EMPTY
        if self.has_own:
            own = _get(self.own, key)
            if own:
                merged_key = (own, labels)
                known = self.merged.get(merged_key)
                if known is None:
                    known = self.merged[merged_key] = merge_labels(dict(own), labels)
                labels = known
        sample = PyType_GenericAlloc(_SampleType, 9)
        _put(sample, 0, series)
        _put(sample, 1, PyLong_FromUnsignedLongLong(point.start // _NS_PER_MS))
        _put(sample, 2, PyLong_FromUnsignedLongLong(point.end // _NS_PER_MS))
        _put(sample, 3, PyFloat_FromDouble(<double>point.count))
        _put(sample, 4, PyFloat_FromDouble(point.total))
        _put(sample, 5, PyFloat_FromDouble(point.low))
        _put(sample, 6, PyFloat_FromDouble(point.high))
        _put(sample, 7, stats)
        _put(sample, 8, labels)
        # A Sample holds only immutable values made before it (the Series, numbers, tuples
        # of strings and floats), so it can be in no reference cycle: like a tuple of atoms,
        # which the collector untracks itself, it is left out of the collector's walks,
        # which otherwise revisit every sample of a delivery.
        PyObject_GC_UnTrack(<void*>sample)
        self.out.append(sample)
        return OK

    cdef object new_series(self, object key, Py_ssize_t start, Py_ssize_t end):
        """The Series of a label run not seen yet, remembered under ``key``; None if the
        careful reader refuses its labels."""
        cdef unsigned long long tag
        cdef Py_ssize_t stop = 0
        raw = []
        while start >= 0 and start < end:
            start = _tag(self.p, start, end, &tag)
            start = _length(self.p, start, end, &stop)
            raw.append(PyBytes_FromStringAndSize(<const char*>self.p + start, stop - start))
            start = stop
        try:
            series, extras = series_of((key[0], tuple(raw)), self.flavor, self.cache)
        except DecodeError:
            return None
        series = self.cache.remember(key, series, extras)
        if extras:
            self.has_own = True
        return series

    cdef int fault(self, Py_ssize_t pos, Py_ssize_t end, object context, object labels) except -2:
        self.bad = (PyBytes_FromStringAndSize(<const char*>self.p + pos, end - pos), context, labels)
        return OK


cdef inline object _get(dict table, object key):
    """``table.get(key)`` without the call."""
    cdef PyObject* found = PyDict_GetItemWithError(table, key)
    if found == NULL:
        return None  # an error (a key that cannot hash or compare) propagates
    return <object>found


cdef dict _table(object getter):
    """The dict behind one of SeriesCache's bound ``dict.get`` methods."""
    table = getattr(getter, "__self__", None)
    if type(table) is not dict:
        raise TypeError("a SeriesCache's lookups are expected to be bound dict.get methods")
    return table


cdef inline void _put(object item_tuple, Py_ssize_t index, object value):
    Py_INCREF(value)
    PyTuple_SET_ITEM(item_tuple, index, value)


def decode(data, extra_labels, flavor, latest_ms, *, cache):
    """The samples of one delimited record, or None to leave it to the careful walk.

    The arguments and the result are fastpath.decode's: ``flavor`` a walk.Flavor,
    ``latest_ms`` the latest period end accepted, ``cache`` the application's SeriesCache.
    Raises DecodeError only for a fault of one datapoint in a record otherwise sound (the
    careful walk's error for that datapoint, raised by walk.judge_point).
    """
    cdef _Record record
    cdef Py_ssize_t pos = 0, size, start, stop
    cdef Py_ssize_t frames = 0
    cdef unsigned long long length
    cdef const unsigned char* p
    if type(data) is not bytes:
        data = bytes(data)
    size = PyBytes_GET_SIZE(data)
    if size == 0:
        return None
    limit = (latest_ms + 1) * 1_000_000
    if not 0 <= limit < 2**64:
        return None
    record = _Record.__new__(_Record)
    record.data = data
    p = <const unsigned char*>PyBytes_AS_STRING(data)
    record.p = p
    record.flavor = flavor
    record.name = flavor.name
    record.label_tag = flavor.shape.label_tag
    record.extra_labels = extra_labels
    record.cache = cache
    record.by_key = _table(cache.lookup)
    record.own = _table(cache.own_labels)
    record.percentiles = _table(cache.percentile)
    record.has_own = cache.has_own_labels
    record.latest_ms = latest_ms
    record.limit_ns = limit
    record.out = []
    record.bad = None
    record.merged = {}
    while pos < size:
        start = _varint(p, pos, size, &length)
        if start < 0 or length == 0 or length > <unsigned long long>(size - start):
            return None
        stop = start + <Py_ssize_t>length
        frames += 1
        if frames > _MAX_FRAMES:
            return None
        if record.request(start, stop) < 0:
            return None
        pos = stop
    if record.bad is not None:
        point, context, labels = record.bad
        judge_point(point, context, labels, flavor, latest_ms, cache)
        return None
    return record.out
