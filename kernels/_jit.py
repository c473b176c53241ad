"""The one decorator every kernel uses, so flags are the same everywhere.

``cache=True`` keeps compile time out of every process after the first;
``nogil=True`` lets colonies run kernels on threads. ``fastmath`` stays off
by default: strengths and stored values must be bit-identical to the
reference on every machine. Only kernels whose results are never stored
(SNN activations) may pass ``fastmath=True``.
"""
from __future__ import annotations

import numba

__all__ = ["kernel"]


def kernel(fn=None, *, fastmath: bool = False, inline: bool = False, ieee_division: bool = False):
    """Compile ``fn`` with the project's kernel flags.

    Usable as ``@kernel``, ``@kernel(fastmath=True)`` or ``@kernel(inline=True)``
    (small helpers called from loops: inlined into the caller at compile time,
    which also saves numba's per-call reference counting of array arguments).
    ``ieee_division=True`` (numba's ``error_model="numpy"``): a float division by zero
    gives inf or NaN as IEEE 754 says instead of raising ``ZeroDivisionError``, so a loop
    that divides by a value that may be zero, and selects the result away when it is,
    has no branch to an exception and vectorises. The results are the same bits.
    """
    def wrap(f):
        opts = {"inline": "always"} if inline else {}
        if ieee_division:
            opts["error_model"] = "numpy"
        return numba.njit(cache=True, nogil=True, fastmath=fastmath, **opts)(f)

    if fn is None:
        return wrap
    return wrap(fn)
