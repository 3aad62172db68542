"""Fixtures the deriver's tests share: the repository's rules and an open memory store."""

from __future__ import annotations

import pytest

from receiver.config import REPOSITORY_RULES
from receiver.rules import RuleHolder
from receiver.store import open_store_from_url


@pytest.fixture(scope="module")
def rules():
    return RuleHolder(REPOSITORY_RULES)


@pytest.fixture
async def store():
    opened = open_store_from_url("memory://")
    await opened.open()
    yield opened
    await opened.close()
