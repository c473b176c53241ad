"""``kernels/consolidation.py`` against :mod:`naive.consolidation` on random tables and pending deltas."""
import numpy as np
from hypothesis import given, strategies as st

from naive import consolidation as nc
from naive import plasticity as npl
from thermogram.kernels import consolidation as kc

from ._table import dict_layers, from_table, strengths, to_table

NKEYS = 6
pending_deltas = st.lists(st.tuples(
    st.integers(0, 3),                                                  # type
    st.integers(0, NKEYS - 1),                                          # key id
    st.tuples(st.integers(1000, 2000), st.integers(0, 8)),              # value (voff, vlen)
    strengths,
    st.integers(-(10**12), 10**13)), max_size=12)                       # timestamp


def pending_columns(pending):
    return (np.array([p[1] for p in pending], np.int64), np.array([p[0] for p in pending], np.uint8),
            np.array([p[3][0] for p in pending], np.int8), np.array([p[3][1] for p in pending], np.uint8),
            np.array([p[4] for p in pending], np.int64), np.array([p[2][0] for p in pending], np.int64),
            np.array([p[2][1] for p in pending], np.int64))


@given(st.integers(-(2**62), 2**62))
def test_whole_seconds_truncates_toward_zero(ns):
    assert kc.whole_seconds(ns) == nc.whole_seconds(ns)


@given(st.integers(0, 4), st.integers(0, 255), st.integers(0, 255), strengths, strengths,
       st.integers(-(10**15), 10**15), st.integers(-(10**15), 10**15))
def test_fold_strength_is_the_rule_over_whole_seconds(policy, decay, lr, cur, new, ts0, ts1):
    pol, mag, ts = np.array([cur[0]], np.int8), np.array([cur[1]], np.uint8), np.array([ts0], np.int64)
    with np.errstate(all="ignore"):
        got = kc.fold_strength(0, np.int64(ts1), np.int8(new[0]), np.uint8(new[1]), policy, np.uint8(decay),
                               np.uint8(lr), pol, mag, ts)
    want = npl.apply_update(policy, decay, lr, cur, new, nc.whole_seconds(ts1 - ts0))
    assert tuple(int(v) for v in got) == want


@given(dict_layers(NKEYS), pending_deltas, st.integers(0, 4), st.integers(0, 255), st.integers(0, 255),
       st.booleans(), st.integers(0, 2**32 - 1))
def test_plan_and_fold_pending_match_naive(layers, pending, policy, decay, lr, fixed, seed):
    rng = np.random.default_rng(seed)
    plan = nc.plan_fold(pending, layers)
    # the spare rows the plan asks for, on top of a few freed rows the fold may reuse
    t = to_table(layers, NKEYS, rng, spare=plan, free=int(rng.integers(0, 3)))
    p_kid, p_type, p_pol, p_mag, p_ts, p_voff, p_vlen = pending_columns(pending)
    seen = np.zeros(NKEYS, np.uint8)
    assert kc.plan_fold(p_kid, p_type, t["slot"], seen) == plan
    assert not seen.any()
    stats = np.zeros(4, np.int64)
    with np.errstate(all="ignore"):
        nrows, n_free = kc.fold_pending(p_kid, p_type, p_pol, p_mag, p_ts, p_voff, p_vlen,
                                        policy, np.uint8(decay), np.uint8(lr), fixed,
                                        t["layer"], t["kid"], t["pol"], t["mag"], t["count"], t["ts"],
                                        t["voff"], t["vlen"], t["slot"], t["nrows"], t["free_stack"],
                                        t["n_free"], stats)
    t["nrows"], t["n_free"] = int(nrows), int(n_free)
    want = nc.fold_pending(layers, pending, policy, decay, lr, fixed)
    assert stats.tolist() == want
    assert from_table(t) == layers
