"""asv suites for the core capsule: deltas, apply, reads, layer maintenance,
consolidation, plasticity, hashing and memory.

Workloads mirror the reference crate's benches (its harness in ``../shared/peer``
runs them, and runs these suites' own definitions with ``harness extra``) so that
``tools/compare_reference.py`` can put the numbers of one run side by side (suites
on the crate's exact definitions where ours differ: ``bench_reference_workloads``); the builders (``make_batch``,
``read_capsule``, ``spread_capsule``...) live in ``benchmarks/common.py`` and are
shared with that script's ``--direct`` mode, so both measure the same work.

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

import numpy as np

from thermogram import Delta, DeltaBatch, Signal, signals_from_floats, signals_to_floats

from .common import (  # noqa: F401  (all re-exported: tools/compare_reference.py uses them)
    MEMORY_ENTRIES, MEMORY_SIGNALS, POLICY_RULES, READ_COLD, READ_KINDS, READ_PENDING, READ_SIGNALS,
    SEED, SPREAD_CONFIG, TRANSITION_CANDIDATES, add_transition_candidates, build_memory_capsule,
    consolidated_capsule, make_batch, make_keys, manual_capsule, memo as _memo, plasticity_inputs,
    read_capsule, read_target, resident_bytes, resident_bytes_per_entry, signal_matrix, signal_vector,
    spread_capsule, strength_array,
)


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

    # Docstrings of timed methods are set after them: asv versions a benchmark by the hash
    # of its method's source, so results stay comparable with those of earlier commits.
    time_delta_create.__doc__ = "Build one delta (no hash)."

    def time_delta_create_and_hash(self, signals):
        Delta.create("sensor.temperature", self.value, "src").compute_hash()

    time_delta_create_and_hash.__doc__ = "Build one delta and compute its hash."


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

    time_compute_hash.__doc__ = "SHA-256 of the delta's canonical bytes."

    def time_verify_hash(self, signals):
        self.delta.verify_hash()

    time_verify_hash.__doc__ = "Recompute the hash and compare."


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

    time_verify.__doc__ = "Verify the whole chain."


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

    time_apply_delta.__doc__ = "Apply one Update delta."


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

    time_apply_delta_stream.__doc__ = "10,000 creates, each applied at once (per delta: time / 10,000)."


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

    time_apply_batch.__doc__ = "Apply the 10,000-row batch (per delta: time / 10,000)."


class BatchFromArrays:
    """``DeltaBatch.from_arrays`` of the ApplyBatch workload (10,000 rows, 1,000 keys,
    8 signals): the cost of building the batch a caller then applies."""

    def setup(self):
        self.keys = make_keys(ApplyBatch.N, ApplyBatch.KEYS)
        self.values = signal_matrix(ApplyBatch.N, ApplyBatch.SIGNALS)
        DeltaBatch.from_arrays(self.keys, self.values, types="update")

    def time_from_arrays(self):
        DeltaBatch.from_arrays(self.keys, self.values, types="update")

    time_from_arrays.__doc__ = "Build the 10,000-row batch from keys and a SIGNAL matrix."


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

    time_read.__doc__ = "One read of the key of this kind."


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

    time_apply_decay.__doc__ = "Decay every entry once."


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

    time_apply_decay_fresh.__doc__ = "The first decay after the build."


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

    time_run_thermal_transitions.__doc__ = "Promote, demote and prune once."


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

    time_consolidate.__doc__ = "Fold the pending deltas, prune, run the transitions."


class ConsolidateIntoLarge:
    """``consolidate()`` of 10 pending updates on a capsule already holding ``entries``
    settled entries, then one read: the agent-loop case, where a consolidation should cost
    what its deltas touch, not what the capsule holds."""

    params = [100_000, 1_000_000]
    param_names = ["entries"]
    number = 1
    repeat = (3, 20, 60.0)
    timeout = 900

    def setup(self, entries):
        def build():
            t = spread_capsule(entries)
            t.run_thermal_transitions()
            return t
        self.t = _memo(("spread-settled", entries), build)
        self.t.apply_batch(make_batch(10, 10))

    def time_consolidate_then_read(self, entries):
        self.t.consolidate()
        self.t.read("key_5")

    time_consolidate_then_read.__doc__ = "Fold 10 deltas into a large capsule, then read one key."


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

    time_apply_update_array.__doc__ = "The rule over 1,000,000 strength pairs (per element: time / 1e6)."

    def time_apply_update_scalar(self, policy):
        self.rule.apply_update(self.c, self.n, 3600.0)

    time_apply_update_scalar.__doc__ = "The rule for one strength pair."


class SignalConversion:
    """``signals_from_floats`` / ``signals_to_floats`` of ``n`` float32 activations (per
    element = time / n): 4,096 is one hidden state of a mid-sized language model."""

    params = [4096, 1_000_000]
    param_names = ["n"]

    def setup(self, n):
        self.x = np.random.default_rng(n).standard_normal(n).astype(np.float32)
        self.s = signals_from_floats(self.x)

    def time_signals_from_floats(self, n):
        signals_from_floats(self.x)

    time_signals_from_floats.__doc__ = "Float32 activations to a SIGNAL vector."

    def time_signals_to_floats(self, n):
        signals_to_floats(self.s)

    time_signals_to_floats.__doc__ = "A SIGNAL vector to float32 values."


# ----------------------------------------------------------------------------- memory


class Memory:
    """1,000,000 consolidated entries x 64 signals built from one batch."""

    timeout = 900

    def setup(self):
        consolidated_capsule(10, MEMORY_SIGNALS)

    def peakmem_consolidated_1m_x64(self):
        build_memory_capsule()

    peakmem_consolidated_1m_x64.__doc__ = "Peak memory of building the 1,000,000 x 64 capsule."

    def track_resident_bytes_per_entry(self):
        return resident_bytes_per_entry()

    track_resident_bytes_per_entry.unit = "bytes"
    track_resident_bytes_per_entry.__doc__ = "Resident bytes per entry of the 1,000,000 x 64 capsule."
