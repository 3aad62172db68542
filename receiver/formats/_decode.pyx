# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The compiled decoder of OpenTelemetry 0.7 and 1.x summary records.

``decode`` returns the samples of one delimited record exactly as the careful walk (walk.py,
the reference) gives them, or None to leave the record to the careful walk. It reads the
protobuf wire format itself, field by field, in one pass over the record's bytes:

* everything the careful walk's parser (upb, through the summary view) would read
  differently or refuse is declined: a cut-short varint or length, a frame of length 0,
  a group, a known field with an unexpected wire type, a singular field given twice, a
  string that is not UTF-8, a datapoint field the view does not know (1.x ``flags``,
  exemplars), labels split in two runs, any limits.py bound passed, an empty resource,
  scope or metric, a resource the careful reader refuses;
* a series is found by its bytes on the wire: the resource's account and region, the
  metric's name and unit and the datapoint's run of label fields, hashed into the cache's
  WireKeys table and compared byte for byte with what was found there. Only a series not
  seen yet is parsed, by walk.series_of, the careful walk's own reader;
* a fault of one datapoint (a bad period, a non-finite value, a missing minimum or
  maximum, an odd or repeated quantile, labels the careful reader refuses) stops building
  samples; once the rest of the record is known to be sound, the careful walk judges that
  datapoint alone (walk.judge_point), so the error raised is the careful walk's own.
  Should it not raise, the record goes to the careful walk whole.
"""

from libc.math cimport isfinite
from libc.stdint cimport uint64_t
from libc.string cimport memcmp, memcpy, memset
from cpython cimport array as carray
from cpython.array cimport extend_buffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.float cimport PyFloat_FromDouble
from cpython.list cimport PyList_Append
from cpython.long cimport PyLong_FromUnsignedLongLong
from cpython.mem cimport PyMem_Calloc, PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.object cimport PyObject, PyTypeObject
from cpython.ref cimport Py_DECREF, Py_INCREF
from cpython.tuple cimport PyTuple_New, PyTuple_SET_ITEM
from cpython.unicode cimport PyUnicode_DecodeUTF8

import os
import sys

from google.protobuf.message import DecodeError as ProtobufDecodeError

from receiver.model import Sample, percentile_name
from receiver.proto import summary_view_pb2

from .errors import DecodeError
from .limits import (
    MAX_DATAPOINTS_PER_RECORD,
    MAX_FRAMES_PER_RECORD,
    MAX_LABELS_PER_DATAPOINT,
    MAX_PARTS_PER_RECORD,
    MAX_STATISTICS_PER_DATAPOINT,
    OLDEST_MS,
)
from .series import KEYS_PER_SERIES, merge_labels
from .walk import judge_point, resource_labels, series_of

cdef extern from "Python.h":
    object PyType_GenericAlloc(PyTypeObject *type, Py_ssize_t nitems)
    void PyObject_GC_UnTrack(void *op)

if sys.byteorder != "little":
    raise ImportError("receiver.formats._decode reads fixed-width numbers as little-endian")

cdef enum:
    QUANTILE_ROOM = 64  # MAX_STATISTICS_PER_DATAPOINT; checked at import below

if MAX_STATISTICS_PER_DATAPOINT > QUANTILE_ROOM:
    raise ImportError("receiver.formats._decode was built for at most 64 statistics per datapoint")

cdef object _parse_resource = summary_view_pb2.Resource.FromString
cdef PyTypeObject* _SAMPLE = <PyTypeObject*>Sample
cdef tuple _NO_STATS = ()

cdef Py_ssize_t _MAX_FRAMES = MAX_FRAMES_PER_RECORD
cdef Py_ssize_t _MAX_PARTS = MAX_PARTS_PER_RECORD
cdef Py_ssize_t _MAX_POINTS = MAX_DATAPOINTS_PER_RECORD
cdef Py_ssize_t _MAX_LABELS = MAX_LABELS_PER_DATAPOINT
cdef int _MAX_STATS = MAX_STATISTICS_PER_DATAPOINT
cdef uint64_t _NS_PER_MS = 1000000
cdef uint64_t _OLDEST_NS = <uint64_t>OLDEST_MS * 1000000ULL

# What a reader answers: the record is sound so far, or declined.
cdef enum:
    OK = 0
    DECLINE = -1

# Wire types.
cdef enum:
    VARINT = 0
    I64 = 1
    LEN = 2
    I32 = 5


# -- the wire format ----------------------------------------------------------------------

cdef inline Py_ssize_t _varint(const unsigned char* p, Py_ssize_t pos, Py_ssize_t end,
                               uint64_t* out) noexcept nogil:
    """The position after the varint at ``pos`` (its value in ``out``); -1 if it is cut short
    or does not fit 64 bits."""
    cdef uint64_t result = 0
    cdef uint64_t byte
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
                            uint64_t* out) noexcept nogil:
    """The position after a field's tag; -1 for a tag upb would refuse (field number 0, more
    than 32 bits)."""
    pos = _varint(p, pos, end, out)
    if pos < 0 or out[0] > 0xFFFFFFFFULL or (out[0] >> 3) == 0:
        return -1
    return pos


cdef inline Py_ssize_t _skip(const unsigned char* p, Py_ssize_t pos, Py_ssize_t end,
                             uint64_t tag) noexcept nogil:
    """The position after the value of a field the view does not know; -1 if it is not well
    formed, or a group (which the careful walk's parser reads and this one does not)."""
    cdef uint64_t length
    cdef int wire = tag & 7
    if wire == VARINT:
        return _varint(p, pos, end, &length)
    if wire == I64:
        pos += 8
    elif wire == I32:
        pos += 4
    elif wire == LEN:
        pos = _varint(p, pos, end, &length)
        if pos < 0 or length > <uint64_t>(end - pos):
            return -1
        pos += <Py_ssize_t>length
    else:
        return -1
    return pos if pos <= end else -1


cdef inline Py_ssize_t _length(const unsigned char* p, Py_ssize_t pos, Py_ssize_t end,
                               Py_ssize_t* stop) noexcept nogil:
    """The start of a length-delimited value at ``pos`` (its end in ``stop``); -1 if it runs
    past ``end``."""
    cdef uint64_t length
    pos = _varint(p, pos, end, &length)
    if pos < 0 or length > <uint64_t>(end - pos):
        return -1
    stop[0] = pos + <Py_ssize_t>length
    return pos


cdef inline uint64_t _fixed64(const unsigned char* p) noexcept nogil:
    cdef uint64_t value
    memcpy(&value, p, 8)  # little-endian hosts only (checked at import)
    return value


cdef inline double _double(const unsigned char* p) noexcept nogil:
    cdef double value
    memcpy(&value, p, 8)
    return value


# -- series by their bytes on the wire ---------------------------------------------------

cdef inline uint64_t _mix(uint64_t h, uint64_t word) noexcept nogil:
    h = (h ^ word) * 0x9E3779B97F4A7C15ULL
    return h ^ (h >> 29)


cdef uint64_t _hash(uint64_t h, const unsigned char* p, Py_ssize_t size) noexcept nogil:
    """``h`` extended by ``size`` bytes at ``p``: eight at a time, then the rest. Not a
    defence on its own (WireKeys compares the bytes of every hit, and its seed is random)."""
    cdef uint64_t word
    h = _mix(h, <uint64_t>size)
    while size >= 8:
        memcpy(&word, p, 8)
        h = _mix(h, word)
        p += 8
        size -= 8
    if size:
        word = 0
        memcpy(&word, p, size)
        h = _mix(h, word)
    h = (h ^ (h >> 32)) * 0xD6E8FEB86659FD93ULL
    return h ^ (h >> 32)


cdef struct _Entry:
    # One series in a WireKeys arena, followed by its key (padded to eight bytes).
    Py_ssize_t key_size
    uint64_t hash
    PyObject* series  # strong references
    PyObject* own  # the datapoint's labels of its own (1.x attributes besides CloudWatch's three), or NULL
    PyObject* metric  # (namespace, metric name), one object per metric in a WireKeys: a batch's group key


cdef struct _Slot:
    uint64_t hash
    Py_ssize_t entry  # the entry's offset in the arena plus one; 0 when the slot is free


cdef inline Py_ssize_t _entry_size(Py_ssize_t key_size) noexcept nogil:
    return sizeof(_Entry) + ((key_size + 7) & ~7)


cdef class WireKeys:
    """The series a SeriesCache holds, by their bytes on the wire.

    A series' key is the metric's prefix (flavor, account, region, name and unit, each
    sized) followed by the datapoint's run of label fields. Entries (the key, its hash, the
    Series and the datapoint's own labels) are kept one after the other in an arena, in the
    order they were met; an open-addressing table of hashes finds them. CloudWatch sends its
    series in much the same order every minute, so the entry after the one a datapoint found
    is tried first, by its bytes alone: memory read in order, no hash, no table.

    One per SeriesCache (``cache.wire_keys``), made by the first decode that uses the cache
    and emptied with the cache's keys. Decoding threads share it: every change runs from
    start to end without calling Python code, so under the GIL it is whole or not begun; a
    reader copies what it found before it calls anything, and ``epoch`` tells it when the
    arena it pointed into was emptied.
    """

    cdef _Slot* slots
    cdef Py_ssize_t mask
    cdef Py_ssize_t used
    cdef unsigned char* arena
    cdef Py_ssize_t arena_size
    cdef Py_ssize_t arena_room
    cdef uint64_t seed
    cdef uint64_t epoch
    cdef dict metrics

    def __cinit__(self):
        self.slots = <_Slot*>PyMem_Calloc(1024, sizeof(_Slot))
        self.arena = <unsigned char*>PyMem_Malloc(1 << 16)
        if self.slots == NULL or self.arena == NULL:
            raise MemoryError()
        self.mask = 1023
        self.arena_room = 1 << 16
        self.metrics = {}
        self.seed = int.from_bytes(os.urandom(8), "little")

    def __dealloc__(self):
        _release(self.arena, self.arena_size)
        PyMem_Free(self.arena)
        PyMem_Free(self.slots)

    def __len__(self):
        return self.used

    def clear(self):
        """Forget every key (the SeriesCache started over)."""
        cdef _Slot* old_slots = self.slots
        cdef unsigned char* old_arena = self.arena
        cdef Py_ssize_t old_size = self.arena_size
        cdef _Slot* slots = <_Slot*>PyMem_Calloc(self.mask + 1, sizeof(_Slot))
        cdef unsigned char* arena = <unsigned char*>PyMem_Malloc(self.arena_room)
        if slots == NULL or arena == NULL:
            PyMem_Free(slots)
            PyMem_Free(arena)
            raise MemoryError()
        # Swapped in before the old entries are let go (which may free objects and so run
        # other threads): a thread that finds nothing meanwhile parses the series again.
        self.slots, self.arena = slots, arena
        self.arena_size = self.used = 0
        self.epoch += 1
        self.metrics = {}
        PyMem_Free(old_slots)
        _release(old_arena, old_size)
        PyMem_Free(old_arena)

    cdef inline _Entry* at(self, Py_ssize_t offset) noexcept:
        return <_Entry*>(self.arena + offset)

    cdef inline bint holds(self, Py_ssize_t offset, const unsigned char* prefix, Py_ssize_t prefix_size,
                           const unsigned char* run, Py_ssize_t run_size) noexcept:
        """Whether the entry at ``offset`` has exactly this key."""
        cdef _Entry* entry = <_Entry*>(self.arena + offset)
        cdef const unsigned char* key = self.arena + offset + sizeof(_Entry)
        return (entry.key_size == prefix_size + run_size
                and memcmp(key, prefix, prefix_size) == 0
                and memcmp(key + prefix_size, run, run_size) == 0)

    cdef Py_ssize_t find(self, uint64_t hash, const unsigned char* prefix, Py_ssize_t prefix_size,
                         const unsigned char* run, Py_ssize_t run_size) noexcept:
        """The offset of the entry with exactly this key, or -1."""
        cdef Py_ssize_t i = <Py_ssize_t>(hash & <uint64_t>self.mask)
        cdef Py_ssize_t offset
        while self.slots[i].entry:
            offset = self.slots[i].entry - 1
            if self.slots[i].hash == hash and self.holds(offset, prefix, prefix_size, run, run_size):
                return offset
            i = (i + 1) & self.mask
        return -1

    cdef Py_ssize_t add(self, uint64_t hash, const unsigned char* prefix, Py_ssize_t prefix_size,
                        const unsigned char* run, Py_ssize_t run_size, object series, object own) except -1:
        """Keep a new entry; its offset."""
        cdef Py_ssize_t key_size = prefix_size + run_size
        cdef Py_ssize_t size = _entry_size(key_size)
        cdef Py_ssize_t offset = self.arena_size
        cdef Py_ssize_t room = self.arena_room
        cdef unsigned char* arena
        cdef _Entry* entry
        cdef Py_ssize_t i
        metric_key = (series.namespace, series.metric)
        metric = self.metrics.setdefault(metric_key, metric_key)
        if (self.used + 1) * 2 > self.mask + 1:
            self._grow_slots()
        if offset + size > room:
            while offset + size > room:
                room *= 2
            arena = <unsigned char*>PyMem_Realloc(self.arena, room)
            if arena == NULL:
                raise MemoryError()
            self.arena, self.arena_room = arena, room
        entry = <_Entry*>(self.arena + offset)
        entry.key_size = key_size
        entry.hash = hash
        Py_INCREF(series)
        entry.series = <PyObject*>series
        if own is None:
            entry.own = NULL
        else:
            Py_INCREF(own)
            entry.own = <PyObject*>own
        Py_INCREF(metric)
        entry.metric = <PyObject*>metric
        memcpy(self.arena + offset + sizeof(_Entry), prefix, prefix_size)
        memcpy(self.arena + offset + sizeof(_Entry) + prefix_size, run, run_size)
        self.arena_size = offset + size
        i = <Py_ssize_t>(hash & <uint64_t>self.mask)
        while self.slots[i].entry:
            i = (i + 1) & self.mask
        self.slots[i].hash = hash
        self.slots[i].entry = offset + 1
        self.used += 1
        return offset

    cdef int _grow_slots(self) except -1:
        cdef Py_ssize_t size = (self.mask + 1) * 2
        cdef Py_ssize_t i, j
        cdef _Slot* fresh = <_Slot*>PyMem_Calloc(size, sizeof(_Slot))
        if fresh == NULL:
            raise MemoryError()
        for i in range(self.mask + 1):
            if self.slots[i].entry:
                j = <Py_ssize_t>(self.slots[i].hash & <uint64_t>(size - 1))
                while fresh[j].entry:
                    j = (j + 1) & (size - 1)
                fresh[j] = self.slots[i]
        PyMem_Free(self.slots)
        self.slots = fresh
        self.mask = size - 1
        return 0


cdef void _release(unsigned char* arena, Py_ssize_t size) noexcept:
    """Let go of the objects an arena's entries hold."""
    cdef Py_ssize_t offset = 0
    cdef _Entry* entry
    while offset < size:
        entry = <_Entry*>(arena + offset)
        Py_DECREF(<object>entry.series)
        if entry.own != NULL:
            Py_DECREF(<object>entry.own)
        Py_DECREF(<object>entry.metric)
        offset += _entry_size(entry.key_size)


cdef WireKeys _wire_keys(object cache):
    """The cache's WireKeys, made on first use."""
    table = cache.wire_keys
    if table is None:
        table = WireKeys()
        cache.wire_keys = table
    elif type(table) is not WireKeys:
        raise TypeError("a SeriesCache's wire_keys is the compiled decoder's WireKeys or None")
    return <WireKeys>table


# -- quantiles ------------------------------------------------------------------------------

cdef class _Quantiles:
    """What a datapoint's quantiles (in wire order, compared bit for bit) make of its values:
    which value is the minimum and the maximum, which are the other statistics and in what
    order, or that they are at fault."""

    cdef int count
    cdef double quantiles[QUANTILE_ROOM]
    cdef bint sound
    cdef int low, high
    cdef int others
    cdef int order[QUANTILE_ROOM]
    """Wire positions of the other statistics, by name."""
    cdef tuple names
    """Their statistic names, in that order."""


cdef _Quantiles _read_quantiles(const double* quantiles, int count, object cache):
    """The careful walk's reading of these quantiles (walk.decode_points and _percentiles):
    the last 0.0 is the minimum, the last 1.0 the maximum, the others percentiles strictly
    between, named once each."""
    cdef _Quantiles made = _Quantiles.__new__(_Quantiles)
    cdef int i
    cdef double quantile
    made.count = count
    made.low = made.high = -1
    made.others = 0
    made.names = _NO_STATS
    made.sound = count <= _MAX_STATS
    if not made.sound:
        return made
    memcpy(made.quantiles, quantiles, count * sizeof(double))
    others = []
    for i in range(count):
        quantile = quantiles[i]
        if quantile == 0.0:
            made.low = i
        elif quantile == 1.0:
            made.high = i
        else:
            others.append(i)
    names = []
    for i in others:
        quantile = quantiles[i]
        name = cache.percentile(quantile)
        if name is None:
            if not (0.0 < quantile < 1.0):  # also false for NaN
                made.sound = False
                return made
            name = cache.remember_percentile(quantile, percentile_name(quantile))
        names.append(name)
    if made.low < 0 or made.high < 0 or len(set(names)) != len(names):
        made.sound = False
        return made
    by_name = sorted(range(len(others)), key=names.__getitem__)
    made.others = len(others)
    for i in range(made.others):
        made.order[i] = others[by_name[i]]
    made.names = tuple([names[i] for i in by_name])
    return made


# -- one datapoint ----------------------------------------------------------------------------

cdef struct Point:
    Py_ssize_t label_start
    Py_ssize_t label_end
    bint has_start, has_end, has_count, has_sum
    uint64_t start, end, count
    double total
    int quantiles  # how many on the wire (only QUANTILE_ROOM are kept)
    double quantile[QUANTILE_ROOM]
    double value[QUANTILE_ROOM]


cdef int _read_point(const unsigned char* p, Py_ssize_t pos, Py_ssize_t end, unsigned char label_tag,
                     Point* point) noexcept nogil:
    """Read one datapoint's fields into ``point``; DECLINE for anything this reading does
    not take (the careful walk then reads, or refuses, the record)."""
    cdef unsigned char tag
    cdef Py_ssize_t stop, inner, inner_stop, field
    cdef bint has_q, has_v
    cdef double q, v
    point.label_start = -1
    point.label_end = -1
    point.has_start = point.has_end = point.has_count = point.has_sum = False
    point.start = point.end = point.count = 0
    point.total = 0.0
    point.quantiles = 0
    while pos < end:
        field = pos
        tag = p[pos]
        pos += 1
        if tag == label_tag:
            pos = _length(p, pos, end, &stop)
            if pos < 0:
                return DECLINE
            if point.label_start < 0:
                point.label_start = field
            elif point.label_end != field:
                return DECLINE  # labels in two runs
            point.label_end = stop
            pos = stop
        elif tag == 0x11 or tag == 0x19 or tag == 0x21 or tag == 0x29:
            if pos + 8 > end:
                return DECLINE
            if tag == 0x11:
                if point.has_start:
                    return DECLINE
                point.has_start = True
                point.start = _fixed64(p + pos)
            elif tag == 0x19:
                if point.has_end:
                    return DECLINE
                point.has_end = True
                point.end = _fixed64(p + pos)
            elif tag == 0x21:
                if point.has_count:
                    return DECLINE
                point.has_count = True
                point.count = _fixed64(p + pos)
            else:
                if point.has_sum:
                    return DECLINE
                point.has_sum = True
                point.total = _double(p + pos)
            pos += 8
        elif tag == 0x32:
            inner = _length(p, pos, end, &inner_stop)
            if inner < 0:
                return DECLINE
            q = v = 0.0
            has_q = has_v = False
            while inner < inner_stop:
                if inner + 9 > inner_stop:
                    return DECLINE
                if p[inner] == 0x09 and not has_q:
                    has_q = True
                    q = _double(p + inner + 1)
                elif p[inner] == 0x11 and not has_v:
                    has_v = True
                    v = _double(p + inner + 1)
                else:
                    return DECLINE
                inner += 9
            if point.quantiles < QUANTILE_ROOM:
                point.quantile[point.quantiles] = q
                point.value[point.quantiles] = v
            point.quantiles += 1
            pos = inner_stop
        else:
            return DECLINE  # another field, or a tag written in more than one byte
    return OK


# -- one record --------------------------------------------------------------------------------

cdef class _Repeat:
    """One float object per run of equal values of a column (zeros and counts repeat)."""

    cdef uint64_t bits
    cdef object value

    cdef inline object of(self, double value):
        cdef uint64_t bits
        memcpy(&bits, &value, 8)
        if bits != self.bits or self.value is None:
            self.bits = bits
            self.value = PyFloat_FromDouble(value)
        return self.value


# -- filling a batch -----------------------------------------------------------------------

cdef struct _Columns:
    # One group of a Batch as the filler sees it: its key and borrowed references to its
    # columns (the filler keeps the Group alive).
    PyObject* metric
    uint64_t start_ms
    PyObject* series
    PyObject* ends
    PyObject* counts
    PyObject* sums
    PyObject* mins
    PyObject* maxs
    PyObject* layouts
    PyObject* stats
    PyObject* labels


cdef inline uint64_t _group_hash(PyObject* metric, uint64_t start_ms) noexcept nogil:
    return _mix(_mix(0x9E3779B97F4A7C15ULL, <uint64_t><size_t>metric), start_ms)


cdef inline int _append_double(object column, double value) except -1:
    return extend_buffer(<carray.array>column, <char*>&value, 1)


cdef class _Filler:
    """The compiled decoder's state for one Batch (``batch.filler``), kept from one record to
    the next: its groups by (metric object, start) in a table of its own, so a datapoint
    finds its group's columns without a Python call. A group met first is made by
    ``Batch.group``, the same method the converter from Samples uses; the batch drops its
    filler when it rolls back, and the next record makes a new one."""

    cdef _Columns* columns
    cdef Py_ssize_t used, room
    cdef Py_ssize_t* table
    cdef Py_ssize_t mask
    cdef list held  # the Groups whose columns ``columns`` points into
    cdef PyObject* last_metric
    cdef uint64_t last_start
    cdef Py_ssize_t last

    def __cinit__(self):
        self.room = 64
        self.mask = 255
        self.columns = <_Columns*>PyMem_Malloc(self.room * sizeof(_Columns))
        self.table = <Py_ssize_t*>PyMem_Malloc((self.mask + 1) * sizeof(Py_ssize_t))
        if self.columns == NULL or self.table == NULL:
            raise MemoryError()
        memset(self.table, 0xFF, (self.mask + 1) * sizeof(Py_ssize_t))  # -1: free
        self.held = []
        self.last = -1

    def __dealloc__(self):
        PyMem_Free(self.columns)
        PyMem_Free(self.table)

    cdef Py_ssize_t find(self, object batch, object metric, uint64_t start_ms) except -1:
        """The index of the group of ``metric`` at ``start_ms`` in ``columns``."""
        cdef PyObject* key = <PyObject*>metric
        cdef Py_ssize_t i = <Py_ssize_t>(_group_hash(key, start_ms) & <uint64_t>self.mask)
        cdef Py_ssize_t found
        while self.table[i] >= 0:
            found = self.table[i]
            if self.columns[found].metric == key and self.columns[found].start_ms == start_ms:
                return found
            i = (i + 1) & self.mask
        # Not met by this filler under this metric object: the batch finds or makes it (an
        # equal metric object of a WireKeys that started over finds the same group).
        group = batch.group(metric, PyLong_FromUnsignedLongLong(start_ms))
        if self.used == self.room:
            self._grow()
            return self.find(batch, metric, start_ms)
        found = self.used
        self.held.append(group)
        self.held.append(metric)
        self.columns[found].metric = key
        self.columns[found].start_ms = start_ms
        self.columns[found].series = <PyObject*>group.series
        self.columns[found].ends = <PyObject*>group.ends
        self.columns[found].counts = <PyObject*>group.counts
        self.columns[found].sums = <PyObject*>group.sums
        self.columns[found].mins = <PyObject*>group.mins
        self.columns[found].maxs = <PyObject*>group.maxs
        self.columns[found].layouts = <PyObject*>group.layouts
        self.columns[found].stats = <PyObject*>group.stats
        self.columns[found].labels = <PyObject*>group.labels
        self.table[i] = found
        self.used += 1
        return found

    cdef int _grow(self) except -1:
        cdef Py_ssize_t room = self.room * 2
        cdef Py_ssize_t size = room * 4
        cdef Py_ssize_t i, j
        cdef _Columns* columns = <_Columns*>PyMem_Realloc(self.columns, room * sizeof(_Columns))
        if columns == NULL:
            raise MemoryError()
        self.columns, self.room = columns, room
        cdef Py_ssize_t* table = <Py_ssize_t*>PyMem_Malloc(size * sizeof(Py_ssize_t))
        if table == NULL:
            raise MemoryError()
        memset(table, 0xFF, size * sizeof(Py_ssize_t))
        for i in range(self.used):
            j = <Py_ssize_t>(_group_hash(columns[i].metric, columns[i].start_ms) & <uint64_t>(size - 1))
            while table[j] >= 0:
                j = (j + 1) & (size - 1)
            table[j] = i
        PyMem_Free(self.table)
        self.table, self.mask = table, size - 1
        return 0

    cdef int put(self, object batch, object metric, uint64_t start_ms, object series, uint64_t end_ms,
                 Point* point, _Quantiles quantiles, object labels) except -1:
        """Append one datapoint, known to be sound, to its group."""
        cdef Py_ssize_t index
        cdef _Columns* group
        cdef long long end = <long long>end_ms
        cdef int i
        if <PyObject*>metric == self.last_metric and start_ms == self.last_start and self.last >= 0:
            index = self.last
        else:
            index = self.find(batch, metric, start_ms)
            self.last, self.last_metric, self.last_start = index, <PyObject*>metric, start_ms
        group = &self.columns[index]
        PyList_Append(<object>group.series, series)
        extend_buffer(<carray.array>group.ends, <char*>&end, 1)
        _append_double(<object>group.counts, <double>point.count)
        _append_double(<object>group.sums, point.total)
        _append_double(<object>group.mins, point.value[quantiles.low])
        _append_double(<object>group.maxs, point.value[quantiles.high])
        PyList_Append(<object>group.layouts, quantiles.names)
        for i in range(quantiles.others):
            _append_double(<object>group.stats, point.value[quantiles.order[i]])
        PyList_Append(<object>group.labels, labels)
        return 0


cdef class _Record:
    """The state of decoding one record."""

    cdef const unsigned char* p
    cdef object data
    cdef object flavor
    cdef object name
    cdef unsigned char label_tag
    cdef object extra_labels
    cdef object cache
    cdef WireKeys keys
    cdef Py_ssize_t key_bound
    cdef uint64_t limit_ns
    cdef list out
    cdef Py_ssize_t resources, scopes, metrics, points
    # Where in the WireKeys arena the next datapoint's series likely is.
    cdef Py_ssize_t guess
    cdef uint64_t guess_epoch
    # The metric being read: its resource, name and unit, and the prefix of its series' keys.
    cdef object resource
    cdef object account, region, labels
    cdef bytes resource_prefix
    cdef Py_ssize_t name_start, name_stop, unit_start, unit_stop
    cdef unsigned char* prefix
    cdef Py_ssize_t prefix_size, prefix_room
    cdef uint64_t prefix_hash
    cdef bint prefix_hashed
    # Reused while equal from one datapoint to the next (a record is mostly one minute, and
    # its datapoints of a kind share their quantiles).
    cdef uint64_t last_start, last_end
    cdef object last_start_ms, last_end_ms
    cdef _Repeat counts, sums, lows, highs
    cdef _Quantiles last_quantiles
    cdef list quantile_sets
    cdef dict merged
    # The first datapoint at fault: its bytes, context and labels (None while there is none).
    cdef object bad
    # Filling a Batch (receiver/batch.py) instead of making Samples: the batch and its filler.
    cdef object batch
    cdef _Filler filler

    def __dealloc__(self):
        PyMem_Free(self.prefix)

    cdef int request(self, Py_ssize_t pos, Py_ssize_t end) except -2:
        cdef uint64_t tag
        cdef Py_ssize_t stop
        cdef bint seen = False
        while pos < end:
            pos = _tag(self.p, pos, end, &tag)
            if pos < 0:
                return DECLINE
            if tag == 0x0A:
                pos = _length(self.p, pos, end, &stop)
                if pos < 0:
                    return DECLINE
                seen = True
                self.resources += 1
                if self.resources > _MAX_PARTS or self.resource_metrics(pos, stop) < 0:
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
        cdef uint64_t tag
        cdef Py_ssize_t stop, start = pos
        cdef Py_ssize_t resource_start = -1, resource_stop = -1
        cdef Py_ssize_t scopes = 0
        # First where the resource is and how many scopes there are: the resource may
        # follow its scopes on the wire.
        while pos < end:
            pos = _tag(self.p, pos, end, &tag)
            if pos < 0:
                return DECLINE
            if tag == 0x0A or tag == 0x12:
                pos = _length(self.p, pos, end, &stop)
                if pos < 0:
                    return DECLINE
                if tag == 0x0A:
                    if resource_start >= 0:
                        return DECLINE  # two resources merge: the careful walk's business
                    resource_start, resource_stop = pos, stop
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
        if self.read_resource(resource_start, resource_stop) < 0:
            return DECLINE
        pos = start
        while pos < end:  # known to be well formed
            pos = _tag(self.p, pos, end, &tag)
            if tag == 0x12:
                pos = _length(self.p, pos, end, &stop)
                if self.scope(pos, stop) < 0:
                    return DECLINE
                pos = stop
            elif tag == 0x0A:
                _length(self.p, pos, end, &pos)
            else:
                pos = _skip(self.p, pos, end, tag)
        return OK

    cdef int read_resource(self, Py_ssize_t start, Py_ssize_t end) except -2:
        """The resource's account, region and labels (what the careful walk reads) into
        ``self.resource``, and its part of the series' keys; DECLINE if the careful reader
        refuses it."""
        raw = b"" if start < 0 else PyBytes_FromStringAndSize(<const char*>self.p + start, end - start)
        key = (self.name, raw, self.extra_labels)
        resource = self.cache.resource(key)
        if resource is None:
            try:
                resource = resource_labels(_parse_resource(raw), self.flavor, self.extra_labels)
            except (DecodeError, ProtobufDecodeError):
                return DECLINE
            self.cache.remember_resource(key, resource)
        if self.resource is not resource:
            self.resource = resource
            self.account, self.region, self.labels = resource
            self.resource_prefix = _sized(self.name) + _sized(self.account) + _sized(self.region)
        return OK

    cdef int scope(self, Py_ssize_t pos, Py_ssize_t end) except -2:
        cdef uint64_t tag
        cdef Py_ssize_t stop
        cdef bint seen = False
        while pos < end:
            pos = _tag(self.p, pos, end, &tag)
            if pos < 0:
                return DECLINE
            if tag == 0x12:
                pos = _length(self.p, pos, end, &stop)
                if pos < 0:
                    return DECLINE
                seen = True
                self.metrics += 1
                if self.metrics > _MAX_PARTS or self.metric(pos, stop) < 0:
                    return DECLINE
                pos = stop
            elif (tag >> 3) == 2:
                return DECLINE
            else:
                pos = _skip(self.p, pos, end, tag)
                if pos < 0:
                    return DECLINE
        return OK if seen else DECLINE

    cdef int metric(self, Py_ssize_t pos, Py_ssize_t end) except -2:
        cdef uint64_t tag
        cdef Py_ssize_t stop, field
        cdef Py_ssize_t summary_start = -1, summary_stop = 0
        cdef bint seen = False
        self.name_start = self.unit_start = -1
        self.name_stop = self.unit_stop = 0
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
                    if self.name_start >= 0:
                        return DECLINE
                    self.name_start, self.name_stop = pos, stop
                elif field == 3:
                    if self.unit_start >= 0:
                        return DECLINE
                    self.unit_start, self.unit_stop = pos, stop
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
        if self.bad is not None and self.context() is None:
            return DECLINE  # the careful walk's parser refuses the message before the fault
        self.set_prefix()
        pos, end = summary_start, summary_stop
        while pos < end:
            pos = _tag(self.p, pos, end, &tag)
            if pos < 0:
                return DECLINE
            if tag == 0x0A:
                pos = _length(self.p, pos, end, &stop)
                if pos < 0:
                    return DECLINE
                seen = True
                self.points += 1
                if self.points > _MAX_POINTS or self.point(pos, stop) < 0:
                    return DECLINE
                pos = stop
            elif (tag >> 3) == 1:
                return DECLINE
            else:
                pos = _skip(self.p, pos, end, tag)
                if pos < 0:
                    return DECLINE
        return OK if seen else DECLINE

    cdef int set_prefix(self) except -1:
        """The part of the metric's series' keys that is the same for each of its datapoints:
        the resource's (flavor, account, region), then the name and the unit, each sized."""
        cdef Py_ssize_t name_size = self.name_stop - self.name_start if self.name_start >= 0 else 0
        cdef Py_ssize_t unit_size = self.unit_stop - self.unit_start if self.unit_start >= 0 else 0
        cdef Py_ssize_t resource_size = PyBytes_GET_SIZE(self.resource_prefix)
        cdef Py_ssize_t size = resource_size + 16 + name_size + unit_size
        cdef unsigned char* room
        cdef uint64_t length
        if size > self.prefix_room:
            room = <unsigned char*>PyMem_Realloc(self.prefix, size)
            if room == NULL:
                raise MemoryError()
            self.prefix, self.prefix_room = room, size
        room = self.prefix
        memcpy(room, PyBytes_AS_STRING(self.resource_prefix), resource_size)
        room += resource_size
        length = <uint64_t>name_size
        memcpy(room, &length, 8)
        if name_size:
            memcpy(room + 8, self.p + self.name_start, name_size)
        room += 8 + name_size
        length = <uint64_t>unit_size
        memcpy(room, &length, 8)
        if unit_size:
            memcpy(room + 8, self.p + self.unit_start, unit_size)
        self.prefix_size = size
        self.prefix_hashed = False  # hashed when a datapoint is not where it was guessed
        return 0

    cdef int point(self, Py_ssize_t pos, Py_ssize_t end) except -2:
        cdef Point point
        cdef _Quantiles quantiles
        cdef WireKeys keys = self.keys
        cdef uint64_t hash
        cdef Py_ssize_t run_start, run_size, found
        cdef const unsigned char* run
        cdef _Entry* entry
        cdef int i
        cdef double value
        if _read_point(self.p, pos, end, self.label_tag, &point) < 0:
            return DECLINE
        if self.bad is not None:
            return OK  # only the record's soundness matters now
        if point.quantiles > QUANTILE_ROOM:
            return self.fault(pos, end)  # more than MAX_STATISTICS_PER_DATAPOINT
        run_start = point.label_start if point.label_start >= 0 else pos
        run_size = point.label_end - point.label_start if point.label_start >= 0 else 0
        run = self.p + run_start
        # The series: the entry after the last one found, else the table's, else a new one.
        found = -1
        if (self.guess_epoch == keys.epoch and 0 <= self.guess < keys.arena_size
                and keys.holds(self.guess, self.prefix, self.prefix_size, run, run_size)):
            found = self.guess
        else:
            if not self.prefix_hashed:
                self.prefix_hash = _hash(keys.seed, self.prefix, self.prefix_size)
                self.prefix_hashed = True
            hash = _hash(self.prefix_hash, run, run_size)
            found = keys.find(hash, self.prefix, self.prefix_size, run, run_size)
            if found < 0:
                context = self.context()
                if context is None:
                    return DECLINE  # a metric name or unit that is not UTF-8
                found = self.new_series(hash, run_start, run_size, context)
                if found < 0:
                    return self.fault(pos, end)
        # Copied out before anything else runs: another thread may empty the arena.
        entry = keys.at(found)
        series = <object>entry.series
        own = <object>entry.own if entry.own != NULL else None
        metric = <object>entry.metric
        self.guess = found + _entry_size(entry.key_size)
        self.guess_epoch = keys.epoch
        if not (_OLDEST_NS <= point.start < self.limit_ns and _OLDEST_NS <= point.end < self.limit_ns
                and point.start < point.end and isfinite(point.total)):
            return self.fault(pos, end)
        quantiles = self.last_quantiles
        if (quantiles is None or quantiles.count != point.quantiles
                or memcmp(quantiles.quantiles, point.quantile, point.quantiles * sizeof(double)) != 0):
            quantiles = self.quantiles_of(&point)
        if not (quantiles.sound and isfinite(point.value[quantiles.low]) and isfinite(point.value[quantiles.high])):
            return self.fault(pos, end)
        for i in range(quantiles.others):
            if not isfinite(point.value[quantiles.order[i]]):
                return self.fault(pos, end)
        labels = self.labels if own is None else self.with_own(own, self.labels)
        if self.filler is not None:
            self.filler.put(self.batch, metric, point.start // _NS_PER_MS, series, point.end // _NS_PER_MS,
                            &point, quantiles, labels)
            return OK
        if quantiles.others:
            stats = PyTuple_New(quantiles.others)
            for i in range(quantiles.others):
                pair = PyTuple_New(2)
                _put(pair, 0, quantiles.names[i])
                _put(pair, 1, PyFloat_FromDouble(point.value[quantiles.order[i]]))
                PyObject_GC_UnTrack(<void*>pair)  # a string and a float: in no cycle
                _put(stats, i, pair)
            PyObject_GC_UnTrack(<void*>stats)
        else:
            stats = _NO_STATS
        if point.start != self.last_start or self.last_start_ms is None:
            self.last_start = point.start
            self.last_start_ms = PyLong_FromUnsignedLongLong(point.start // _NS_PER_MS)
        if point.end != self.last_end or self.last_end_ms is None:
            self.last_end = point.end
            self.last_end_ms = PyLong_FromUnsignedLongLong(point.end // _NS_PER_MS)
        sample = PyType_GenericAlloc(_SAMPLE, 9)
        _put(sample, 0, series)
        _put(sample, 1, self.last_start_ms)
        _put(sample, 2, self.last_end_ms)
        _put(sample, 3, self.counts.of(<double>point.count))
        _put(sample, 4, self.sums.of(point.total))
        _put(sample, 5, self.lows.of(point.value[quantiles.low]))
        _put(sample, 6, self.highs.of(point.value[quantiles.high]))
        _put(sample, 7, stats)
        _put(sample, 8, labels)
        # A Sample holds only immutable values made before it (the Series, numbers, tuples
        # of strings and floats), so it can be in no reference cycle: like a tuple of atoms,
        # which the collector untracks itself, it is left out of the collector's walks,
        # which otherwise revisit every sample of a delivery.
        PyObject_GC_UnTrack(<void*>sample)
        PyList_Append(self.out, sample)
        return OK

    cdef _Quantiles quantiles_of(self, Point* point):
        """The reading of a datapoint's quantiles: one this record made already, or a new one."""
        cdef _Quantiles known
        cdef int count = point.quantiles
        if count <= QUANTILE_ROOM:
            for known in self.quantile_sets:
                if known.count == count and memcmp(known.quantiles, point.quantile, count * sizeof(double)) == 0:
                    self.last_quantiles = known
                    return known
        known = _read_quantiles(point.quantile, count, self.cache)
        if len(self.quantile_sets) < 32:
            self.quantile_sets.append(known)
        self.last_quantiles = known
        return known

    cdef object with_own(self, object own, object labels):
        """The resource's labels with a datapoint's own merged in (its own win a clash)."""
        key = (own, labels)
        merged = self.merged.get(key)
        if merged is None:
            merged = self.merged[key] = merge_labels(dict(own), labels)
        return merged

    cdef Py_ssize_t new_series(self, uint64_t hash, Py_ssize_t run_start, Py_ssize_t run_size,
                               object context) except -2:
        """The entry of a label run not seen yet under this metric, its series parsed by the
        careful walk's reader; -1 if that reader refuses the labels."""
        cdef uint64_t tag
        cdef Py_ssize_t pos = run_start, end = run_start + run_size, stop = 0
        raw = []
        while pos < end and len(raw) <= _MAX_LABELS:  # one more than allowed, for the reader to refuse
            pos = _tag(self.p, pos, end, &tag)
            pos = _length(self.p, pos, end, &stop)
            raw.append(PyBytes_FromStringAndSize(<const char*>self.p + pos, stop - pos))
            pos = stop
        try:
            series, own = series_of((context, tuple(raw)), self.flavor, self.cache)
        except DecodeError:
            return -1
        if self.keys.used >= self.key_bound:
            self.cache.start_over()  # empties self.keys too
        return self.keys.add(
            hash, self.prefix, self.prefix_size, self.p + run_start, run_size, series, own if own else None
        )

    cdef object context(self):
        """The careful walk's context of the metric being read (flavor, account, region, unit,
        name), or None if its name or unit is not UTF-8 (its parser refuses the record)."""
        try:
            name = "" if self.name_start < 0 else PyUnicode_DecodeUTF8(
                <const char*>self.p + self.name_start, self.name_stop - self.name_start, NULL
            )
            unit = "" if self.unit_start < 0 else PyUnicode_DecodeUTF8(
                <const char*>self.p + self.unit_start, self.unit_stop - self.unit_start, NULL
            )
        except UnicodeDecodeError:
            return None
        return (self.name, self.account, self.region, unit, name)

    cdef int fault(self, Py_ssize_t pos, Py_ssize_t end) except -2:
        """Remember the datapoint at ``pos`` as the record's first fault."""
        context = self.context()
        if context is None:
            return DECLINE
        self.bad = (PyBytes_FromStringAndSize(<const char*>self.p + pos, end - pos), context, self.labels)
        return OK


cdef bytes _sized(str text):
    """``text`` as UTF-8 after its size (eight bytes): sized parts can be joined without one
    ever reading as another."""
    cdef bytes data = text.encode("utf-8", "surrogatepass")
    return len(data).to_bytes(8, "little") + data


cdef inline void _put(object container, Py_ssize_t index, object value) noexcept:
    """Set an item of a new tuple (or Sample), which keeps a reference of its own."""
    Py_INCREF(value)
    PyTuple_SET_ITEM(container, index, value)


def decode(data, extra_labels, flavor, latest_ms, *, cache):
    """The samples of one delimited record, or None to leave it to the careful walk.

    ``flavor`` is the format's walk.Flavor, ``latest_ms`` the latest period end accepted,
    ``cache`` the application's SeriesCache. Raises DecodeError only for a fault of one
    datapoint in a record otherwise sound (the careful walk's error for that datapoint, raised
    by walk.judge_point).
    """
    record = _read(data, extra_labels, flavor, latest_ms, cache, None)
    return None if record is None else record.out


def fill(batch, data, extra_labels, flavor, latest_ms, *, cache):
    """Append the datapoints of one delimited record to ``batch`` (a receiver.batch.Batch),
    as ``batch.add_samples(decode(...))`` would; True, or None to leave the record to the
    careful walk. Errors as ``decode``'s. When it does not return True, some of the record's
    datapoints may be in the batch already: the caller rolls it back to where it stood."""
    return None if _read(data, extra_labels, flavor, latest_ms, cache, batch) is None else True


cdef _Record _read(data, extra_labels, flavor, latest_ms, cache, batch):
    """The record read whole (its samples in ``out``, or its datapoints in ``batch``), or None."""
    cdef _Record record
    cdef Py_ssize_t pos = 0, size, start, stop
    cdef Py_ssize_t frames = 0
    cdef uint64_t length
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
    record.label_tag = flavor.label_tag
    record.extra_labels = extra_labels
    record.cache = cache
    record.keys = _wire_keys(cache)
    record.key_bound = cache.limit * KEYS_PER_SERIES
    record.limit_ns = limit
    record.out = []
    record.guess = -1
    record.counts, record.sums, record.lows, record.highs = _Repeat(), _Repeat(), _Repeat(), _Repeat()
    record.quantile_sets = []
    record.merged = {}
    if batch is not None:
        filler = batch.filler
        if filler is None:
            filler = batch.filler = _Filler()
        elif type(filler) is not _Filler:
            raise TypeError("a Batch's filler is the compiled decoder's or None")
        record.batch = batch
        record.filler = <_Filler>filler
    while pos < size:
        start = _varint(p, pos, size, &length)
        if start < 0 or length == 0 or length > <uint64_t>(size - start):
            return None
        stop = start + <Py_ssize_t>length
        frames += 1
        if frames > _MAX_FRAMES or record.request(start, stop) < 0:
            return None
        pos = stop
    if record.bad is not None:
        point, context, labels = record.bad
        judge_point(point, context, labels, flavor, latest_ms, cache)
        return None
    return record
