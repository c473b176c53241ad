"""Numba kernels of thermogram: pure functions over numpy arrays.

Installed as ``thermogram.kernels`` (never import a bare ``kernels``).
No Python objects, no I/O, no knowledge of :class:`thermogram.Thermogram`.
Each module is imported on first use (``thermogram.kernels.snn`` or
``from thermogram.kernels import snn``), so a capsule never pays for the SNN's
or the ternary layer's kernels unless it uses them.
"""
from __future__ import annotations

import importlib
from typing import Any, List

__all__ = ["signal", "plasticity", "thermal", "consolidation", "codec", "keys", "ternary", "snn", "colony"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(__all__))
