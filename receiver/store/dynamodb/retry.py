"""Retrying DynamoDB calls: which failures may pass, exponential backoff with jitter, a deadline.

botocore's own retries are switched off for the store's client (see table.py) so
that this is the one retry policy and an operation's total time stays bounded: a Firehose
delivery waits for the commit, and past the bound a 503 makes Firehose retry it later.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError, IncompleteReadError
from botocore.exceptions import ConnectionError as BotoConnectionError

from receiver.backoff import FULL_JITTER, Backoff
from receiver.store.base import StoreError

THROTTLING_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "Throttling",
        "RequestLimitExceeded",
    }
)
"""DynamoDB answered, but is too busy for this call now."""

RETRYABLE_CODES = THROTTLING_CODES | {
    "InternalServerError",
    "InternalFailure",
    "ServiceUnavailable",
    "ServiceUnavailableException",
}


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How long and how often one store operation retries throttling and transient failures."""

    timeout_s: float = 30.0
    """The whole operation (all batches of a commit) gives up past this many seconds."""
    backoff: Backoff = Backoff(0.05, 2.0, jitter=FULL_JITTER)
    """50 ms doubling to 2 s, full jitter: replicas throttled together spread out."""


class Aborted(Exception):
    """Another part of the same operation failed; this part stopped early (not the cause)."""


class Attempts:
    """The retry state of one operation: ``wait()`` after each failure that may pass."""

    def __init__(
        self,
        policy: RetryPolicy,
        deadline: float,
        what: str,
        abort: threading.Event | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._policy = policy
        self._deadline = deadline
        self._what = what
        self._abort = abort
        self._sleep = sleep
        self._monotonic = monotonic
        self._started = monotonic()
        self.count = 0
        """Failures waited out so far."""

    def check(self) -> None:
        """Raise Aborted if another part of the operation failed."""
        if self._abort is not None and self._abort.is_set():
            raise Aborted

    def wait(self, reason: str) -> None:
        """Sleep before the next attempt, or raise StoreError when it would pass the deadline."""
        delay = self._policy.backoff.delay_s(self.count + 1)
        self.count += 1
        self.check()
        now = self._monotonic()
        if now + delay > self._deadline:
            raise StoreError(
                f"{self._what} still failed after {self.count} attempts in {now - self._started:.1f} s "
                f"(last: {reason}); giving up"
            )
        self._sleep(delay)


def is_transient(exc: BaseException) -> bool:
    """Whether retrying the same call may succeed: throttling, 5xx, lost connections."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return error.get("Code") in RETRYABLE_CODES or status >= 500
    return isinstance(exc, (BotoConnectionError, HTTPClientError, IncompleteReadError))


def describe(exc: BaseException) -> str:
    """``Code: message`` of a ClientError, the text of anything else."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code", "Unknown")
        message = error.get("Message", "")
        return f"{code}: {message}" if message else code
    return str(exc) or type(exc).__name__


def error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        code: str = exc.response.get("Error", {}).get("Code", "")
        return code
    return ""


def call(attempts: Attempts, fn: Callable[..., dict[str, Any]], **kwargs: object) -> dict[str, Any]:
    """``fn(**kwargs)``, retried while it fails in a way that may pass; other errors propagate."""
    while True:
        attempts.check()
        try:
            return fn(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            if not is_transient(exc):
                raise
            attempts.wait(describe(exc))
