"""A value given its region keeps every other field (regions.py names them one by one)."""

from __future__ import annotations

import dataclasses

from receiver.derive.regions import _of_region
from receiver.model import DerivedValue


def test_a_value_of_a_region_differs_only_in_region_and_merged():
    fields = {f.name: f"{f.name}-x" for f in dataclasses.fields(DerivedValue)}
    fields.update(scope="endpoint", time_ms=60_000, value=-0.0, merged=True)
    value = DerivedValue(**fields)
    assert _of_region(value, "eu-west-1", False) == dataclasses.replace(value, region="eu-west-1", merged=False)
