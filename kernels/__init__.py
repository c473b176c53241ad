"""Numba kernels of thermogram: pure functions over numpy arrays.

Installed as ``thermogram.kernels`` (never import a bare ``kernels``).
No Python objects, no I/O, no knowledge of :class:`thermogram.Thermogram`.
"""
from . import signal, plasticity, thermal, consolidation, codec, ternary, snn, colony  # noqa: F401
