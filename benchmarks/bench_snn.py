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
* ``SNNTickBatch64.time_process_batch``: 64 ticks per call (per tick = time / 64),
  the ``snn process_batch`` rows of ``tools/compare_reference.py``.
* ``NumpyTick.time_process``: the same tick in plain numpy
  (``NumpySNN`` of ``tools/numpy_snn.py``), the baseline for the kernels.

``setup`` runs each timed call once, so kernels are compiled (or loaded
from Numba's cache) before anything is timed.
"""
from __future__ import annotations

import os
import sys

from thermogram.neuromod import NeuromodState

from .common import SNN_BATCH_TICKS as BATCH_TICKS
from .common import SNN_NEURONS as NEURONS
from .common import make_snn, reference_input

# the plain-numpy network compared against lives in tools/ (it is no asv suite)
_TOOLS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools")
if _TOOLS not in sys.path:
    sys.path.insert(0, _TOOLS)
from numpy_snn import NumpySNN  # noqa: E402


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

    # Docstrings of timed methods are set after them: asv versions a benchmark by the hash
    # of its method's source, so results stay comparable with those of earlier commits.
    time_process.__doc__ = "One tick through ``process``."


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

    time_process_batch.__doc__ = "1,000 ticks in one ``process_batch`` call (per tick: time / 1000)."


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

    time_process.__doc__ = "One tick of the plain-numpy network."


class SNNTickBatch64:
    """64 ticks via one ``process_batch`` call (divide by 64 for a tick): the batch row of
    ``tools/compare_reference.py`` (``snn process_batch Nx2048, per tick``)."""

    params = NEURONS
    param_names = ["neurons"]

    def setup(self, neurons):
        self.snn = make_snn(neurons)
        self.X = reference_input(64)
        self.nm = NeuromodState.baseline()
        self.snn.process_batch(self.X, self.nm)

    def time_process_batch(self, neurons):
        self.snn.process_batch(self.X, self.nm)

    time_process_batch.__doc__ = "64 ticks in one ``process_batch`` call (per tick: time / 64)."
