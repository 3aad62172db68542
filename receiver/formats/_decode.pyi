# The compiled decoder's interface (receiver/formats/_decode.pyx).
from typing import Any

from receiver.batch import Batch
from receiver.model import Pairs, Sample

from .series import SeriesCache

class WireKeys:
    """A SeriesCache's series by their bytes on the wire (its ``wire_keys``)."""

    def __len__(self) -> int: ...
    def clear(self) -> None: ...

def decode(
    data: bytes, extra_labels: Pairs, flavor: Any, latest_ms: int, *, cache: SeriesCache
) -> list[Sample] | None: ...
def fill(
    batch: Batch, data: bytes, extra_labels: Pairs, flavor: Any, latest_ms: int, *, cache: SeriesCache
) -> bool | None: ...
