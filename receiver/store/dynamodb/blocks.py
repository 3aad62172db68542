"""Sample blocks in the DynamoDB table: a slice's datapoints of one metric and start per item.

=============  ==================================  ==================================  ==================
item           pk                                  sk                                  attributes
=============  ==================================  ==================================  ==================
sample block   ``S#<namespace>#<metric>#<hour>``   ``<start_ms>#p<seq><writer>``       d (binary),
                                                                                       expires_at
=============  ==================================  ==================================  ==================

- ``d`` is zlib-compressed: a JSON line ``[series, labels]`` and then a packed block
  (receiver/store/packing.py) whose series and labels integers are numbers in those two
  tables. ``series`` lists ``[number, account, region, dimensions, unit]`` and ``labels``
  ``[number, pairs]`` for the numbers the block uses; a datapoint whose unit is not its
  series' is listed in the block. The namespace and metric are the partition's.
- ``<seq>`` is 16 digits: the writer's clock in microseconds when it wrote the block, or one
  more than its previous block's if the clock has not moved on; ``<writer>`` is 8 hex digits
  drawn when the store is made, so two replicas never write the same key. Of two blocks
  holding one identity, the one with the larger (seq, writer) counts: the later write by
  the replicas' clocks (which NTP keeps within milliseconds of each other), which is what
  "last write wins" can mean across machines. The blocks of one slice hold distinct
  identities, so their order among themselves does not matter.
- Sort keys order a partition's items by start, then (``#p`` sorts after the digits of the
  older per-datapoint items, items.py) older items before blocks, then blocks by seq: a
  Query returns them in the order the reader resolves identities in.
- An item holds at most 400 KB, attribute names included. A block whose item would be
  larger is cut in two, and each half again if need be: every part is a block of its own,
  of distinct identities, so a part written while another is not (a commit failing
  half-way, answered 503 and sent again) is just some of the datapoints stored early.
- Why zlib: the JSON line repeats account, region, dimension names and table-name
  prefixes, and whole-number statistics are mostly zero bytes as doubles; level 6 takes a
  block of the 2,000-table workload to about 30 bytes a datapoint, and write units are
  billed per started KB.
"""

from __future__ import annotations

import secrets
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from itertools import chain
from typing import Any

import orjson

from receiver.batch import Batch, Group
from receiver.model import Pairs, Sample, Series
from receiver.store.base import WriteOrder
from receiver.store.dynamodb.items import ITEM_BYTES, Item, SampleDecoder, hour_of, item_size, sample_pk
from receiver.store.packing import Block, Packed, halves, pack_group

DATA = "d"
"""The attribute holding a block: short, since attribute names count in an item's size."""
BLOCK_MARK = "p"
COMPRESSION = 6
_SEQ_DIGITS = 16


class Sequencer:
    """The (seq, writer) of one store's blocks: seq from the clock, never repeating.

    Slices are encoded on several worker threads at once, and two blocks of one start with
    the same seq would have the same key (the later put would replace the earlier block):
    hence the lock.
    """

    def __init__(self, clock_ns: Callable[[], int] = time.time_ns) -> None:
        self.writer = secrets.token_hex(4)
        self._clock_ns = clock_ns
        self._last = 0
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock:
            seq = self._last = max(self._last + 1, self._clock_ns() // 1000)
        return seq


def block_sk(start_ms: int, seq: int, writer: str) -> str:
    return f"{start_ms:013d}#{BLOCK_MARK}{seq:0{_SEQ_DIGITS}d}{writer}"


def is_block(item: Item) -> bool:
    return DATA in item


def written_order(sk: str) -> WriteOrder:
    """The (seq, writer) of a block's sort key; (0, '') for an older per-datapoint item,
    which counts as written before every block."""
    mark = sk.find(f"#{BLOCK_MARK}", 13)
    if mark != 13:
        return (0, "")
    digits = sk[15 : 15 + _SEQ_DIGITS]
    return (int(digits), sk[15 + _SEQ_DIGITS :])


# -- writing ------------------------------------------------------------------------------


class SliceTables:
    """A slice's series and labels as the numbers its blocks hold (shared by all its
    blocks), and the columns of each group of its Batch in those numbers."""

    def __init__(self) -> None:
        self.series: list[Series] = []
        """number -> the first Series of that key met; its unit is the series' unit."""
        self.labels: list[Pairs] = []
        self._numbers: dict[Any, int] = {}
        self._by_series: dict[Series, tuple[int, str | int]] = {}
        self._label_numbers: dict[Pairs, int] = {}

    def columns(self, group: Group) -> tuple[list[int], list[int] | int, list[str | int] | None]:
        """The series numbers, labels numbers (or the one they share) and units (0: the
        series' own; None: all are) of a group's datapoints."""
        by_series = self._by_series
        for series in dict.fromkeys(group.series):  # each distinct Series once; a Series hashes once
            if series not in by_series:
                number = self._numbers.get(series.key)
                if number is None:
                    number = self._numbers[series.key] = len(self.series)
                    self.series.append(series)
                by_series[series] = (number, 0 if self.series[number].unit == series.unit else series.unit)
        found: list[Any] = list(chain.from_iterable(map(by_series.__getitem__, group.series)))
        numbers: list[int] = found[0::2]
        units: list[str | int] = found[1::2]
        labels = group.labels
        first = labels[0]
        if labels.count(first) == len(labels):  # one record's labels: one tuple, compared by identity
            label_column: list[int] | int = self._label_number(first)
        else:
            label_column = [self._label_number(one) for one in labels]
        return numbers, label_column, None if units.count(0) == len(units) else units

    def _label_number(self, labels: Pairs) -> int:
        number = self._label_numbers.get(labels)
        if number is None:
            number = self._label_numbers[labels] = len(self.labels)
            self.labels.append(labels)
        return number

    def payload(self, packed: Packed) -> bytes:
        """What an item's ``d`` holds for one block: compressed tables and block."""
        series = [self._series_entry(number) for number in sorted(set(packed.series))]
        labels = [[number, self.labels[number]] for number in sorted(set(packed.labels))]
        return zlib.compress(orjson.dumps([series, labels]) + b"\n" + packed.data, COMPRESSION)

    def _series_entry(self, number: int) -> list[Any]:
        series = self.series[number]
        return [number, series.account, series.region, series.dimensions, series.unit]


def block_items(batch: Batch, sequencer: Sequencer, retention_s: int) -> tuple[list[Item], set[tuple[str, str, int]]]:
    """The block items of a slice, and the (namespace, metric, hour) partitions they go to:
    a group of the batch per block, cut further while an item would be too large."""
    tables = SliceTables()
    items: list[Item] = []
    partitions: set[tuple[str, str, int]] = set()
    for group in batch.groups:
        if not len(group):
            continue
        namespace, metric = group.metric
        hour = hour_of(group.start_ms)
        partitions.add((namespace, metric, hour))
        place = (sample_pk(namespace, metric, hour), group.start_ms // 1000 + retention_s)
        for packed in pack_group(group, group.metric, *tables.columns(group)):
            items += _fitting(place, packed, tables, sequencer)
    return items, partitions


def _fitting(place: tuple[str, int], packed: Packed, tables: SliceTables, sequencer: Sequencer) -> list[Item]:
    """The item of one block, or of its halves (and theirs) when it is over 400 KB."""
    pk, expires_at = place
    item: Item = {
        "pk": {"S": pk},
        "sk": {"S": block_sk(packed.start_ms, sequencer.next(), sequencer.writer)},
        DATA: {"B": tables.payload(packed)},
        "expires_at": {"N": str(expires_at)},
    }
    if item_size(item) <= ITEM_BYTES:
        return [item]
    if len(packed.origin) < 2:
        raise ValueError(f"a datapoint of {pk} at {packed.start_ms} takes more than a DynamoDB item holds")
    found: list[Item] = []
    for half in halves(packed):
        found += _fitting(place, half, tables, sequencer)
    return found


# -- reading ------------------------------------------------------------------------------


class PartitionDecoder:
    """Samples of the items of sample partitions, each identity once: as the last write of
    it has it (the older per-datapoint items count as written before any block).

    One decoder serves one read: it shares Series and labels objects between the items.
    """

    def __init__(self) -> None:
        self._legacy = SampleDecoder()
        self._series: dict[tuple[Any, ...], Series] = {}
        self._identities: dict[tuple[Any, ...], int] = {}  # Series.key -> number
        self._pairs: dict[str, Pairs] = {}

    def samples(self, items: Sequence[Item], namespace: str, metric: str) -> list[Sample]:
        """The samples of one partition's ``items``, in sort-key order (as a Query gives them)."""
        found: list[Sample] = []
        latest: dict[Any, Sample] = {}
        start: int | None = None
        for item in items:
            item_start = int(item["sk"]["S"][:13])
            if item_start != start:
                found += latest.values()
                latest, start = {}, item_start
            keys, samples = self._decode(item, item_start, (namespace, metric), True)
            latest.update(zip(keys, samples))
        found += latest.values()
        return found

    def writes(self, items: Sequence[Item], namespace: str, metric: str) -> list[tuple[WriteOrder, list[Sample]]]:
        """Each item's samples with its write order (``written_order``), for ``written_since``."""
        found: list[tuple[WriteOrder, list[Sample]]] = []
        for item in items:
            sk = item["sk"]["S"]
            _, samples = self._decode(item, int(sk[:13]), (namespace, metric), True)
            found.append((written_order(sk), samples))
        return found

    def count(self, items: Sequence[Item], namespace: str, metric: str) -> int:
        """How many identities one partition's ``items`` hold together."""
        seen: set[Any] = set()
        for item in items:
            item_start = int(item["sk"]["S"][:13])
            keys, _ = self._decode(item, item_start, (namespace, metric), False)
            seen.update(zip([item_start] * len(keys), keys))
        return len(seen)

    def _decode(
        self, item: Item, start_ms: int, namespace_metric: tuple[str, str], with_samples: bool
    ) -> tuple[list[Any], list[Sample]]:
        """(identity keys, samples) of one item; keys of one start are equal exactly when
        the identities are."""
        if not is_block(item):
            sample = self._legacy(item)
            return [(self._identity(sample.series), sample.end_ms)], [sample]
        head, _, body = zlib.decompress(item[DATA]["B"]).partition(b"\n")
        series_table, labels_table = orjson.loads(head)
        series_of: dict[int, Series] = {}
        identity_of: dict[int, int] = {}
        for number, account, region, dimensions, unit in series_table:
            series = self._series_of(account, region, dimensions, unit, namespace_metric)
            series_of[number] = series
            identity_of[number] = self._identity(series)
        block = Block(body, start_ms)
        keys = list(zip(map(identity_of.__getitem__, block.series), block.ends()))
        if not with_samples:
            return keys, []
        labels_of = {number: self._labels(pairs) for number, pairs in labels_table}

        def with_unit(number: int, unit: str) -> Series:
            base = series_of[number]
            return self._series_of(base.account, base.region, base.dimensions, unit, namespace_metric)

        return keys, block.rows(series_of.__getitem__, labels_of.__getitem__, with_unit)

    def _series_of(
        self, account: str, region: str, dimensions: Any, unit: str, namespace_metric: tuple[str, str]
    ) -> Series:
        pairs = tuple(map(tuple, dimensions))
        key = (account, region, pairs, unit, namespace_metric)
        series = self._series.get(key)
        if series is None:
            namespace, metric = namespace_metric
            series = self._series[key] = Series(account, region, namespace, metric, pairs, unit)
        return series

    def _identity(self, series: Series) -> int:
        number = self._identities.get(series.key)
        if number is None:
            number = self._identities[series.key] = len(self._identities)
        return number

    def _labels(self, pairs: list[list[str]]) -> Pairs:
        text = orjson.dumps(pairs).decode()
        found = self._pairs.get(text)
        if found is None:
            found = self._pairs[text] = tuple((name, value) for name, value in pairs)
        return found
