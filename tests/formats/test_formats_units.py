"""UCUM codes map back to CloudWatch unit names per AWS's translation table."""

from __future__ import annotations

import pytest

from receiver.formats import decode_record
from receiver.formats.units import CLOUDWATCH_UNITS, from_ucum, to_ucum

from .helpers import CACHE, otel07_message, record

AWS_TABLE = {
    "s": "Seconds",
    "us": "Microseconds",
    "ms": "Milliseconds",
    "By": "Bytes",
    "kBy": "Kilobytes",
    "MBy": "Megabytes",
    "GBy": "Gigabytes",
    "TBy": "Terabytes",
    "bit": "Bits",
    "kbit": "Kilobits",
    "MBit": "Megabits",
    "GBit": "Gigabits",
    "Tbit": "Terabits",
    "%": "Percent",
    "{Count}": "Count",
    "1": "None",
}


@pytest.mark.parametrize("code, name", sorted(AWS_TABLE.items()))
def test_table_units(code: str, name: str) -> None:
    assert from_ucum(code) == name
    assert to_ucum(name) == code


@pytest.mark.parametrize(
    "code, name",
    [
        ("By/s", "Bytes/Second"),
        ("kBy/s", "Kilobytes/Second"),
        ("TBy/s", "Terabytes/Second"),
        ("bit/s", "Bits/Second"),
        ("MBit/s", "Megabits/Second"),
        ("Tbit/s", "Terabits/Second"),
        ("{Count}/s", "Count/Second"),
    ],
)
def test_rates_combine_both_sides(code: str, name: str) -> None:
    assert from_ucum(code) == name
    assert to_ucum(name) == code


def test_every_cloudwatch_unit_round_trips() -> None:
    assert len(CLOUDWATCH_UNITS) == 27
    for name in CLOUDWATCH_UNITS:
        assert from_ucum(to_ucum(name)) == name


@pytest.mark.parametrize("code", ["NoneTranslated", "mb", "", "MBy/min"])
def test_unknown_codes_are_kept(code: str) -> None:
    assert from_ucum(code) == code


def test_decoded_series_carry_the_cloudwatch_unit() -> None:
    assert decode_record(record(otel07_message(unit="By/s")), cache=CACHE)[0].series.unit == "Bytes/Second"
    assert decode_record(record(otel07_message(unit="weird")), cache=CACHE)[0].series.unit == "weird"
