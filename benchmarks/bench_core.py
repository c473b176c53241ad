"""asv suites for the core capsule: deltas, apply, reads, layer maintenance,
consolidation, plasticity, hashing and memory.

Workloads mirror the reference crate's criterion benches (see
``../shared/REFERENCE_NUMBERS.md``) so that ``benchmarks/compare_reference.py``
can put the numbers side by side; the builders below (``make_batch``,
``read_capsule``, ``spread_capsule``...) are shared with that script's
``--direct`` mode, so both measure the same work.

Conventions
-----------
* ``setup`` builds the state and runs the timed operation once, so Numba's
  on-disk cache is loaded (or the kernel compiled) before any timing.
* Suites whose timed call changes the state (apply, consolidate, transitions)
  set ``number = 1``: setup runs again before every timed call, so each call
  sees the same starting state.
* Suites whose timed call does not change the cost of the next one (reads,
  hashing, chain verify) keep their large, read-only capsules in a per-process
  memo (``_memo``), so re-running setup between samples is cheap.
* Some ``time_*`` bodies run a fixed loop; their per-operation figure is the
  asv time divided by the loop count given in the docstring
  (``compare_reference.py`` does that division).
"""
from __future__ import annotations

import dataclasses
import gc
import os
import resource

import numpy as np

from thermogram import (SIGNAL, ConsolidationPolicy, Delta, DeltaBatch, PlasticityRule, Signal,
                        Thermogram, ThermalConfig, UpdatePolicy)
from thermogram.thermal import USIZE_MAX

SEED = 20261127

# ----------------------------------------------------------------------------- workload builders


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
    t = manual_capsule(thermal_config=SPREAD_CONFIG)
    t.apply_batch(make_batch(n, n, signals, strengths=strength_array(n)))
    t.consolidate()
    return t


# Entries due to move, re-inserted before every timed run_thermal_transitions so that
# every repeat has the same work: a quarter promote hot->warm->cool->cold, a quarter
# demote cold->cool->warm->hot, a quarter are pruned, a quarter demote warm->hot.
TRANSITION_CANDIDATES = 2000


def add_transition_candidates(t, k=TRANSITION_CANDIDATES):
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


def _memo(key, build):
    """Per-process memo for read-only state that setup would otherwise rebuild every sample."""
    v = _MEMO.get(key)
    if v is None:
        v = _MEMO[key] = build()
    return v


# ----------------------------------------------------------------------------- deltas


class DeltaCreate:
    """``Delta.create(key, value, "src")`` (the reference's delta_create uses 1 signal)."""

    params = [1, 64]
    param_names = ["signals"]

    def setup(self, signals):
        self.value = signal_vector(signals)
        Delta.create("sensor.temperature", self.value, "src")

    def time_delta_create(self, signals):
        Delta.create("sensor.temperature", self.value, "src")

    def time_delta_create_and_hash(self, signals):
        Delta.create("sensor.temperature", self.value, "src").compute_hash()


class DeltaHash:
    """SHA-256 over a delta's canonical bytes; ``verify_hash`` = recompute + compare
    (the reference's hash_verify/signals=N)."""

    params = [1, 64]
    param_names = ["signals"]

    def setup(self, signals):
        self.delta = Delta.create("sensor.temperature", signal_vector(signals), "src")
        self.delta.verify_hash()

    def time_compute_hash(self, signals):
        self.delta.compute_hash()

    def time_verify_hash(self, signals):
        self.delta.verify_hash()


class ChainVerify:
    """``Thermogram.verify()`` of a chain: genesis + ``records`` single-delta records
    (1 signal each). Per record = time / (records + 1)."""

    params = [1000]
    param_names = ["records"]

    def setup(self, records):
        def build():
            t = manual_capsule()
            v = signal_vector(1)
            for i in range(records):
                t.apply_delta(Delta.update(f"key_{i % 100}", v, "src"))
            return t
        self.t = _memo(("chain", records), build)
        self.t.verify()

    def time_verify(self, records):
        self.t.verify()


# ----------------------------------------------------------------------------- apply


class ApplyDelta:
    """One ``apply_delta`` of a pre-built Update (prev_hash None, 8 signals) onto a
    manual-policy capsule already holding ``pending`` pending deltas."""

    params = [10, 100, 1000, 10000]
    param_names = ["pending"]
    number = 1

    def setup(self, pending):
        t = manual_capsule()
        t.apply_batch(make_batch(pending, prefix="pend_", types="create"))
        v = signal_vector(8)
        t.apply_delta(Delta.update("warmup", v, "src"))
        self.t = t
        self.delta = Delta.update("bench_key", v, "src")

    def time_apply_delta(self, pending):
        self.t.apply_delta(self.delta)


class ApplyDeltaStream:
    """10,000 x (``Delta.create`` + ``apply_delta``) in a row onto a fresh manual-policy
    capsule, 10,000 distinct keys, 8 signals (the reference's delta_append_stream).
    Per delta = time / 10,000."""

    N = 10_000
    number = 1
    timeout = 300

    def setup(self):
        self.keys = make_keys(self.N)
        self.value = signal_vector(8)
        warm = manual_capsule()
        warm.apply_delta(Delta.create("warmup", self.value, "src"))
        self.t = manual_capsule()

    def time_apply_delta_stream(self):
        t, v = self.t, self.value
        for k in self.keys:
            t.apply_delta(Delta.create(k, v, "src"))


class ApplyBatch:
    """``apply_batch`` of one 10,000-row DeltaBatch (1,000 distinct keys, 8 signals,
    type update) onto a manual-policy capsule: ``fresh`` (empty) or ``known_keys``
    (the 1,000 keys already consolidated). Per delta = time / 10,000."""

    N = 10_000
    KEYS = 1000
    SIGNALS = 8
    params = ["fresh", "known_keys"]
    param_names = ["capsule"]
    number = 1

    def setup(self, capsule):
        warm = manual_capsule()
        warm.apply_batch(make_batch(100, 10, self.SIGNALS))
        t = manual_capsule()
        if capsule == "known_keys":
            t.apply_batch(make_batch(self.KEYS, self.KEYS, self.SIGNALS))
            t.consolidate()
        self.t = t
        self.batch = make_batch(self.N, self.KEYS, self.SIGNALS)

    def time_apply_batch(self, capsule):
        self.t.apply_batch(self.batch)


class BatchFromArrays:
    """``DeltaBatch.from_arrays`` of the ApplyBatch workload (10,000 rows, 1,000 keys,
    8 signals): the cost of building the batch a caller then applies."""

    def setup(self):
        self.keys = make_keys(ApplyBatch.N, ApplyBatch.KEYS)
        self.values = signal_matrix(ApplyBatch.N, ApplyBatch.SIGNALS)
        DeltaBatch.from_arrays(self.keys, self.values, types="update")

    def time_from_arrays(self):
        DeltaBatch.from_arrays(self.keys, self.values, types="update")


# ----------------------------------------------------------------------------- reads


class Read:
    """One ``read(key)`` (see ``read_target`` for the kinds) on a capsule of ``size``
    consolidated hot entries + 100 cold-only entries."""

    params = ([10, 1000, 100_000], list(READ_KINDS))
    param_names = ["size", "kind"]
    timeout = 300

    def setup(self, size, kind):
        variant, self.key = read_target(size, kind)
        self.t = _memo(("read", size, variant), lambda: read_capsule(size, variant))
        self.t.read(self.key)

    def time_read(self, size, kind):
        self.t.read(self.key)


# ----------------------------------------------------------------------------- layer maintenance


class ApplyDecay:
    """``apply_decay()`` over ``entries`` entries spread over the four layers
    (``spread_capsule``, strengths uniform 26..255), called again and again on one
    capsule, as the reference's criterion loop does. The decay kernel is branch-free,
    so its cost does not depend on the strengths it meets (flat over 60 successive
    decays); ``ApplyDecayFresh`` times the first call on a just-built capsule."""

    params = [1000, 100_000, 1_000_000]
    param_names = ["entries"]
    timeout = 900

    def setup(self, entries):
        self.t = _memo(("decay", entries), lambda: spread_capsule(entries))
        self.t.apply_decay()

    def time_apply_decay(self, entries):
        self.t.apply_decay()


class ApplyDecayFresh:
    """The first ``apply_decay()`` on a freshly built capsule (caches cold after the build)."""

    params = [100_000]
    param_names = ["entries"]
    number = 1
    repeat = (3, 10, 30.0)
    timeout = 900

    def setup(self, entries):
        _memo(("decay-warm",), lambda: spread_capsule(100).apply_decay() or True)
        self.t = spread_capsule(entries)

    def time_apply_decay_fresh(self, entries):
        self.t.apply_decay()


class ThermalTransitions:
    """``run_thermal_transitions()`` over ``entries`` entries spread over the four layers
    plus 2,000 entries due to move (``add_transition_candidates``, re-inserted before
    every timed call, so every repeat does the same moves)."""

    params = [100_000, 1_000_000]
    param_names = ["entries"]
    number = 1
    repeat = (3, 10, 60.0)
    timeout = 900

    def setup(self, entries):
        def build():
            t = spread_capsule(entries)
            add_transition_candidates(t)
            t.run_thermal_transitions()  # kernels loaded; candidates settled once
            return t
        t = _memo(("spread-transitions", entries), build)
        add_transition_candidates(t)
        self.t = t

    def time_run_thermal_transitions(self, entries):
        self.t.run_thermal_transitions()


# ----------------------------------------------------------------------------- consolidation


class Consolidate:
    """``consolidate()`` of ``pending`` pending deltas over min(pending, 100) distinct keys
    (8 signals, type update) on a fresh manual-policy capsule, as the reference's bench."""

    params = [10, 100, 1000, 10000]
    param_names = ["pending"]
    number = 1

    def setup(self, pending):
        warm = manual_capsule()
        warm.apply_batch(make_batch(20, 10))
        warm.consolidate()
        self.t = manual_capsule()
        self.t.apply_batch(make_batch(pending, min(pending, 100)))

    def time_consolidate(self, pending):
        self.t.consolidate()


# ----------------------------------------------------------------------------- plasticity


class Plasticity:
    """``PlasticityRule.apply_update_array(cur, new, 3600.0)`` over 1,000,000 strengths
    (per element = time / 1e6), and the scalar ``apply_update`` for one pair."""

    N = 1_000_000
    params = list(POLICY_RULES)
    param_names = ["policy"]

    def setup(self, policy):
        self.rule = POLICY_RULES[policy]()
        self.cur, self.new = _memo(("plast", self.N), lambda: plasticity_inputs(self.N))
        self.c, self.n = Signal.positive(120), Signal.negative(200)
        self.rule.apply_update_array(self.cur[:10], self.new[:10], 3600.0)
        self.rule.apply_update(self.c, self.n, 3600.0)

    def time_apply_update_array(self, policy):
        self.rule.apply_update_array(self.cur, self.new, 3600.0)

    def time_apply_update_scalar(self, policy):
        self.rule.apply_update(self.c, self.n, 3600.0)


# ----------------------------------------------------------------------------- memory


class Memory:
    """1,000,000 consolidated entries x 64 signals built from one batch."""

    timeout = 900

    def setup(self):
        consolidated_capsule(10, MEMORY_SIGNALS)

    def peakmem_consolidated_1m_x64(self):
        build_memory_capsule()

    def track_resident_bytes_per_entry(self):
        return resident_bytes_per_entry()

    track_resident_bytes_per_entry.unit = "bytes"
