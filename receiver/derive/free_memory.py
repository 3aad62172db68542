"""Memory the C allocator holds free, handed back to the system.

The hour pass reads an hour a chunk at a time (and, on SQLite, the blocks of a metric at
once): tens of MiB of buffers and objects over 512 bytes that glibc's malloc takes from
its heaps, not from the interpreter's own arenas. Freed, they stay in the process where
something still in use lies above them, and the values the pass makes next go elsewhere:
measured at 2,000 tables, 56 MiB of the 354 MiB the process held after the whole roll-up,
and 48 MiB after a correction's minute was rolled in, went back with ``malloc_trim``.

Where the C library has no ``malloc_trim`` (musl, macOS) this does nothing.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    trim: Callable[[int], int] | None = getattr(libc, "malloc_trim", None)
    return trim


_TRIM = _malloc_trim()


def release_free_memory() -> bool:
    """Hand the allocator's free pages back to the system; False where it cannot be done."""
    if _TRIM is None:
        return False
    _TRIM(0)  # 0: keep no padding at the top of the heap
    return True
