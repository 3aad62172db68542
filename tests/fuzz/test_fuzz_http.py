"""Properties of POST /aws/firehose/metrics over mutated deliveries: a 200 or a 4xx with a JSON
answer, never a 500, and a refused request leaves the store exactly as it was."""

from __future__ import annotations

import random

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzzing.corpus import build_corpus
from fuzzing.requests import mutated_request
from receiver.firehose import envelope

CORPUS = build_corpus()
HTTP = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def check_answer(receiver, request_id: str, headers: dict[str, str], body: bytes) -> int:
    before = receiver.stored()
    answer = receiver.post(body, headers)
    assert answer.status == 200 or 400 <= answer.status < 500, answer
    parsed = orjson.loads(answer.body)
    assert isinstance(parsed, dict), answer
    assert parsed["requestId"] == headers.get(envelope.REQUEST_ID_HEADER, "")
    assert isinstance(parsed["timestamp"], int)
    if answer.status != 200:
        assert isinstance(parsed["errorMessage"], str) and parsed["errorMessage"]
        assert receiver.stored() == before, "a refused request changed the store"
        assert not receiver.call(receiver.store.is_committed(request_id))
    return answer.status


@HTTP
@given(seed=st.integers(0, 2**32))
def test_mutated_delivery_gets_200_or_4xx_and_refusals_store_nothing(receiver, seed):
    rng = random.Random(seed)
    request = mutated_request(rng.choice(CORPUS.deliveries), rng)
    check_answer(receiver, request.request_id, request.headers, request.body)


@HTTP
@given(body=st.binary(max_size=4096), gzip_header=st.booleans())
def test_arbitrary_body_gets_4xx_and_stores_nothing(receiver, body, gzip_header):
    headers = {envelope.REQUEST_ID_HEADER: "arbitrary-body", "Content-Type": "application/json"}
    if gzip_header:
        headers["Content-Encoding"] = "gzip"
    assert check_answer(receiver, "arbitrary-body", headers, body) in range(400, 500)
