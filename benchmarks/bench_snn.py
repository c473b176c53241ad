"""asv suites for the embedded SNN (``thermogram.snn``).

Workload of the reference crate's ``snn_tick`` criterion bench: a network of
10 / 50 / 100 / 200 neurons with the default config (2048-dim input, k = 10),
the input ``[0.5] * 2048``, baseline neuromodulation. With that input no
neuron spikes; a tick is activation, competition, spreading, spike detection,
traces and rates, with decay every 10 and homeostasis every 100 ticks.
Reference on the machine of the issue: 94,630.7 ns per tick at 100 neurons.

* ``SNNTick.time_process``: one tick through :meth:`EmbeddedSNN.process`
  (validation, kernels, the returned DeltaBatch).
* ``SNNTickBatch.time_process_batch``: 1,000 ticks in one
  :meth:`EmbeddedSNN.process_batch` call; per tick = time / 1000.
* ``NumpyTick.time_process``: the same tick in plain numpy
  (``numpy_snn.NumpySNN``), the baseline for the kernels.

``setup`` runs each timed call once, so kernels are compiled (or loaded
from Numba's cache) before anything is timed.
"""
from __future__ import annotations

import numpy as np

from thermogram.neuromod import NeuromodState
from thermogram.snn import EmbeddedSNN, EmbeddedSNNConfig

try:
    from .numpy_snn import NumpySNN
except ImportError:  # imported as a top-level module (python benchmarks/bench_snn.py)
    from numpy_snn import NumpySNN

SEED = 20261127
NEURONS = [10, 50, 100, 200]
INPUT_DIM = 2048
BATCH_TICKS = 1000


def reference_input(ticks=None):
    """The reference bench's input, 0.5 everywhere (one row per tick when ``ticks``)."""
    shape = (INPUT_DIM,) if ticks is None else (ticks, INPUT_DIM)
    return np.full(shape, 0.5, dtype=np.float32)


def make_snn(neurons):
    return EmbeddedSNN(EmbeddedSNNConfig(num_neurons=neurons, input_dim=INPUT_DIM, seed=SEED))


class SNNTick:
    """One tick via ``process``."""

    params = NEURONS
    param_names = ["neurons"]

    def setup(self, neurons):
        self.snn = make_snn(neurons)
        self.x = reference_input()
        self.nm = NeuromodState.baseline()
        self.snn.process(self.x, self.nm)

    def time_process(self, neurons):
        self.snn.process(self.x, self.nm)


class SNNTickBatch:
    """1,000 ticks via one ``process_batch`` call (divide by 1000 for a tick)."""

    params = NEURONS
    param_names = ["neurons"]
    timeout = 300

    def setup(self, neurons):
        self.snn = make_snn(neurons)
        self.X = reference_input(BATCH_TICKS)
        self.nm = NeuromodState.baseline()
        self.snn.process_batch(self.X, self.nm)

    def time_process_batch(self, neurons):
        self.snn.process_batch(self.X, self.nm)


class NumpyTick:
    """The same tick in plain numpy."""

    params = NEURONS
    param_names = ["neurons"]

    def setup(self, neurons):
        self.snn = NumpySNN(make_snn(neurons))
        self.x = reference_input()
        self.nm = NeuromodState.baseline()
        self.snn.process(self.x, self.nm)

    def time_process(self, neurons):
        self.snn.process(self.x, self.nm)
