"""A vector of ternary weights packed four per byte: :class:`PackedTernary`,
and ``_weights_array``, the check that turns any weights argument (a list,
an int array, a TernaryWeight or a PackedTernary) into an int8 array."""
from __future__ import annotations

import html
from typing import Any, Iterable, Iterator, Union

import numpy as np

from ..errors import LimitError, ValidationError
from ..kernels import ternary as _k
from ._validate import (_asarray, _f32, _float_array, _get_code, _index, _input_array, _length, _nbytes,
                        _readonly, _set_code, _sign)
from .weight import TernaryWeight, _weight

MAX_WEIGHTS = 2 ** 46
"""Most weights one :class:`PackedTernary` holds (16 TiB packed): a larger length is a
:class:`~thermogram.errors.LimitError` before anything is allocated."""

__all__ = ["PackedTernary"]


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


class PackedTernary:
    r"""A vector of ternary weights packed four per byte.

    Byte ``i // 4`` holds weight ``i`` in bits ``2*(i % 4)`` (low bit) and
    ``2*(i % 4) + 1``: ``00`` zero, ``01`` +1, ``10`` -1 -- the reference
    crate's layout, so :meth:`bytes` equals its packing of the same weights.
    Bits after the last weight are always zero. A vector of ``n`` weights
    takes ``ceil(n / 4)`` bytes, 16 times less than float32.

    The object is mutable (:meth:`set`, ``p[i] = w``, :meth:`strengthen`,
    :meth:`weaken`), so it is not hashable; it compares equal to another
    ``PackedTernary`` of the same length and bytes, and pickles as its bytes.

    Parameters
    ----------
    weights : array_like of int or TernaryWeight, optional
        1-D sequence of -1, 0, +1 (any integer dtype), or another
        ``PackedTernary`` (copied). Empty by default. Floats are rejected:
        quantize them with :meth:`from_f32` or :meth:`from_f32_adaptive`.

    Attributes
    ----------
    data : ndarray of uint8, shape (ceil(len / 4),)
        The packed bytes, as a read-only view.

    Raises
    ------
    ValidationError
        If ``weights`` is not 1-D, is not an integer sequence, or holds
        anything but -1, 0, +1.

    See Also
    --------
    PackedTernary.from_f32 : quantize floats with a fixed threshold.
    PackedTernary.from_f32_adaptive : quantize floats at their adaptive threshold.
    PackedTernary.from_bytes : read packed bytes (the output of :meth:`bytes`).
    TernaryLayer : a matrix of packed rows with per-row scales.

    Notes
    -----
    An index outside the vector raises
    :class:`~thermogram.errors.WeightIndexError` (an ``IndexError``); the
    reference crate returns ``ZERO`` or ignores the write instead.

    Examples
    --------
    Pack five weights into two bytes (weight 0 in the lowest two bits):

    >>> p = PackedTernary([1, 0, -1, 1, 0])
    >>> p
    PackedTernary(5 weights, 2 bytes, 40.0% sparse)
    >>> p.bytes()
    b'a\x00'
    >>> p.to_array()
    array([ 1,  0, -1,  1,  0], dtype=int8)
    >>> p[2]
    <TernaryWeight.NEG: -1>
    >>> p.count_active(), p.memory_bytes()
    (3, 2)

    The dot product only adds and subtracts inputs:

    >>> p.dot([1.0, 2.0, 3.0, 4.0, 5.0])
    2.0

    Weights change one step at a time, or are set directly:

    >>> p.weaken(0)
    >>> p[4] = -1
    >>> p.to_array()
    array([ 0,  0, -1,  1, -1], dtype=int8)

    Quantize floats, and read packed bytes back:

    >>> q = PackedTernary.from_f32([0.9, -0.05, -0.7, 0.3], 0.25)
    >>> q.to_array()
    array([ 1,  0, -1,  1], dtype=int8)
    >>> PackedTernary.from_bytes(q.bytes(), 4) == q
    True

    Bad input raises instead of being stored:

    >>> PackedTernary([1, 2])
    Traceback (most recent call last):
        ...
    thermogram.errors.ValidationError: weights must hold only -1, 0 and +1; found 2 at index (1,)
    >>> p.get(5)
    Traceback (most recent call last):
        ...
    thermogram.errors.WeightIndexError: index 5 is out of range for length 5
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
        if n > MAX_WEIGHTS:
            raise LimitError(f"{n} weights is more than a PackedTernary holds ({MAX_WEIGHTS}, "
                             f"{_nbytes(MAX_WEIGHTS)} bytes)")
        try:
            data = np.zeros(_nbytes(n), np.uint8)
        except MemoryError:
            raise LimitError(f"not enough memory for {n} weights ({_nbytes(n)} bytes)") from None
        return cls._wrap(data, n)

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
        if n > MAX_WEIGHTS:
            raise LimitError(f"length {n} is more than a PackedTernary holds ({MAX_WEIGHTS})")
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
