"""``kernels/thermal.py`` against :mod:`naive.thermal` on random columnar tables."""
import copy

import numpy as np
import pytest
from hypothesis import given, strategies as st

from naive import thermal as nt
from thermogram.kernels import thermal as kt

from ._table import U64_MAX, dict_layers, from_table, to_table

# saturating uint64 adds overflow before they clamp; without the JIT numpy says so
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")

NKEYS = 6
mags = st.integers(0, 255)
obs = st.one_of(st.integers(0, 7), st.just(U64_MAX))
seeds = st.integers(0, 2**32 - 1)

ENTRY = ("layer", "kid", "pol", "mag", "count", "ts", "voff", "vlen")


def table(layers, seed, **kw):
    return to_table(layers, NKEYS, np.random.default_rng(seed), **kw)


@given(st.integers(0, U64_MAX), st.integers(0, U64_MAX))
def test_sat_add_u64(a, b):
    assert int(kt.sat_add_u64(np.uint64(a), np.uint64(b))) == nt.sat_add_u64(a, b)


@given(dict_layers(), st.lists(st.floats(0, 1, width=32), min_size=4, max_size=4), seeds)
def test_decay_all_matches_naive(layers, retention, seed):
    t = table(layers, seed)
    ret = np.array(retention, np.float32)
    kt.decay_all(t["layer"], t["pol"], t["mag"], ret)
    nt.decay(layers, ret)
    assert from_table(t) == layers


@given(st.lists(st.floats(0, 1, width=32), min_size=4, max_size=4), seeds, st.integers(1, 3000))
def test_decay_all_long_mixed_table(retention, seed, n):
    # long enough for the vectorised body and its remainder; free rows (255) interleaved
    rng = np.random.default_rng(seed)
    layer = rng.choice(np.array([0, 1, 2, 3, 255], np.uint8), n)
    pol = rng.integers(-1, 2, n).astype(np.int8)
    mag = rng.integers(0, 256, n).astype(np.uint8)
    ret = np.array(retention, np.float32)
    want_mag, want_pol = mag.copy(), pol.copy()
    for r in range(n):  # naive: one row at a time, as the docstring says
        if layer[r] <= 3:
            want_mag[r] = int(np.float32(mag[r]) * ret[layer[r]])
            if want_mag[r] == 0:
                want_pol[r] = 0
    kt.decay_all(layer, pol, mag, ret)
    assert (mag == want_mag).all() and (pol == want_pol).all()


@given(st.lists(st.integers(-3, 3), max_size=12), st.integers(0, 12), st.integers(0, 12))
def test_sort_tail(values, a, b):
    start, end = min(a, b, len(values)), min(max(a, b), len(values))
    x = np.array(values, np.int64)
    kt.sort_tail(x, start, end)
    assert x.tolist() == values[:start] + sorted(values[start:end]) + values[end:]


@given(dict_layers(), st.integers(0, 255), st.integers(-1, 3), seeds)
def test_prune_below_matches_naive(layers, thr, only, seed):
    t = table(layers, seed)
    n, n_free = kt.prune_below(np.uint8(thr), only, t["layer"], t["kid"], t["mag"], t["slot"],
                               t["free_stack"], t["n_free"])
    t["n_free"] = int(n_free)
    assert n == nt.prune(layers, thr, only)
    assert from_table(t) == layers


thresholds = st.tuples(st.lists(st.integers(0, 255), min_size=4, max_size=4),
                       st.lists(obs, min_size=4, max_size=4),
                       st.lists(st.integers(0, 255), min_size=4, max_size=4),
                       st.lists(st.booleans(), min_size=4, max_size=4), st.integers(0, 255))


def kernel_args(promo, min_obs, demo, allow, prune_thr):
    return (np.array(promo, np.uint8), np.array(min_obs, np.uint64), np.array(demo, np.uint8),
            np.array(allow, np.bool_), np.uint8(prune_thr))


def assert_same_table(a, b):
    """Every column, the slots and the free stack (in order) are equal."""
    n = a["nrows"]
    for c in ENTRY:
        assert np.array_equal(a[c][:n], b[c][:n]), c
    assert np.array_equal(a["slot"], b["slot"])
    assert a["n_free"] == b["n_free"]
    assert a["free_stack"][: a["n_free"]].tolist() == b["free_stack"][: b["n_free"]].tolist()


def run_kernel(t, args, now):
    out = np.zeros(7, np.int64)
    t["n_free"] = int(kt.run_transitions(*args, np.int64(now), *(t[c] for c in ENTRY), t["slot"],
                                         t["free_stack"], t["n_free"], out))
    return out.tolist()


@given(dict_layers(), thresholds, st.integers(0, 9), seeds)
def test_run_transitions_matches_naive(layers, thr, now, seed):
    t = table(layers, seed)
    got = run_kernel(t, kernel_args(*thr), now)
    want = nt.transitions(layers, *thr[:4], thr[4], now)
    assert got == want
    assert from_table(t) == layers


@given(dict_layers(), thresholds, st.integers(0, 9), seeds, st.integers(0, 4))
def test_run_transitions_equals_the_full_scan_row_for_row(layers, thr, now, seed, free):
    """Visiting only the keys with a due row, one key at a time, changes the same rows in
    the same way and pushes freed rows in the same order as scanning every row for every step."""
    t = table(layers, seed, free=free)
    twin = copy.deepcopy(t)
    got = run_kernel(t, kernel_args(*thr), now)
    assert got == nt.transitions_rows(twin, *thr, now)
    assert_same_table(t, twin)


@given(dict_layers(), thresholds, seeds)
def test_due_rows_matches_naive(layers, thr, seed):
    t = table(layers, seed)
    n = t["nrows"]
    rows = kt.due_rows(*kernel_args(*thr), t["layer"][:n], t["mag"][:n], t["count"][:n])
    assert rows.tolist() == nt.due_rows(t, *thr)
    lo, hi, obs_ = kt.transition_limits(*kernel_args(*thr))
    assert hi[3] == 256 and all(lo[i] >= thr[4] for i in range(4))


@given(dict_layers(), thresholds, st.integers(0, 9), seeds, st.data())
def test_cascade_keys_over_any_superset_of_the_due_rows(layers, thr, now, seed, data):
    """Keys without a due row are left as they are, so visiting more keys changes nothing."""
    t = table(layers, seed)
    n = t["nrows"]
    live = [r for r in range(n) if t["layer"][r] < 4]
    due = nt.due_rows(t, *thr)
    more = sorted(set(due) | set(data.draw(st.lists(st.sampled_from(live), max_size=8)) if live else []))
    twin = copy.deepcopy(t)
    out = np.zeros(7, np.int64)
    t["n_free"] = int(kt.cascade_keys(np.array(more, np.int64), *kernel_args(*thr), np.int64(now),
                                      *(t[c] for c in ENTRY), t["slot"], t["free_stack"], t["n_free"], out))
    assert out.tolist() == nt.transitions_rows(twin, *thr, now)
    assert_same_table(t, twin)


def big_table(seed: int, nkeys: int, settled: bool):
    """``nkeys`` keys in random layers (a third of them also in a second layer); ``settled``:
    strengths between the thresholds used below except for one key in 400 (a few rows due)."""
    rng = np.random.default_rng(seed)
    layers = [{}, {}, {}, {}]
    for k in range(nkeys):
        for lay in {int(rng.integers(4))} | ({int(rng.integers(4))} if k % 3 == 0 else set()):
            m = int(rng.integers(30, 60)) if settled and k % 400 else int(rng.integers(0, 256))
            layers[lay][k] = {"value": (k, 1), "strength": (1, m), "count": int(rng.integers(0, 20)), "ts": k}
    t = to_table(layers, nkeys, rng, free=5)
    t["slot"] = np.concatenate([t["slot"], np.full((7, 4), -1, np.int32)])  # spare key ids
    return t


@pytest.mark.parametrize("settled", [True, False])
@pytest.mark.parametrize("seed", range(3))
def test_run_transitions_on_large_tables_equals_the_full_scan(seed, settled):
    """Tables large enough for both paths of due_rows (few rows due, most rows due)."""
    thr = ([153, 191, 230, 255], [1, 3, 5, U64_MAX], [0, 20, 25, 28], [False, True, True, True], 13)
    t = big_table(seed, 3000, settled)
    twin = copy.deepcopy(t)
    n = t["nrows"]
    due = kt.due_rows(*kernel_args(*thr), t["layer"][:n], t["mag"][:n], t["count"][:n])
    assert (0 < len(due) < n // 100) if settled else (len(due) > n // 5)
    got = run_kernel(t, kernel_args(*thr), 77)
    assert got == nt.transitions_rows(twin, *thr, 77) and sum(got) > 0
    assert_same_table(t, twin)


@given(dict_layers(), st.integers(0, 255), obs, seeds)
def test_crystallize_hot_matches_naive(layers, thr, min_obs, seed):
    t = table(layers, seed)
    c, m, n_free = kt.crystallize_hot(np.uint8(thr), np.uint64(min_obs), *(t[c] for c in ENTRY),
                                      t["slot"], t["free_stack"], t["n_free"])
    t["n_free"] = int(n_free)
    assert (c, m) == nt.crystallize(layers, thr, min_obs)
    assert from_table(t) == layers


@given(dict_layers(), st.lists(st.integers(0, NKEYS - 1), max_size=8), st.integers(0, 255),
       st.integers(0, 9), seeds)
def test_warm_kids_matches_naive(layers, kids, warming, now, seed):
    t = table(layers, seed)
    n, n_free = kt.warm_kids(np.array(kids, np.int64), np.uint8(warming), np.int64(now), t["layer"],
                             t["kid"], t["pol"], t["mag"], t["ts"], t["slot"], t["free_stack"], t["n_free"])
    t["n_free"] = int(n_free)
    assert n == sum(nt.warm(layers, k, warming, now) for k in kids)
    assert from_table(t) == layers


@given(dict_layers(), seeds)
def test_layer_counts_and_hottest_rows_match_naive(layers, seed):
    t = table(layers, seed)
    out = np.zeros(4, np.int64)
    kt.layer_counts(t["layer"], out)
    assert out.tolist() == nt.layer_counts(layers)
    outv = np.zeros((NKEYS, 2), np.int64)
    kt.hottest_rows(t["slot"], t["voff"], t["vlen"], outv)
    for k in range(NKEYS):
        e = nt.hottest(layers, k)
        assert tuple(outv[k].tolist()) == ((-1, -1) if e is None else e["value"])


@given(dict_layers(), st.data())
def test_move_or_merge_promote_into_and_free_row_match_naive(layers, data):
    present = [(lay, k) for lay in range(4) for k in layers[lay]]
    if not present:
        return
    frm, k = data.draw(st.sampled_from(present))
    to = data.draw(st.sampled_from([lay for lay in range(4) if lay != frm]))
    t = table(layers, data.draw(seeds))
    r = int(t["slot"][k, frm])
    e = int(t["slot"][k, to])
    if e >= 0 and data.draw(st.booleans()):  # the merge step on its own
        kt.promote_into(r, e, t["pol"], t["mag"], t["count"], t["ts"], t["voff"], t["vlen"])
        t["n_free"] = int(kt.free_row(r, t["layer"], t["kid"], t["slot"], t["free_stack"], t["n_free"]))
        nt.move_or_merge(layers, k, frm, to)
        assert from_table(t) == layers
        return
    merged, n_free = kt.move_or_merge(r, frm, to, *(t[c] for c in ENTRY), t["slot"], t["free_stack"],
                                      t["n_free"])
    t["n_free"] = int(n_free)
    assert merged == nt.move_or_merge(layers, k, frm, to)
    assert from_table(t) == layers
    before = copy.deepcopy(layers)
    r = int(t["slot"][k, to])
    t["n_free"] = int(kt.free_row(r, t["layer"], t["kid"], t["slot"], t["free_stack"], t["n_free"]))
    del before[to][k]
    assert from_table(t) == before


@pytest.mark.parametrize("lay", range(4))
def test_demotion_floor_and_saturated_counts(lay):
    """Edge cases by hand: a demoted magnitude 1 stays +1/1; merged counts saturate."""
    layers = [{}, {}, {}, {}]
    layers[min(lay + 1, 3)][0] = {"value": (0, 1), "strength": (-1, 1), "count": U64_MAX, "ts": 0}
    layers[lay][0] = {"value": (5, 2), "strength": (1, 200), "count": U64_MAX, "ts": 3}
    t = table(layers, lay, free=0)
    got = run_kernel(t, kernel_args([100] * 4, [0] * 4, [50] * 4, [True] * 4, 0), 9)
    want = nt.transitions(layers, [100] * 4, [0] * 4, [50] * 4, [True] * 4, 0, 9)
    assert got == want and from_table(t) == layers


# ---------------------------------------------------------------- candidate-row transitions


def naive_prune_rows(t, thr, only):
    """``prune_below`` the plain way: every row in order, freed rows pushed as found."""
    n = 0
    for r in range(t["nrows"]):
        lay = int(t["layer"][r])
        if lay < 4 and (only < 0 or lay == only) and t["mag"][r] < thr:
            nt._free(t, r)
            n += 1
    return n


@pytest.mark.parametrize("only", [-1, 0, 1, 2, 3])
@pytest.mark.parametrize("seed", range(3))
def test_prune_below_on_large_tables_equals_the_row_scan(seed, only):
    """Tables of several 64-row blocks: the flagged-block walk frees the same rows in the
    same order as the plain scan, and so do the layer counts."""
    t = big_table(seed, 3000, settled=bool(seed % 2))
    twin = copy.deepcopy(t)
    n = t["nrows"]
    thr = 31 + 40 * seed
    got, t["n_free"] = kt.prune_below(np.uint8(thr), only, t["layer"][:n], t["kid"], t["mag"][:n],
                                      t["slot"], t["free_stack"], t["n_free"])
    assert got == naive_prune_rows(twin, thr, only) > 0
    assert_same_table(t, twin)
    out = np.zeros(4, np.int64)
    kt.layer_counts(t["layer"][:n], out)
    assert out.tolist() == np.bincount(t["layer"][:n], minlength=256)[:4].tolist()


@given(dict_layers(), thresholds, seeds, st.data())
def test_due_among_a_superset_finds_the_due_rows(layers, thr, seed, data):
    """Any candidate list holding every due row (in any order, with repeats and rows past
    the table) yields exactly the due rows; a list missing some yields the rest."""
    t = table(layers, seed)
    n = t["nrows"]
    due = nt.due_rows(t, *thr)
    extra = data.draw(st.lists(st.integers(-3, n + 3), max_size=12))
    cands = data.draw(st.permutations(due + due[:2] + extra))
    got = kt.due_among(np.array(cands, np.int64), *kernel_args(*thr), t["layer"][:n], t["mag"][:n],
                       t["count"][:n])
    assert sorted(set(got.tolist())) == due
    assert all(0 <= r < n for r in got.tolist())
    some = data.draw(st.lists(st.sampled_from(due), unique=True)) if due else []
    got = kt.due_among(np.array(some, np.int64), *kernel_args(*thr), t["layer"][:n], t["mag"][:n],
                       t["count"][:n])
    assert got.tolist() == some


@given(dict_layers(), thresholds, st.integers(0, 9), seeds, st.data())
def test_run_transitions_tracked_equals_the_full_scan(layers, thr, now, seed, data):
    """From a superset of the due rows (shuffled) or a full scan: the same table, row for
    row, as the plain scans; the keys returned are the keys visited (every row the run
    wrote is theirs), and the rows returned are those of their live rows still due."""
    t = table(layers, seed, free=data.draw(st.integers(0, 4)))
    n = t["nrows"]
    due = nt.due_rows(t, *thr)
    live = [r for r in range(n) if t["layer"][r] < 4]
    more = due + (data.draw(st.lists(st.sampled_from(live), max_size=8)) if live else [])
    cands = np.array(data.draw(st.permutations(more)), np.int64)
    full = data.draw(st.booleans())
    cap = data.draw(st.sampled_from([0, 1, 3, 10**9]))
    before = copy.deepcopy(t)
    twin = copy.deepcopy(t)
    out = np.zeros(7, np.int64)
    nf, changed, ks, complete = kt.run_transitions_tracked(
        cands, full, cap, *kernel_args(*thr), np.int64(now), *(t[c] for c in ENTRY), t["slot"],
        t["free_stack"], t["n_free"], out)
    t["n_free"] = int(nf)
    assert out.tolist() == nt.transitions_rows(twin, *thr, now)
    assert_same_table(t, twin)
    visited = {int(before["kid"][r]) for r in due}
    live_of_visited = sorted(int(r) for k in visited for r in t["slot"][k] if r >= 0)
    still_due = [r for r in live_of_visited if nt._row_due(t, r, *thr)]
    found = len(due) if full else sum(1 for r in cands.tolist() if r in set(due))  # repeats count
    assert complete == (found <= cap and len(still_due) <= cap)
    if not complete:  # too many to list: nothing listed, the table as the full scan's
        assert len(changed) == len(ks) == 0
        return
    assert set(ks.tolist()) == visited
    assert sorted(changed.tolist()) == still_due  # the rows the run wrote that are due again
    written = {r for r in range(n) for c in ENTRY if before[c][r] != t[c][r]}
    assert written <= set(live_of_visited) | {int(r) for r in t["free_stack"][: t["n_free"]]}


@given(dict_layers(), seeds, st.lists(st.integers(-2, NKEYS + 1), max_size=10))
def test_live_rows_of_keys_of_rows_and_hottest_of_keys(layers, seed, ks):
    t = table(layers, seed)
    n = t["nrows"]
    k_arr = np.array(ks, np.int64)
    want = sorted(int(r) for k in set(ks) if 0 <= k < NKEYS for r in t["slot"][k] if r >= 0)
    assert sorted(kt.live_rows_of(k_arr, t["slot"]).tolist()) == want
    rows = np.array([r for r in range(n) if t["layer"][r] < 4], np.int64)
    assert kt.keys_of_rows(rows, t["kid"]).tolist() == t["kid"][rows].tolist()
    full = np.zeros((NKEYS, 2), np.int64)
    kt.hottest_rows(t["slot"], t["voff"], t["vlen"], full)
    part = np.full((NKEYS, 2), 7, np.int64)
    valid = np.array([k for k in ks if 0 <= k < NKEYS], np.int64)
    kt.hottest_of_keys(valid, t["slot"], t["voff"], t["vlen"], part)
    for k in range(NKEYS):
        assert part[k].tolist() == (full[k].tolist() if k in set(valid.tolist()) else [7, 7])
