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


ENTRY = ("layer", "kid", "pol", "mag", "count", "ts", "voff", "vlen")
thresholds = st.tuples(st.lists(st.integers(0, 255), min_size=4, max_size=4),
                       st.lists(st.integers(0, 7), min_size=4, max_size=4),
                       st.lists(st.integers(0, 255), min_size=4, max_size=4),
                       st.lists(st.booleans(), min_size=4, max_size=4), st.integers(0, 255))


def _steps_one_by_one(t, pending, policy, decay, lr, fixed, hot_prune, thr, transitions, now):
    """fold_pending, prune_below(hot), layer_counts, run_transitions: separate calls."""
    from thermogram.kernels import thermal as kt
    cols = pending_columns(pending)
    stats = np.zeros(16, np.int64)
    fold = np.zeros(4, np.int64)
    nrows, n_free = kc.fold_pending(*cols, policy, np.uint8(decay), np.uint8(lr), fixed,
                                    *(t[c] for c in ENTRY), t["slot"], t["nrows"], t["free_stack"],
                                    t["n_free"], fold)
    stats[:4] = fold
    t["nrows"], t["n_free"] = int(nrows), int(n_free)
    n = t["nrows"]
    if hot_prune >= 0:
        pruned, n_free = kt.prune_below(np.uint8(hot_prune), 0, t["layer"][:n], t["kid"], t["mag"][:n],
                                        t["slot"], t["free_stack"], t["n_free"])
        stats[4], t["n_free"] = pruned, int(n_free)
    counts = np.zeros(4, np.int64)
    kt.layer_counts(t["layer"][:n], counts)
    stats[5:9] = counts
    if transitions:
        out = np.zeros(7, np.int64)
        t["n_free"] = int(kt.run_transitions(*thr, np.int64(now), *(t[c][:n] for c in ENTRY), t["slot"],
                                             t["free_stack"], t["n_free"], out))
        stats[9:16] = out
    return stats.tolist()


@given(dict_layers(NKEYS), pending_deltas, st.integers(0, 4), st.integers(0, 255), st.integers(0, 255),
       st.booleans(), st.integers(-1, 255), thresholds, st.booleans(), st.booleans(), st.booleans(),
       st.integers(0, 2**32 - 1))
def test_consolidate_pending_equals_its_steps_one_by_one(layers, pending, policy, decay, lr, fixed, hot_prune,
                                                         thr, transitions, full, track, seed):
    """The fused call leaves the same table (row for row, free stack in order) and counts as
    the separate kernels; it returns the candidates plus the folded rows, or after
    transitions every live row of the keys they visited; and hotv of every key it touched
    is that key's hottest copy."""
    from thermogram.kernels import thermal as kt
    import copy
    full = full or not track  # the caller's contract: without candidates, a full scan
    rng = np.random.default_rng(seed)
    t = to_table(layers, NKEYS, rng, spare=len(pending), free=int(rng.integers(0, 3)))
    twin = copy.deepcopy(t)
    thr_args = (np.array(thr[0], np.uint8), np.array(thr[1], np.uint64), np.array(thr[2], np.uint8),
                np.array(thr[3], np.bool_), np.uint8(thr[4]))
    # every due row is a candidate (the invariant the caller keeps), plus a few others
    n0 = t["nrows"]
    due = kt.due_rows(*thr_args, t["layer"][:n0], t["mag"][:n0], t["count"][:n0]).tolist()
    cands = np.array(due + [int(r) for r in rng.integers(0, max(n0, 1), 3)], np.int64)
    hotv = np.full((NKEYS, 2), 9, np.int64)
    stats = np.zeros(16, np.int64)
    with np.errstate(all="ignore"):
        want = _steps_one_by_one(twin, pending, policy, decay, lr, fixed, hot_prune, thr_args, transitions, 5)
        nrows, n_free, changed, complete = kc.consolidate_pending(
            *pending_columns(pending), policy, np.uint8(decay), np.uint8(lr), fixed, hot_prune,
            transitions, *thr_args, np.int64(5), cands, full, track, 10**9, *(t[c] for c in ENTRY), t["slot"],
            t["nrows"], t["free_stack"], t["n_free"], hotv, True, stats)
    t["nrows"], t["n_free"] = int(nrows), int(n_free)
    assert stats.tolist() == want and complete
    n = t["nrows"]
    assert n == twin["nrows"]
    for c in ENTRY:
        assert np.array_equal(t[c][:n], twin[c][:n]), c
    assert np.array_equal(t["slot"], twin["slot"])
    assert t["free_stack"][: t["n_free"]].tolist() == twin["free_stack"][: twin["n_free"]].tolist()
    full_hotv = np.zeros((NKEYS, 2), np.int64)
    kt.hottest_rows(t["slot"], t["voff"], t["vlen"], full_hotv)
    touched = {p[1] for p in pending}
    for k in range(NKEYS):
        if k in touched:
            assert hotv[k].tolist() == full_hotv[k].tolist()
        elif hotv[k].tolist() != [9, 9]:  # written: only for a pruned or moved key, and right
            assert hotv[k].tolist() == full_hotv[k].tolist()
    if transitions:
        live = {int(r) for r in changed.tolist()}
        assert all(t["layer"][r] < 4 for r in live)
    elif track:  # the candidates and the folded keys' hot rows (some perhaps pruned since)
        folded = {int(t["slot"][p[1], 0]) for p in pending if t["slot"][p[1], 0] >= 0}
        freed = {int(r) for r in t["free_stack"][: t["n_free"]]}
        assert set(cands.tolist()) | folded <= set(changed.tolist()) <= set(cands.tolist()) | folded | freed
    else:
        assert len(changed) == 0
