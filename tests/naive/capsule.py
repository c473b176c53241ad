"""A whole capsule as dicts: the model ``tests/test_model.py`` checks a Thermogram against.

Built from the layer and fold twins in :mod:`naive.thermal` and
:mod:`naive.consolidation`; pending deltas are a plain list.
"""
from __future__ import annotations

import numpy as np

from . import consolidation as nc
from . import thermal as nt
from .signal import add, mag_f32

F = np.float32


class NaiveCapsule:
    """Layers as dicts ``key -> dict(value, strength, count, ts)``; pending as a list."""

    def __init__(self, cfg, rule, fixed=True):
        self.cfg = cfg
        self.rule = rule
        self.fixed = fixed
        self.layers = [{}, {}, {}, {}]
        self.pending = []

    # transitions ---------------------------------------------------------
    def decay(self):
        nt.decay(self.layers, [F(1) - mag_f32(self.cfg.decay_rates[lay].magnitude) for lay in range(4)])

    def transitions(self, now):
        c = self.cfg
        return nt.transitions(self.layers, [s.magnitude for s in c.promotion_thresholds], c.min_observations,
                              [s.magnitude for s in c.demotion_thresholds], c.allow_demotion,
                              c.prune_threshold.magnitude, now)

    def prune_hot(self, thr=None):
        thr = self.cfg.prune_threshold.magnitude if thr is None else thr
        return nt.prune(self.layers, thr, nt.HOT)

    def crystallize(self):
        return nt.crystallize(self.layers, self.cfg.crystallization_threshold.magnitude,
                              self.cfg.min_observations[0])

    def warm(self, key, now):
        if not self.cfg.allow_warming:
            return False
        return nt.warm(self.layers, key, self.cfg.warming_delta.magnitude, now)

    def first(self, key):
        return nt.hottest(self.layers, key)

    def reinforce(self, key, amount, now):
        e = self.first(key)
        if e is None:
            return False
        e["strength"] = add(e["strength"], amount)
        e["count"] = nt.sat_add_u64(e["count"], 1)
        e["ts"] = now
        return True

    def weaken(self, key, amount, now):
        e = self.first(key)
        if e is None:
            return False
        m = max(0, e["strength"][1] - amount[1])
        e["strength"] = (0, 0) if m == 0 else (e["strength"][0], m)
        e["ts"] = now
        return True

    # deltas ----------------------------------------------------------------
    def apply(self, dtype, key, value, strength, ts):
        self.pending.append((dtype, key, list(value), strength, ts))

    def read(self, key):
        for dtype, k, value, strength, ts in reversed(self.pending):
            if k == key:
                if dtype == nc.DELETE:
                    return None
                if dtype == nc.MERGE and self.fixed:
                    break  # value kept: resolved below
                return value
        else:
            e = self.first(key)
            return None if e is None else e["value"]
        # fixed merge: value is whatever the key held before the merge(s)
        return self._value_before_merges(key)

    def _value_before_merges(self, key):
        state = None
        found = False
        for dtype, k, value, strength, ts in self.pending:
            if k != key:
                continue
            if dtype == nc.DELETE:
                state, found = None, True
            elif dtype == nc.MERGE:
                if not found:
                    e = self.first(key)
                    state, found = (None if e is None else e["value"]), True
                if state is None:
                    state = value
            else:
                state, found = value, True
        return state

    def consolidate(self, now, prune=True):
        r = self.rule
        stats = nc.fold_pending(self.layers, self.pending, int(r.policy), r.decay_rate.magnitude,
                                r.learning_rate.magnitude, self.fixed)
        self.pending = []
        if prune:
            self.prune_hot(r.prune_threshold.magnitude)
        if self.fixed:
            self.transitions(now)
        else:
            self.crystallize()
        return stats[0]

    def snapshot(self):
        return [{k: (tuple(map(tuple, e["value"])), tuple(e["strength"]), e["count"], e["ts"])
                 for k, e in lay.items()} for lay in self.layers]
