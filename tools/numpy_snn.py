"""The embedded SNN's tick in plain, vectorised numpy: the baseline that the
Numba kernels are timed against in ``benchmarks/bench_snn.py``. Not part of the package.

Same stages, formulas and output as :class:`thermogram.snn.EmbeddedSNN`
(continuous mode, fixed prototypes), written the way one would in numpy:
a matrix-vector product for the cosines (numpy's BLAS), ``argsort`` for the
ranks, ``np.add.at`` for spreading, boolean masks for STDP and decay. BLAS
sums in its own order, so activations can differ from the kernels' in the
last bits; spikes and deltas agree except on such ties.
"""
from __future__ import annotations

import numpy as np

from thermogram import DeltaBatch, SIGNAL, signals_from_floats
from thermogram.neuromod import NeuromodState
from thermogram.snn import EmbeddedSNN

F = np.float32


class NumpySNN:
    """A continuous-mode EmbeddedSNN in numpy, started from an EmbeddedSNN's state."""

    def __init__(self, snn: EmbeddedSNN):
        st = snn.state()
        c = snn.config
        self.cfg = c
        self.P = np.ascontiguousarray(st["prototypes"])
        self.pnorm = np.sqrt(np.einsum("ij,ij->i", self.P, self.P, dtype=F)).astype(F)
        self.idx = st["indices"]
        self.w = st["weights"].copy()
        self.traces = st["traces"].copy()
        self.rates = st["firing_rates"].copy()
        self.last_act = st["last_activations"].copy()
        self.last_spike = st["last_spike_ms"].copy()
        self.tick = int(st["tick"])
        n = c.num_neurons
        self.rank_scale = (np.arange(n, dtype=F) / F(n))
        self.self_loop = self.idx == np.arange(n)[:, None]
        self.clock = snn._clock

    def process(self, x: np.ndarray, nm: NeuromodState) -> DeltaBatch:
        c = self.cfg
        da, ser, ne, ach = (F(v) for v in nm.as_array())
        x = np.asarray(x, F)
        if x.shape != (c.input_dim,) or not np.isfinite(x).all():
            raise ValueError("bad input")
        ts = self.clock()
        self.tick += 1
        # 1. cosine activation, ReLU
        nx = F(np.sqrt(x @ x))
        with np.errstate(divide="ignore", invalid="ignore"):
            act = (self.P @ x) / (nx * self.pnorm)
        act = np.where((nx > 0) & (self.pnorm > 0) & (act > 0), act, F(0)).astype(F)
        # 2. competition by rank
        order = np.argsort(-act, kind="stable")
        act[order] *= F(1) - self.rank_scale * (F(c.competition_strength) * ne)
        # 3. spreading
        spread = np.zeros_like(act)
        np.add.at(spread, self.idx.ravel(), (act[:, None] * self.w).ravel())
        act += spread * ach
        # 4. spikes
        spikes = act > F(c.spike_threshold)
        # 5. STDP
        co = spikes[:, None] & spikes[self.idx] & ~self.self_loop
        old = self.w[co]
        new = np.clip(old + F(c.stdp_lr) * da, F(0), F(1))
        self.w[co] = new
        changed = np.zeros(self.w.shape, bool)
        changed[co] = new != old
        conf = np.zeros(self.w.shape, F)
        conf[co] = np.clip(np.minimum(act[:, None], act[self.idx])[co], F(0), F(1))
        self.last_spike[spikes] = self.tick * 100
        # 6. homeostasis
        if self.tick % 100 == 0:
            g = F(1) + (F(c.homeostasis_target) - self.rates) * (F(0.01) * ser)
            self.w = np.clip(self.w * g[:, None], F(0), F(1))
        # 7. decay
        if self.tick % 10 == 0:
            before = self.w
            self.w = self.w * (F(1) - F(c.decay_rate) * (F(1) - ser))
            pruned = self.w < F(0.01)
            self.w[pruned] = F(0)
            pruned &= before != 0
            changed |= pruned
            conf[pruned] = F(0)
        # 8. traces, rates
        self.traces = self.traces * (F(1) - F(c.trace_decay)) + act
        self.rates = self.rates * F(0.9) + spikes.astype(F) * F(0.1)
        self.last_act = act
        return self._batch(changed, conf, ts)

    def _batch(self, changed, conf, ts):
        i, s = np.nonzero(changed)
        if i.size == 0:
            e = np.zeros(0, SIGNAL)
            return DeltaBatch([], np.zeros(0, np.uint8), e, np.zeros(1, np.int64), e,
                              np.zeros(0, np.int64), source="snn", timestamp=ts, _trusted=True)
        keys = [f"weight_{a}_{b}" for a, b in zip(i.tolist(), self.idx[i, s].tolist())]
        vals = signals_from_floats(self.w[i, s])
        return DeltaBatch.from_arrays(keys, (vals, np.arange(i.size + 1, dtype=np.int64)),
                                      signals_from_floats(conf[i, s]), "update", ts, source="snn")
