"""Ternary weights: BitNet-style {-1, 0, +1} values, 2-bit packed storage,
add/subtract-only layers and learning by discrete state transitions.

* :class:`TernaryWeight` -- one weight (an ``IntEnum``: ``NEG``, ``ZERO``, ``POS``).
* :class:`PackedTernary` -- a vector of weights, four per byte (16x smaller
  than float32), with the reference crate's bit layout: weight ``i`` sits in
  bits ``2*(i % 4)`` and ``2*(i % 4) + 1`` of byte ``i // 4``; ``00`` is 0,
  ``01`` is +1, ``10`` is -1 (``11`` is reserved and reads as 0).
* :class:`TernaryLayer` -- a ``rows x cols`` matrix of packed rows with one
  float32 scale per row; ``forward`` and ``forward_batch`` use additions and
  subtractions of the inputs only.
* Ternary plasticity -- :func:`apply_ternary_update` (per update policy),
  :func:`apply_ternary_stdp`, :func:`ternary_majority_vote`,
  :func:`decay_toward_zero`, :func:`should_prune_ternary`, and ``*_array``
  versions that run one kernel over whole arrays of weights.

Quantization, thresholds and transitions follow the reference crate
(thermogram-rs 1.0) exactly, in float32. Arrays of weights are int8 arrays
holding -1, 0 and +1.
"""
from __future__ import annotations

import enum
import html
from typing import Any, Dict, Iterable, Iterator, Mapping, Optional, Tuple, Union

import numpy as np

from .errors import ThermogramError, ValidationError
from .kernels import ternary as _k
from .signal import Signal

__all__ = [
    "TernaryWeight", "PackedTernary", "TernaryLayer", "WeightIndexError",
    "UPDATE_POLICY_CODES",
    "apply_ternary_update", "apply_ternary_stdp", "ternary_majority_vote",
    "decay_toward_zero", "should_prune_ternary",
    "apply_ternary_update_array", "apply_ternary_stdp_array", "ternary_majority_vote_array",
    "decay_toward_zero_array", "should_prune_ternary_array",
    "strengthen_array", "weaken_array", "flip_array",
]

UPDATE_POLICY_CODES: Dict[str, int] = {
    "STDP": _k.POLICY_STDP,
    "Replace": _k.POLICY_REPLACE,
    "EMA": _k.POLICY_EMA,
    "Bayesian": _k.POLICY_BAYESIAN,
    "WTA": _k.POLICY_WTA,
}
"""Integer codes of the update policies accepted as ``policy``."""

ARROW_KIND = b"ternary_layer"
ARROW_VERSION = b"1"
_ARROW_ENCODING = b"2-bit codes, 4 weights per byte, weight i at bits 2*(i%4): 00=0 01=+1 10=-1"

_TABLE_BUDGET = 16 * 1024 * 1024
"""Bytes of pair tables ``forward_batch`` builds at a time (sets the chunk of inputs)."""
_BATCH_CHUNK_MAX = 64
_BATCH_MIN = 28
"""Below this many inputs ``forward_batch`` runs ``forward`` per input (same results)."""


class WeightIndexError(ThermogramError, IndexError):
    """A weight index (or row/column) is outside the vector or layer."""


# ----------------------------------------------------------------------------- helpers


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


def _weight(value: Any, what: str = "weight") -> "TernaryWeight":
    """A :class:`TernaryWeight` from a TernaryWeight or an integer -1, 0, +1."""
    if isinstance(value, TernaryWeight):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        v = int(value)
        if -1 <= v <= 1:
            return TernaryWeight(v)
    raise ValidationError(f"{what} must be -1, 0, +1 or a TernaryWeight, got {value!r}")


def _asarray(obj: Any, what: str) -> np.ndarray:
    try:
        return np.asarray(obj)
    except (ValueError, TypeError) as e:  # ragged nested sequences and the like
        raise ValidationError(f"{what} is not a rectangular array: {e}") from None


def _weights_array(obj: Any, what: str = "weights", copy: bool = True) -> np.ndarray:
    """A C-contiguous int8 array (any shape) of values in {-1, 0, 1}.

    Copied unless ``copy`` is False and ``obj`` already is such an array.
    """
    if isinstance(obj, PackedTernary):
        return obj.to_array()
    if isinstance(obj, TernaryWeight):
        return np.array(int(obj), dtype=np.int8)
    arr = _asarray(obj, what)
    if arr.size == 0 and arr.dtype.kind in "fiuO":
        return np.zeros(arr.shape, np.int8)
    if arr.dtype == object:
        try:
            arr = np.array([int(_weight(v, what + " element")) for v in arr.ravel()],
                           dtype=np.int8).reshape(arr.shape)
        except TypeError:
            raise ValidationError(f"{what} must be an array of -1, 0, +1") from None
    if arr.dtype.kind == "b" or arr.dtype.kind not in "iu":
        hint = " (use from_f32 / from_f32_adaptive to quantize floats)" if arr.dtype.kind == "f" else ""
        raise ValidationError(f"{what} must be an integer array of -1, 0, +1, got dtype {arr.dtype}{hint}")
    if arr.dtype == np.int8:
        flat = np.ascontiguousarray(arr).reshape(-1)
        invalid = _k.count_invalid(flat) > 0
    else:
        invalid = bool(((arr < -1) | (arr > 1)).any()) if arr.dtype.kind == "i" else bool((arr > 1).any())
    if invalid:
        bad = (arr < -1) | (arr > 1) if arr.dtype.kind == "i" else (arr > 1)
        pos = np.unravel_index(int(np.argmax(bad)), arr.shape)
        raise ValidationError(
            f"{what} must hold only -1, 0 and +1; found {int(arr[pos])} at index {tuple(int(p) for p in pos)}"
        )
    if not copy and arr.dtype == np.int8 and arr.flags.c_contiguous:
        return arr
    return np.array(arr, dtype=np.int8, order="C", copy=True)


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


# ----------------------------------------------------------------------------- TernaryWeight


class TernaryWeight(enum.IntEnum):
    """One ternary weight: ``NEG`` (-1), ``ZERO`` (0) or ``POS`` (+1).

    An ``IntEnum``, so it compares and computes like the integers -1, 0, 1.
    ``TernaryWeight(2)`` raises :class:`~thermogram.errors.ValidationError`.

    Examples
    --------
    >>> TernaryWeight.ZERO.strengthen()
    <TernaryWeight.POS: 1>
    >>> TernaryWeight.from_f32(-0.8, 0.5)
    <TernaryWeight.NEG: -1>
    """

    NEG = -1
    ZERO = 0
    POS = 1

    @classmethod
    def _missing_(cls, value):
        raise ValidationError(f"a ternary weight must be -1, 0 or +1, got {value!r}")

    def strengthen(self) -> "TernaryWeight":
        """One step up: ``NEG -> ZERO -> POS``; ``POS`` stays."""
        return TernaryWeight(min(int(self) + 1, 1))

    def weaken(self) -> "TernaryWeight":
        """One step down: ``POS -> ZERO -> NEG``; ``NEG`` stays."""
        return TernaryWeight(max(int(self) - 1, -1))

    def flip(self) -> "TernaryWeight":
        """Sign swap: ``POS <-> NEG``; ``ZERO`` stays."""
        return TernaryWeight(-int(self))

    def is_active(self) -> bool:
        """True for ``POS`` and ``NEG`` (a non-zero connection)."""
        return self is not TernaryWeight.ZERO

    def to_f32(self) -> float:
        """-1.0, 0.0 or 1.0."""
        return float(int(self))

    @classmethod
    def from_f32(cls, value: float, threshold: float) -> "TernaryWeight":
        """Quantize a float with a threshold, compared in float32 as the reference.

        ``value >= threshold`` gives ``POS``, ``value <= -threshold`` gives
        ``NEG``, anything between gives ``ZERO``.

        Raises
        ------
        ValidationError
            If ``value`` or ``threshold`` is NaN or not a number.
        """
        v = _f32(value, "value")
        t = _f32(threshold, "threshold")
        if v >= t:
            return cls.POS
        if v <= -t:
            return cls.NEG
        return cls.ZERO

    def to_signal(self) -> Signal:
        """As a :class:`~thermogram.signal.Signal`: ``POS`` -> (+1, 255), ``NEG`` -> (-1, 255), ``ZERO`` -> (0, 0)."""
        if self is TernaryWeight.POS:
            return Signal.MAX_POSITIVE
        if self is TernaryWeight.NEG:
            return Signal.MAX_NEGATIVE
        return Signal.ZERO

    @classmethod
    def from_signal(cls, signal: Signal) -> "TernaryWeight":
        """The polarity of an active signal; ``ZERO`` for an inactive one."""
        s = Signal.coerce(signal)
        return cls(s.polarity) if s.is_active() else cls.ZERO



def _weight_repr_html(self: TernaryWeight) -> str:
    return f"<code>TernaryWeight.{self.name} ({int(self):+d})</code>"


# Enum reserves _sunder_ names inside the class body; attach the notebook repr afterwards.
TernaryWeight._repr_html_ = _weight_repr_html


# ----------------------------------------------------------------------------- PackedTernary


class PackedTernary:
    """A vector of ternary weights packed four per byte.

    Byte ``i // 4`` holds weight ``i`` in bits ``2*(i % 4)`` (low bit) and
    ``2*(i % 4) + 1``: ``00`` zero, ``01`` +1, ``10`` -1 -- the reference
    crate's layout, so :meth:`bytes` equals its packing of the same weights.
    Bits after the last weight are always zero.

    Parameters
    ----------
    weights : array_like of int or TernaryWeight, optional
        1-D sequence of -1, 0, +1 (any integer dtype). Empty by default.

    Raises
    ------
    ValidationError
        If ``weights`` is not 1-D or holds anything but -1, 0, +1.

    See Also
    --------
    PackedTernary.from_f32, PackedTernary.from_f32_adaptive, PackedTernary.from_bytes

    Examples
    --------
    >>> p = PackedTernary([1, 0, -1, 1, 0])
    >>> p.bytes()
    b'a\\x00'
    >>> p.dot([1.0, 2.0, 3.0, 4.0, 5.0])
    2.0
    """

    __slots__ = ("_data", "_len")

    def __init__(self, weights: Union[Iterable[int], np.ndarray] = ()):
        src = weights if isinstance(weights, (np.ndarray, PackedTernary)) else list(weights)
        w = _weights_array(src, "weights", copy=False)
        if w.ndim != 1:
            raise ValidationError(f"weights must be 1-D, got shape {w.shape}")
        self._data = np.empty(_nbytes(w.shape[0]), np.uint8)
        _k.pack_ternary(w, self._data)
        self._len = int(w.shape[0])

    @classmethod
    def _wrap(cls, data: np.ndarray, n: int) -> "PackedTernary":
        obj = object.__new__(cls)
        obj._data = data
        obj._len = int(n)
        return obj

    # constructors -------------------------------------------------------------
    @classmethod
    def zeros(cls, n: int) -> "PackedTernary":
        """``n`` zero weights."""
        n = _length(n, "n")
        return cls._wrap(np.zeros(_nbytes(n), np.uint8), n)

    @classmethod
    def from_array(cls, weights: Any) -> "PackedTernary":
        """Same as the constructor (an int array of -1, 0, +1)."""
        return cls(np.asarray(weights) if not isinstance(weights, PackedTernary) else weights)

    @classmethod
    def from_f32(cls, weights: Any, threshold: float) -> "PackedTernary":
        """Quantize floats with a fixed threshold (compared in float32).

        ``w >= threshold`` -> +1, ``w <= -threshold`` -> -1, else 0.

        Raises
        ------
        ValidationError
            If ``weights`` is not 1-D or holds NaN, or ``threshold`` is NaN.
        """
        w = _float_array(weights, "weights", 1, finite=False)
        t = _f32(threshold, "threshold")
        data = np.empty(_nbytes(w.shape[0]), np.uint8)
        _k.quantize_pack(w, t, data)
        return cls._wrap(data, w.shape[0])

    @classmethod
    def from_f32_adaptive(cls, weights: Any) -> "PackedTernary":
        """Quantize floats at :meth:`compute_adaptive_threshold` of the same weights."""
        w = _float_array(weights, "weights", 1, finite=True)
        data = np.empty(_nbytes(w.shape[0]), np.uint8)
        _k.quantize_pack(w, _k.adaptive_threshold(w), data)
        return cls._wrap(data, w.shape[0])

    @staticmethod
    def compute_adaptive_threshold(weights: Any) -> float:
        """Mean ``|w|`` of the weights with ``|w| > 1e-6`` (0.5 when there are none).

        Summed left to right in float32 and divided by the count in float32,
        bit for bit as the reference. Returned as a Python float.

        Raises
        ------
        ValidationError
            If ``weights`` is not 1-D or holds NaN or infinity.
        """
        w = _float_array(weights, "weights", 1, finite=True)
        return float(_k.adaptive_threshold(w))

    @classmethod
    def from_bytes(cls, data: Union[bytes, bytearray, memoryview, np.ndarray], length: int,
                   *, strict: bool = False) -> "PackedTernary":
        """Weights from packed bytes (the output of :meth:`bytes`).

        Parameters
        ----------
        data : bytes-like or uint8 array
            Exactly ``ceil(length / 4)`` bytes.
        length : int
            Number of weights.
        strict : bool, default False
            Reject the reserved code ``11`` and non-zero bits after the last
            weight. When False they are read as the reference reads them
            (``11`` is zero, trailing bits are ignored) and stored as zeros.

        Raises
        ------
        ValidationError
            If the byte count is not ``ceil(length / 4)``, or (strict) the
            bytes are not canonical.
        """
        n = _length(length, "length")
        if isinstance(data, np.ndarray):
            if data.dtype != np.uint8 or data.ndim != 1:
                raise ValidationError(f"data must be a 1-D uint8 array, got {data.dtype} {data.shape}")
            buf = np.array(data, dtype=np.uint8, copy=True)
        else:
            try:
                buf = np.frombuffer(memoryview(data).tobytes(), dtype=np.uint8).copy()
            except TypeError:
                raise ValidationError(f"data must be bytes-like, got {type(data).__name__}") from None
        want = _nbytes(n)
        if buf.shape[0] != want:
            raise ValidationError(
                f"{n} weights need {want} bytes (4 per byte), got {buf.shape[0]} bytes"
            )
        changed = _k.canonicalize(buf, n)
        if strict and changed:
            raise ValidationError(
                f"data holds {changed} invalid 2-bit codes (reserved 0b11, or bits set after weight {n})"
            )
        return cls._wrap(buf, n)

    # access --------------------------------------------------------------------
    def get(self, i: int) -> TernaryWeight:
        """Weight at index ``i`` (negative counts from the end).

        Raises
        ------
        WeightIndexError
            If ``i`` is out of range (the reference would return ``ZERO``).
        """
        return TernaryWeight(_get_code(self._data, _index(i, self._len)))

    def set(self, i: int, value: Union[TernaryWeight, int]) -> None:
        """Set weight ``i`` to ``value`` (-1, 0, +1 or a TernaryWeight)."""
        j = _index(i, self._len)
        _set_code(self._data, j, int(_weight(value, "value")))

    def __getitem__(self, i: Union[int, slice]) -> Union[TernaryWeight, "PackedTernary"]:
        if isinstance(i, slice):
            return PackedTernary(self.to_array()[i])
        return self.get(i)

    def __setitem__(self, i: int, value: Union[TernaryWeight, int]) -> None:
        self.set(i, value)

    def __len__(self) -> int:
        return self._len

    def len(self) -> int:
        """Number of weights (same as ``len(p)``)."""
        return self._len

    def is_empty(self) -> bool:
        """True when there are no weights."""
        return self._len == 0

    def __iter__(self) -> Iterator[TernaryWeight]:
        for w in self.to_array():
            yield TernaryWeight(int(w))

    @property
    def data(self) -> np.ndarray:
        """The packed bytes as a read-only uint8 view."""
        return _readonly(self._data)

    def bytes(self) -> bytes:
        """The packed bytes, ``ceil(len / 4)`` of them."""
        return self._data.tobytes()

    __bytes__ = bytes

    # conversions ----------------------------------------------------------------
    def to_array(self) -> np.ndarray:
        """The weights as an int8 array of -1, 0, +1."""
        out = np.empty(self._len, np.int8)
        _k.unpack_ternary(self._data, self._len, out)
        return out

    def to_list(self) -> list:
        """The weights as a list of :class:`TernaryWeight`."""
        return list(self)

    def to_float(self) -> np.ndarray:
        """The weights as float32 -1.0, 0.0, +1.0."""
        out = np.empty(self._len, np.float32)
        _k.unpack_ternary_f32(self._data, self._len, out)
        return out

    def copy(self) -> "PackedTernary":
        """An independent copy."""
        return PackedTernary._wrap(self._data.copy(), self._len)

    # statistics -----------------------------------------------------------------
    def count_active(self) -> int:
        """Number of non-zero weights."""
        return int(_k.count_active(self._data, self._len))

    def sparsity(self) -> float:
        """Fraction of zero weights, ``1 - active / len`` in float32 (1.0 when empty)."""
        if self._len == 0:
            return 1.0
        return float(np.float32(1.0) - np.float32(self.count_active()) / np.float32(self._len))

    def memory_bytes(self) -> int:
        """Bytes of packed storage."""
        return int(self._data.shape[0])

    def compression_ratio(self) -> float:
        """float32 bytes over packed bytes (16.0 for a multiple of 4 weights; 1.0 when empty)."""
        if self._len == 0:
            return 1.0
        return float(np.float32(self._len * 4) / np.float32(self._data.shape[0]))

    # arithmetic -----------------------------------------------------------------
    def dot(self, x: Any) -> float:
        """Sum of ``x`` where the weight is +1 minus ``x`` where it is -1.

        Computed left to right in float32 with additions and subtractions
        only, bit for bit as the reference. ``x`` must have ``len(self)``
        elements (the reference silently truncates to the shorter length).
        """
        v = _input_array(x, "x", self._len, 1)
        return float(_k.dot_packed(self._data, self._len, v))

    def strengthen(self, i: int) -> None:
        """Step weight ``i`` up (``-1 -> 0 -> +1``)."""
        j = _index(i, self._len)
        _set_code(self._data, j, min(_get_code(self._data, j) + 1, 1))

    def weaken(self, i: int) -> None:
        """Step weight ``i`` down (``+1 -> 0 -> -1``)."""
        j = _index(i, self._len)
        _set_code(self._data, j, max(_get_code(self._data, j) - 1, -1))

    # protocol --------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if isinstance(other, PackedTernary):
            return self._len == other._len and np.array_equal(self._data, other._data)
        return NotImplemented

    __hash__ = None  # mutable

    def __reduce__(self):
        return (PackedTernary.from_bytes, (self.bytes(), self._len))

    def __repr__(self) -> str:
        return (f"PackedTernary({self._len} weights, {self.memory_bytes()} bytes, "
                f"{self.sparsity() * 100:.1f}% sparse)")

    def _repr_html_(self) -> str:
        head = "".join(_sign(int(w)) for w in self.to_array()[:64])
        more = "…" if self._len > 64 else ""
        return (f"<div><b>PackedTernary</b> {self._len} weights, {self.memory_bytes()} bytes, "
                f"{self.count_active()} active ({self.sparsity() * 100:.1f}% sparse)"
                f"<br><code>{html.escape(head)}{more}</code></div>")


# ----------------------------------------------------------------------------- TernaryLayer


class TernaryLayer:
    """A ``rows x cols`` layer of ternary weights with one float32 scale per row.

    Rows are packed row-major, each in ``ceil(cols / 4)`` bytes with the
    :class:`PackedTernary` layout (so every row is padded to a whole byte,
    as the reference stores one packed vector per row). The output of
    :meth:`forward` is ``scale[r] * sum_c w[r, c] * x[c]``, computed by
    adding and subtracting inputs -- never multiplying them by weights.

    Parameters
    ----------
    packed : array_like of uint8, shape (rows, ceil(cols / 4))
        Packed rows (copied). Reserved ``11`` codes and bits after column
        ``cols`` are stored as zeros.
    cols : int
        Number of inputs.
    scales : array_like of float, shape (rows,), optional
        Per-row scale (default 1.0). Must be finite.

    See Also
    --------
    TernaryLayer.from_f32_matrix : quantize a float matrix as the reference does.
    TernaryLayer.from_weights : build from an int matrix of -1, 0, +1.

    Examples
    --------
    >>> layer = TernaryLayer.from_weights([[1, 0, -1], [-1, 1, 0]])
    >>> layer.forward([1.0, 2.0, 3.0])
    array([-2.,  1.], dtype=float32)
    """

    __slots__ = ("_packed", "_scales", "_cols")

    def __init__(self, packed: Any, cols: int, scales: Optional[Any] = None):
        cols = _length(cols, "cols")
        p = np.asarray(packed)
        if p.dtype != np.uint8:
            raise ValidationError(f"packed must be a uint8 array, got dtype {p.dtype}")
        nb = _nbytes(cols)
        if p.ndim != 2 or p.shape[1] != nb:
            raise ValidationError(
                f"packed must have shape (rows, {nb}) for {cols} columns, got {p.shape}"
            )
        rows = p.shape[0]
        p = np.array(p, dtype=np.uint8, order="C", copy=True)
        for r in range(rows):
            _k.canonicalize(p[r], cols)
        if scales is None:
            s = np.ones(rows, np.float32)
        else:
            s = _float_array(scales, "scales", 1, finite=True)
            if s.shape[0] != rows:
                raise ValidationError(f"scales must have {rows} elements (one per row), got {s.shape[0]}")
            s = s.copy()
        self._packed = p
        self._scales = s
        self._cols = cols

    @classmethod
    def _wrap(cls, packed: np.ndarray, cols: int, scales: np.ndarray) -> "TernaryLayer":
        obj = object.__new__(cls)
        obj._packed = packed
        obj._cols = int(cols)
        obj._scales = scales
        return obj

    # constructors -------------------------------------------------------------
    @classmethod
    def zeros(cls, rows: int, cols: int) -> "TernaryLayer":
        """A layer of zero weights and unit scales."""
        rows = _length(rows, "rows")
        cols = _length(cols, "cols")
        return cls._wrap(np.zeros((rows, _nbytes(cols)), np.uint8), cols, np.ones(rows, np.float32))

    @classmethod
    def from_weights(cls, weights: Any, scales: Optional[Any] = None) -> "TernaryLayer":
        """A layer from a 2-D int matrix of -1, 0, +1 (``scales`` default 1.0)."""
        w = _weights_array(weights, "weights")
        if w.ndim != 2:
            raise ValidationError(f"weights must be a 2-D matrix, got shape {w.shape}")
        rows, cols = w.shape
        packed = np.empty((rows, _nbytes(cols)), np.uint8)
        for r in range(rows):
            _k.pack_ternary(w[r], packed[r])
        layer = cls._wrap(packed, cols, np.ones(rows, np.float32))
        if scales is not None:
            s = _float_array(scales, "scales", 1, finite=True)
            if s.shape[0] != rows:
                raise ValidationError(f"scales must have {rows} elements (one per row), got {s.shape[0]}")
            layer._scales = s.copy()
        return layer

    @classmethod
    def from_f32_matrix(cls, weights: Any) -> "TernaryLayer":
        """Quantize a float matrix ``(rows, cols)`` as the reference does.

        Per row: the scale is ``max |w|`` (1.0 if that is not above 1e-6),
        the row is divided by it, and the result is thresholded at its
        adaptive threshold (:meth:`PackedTernary.compute_adaptive_threshold`).
        All in float32; float64 input is rounded to float32 first.

        Raises
        ------
        ValidationError
            If ``weights`` is not 2-D or holds NaN or infinity.
        """
        w = _float_array(weights, "weights", 2, finite=True)
        rows, cols = w.shape
        packed = np.empty((rows, _nbytes(cols)), np.uint8)
        scales = np.empty(rows, np.float32)
        _k.quantize_rows(w, np.empty(cols, np.float32), packed, scales)
        return cls._wrap(packed, cols, scales)

    # shape and storage ----------------------------------------------------------
    @property
    def rows(self) -> int:
        """Number of outputs."""
        return int(self._packed.shape[0])

    @property
    def cols(self) -> int:
        """Number of inputs."""
        return self._cols

    @property
    def shape(self) -> Tuple[int, int]:
        """``(rows, cols)``."""
        return (self.rows, self._cols)

    def dims(self) -> Tuple[int, int]:
        """``(output_dim, input_dim)`` = ``(rows, cols)``, as the reference."""
        return self.shape

    @property
    def packed(self) -> np.ndarray:
        """Packed rows, read-only uint8 view of shape ``(rows, ceil(cols / 4))``."""
        return _readonly(self._packed)

    @property
    def scales(self) -> np.ndarray:
        """Per-row scales, read-only float32 view."""
        return _readonly(self._scales)

    def memory_bytes(self) -> int:
        """Packed weight bytes plus 4 bytes per row scale (the reference's count)."""
        return int(self._packed.size + 4 * self._scales.shape[0])

    # weights ------------------------------------------------------------------------
    def get_weight(self, row: int, col: int) -> TernaryWeight:
        """Weight at ``[row, col]``.

        Raises
        ------
        WeightIndexError
            If ``row`` or ``col`` is out of range (the reference returns ``ZERO``).
        """
        r = _index(row, self.rows, "row")
        c = _index(col, self._cols, "col")
        return TernaryWeight(_get_code(self._packed[r], c))

    def set_weight(self, row: int, col: int, value: Union[TernaryWeight, int]) -> None:
        """Set the weight at ``[row, col]`` (raises instead of ignoring bad indices)."""
        r = _index(row, self.rows, "row")
        c = _index(col, self._cols, "col")
        _set_code(self._packed[r], c, int(_weight(value, "value")))

    def row(self, r: int) -> PackedTernary:
        """Row ``r`` as an independent :class:`PackedTernary`."""
        i = _index(r, self.rows, "row")
        return PackedTernary._wrap(self._packed[i].copy(), self._cols)

    def to_array(self) -> np.ndarray:
        """All weights as an int8 ``(rows, cols)`` matrix of -1, 0, +1."""
        out = np.empty((self.rows, self._cols), np.int8)
        for r in range(self.rows):
            _k.unpack_ternary(self._packed[r], self._cols, out[r])
        return out

    def copy(self) -> "TernaryLayer":
        """An independent copy."""
        return TernaryLayer._wrap(self._packed.copy(), self._cols, self._scales.copy())

    # inference ------------------------------------------------------------------------
    def forward(self, x: Any, out: Optional[np.ndarray] = None) -> np.ndarray:
        """``scales * (W @ x)`` by additions and subtractions of ``x``.

        Each row is summed in a fixed order (32 interleaved partial sums,
        see ``thermogram.kernels.ternary.layer_forward``) that is the same
        on every machine; it agrees with the reference's left-to-right sum
        to float32 rounding, and :meth:`PackedTernary.dot` gives that exact
        left-to-right sum. Inputs under zero weights are skipped, so NaN or
        infinity there does not reach the output.

        Parameters
        ----------
        x : array_like, shape (cols,)
            Input (converted to float32).
        out : ndarray of float32, shape (rows,), optional
            Where to write the result.

        Returns
        -------
        ndarray of float32, shape (rows,)
        """
        v = _input_array(x, "x", self._cols, 1)
        out = self._out(out, (self.rows,))
        _k.layer_forward(self._packed, self._cols, v, self._scales, out)
        return out

    def forward_batch(self, x: Any, out: Optional[np.ndarray] = None) -> np.ndarray:
        """:meth:`forward` of each row of ``x``; row ``i`` of the result equals
        ``forward(x[i])`` bit for bit.

        From 28 inputs on, weights are decoded once per chunk of up to 64
        inputs: the signed sums of each column pair are tabulated for the
        inputs, so every packed byte costs two table reads and two additions
        per input. Smaller batches run :meth:`forward` per input, which is
        faster there. Both paths give the same bits.

        Parameters
        ----------
        x : array_like, shape (batch, cols)
        out : ndarray of float32, shape (batch, rows), optional

        Returns
        -------
        ndarray of float32, shape (batch, rows)
        """
        v = _input_array(x, "x", self._cols, 2)
        batch = v.shape[0]
        out = self._out(out, (batch, self.rows))
        if batch < _BATCH_MIN or self.rows == 0:
            for i in range(batch):
                _k.layer_forward(self._packed, self._cols, v[i], self._scales, out[i])
            return out
        per_input = 128 * max(1, _nbytes(self._cols))
        chunk = int(max(1, min(_BATCH_CHUNK_MAX, _TABLE_BUDGET // per_input)))
        _k.layer_forward_batch(self._packed, self._cols, v, self._scales, chunk, out)
        return out

    @staticmethod
    def _out(out: Optional[np.ndarray], shape: Tuple[int, ...]) -> np.ndarray:
        if out is None:
            return np.empty(shape, np.float32)
        if not isinstance(out, np.ndarray) or out.dtype != np.float32 or out.shape != shape \
                or not out.flags.c_contiguous or not out.flags.writeable:
            raise ValidationError(f"out must be a writeable C-contiguous float32 array of shape {shape}")
        return out

    # storage --------------------------------------------------------------------------
    def to_arrays(self) -> Dict[str, np.ndarray]:
        """Plain arrays for a codec (copies).

        Returns
        -------
        dict
            ``"packed"``: uint8 ``(rows, ceil(cols / 4))``; ``"scales"``:
            float32 ``(rows,)``; ``"dims"``: uint64 ``[rows, cols]``.
        """
        return {
            "packed": self._packed.copy(),
            "scales": self._scales.copy(),
            "dims": np.array([self.rows, self._cols], dtype=np.uint64),
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, Any]) -> "TernaryLayer":
        """Inverse of :meth:`to_arrays` (every field validated).

        Raises
        ------
        ValidationError
            If a key is missing, or a shape, dtype or value is inconsistent.
        """
        if not isinstance(arrays, Mapping):
            raise ValidationError(f"arrays must be a mapping, got {type(arrays).__name__}")
        missing = [k for k in ("packed", "scales", "dims") if k not in arrays]
        if missing:
            raise ValidationError(f"arrays is missing {', '.join(missing)} (expected packed, scales, dims)")
        dims = np.asarray(arrays["dims"])
        if dims.shape != (2,) or dims.dtype.kind not in "iu":
            raise ValidationError(f"dims must be two integers [rows, cols], got {arrays['dims']!r}")
        rows, cols = (int(d) for d in dims)
        if rows < 0 or cols < 0:
            raise ValidationError(f"dims must be non-negative, got {[rows, cols]}")
        packed = np.asarray(arrays["packed"])
        if packed.ndim != 2 or packed.shape[0] != rows:
            raise ValidationError(f"packed must have {rows} rows, got shape {packed.shape}")
        return cls(packed, cols, arrays["scales"])

    def to_arrow(self):
        """A ``pyarrow.Table``: one row per output row.

        Columns ``packed`` (``fixed_size_binary(ceil(cols / 4))``, the packed
        row) and ``scale`` (float32); the schema metadata holds
        ``thermogram.kind`` = ``ternary_layer``, ``thermogram.version``,
        ``thermogram.rows``, ``thermogram.cols`` and the bit encoding.
        """
        import pyarrow as pa

        rows, cols = self.shape
        nb = _nbytes(cols)
        packed = pa.FixedSizeBinaryArray.from_buffers(
            pa.binary(nb), rows, [None, pa.py_buffer(self._packed.tobytes())])
        scales = pa.array(self._scales.copy(), type=pa.float32())
        schema = pa.schema(
            [pa.field("packed", pa.binary(nb), nullable=False),
             pa.field("scale", pa.float32(), nullable=False)],
            metadata={
                b"thermogram.kind": ARROW_KIND,
                b"thermogram.version": ARROW_VERSION,
                b"thermogram.rows": str(rows).encode(),
                b"thermogram.cols": str(cols).encode(),
                b"thermogram.encoding": _ARROW_ENCODING,
            })
        return pa.Table.from_arrays([packed, scales], schema=schema)

    @classmethod
    def from_arrow(cls, data) -> "TernaryLayer":
        """Inverse of :meth:`to_arrow`; accepts a ``pyarrow.Table`` or ``RecordBatch``.

        Raises
        ------
        ValidationError
            If the metadata, columns, types, lengths or values are not those
            of a ternary layer.
        """
        import pyarrow as pa

        if isinstance(data, pa.RecordBatch):
            data = pa.Table.from_batches([data])
        if not isinstance(data, pa.Table):
            raise ValidationError(f"expected a pyarrow Table or RecordBatch, got {type(data).__name__}")
        meta = data.schema.metadata or {}
        if meta.get(b"thermogram.kind") != ARROW_KIND:
            raise ValidationError("not a ternary layer table: schema metadata thermogram.kind "
                                  f"is {meta.get(b'thermogram.kind')!r}, expected {ARROW_KIND!r}")
        if meta.get(b"thermogram.version") != ARROW_VERSION:
            raise ValidationError(f"unsupported ternary layer table version {meta.get(b'thermogram.version')!r}")
        try:
            rows = int(meta[b"thermogram.rows"])
            cols = int(meta[b"thermogram.cols"])
        except (KeyError, ValueError):
            raise ValidationError("schema metadata needs integer thermogram.rows and thermogram.cols") from None
        if rows < 0 or cols < 0:
            raise ValidationError(f"rows and cols must be non-negative, got {rows}, {cols}")
        if data.num_rows != rows:
            raise ValidationError(f"table has {data.num_rows} rows, metadata says {rows}")
        for name in ("packed", "scale"):
            if name not in data.column_names:
                raise ValidationError(f"table has no {name!r} column (columns: {data.column_names})")
        nb = _nbytes(cols)
        col = data.column("packed").combine_chunks()
        if col.type != pa.binary(nb):
            raise ValidationError(f"column 'packed' must be fixed_size_binary({nb}) for {cols} columns, got {col.type}")
        if col.null_count:
            raise ValidationError("column 'packed' contains nulls")
        if rows and nb:
            buf = col.buffers()[1]
            packed = np.frombuffer(buf, dtype=np.uint8, count=rows * nb, offset=col.offset * nb)
            packed = packed.reshape(rows, nb)
        else:
            packed = np.zeros((rows, nb), np.uint8)
        sc = data.column("scale").combine_chunks()
        if not pa.types.is_floating(sc.type):
            raise ValidationError(f"column 'scale' must be floating point, got {sc.type}")
        if sc.null_count:
            raise ValidationError("column 'scale' contains nulls")
        scales = sc.to_numpy(zero_copy_only=False)
        return cls(packed, cols, scales)

    # protocol -----------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if isinstance(other, TernaryLayer):
            return (self._cols == other._cols and np.array_equal(self._packed, other._packed)
                    and np.array_equal(self._scales.view(np.uint32), other._scales.view(np.uint32)))
        return NotImplemented

    __hash__ = None  # mutable

    def __reduce__(self):
        return (TernaryLayer, (self._packed.copy(), self._cols, self._scales.copy()))

    def __repr__(self) -> str:
        return f"TernaryLayer({self.rows}x{self._cols}, {self.memory_bytes()} bytes)"

    def _repr_html_(self) -> str:
        rows, cols = self.shape
        n = rows * cols
        active = sum(int(_k.count_active(self._packed[r], cols)) for r in range(rows))
        f32 = 4 * n
        ratio = f"{f32 / self._packed.size:.1f}x smaller than float32" if self._packed.size else "empty"
        sparse = f"{100.0 * (1 - active / n):.1f}% zero" if n else "no weights"
        return (f"<div><b>TernaryLayer</b> {rows} x {cols}: {self.memory_bytes()} bytes "
                f"({ratio}), {active} active weights ({sparse})</div>")


# ----------------------------------------------------------------------------- plasticity


def _policy(policy: Any) -> int:
    if isinstance(policy, (bool, np.bool_)) or not isinstance(policy, (int, np.integer)):
        raise ValidationError(
            f"policy must be an integer code 0-4 (0 STDP, 1 Replace, 2 EMA, 3 Bayesian, 4 WTA), got {policy!r}"
        )
    p = int(policy)
    if not 0 <= p <= 4:
        raise ValidationError(
            f"policy must be 0 STDP, 1 Replace, 2 EMA, 3 Bayesian or 4 WTA, got {p}"
        )
    return p


def _lr_mag(value: Any) -> np.uint8:
    if isinstance(value, Signal):
        return np.uint8(value.magnitude)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) \
            or not 0 <= int(value) <= 255:
        raise ValidationError(f"learning_rate_magnitude must be an integer 0-255 (or a Signal), got {value!r}")
    return np.uint8(int(value))


def _flag(value: Any, what: str) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)) and int(value) in (0, 1):
        return bool(value)
    raise ValidationError(f"{what} must be a bool, got {value!r}")


def _i64(value: Any, what: str) -> np.int64:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValidationError(f"{what} must be an integer number of milliseconds, got {value!r}")
    v = int(value)
    if not -(1 << 63) <= v < (1 << 63):
        raise ValidationError(f"{what} must fit in a signed 64-bit integer, got {v}")
    return np.int64(v)


def apply_ternary_update(policy: int, learning_rate_magnitude: int, current: Union[TernaryWeight, int],
                         observed: Union[TernaryWeight, int], confidence: float) -> TernaryWeight:
    """New weight after an observation, by the reference's transition table.

    Parameters
    ----------
    policy : int
        0 STDP, 1 Replace, 2 EMA, 3 Bayesian, 4 WTA (an ``IntEnum`` works).
    learning_rate_magnitude : int
        0-255 (or a :class:`~thermogram.signal.Signal`, whose magnitude is used);
        only EMA reads it, comparing ``confidence > magnitude / 255``.
    current, observed : TernaryWeight or int
    confidence : float
        Compared in float32 with 0.7, 0.5, 0.3 (as the reference's ``f32``).

    Returns
    -------
    TernaryWeight
        STDP: agreeing observation strengthens above 0.7; disagreeing moves
        one step toward it above 0.5, else decays to zero. Replace, WTA:
        ``observed`` above 0.5. EMA: ``observed`` above the learning rate.
        Bayesian: ``observed`` above 0.7, zero above 0.3, else unchanged.

    Raises
    ------
    ValidationError
        Bad policy, learning rate or weight, or NaN confidence.
    """
    p = _policy(policy)
    lr = _lr_mag(learning_rate_magnitude)
    cur = _weight(current, "current")
    obs = _weight(observed, "observed")
    conf = _f32(confidence, "confidence")
    return TernaryWeight(int(_k.ternary_update(np.int64(p), lr, np.int8(cur), np.int8(obs), conf)))


def apply_ternary_stdp(weight: Union[TernaryWeight, int], pre_fired: bool, post_fired: bool,
                       dt_ms: int) -> TernaryWeight:
    """Spike-timing transition of one weight.

    When both neurons fired: ``dt_ms > 0`` (pre before post) strengthens,
    ``dt_ms < 0`` weakens, ``dt_ms == 0`` lifts ``NEG`` to ``ZERO``.
    Otherwise the weight is unchanged.
    """
    w = _weight(weight, "weight")
    pre = _flag(pre_fired, "pre_fired")
    post = _flag(post_fired, "post_fired")
    dt = _i64(dt_ms, "dt_ms")
    return TernaryWeight(int(_k.ternary_stdp(np.int8(w), pre, post, dt)))


def ternary_majority_vote(weights: Iterable[Union[TernaryWeight, int]]) -> TernaryWeight:
    """``POS`` if +1 outnumbers -1, ``NEG`` if -1 outnumbers +1, else ``ZERO`` (also when empty)."""
    if not isinstance(weights, (np.ndarray, PackedTernary)):
        weights = list(weights)
    w = _weights_array(weights, "weights").ravel()
    return TernaryWeight(int(_k.majority_vote(w)))


def decay_toward_zero(weight: Union[TernaryWeight, int]) -> TernaryWeight:
    """The reference's decay of a ternary weight: always ``ZERO``."""
    _weight(weight, "weight")
    return TernaryWeight.ZERO


def should_prune_ternary(weight: Union[TernaryWeight, int]) -> bool:
    """Only ``ZERO`` weights (inactive connections) are prunable."""
    return _weight(weight, "weight") is TernaryWeight.ZERO


# vectorised ------------------------------------------------------------------------


def _elementwise(fn, weights: Any) -> np.ndarray:
    w = _weights_array(weights, "weights")
    flat = w.reshape(-1)
    out = np.empty_like(flat)
    fn(flat, out)
    return out.reshape(w.shape)


def strengthen_array(weights: Any) -> np.ndarray:
    """Element-wise :meth:`TernaryWeight.strengthen` of an int array (any shape)."""
    return _elementwise(_k.strengthen_vec, weights)


def weaken_array(weights: Any) -> np.ndarray:
    """Element-wise :meth:`TernaryWeight.weaken` of an int array (any shape)."""
    return _elementwise(_k.weaken_vec, weights)


def flip_array(weights: Any) -> np.ndarray:
    """Element-wise :meth:`TernaryWeight.flip` of an int array (any shape)."""
    return _elementwise(_k.flip_vec, weights)


def decay_toward_zero_array(weights: Any) -> np.ndarray:
    """Element-wise :func:`decay_toward_zero` (an int8 array of zeros, validated input)."""
    return _elementwise(_k.decay_toward_zero_vec, weights)


def should_prune_ternary_array(weights: Any) -> np.ndarray:
    """Boolean mask of the prunable (zero) weights."""
    w = _weights_array(weights, "weights")
    flat = w.reshape(-1)
    out = np.empty(flat.shape[0], np.bool_)
    _k.prune_mask_vec(flat, out)
    return out.reshape(w.shape)


def apply_ternary_update_array(policy: int, lr_mag: int, current: Any, observed: Any,
                               confidence: Any) -> np.ndarray:
    """:func:`apply_ternary_update` over arrays in one kernel call.

    ``lr_mag`` is the learning-rate magnitude 0-255; ``current`` and
    ``observed`` are int arrays of -1, 0, +1 and ``confidence`` a float
    array (converted to float32); the three are broadcast together.
    Returns an int8 array of the broadcast shape.

    Raises
    ------
    ValidationError
        Bad policy or learning rate, values outside {-1, 0, 1}, NaN
        confidence, or shapes that do not broadcast.
    """
    p = _policy(policy)
    lr = _lr_mag(lr_mag)
    cur = _weights_array(current, "current")
    obs = _weights_array(observed, "observed")
    conf = _float_array(confidence, "confidence", np.ndim(confidence), finite=False)
    try:
        cur, obs, conf = np.broadcast_arrays(cur, obs, conf)
    except ValueError:
        raise ValidationError(
            f"current {cur.shape}, observed {obs.shape} and confidence {conf.shape} do not broadcast"
        ) from None
    shape = cur.shape
    cur = np.ascontiguousarray(cur).reshape(-1)
    obs = np.ascontiguousarray(obs).reshape(-1)
    conf = np.ascontiguousarray(conf).reshape(-1)
    out = np.empty(cur.shape[0], np.int8)
    _k.ternary_update_vec(np.int64(p), lr, cur, obs, conf, out)
    return out.reshape(shape)


def apply_ternary_stdp_array(weights: Any, pre_fired: Any, post_fired: Any, dt_ms: Any) -> np.ndarray:
    """:func:`apply_ternary_stdp` over arrays in one kernel call.

    ``pre_fired``/``post_fired`` are bool arrays (or scalars) and ``dt_ms``
    an integer array (or scalar), broadcast against ``weights``.
    """
    w = _weights_array(weights, "weights")
    pre = np.asarray(pre_fired)
    post = np.asarray(post_fired)
    dt = np.asarray(dt_ms)
    for name, a in (("pre_fired", pre), ("post_fired", post)):
        if a.dtype.kind != "b":
            raise ValidationError(f"{name} must be boolean, got dtype {a.dtype}")
    if dt.dtype.kind not in "iu" or (dt.dtype == np.uint64 and dt.size and int(dt.max()) >= 1 << 63):
        raise ValidationError(f"dt_ms must be integer milliseconds (int64 range), got dtype {dt.dtype}")
    try:
        w, pre, post, dt = np.broadcast_arrays(w, pre, post, dt)
    except ValueError:
        raise ValidationError(
            f"weights {w.shape}, pre_fired {pre.shape}, post_fired {post.shape} and dt_ms {dt.shape} "
            "do not broadcast"
        ) from None
    shape = w.shape
    out = np.empty(int(np.prod(shape)), np.int8)
    _k.ternary_stdp_vec(np.ascontiguousarray(w).reshape(-1), np.ascontiguousarray(pre).reshape(-1),
                        np.ascontiguousarray(post).reshape(-1),
                        np.ascontiguousarray(dt, dtype=np.int64).reshape(-1), out)
    return out.reshape(shape)


def ternary_majority_vote_array(weights: Any, axis: int = 0) -> np.ndarray:
    """:func:`ternary_majority_vote` along ``axis`` of an int array of -1, 0, +1.

    For a ``(voters, n)`` matrix and ``axis=0`` this is the vote of each
    column. Returns an int8 array with ``axis`` removed.
    """
    w = _weights_array(weights, "weights")
    if w.ndim == 0:
        raise ValidationError("weights must have at least one dimension")
    try:
        w = np.moveaxis(w, axis, 0)
    except (np.exceptions.AxisError, TypeError):
        raise ValidationError(f"axis {axis!r} is invalid for weights of shape {w.shape}") from None
    rest = w.shape[1:]
    mat = np.ascontiguousarray(w.reshape(w.shape[0], -1))
    out = np.empty(mat.shape[1], np.int8)
    _k.majority_vote_columns(mat, out)
    return out.reshape(rest)
