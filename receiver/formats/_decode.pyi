# The compiled decoder's interface (receiver/formats/_decode.pyx); it has fastpath.decode's.
from typing import Any

from receiver.model import Pairs, Sample

from .series import SeriesCache

def decode(
    data: bytes, extra_labels: Pairs, flavor: Any, latest_ms: int, *, cache: SeriesCache
) -> list[Sample] | None: ...
