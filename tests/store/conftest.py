"""Fixtures for the store tests: open stores of each backend sharing a fake clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from receiver.store import MemoryStore, SQLiteStore, Store
from tests.store.builders import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sqlite_factory(tmp_path, clock) -> Callable[..., SQLiteStore]:
    def make(**options) -> SQLiteStore:
        return SQLiteStore(tmp_path / "store" / "metrics.db", clock=clock, **options)

    return make


@pytest.fixture(params=["memory", "sqlite"])
async def store(request, clock, sqlite_factory) -> AsyncIterator[Store]:
    """An open store of each backend, sharing the fake clock."""
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
