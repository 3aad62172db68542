"""Fixtures for the store tests: open stores of each backend sharing the fake clock (``clock``,
from the root conftest)."""

from __future__ import annotations

import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from receiver.store import MemoryStore, SQLiteStore, Store
from receiver.store.dynamodb import DynamoDBStore
from tests.processes import free_port


@pytest.fixture
def sqlite_factory(tmp_path, clock) -> Callable[..., SQLiteStore]:
    def make(**options) -> SQLiteStore:
        return SQLiteStore(tmp_path / "store" / "metrics.db", clock=clock, **options)

    return make


# -- DynamoDB store: on moto, and on dynalite (an independent DynamoDB server, from npm) --


@pytest.fixture
def dynamodb_factory(clock) -> Iterator[Callable[..., DynamoDBStore]]:
    """DynamoDB stores on moto's in-process mock (one fresh mock per test), creating their table."""
    with mock_aws():

        def make(table: str = "metrics", **options: Any) -> DynamoDBStore:
            options.setdefault("create", True)
            return DynamoDBStore(table, region="us-east-1", clock=clock, **options)

        yield make


DYNALITE = Path(__file__).resolve().parents[2] / "node_modules" / ".bin" / "dynalite"


@pytest.fixture(scope="session")
def dynalite_endpoint() -> Iterator[str]:
    """A dynalite server on a free loopback port for the whole session (in memory)."""
    if not DYNALITE.exists():
        pytest.fail(f"dynalite is not installed at {DYNALITE}; run make setup (npm ci)")
    port = free_port()
    server = subprocess.Popen(
        [DYNALITE, "--host", "127.0.0.1", "--port", str(port), "--createTableMs", "10"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"dynalite did not start on port {port}")
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(10)


@pytest.fixture
def dynalite_factory(dynalite_endpoint, clock, monkeypatch) -> Callable[..., DynamoDBStore]:
    """DynamoDB stores on dynalite, each test with tables of its own."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "dynalite")  # dynalite checks only that they are there
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "dynalite")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    prefix = f"t{uuid.uuid4().hex[:12]}"

    def make(table: str = "metrics", **options: Any) -> DynamoDBStore:
        options.setdefault("create", True)
        return DynamoDBStore(
            f"{prefix}-{table}", region="us-east-1", endpoint_url=dynalite_endpoint, clock=clock, **options
        )

    return make


# -- every backend ------------------------------------------------------------------------

AWS = pytest.mark.aws
"""The DynamoDB backends (moto, dynalite): in make test, left out of make test-fast."""


@pytest.fixture(params=["memory", "sqlite", pytest.param("dynamodb", marks=AWS), pytest.param("dynalite", marks=AWS)])
async def store(request, clock, sqlite_factory) -> AsyncIterator[Store]:
    """An open store of each backend, sharing the fake clock (dynamodb: on moto; dynalite: the same store)."""
    if request.param in ("dynamodb", "dynalite"):
        opened: Store = request.getfixturevalue(f"{request.param}_factory")()
    else:
        opened = MemoryStore(clock=clock) if request.param == "memory" else sqlite_factory()
    await opened.open()
    yield opened
    await opened.close()


@pytest.fixture(params=["memory", "sqlite"])
async def pruning_store(request, clock, sqlite_factory) -> AsyncIterator[Store]:
    """A store whose prune() deletes: DynamoDB's items expire by TTL instead, and
    test_store_dynamodb.py proves its retention by moving the store's clock."""
    opened: Store = MemoryStore(clock=clock) if request.param == "memory" else sqlite_factory()
    await opened.open()
    yield opened
    await opened.close()


@pytest.fixture
async def sqlite_store(sqlite_factory) -> AsyncIterator[SQLiteStore]:
    opened = sqlite_factory()
    await opened.open()
    yield opened
    await opened.close()


MakeStore = Callable[..., Awaitable[DynamoDBStore]]


@pytest.fixture(params=[pytest.param("moto", marks=AWS), pytest.param("dynalite", marks=AWS)])
async def make_store(request) -> AsyncIterator[MakeStore]:
    """Opens DynamoDB stores on moto or dynalite (several may share one table), closing them after."""
    factory = request.getfixturevalue("dynamodb_factory" if request.param == "moto" else "dynalite_factory")
    opened: list[DynamoDBStore] = []

    async def make(table: str = "metrics", **options) -> DynamoDBStore:
        store = factory(table, **options)
        await store.open()
        opened.append(store)
        return store

    yield make
    for store in opened:
        await store.close()


@pytest.fixture(params=["memory", "sqlite", pytest.param("dynalite", marks=AWS)])
async def atomic_store(request, clock, sqlite_factory) -> AsyncIterator[Store]:
    """Every backend but DynamoDB on moto: moto checks a condition and then writes, with no
    lock between, so two of the store's threads can both pass the same conditional write.
    DynamoDB makes the check and the write one step, and so does dynalite."""
    opened: Store
    if request.param == "dynalite":
        opened = request.getfixturevalue("dynalite_factory")()
    else:
        opened = MemoryStore(clock=clock) if request.param == "memory" else sqlite_factory()
    await opened.open()
    yield opened
    await opened.close()
