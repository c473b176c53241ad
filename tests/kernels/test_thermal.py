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


@given(dict_layers(), st.integers(0, 2), mags, obs, seeds)
def test_promote_layer_matches_naive(layers, frm, thr, min_obs, seed):
    t = table(layers, seed)
    moved, n_free = kt.promote_layer(frm, frm + 1, np.uint8(thr), np.uint64(min_obs),
                                     *(t[c] for c in ENTRY), t["slot"], t["free_stack"], t["n_free"])
    t["n_free"] = int(n_free)
    want = nt.promote(layers, frm, frm + 1, thr, min_obs)
    assert moved == want
    assert from_table(t) == layers


@given(dict_layers(), st.integers(1, 3), mags, st.integers(-5, 5), seeds)
def test_demote_layer_matches_naive(layers, frm, thr, now, seed):
    t = table(layers, seed)
    moved, n_free = kt.demote_layer(frm, frm - 1, np.uint8(thr), np.int64(now), t["layer"], t["kid"],
                                    t["pol"], t["mag"], t["count"], t["ts"], t["slot"],
                                    t["free_stack"], t["n_free"])
    t["n_free"] = int(n_free)
    assert moved == nt.demote(layers, frm, frm - 1, thr, now)
    assert from_table(t) == layers


@given(dict_layers(), st.integers(0, 255), st.integers(-1, 3), seeds)
def test_prune_below_matches_naive(layers, thr, only, seed):
    t = table(layers, seed)
    n, n_free = kt.prune_below(np.uint8(thr), only, t["layer"], t["kid"], t["mag"], t["slot"],
                               t["free_stack"], t["n_free"])
    t["n_free"] = int(n_free)
    assert n == nt.prune(layers, thr, only)
    assert from_table(t) == layers


@given(dict_layers(), st.lists(st.integers(0, 255), min_size=4, max_size=4),
       st.lists(obs, min_size=4, max_size=4), st.lists(st.integers(0, 255), min_size=4, max_size=4),
       st.lists(st.booleans(), min_size=4, max_size=4), st.integers(0, 255), st.integers(0, 9), seeds)
def test_run_transitions_matches_naive(layers, promo, min_obs, demo, allow, prune_thr, now, seed):
    t = table(layers, seed)
    out = np.zeros(7, np.int64)
    t["n_free"] = int(kt.run_transitions(
        np.array(promo, np.uint8), np.array(min_obs, np.uint64), np.array(demo, np.uint8),
        np.array(allow, np.bool_), np.uint8(prune_thr), np.int64(now), *(t[c] for c in ENTRY),
        t["slot"], t["free_stack"], t["n_free"], out))
    want = nt.transitions(layers, promo, min_obs, demo, allow, prune_thr, now)
    assert out.tolist() == want
    assert from_table(t) == layers


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
    out = np.zeros(7, np.int64)
    t["n_free"] = int(kt.run_transitions(
        np.array([100] * 4, np.uint8), np.zeros(4, np.uint64), np.array([50] * 4, np.uint8),
        np.ones(4, np.bool_), np.uint8(0), np.int64(9), *(t[c] for c in ENTRY), t["slot"],
        t["free_stack"], t["n_free"], out))
    want = nt.transitions(layers, [100] * 4, [0] * 4, [50] * 4, [True] * 4, 0, 9)
    assert out.tolist() == want and from_table(t) == layers
