"""The rules engine gives, to the last bit, what main's engine gave before its internals were
rewritten for speed: over minutes of the bench's account, the pipeline's workload and samples
with extreme values, whole (by region and not) and a partition at a time
(reference_cases.py says how the digests were made)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.rules.reference_cases import cases, digest

DIGESTS = json.loads((Path(__file__).parent / "data" / "reference_digests.json").read_text())
CASES = dict(cases())


def test_every_reference_case_has_a_digest():
    assert sorted(CASES) == sorted(DIGESTS)


@pytest.mark.parametrize("name", sorted(DIGESTS))
def test_the_engine_gives_main_s_values(name):
    assert digest(CASES[name]()) == DIGESTS[name]
