"""Packing encoded pieces into Firehose records no larger than a byte limit."""

from __future__ import annotations

from collections.abc import Iterable


def pack(pieces: Iterable[bytes], max_record_bytes: int) -> list[bytes]:
    """Concatenate ``pieces`` in order into as few records as fit ``max_record_bytes`` each.

    A piece is never split; one larger than the limit raises ValueError.
    """
    records: list[bytes] = []
    current: list[bytes] = []
    size = 0
    for piece in pieces:
        if len(piece) > max_record_bytes:
            raise ValueError(
                f"one encoded datapoint needs {len(piece)} bytes, more than the {max_record_bytes}-byte record limit"
            )
        if size + len(piece) > max_record_bytes:
            records.append(b"".join(current))
            current, size = [], 0
        current.append(piece)
        size += len(piece)
    if current:
        records.append(b"".join(current))
    return records
