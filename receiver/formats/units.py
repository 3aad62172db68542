"""CloudWatch unit names and the UCUM codes the OpenTelemetry formats carry instead.

AWS's translation table ("Translations with OpenTelemetry 0.7.0 format" and its 1.0.0
twin): each CloudWatch unit maps to a case-sensitive UCUM code, and a rate ``A/B`` maps to
``ucum(A)/ucum(B)`` (``Bytes/Second`` -> ``By/s``). A code not in the table is kept as given:
an unknown unit must never cost a record.
"""

from __future__ import annotations

# CloudWatch's StandardUnit names -> UCUM, as in AWS's table (note its mixed case:
# "kbit" and "Tbit" but "MBit" and "GBit").
_TO_UCUM: dict[str, str] = {
    "Seconds": "s",
    "Microseconds": "us",
    "Milliseconds": "ms",
    "Bytes": "By",
    "Kilobytes": "kBy",
    "Megabytes": "MBy",
    "Gigabytes": "GBy",
    "Terabytes": "TBy",
    "Bits": "bit",
    "Kilobits": "kbit",
    "Megabits": "MBit",
    "Gigabits": "GBit",
    "Terabits": "Tbit",
    "Percent": "%",
    "Count": "{Count}",
    "None": "1",
}
_RATE_UNITS = (
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Count",
)
for _name in _RATE_UNITS:
    _TO_UCUM[f"{_name}/Second"] = f"{_TO_UCUM[_name]}/s"

CLOUDWATCH_UNITS: tuple[str, ...] = tuple(_TO_UCUM)
"""Every CloudWatch unit name the table covers."""

_FROM_UCUM: dict[str, str] = {code: name for name, code in _TO_UCUM.items()}


def from_ucum(code: str) -> str:
    """The CloudWatch unit name for a UCUM code; an unknown code is returned unchanged."""
    return _FROM_UCUM.get(code, code)


def to_ucum(name: str) -> str:
    """The UCUM code for a CloudWatch unit name; an unknown name is returned unchanged."""
    return _TO_UCUM.get(name, name)
