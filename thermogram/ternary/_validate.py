"""Input checks and 2-bit code helpers shared by the ternary modules.

Everything here works on plain Python values and numpy arrays; nothing
knows about :class:`~thermogram.ternary.TernaryWeight` or
:class:`~thermogram.ternary.PackedTernary` (the checks that do live beside
those classes: ``weight._weight`` and ``packed._weights_array``).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ValidationError, WeightIndexError
from ..kernels import ternary as _k


def _f32(value: Any, what: str, allow_nan: bool = False) -> np.float32:
    """A real scalar as float32 (Python floats are rounded to float32 first)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValidationError(f"{what} must be a real number, got {value!r}")
    with np.errstate(over="ignore"):
        v = np.float32(value)
    if not allow_nan and np.isnan(v):
        raise ValidationError(f"{what} is NaN; expected a number")
    return v


def _index(i: Any, n: int, what: str = "index") -> int:
    """A Python int in ``0..n-1`` (negative indices count from the end)."""
    if isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer)):
        raise ValidationError(f"{what} must be an integer, got {i!r}")
    j = int(i)
    if j < 0:
        j += n
    if not 0 <= j < n:
        raise WeightIndexError(f"{what} {int(i)} is out of range for length {n}")
    return j


def _length(n: Any, what: str) -> int:
    """A non-negative Python int (a length or a count)."""
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or int(n) < 0:
        raise ValidationError(f"{what} must be a non-negative integer, got {n!r}")
    return int(n)


def _asarray(obj: Any, what: str) -> np.ndarray:
    try:
        return np.asarray(obj)
    except (ValueError, TypeError) as e:  # ragged nested sequences and the like
        raise ValidationError(f"{what} is not a rectangular array: {e}") from None


def _float_array(obj: Any, what: str, ndim: int, finite: bool) -> np.ndarray:
    """A C-contiguous float32 array with ``ndim`` dimensions; NaN (and inf if ``finite``) rejected."""
    arr = _asarray(obj, what)
    if arr.dtype.kind not in "fiu" or arr.dtype.kind == "b":
        raise ValidationError(f"{what} must be a real-valued array, got dtype {arr.dtype}")
    if arr.ndim != ndim:
        raise ValidationError(f"{what} must be {ndim}-D, got shape {arr.shape}")
    with np.errstate(over="ignore"):
        out = np.ascontiguousarray(arr, dtype=np.float32)
    if out.size:
        if finite:
            if not np.isfinite(out).all():
                raise ValidationError(f"{what} contains NaN or infinity (after conversion to float32)")
        elif np.isnan(out).any():
            raise ValidationError(f"{what} contains NaN")
    return out


def _input_array(obj: Any, what: str, shape_tail: int, ndim: int) -> np.ndarray:
    """A float32 input of a product: ``ndim`` dimensions, last one ``shape_tail`` long."""
    arr = _asarray(obj, what)
    if arr.dtype.kind not in "fiu" or arr.dtype.kind == "b":
        raise ValidationError(f"{what} must be a real-valued array, got dtype {arr.dtype}")
    if arr.ndim != ndim or arr.shape[-1] != shape_tail:
        want = f"({shape_tail},)" if ndim == 1 else f"(batch, {shape_tail})"
        raise ValidationError(f"{what} must have shape {want}, got {arr.shape}")
    return np.ascontiguousarray(arr, dtype=np.float32)


def _nbytes(n: int) -> int:
    return (n + 3) // 4


def _readonly(a: np.ndarray) -> np.ndarray:
    v = a.view()
    v.flags.writeable = False
    return v


def _set_code(data: np.ndarray, i: int, w: int) -> None:
    shift = 2 * (i & 3)
    code = _k.CODE_POS if w == 1 else (_k.CODE_NEG if w == -1 else _k.CODE_ZERO)
    data[i >> 2] = (int(data[i >> 2]) & ~(3 << shift) & 0xFF) | (code << shift)


def _get_code(data: np.ndarray, i: int) -> int:
    c = (int(data[i >> 2]) >> (2 * (i & 3))) & 3
    return 1 if c == _k.CODE_POS else (-1 if c == _k.CODE_NEG else 0)


def _sign(w: int) -> str:
    return "+" if w > 0 else ("-" if w < 0 else "0")
