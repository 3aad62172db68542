"""Handing free memory back: done where the C library can (glibc), a no-op elsewhere."""

from __future__ import annotations

import ctypes

from receiver.derive import free_memory


def test_free_memory_goes_back_where_libc_has_malloc_trim():
    try:
        has_trim = hasattr(ctypes.CDLL("libc.so.6"), "malloc_trim")
    except OSError:
        has_trim = False
    big = [bytearray(1 << 20) for _ in range(8)]  # freed pages for it to hand back
    del big
    assert free_memory.release_free_memory() is has_trim


def test_without_malloc_trim_nothing_is_done(monkeypatch):
    monkeypatch.setattr(free_memory, "_TRIM", None)
    assert free_memory.release_free_memory() is False


def test_the_whole_free_heap_top_goes_back(monkeypatch):
    calls: list[int] = []
    monkeypatch.setattr(free_memory, "_TRIM", lambda pad: calls.append(pad) or 1)
    assert free_memory.release_free_memory() is True
    assert calls == [0]  # no padding kept at the top of the heap
