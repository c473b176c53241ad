"""The reference crate's own benchmark workloads, run on this project.

``tools/compare_reference.py`` compares each of these with the row of the same definition
in the reference harness's ``bench`` table (``../shared/peer/harness/src/main.rs``), where
our default suites (``bench_core``) measure a different workload: ``apply_delta`` on pending
deltas applied one by one with an explicit ``prev_hash``, ``apply_decay`` of an all-hot
capsule, ``run_thermal_transitions`` on entries spread by index over the four layers, and
the scalar plasticity call on the crate's arguments.

Run with ``asv run --python=same --bench bench_reference_workloads`` (or through
``python tools/compare_reference.py --direct``).
"""
from __future__ import annotations

import time

import numpy as np

from thermogram import Delta, Signal
from thermogram.core import record_import
from thermogram.signal import SIGNAL

from .common import POLICY_RULES, consolidated_capsule, manual_capsule


def one_signal(magnitude):
    """A one-signal value ``[Signal.positive(magnitude)]`` (the harness's ``sig_val``)."""
    v = np.empty(1, SIGNAL)
    v["polarity"] = 1
    v["magnitude"] = magnitude
    return v


def with_updates(t, n, n_keys, prefix="key_"):
    """``n`` Update deltas (1 signal, strength 128) on ``prefix{i % n_keys}``, applied one
    by one with an explicit ``prev_hash`` (the harness's ``with_updates``)."""
    v = one_signal(100)
    s = Signal.positive(128)
    for i in range(n):
        t.apply_delta(Delta.update(f"{prefix}{i % n_keys}", v, "source", s, prev_hash=t.head_hash))
    return t


def apply_delta_capsule(pending):
    """(capsule, delta): ``pending`` pending updates on as many keys, and the update of a new
    key to apply (1 signal, strength 128, linked to the head), as ``delta_append``."""
    t = with_updates(manual_capsule(), pending, pending)
    d = Delta.update("new_key", one_signal(200), "source", Signal.positive(128), prev_hash=t.head_hash)
    return t, d


def transitions_capsule(n, seed=20261127):
    """``n`` entries ``key_i`` in layer ``i % 4``, strength uniform 0..255, update count
    uniform 0..100, one signal each (the harness's ``transitions_capsule``: a large part of
    them move in one ``run_thermal_transitions``). Built with one import record."""
    rng = np.random.default_rng(seed)
    t = manual_capsule()
    now = time.time_ns()
    entries = {
        "keys": [f"key_{i}" for i in range(n)],
        "layer": (np.arange(n) % 4).astype(np.uint8),
        "pol": np.ones(n, np.int8),
        "mag": rng.integers(0, 256, n).astype(np.uint8),
        "count": rng.integers(0, 101, n).astype(np.uint64),
        "ts": np.full(n, now, np.int64),
        "values": np.repeat(one_signal(100), n),
        "lengths": np.ones(n, np.int64),
    }
    record_import(t, entries, {"last_consolidation": now, "total_deltas": 0, "total_consolidations": 0})
    return t


class DeltaCreateReference:
    """``Delta.create("test_key", [Signal.positive(100)], "source")`` (``delta_create``)."""

    def setup(self):
        self.v = one_signal(100)

    def time_delta_create(self):
        Delta.create("test_key", self.v, "source")


class ApplyDeltaReference:
    """One ``apply_delta`` of a linked one-signal Update onto ``pending`` pending updates
    applied one by one, manual policy (``delta_append/manual_policy``)."""

    params = [10, 100, 1000, 10000]
    param_names = ["pending"]
    number = 1
    repeat = (5, 25, 30.0)

    def setup(self, pending):
        self.t, self.delta = apply_delta_capsule(pending)

    def time_apply_delta(self, pending):
        self.t.apply_delta(self.delta)


class ApplyDecayAllHot:
    """Repeated ``apply_decay`` of ``entries`` consolidated hot entries (``apply_decay``:
    the crate's ``hot_capsule``, one signal, strength 128)."""

    params = [1000, 100_000]
    param_names = ["entries"]

    def setup(self, entries):
        self.t = consolidated_capsule(entries, 1, Signal.positive(128))
        self.t.apply_decay()

    def time_apply_decay(self, entries):
        self.t.apply_decay()


class TransitionsReference:
    """One ``run_thermal_transitions`` of :func:`transitions_capsule` (``run_thermal_transitions``)."""

    params = [100_000]
    param_names = ["entries"]
    number = 1
    repeat = (3, 9, 60.0)
    timeout = 300

    def setup(self, entries):
        transitions_capsule(100).run_thermal_transitions()  # kernels loaded
        self.t = transitions_capsule(entries)

    def time_run_thermal_transitions(self, entries):
        self.t.run_thermal_transitions()


class PlasticityScalarReference:
    """``rule.apply_update(Signal.positive(128), Signal.positive(204), 100.0)``
    (``plasticity_apply_update/<policy>``)."""

    params = list(POLICY_RULES)
    param_names = ["policy"]

    def setup(self, policy):
        self.f = POLICY_RULES[policy]().apply_update
        self.c, self.n = Signal.positive(128), Signal.positive(204)
        self.f(self.c, self.n, 100.0)

    def time_apply_update_scalar(self, policy):
        self.f(self.c, self.n, 100.0)
