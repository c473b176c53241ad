"""Model-based tests: random operation sequences on a Thermogram against the
plain-dict NaiveCapsule, for both semantics; replay reproduces the digest."""
import numpy as np
import pytest
from hypothesis import event, given, settings, strategies as st

from naive.capsule import NaiveCapsule
from conftest import StepClock
from thermogram import (SIGNAL, ConsolidationPolicy, Delta, DeltaBatch, DeltaType, PlasticityRule,
                        Signal, ThermalConfig, Thermogram)

KEYS = [f"k{i}" for i in range(4)]
pols = st.sampled_from([-1, 0, 1])
sig = st.tuples(pols, st.integers(0, 255))
value = st.lists(sig, min_size=0, max_size=4)
configs = st.sampled_from([ThermalConfig.default(), ThermalConfig.fast_learner(), ThermalConfig.organic(),
                           ThermalConfig.default().replace(min_observations=(0, 1, 1, 2**64 - 1),
                                                           allow_warming=False)])
rules = st.sampled_from([PlasticityRule.stdp_like(), PlasticityRule.conservative(),
                         PlasticityRule.aggressive(), PlasticityRule.replace_only(),
                         PlasticityRule.bayesian()])

ops = st.one_of(
    st.tuples(st.just("insert"), st.sampled_from(KEYS), value, sig, st.integers(0, 3), st.integers(0, 60)),
    st.tuples(st.just("delta"), st.sampled_from([0, 1, 2, 3]), st.sampled_from(KEYS), value, sig,
              st.integers(-10**13, 10**13)),
    st.tuples(st.just("batch"), st.lists(st.tuples(st.sampled_from([0, 1, 3]), st.sampled_from(KEYS), sig),
                                         min_size=1, max_size=6)),
    st.tuples(st.just("consolidate")),
    st.tuples(st.just("decay")),
    st.tuples(st.just("transitions")),
    st.tuples(st.just("crystallize")),
    st.tuples(st.just("prune_hot")),
    st.tuples(st.just("warm"), st.sampled_from(KEYS)),
    st.tuples(st.just("cold_then_warm"), st.sampled_from(KEYS), value, sig),
    st.tuples(st.just("reinforce"), st.sampled_from(KEYS), sig),
    st.tuples(st.just("weaken"), st.sampled_from(KEYS), sig),
)


def snapshot(t: Thermogram):
    out = []
    for lay in range(4):
        out.append({e["key"]: (tuple(map(tuple, e["value"].tolist())), tuple(e["strength"]),
                               e["update_count"], e["updated_at"]) for e in t.entries(lay)})
    return out


def vec(v):
    return np.array(v, dtype=SIGNAL).reshape(-1)


@settings(max_examples=80)
@given(st.lists(ops, min_size=8, max_size=40), configs, rules, st.sampled_from(["fixed", "reference"]))
def test_capsule_matches_naive_model_and_replays(seq, cfg, rule, semantics):
    clock = StepClock(start=1_000_000_000_000_000_000, step=7_000_000_000)
    t = Thermogram("m", rule, thermal_config=cfg, policy=ConsolidationPolicy.manual_only(),
                   clock=clock, semantics=semantics)
    m = NaiveCapsule(cfg, rule, fixed=semantics == "fixed")
    base_ts = 1_000_000_000_000_000_000
    for op in seq:
        kind = op[0]
        if kind == "insert":
            _, key, v, s, lay, count = op
            t.insert_entry(key, vec(v), Signal(*s), lay, update_count=count, updated_at=base_ts)
            m.layers[lay][key] = {"value": [tuple(x) for x in v], "strength": s, "count": count, "ts": base_ts}
        elif kind == "delta":
            _, dtype, key, v, s, dts = op
            if dtype == 2:
                v = []
            ts = base_ts + dts
            d = Delta(dtype, key, vec(v), strength=Signal(*s), timestamp=ts)
            if dtype == 2 and semantics == "fixed" and m.read(key) is None:
                with pytest.raises(Exception):
                    t.apply_delta(d)
                continue
            t.apply_delta(d)
            m.apply(dtype, key, [tuple(x) for x in v], s, ts)
        elif kind == "batch":
            rows = op[1]
            ts = clock.last
            b = DeltaBatch.from_arrays([k for _, k, _ in rows], [vec([s]) for _, _, s in rows],
                                       np.array([s for _, _, s in rows], dtype=SIGNAL),
                                       np.array([d for d, _, _ in rows], dtype=np.uint8), ts)
            t.apply_batch(b)
            for d, k, s in rows:
                m.apply(d, k, [tuple(s)], s, ts)
        elif kind == "consolidate":
            res = t.consolidate()
            event(f"consolidated {res.deltas_processed > 0}")
            merged = m.consolidate(clock.last, prune=True)
            if semantics == "fixed":
                assert res.entries_merged == merged
        elif kind == "decay":
            t.apply_decay()
            m.decay()
        elif kind == "transitions":
            r = t.run_thermal_transitions()
            exp = m.transitions(clock.last)
            assert list(r.promoted) + list(r.demoted) + [r.pruned] == exp
        elif kind == "crystallize":
            r = t.crystallize()
            assert (r.crystallized, r.merged) == m.crystallize()
        elif kind == "prune_hot":
            assert t.prune_hot() == m.prune_hot()
        elif kind == "cold_then_warm":
            _, key, v, s = op
            t.insert_entry(key, vec(v), Signal(*s), "cold", update_count=1, updated_at=base_ts)
            m.layers[3][key] = {"value": [tuple(x) for x in v], "strength": s, "count": 1, "ts": base_ts}
            got = t.warm(key)
            event(f"warm hit: {got}")
            assert got == m.warm(key, clock.last if got else 0)
        elif kind == "warm":
            got = t.warm(op[1])
            event(f"warm hit: {got}")
            assert got == m.warm(op[1], clock.last if got else 0)
        elif kind in ("reinforce", "weaken"):
            got = getattr(t, kind)(op[1], Signal(*op[2]))
            exp = getattr(m, kind)(op[1], op[2], clock.last if got else 0)
            assert got == exp
        assert snapshot(t) == m.snapshot(), op
        for k in KEYS:
            r = t.read(k)
            e = m.read(k)
            assert (None if r is None else [tuple(x) for x in r.tolist()]) == \
                   (None if e is None else [tuple(x) for x in e]), (op, k)
    for lay_entries in snapshot(t):
        for _, (v, s, count, ts) in lay_entries.items():
            assert s[0] in (-1, 0, 1) and 0 <= s[1] <= 255
            assert all(p in (-1, 0, 1) and 0 <= mg <= 255 for p, mg in v)
    t.verify()
    r = Thermogram.replay(t.records())
    assert r.state_digest() == t.state_digest()
    assert r.head_hash == t.head_hash
    assert snapshot(r) == snapshot(t)
