"""The HTTP side's one error type: its status table, the failures each stage's exception stands for,
and every failure mode of the read side over HTTP as one named row (the Firehose endpoint's are in
tests/receiver/test_ingest_http.py)."""

from __future__ import annotations

import pytest
from aiohttp import web

from receiver.config import ServeConfig
from receiver.errors import RETRY_AFTER_S, STATUS, HttpError, Kind, http_error
from receiver.firehose.body import BadEncoding, BodyStalled, BodyTooLarge, OverBudget
from receiver.firehose.envelope import EnvelopeError
from receiver.keys import STORE
from receiver.server.app import create_app
from receiver.store import StoreError, open_store_from_url
from tests.apps import serve_app


def test_every_kind_has_a_status_and_none_is_413():
    assert set(STATUS) == set(Kind)
    # Firehose drops a batch answered 413 without backing it up to S3.
    assert 413 not in STATUS.values()


@pytest.mark.parametrize("kind", list(Kind), ids=lambda kind: kind.value)
def test_every_503_says_when_to_retry_and_nothing_else_does(kind):
    headers = HttpError(kind, "m").headers
    assert headers.get("Retry-After") == (str(RETRY_AFTER_S) if STATUS[kind] == 503 else None)


@pytest.mark.parametrize(
    ("exc", "kind", "message"),
    [
        (EnvelopeError("the body is not valid JSON"), Kind.ENVELOPE, "the body is not valid JSON"),
        (BodyTooLarge("too large"), Kind.BODY, "too large"),
        (BadEncoding("the gzip body is truncated"), Kind.BODY, "the gzip body is truncated"),
        (BodyStalled("no part of the body arrived"), Kind.BODY, "no part of the body arrived"),
        (OverBudget("over the in-flight budget"), Kind.BUSY, "the receiver is busy"),
        (
            StoreError("disk I/O error"),
            Kind.STORE_UNAVAILABLE,
            "the store is unavailable, retry later (disk I/O error)",
        ),
        (web.HTTPNotFound(), Kind.NOT_FOUND, "Not Found"),
        (web.HTTPMethodNotAllowed("PUT", ["GET"]), Kind.METHOD_NOT_ALLOWED, "Method Not Allowed"),
        (web.HTTPBadRequest(), Kind.BAD_REQUEST, "Bad Request"),
        (HttpError(Kind.BAD_QUERY, "start is required"), Kind.BAD_QUERY, "start is required"),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else None,
)
def test_each_stages_exception_is_one_kind_of_failure(exc, kind, message):
    error = http_error(exc)
    assert error is not None
    assert (error.kind, error.status) == (kind, STATUS[kind])
    assert message in error.message


@pytest.mark.parametrize("exc", [RuntimeError("a bug"), ValueError("x"), web.HTTPFound("/"), web.HTTPNotModified()])
def test_a_bug_or_an_answer_that_is_no_error_is_no_failure(exc):
    assert http_error(exc) is None


def test_the_allow_header_of_a_405_is_kept():
    assert http_error(web.HTTPMethodNotAllowed("PUT", ["GET", "HEAD"])).headers == {"Allow": "GET,HEAD"}


# ---- the read side over HTTP: status, {"error": ...} and its headers --------------------------

READ_SIDE = [
    # (name, method, path, store down, status, words of the error, header that must be there)
    ("unknown path", "GET", "/nope", False, 404, "Not Found", None),
    ("dashboard file not served", "GET", "/static/nothing.js", False, 404, "no such dashboard file", None),
    ("method not allowed", "PUT", "/api/v1/metrics", False, 405, "Method Not Allowed", "Allow"),
    ("query without metric", "GET", "/api/v1/query?service=s&start=0&end=0", False, 400, "metric is required", None),
    (
        "query of an unknown metric",
        "GET",
        "/api/v1/query?metric=nope&service=s&start=0&end=0",
        False,
        404,
        "metric 'nope' is not defined",
        None,
    ),
    ("quarantine limit out of range", "GET", "/api/v1/quarantine?limit=0", False, 400, "limit must be", None),
    ("entities, store down", "GET", "/api/v1/entities", True, 503, "the store is unavailable", "Retry-After"),
    ("quarantine, store down", "GET", "/api/v1/quarantine", True, 503, "the store is unavailable", "Retry-After"),
    ("alarms, store down", "GET", "/api/v1/alarms", True, 503, "the store failed", "Retry-After"),
    ("readiness, store down", "GET", "/readyz", True, 503, "not open", "Retry-After"),
]


@pytest.mark.parametrize(
    ("method", "path", "store_down", "status", "words", "header"),
    [row[1:] for row in READ_SIDE],
    ids=[row[0] for row in READ_SIDE],
)
async def test_each_read_side_failure_is_json_with_its_kinds_status(method, path, store_down, status, words, header):
    app = create_app(ServeConfig(allow_unauthenticated=True), open_store_from_url("memory://"))
    async with serve_app(app) as client:
        if store_down:
            await app[STORE].close()  # every call now raises StoreError
        response = await client.request(method, path)
        assert response.status == status
        assert words in (await response.json())["error"]
        if header is not None:
            assert response.headers[header]
