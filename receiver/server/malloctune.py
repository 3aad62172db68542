"""glibc malloc settings for a process that takes bodies of megabytes, one after another.

With glibc's defaults, a block larger than the mmap threshold (128 KiB at first, raised
up to 32 MiB as such blocks are freed) gets pages of its own from the kernel and gives
them back when freed, and free memory at the top of the heap past the trim threshold
(twice the mmap threshold) goes back too. A delivery's socket reads, body, records and
slices are such blocks, so every delivery faulted its ~20 MiB in again page by page:
measured, one minor fault per 3.6 datapoints of a 5 MiB body and about a quarter of the
receiver's CPU (docs/performance.md). Fixed thresholds keep that memory in the process
for the next delivery; blocks past ``MMAP_THRESHOLD_BYTES`` (a 64 MiB body) still come
from and go back to the kernel, and at most ``TRIM_THRESHOLD_BYTES`` of free heap top is
kept after a burst. Measured on 5 MiB and 64 MiB deliveries: a trim threshold of 16 MiB
keeps the faults away (8 MiB does not: one fault per 7.5 datapoints), and one of 64 MiB
raised the peak of a 64 MiB delivery by a further 8 to 13 MiB for no fewer faults.

``MALLOC_*_`` variables or ``GLIBC_TUNABLES`` in the environment are the operator's
choice and win: then nothing is set here.
"""

from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
"""mallopt(3) parameter numbers (glibc's malloc.h)."""

MMAP_THRESHOLD_BYTES = 32 << 20
TRIM_THRESHOLD_BYTES = 16 << 20

_OPERATOR_SETTINGS = ("GLIBC_TUNABLES", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")


def tune() -> bool:
    """Apply the thresholds to this process; False where there is no glibc mallopt to call
    or the environment already says how malloc should behave."""
    if not sys.platform.startswith("linux") or any(name in os.environ for name in _OPERATOR_SETTINGS):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    # Each call returns 1 on success; musl's mallopt is a stub returning 0.
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))
