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


def kernel(fn=None, *, fastmath: bool = False):
    """Compile ``fn`` with the project's kernel flags.

    Usable as ``@kernel`` or ``@kernel(fastmath=True)``.
    """
    def wrap(f):
        return numba.njit(cache=True, nogil=True, fastmath=fastmath)(f)

    if fn is None:
        return wrap
    return wrap(fn)
