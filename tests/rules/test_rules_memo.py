"""Remembered work (labels looked up by binary search, answers per label value, results
shared between rules) gives exactly what working everything out point by point gives."""

from __future__ import annotations

import math
import random

from receiver.rules import closures
from receiver.rules import families as f
from receiver.rules.parser import parse_closure
from receiver.rules.source import Source
from tests.rules.rulekit import pack, sample


def closure(text):
    return parse_closure(Source.at(text))


def random_labels(rng):
    names = rng.sample(["a", "b", "bb", "c", "quantile", "z"], rng.randint(0, 5))
    pairs = [(k, rng.choice(["", "x", "y"])) for k in names]
    if pairs and rng.random() < 0.2:
        pairs.append((pairs[0][0], "dup"))  # a repeated name: dict() keeps the last
    return tuple(sorted(pairs))


def family_of(rng, size=60):
    return tuple(f.Point(random_labels(rng), float(rng.randint(-3, 3))) for _ in range(size))


def test_lookup_is_what_a_dict_of_the_labels_gives():
    rng = random.Random(1)
    for _ in range(500):
        labels = random_labels(rng)
        for name in ("a", "b", "bb", "c", "quantile", "z", "", "0"):
            assert f.lookup(labels, name) == dict(labels).get(name)
            assert f.label(labels, name) == dict(labels).get(name, "")


def test_closures_answer_per_point_as_when_run_on_all_labels():
    rng = random.Random(2)
    filters = [
        closure("{ tags -> tags.a == 'x' && tags.b }"),
        closure("{ tags -> tags.a == '' }"),  # an absent label is null, not ''
        closure("{ tags -> tags.c = tags.a; tags.c != null }"),
    ]
    tagger = closure("{ tags -> tags.b = 'n:' + tags.a; tags.z = tags.missing }")
    memo = f.Memo()
    for _ in range(5):  # later minutes reuse the answers remembered
        family = family_of(rng)
        for accept in filters:
            assert f.keep(family, accept, memo) == tuple(p for p in family if closures.accepts(accept, dict(p.labels)))
        assert f.retag(family, tagger, memo) == tuple(
            f.Point(tuple(sorted(closures.retag(tagger, dict(p.labels)).items())), p.value) for p in family
        )


def test_tag_filters_and_aggregations_match_the_point_by_point_definitions():
    rng = random.Random(3)
    for _ in range(20):
        family = family_of(rng)
        memo = f.Memo()
        pairs = (("a", "x"), ("quantile", ""))
        for method, test in (("tagEqual", lambda a, w: a == w), ("tagNotEqual", lambda a, w: a != w)):
            expected = tuple(p for p in family if all(test(dict(p.labels).get(k, ""), v) for k, v in pairs))
            assert f.match_tags(family, method, pairs, memo) == expected
            assert f.match_tags(family, method, pairs) == expected
        for by in ((), ("a",), ("c", "a", "a")):
            groups = {}
            for p in family:
                key = tuple(sorted((k, dict(p.labels).get(k, "")) for k in set(by)))
                groups.setdefault(key, []).append(p.value)
            expected = tuple(f.Point(k, math.fsum(v)) for k, v in groups.items())
            assert f.aggregate(family, "sum", by, memo) == expected
            assert f.aggregate(family, "sum", by) == expected


def test_evaluating_again_or_after_other_minutes_gives_the_same_values():
    rules = pack()
    first = [sample("ConsumedReadCapacityUnits", 60.0 * i, 4, TableName=f"T{i}") for i in range(5)]
    latency = [
        sample(
            "SuccessfulRequestLatency",
            10.0 * i,
            2,
            TableName=f"T{i}",
            Operation=op,
            stats=(("p50", 3.0), ("p99", 4.5)),
            minute=1,
        )
        for i in range(3)
        for op in ("GetItem", "Query")
    ]
    once = rules.evaluate(first + latency)
    assert once
    rules.evaluate(latency)
    assert rules.evaluate(first + latency) == once
    assert rules.evaluate(list(reversed(first + latency))) == once
