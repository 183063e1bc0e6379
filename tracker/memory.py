"""Keeping a long-running daemon's memory where its work is (glibc's allocator on Linux; a no-op
elsewhere), and the garbage collector out of its way.

A cold cycle reads hundreds of pages at once in the worker threads (a 332 KB body, its decoded
JSON and the parsed incidents, per poll in flight). Python frees them, but glibc keeps freed heap
in per-thread arenas and, after a large block is freed, raises its mmap threshold (up to 32 MiB)
so later large blocks come from those arenas too: the daemon then holds its cold-cycle peak for
good. Two settings and a trim keep the steady daemon near what it uses:
* at most two arenas (`M_ARENA_MAX`), so eight workers do not each keep one;
* a fixed mmap threshold (`M_MMAP_THRESHOLD`, 1 MiB): a status page's body and its decoded text
  (a few hundred KB) come from those two arenas and are reused by the next polls, where a block
  mapped on its own is faulted in page by page and unmapped again on every poll (a 200-provider
  cold run: 29,000-30,000 page faults at 128 KiB, 12,000-14,000 at 1 MiB, and about a tenth less
  CPU). Larger bodies still get a mapping of their own and go back to the system when freed;
* `malloc_trim(0)` after a busy stretch, returning the free pages of both arenas.

The cyclic garbage collector is tuned for the same work (any platform). A cold cycle allocates
objects by the hundred thousand (decoded pages, parsed incidents, requests' own), and at the
default threshold (a young collection every 700 new objects) a 200-provider cold run made some
180 young, 16 middle and one or two full collections, the full ones walking every object
imported at start: 0.07-0.11 s of its CPU, finding next to nothing. Young collections now come
every 10,000 new objects, and what was built while starting (modules, configuration) is frozen
so that no collection walks it again. Reference counting still frees everything that is not a
cycle at once; cycles wait at most 10,000 allocations longer.
"""

from __future__ import annotations

import ctypes
import gc

M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8

_libc = None
try:
    # The interpreter's own symbols, the C library's among them: find_library("c") would run
    # `ldconfig -p` in a subprocess on every start to name the same library.
    _libc = ctypes.CDLL(None)
    if not hasattr(_libc, "mallopt") or not hasattr(_libc, "malloc_trim"):
        _libc = None  # not glibc (musl, macOS): nothing to tune
except OSError:  # pragma: no cover - no C library to speak to
    _libc = None


MMAP_THRESHOLD = 1024 * 1024  # bytes: larger blocks get a mapping of their own
GC_YOUNG = 10_000  # new objects between young collections (CPython's default: 700)


def tune() -> bool:
    """Tune the collector and set the arena cap and the mmap threshold; call once started,
    before worker threads start. Returns whether glibc took the settings."""
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG, older, oldest)
    if _libc is None:
        return False
    return bool(_libc.mallopt(M_ARENA_MAX, 2)) and bool(_libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))


def trim() -> bool:
    """Give free heap memory back to the system."""
    if _libc is None:
        return False
    return bool(_libc.malloc_trim(0))


__all__ = ["trim", "tune"]
