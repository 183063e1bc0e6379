"""Keeping a long-running daemon's memory where its work is, on glibc (Linux); no-ops elsewhere.

A cold cycle reads hundreds of pages at once in the worker threads (a 332 KB body, its decoded
JSON and the parsed incidents, per poll in flight). Python frees them, but glibc keeps freed heap
in per-thread arenas and, after a large block is freed, raises its mmap threshold so later large
blocks come from those arenas too: the daemon then holds its cold-cycle peak for good. Two
settings and a trim keep the steady daemon near what it uses:
* at most two arenas (`M_ARENA_MAX`), so eight workers do not each keep one;
* a fixed mmap threshold (`M_MMAP_THRESHOLD`, 128 KiB), so page bodies live in their own mappings
  and go back to the system when freed;
* `malloc_trim(0)` after a busy stretch, returning what is free at the top of the heaps.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8

_libc = None
try:
    _name = ctypes.util.find_library("c")
    if _name:
        _libc = ctypes.CDLL(_name)
        if not hasattr(_libc, "mallopt") or not hasattr(_libc, "malloc_trim"):
            _libc = None
except OSError:  # pragma: no cover - no C library to speak to
    _libc = None


def tune() -> bool:
    """Set the arena cap and the mmap threshold; call before worker threads start."""
    if _libc is None:
        return False
    return bool(_libc.mallopt(M_ARENA_MAX, 2)) and bool(_libc.mallopt(M_MMAP_THRESHOLD, 128 * 1024))


def trim() -> bool:
    """Give free heap memory back to the system."""
    if _libc is None:
        return False
    return bool(_libc.malloc_trim(0))


__all__ = ["trim", "tune"]
