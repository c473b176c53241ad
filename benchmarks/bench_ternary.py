"""asv suites for ternary weights: packed-layer inference against numpy's float32
BLAS on the same shapes, and 2-bit pack/unpack throughput.

* ``TernaryForward``: one input through a 4096 x 4096 layer. ``time_ternary``
  (packed, additions and subtractions only) against ``time_numpy_f32``
  (``W @ x``, float32, numpy's BLAS with its default threads; the ternary
  kernel is single-threaded). ``track_*_bytes`` give the weight memory of
  each (16x apart).
* ``TernaryForwardBatch``: 64 inputs through the same layer, against
  ``X @ W.T`` in float32.
* ``TernaryPack``: 16 Mi weights (int8) packed into 4 MiB, and back.
  Throughput in MB/s of packed bytes is ``4.19 MB / time``.
* ``TernaryMemory``: peak memory of building and running each layer alone.

``setup`` builds the data and runs each timed call once, so the kernels are
compiled (or loaded from Numba's cache) before anything is timed.
"""
from __future__ import annotations

import numpy as np

from thermogram.kernels import ternary as kt
from thermogram.ternary import PackedTernary, TernaryLayer

from .common import SEED
from .common import TERNARY_BATCH as BATCH
from .common import TERNARY_COLS as COLS
from .common import TERNARY_N_PACK as N_PACK
from .common import TERNARY_ROWS as ROWS
from .common import float_matrix, ternary_inputs as inputs, warm_ternary_kernels as _warm_kernels


class TernaryForward:
    """``forward`` of a 4096 x 4096 packed layer vs numpy float32 mat-vec."""

    timeout = 180

    def setup(self):
        self.w = float_matrix()
        self.layer = TernaryLayer.from_f32_matrix(self.w)
        self.x = inputs(1)[0]
        self.out = np.empty(ROWS, np.float32)
        self.out_np = np.empty(ROWS, np.float32)
        self.layer.forward(self.x, out=self.out)
        np.matmul(self.w, self.x, out=self.out_np)

    def time_ternary(self):
        self.layer.forward(self.x, out=self.out)

    # Docstrings of timed methods are set after them: asv versions a benchmark by the hash
    # of its method's source, so results stay comparable with those of earlier commits.
    time_ternary.__doc__ = "Packed ternary mat-vec into a preallocated output."

    def time_numpy_f32(self):
        np.matmul(self.w, self.x, out=self.out_np)

    time_numpy_f32.__doc__ = "float32 ``W @ x`` with numpy's BLAS."

    def track_ternary_bytes(self):
        return self.layer.memory_bytes()

    track_ternary_bytes.unit = "bytes"
    track_ternary_bytes.__doc__ = "Weight memory of the packed layer (codes and scales)."

    def track_numpy_f32_bytes(self):
        return int(self.w.nbytes)

    track_numpy_f32_bytes.unit = "bytes"
    track_numpy_f32_bytes.__doc__ = "Weight memory of the float32 matrix."


class TernaryForwardBatch:
    """``forward_batch`` of 64 inputs vs numpy float32 matmul ``X @ W.T``."""

    timeout = 300

    def setup(self):
        self.w = float_matrix()
        self.layer = TernaryLayer.from_f32_matrix(self.w)
        self.x = inputs(BATCH)
        self.out = np.empty((BATCH, ROWS), np.float32)
        self.out_np = np.empty((BATCH, ROWS), np.float32)
        self.layer.forward_batch(self.x, out=self.out)
        np.matmul(self.x, self.w.T, out=self.out_np)

    def time_ternary(self):
        self.layer.forward_batch(self.x, out=self.out)

    time_ternary.__doc__ = "64 inputs through the packed layer."

    def time_numpy_f32(self):
        np.matmul(self.x, self.w.T, out=self.out_np)

    time_numpy_f32.__doc__ = "float32 ``X @ W.T`` with numpy's BLAS."


class TernaryPack:
    """Pack 16 Mi int8 weights into 2-bit codes (4 MiB) and unpack them."""

    timeout = 180

    def setup(self):
        rng = np.random.default_rng(SEED)
        self.weights = rng.integers(-1, 2, N_PACK, dtype=np.int8)
        self.packed = np.empty(N_PACK // 4, np.uint8)
        self.unpacked = np.empty(N_PACK, np.int8)
        kt.pack_ternary(self.weights, self.packed)
        kt.unpack_ternary(self.packed, N_PACK, self.unpacked)
        self.vector = PackedTernary(self.weights)

    def time_pack(self):
        kt.pack_ternary(self.weights, self.packed)

    time_pack.__doc__ = "Pack 16 Mi int8 weights into 2-bit codes."

    def time_unpack(self):
        kt.unpack_ternary(self.packed, N_PACK, self.unpacked)

    time_unpack.__doc__ = "Unpack 16 Mi 2-bit codes into int8."

    def time_packed_ternary_from_array(self):
        """API path: validation, copy and packing."""
        PackedTernary(self.weights)

    def time_packed_ternary_to_array(self):
        self.vector.to_array()

    time_packed_ternary_to_array.__doc__ = "API path: ``PackedTernary.to_array``."

    def peakmem_pack(self):
        kt.pack_ternary(self.weights, self.packed)

    peakmem_pack.__doc__ = "Peak memory of packing."

    def peakmem_unpack(self):
        kt.unpack_ternary(self.packed, N_PACK, self.unpacked)

    peakmem_unpack.__doc__ = "Peak memory of unpacking."


class TernaryMemory:
    """Peak memory of a 4096 x 4096 layer and one forward, ternary vs float32.

    Setup only warms the kernels, so each peak is the process baseline plus
    what the method itself allocates.
    """

    timeout = 180

    def setup(self):
        _warm_kernels()
        self.x = inputs(1)[0]

    def peakmem_ternary_layer_forward(self):
        rng = np.random.default_rng(SEED)
        packed = rng.integers(0, 256, (ROWS, (COLS + 3) // 4), dtype=np.uint8)
        layer = TernaryLayer(packed, COLS)
        del packed
        layer.forward(self.x)

    peakmem_ternary_layer_forward.__doc__ = "Build a 4096 x 4096 packed layer and run one input."

    def peakmem_numpy_f32_layer_forward(self):
        w = np.random.default_rng(SEED).standard_normal((ROWS, COLS), dtype=np.float32)
        w @ self.x

    peakmem_numpy_f32_layer_forward.__doc__ = "Build a 4096 x 4096 float32 matrix and run one input."
