"""The OpenTelemetry decoders' fast path: the datapoints of a record read together, in C.

A record holds thousands of summary datapoints, and nearly all of them look alike on the
wire: a run of label fields (the series, the same every minute) next to a run of fixed-width
value fields (times, count, sum, quantiles) whose tags, lengths and quantiles repeat from
one datapoint to the next. So instead of walking each datapoint from Python, this module

1. lets upb split the record into datapoints (the summary view keeps each one as bytes);
2. splits every datapoint into its label bytes and its value bytes at a marker found with
   ``bytes.find`` (the first field of whichever run comes second);
3. looks the series up by its label bytes in the caller's SeriesCache, parsing labels only
   for a series not seen yet;
4. groups the value runs by length, learns each group's layout from one member, checks
   every member's structural bytes (tags, lengths, quantiles) with strided slices, and
   unpacks all numbers of the group with one ``struct`` call;
5. checks every group's values at once (finite statistics, periods in range and in order)
   and builds the samples with ``map``/``zip``, so no Python code runs per datapoint.

A split, a layout or a label run is used only once every one of its structural bytes is
checked, and protobuf's wire format parses one way only, so what passes is exactly what a
field-by-field parse reads. Anything else (an unusual layout, a malformed message, an empty
resource, scope or metric, more fields than limits.py allows) makes ``decode`` return None,
and the caller decodes the record the slow, careful way, which also words the error.

A bad value (NaN, a period out of range) in a record that is otherwise sound is the one
fault decided here: the careful walk would reach it only after re-reading every datapoint
before it, so a record with one bad value at its end would cost twice. The fast path finds
the first datapoint, in record order, with such a value and has the careful walk judge that
one datapoint alone, so the error (reason and words) is the one the careful walk would raise.
"""

from __future__ import annotations

import struct
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import chain, repeat
from math import isfinite
from operator import attrgetter, floordiv, getitem, le
from typing import Any, cast

from google.protobuf.message import DecodeError as ProtobufDecodeError

from receiver.model import Pairs, Sample, Series, percentile_name
from receiver.proto import summary_view_pb2

from .errors import DecodeError
from .framing import split_frames
from .limits import (
    MAX_DATAPOINTS_PER_RECORD,
    MAX_LABELS_PER_DATAPOINT,
    MAX_PARTS_PER_RECORD,
    MAX_STATISTICS_PER_DATAPOINT,
    OLDEST_MS,
)
from .series import SeriesCache, merge_labels
from .walk import judge_point, resource_labels, series_of

_parse_request = summary_view_pb2.Request.FromString
_metrics_of = attrgetter("metrics")
_unit_of = attrgetter("unit")
_name_of = attrgetter("name")
_points_of = attrgetter("summary.data_points")
_new_tuple = tuple.__new__

# Value fields of a summary datapoint, the same in 0.7 and 1.x: (field number, role).
_FIXED64 = {2: "start", 3: "end", 4: "count"}
_DOUBLE = {5: "sum"}
_QUANTILES = 6
_NS_PER_MS = 1_000_000
_MAX_ROUNDS = 8
"""How many different split markers one record may need (one per minute or namespace)."""
_MAX_POINT_FIELDS = MAX_LABELS_PER_DATAPOINT + MAX_STATISTICS_PER_DATAPOINT + 8
"""Fields of one datapoint _learn_split walks at most (labels, quantiles, times, count, sum)."""
_OLDEST_NS = OLDEST_MS * _NS_PER_MS


@dataclass(frozen=True, slots=True)
class Shape:
    """Where a format keeps a datapoint's labels."""

    label_tag: int
    """The label field's tag byte: 0x0A (0.7 labels = 1) or 0x3A (1.x attributes = 7)."""


OTEL07 = Shape(label_tag=0x0A)
OTEL10 = Shape(label_tag=0x3A)


@dataclass(frozen=True, slots=True)
class Layout:
    """The value fields of a group of datapoints whose value bytes share one shape."""

    size: int
    unpack_format: str
    """struct codes for one datapoint's value bytes: pad bytes for structure, Q/d for numbers."""
    literals: tuple[tuple[int, int], ...]
    """(offset, byte) of every structural byte: tags, lengths and quantiles."""
    columns: int
    """How many numbers one datapoint's value bytes unpack to."""
    sources: dict[str, int | None]
    """Column of start, end, count, sum, min and max; None when absent on the wire (zero)."""
    stats: tuple[tuple[str, int | None], ...]
    """The percentiles other than min and max, sorted by name, with their columns."""


def decode(
    data: bytes,
    extra_labels: Pairs,
    flavor: Any,
    latest_ms: int,
    *,
    cache: SeriesCache,
) -> list[Sample] | None:
    """The samples of one delimited record, or None when the fast path does not apply.

    ``flavor`` is the format's walk.Flavor; ``latest_ms`` the latest period end accepted;
    ``cache`` holds the series and resources already met, keyed by their raw bytes. Raises
    DecodeError only for a bad value in a record that is otherwise sound (module docstring).
    """
    known_resource = cache.resource
    try:
        points: list[bytes] = []
        contexts: list[Any] = []
        labels: list[Any] = []
        resources = scopes_seen = metrics_seen = 0
        for message in split_frames(data):
            request = _parse_request(message)
            resources += len(request.resource_metrics)
            if not request.resource_metrics or resources > MAX_PARTS_PER_RECORD:
                return None
            for resource_metrics in request.resource_metrics:
                # Lengths first: looking at each of a million empty parts would cost seconds.
                scopes = resource_metrics.scopes
                scopes_seen += len(scopes)
                if not scopes or scopes_seen > MAX_PARTS_PER_RECORD:
                    return None
                resource = resource_metrics.resource
                key = (flavor.name, tuple(resource.attributes), extra_labels)
                known = known_resource(key)
                if known is None:
                    known = cache.remember_resource(key, resource_labels(resource, flavor, extra_labels))
                account, region, sample_labels = known
                per_scope = list(map(_metrics_of, scopes))
                metrics_seen += sum(map(len, per_scope))
                if not all(per_scope) or metrics_seen > MAX_PARTS_PER_RECORD:
                    return None  # a scope without metrics, or too many metrics
                metrics = list(chain.from_iterable(per_scope))
                lists = list(map(_points_of, metrics))
                counts = list(map(len, lists))
                if 0 in counts or len(points) + sum(counts) > MAX_DATAPOINTS_PER_RECORD:
                    return None  # a metric without datapoints, or too many datapoints
                before = len(points)
                points.extend(chain.from_iterable(lists))
                contexts.extend(
                    chain.from_iterable(
                        map(
                            repeat,
                            zip(
                                repeat(flavor.name),
                                repeat(account),
                                repeat(region),
                                map(_unit_of, metrics),
                                map(_name_of, metrics),
                            ),
                            counts,
                        )
                    )
                )
                labels.extend(repeat(sample_labels, len(points) - before))
    except (DecodeError, ProtobufDecodeError):
        return None
    if not points:
        return None
    return _decode_points(points, contexts, labels, flavor, latest_ms, cache)


def _decode_points(
    points: list[bytes],
    contexts: list[Any],
    labels: list[Any],
    flavor: Any,
    latest_ms: int,
    cache: SeriesCache,
) -> list[Sample] | None:
    total = len(points)
    label_runs: list[bytes | None] = [None] * total
    value_runs: list[bytes | None] = [None] * total
    pending = list(range(total))
    for _ in range(_MAX_ROUNDS):
        first = points[pending[0]]
        learned = _learn_split(first, flavor.shape)
        if learned is None:
            return None
        labels_first, marker = learned
        subset = list(map(points.__getitem__, pending))
        cuts = list(map(bytes.find, subset, repeat(marker)))
        # Slices of bytes are bytes (typeshed's operator.getitem says Sequence[int]).
        heads = cast("Iterator[bytes]", map(getitem, subset, map(slice, repeat(None), cuts)))
        tails = cast("Iterator[bytes]", map(getitem, subset, map(slice, cuts, repeat(None))))
        found_labels, found_values = (heads, tails) if labels_first else (tails, heads)
        if len(pending) == total and min(cuts) > 0:
            # The common case: one marker splits every datapoint of the record.
            label_runs, value_runs = list(found_labels), list(found_values)
            break
        missed = []
        for index, cut, label_run, value_run in zip(pending, cuts, found_labels, found_values):
            if cut <= 0:
                missed.append(index)
            else:
                label_runs[index] = label_run
                value_runs[index] = value_run
        if not missed:
            break
        if len(missed) == len(pending):
            return None  # the learned marker did not even split the point it came from
        pending = missed
    else:
        return None
    resolved = _series(label_runs, contexts, flavor, cache)
    if resolved is None:
        return None
    series, extras = resolved
    if extras is not None:
        labels = _with_extras(labels, extras)
    limit_ns = (latest_ms + 1) * _NS_PER_MS
    built = _build(value_runs, series, labels, limit_ns)  # type: ignore[arg-type]
    if type(built) is int:
        # A bad value: the careful walk judges that datapoint (and raises); should it not,
        # the whole record goes to the careful walk.
        judge_point(points[built], contexts[built], labels[built], flavor, latest_ms, cache)
        return None
    return built  # type: ignore[return-value]


def _series(
    label_runs: list[Any], contexts: list[Any], flavor: Any, cache: SeriesCache
) -> tuple[list[Series], list[Pairs | None] | None] | None:
    """Each datapoint's interned Series, parsing the label runs of series not seen yet, and
    each one's own labels (None when no datapoint of the record has any)."""
    keys = list(zip(contexts, label_runs))
    found = list(map(cache.lookup, keys))
    if not all(found):  # not `None in found`: that calls Series.__eq__ on every element
        for index, known in enumerate(found):
            if known is None:
                known = _new_series(keys[index], flavor, cache)
                if known is None:
                    return None
                found[index] = known
    if not cache.has_own_labels:
        return found, None  # type: ignore[return-value]
    extras = list(map(cache.own_labels, keys))
    return found, extras if any(extras) else None  # type: ignore[return-value]


def _with_extras(labels: list[Pairs], extras: list[Pairs | None]) -> list[Pairs]:
    """Each datapoint's labels with its own merged in (its own win a clash)."""
    merged: dict[tuple[Pairs, Pairs], Pairs] = {}
    out = []
    for sample_labels, own in zip(labels, extras):
        if own:
            key = (own, sample_labels)
            known = merged.get(key)
            if known is None:
                known = merged[key] = merge_labels(dict(own), sample_labels)
            sample_labels = known
        out.append(sample_labels)
    return out


def _new_series(key: tuple[Any, bytes], flavor: Any, cache: SeriesCache) -> Series | None:
    """The Series of one label run, checked field by field; None if it is not labels only
    or the careful walk refuses it.

    Remembered under the run's key (its label bytes whole, not split into fields as the
    careful walk keys them); interned by value, so both paths share one Series object.
    """
    context, run = key
    known = cache.lookup(key)
    if known is not None:
        return known  # an earlier datapoint of the same record had the same run
    raw = _label_fields(run, flavor.shape.label_tag)
    if raw is None:
        return None
    try:
        known, extras = series_of((context, tuple(raw)), flavor, cache)
    except DecodeError:
        return None
    return cache.remember(key, known, extras)


def _label_fields(run: bytes, tag: int) -> list[bytes] | None:
    """The label messages of a run made only of label fields, at most
    MAX_LABELS_PER_DATAPOINT of them; None otherwise."""
    fields: list[bytes] = []
    pos, size = 0, len(run)
    while pos < size:
        if run[pos] != tag or len(fields) == MAX_LABELS_PER_DATAPOINT:
            return None
        read = _varint(run, pos + 1)
        if read is None:
            return None
        length, start = read
        pos = start + length
        if pos > size:
            return None
        fields.append(run[start:pos])
    return fields


def _varint(data: bytes, pos: int) -> tuple[int, int] | None:
    value = shift = 0
    while pos < len(data) and shift < 64:
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if byte < 0x80:
            return value, pos
        shift += 7
    return None


def _learn_split(point: bytes, shape: Shape) -> tuple[bool, bytes] | None:
    """Whether labels come first, and the bytes that start the second run of a datapoint."""
    kinds: list[tuple[bool, int, int]] = []  # (is a label, start, end) of each field
    pos, size = 0, len(point)
    while pos < size:
        tag = point[pos]
        wire_type = tag & 7
        if tag >= 0x80:
            return None
        if wire_type == 1:
            end = pos + 9
        elif wire_type == 2:
            read = _varint(point, pos + 1)
            if read is None:
                return None
            end = read[1] + read[0]
        elif wire_type == 0:
            read = _varint(point, pos + 1)
            if read is None:
                return None
            end = read[1]
        else:
            return None
        if end > size or len(kinds) == _MAX_POINT_FIELDS:
            return None
        kinds.append((tag == shape.label_tag, pos, end))
        pos = end
    changes = [i for i in range(1, len(kinds)) if kinds[i][0] != kinds[i - 1][0]]
    if len(changes) != 1:
        return None  # no labels, no values, or the two interleaved
    _, start, end = kinds[changes[0]]
    return kinds[0][0], point[start:end]


def _build(
    value_runs: list[bytes], series: list[Series], labels: list[Any], limit_ns: int
) -> list[Sample] | int | None:
    """Samples from the value runs, grouped by layout so each group unpacks at once; or the
    index of the first datapoint (in record order) holding a bad value; or None if a layout
    is one the fast path cannot read.

    Once a bad value is seen, the other groups are still read (a layout the fast path cannot
    read anywhere leaves the record to the careful walk, which judges in record order) and
    checked, but no longer built.
    """
    total = len(value_runs)
    sizes = list(map(len, value_runs))
    order = sorted(range(total), key=sizes.__getitem__)
    sorted_sizes = list(map(sizes.__getitem__, order))
    built: list[Sample] = []
    placed: list[int] = []  # the datapoint of each sample in ``built``
    first_bad: int | None = None
    position = 0
    while position < total:
        end = bisect_right(sorted_sizes, sorted_sizes[position], position)
        groups = _by_layout(order[position:end], value_runs)
        if groups is None:
            return None
        for layout, members, blob in groups:
            group = _build_group(
                layout,
                blob,
                len(members),
                map(series.__getitem__, members),
                map(labels.__getitem__, members),
                limit_ns,
                build=first_bad is None,
            )
            if type(group) is int:
                # Members are in record order within a group, so this is the group's first.
                bad = members[group]
                first_bad = bad if first_bad is None else min(first_bad, bad)
            elif first_bad is None:
                built.extend(group)  # type: ignore[arg-type]
                placed.extend(members)
        position = end
    if first_bad is not None:
        return first_bad
    if sorted_sizes[0] == sorted_sizes[-1] and len(placed) == total and placed == order:
        return built  # one layout: already in the record's order
    back = sorted(range(total), key=placed.__getitem__)
    return list(map(built.__getitem__, back))


_MAX_LAYOUTS_PER_SIZE = 16


def _by_layout(members: list[int], value_runs: list[bytes]) -> list[tuple[Layout, list[int], bytes]] | None:
    """Value runs of one length split by layout: (layout, members, their runs joined).

    Runs of one length nearly always share a layout, which one strided check per structural
    byte confirms; when they do not (a zero sum and a zero minimum both shorten a run by
    nine bytes), the runs are sorted one by one.
    """
    runs = list(map(value_runs.__getitem__, members))
    layout = _read_layout(runs[0])
    if layout is None or layout.size != len(runs[0]):
        return None
    blob = b"".join(runs)
    if _all_fit(blob, layout, len(runs)):
        return [(layout, members, blob)]
    groups: list[tuple[Layout, list[int], bytes]] = []
    while members:
        if len(groups) == _MAX_LAYOUTS_PER_SIZE:
            return None
        layout = _read_layout(runs[0])
        if layout is None:
            return None
        fits = [all(run[offset] == byte for offset, byte in layout.literals) for run in runs]
        groups.append(
            (layout, [m for m, fit in zip(members, fits) if fit], b"".join(run for run, fit in zip(runs, fits) if fit))
        )
        members = [m for m, fit in zip(members, fits) if not fit]
        runs = [run for run, fit in zip(runs, fits) if not fit]
    return groups


def _all_fit(blob: bytes, layout: Layout, count: int) -> bool:
    """Whether every run in ``blob`` (``count`` runs of layout.size bytes) has the layout's
    structural bytes."""
    size = layout.size
    return all(blob[offset::size] == bytes((byte,)) * count for offset, byte in layout.literals)


def _build_group(
    layout: Layout, blob: bytes, count: int, series: Any, labels: Any, limit_ns: int, build: bool = True
) -> list[Sample] | int | None:
    """The samples of ``count`` value runs of one layout, joined in ``blob``; or the position
    of the first run with a bad value (a non-finite statistic, a period out of
    OLDEST_MS .. ``limit_ns`` or not after its start); None when all are good but ``build``
    is False."""
    flat = struct.unpack("<" + layout.unpack_format * count, blob)
    width = layout.columns
    columns = [flat[i::width] for i in range(width)]

    def column(role: str, zero: Any) -> Any:
        source = layout.sources[role]
        return columns[source] if source is not None else (zero,) * count

    starts, ends = column("start", 0), column("end", 0)
    sums, lows, highs = column("sum", 0.0), column("min", 0.0), column("max", 0.0)
    stat_columns = [(name, columns[c] if c is not None else (0.0,) * count) for name, c in layout.stats]
    value_columns = (sums, lows, highs, *(values for _, values in stat_columns))
    # Both ends in range and each end after its start: the careful walk's conditions, checked
    # for the whole group at once (a start past the limit has an end before it, or past it).
    if (
        min(starts) < _OLDEST_NS
        or max(ends) >= limit_ns
        or any(map(le, ends, starts))
        or not all(all(map(isfinite, values)) for values in value_columns)
    ):
        return _first_bad(starts, ends, value_columns, limit_ns)
    if not build:
        return None
    counts = map(float, column("count", 0))
    stats = zip(*[zip(repeat(name), values) for name, values in stat_columns]) if stat_columns else repeat(())
    return list(
        map(
            _new_tuple,
            repeat(Sample),
            zip(
                series,
                map(floordiv, starts, repeat(_NS_PER_MS)),
                map(floordiv, ends, repeat(_NS_PER_MS)),
                counts,
                sums,
                lows,
                highs,
                stats,
                labels,
            ),
        )
    )


def _first_bad(
    starts: Sequence[int], ends: Sequence[int], value_columns: Sequence[Sequence[float]], limit_ns: int
) -> int:
    """The position of the first run whose values the group check refused (a Python loop:
    it runs only for a record that is refused)."""
    for position, (start, end) in enumerate(zip(starts, ends)):
        if not (_OLDEST_NS <= start < end < limit_ns):
            return position
        if not all(isfinite(values[position]) for values in value_columns):
            return position
    return 0  # unreachable; judge_point then finds nothing and the careful walk decides


def _read_layout(run: bytes) -> Layout | None:
    """The layout of one datapoint's value bytes, or None if the fast path cannot read it."""
    codes: list[str] = []
    literals: list[tuple[int, int]] = []
    sources: dict[str, int | None] = dict.fromkeys(("start", "end", "count", "sum", "min", "max"))
    quantiles: list[tuple[float, int | None]] = []
    columns = 0
    pos, size = 0, len(run)
    while pos < size:
        tag = run[pos]
        number, wire_type = tag >> 3, tag & 7
        if tag >= 0x80:
            return None
        role = _FIXED64.get(number) or _DOUBLE.get(number)
        if role is not None and wire_type == 1:
            if sources[role] is not None:
                return None  # a repeated scalar: the careful path knows the rule
            literals.append((pos, tag))
            codes.append("xQ" if number in _FIXED64 else "xd")
            sources[role] = columns
            columns += 1
            pos += 9
        elif number == _QUANTILES and wire_type == 2:
            length = run[pos + 1] if pos + 1 < size else 0x80
            stop = pos + 2 + length
            if length >= 0x80 or stop > size:
                return None
            literals.extend(((pos, tag), (pos + 1, length)))
            codes.append("xx")
            quantile, value_column, inner = 0.0, None, pos + 2
            wanted = 0x09
            while inner < stop:
                inner_tag = run[inner]
                if inner_tag not in (0x09, 0x11) or inner_tag < wanted or inner + 9 > stop:
                    return None
                wanted = inner_tag + 1
                literals.append((inner, inner_tag))
                if inner_tag == 0x09:
                    literals.extend((inner + 1 + i, run[inner + 1 + i]) for i in range(8))
                    quantile = struct.unpack_from("<d", run, inner + 1)[0]
                    codes.append("9x")
                else:
                    codes.append("xd")
                    value_column = columns
                    columns += 1
                inner += 9
            quantiles.append((quantile, value_column))
            if len(quantiles) > MAX_STATISTICS_PER_DATAPOINT:
                return None
            pos = stop
        else:
            return None
    stats = _place_quantiles(quantiles, sources)
    if stats is None:
        return None
    return Layout(size, "".join(codes), tuple(literals), columns, sources, stats)


def _place_quantiles(
    quantiles: Sequence[tuple[float, int | None]], sources: dict[str, int | None]
) -> tuple[tuple[str, int | None], ...] | None:
    """Min and max into ``sources``; the other percentiles by name. None for anything the
    careful path must judge: a missing or repeated min or max, a repeated or odd quantile."""
    extremes = [q for q, _ in quantiles if q in (0.0, 1.0)]
    if sorted(extremes) != [0.0, 1.0]:
        return None
    stats: dict[str, int | None] = {}
    for quantile, source in quantiles:
        if quantile == 0.0:
            sources["min"] = source
        elif quantile == 1.0:
            sources["max"] = source
        elif 0.0 < quantile < 1.0:
            name = percentile_name(quantile)
            if name in stats:
                return None
            stats[name] = source
        else:
            return None
    return tuple(sorted(stats.items()))
