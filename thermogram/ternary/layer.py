"""A ``rows x cols`` matrix of packed ternary rows with one float32 scale per
row: :class:`TernaryLayer` (construction, add/subtract-only inference,
array and Arrow storage).

One module of about 500 lines because it is one class: its constructors,
inference and storage methods share the packed-row invariants (canonical
2-bit codes, ``ceil(cols / 4)`` bytes per row, finite float32 scales), and
a long docstring with worked examples.

Why this module is one piece (~510 lines): :class:`TernaryLayer` is one class whose
forward paths, Arrow form and validation share the packed rows and scales; the kernels are in
:mod:`thermogram.kernels.ternary`.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Tuple, Union

import numpy as np

from ..errors import ValidationError
from ..kernels import ternary as _k
from ._validate import (_float_array, _get_code, _index, _input_array, _length, _nbytes, _readonly,
                        _set_code)
from .packed import PackedTernary, _weights_array
from .weight import TernaryWeight, _weight

__all__ = ["TernaryLayer", "ARROW_KIND", "ARROW_VERSION"]

ARROW_KIND = b"ternary_layer"
ARROW_VERSION = b"1"
_ARROW_ENCODING = b"2-bit codes, 4 weights per byte, weight i at bits 2*(i%4): 00=0 01=+1 10=-1"

_TABLE_BUDGET = 16 * 1024 * 1024
"""Bytes of pair tables ``forward_batch`` builds at a time (sets the chunk of inputs)."""
_BATCH_CHUNK_MAX = 64
_BATCH_MIN = 28
"""Below this many inputs ``forward_batch`` runs ``forward`` per input (same results)."""


class TernaryLayer:
    """A ``rows x cols`` layer of ternary weights with one float32 scale per row.

    Rows are packed row-major, each in ``ceil(cols / 4)`` bytes with the
    :class:`PackedTernary` layout (so every row is padded to a whole byte,
    as the reference stores one packed vector per row). The output of
    :meth:`forward` is ``scale[r] * sum_c w[r, c] * x[c]``, computed by
    adding and subtracting inputs -- never multiplying them by weights.

    The constructor takes already packed rows (as stored by a codec); most
    layers are built with :meth:`from_weights` (an int matrix of -1, 0, +1),
    :meth:`from_f32_matrix` (quantize floats as the reference does) or
    :meth:`zeros`. A layer is mutable (:meth:`set_weight`), so it is not
    hashable; it compares equal to a layer with the same shape, packed bytes
    and scale bits, and pickles by value.

    Parameters
    ----------
    packed : array_like of uint8, shape (rows, ceil(cols / 4))
        Packed rows (copied). Reserved ``11`` codes and bits after column
        ``cols`` are stored as zeros.
    cols : int
        Number of inputs (non-negative).
    scales : array_like of float, shape (rows,), optional
        Per-row scale (default 1.0), converted to float32. Must be finite.

    Attributes
    ----------
    rows, cols : int
        Number of outputs and of inputs; ``shape`` is ``(rows, cols)``.
    packed : ndarray of uint8, shape (rows, ceil(cols / 4))
        The packed rows, as a read-only view.
    scales : ndarray of float32, shape (rows,)
        The per-row scales, as a read-only view.

    Raises
    ------
    ValidationError
        If ``packed`` is not a 2-D uint8 array with ``ceil(cols / 4)`` bytes
        per row, ``cols`` is not a non-negative integer, or ``scales`` does
        not hold ``rows`` finite numbers.

    See Also
    --------
    TernaryLayer.from_f32_matrix : quantize a float matrix as the reference does.
    TernaryLayer.from_weights : build from an int matrix of -1, 0, +1.
    TernaryLayer.to_arrays, TernaryLayer.to_arrow : storage as plain arrays or an Arrow table.
    PackedTernary : one packed row.

    Notes
    -----
    An index outside the layer raises
    :class:`~thermogram.errors.WeightIndexError` (an ``IndexError``); the
    reference crate returns ``ZERO`` or ignores the write instead. Inputs of
    the wrong length raise :class:`~thermogram.errors.ValidationError`
    rather than being truncated.

    Examples
    --------
    A 2 x 3 layer from weights, with per-row scales:

    >>> layer = TernaryLayer.from_weights([[1, 0, -1], [-1, 1, 0]], scales=[0.5, 2.0])
    >>> layer
    TernaryLayer(2x3, 10 bytes)
    >>> layer.shape
    (2, 3)
    >>> layer.forward([1.0, 2.0, 3.0])
    array([-1.,  2.], dtype=float32)
    >>> layer.forward_batch([[1.0, 2.0, 3.0], [0.0, 1.0, 1.0]])
    array([[-1. ,  2. ],
           [-0.5,  2. ]], dtype=float32)

    Weights are read and written one at a time, or as a whole matrix:

    >>> layer.get_weight(1, 0)
    <TernaryWeight.NEG: -1>
    >>> layer.set_weight(1, 2, 1)
    >>> layer.to_array()
    array([[ 1,  0, -1],
           [-1,  1,  1]], dtype=int8)

    The constructor takes packed rows, e.g. those of another layer:

    >>> layer.packed
    array([[33],
           [22]], dtype=uint8)
    >>> TernaryLayer(layer.packed, 3, layer.scales) == layer
    True

    Quantizing floats scales each row by its largest magnitude:

    >>> q = TernaryLayer.from_f32_matrix([[0.8, -0.1, -0.6], [0.05, 0.2, -0.4]])
    >>> q.to_array()
    array([[ 1,  0, -1],
           [ 0,  0, -1]], dtype=int8)
    >>> q.scales
    array([0.8, 0.4], dtype=float32)

    Shapes are checked:

    >>> layer.forward([1.0, 2.0])
    Traceback (most recent call last):
        ...
    thermogram.errors.ValidationError: x must have shape (3,), got (2,)
    >>> import numpy as np
    >>> TernaryLayer(np.zeros((2, 2), np.uint8), 3)
    Traceback (most recent call last):
        ...
    thermogram.errors.ValidationError: packed must have shape (rows, 1) for 3 columns, got (2, 2)
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
