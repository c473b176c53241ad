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

SEED = 20261127
ROWS = COLS = 4096
BATCH = 64
N_PACK = 16 * 1024 * 1024


def float_matrix(rows=ROWS, cols=COLS, seed=SEED):
    """Standard-normal float32 weights (about 42% survive the adaptive threshold)."""
    return np.random.default_rng(seed).standard_normal((rows, cols), dtype=np.float32)


def inputs(n, cols=COLS, seed=SEED + 1):
    """``(n, cols)`` standard-normal float32 inputs."""
    return np.random.default_rng(seed).standard_normal((n, cols), dtype=np.float32)


def _warm_kernels():
    """Compile (or load) the layer kernels on a tiny layer."""
    small = TernaryLayer.from_f32_matrix(float_matrix(8, 40))
    small.forward(inputs(1, 40)[0])
    small.forward_batch(inputs(16, 40))


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

    def time_numpy_f32(self):
        np.matmul(self.w, self.x, out=self.out_np)

    def track_ternary_bytes(self):
        return self.layer.memory_bytes()

    track_ternary_bytes.unit = "bytes"

    def track_numpy_f32_bytes(self):
        return int(self.w.nbytes)

    track_numpy_f32_bytes.unit = "bytes"


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

    def time_numpy_f32(self):
        np.matmul(self.x, self.w.T, out=self.out_np)


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

    def time_unpack(self):
        kt.unpack_ternary(self.packed, N_PACK, self.unpacked)

    def time_packed_ternary_from_array(self):
        """API path: validation, copy and packing."""
        PackedTernary(self.weights)

    def time_packed_ternary_to_array(self):
        self.vector.to_array()

    def peakmem_pack(self):
        kt.pack_ternary(self.weights, self.packed)

    def peakmem_unpack(self):
        kt.unpack_ternary(self.packed, N_PACK, self.unpacked)


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

    def peakmem_numpy_f32_layer_forward(self):
        w = np.random.default_rng(SEED).standard_normal((ROWS, COLS), dtype=np.float32)
        w @ self.x
