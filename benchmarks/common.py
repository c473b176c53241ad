"""Workload builders shared by the asv suites (and by ``tools/compare_reference.py``).

Every builder is deterministic (fixed seeds), so a suite measures the same work
on every run and on every commit. Builders of read-only state can be memoised per
process with :func:`memo`.

Sections: core capsules (batches, capsules of N entries, read targets, layer
spreads, plasticity inputs, memory), persistence, colonies, the embedded SNN and
ternary layers.
"""
from __future__ import annotations

import dataclasses
import gc
import os
import random
import resource

import numpy as np

from thermogram import (SIGNAL, ConsolidationPolicy, Delta, DeltaBatch, PlasticityRule, Signal,
                        Thermogram, ThermalConfig, UpdatePolicy)
from thermogram.colony import ColonyConfig, ThermogramColony
from thermogram.snn import EmbeddedSNN, EmbeddedSNNConfig
from thermogram.thermal import USIZE_MAX
from thermogram.ternary import TernaryLayer

SEED = 20261127

# ----------------------------------------------------------------------------- core capsules


def signal_matrix(n, d, seed=SEED):
    """(n, d) SIGNAL array: random polarity -1/+1, magnitude 1..255."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, d), SIGNAL)
    out["polarity"] = (rng.integers(0, 2, size=(n, d), dtype=np.int8) * 2 - 1)
    out["magnitude"] = rng.integers(1, 256, size=(n, d), dtype=np.uint8)
    return out


def signal_vector(d, seed=SEED):
    """1-D SIGNAL vector of ``d`` random signals."""
    return signal_matrix(1, d, seed)[0].copy()


def strength_array(n, lo=26, hi=255, seed=SEED):
    """SIGNAL array of ``n`` positive strengths with magnitudes uniform in [lo, hi]."""
    rng = np.random.default_rng(seed + 1)
    out = np.empty(n, SIGNAL)
    out["polarity"] = 1
    out["magnitude"] = rng.integers(lo, hi + 1, size=n, dtype=np.int64).astype(np.uint8)
    return out


def make_keys(n, n_keys=None, prefix="key_"):
    """``n`` keys ``{prefix}{i % n_keys}`` (default: ``n`` distinct keys)."""
    n_keys = n if n_keys is None else n_keys
    return [f"{prefix}{i % n_keys}" for i in range(n)]


def make_batch(n, n_keys=None, signals=8, *, prefix="key_", strengths=None, types="update",
               seed=SEED):
    """DeltaBatch of ``n`` rows over ``n_keys`` distinct keys (default: all distinct),
    each value ``signals`` random signals (2-D SIGNAL array)."""
    return DeltaBatch.from_arrays(make_keys(n, n_keys, prefix), signal_matrix(n, signals, seed),
                                  strengths, types=types, source="bench")


def manual_capsule(**kw):
    """Empty capsule that never consolidates on its own."""
    return Thermogram("bench", policy=ConsolidationPolicy.manual_only(), **kw)


def consolidated_capsule(n, signals=8, strength=None, **kw):
    """Manual-policy capsule holding ``n`` consolidated hot entries (one apply_batch + consolidate)."""
    t = manual_capsule(**kw)
    if n:
        t.apply_batch(make_batch(n, n, signals, strengths=strength))
        t.consolidate()
    return t


# Reads: n consolidated hot entries (strength 200, 1 observation: stays hot under the
# default config), 100 cold-only entries, and optionally 1,000 pending deltas on new keys
# applied one by one (the reference's pending_1000 case) or as one batch.
READ_PENDING = 1000
READ_COLD = 100
READ_SIGNALS = 8


def read_capsule(size, pending=None):
    """``pending`` is None, "deltas" (1,000 apply_delta) or "batch" (one 1,000-row apply_batch)."""
    t = consolidated_capsule(size, READ_SIGNALS, Signal.positive(200))
    v = signal_vector(READ_SIGNALS)
    for i in range(READ_COLD):
        t.insert_entry(f"cold_{i}", v, Signal.positive(240), "cold", update_count=100)
    if pending == "deltas":
        for i in range(READ_PENDING):
            t.apply_delta(Delta.create(f"pend_{i}", v, "bench"))
    elif pending == "batch":
        t.apply_batch(make_batch(READ_PENDING, prefix="pend_", signals=READ_SIGNALS, types="create"))
    return t


READ_KINDS = ("hot", "cold", "pending", "pending_batch", "behind_pending", "missing")


def read_target(size, kind):
    """(capsule variant, key) for a read benchmark kind.

    hot            consolidated hot key, no pending deltas
    cold           key held only in the cold layer, no pending deltas
    pending        oldest of 1,000 pending deltas (applied one by one)
    pending_batch  first row of a pending 1,000-row batch
    behind_pending consolidated hot key while 1,000 deltas are pending on other keys
    missing        unknown key while 1,000 deltas are pending
    """
    mid = f"key_{size // 2}"
    return {"hot": (None, mid), "cold": (None, "cold_0"), "pending": ("deltas", "pend_0"),
            "pending_batch": ("batch", "pend_0"), "behind_pending": ("deltas", mid),
            "missing": ("deltas", "no_such_key")}[kind]


# Layer maintenance: the default thermal config except that one observation is enough to
# promote (min_observations 1/1/1/never), so one consolidation of random strengths
# (uniform 26..255) spreads the entries over the four layers by strength:
# about 55% hot, 17% warm, 17% cool, 11% cold.
SPREAD_CONFIG = ThermalConfig.default().replace(min_observations=(1, 1, 1, USIZE_MAX))


def spread_capsule(n, signals=1):
    """``n`` entries of random strengths, consolidated once under ``SPREAD_CONFIG``."""
    t = manual_capsule(thermal_config=SPREAD_CONFIG)
    t.apply_batch(make_batch(n, n, signals, strengths=strength_array(n)))
    t.consolidate()
    return t


# Entries due to move, re-inserted before every timed run_thermal_transitions so that
# every repeat has the same work: a quarter promote hot->warm->cool->cold, a quarter
# demote cold->cool->warm->hot, a quarter are pruned, a quarter demote warm->hot.
TRANSITION_CANDIDATES = 2000


def add_transition_candidates(t, k=TRANSITION_CANDIDATES):
    """Insert ``k`` entries due to move at the next ``run_thermal_transitions``."""
    v = signal_vector(1)
    P = Signal.positive
    for i in range(k):
        q = i % 4
        key = f"cand_{i}"
        if q == 0:
            t.insert_entry(key, v, P(240), "hot", update_count=100)
        elif q == 1:
            t.insert_entry(key, v, P(60), "cold", update_count=100)
        elif q == 2:
            t.insert_entry(key, v, P(5), "hot", update_count=1)
        else:
            t.insert_entry(key, v, P(50), "warm", update_count=5)


POLICY_RULES = {
    "STDP": PlasticityRule.stdp_like,
    "Replace": PlasticityRule.replace_only,
    "EMA": PlasticityRule.conservative,
    "Bayesian": PlasticityRule.bayesian,
    "WTA": lambda: dataclasses.replace(PlasticityRule.stdp_like(), policy=UpdatePolicy.WTA),
}


def plasticity_inputs(n, seed=SEED):
    """(current, new) SIGNAL strength arrays of length n, mixed polarity."""
    rng = np.random.default_rng(seed + 2)
    cur = np.empty(n, SIGNAL)
    new = np.empty(n, SIGNAL)
    for a in (cur, new):
        a["polarity"] = rng.integers(-1, 2, size=n, dtype=np.int8)
        a["magnitude"] = rng.integers(0, 256, size=n, dtype=np.int64).astype(np.uint8)
    return cur, new


def resident_bytes():
    """Current resident set size of this process in bytes (Linux /proc; else peak RSS)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return r * (1 if os.uname().sysname == "Darwin" else 1024)


MEMORY_ENTRIES = 1_000_000
MEMORY_SIGNALS = 64


def build_memory_capsule(n=MEMORY_ENTRIES, signals=MEMORY_SIGNALS):
    """A consolidated capsule of n entries x signals, built from one batch; input arrays dropped."""
    t = manual_capsule()
    keys = make_keys(n)
    values = signal_matrix(n, signals)
    batch = DeltaBatch.from_arrays(keys, values, Signal.positive(200), types="update", source="bench")
    del keys, values
    t.apply_batch(batch)
    del batch
    t.consolidate()
    return t


def resident_bytes_per_entry(n=MEMORY_ENTRIES, signals=MEMORY_SIGNALS):
    """RSS growth from building ``build_memory_capsule`` divided by its entry count."""
    warm = consolidated_capsule(10, signals)  # imports and kernels loaded before measuring
    del warm
    gc.collect()
    before = resident_bytes()
    t = build_memory_capsule(n, signals)
    gc.collect()
    after = resident_bytes()
    entries = t.total_entries()
    del t
    return (after - before) / entries


_MEMO = {}


def memo(key, build):
    """Per-process memo for read-only state that setup would otherwise rebuild every sample."""
    v = _MEMO.get(key)
    if v is None:
        v = _MEMO[key] = build()
    return v


# ----------------------------------------------------------------------------- persistence

CODEC_TIME = 1_767_225_600_000_000_000


def codec_capsule(n, signals=64, seed=0):
    """``n`` consolidated entries of ``signals`` random signals (strength 200, fixed clock),
    the reference's codec_encode / codec_decode workload."""
    t = Thermogram("codec", policy=ConsolidationPolicy.manual_only(), clock=lambda: CODEC_TIME)
    vals = np.zeros((n, signals), SIGNAL)
    rng = np.random.default_rng(seed)
    vals["polarity"] = rng.integers(-1, 2, (n, signals))
    vals["magnitude"] = rng.integers(0, 256, (n, signals))
    t.apply_batch(DeltaBatch.from_arrays([f"key_{i}" for i in range(n)], vals, Signal.positive(200),
                                         timestamps=CODEC_TIME))
    t.consolidate()
    return t


# ----------------------------------------------------------------------------- colonies

COLONY_N = 1_000_000
COLONY_MEMBERS = 16
COLONY_T0 = 1_700_000_000_000_000_000


class StepClock:
    """Deterministic clock: ``COLONY_T0`` plus 1 microsecond per call."""

    def __init__(self):
        self.t = COLONY_T0

    def __call__(self):
        self.t += 1_000
        return self.t


def colony_keys(n=COLONY_N, shuffled=False):
    """``g{i // 64}_w{i}``: locality groups of 64 keys (memoised)."""
    def build():
        ks = [f"g{i // 64}_w{i}" for i in range(n)]
        if shuffled:
            random.Random(0).shuffle(ks)
        return ks
    return memo(("keys", n, shuffled), build)


def colony_values(n=COLONY_N, dim=8, seed=0):
    """``(n, dim)`` float32 values uniform in [-1, 1) (memoised)."""
    return memo(("values", n, dim, seed),
                lambda: np.random.default_rng(seed).uniform(-1, 1, (n, dim)).astype(np.float32))


def big_colony(executor="serial", members=COLONY_MEMBERS, n=COLONY_N, pending=True):
    """``members`` members, ``n`` consolidated entries, then ``n`` pending updates."""
    c = ThermogramColony("bench", "bench", config=ColonyConfig(max_members=members), members=members,
                         clock=StepClock(), policy=ConsolidationPolicy.manual_only(), executor=executor)
    ks = colony_keys(n)
    c.apply_batch(DeltaBatch.from_arrays(ks, colony_values(n), Signal.positive(200), "update",
                                         clock=lambda: COLONY_T0))
    c.consolidate(executor="serial")
    if pending:
        c.apply_batch(DeltaBatch.from_arrays(ks, colony_values(n, seed=1), Signal.positive(220), "update",
                                             clock=lambda: COLONY_T0 + 1))
    return c


# ----------------------------------------------------------------------------- embedded SNN

SNN_NEURONS = [10, 50, 100, 200]
SNN_INPUT_DIM = 2048
SNN_BATCH_TICKS = 1000


def reference_input(ticks=None):
    """The reference bench's input, 0.5 everywhere (one row per tick when ``ticks``)."""
    shape = (SNN_INPUT_DIM,) if ticks is None else (ticks, SNN_INPUT_DIM)
    return np.full(shape, 0.5, dtype=np.float32)


def make_snn(neurons):
    """A seeded network of ``neurons`` neurons over ``SNN_INPUT_DIM`` inputs."""
    return EmbeddedSNN(EmbeddedSNNConfig(num_neurons=neurons, input_dim=SNN_INPUT_DIM, seed=SEED))


# ----------------------------------------------------------------------------- ternary layers

TERNARY_ROWS = TERNARY_COLS = 4096
TERNARY_BATCH = 64
TERNARY_N_PACK = 16 * 1024 * 1024


def float_matrix(rows=TERNARY_ROWS, cols=TERNARY_COLS, seed=SEED):
    """Standard-normal float32 weights (about 42% survive the adaptive threshold)."""
    return np.random.default_rng(seed).standard_normal((rows, cols), dtype=np.float32)


def ternary_inputs(n, cols=TERNARY_COLS, seed=SEED + 1):
    """``(n, cols)`` standard-normal float32 inputs."""
    return np.random.default_rng(seed).standard_normal((n, cols), dtype=np.float32)


def warm_ternary_kernels():
    """Compile (or load) the layer kernels on a tiny layer."""
    small = TernaryLayer.from_f32_matrix(float_matrix(8, 40))
    small.forward(ternary_inputs(1, 40)[0])
    small.forward_batch(ternary_inputs(16, 40))
