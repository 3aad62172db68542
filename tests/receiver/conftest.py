"""Fixtures the deriver's tests share: the repository's rules (an open memory store, ``store``,
comes from the root conftest)."""

from __future__ import annotations

import pytest

from receiver.config import REPOSITORY_RULES
from receiver.rules import RuleHolder


@pytest.fixture(scope="module")
def rules():
    return RuleHolder(REPOSITORY_RULES)
