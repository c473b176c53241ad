"""Signals: 2-byte (polarity, magnitude) values and vectors of them.

``SIGNAL`` is the numpy structured dtype of one signal; a vector is a 1-D
array of it. :class:`Signal` is the scalar, with the reference crate's
constructors and arithmetic and its exact float32 rounding.
"""
from __future__ import annotations

import sys
from typing import Any, Iterable, Tuple

import numpy as np

from .errors import ValidationError
from .kernels import signal as _k

__all__ = [
    "SIGNAL", "Signal", "as_signal_vector", "signals_from_floats", "signals_to_floats",
    "signal_vector", "validate_polarity", "raw16", "copy_signals", "put_signals",
]

SIGNAL = np.dtype([("polarity", "i1"), ("magnitude", "u1")])
"""Structured dtype of one signal: int8 polarity in {-1, 0, 1}, uint8 magnitude."""


_U16 = np.dtype(np.uint16)


def _raw16(a: np.ndarray) -> np.ndarray:
    """A contiguous SIGNAL array seen as uint16 (numpy copies structured dtypes
    field by field, ~40x slower than plain 2-byte words)."""
    return np.ascontiguousarray(a).view(_U16)


def raw16(a: np.ndarray) -> np.ndarray:
    """A SIGNAL array as one uint16 word per signal (a view when contiguous, else a copy)."""
    return _raw16(a)


def copy_signals(a: np.ndarray) -> np.ndarray:
    """Fast copy of a SIGNAL array (as 2-byte words)."""
    out = np.empty(a.shape[0], SIGNAL)
    out.view(_U16)[:] = _raw16(a)
    return out


def put_signals(dst: np.ndarray, start: int, src: np.ndarray) -> None:
    """``dst[start:start+len(src)] = src`` for SIGNAL arrays, fast."""
    n = src.shape[0]
    if n:
        dst.view(_U16)[start:start + n] = _raw16(src)


# numpy scalars for kernel arguments typed uint8 / int8, made once: building one from a
# Python int costs 0.1-0.8 us (numpy 2), a tuple lookup ~20 ns. ``U8[m]`` for a magnitude;
# ``I8[p]`` for a polarity -1, 0 or +1 (index -1 is the last item).
U8 = tuple(np.uint8(i) for i in range(256))
I8 = (np.int8(0), np.int8(1), np.int8(-1))


def as_u8(x: int) -> np.uint8:
    """``np.uint8(x)``, from :data:`U8` for an int 0..255 (outside it, ``np.uint8`` raises)."""
    return U8[x] if 0 <= x <= 255 else np.uint8(x)

class Signal:
    """One signal: polarity in {-1, 0, +1} and magnitude 0-255.

    Its value is ``polarity * magnitude / 255``. Instances are immutable and
    hashable. Arithmetic follows the reference crate bit for bit: float32
    math, truncation toward zero, saturation at 0 and 255.

    Parameters
    ----------
    polarity : int
        -1, 0 or +1; anything else raises :class:`ValidationError`.
    magnitude : int
        0 to 255.
    """

    __slots__ = ("_p", "_m")

    ZERO: "Signal"
    MAX_POSITIVE: "Signal"
    MAX_NEGATIVE: "Signal"

    def __init__(self, polarity: int, magnitude: int):
        try:
            p = int(polarity)
            m = int(magnitude)
        except (TypeError, ValueError):
            raise ValidationError(
                f"Signal needs integer polarity and magnitude, got {polarity!r}, {magnitude!r}"
            ) from None
        if p not in (-1, 0, 1) or p != polarity:
            raise ValidationError(f"polarity must be -1, 0 or +1, got {polarity!r}")
        if not 0 <= m <= 255 or m != magnitude:
            raise ValidationError(f"magnitude must be an integer in 0..255, got {magnitude!r}")
        object.__setattr__(self, "_p", p)
        object.__setattr__(self, "_m", m)

    @classmethod
    def from_checked(cls, p: int, m: int) -> "Signal":
        """A Signal from a polarity and magnitude already known to be valid (read from
        checked columns), skipping validation. Use ``Signal(p, m)`` for anything else."""
        s = object.__new__(cls)
        object.__setattr__(s, "_p", int(p))
        object.__setattr__(s, "_m", int(m))
        return s

    def __setattr__(self, name, value):
        raise AttributeError("Signal is immutable")

    @property
    def polarity(self) -> int:
        """-1, 0 or +1."""
        return self._p

    @property
    def magnitude(self) -> int:
        """0 to 255."""
        return self._m

    # constructors -----------------------------------------------------
    @classmethod
    def positive(cls, magnitude: int) -> "Signal":
        """Signal of polarity +1."""
        return cls(1, magnitude)

    @classmethod
    def negative(cls, magnitude: int) -> "Signal":
        """Signal of polarity -1."""
        return cls(-1, magnitude)

    @classmethod
    def from_signed(cls, value: float) -> "Signal":
        """Signal nearest below a signed float (float32 math, as the reference).

        Polarity is +1 above 0.01, -1 below -0.01, 0 between; magnitude is
        ``min(|value|, 1) * 255`` truncated.
        """
        p, m = _k.from_signed_scalar(np.float32(value))
        return cls.from_checked(p, m)

    # arithmetic -------------------------------------------------------
    def magnitude_f32(self) -> float:
        """Magnitude as float32 ``m / 255`` (returned as a Python float)."""
        return float(_k.magnitude_f32(U8[self._m]))

    def as_f32(self) -> float:
        """Signed value ``polarity * magnitude / 255`` in float32."""
        return float(_k.signed_f32(I8[self._p], U8[self._m]))

    value = property(as_f32, doc="Signed value (float32 precision).")

    def decayed(self, retention: float) -> "Signal":
        """Magnitude multiplied by ``retention`` (float32), truncated; 0 -> polarity 0."""
        p, m = _k.scaled_scalar(I8[self._p], U8[self._m], np.float32(retention))
        return Signal.from_checked(p, m)

    def scale(self, factor: float) -> "Signal":
        """Same rule as :meth:`decayed`, for any factor."""
        return self.decayed(factor)

    def add(self, other: "Signal") -> "Signal":
        """Sum of the signed values, back through :meth:`from_signed`."""
        if not isinstance(other, Signal):
            raise ValidationError(f"Signal.add needs a Signal, got {type(other).__name__}")
        p, m = _k.add_scalar(I8[self._p], U8[self._m], I8[other._p], U8[other._m])
        return Signal.from_checked(p, m)

    __add__ = add

    def is_active(self) -> bool:
        """True when polarity is non-zero and magnitude is above zero."""
        return self._p != 0 and self._m > 0

    # conversions and protocol -----------------------------------------
    def to_tuple(self) -> Tuple[int, int]:
        """``(polarity, magnitude)``."""
        return (self._p, self._m)

    def to_numpy(self) -> np.void:
        """As one element of :data:`SIGNAL`."""
        return np.array([(self._p, self._m)], dtype=SIGNAL)[0]

    @classmethod
    def coerce(cls, obj: Any, what: str = "signal") -> "Signal":
        """Signal from a Signal, a ``(polarity, magnitude)`` pair or a SIGNAL element."""
        if isinstance(obj, Signal):
            return obj
        if isinstance(obj, np.void) and obj.dtype == SIGNAL:
            return cls(int(obj["polarity"]), int(obj["magnitude"]))
        if isinstance(obj, (tuple, list)) and len(obj) == 2:
            return cls(obj[0], obj[1])
        raise ValidationError(
            f"{what} must be a Signal or a (polarity, magnitude) pair, got {obj!r}"
        )

    def __eq__(self, other):
        if isinstance(other, Signal):
            return self._p == other._p and self._m == other._m
        return NotImplemented

    def __hash__(self):
        return hash((self._p, self._m))

    def __iter__(self):
        yield self._p
        yield self._m

    def __repr__(self) -> str:
        return f"Signal({self._p:+d}, {self._m})"

    def __reduce__(self):
        return (Signal, (self._p, self._m))


Signal.ZERO = Signal.from_checked(0, 0)
Signal.MAX_POSITIVE = Signal.from_checked(1, 255)
Signal.MAX_NEGATIVE = Signal.from_checked(-1, 255)


def validate_polarity(vec: np.ndarray, what: str = "value") -> None:
    """Raise :class:`ValidationError` if any polarity of a SIGNAL array is not -1, 0, 1."""
    pol = vec["polarity"]
    if pol.size and (pol.min() < -1 or pol.max() > 1):
        bad = int(pol[(pol < -1) | (pol > 1)][0])
        raise ValidationError(f"{what}: polarity must be -1, 0 or +1, found {bad}")


def signals_from_floats(x: Any) -> np.ndarray:
    """SIGNAL vector from signed floats (``Signal.from_signed`` element-wise).

    Raises :class:`ValidationError` on NaN or infinity, or if ``x`` is not 1-D.
    """
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiu":
        raise ValidationError(f"expected a float array, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float32) if arr.dtype != np.float32 else np.ascontiguousarray(arr)
    if arr.ndim != 1:
        raise ValidationError(f"expected a 1-D array, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValidationError("float array contains NaN or infinity")
    out = np.empty(arr.shape[0], np.uint16)
    _k.from_signed_packed(arr, out)
    return unpacked_signals(out)


def signals_to_floats(vec: Any) -> np.ndarray:
    """Signed float32 values of a signal vector."""
    v = as_signal_vector(vec)
    out = np.empty(v.shape[0], dtype=np.float32)
    _k.to_signed_packed(packed_signals(v), out)
    return out


def packed_signals(a: np.ndarray) -> np.ndarray:
    """A SIGNAL vector as uint16, one per signal: polarity byte low, magnitude byte high
    (the layout the ``*_packed`` kernels read). A view of the array where that is its
    memory layout (little-endian, contiguous), else a copy."""
    if _LITTLE_ENDIAN:
        return np.ascontiguousarray(a).view(np.uint16)
    return (a["magnitude"].astype(np.uint16) << 8) | a["polarity"].view(np.uint8).astype(np.uint16)


def unpacked_signals(p: np.ndarray) -> np.ndarray:
    """Inverse of :func:`packed_signals`: a SIGNAL vector (a view of ``p``'s memory where
    the layouts agree, else a copy)."""
    if _LITTLE_ENDIAN:
        return p.view(SIGNAL)
    out = np.empty(p.shape[0], SIGNAL)
    out["polarity"] = (p & 0xFF).astype(np.uint8).view(np.int8)
    out["magnitude"] = (p >> 8).astype(np.uint8)
    return out


_LITTLE_ENDIAN = sys.byteorder == "little"


def signal_vector(pairs: Iterable) -> np.ndarray:
    """SIGNAL vector from Signals or ``(polarity, magnitude)`` pairs."""
    items = [Signal.coerce(p, "vector element").to_tuple() for p in pairs]
    return np.array(items, dtype=SIGNAL).reshape(-1)


def as_signal_vector(obj: Any, what: str = "value") -> np.ndarray:
    """A read-only, contiguous SIGNAL vector from ``obj`` (copied).

    Accepts a SIGNAL array, a float array (converted with ``from_signed``),
    or a sequence of Signals / ``(polarity, magnitude)`` pairs. Anything else,
    a polarity outside {-1, 0, 1}, or NaN/inf raises :class:`ValidationError`.
    """
    if isinstance(obj, np.ndarray):
        if obj.dtype == SIGNAL:
            if obj.ndim != 1:
                raise ValidationError(f"{what} must be a 1-D signal vector, got shape {obj.shape}")
            out = copy_signals(obj)
            validate_polarity(out, what)
        elif obj.dtype.kind == "f":
            try:
                out = signals_from_floats(obj)
            except ValidationError as e:
                raise ValidationError(f"{what}: {e}") from None
        else:
            raise ValidationError(
                f"{what} must be a SIGNAL vector or a float array, got dtype {obj.dtype}"
            )
    elif isinstance(obj, (list, tuple)):
        if all(isinstance(v, float) for v in obj) and obj:
            return as_signal_vector(np.asarray(obj, dtype=np.float64), what)
        try:
            out = signal_vector(obj)
        except ValidationError as e:
            raise ValidationError(f"{what}: {e}") from None
    else:
        raise ValidationError(
            f"{what} must be a SIGNAL vector, a float array or a list of Signals, "
            f"got {type(obj).__name__}"
        )
    out.flags.writeable = False
    return out
