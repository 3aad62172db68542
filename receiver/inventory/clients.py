"""boto3 sessions and clients of the inventory (one session per account, one client per
(account, region, service)), and ``call``, which runs one call off the event loop and sorts
its failure: throttled, denied, or failed.

The receiver's own account comes through the default credential chain (``boto3.Session()``:
environment, shared files, container or instance role); each role of ``--inventory-role``
through ``sts:AssumeRole``, assumed again when its credentials come within
``RENEW_BEFORE_S`` of their end. Every method here blocks (STS and client creation): the
poller runs them with ``asyncio.to_thread``. The endpoints are boto3's own configuration
(``AWS_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_DYNAMODB``, the shared config file), never passed
here, so a test or a local emulator redirects every client the usual way.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from receiver.inventory.counters import DENIED, FAILED, OK, THROTTLED, InventoryCounters

OWN = ""
"""The source of the receiver's own account (the default credential chain); any other source
is the ARN of a role to assume."""

ROLE_SESSION_NAME = "receiver-inventory"
RENEW_BEFORE_S = 900.0
"""Assumed-role credentials are renewed once they have less than this left (15 minutes: a
poll that started with them finishes before they end)."""

MAX_ATTEMPTS = 3
"""botocore's ``max_attempts``: the retries after the first attempt (four attempts in all, with
standard mode's backoff between them); the poller backs off after that."""
ASSUMED_FOR_S = 3600.0
"""How long assumed credentials are taken to last when STS gives no Expiration (its default)."""


def client_config() -> Config:
    """A new Config for each client: botocore rewrites the retries dict it is given."""
    return Config(
        retries={"mode": "standard", "max_attempts": MAX_ATTEMPTS},
        connect_timeout=5,
        read_timeout=20,
        user_agent_extra="receiver-inventory",
    )


THROTTLING_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "LimitExceededException",
        "RequestLimitExceeded",
        "ProvisionedThroughputExceededException",
        "TooManyRequestsException",
    }
)
"""The service is too busy for this caller now: wait and ask again."""

DENIED_CODES = frozenset(
    {
        "AccessDeniedException",
        "AccessDenied",
        "UnauthorizedOperation",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
    }
)
"""No permission, or credentials AWS does not accept: asking again changes nothing."""


@dataclass(frozen=True, slots=True)
class AccountAccess:
    """What an account's calls are made with."""

    account: str
    """The 12-digit account id."""
    source: str
    """OWN, or the role ARN assumed."""
    session: Any = field(default=None, compare=False, repr=False)
    """The boto3 session holding its credentials (None for fakes in tests)."""
    expires: float | None = None
    """When assumed-role credentials end (epoch seconds); None for the default chain, which
    renews its own."""


class ClientSource(Protocol):
    """Where the poller gets accounts and clients (tests give their own)."""

    def sources(self) -> tuple[str, ...]:
        """OWN, then every role ARN."""
        ...

    def cached_access(self, source: str) -> AccountAccess | None:
        """The account of ``source`` as last found, unless unknown or its credentials end soon."""
        ...

    def new_access(self, source: str) -> AccountAccess:
        """The account of ``source`` found again with one STS call (GetCallerIdentity for OWN,
        AssumeRole for a role), kept for ``cached_access``; raises what botocore raises. Blocks."""
        ...

    def client(self, access: AccountAccess, region: str, service: str) -> Any:
        """The boto3 client of ``service`` in ``region`` for ``access``' account. Blocks."""
        ...


class InventoryClients:
    """Sessions and clients built on demand and kept; thread-safe."""

    def __init__(
        self,
        roles: tuple[str, ...],
        sts_region: str,
        *,
        clock: Callable[[], float] = time.time,
        session_factory: Callable[..., Any] = boto3.Session,
    ) -> None:
        self._roles = roles
        self._sts_region = sts_region
        self._clock = clock
        self._new_session = session_factory
        self._lock = threading.Lock()
        self._base: Any = None
        self._accesses: dict[str, AccountAccess] = {}
        self._clients: dict[tuple[str, str, str], tuple[AccountAccess, Any]] = {}

    def sources(self) -> tuple[str, ...]:
        return (OWN, *self._roles)

    def _base_session(self) -> Any:
        with self._lock:
            if self._base is None:
                self._base = self._new_session()
            return self._base

    def _sts(self, session: Any) -> Any:
        with self._lock:
            return session.client("sts", region_name=self._sts_region, config=client_config())

    def cached_access(self, source: str) -> AccountAccess | None:
        with self._lock:
            known = self._accesses.get(source)
        if known is not None and (known.expires is None or known.expires - self._clock() > RENEW_BEFORE_S):
            return known
        return None

    def new_access(self, source: str) -> AccountAccess:
        base = self._base_session()
        if source == OWN:
            identity = self._sts(base).get_caller_identity()
            found = AccountAccess(str(identity["Account"]), OWN, base)
        else:
            answer = self._sts(base).assume_role(RoleArn=source, RoleSessionName=ROLE_SESSION_NAME)
            credentials = answer["Credentials"]
            session = self._new_session(
                aws_access_key_id=credentials["AccessKeyId"],
                aws_secret_access_key=credentials["SecretAccessKey"],
                aws_session_token=credentials["SessionToken"],
            )
            expiration = credentials.get("Expiration")
            expires = expiration.timestamp() if isinstance(expiration, datetime) else self._clock() + ASSUMED_FOR_S
            found = AccountAccess(_role_account(answer, source), source, session, expires)
        with self._lock:
            self._accesses[source] = found
        return found

    def client(self, access: AccountAccess, region: str, service: str) -> Any:
        key = (access.source, region, service)
        with self._lock:
            known = self._clients.get(key)
            if known is not None and known[0] is access:
                return known[1]
            # A session is not thread-safe; creating its clients under the lock keeps it right.
            made = access.session.client(service, region_name=region, config=client_config())
            self._clients[key] = (access, made)
            return made


def _role_account(answer: Any, role_arn: str) -> str:
    """The account of an assumed role: from the AssumedRoleUser ARN STS returned, else the role's."""
    arn = str((answer.get("AssumedRoleUser") or {}).get("Arn") or role_arn)
    parts = arn.split(":")
    return parts[4] if len(parts) > 4 and parts[4] else role_arn.split(":")[4]


MESSAGE_CHARS = 300
"""A failure's message is kept (in a table's ``problems``) to this length."""


class CallError(Exception):
    """A call that failed, counted already; ``transient`` when asking again later may work
    (throttled, a lost connection, a timeout, a 5xx answer)."""

    def __init__(self, api: str, outcome: str, code: str, message: str, *, transient: bool) -> None:
        super().__init__(f"{api}: {message}")
        self.api = api
        self.outcome = outcome
        self.code = code
        """The AWS error code ('' when the call got no answer)."""
        self.message = message
        self.transient = transient


async def call(counters: InventoryCounters, api: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` on a worker thread, counted by outcome; CallError when it fails."""
    try:
        answer = await asyncio.to_thread(fn, *args, **kwargs)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        text = str(error.get("Message", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code.isdigit():  # an answer that is no AWS error (a proxy's or a gateway's page)
            message = f"HTTP {status or code} without an AWS error"
        else:
            message = ((f"{code}: {text}" if text else code) or str(exc))[:MESSAGE_CHARS]
        if code in THROTTLING_CODES:
            outcome, transient = THROTTLED, True
        elif code in DENIED_CODES:
            outcome, transient = DENIED, False
        else:
            outcome, transient = FAILED, status >= 500
        counters.call(api, outcome)
        raise CallError(api, outcome, code, message, transient=transient) from exc
    except (BotoConnectionError, HTTPClientError, IncompleteReadError) as exc:
        counters.call(api, FAILED)
        raise CallError(api, FAILED, "", str(exc) or type(exc).__name__, transient=True) from exc
    except (NoCredentialsError, PartialCredentialsError) as exc:
        counters.call(api, DENIED)
        raise CallError(api, DENIED, "", str(exc), transient=False) from exc
    except Exception as exc:  # whatever else a client raises fails this call only
        counters.call(api, FAILED)
        raise CallError(api, FAILED, "", f"{type(exc).__name__}: {exc}", transient=False) from exc
    counters.call(api, OK)
    return answer
