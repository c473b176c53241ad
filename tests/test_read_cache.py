"""``Thermogram.read`` answers keys read before from a cache, without the capsule lock.

The cache must never give an answer the locked path would not: every change that can alter
a key's read result drops the key before the lock is released. These tests drive random
sequences of every kind of change and compare each cached read with the uncached lookup
(``read_with_state``), and read from several threads while another one writes.
"""
from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from thermogram import Delta, DeltaBatch, Signal, Thermogram
from thermogram.consolidation import ConsolidationPolicy
from thermogram.signal import SIGNAL
from thermogram.thermal import ThermalState

KEYS = ["a", "b", "c", "d", "e", "never"]


def sv(*mags, pol=1):
    v = np.empty(len(mags), SIGNAL)
    v["polarity"] = pol
    v["magnitude"] = mags
    return v


def uncached(t, key):
    hit = t.read_with_state(key)
    return None if hit is None else hit[0]


def same(a, b):
    if a is None or b is None:
        return a is None and b is None
    return a.tobytes() == b.tobytes()


def apply(t, op, key, mag):
    """One change of kind ``op``; a change the capsule refuses leaves it as it was."""
    if op == "write":
        t.write(key, sv(mag, mag // 2 + 1), Signal.positive(mag))
    elif op == "delete":
        if t.read_with_state(key) is not None:
            t.delete(key)
    elif op == "merge":
        t.apply_delta(Delta.merge(key, sv(mag), "m", strength=Signal.positive(mag)))
    elif op == "batch":
        t.apply_batch(DeltaBatch.from_deltas(
            [Delta.update(k, sv(mag, len(k)), "b", strength=Signal.positive(mag)) for k in (key, "a")]))
    elif op == "consolidate":
        t.consolidate()
    elif op == "reinforce":
        t.reinforce(key, Signal.positive(mag))
    elif op == "weaken":
        t.weaken(key, Signal.positive(mag))
    elif op == "decay":
        t.apply_decay()
    elif op == "transitions":
        t.run_thermal_transitions()
    elif op == "crystallize":
        t.crystallize()
    elif op == "prune":
        t.prune_hot()
    elif op == "warm":
        t.warm(key)
    elif op == "insert":
        t.insert_entry(key, sv(mag, 1, 2), Signal.positive(mag), ThermalState(mag % 4))
    else:  # pragma: no cover - the strategy draws only the names above
        raise AssertionError(op)


OPS = ["write", "delete", "merge", "batch", "consolidate", "reinforce", "weaken", "decay",
       "transitions", "crystallize", "prune", "warm", "insert"]


@pytest.mark.parametrize("semantics", ["fixed", "reference"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(st.tuples(st.sampled_from(OPS), st.sampled_from(KEYS[:-1]),
                                st.integers(1, 255)), min_size=1, max_size=40))
def test_cached_reads_equal_the_uncached_lookup_after_every_change(semantics, steps):
    t = Thermogram("rc", policy=ConsolidationPolicy.manual_only(), semantics=semantics)
    for op, key, mag in steps:
        apply(t, op, key, mag)
        for k in KEYS:
            first = t.read(k)  # fills the cache (or comes from it)
            assert same(first, uncached(t, k)), (op, key, k)
            assert t.read(k) is first  # the cached answer is the same object
    for k in KEYS:
        assert same(t.read(k), uncached(t, k))


def test_cached_views_are_read_only_and_outlive_the_change():
    t = Thermogram("rc", policy=ConsolidationPolicy.manual_only())
    t.write("a", sv(10))
    t.consolidate()
    old = t.read("a")
    assert not old.flags.writeable
    t.write("a", sv(20))
    t.consolidate()
    assert old.tolist() == [(1, 10)]  # what it was when read
    assert t.read("a").tolist() == [(1, 20)]


def test_readers_never_go_back_in_time_while_a_writer_changes_the_key():
    """Three threads read one key while a fourth writes it 1,500 times (the count m as two
    magnitudes: m // 256, m % 256), consolidating every 50 writes; each reader's observed
    counts never decrease and every read is a value the key had."""
    t = Thermogram("rc", policy=ConsolidationPolicy.manual_only())
    n = 1500

    def count(v):
        hi, lo = v["magnitude"].tolist()
        return hi * 256 + lo

    t.write("k", sv(0, 1))
    start = threading.Barrier(4)
    done = threading.Event()
    seen = [[] for _ in range(3)]
    errors = []

    def reader(out):
        try:
            start.wait()
            while not done.is_set():
                out.append(count(t.read("k")))
            out.append(count(t.read("k")))
        except BaseException as e:  # reported below
            errors.append(e)

    def writer():
        try:
            start.wait()
            for m in range(2, n + 1):
                t.write("k", sv(m // 256, m % 256))
                if m % 50 == 0:
                    t.consolidate()
        except BaseException as e:
            errors.append(e)
        finally:
            done.set()

    threads = [threading.Thread(target=reader, args=(s,)) for s in seen] + [threading.Thread(target=writer)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    for s in seen:
        assert s, "a reader read nothing"
        assert all(1 <= m <= n for m in s)
        assert all(x <= y for x, y in zip(s, s[1:])), "a read went back in time"
        assert s[-1] == n  # after the writer finished, every reader sees its last write
    assert count(t.read("k")) == n
