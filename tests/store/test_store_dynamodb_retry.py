"""The DynamoDB store under throttling and failures: what it retries, for how long, and what it leaves.

Failures are injected by wrapping the store's boto3 client methods on moto; the backoff
itself is tested with a fake clock and sleep.
"""

from __future__ import annotations

import dataclasses
import random
import threading
from collections.abc import AsyncIterator, Callable

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from receiver.backoff import Backoff
from receiver.store import StoreError
from receiver.store.dynamodb import DynamoDBStore
from receiver.store.dynamodb.retry import Aborted, Attempts, RetryPolicy, is_transient
from tests.builders import make_sample, make_series, many_samples


def backoff(base_s: float, cap_s: float) -> Backoff:
    """The store's backoff (its jitter, its growth) from another base to another cap."""
    return dataclasses.replace(RetryPolicy().backoff, initial_s=base_s, max_s=cap_s)


class Fixed(random.Random):
    """A generator whose every draw is ``value``."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def random(self) -> float:
        return self.value


FAST = RetryPolicy(timeout_s=5.0, backoff=backoff(0.001, 0.01))
SHORT = RetryPolicy(timeout_s=0.3, backoff=backoff(0.001, 0.02))


def client_error(code: str, status: int = 400, operation: str = "BatchWriteItem") -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": f"injected {code}"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        operation,
    )


@pytest.fixture
async def open_store(dynamodb_factory) -> AsyncIterator[Callable[..., DynamoDBStore]]:
    opened: list[DynamoDBStore] = []

    async def make(policy: RetryPolicy = FAST, **options) -> DynamoDBStore:
        store = dynamodb_factory(retry=policy, **options)
        await store.open()
        opened.append(store)
        return store

    yield make
    for store in opened:
        await store.close()


class Flaky:
    """Wraps one client method: ``fail(call_number, kwargs)`` returns an error to raise, a
    response to return instead of calling DynamoDB, or None to call through."""

    def __init__(self, store: DynamoDBStore, method: str, fail: Callable[[int, dict], object]) -> None:
        self._real = getattr(store.client, method)
        self._fail = fail
        self._lock = threading.Lock()
        self.calls: list[dict] = []
        setattr(store.client, method, self)

    def __call__(self, **kwargs):
        with self._lock:
            self.calls.append(kwargs)
            number = len(self.calls)
        outcome = self._fail(number, kwargs)
        if isinstance(outcome, Exception):
            raise outcome
        if outcome is not None:
            return outcome
        return self._real(**kwargs)


def request_count(call: dict) -> int:
    return sum(len(requests) for requests in call["RequestItems"].values())


def is_sample_batch(call: dict) -> bool:
    """Whether a BatchWriteItem call carries sample items (not the catalog written before them)."""
    (requests,) = call["RequestItems"].values()
    return requests[0]["PutRequest"]["Item"]["pk"]["S"].startswith("S#")


# -- through the store --------------------------------------------------------------


async def test_unprocessed_items_are_sent_again_until_all_are_written(open_store):
    store = await open_store()
    samples = many_samples(60, tables=1)  # 60 minutes: 60 blocks, three batches of sample items

    def half_unprocessed(number: int, kwargs: dict) -> object:
        ((table, requests),) = kwargs["RequestItems"].items()
        if number > 6 or len(requests) < 2:
            return None
        kept, left = requests[: len(requests) // 2], requests[len(requests) // 2 :]
        flaky._real(RequestItems={table: kept})
        return {"UnprocessedItems": {table: left}}

    flaky = Flaky(store, "batch_write_item", half_unprocessed)
    await store.commit("r1", samples)
    assert sorted(await store.samples(0, 2**62), key=repr) == sorted(samples, key=repr)
    assert await store.is_committed("r1")
    # Each batch was sent whole once; the retries carried only what was left over.
    sizes = [request_count(call) for call in flaky.calls]
    assert sum(sizes) > 60 + 1 and max(sizes) <= 25


@pytest.mark.parametrize(
    "error",
    [
        client_error("ProvisionedThroughputExceededException"),
        client_error("ThrottlingException"),
        client_error("RequestLimitExceeded"),
        client_error("InternalServerError", 500),
        client_error("SomethingNew", 503),
        EndpointConnectionError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com"),
        ReadTimeoutError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com"),
    ],
    ids=["provisioned", "throttling", "request-limit", "internal", "5xx", "connection", "read-timeout"],
)
async def test_a_failure_that_may_pass_is_retried_and_the_commit_succeeds(open_store, error):
    store = await open_store()
    flaky = Flaky(store, "batch_write_item", lambda number, _: error if number <= 3 else None)
    await store.commit("r1", [make_sample(minute=m) for m in range(3)])
    assert await store.count_samples() == 3 and await store.is_committed("r1")
    assert len(flaky.calls) >= 4


async def test_throttling_that_does_not_pass_fails_the_commit_after_the_bound(open_store):
    store = await open_store(SHORT)
    flaky = Flaky(store, "batch_write_item", lambda number, _: client_error("ThrottlingException"))
    with pytest.raises(StoreError, match="gave up|giving up") as caught:
        await store.commit("r1", [make_sample()])
    assert "ThrottlingException" in str(caught.value)
    assert len(flaky.calls) > 3  # it did back off and retry before giving up
    assert not await store.is_committed("r1")


async def test_an_error_that_cannot_pass_fails_at_once_and_stops_the_other_batches(open_store):
    store = await open_store(max_workers=2)
    flaky = Flaky(
        store, "batch_write_item",
        lambda number, kwargs: client_error("ValidationException") if is_sample_batch(kwargs) else None,
    )  # fmt: skip
    with pytest.raises(StoreError, match="ValidationException"):
        await store.commit("r1", many_samples(500, tables=1))  # 500 minutes: 20 batches of blocks
    sample_batches = [call for call in flaky.calls if is_sample_batch(call)]
    assert len(sample_batches) <= 4  # the ones already under way; the others never started
    assert not await store.is_committed("r1")


async def test_a_failed_commit_leaves_at_most_genuine_samples_and_its_retry_completes_it(open_store):
    store = await open_store(SHORT, max_workers=1)
    samples = many_samples(100, tables=1)  # 100 minutes: 100 blocks, four batches
    batches = iter(range(1, 1000))  # fail the second batch of samples, after the first was written
    Flaky(
        store, "batch_write_item",
        lambda number, kwargs: client_error("ValidationException")
        if is_sample_batch(kwargs) and next(batches) == 2 else None,
    )  # fmt: skip
    with pytest.raises(StoreError):
        await store.commit("r1", samples)
    partial = await store.samples(0, 2**62)
    assert 0 < len(partial) < 100 and set(partial) <= set(samples)
    assert not await store.is_committed("r1")
    await store.commit("r1", samples)  # Firehose's retry
    assert sorted(await store.samples(0, 2**62), key=repr) == sorted(samples, key=repr)


async def test_the_request_id_is_written_only_after_every_sample(open_store):
    store = await open_store()
    order: list[str] = []
    Flaky(store, "batch_write_item", lambda number, kwargs: order.append("samples"))
    Flaky(store, "put_item", lambda number, kwargs: order.append(kwargs["Item"]["pk"]["S"]))
    await store.commit("r1", [make_sample(series=make_series(table=f"T{i}")) for i in range(60)])
    assert order[-1] == "R#r1" and order.count("R#r1") == 1
    assert "samples" in order[:-1]


async def test_reads_retry_throttling_too(open_store):
    store = await open_store()
    await store.commit("r1", [make_sample()])
    throttled = client_error("ThrottlingException", operation="GetItem")
    Flaky(store, "get_item", lambda number, _: throttled if number <= 2 else None)
    Flaky(store, "query", lambda number, _: client_error("InternalServerError", 500, "Query") if number % 2 else None)
    assert await store.is_committed("r1")
    assert await store.samples(0, 2**62) == [make_sample()]


async def test_throttled_version_bumps_are_retried(open_store):
    store = await open_store()
    throttled = client_error("ThrottlingException", operation="UpdateItem")
    Flaky(store, "update_item", lambda number, _: throttled if number <= 2 else None)
    await store.commit("r1", [make_sample()])
    assert (await store.versions(60_000, [make_sample().start_ms]))[make_sample().start_ms] == 1


# -- the policy ---------------------------------------------------------------------------


def test_delays_grow_exponentially_up_to_the_cap():
    policy = RetryPolicy(backoff=backoff(0.1, 1.0))
    ceilings = [policy.backoff.delay_s(attempt + 1, Fixed(1.0)) for attempt in range(6)]
    assert ceilings == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])


def test_delays_are_jittered_below_the_ceiling():
    policy = RetryPolicy(backoff=backoff(0.1, 1.0))
    assert policy.backoff.delay_s(4, Fixed(0.25)) == pytest.approx(0.2)
    assert policy.backoff.delay_s(4, Fixed(0.0)) == 0.0


def test_attempts_sleep_until_the_deadline_then_raise():
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    policy = RetryPolicy(timeout_s=1.0, backoff=backoff(0.1, 0.4))
    attempts = Attempts(policy, 101.0, "writing to the table", sleep=sleep, monotonic=lambda: now[0])
    with pytest.raises(StoreError, match=r"writing to the table still failed after \d+ attempts .*throttled"):
        while True:
            attempts.wait("throttled")
    assert slept and sum(slept) <= 1.0
    assert all(delay <= 0.4 for delay in slept)


def test_an_abort_stops_the_attempts_of_the_other_batches():
    abort = threading.Event()
    attempts = Attempts(FAST, float("inf"), "writing", abort, sleep=lambda _: None)
    attempts.wait("throttled")
    abort.set()
    with pytest.raises(Aborted):
        attempts.wait("throttled")


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (client_error("ProvisionedThroughputExceededException"), True),
        (client_error("InternalServerError", 500), True),
        (client_error("ValidationException"), False),
        (client_error("ConditionalCheckFailedException"), False),
        (client_error("AccessDeniedException"), False),
        (client_error("ResourceNotFoundException"), False),
        (EndpointConnectionError(endpoint_url="http://x"), True),
        (ValueError("not botocore"), False),
    ],
    ids=["throughput", "internal", "validation", "condition", "denied", "not-found", "connection", "other"],
)
def test_which_failures_are_retried(error, transient):
    assert is_transient(error) is transient
