"""Giving freed heap memory back to the operating system.

A large consolidation allocates and frees many temporary arrays of a few
megabytes (key ids, pending columns, the overlay). glibc serves those from
its heap once its adaptive mmap threshold has grown, and ``free`` only
returns the top of the heap, so the freed holes stay resident although the
capsule no longer uses them. ``malloc_trim(0)`` releases them (a few ms after
folding 100,000 deltas). Elsewhere (macOS, musl, Windows) this is a no-op.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import sys

__all__ = ["release_free_memory", "TRIM_AFTER_ROWS"]

#: consolidations folding at least this many deltas release freed memory afterwards
TRIM_AFTER_ROWS = 1 << 16


def _load_trim():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        fn = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return fn


_TRIM = _load_trim()


def release_free_memory() -> bool:
    """Return freed heap pages to the OS where the C library can; True if it did anything."""
    if _TRIM is None:
        return False
    return bool(_TRIM(0))
