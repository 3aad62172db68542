"""Equal series decode to one shared object, from a bounded cache the caller owns."""

from __future__ import annotations

import ast
import os
import pickle
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

import receiver.formats
from receiver.formats import SeriesCache, decode_record, encode_records, otel
from receiver.formats.series import new_sample
from receiver.model import Sample, Series

from .helpers import DYNAMODB, NOW_MS, START_NS, otel07_message, otel10_message, record

SERIES = Series(
    "123456789012",
    "us-east-1",
    "AWS/DynamoDB",
    "ThrottledRequests",
    (("Operation", "GetItem"), ("TableName", "T")),
    "Count",
)
START_MS = START_NS // 1_000_000


def table_record(table: int) -> bytes:
    """A 0.7 record of one datapoint of its own series (table ``T<table>``)."""
    return record(otel07_message(labels=(("Namespace", "N"), ("MetricName", "M"), ("TableName", f"T{table}"))))


def test_one_series_is_one_object_across_records_and_formats() -> None:
    series = SERIES
    cache = SeriesCache()
    start = START_NS // 1_000_000
    sample = Sample(series, start, start + 60_000, 1.0, 0.0, 0.0, 0.0)
    decoded = [
        decode_record(data, cache=cache)[0].series
        for fmt in ("opentelemetry0.7", "opentelemetry1.0", "json", "opentelemetry0.7")
        for data in encode_records([sample], fmt)
    ]
    assert decoded[0] == series
    assert all(other is decoded[0] for other in decoded)


def test_the_compiled_decoder_the_careful_walk_and_reordered_json_keys_find_one_object(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cache = SeriesCache()
    sample = Sample(SERIES, START_MS, START_MS + 60_000, 1.0, 0.0, 0.0, 0.0)
    [data] = encode_records([sample], "opentelemetry0.7")
    compiled = decode_record(data, cache=cache, now_ms=NOW_MS)[0].series
    with monkeypatch.context() as patch:
        patch.setattr(otel, "compiled_decode", None)
        careful = decode_record(data, cache=cache, now_ms=NOW_MS)[0].series
    [line] = encode_records([sample], "json")
    item = orjson.loads(line)
    item["dimensions"] = dict(reversed(item["dimensions"].items()))  # another key, the same series
    reordered = decode_record(orjson.dumps(item), cache=cache, now_ms=NOW_MS)[0].series
    assert compiled == SERIES
    assert careful is compiled and reordered is compiled
    assert len(cache) == 1


def test_two_caches_share_nothing() -> None:
    first, second = SeriesCache(), SeriesCache()
    data = table_record(1)
    one = decode_record(data, cache=first)[0].series
    assert (len(first), len(second)) == (1, 0)
    other = decode_record(data, cache=second)[0].series
    assert other == one and other is not one
    first.clear()
    assert (len(first), len(second)) == (0, 1)
    assert decode_record(data, cache=second)[0].series is other


def test_the_cache_is_bounded() -> None:
    cache = SeriesCache(limit=10)
    for table in range(25):
        decode_record(table_record(table), cache=cache)
        assert len(cache) <= 10


def test_past_its_bound_the_cache_starts_over() -> None:
    cache = SeriesCache(limit=3)
    first = [decode_record(table_record(table), cache=cache)[0].series for table in range(3)]
    assert len(cache) == 3
    assert decode_record(table_record(0), cache=cache)[0].series is first[0]  # found, not added
    decode_record(table_record(3), cache=cache)  # a fourth series: the cache starts over
    assert len(cache) == 1
    again = decode_record(table_record(0), cache=cache)[0].series
    assert again == first[0] and again is not first[0]
    assert len(cache) == 2


def test_a_datapoints_own_labels_are_kept_across_a_reset(decoder: str) -> None:
    cache = SeriesCache(limit=1)
    tagged = record(otel10_message(attributes=(*DYNAMODB, ("team", "storage"))))
    other = record(otel10_message(dimensions=(("TableName", "Other"),)))
    before = decode_record(tagged, cache=cache, now_ms=NOW_MS)[0]
    decode_record(other, cache=cache, now_ms=NOW_MS)  # a second series: the cache starts over
    after = decode_record(tagged, cache=cache, now_ms=NOW_MS)[0]
    assert ("team", "storage") in before.labels
    assert after.labels == before.labels and after.series == before.series


def test_the_compiled_decoders_keys_start_over_with_the_cache(decoder: str) -> None:
    cache = SeriesCache(limit=2)
    for table in range(2):
        decode_record(table_record(table), cache=cache, now_ms=NOW_MS)
    keys = len(cache.wire_keys) if cache.wire_keys is not None else 0
    assert keys == (2 if decoder == "compiled" else 0)
    decode_record(table_record(2), cache=cache, now_ms=NOW_MS)  # a third series: the cache starts over
    assert len(cache) == 1
    assert cache.wire_keys is None or len(cache.wire_keys) <= 1
    cache.clear()
    assert cache.wire_keys is None or len(cache.wire_keys) == 0


def test_keys_are_bounded_too_however_few_the_series() -> None:
    cache = SeriesCache(limit=2)
    series = Series("a", "r", "n", "m", (), "Count")
    for key in range(4):  # two keys per series allowed
        assert cache.remember(key, series) is series
    assert cache.lookup(0) is series
    cache.remember("one key too many", Series("a", "r", "n", "m", (), "Count"))
    assert cache.lookup(0) is None and cache.lookup("one key too many") is not None


def test_when_own_labels_reach_their_bound_no_key_is_found_without_its_labels() -> None:
    cache = SeriesCache(limit=2)  # four keys' own labels at most
    series = [Series("a", "r", "n", "m", (("TableName", f"T{i}"),), "Count") for i in range(5)]
    for i in range(4):
        cache.remember(("own", i), series[i % 2], (("team", f"t{i}"),))
    reading = cache.own_labels  # what a decode under way has bound
    cache.remember(("own", 4), series[0], (("team", "t4"),))  # one more: the labels start over
    for i in range(4):
        # Gone together: a key is looked up afresh and remembered with its labels again.
        assert cache.lookup(("own", i)) is None and cache.own_labels(("own", i)) is None
        assert reading(("own", i)) == (("team", f"t{i}"),)  # the decode under way still reads them
    assert cache.lookup(("own", 4)) == series[0] and cache.own_labels(("own", 4)) == (("team", "t4"),)


def test_decoding_without_a_cache_is_refused() -> None:
    with pytest.raises(TypeError):
        decode_record(table_record(0))  # type: ignore[call-arg]


def test_new_sample_builds_what_the_constructor_builds() -> None:
    series = Series("a", "r", "n", "m", (("d", "v"),), "Count")
    args = (series, 1, 2, 3.0, 4.0, 5.0, 6.0, (("p99", 5.5),), (("l", "x"),))
    built = new_sample(*args)
    assert type(built) is Sample
    assert built == Sample(*args)
    assert hash(built) == hash(Sample(*args))
    assert built.count == 3.0 and built.labels == (("l", "x"),)
    with pytest.raises(AttributeError):
        built.count = 9.0  # type: ignore[misc]


# No module-level cache: state a decoder keeps belongs to the SeriesCache its caller passes.

_CONTAINERS = (ast.Dict, ast.Set, ast.List, ast.DictComp, ast.SetComp, ast.ListComp)
_CONTAINER_CALLS = {"dict", "set", "list", "defaultdict", "OrderedDict", "Counter", "deque", "WeakValueDictionary"}
_MUTATORS = {
    "__setitem__",
    "__delitem__",
    "add",
    "append",
    "appendleft",
    "clear",
    "discard",
    "extend",
    "insert",
    "pop",
    "popitem",
    "remove",
    "setdefault",
    "sort",
    "update",
}
_MEMOIZERS = {"cache", "lru_cache", "cached_property"}


def module_state(source: str) -> list[str]:
    """What in a module's source keeps state between calls: a module-level dict, set or list
    that a function mutates (item assignment or deletion, an augmented assignment) or whose
    mutating method anything names (called or bound), a ``global`` statement, or a memoizing
    decorator. Filling a constant table at import time is not state."""
    tree = ast.parse(source)
    containers = set()
    for node in tree.body:
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else [node.target]
            if isinstance(node, ast.AnnAssign) and node.value is not None
            else []
        )
        value = getattr(node, "value", None)
        made = isinstance(value, _CONTAINERS) or (
            isinstance(value, ast.Call)
            and getattr(value.func, "id", getattr(value.func, "attr", None)) in _CONTAINER_CALLS
        )
        if made:
            containers.update(target.id for target in targets if isinstance(target, ast.Name))
    found = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in containers
            and node.attr in _MUTATORS
        ):
            found.add(f"{node.value.id}.{node.attr} (line {node.lineno})")
        elif isinstance(node, ast.Global):
            found.add(f"global {', '.join(node.names)} (line {node.lineno})")
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            for decorator in getattr(node, "decorator_list", []):
                called = decorator.func if isinstance(decorator, ast.Call) else decorator
                if getattr(called, "id", getattr(called, "attr", None)) in _MEMOIZERS:
                    found.add(f"{getattr(node, 'name', 'lambda')} memoized (line {node.lineno})")
            for inner in ast.walk(node):
                if (
                    isinstance(inner, ast.Subscript)
                    and isinstance(inner.ctx, ast.Store | ast.Del)
                    and isinstance(inner.value, ast.Name)
                    and inner.value.id in containers
                ):
                    found.add(f"{inner.value.id}[...] assigned (line {inner.lineno})")
                elif (
                    isinstance(inner, ast.AugAssign)
                    and isinstance(inner.target, ast.Name)
                    and inner.target.id in containers
                ):
                    found.add(f"{inner.target.id} augmented (line {inner.lineno})")
    return sorted(found)


@pytest.mark.parametrize(
    "source",
    [
        "_seen: dict[str, int] = {}\ndef f(k):\n    _seen[k] = 1\n",
        "_seen = {}\nremember = _seen.setdefault\n",
        "_names = set()\ndef f(k):\n    _names.add(k)\n",
        "_runs = []\ndef f(k):\n    global _runs\n    _runs = [k]\n",
        "import functools\n@functools.lru_cache(maxsize=10)\ndef f(k):\n    return k\n",
    ],
)
def test_the_check_finds_module_state(source: str) -> None:
    assert module_state(source)


def test_the_check_lets_constant_tables_be() -> None:
    source = (
        "_UNITS = {'s': 'Seconds'}\nfor _n in ('ms',):\n    _UNITS[_n] = _n\n"
        "lookup = _UNITS.get\ndef f(k):\n    return _UNITS[k]\n"
    )
    assert module_state(source) == []


@pytest.mark.parametrize("path", sorted(Path(receiver.formats.__file__).parent.glob("*.py")), ids=lambda p: p.name)
def test_no_decoder_module_keeps_state(path: Path) -> None:
    assert module_state(path.read_text()) == []


def test_a_series_hashes_by_its_value_and_is_made_afresh_when_unpickled() -> None:
    series = Series("a", "r", "n", "m", (("d", "v"),), "Count")
    fields = ("a", "r", "n", "m", (("d", "v"),), "Count")
    assert hash(series) == hash(fields) and {series: 1}[Series(*fields)] == 1
    assert hash(series) != hash(Series("a", "r", "n", "m", (("d", "v"),), "Percent"))
    # Another process salts string hashes differently: the hash must not travel in the pickle.
    script = (
        "import pickle, sys; from receiver.model import Series; "
        "s = pickle.loads(sys.stdin.buffer.read()); "
        "assert hash(s) == hash((s.account, s.region, s.namespace, s.metric, s.dimensions, s.unit)); print(s.unit)"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    done = subprocess.run(
        [sys.executable, "-c", script], input=pickle.dumps(series), env=env, capture_output=True, check=True
    )
    assert done.stdout.strip() == b"Count"
