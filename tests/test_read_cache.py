"""``Thermogram.read`` answers keys read before from a cache, without the capsule lock.

The cache must never give an answer the locked path would not: every change that can alter
a key's read result drops the key before the lock is released. These tests drive random
sequences of every kind of change and compare each cached read with the uncached lookup
(``read_with_state``), and read from several threads while another one writes.
"""
from __future__ import annotations

import os
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from thermogram import Delta, DeltaBatch, Signal, Thermogram, ThermogramError
from thermogram.consolidation import ConsolidationPolicy, ConsolidationTrigger
from thermogram.limits import Limits
from thermogram.plasticity import PlasticityRule
from thermogram.signal import SIGNAL
from thermogram.thermal import ThermalConfig, ThermalState

KEYS = ["a", "b", "c", "d", "e", "never"]


def sv(*mags, pol=1):
    v = np.empty(len(mags), SIGNAL)
    v["polarity"] = pol
    v["magnitude"] = mags
    return v


def run_threads(threads):
    """Start every thread, then wait for all of them."""
    for th in threads:
        th.start()
    for th in threads:
        th.join()


def race_readers_against_writer(read, write, readers=3):
    """``readers`` threads call ``read()`` until ``write()`` (in one more thread) returns,
    then once more; returns each reader's results in order. An error in any thread fails
    the test."""
    start = threading.Barrier(readers + 1)
    done = threading.Event()
    errors = []
    seen = [[] for _ in range(readers)]

    def reader(out):
        try:
            start.wait()
            while not done.is_set():
                out.append(read())
            out.append(read())
        except BaseException as e:  # reported below
            errors.append(e)

    def writer():
        try:
            start.wait()
            write()
        except BaseException as e:
            errors.append(e)
        finally:
            done.set()

    run_threads([threading.Thread(target=reader, args=(o,)) for o in seen] + [threading.Thread(target=writer)])
    assert not errors
    return seen


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

    def write():
        for m in range(2, n + 1):
            t.write("k", sv(m // 256, m % 256))
            if m % 50 == 0:
                t.consolidate()

    seen = race_readers_against_writer(lambda: count(t.read("k")), write)
    for s in seen:
        assert s, "a reader read nothing"
        assert all(1 <= m <= n for m in s)
        assert all(x <= y for x, y in zip(s, s[1:])), "a read went back in time"
        assert s[-1] == n  # after the writer finished, every reader sees its last write
    assert count(t.read("k")) == n


# ---------------------------------------------------------------------------------------------
# more kinds of change: value-keeping merges in batches, batch deletes, configuration, warming
# through a predicate that reads, automatic consolidation, new capsules from the persistence
# seam, and calls that fail (each must leave every read as it was)

RULES = [PlasticityRule.stdp_like, PlasticityRule.aggressive, PlasticityRule.conservative,
         PlasticityRule.replace_only, PlasticityRule.bayesian]
THERMALS = [ThermalConfig.default, ThermalConfig.fast_learner, ThermalConfig.organic,
            lambda: ThermalConfig.default().replace(min_observations=(1, 1, 1, 1),
                                                    allow_demotion=(False, True, True, True))]
POLICIES = [lambda: ConsolidationPolicy.manual_only(),
            lambda: ConsolidationPolicy((ConsolidationTrigger.delta_count(2),)),
            lambda: ConsolidationPolicy((ConsolidationTrigger.delta_count(3),), enable_pruning=False)]


def held(t, keys):
    return [k for k in keys if uncached(t, k) is not None]


def apply_more(t, op, key, mag, keys):
    """One change of kind ``op``; returns the capsule to go on with (a new one for the
    persistence round trips). ``fail_*`` ops must raise a ThermogramError."""
    if op == "merge_batch":  # a merge on a pending update, a merge on a merge, a merge on nothing
        t.apply_batch(DeltaBatch.from_deltas([
            Delta.update(keys[0], sv(mag), "b", strength=Signal.positive(mag)),
            Delta.merge(keys[0], sv(mag, 7), "b", strength=Signal.positive(mag)),
            Delta.merge(key, sv(mag, 8), "b", strength=Signal.positive(mag)),
            Delta.merge(key, sv(mag, 9), "b", strength=Signal.positive(mag))]))
    elif op == "delete_batch":  # delete held keys, one of them written again in the same batch
        hk = held(t, keys[:-1])[:2]
        if hk:
            rows = [Delta.delete(k, "b") for k in hk] + [Delta.update(hk[0], sv(mag, 3), "b")]
            t.apply_batch(DeltaBatch.from_deltas(rows))
    elif op == "rule":
        t.configure(rule=RULES[mag % len(RULES)]())
    elif op == "thermal":
        t.configure(thermal_config=THERMALS[mag % len(THERMALS)]())
    elif op == "policy":  # some policies consolidate inside apply_delta / apply_batch
        t.configure(policy=POLICIES[mag % len(POLICIES)]())
    elif op == "warm_matching":  # the predicate reads (and so caches) under the capsule's lock
        t.warm_matching(lambda k, e: t.read(k) is not None and (mag + len(k)) % 2 == 0)
    elif op == "insert_cold":
        t.insert_entry(key, sv(mag, 5), Signal.positive(mag), ThermalState.COLD, update_count=mag)
        t.warm(key)
    elif op == "bytes":
        t = Thermogram.from_bytes(t.to_bytes())
    elif op == "arrow":  # the entry table only: pending deltas are folded first
        t.consolidate()
        t = Thermogram.from_arrow(t.to_arrow(), semantics=t.semantics,
                                  policy=ConsolidationPolicy.manual_only())
    elif op == "replay":
        t = Thermogram.replay(t.records())
    elif op == "fail_replayed":
        old = [r for r in t.records() if r.kind == "delta"]
        if old:  # a delta already in the chain
            t.apply_delta(old[-1])
        else:  # a delta that links to something other than the head
            d = Delta.update(key, sv(mag), "x")
            d.prev_hash = "0" * 64
            t.apply_delta(d)
    elif op == "fail_limit":
        lim = t.limits
        t.limits = Limits(max_value_len=1, max_pending=t.pending_count)
        try:
            if mag % 2:
                t.write(key, sv(mag, mag))
            else:
                t.apply_batch(DeltaBatch.from_deltas([Delta.update(key, sv(mag), "b")]))
        finally:
            t.limits = lim
    elif op == "fail_delete":  # fixed: a batch that deletes a key nobody holds fails as a whole
        t.apply_batch(DeltaBatch.from_deltas([Delta.update(key, sv(mag), "b"),
                                              Delta.delete("never", "b")]))
    else:
        apply(t, op, key, mag)
    return t


MORE_OPS = OPS + ["merge_batch", "delete_batch", "rule", "thermal", "policy", "warm_matching",
                  "insert_cold", "bytes", "arrow", "replay", "fail_replayed", "fail_limit",
                  "fail_delete"]


@pytest.mark.parametrize("semantics", ["fixed", "reference"])
@settings(max_examples=int(os.environ.get("THERMOGRAM_READ_CACHE_EXAMPLES", "80")),
          deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(st.tuples(st.sampled_from(MORE_OPS), st.integers(0, 4), st.integers(1, 255)),
                      min_size=1, max_size=30))
def test_cached_reads_equal_the_uncached_lookup_after_every_kind_of_change(semantics, steps):
    # the empty key is valid under semantics="reference" only
    keys = KEYS[:-1] + ([""] if semantics == "reference" else []) + ["never"]
    t = Thermogram("rc", policy=ConsolidationPolicy.manual_only(), semantics=semantics)
    before = {k: t.read(k) for k in keys}
    for op, ki, mag in steps:
        key = keys[ki if semantics == "fixed" else (ki + 1) % (len(keys) - 1) - 1]
        if op.startswith("fail_"):
            if op == "fail_delete" and semantics != "fixed":
                continue
            with pytest.raises(ThermogramError):
                t = apply_more(t, op, key, mag, keys)
            for k in keys:  # a failed call changes nothing, cached or not
                assert same(t.read(k), before[k]), (op, k)
                assert same(before[k], uncached(t, k)), (op, k)
            continue
        new = apply_more(t, op, key, mag, keys)
        if new is not t:  # a capsule from the persistence seam reads as the one it came from
            for k in keys:
                assert same(new.read(k), uncached(t, k)), (op, k)
            t = new
        for k in keys:
            first = t.read(k)
            assert same(first, uncached(t, k)), (op, key, k)
            assert t.read(k) is first
            before[k] = first


def _reads(t, keys):
    """Each key's read (cached from then on), checked against the uncached lookup."""
    out = {}
    for k in keys:
        out[k] = t.read(k)
        assert same(out[k], uncached(t, k)), k
    return out


def _same_reads(a, b):
    return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)


@pytest.mark.parametrize("kind", ["eio", "enospc", "short"])
@pytest.mark.parametrize("fail_at", [1, 2, 3])
def test_a_change_that_fails_on_io_leaves_cached_reads_as_the_state(tmp_path, kind, fail_at):
    """A journal write that fails (injected I/O fault) raises DurabilityError: cached reads
    stay what the (unchanged or poisoned) state reads, with and without an automatic
    consolidation in the failed call."""
    from test_durability import FaultyOps

    from thermogram.errors import DurabilityError
    from thermogram.io import files

    keys = ["a", "b", "c", "new"]
    policy = ConsolidationPolicy((ConsolidationTrigger.delta_count(2),)) if fail_at > 1 \
        else ConsolidationPolicy.manual_only()
    t = Thermogram.open(tmp_path / "c.thermo", create=True, policy=policy)
    t.write("a", sv(1))
    t.write("b", sv(2))
    t.write("c", sv(3))
    before = _reads(t, keys)
    ops = FaultyOps(fail_at=fail_at, kind=kind)
    with files.use_ops(ops), pytest.raises(DurabilityError):
        for m in range(4, 9):
            t.write("a", sv(m))
            t.write("new", sv(m))
    assert ops.fired
    after = _reads(t, keys)
    if fail_at == 1:  # the first record never reached the journal: nothing changed
        assert _same_reads(before, after)
    t.close()
    with Thermogram.open(tmp_path / "c.thermo") as u:  # what was made durable, read afresh
        _reads(u, keys)


def test_checkpoint_close_reopen_and_journal_replay_read_what_the_writer_read(tmp_path):
    keys = ["a", "b", "c", "gone", "never"]
    p = tmp_path / "c.thermo"
    t = Thermogram.open(p, create=True, policy=ConsolidationPolicy.manual_only())
    t.write("a", sv(1))
    t.write("gone", sv(9))
    t.consolidate()
    _reads(t, keys)
    t.checkpoint()  # a new snapshot and journal segment change no read
    t.write("b", sv(2))
    t.delete("gone")
    t.apply_batch(DeltaBatch.from_deltas([Delta.merge("a", sv(5), "m"), Delta.update("c", sv(3), "m")]))
    last = _reads(t, keys)
    t.close()
    assert _same_reads(last, _reads(t, keys))  # closing changes no read
    with Thermogram.open(p) as u:  # snapshot + journal replayed on open
        assert _same_reads(last, _reads(u, keys))
        u.consolidate()
        folded = _reads(u, keys)
        u.checkpoint()
    with Thermogram.open(p, readonly=True) as r:
        assert _same_reads(folded, _reads(r, keys))
    assert _same_reads(folded, _reads(Thermogram.load(p), keys))


def test_colony_moves_change_member_reads_only_through_cache_drops():
    """Split, merge and rebalance move keys between members (an import on one side, a delete
    batch and a consolidation on the other): every member's cached reads, taken before each
    move, equal its uncached lookups after it; the colony reads the same values throughout."""
    from thermogram.colony import ColonyConfig, ThermogramColony

    c = ThermogramColony("c", "c", config=ColonyConfig(), members=1, executor="serial",
                         policy=ConsolidationPolicy.manual_only())
    keys = [f"k{i:03d}" for i in range(60)] + ["never"]
    for i, k in enumerate(keys[:-1]):
        c.write(k, sv(i % 250 + 1, 3))
    c.consolidate()
    values = {k: c.read(k) for k in keys}

    def check():
        for m in c.members:
            _reads(m, keys)
        for k in keys:
            assert same(c.read(k), values[k]), k

    check()
    assert c.split(0)
    check()
    assert c.split(0)
    check()
    c.merge(0, 1)
    check()
    for m in c.members:  # unbalance: a member with many more keys than the others
        _reads(m, keys)
    c.rebalance()
    check()
    c.consolidate()
    check()


def test_readers_see_value_keeping_merges_and_transitions_in_order():
    """Readers of several keys while a writer alternates batches of updates and value-keeping
    merges (semantics="fixed": a merge keeps the value it lands on), consolidations and
    thermal transitions: each read is a value the writer gave the key, never older than the
    reader's previous read of it."""
    t = Thermogram("rc", policy=ConsolidationPolicy.manual_only(),
                   thermal_config=ThermalConfig.default().replace(min_observations=(1, 1, 1, 1)))
    keys = ["x", "y", "z"]
    n = int(os.environ.get("THERMOGRAM_READ_CACHE_ROUNDS", "400"))

    def count(v):
        hi, lo = v["magnitude"].tolist()[:2]
        return hi * 256 + lo

    for k in keys:
        t.write(k, sv(0, 1))

    def write():
        for m in range(2, n + 1):
            rows = [Delta.update(k, sv(m // 256, m % 256), "w") for k in keys]
            rows += [Delta.merge(k, sv(0, 0, 0), "w") for k in keys]  # keeps the update's value
            t.apply_batch(DeltaBatch.from_deltas(rows))
            if m % 7 == 0:
                t.consolidate()
            if m % 11 == 0:
                t.run_thermal_transitions()

    reads = race_readers_against_writer(lambda: {k: count(t.read(k)) for k in keys}, write)
    seen = [{k: [r[k] for r in rs] for k in keys} for rs in reads]  # per reader, per key, in order
    for s in seen:
        for k in keys:
            got = s[k]
            assert got and all(1 <= m <= n for m in got)
            assert all(x <= y for x, y in zip(got, got[1:])), "a read went back in time"
            assert got[-1] == n
    for k in keys:
        assert count(t.read(k)) == n and same(t.read(k), uncached(t, k))
