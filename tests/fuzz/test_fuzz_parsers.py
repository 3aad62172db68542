"""Properties of the envelope parser and the format decoders over arbitrary and mutated input:
each either accepts or raises its one documented error, never anything else."""

from __future__ import annotations

import random

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzzing.corpus import build_corpus, plain_body
from fuzzing.mutate import mutate_bytes, mutate_envelope, mutate_json_record
from fuzzing.protomutate import MESSAGE_TYPES, mutate_otel_record
from fuzzing.targets import run_common_attributes, run_decoder, run_envelope
from receiver.formats import FORMATS, SeriesCache

CORPUS = build_corpus()
CACHE = SeriesCache()
"""One cache for every example, as a receiver keeps one across deliveries."""
SEED_BODIES = [plain_body(d) for d in CORPUS.deliveries]
SEED_IDS = [d.request_id for d in CORPUS.deliveries]
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

formats = st.sampled_from((*FORMATS, None))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@FAST
@given(data=st.binary(max_size=2048), fmt=formats)
def test_any_bytes_decode_or_raise_decode_error(data, fmt):
    assert run_decoder(data, fmt, cache=CACHE) in ("accepted", "rejected")


@FAST
@given(seed=st.integers(0, 2**32), fmt=st.sampled_from(FORMATS), detect=st.booleans())
def test_mutated_records_decode_or_raise_decode_error(seed, fmt, detect):
    rng = random.Random(seed)
    record = rng.choice(CORPUS.records[fmt])
    assert run_decoder(mutate_bytes(record, rng), None if detect else fmt, cache=CACHE) in ("accepted", "rejected")


@FAST
@given(body=st.binary(max_size=2048))
def test_any_bytes_parse_or_raise_envelope_error(body):
    assert run_envelope(body, "id", cache=CACHE) in ("accepted", "rejected")


@FAST
@given(envelope=json_values)
def test_any_json_document_parses_or_raises_envelope_error(envelope):
    body = orjson.dumps(envelope)
    assert run_envelope(body, "id", cache=CACHE) in ("accepted", "rejected")


@FAST
@given(seed=st.integers(0, 2**32), structural=st.booleans())
def test_mutated_envelopes_parse_or_raise_envelope_error(seed, structural):
    rng = random.Random(seed)
    index = rng.randrange(len(SEED_BODIES))
    body = SEED_BODIES[index]
    mutated = mutate_envelope(body, rng) if structural else mutate_bytes(body, rng)
    assert run_envelope(mutated, SEED_IDS[index], cache=CACHE) in ("accepted", "rejected")


@FAST
@given(header=st.text(max_size=200) | json_values.map(lambda v: orjson.dumps(v).decode()))
def test_any_common_attributes_header_parses_or_raises_envelope_error(header):
    assert run_common_attributes(header) in ("accepted", "rejected")


@FAST
@given(seed=st.integers(0, 2**32))
def test_json_records_with_odd_field_values_decode_or_raise_decode_error(seed):
    rng = random.Random(seed)
    record = mutate_json_record(rng.choice(CORPUS.records["json"]), rng)
    assert run_decoder(record, "json", cache=CACHE) in ("accepted", "rejected")


@FAST
@given(
    fields=st.dictionaries(
        st.sampled_from(
            (
                "account_id",
                "region",
                "namespace",
                "metric_name",
                "timestamp",
                "value",
                "dimensions",
                "unit",
                "metric_stream_name",
            )
        ),
        json_values,
        min_size=5,
    )
)
def test_json_objects_of_any_field_types_decode_or_raise_decode_error(fields):
    assert run_decoder(orjson.dumps(fields) + b"\n", "json", cache=CACHE) in ("accepted", "rejected")


@FAST
@given(seed=st.integers(0, 2**32), fmt=st.sampled_from(tuple(MESSAGE_TYPES)))
def test_otel_records_with_odd_field_values_decode_or_raise_decode_error(seed, fmt):
    rng = random.Random(seed)
    record = mutate_otel_record(rng.choice(CORPUS.records[fmt]), fmt, rng)
    assert run_decoder(record, fmt, cache=CACHE) in ("accepted", "rejected")
