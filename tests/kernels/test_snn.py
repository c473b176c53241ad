"""``kernels/snn.py`` against :mod:`naive.snn`, stage by stage and whole ticks
(:func:`run_ticks` against :class:`naive.snn.NaiveSNN`)."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from naive import snn as nv
from thermogram.kernels import snn as ks

F = np.float32
small = st.floats(-4, 4, width=32)
unit = st.floats(0, 1, width=32)


def f32(xs):
    return np.array(xs, dtype=F)


def spread_values(rng, shape):
    """float32 values over many magnitudes and both signs (so the order of a sum shows in its bits)."""
    v = rng.standard_normal(shape) * 10.0 ** rng.integers(-3, 4, shape)
    v[rng.random(shape) < 0.1] = 0.0
    return v.astype(F)


def padded(P, lanes):
    """``P.T`` (D, N) in a C array of ``lanes``-multiple width, zero columns as padding."""
    n, d = P.shape
    m = -(-n // lanes) * lanes
    PT = np.zeros((d, m), F)
    PT[:, :n] = P.T
    return PT


def expected_dots(X, P):
    return f32([[nv.seq_sum(x * p) for p in P] for x in X]), f32([nv.seq_sum(x * x) for x in X])


@settings(max_examples=40)
@given(st.integers(1, 24), st.integers(1, 140), st.integers(1, 7), st.sampled_from([1, 16]), st.booleans(),
       st.data())
def test_input_dots_are_sequential_sums(d, n, nt, lanes, wide, data):
    """Every (input, neuron) dot product and every squared norm is the plain sequential float32
    sum, bit for bit, whatever the grouping: both register-file plans (1 or 3 inputs per
    block, up to 8, 7 or 6 lane vectors per block, so more than 96 or 112 neurons split),
    padded or not (a tail of < 16 columns)."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    X = spread_values(rng, (nt + 2, d))
    P = spread_values(rng, (n, d))
    PT = padded(P, lanes)
    out = np.full((nt + 1, PT.shape[1]), np.nan, F)
    ni = np.full(nt + 1, np.nan, F)
    ks.input_dots(X, 1, nt, PT, out, 1, ni, wide)
    dots, sq = expected_dots(X[1:nt + 1], P)
    assert out[1:, :n].tobytes() == dots.tobytes()
    assert ni[1:].tobytes() == sq.tobytes()
    assert np.isnan(out[0]).all() and np.isnan(ni[0])  # nothing outside the rows asked for
    assert not out[1:, n:].any()  # padding columns: zero dot products


@given(st.sampled_from([1, 3]), st.integers(1, 8), st.integers(0, 2), st.integers(1, 12), st.booleans(),
       st.data())
def test_lane_dots_and_tail_dots_match_naive(T, V, extra, d, want_ni, data):
    """One compiled block (``T`` inputs x ``V`` vectors of 16 neurons from column ``r0``) and the
    scalar tail write exactly their own rows and columns."""
    V = min(V, 7) if T == 3 else V
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    r0 = 16 * extra
    n = r0 + 16 * V + 5
    X = spread_values(rng, (T + 1, d))
    P = spread_values(rng, (n, d))
    PT = np.ascontiguousarray(P.T)
    dots, sq = expected_dots(X[1:], P)
    out = np.full((T + 2, n), np.nan, F)
    ni = np.full(T + 2, np.nan, F)
    ks.lane_dots(X, 1, T, PT, r0, V, out, 2, ni, want_ni)
    assert out[2:, r0:r0 + 16 * V].tobytes() == dots[:, r0:r0 + 16 * V].tobytes()
    assert np.isnan(out[:2]).all() and np.isnan(out[2:, :r0]).all() and np.isnan(out[2:, r0 + 16 * V:]).all()
    assert ni[2:].tobytes() == (sq.tobytes() if want_ni else np.full(T, np.nan, F).tobytes())
    ks.tail_dots(X, 1, T, PT, n - 5, out, 2, ni, True)
    assert out[2:, n - 5:].tobytes() == dots[:, n - 5:].tobytes()
    assert ni[2:].tobytes() == sq.tobytes()


def test_lane_dots_refuses_a_block_it_has_not():
    X, PT, out, ni = np.zeros((3, 2), F), np.zeros((2, 128), F), np.zeros((3, 128), F), np.zeros(3, F)
    for T, V in ((3, 8), (1, 9), (2, 1), (1, 0)):
        with pytest.raises(ValueError):
            ks.lane_dots(X, 0, T, PT, 0, V, out, 0, ni, True)


def test_input_dots_of_a_zero_input_and_of_one_column():
    X = np.zeros((4, 3), F)
    PT = np.ones((3, 1), F)
    out, ni = np.full((4, 1), np.nan, F), np.full(4, np.nan, F)
    ks.input_dots(X, 0, 4, PT, out, 0, ni, ks.WIDE_VECTORS)
    assert out.tobytes() == np.zeros((4, 1), F).tobytes() and ni.tobytes() == np.zeros(4, F).tobytes()


@given(st.integers(1, 9), st.integers(1, 7), st.data())
def test_proto_norms_are_sequential_sums(d, n, data):
    P = f32(data.draw(st.lists(st.lists(small, min_size=d, max_size=d), min_size=n, max_size=n)))
    pnorm = np.zeros(n, F)
    ks.proto_norms(P.T.copy(), pnorm)
    assert pnorm.tobytes() == f32([np.sqrt(nv.seq_sum(p * p)) for p in P]).tobytes()


@given(st.integers(1, 9), st.integers(1, 7), st.data())
def test_cosine_activation_matches_naive(d, n, data):
    x = f32(data.draw(st.lists(small, min_size=d, max_size=d)))
    P = f32(data.draw(st.lists(st.lists(small, min_size=d, max_size=d), min_size=n, max_size=n)))
    if data.draw(st.booleans()):
        P[0] = 0
    PT = P.T.copy()
    dots, ni = np.zeros((1, n), F), np.zeros(1, F)
    ks.input_dots(x[None], 0, 1, PT, dots, 0, ni, ks.WIDE_VECTORS)
    pnorm = np.zeros(n, F)
    ks.proto_norms(PT, pnorm)
    out = np.zeros(n, F)
    ks.cosine_activation(dots[0], ni[0], pnorm, out)
    assert out.tobytes() == nv.cosine_activations(x, P).tobytes()
    assert (out >= 0).all() and (out <= 1.0001).all()


@given(st.lists(st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]) | unit, max_size=300), unit)
def test_competition_matches_naive(acts, strength):
    act = f32(acts)
    n = len(act)
    order, ranks, keys = np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n + 7, np.int64)
    m = ks.lateral_competition(act, F(strength), order, ranks, keys)
    assert m == int((f32(acts) > 0).sum())
    assert act.tobytes() == nv.competition(f32(acts), strength).tobytes()


def test_competition_many_active_neurons_uses_the_sort():
    rng = np.random.default_rng(1)
    acts = np.round(rng.random(ks.COUNT_RANKS_MAX + 50), 2).astype(F) + F(0.01)  # ties
    act = acts.copy()
    n = len(act)
    m = ks.lateral_competition(act, F(0.5), np.zeros(n, np.int64), np.zeros(n, np.int64),
                               np.zeros(n + 7, np.int64))
    assert m == n > ks.COUNT_RANKS_MAX
    assert act.tobytes() == nv.competition(acts, 0.5).tobytes()


@given(st.lists(st.sampled_from([0.1, 0.2, 0.3]) | unit, max_size=80))
def test_sort_desc_is_stable_descending(acts):
    act = f32(acts)
    m = len(act)
    order = np.arange(m, dtype=np.int64)
    tmp = np.zeros(m, np.int64)
    ks.sort_desc(act, order, tmp, m)
    assert order.tolist() == sorted(range(m), key=lambda i: -float(act[i]))


def random_synapses(data, n, k):
    idx = np.zeros((n, k), np.int64)
    ks.ring_indices(n, k, idx)
    w = f32(data.draw(st.lists(st.sampled_from([0.0, 0.005, 0.5, 1.0]) | unit,
                               min_size=n * k, max_size=n * k))).reshape(n, k)
    tern = np.array(data.draw(st.lists(st.sampled_from([-1, 0, 1]), min_size=n * k,
                                       max_size=n * k)), np.int8).reshape(n, k)
    return idx, w, tern


def syn_dict(idx, arr, cast=F):
    n, k = idx.shape
    return {(i, int(idx[i, s])): cast(arr[i, s]) for i in range(n) for s in range(k)}


def marks(n):
    return np.zeros(n, np.uint8), np.zeros(n, F), np.zeros(n, np.int64)


def changed_dict(idx, wlist, wconf, nw):
    k = idx.shape[1]
    return {(int(f) // k, int(idx[int(f) // k, int(f) % k])): wconf[f] for f in wlist[:nw]}


@given(st.integers(1, 8), st.integers(0, 8), st.data())
def test_spread_spikes_stdp_match_naive(n, k, data):
    k = min(k, n - 1)
    idx, w, _ = random_synapses(data, n, k)
    act = f32(data.draw(st.lists(unit, min_size=n, max_size=n)))
    gate = data.draw(unit)
    syn = syn_dict(idx, w)
    spread = np.zeros(n, F)
    a = act.copy()
    ks.spread_activation(a, idx, w, F(gate), spread)
    assert a.tobytes() == nv.spread(act, syn, gate).tobytes()
    thr = data.draw(st.sampled_from([0.0, 0.3, 0.6, 2.0]))
    mask, spk = np.zeros(n, np.uint8), np.zeros(n, np.int64)
    ns = ks.detect_spikes(a, F(thr), mask, spk)
    assert spk[:ns].tolist() == nv.spikes(a, thr)
    lr = F(data.draw(st.sampled_from([0.0, 0.01, 0.5])))
    wm, wc, wl = marks(n * k)
    nw = ks.stdp_continuous(spk, ns, mask, a, idx, w, lr, wm, wc, wl, 0)
    expect = nv.stdp(syn, spk[:ns].tolist(), a, lr)
    assert changed_dict(idx, wl, wc, nw) == expect
    assert w.tobytes() == f32([syn[(i, int(idx[i, s]))] for i in range(n) for s in range(k)]).reshape(n, k).tobytes()
    ks.clear_marks(wm, wl, nw)
    assert not wm.any()


@given(st.integers(1, 8), st.integers(0, 8), st.data())
def test_ternary_stdp_matches_naive(n, k, data):
    k = min(k, n - 1)
    idx, w, tern = random_synapses(data, n, k)
    act = f32(data.draw(st.lists(unit, min_size=n, max_size=n)))
    last = np.array(data.draw(st.lists(st.sampled_from([-1, 100, 200, 300]), min_size=n,
                                       max_size=n)), np.int64)
    mask, spk = np.zeros(n, np.uint8), np.zeros(n, np.int64)
    ns = ks.detect_spikes(act, F(0.4), mask, spk)
    syn, tdict, nlast = syn_dict(idx, w), syn_dict(idx, tern, int), last.tolist()
    wm, wc, wl = marks(n * k)
    nw = ks.stdp_ternary(spk, ns, mask, act, idx, w, tern, last, 400, wm, wc, wl, 0)
    expect = nv.stdp_ternary(syn, tdict, spk[:ns].tolist(), act, nlast, 400)
    assert changed_dict(idx, wl, wc, nw) == expect
    assert syn_dict(idx, tern, int) == tdict and syn_dict(idx, w) == syn
    assert last.tolist() == nlast


def test_ternary_transitions():
    # strengthen, weaken, simultaneous (only -1 -> 0)
    for dt in (5, -5, 0):
        assert [int(ks.ternary_step(np.int8(c), dt)) for c in (-1, 0, 1)] == \
            [nv.ternary_transition(c, dt) for c in (-1, 0, 1)]
    assert [int(ks.ternary_step(np.int8(c), 0)) for c in (-1, 0, 1)] == [0, 0, 1]


@given(st.integers(1, 8), st.integers(0, 8), st.data())
def test_homeostasis_decay_traces_rates_match_naive(n, k, data):
    k = min(k, n - 1)
    idx, w, tern = random_synapses(data, n, k)
    rates = f32(data.draw(st.lists(unit, min_size=n, max_size=n)))
    target, rate, dec = data.draw(unit), data.draw(unit), data.draw(st.sampled_from([0.0, 0.0005, 0.4, 0.6, 1.0]))
    syn = syn_dict(idx, w)
    ks.homeostasis(w, rates, F(target), F(rate))
    nv.homeostasis(syn, rates, target, rate)
    assert syn_dict(idx, w) == syn
    wm, wc, wl = marks(n * k)
    nw = ks.decay_continuous(w, F(dec), wm, wc, wl, 0)
    assert changed_dict(idx, wl, wc, nw) == nv.decay(syn, dec)
    assert syn_dict(idx, w) == syn
    tdict = syn_dict(idx, tern, int)
    wm, wc, wl = marks(n * k)
    nw = ks.decay_ternary(w, tern, F(dec), wm, wc, wl, 0)
    assert changed_dict(idx, wl, wc, nw) == nv.decay_ternary(syn, tdict, dec)
    assert syn_dict(idx, tern, int) == tdict and syn_dict(idx, w) == syn
    act = f32(data.draw(st.lists(unit, min_size=n, max_size=n)))
    tr = f32(data.draw(st.lists(unit, min_size=n, max_size=n)))
    td = data.draw(unit)
    expect_tr = nv.traces(tr, act, td)
    ks.update_traces(tr, act, F(td))
    assert tr.tobytes() == expect_tr.tobytes()
    mask = (act > 0.5).astype(np.uint8)
    expect_r = nv.rates(rates, np.flatnonzero(mask).tolist())
    ks.update_rates(rates, mask)
    assert rates.tobytes() == expect_r.tobytes()


@given(st.integers(1, 6), st.integers(1, 6), st.data())
def test_learn_prototypes_matches_naive(n, d, data):
    P = f32(data.draw(st.lists(st.lists(small, min_size=d, max_size=d), min_size=n, max_size=n)))
    x = f32(data.draw(st.lists(small, min_size=d, max_size=d)))
    act = f32(data.draw(st.lists(st.sampled_from([0.0, 0.7]) | unit, min_size=n, max_size=n)))
    lr = data.draw(st.sampled_from([0.05, 0.5, 1.0]))
    mask, spk = np.zeros(n, np.uint8), np.zeros(n, np.int64)
    ns = ks.detect_spikes(act, F(0.6), mask, spk)
    PT = P.T.copy()
    pnorm = np.zeros(n, F)
    pm, pc, pl = marks(n)
    npc = ks.learn_prototypes(x, PT, pnorm, act, spk, ns, F(lr), pm, pc, pl, 0)
    nP = P.copy()
    expect = nv.learn_prototypes(nP, x, act, spk[:ns].tolist(), lr)
    assert {int(r): pc[r] for r in pl[:npc]} == expect
    assert PT.T.tobytes() == np.ascontiguousarray(nP).tobytes()
    for r in pl[:npc]:
        assert pnorm[r] == np.sqrt(nv.seq_sum(nP[r] * nP[r]))


def test_scan_rows_finds_bad_values_and_scaling():
    X = f32([[0.5, -2.0, 0.0], [0.0, 0.0, 0.0], [1e30, 1.0, 0.0], [1e-30, 0.0, 0.0]])
    m = np.zeros(4, np.uint32)
    lo, hi = int(F(2.0 ** -60).view(np.uint32)), int(F(1e17).view(np.uint32))
    bad, nscale = ks.scan_rows(X.view(np.uint32), lo, hi, m)
    assert bad == -1 and nscale == 2
    assert m.view(F).tolist() == [2.0, 0.0, F(1e30), F(1e-30)]
    assert (bad, nscale, m.tolist()) == nv.scan_rows(X, lo, hi)
    for v in (np.nan, np.inf, -np.inf):
        Y = X.copy()
        Y[2, 1] = v
        assert ks.scan_rows(Y.view(np.uint32), 0, 2 ** 31, m)[0] == 7 == nv.scan_rows(Y, 0, 2 ** 31)[0]


@given(st.integers(0, 5), st.integers(0, 5), st.data())
def test_scan_rows_matches_naive(t, d, data):
    vals = st.one_of(small, st.sampled_from([0.0, 1e-30, 1e30, np.nan, np.inf, -np.inf]))
    X = f32(data.draw(st.lists(st.lists(vals, min_size=d, max_size=d), min_size=t, max_size=t))).reshape(t, d)
    lo, hi = int(F(2.0 ** -60).view(np.uint32)), int(F(1e17).view(np.uint32))
    m = np.zeros(t, np.uint32)
    bad, nscale = ks.scan_rows(X.view(np.uint32), lo, hi, m)
    assert (bad, nscale, m.tolist()) == nv.scan_rows(X, lo, hi)


# ----------------------------------------------------------------------------- helpers

@given(st.floats(0, 2.0 ** 100, width=32) | st.floats(0, 1, width=32))
def test_f32_sqrt_is_correctly_rounded(v):
    assert F(ks.f32_sqrt(F(v))).tobytes() == nv.f32_sqrt(v).tobytes()


@given(st.floats(-2, 2, width=32) | st.just(np.nan), st.floats(-2, 2, width=32))
def test_pair_confidence_matches_naive(a, b):
    assert F(ks.pair_confidence(F(a), F(b))) == nv.pair_confidence(a, b)


@given(st.lists(st.tuples(st.integers(0, 7), st.floats(0, 1, width=32)), max_size=20))
def test_mark_changed_and_clear_marks(changes):
    mark, conf, lst = np.zeros(8, np.uint8), np.zeros(8, F), np.zeros(8, np.int64)
    count = 0
    for item, c in changes:
        count = ks.mark_changed(item, F(c), mark, conf, lst, count)
    order, last = nv.record_changes([(i, F(c)) for i, c in changes])
    assert lst[:count].tolist() == order
    assert {i: conf[i] for i in order} == last
    ks.clear_marks(mark, lst, count)
    assert not mark.any()


@given(st.integers(1, 9), st.integers(0, 8), st.integers(1, 9), st.data())
def test_ring_indices_stamp_spikes_scaled_columns(n, k, d, data):
    idx = np.zeros((n, k), np.int64)
    ks.ring_indices(n, k, idx)
    assert idx.tolist() == nv.ring_indices(n, k)
    spk = np.array(data.draw(st.lists(st.integers(0, n - 1), unique=True, max_size=n)), np.int64)
    last = np.full(n, -1, np.int64)
    ks.stamp_spikes(spk, len(spk), last, 700)
    assert last.tolist() == [700 if i in spk.tolist() else -1 for i in range(n)]
    P = f32(data.draw(st.lists(st.lists(small, min_size=d, max_size=d), min_size=n, max_size=n)))
    P[0] = 0
    rows = np.array(data.draw(st.lists(st.integers(0, n - 1), max_size=n)), np.int64)
    out = np.zeros((len(rows), d), F)
    ks.scaled_columns(P.T.copy(), rows, out)
    assert out.tobytes() == nv.scaled_rows(P, rows.tolist()).tobytes()


@given(st.integers(1, 6), st.integers(1, 9), st.data())
def test_move_prototype_matches_naive(n, d, data):
    P = f32(data.draw(st.lists(st.lists(small, min_size=d, max_size=d), min_size=n, max_size=n)))
    x = f32(data.draw(st.lists(small, min_size=d, max_size=d)))
    r = data.draw(st.integers(0, n - 1))
    lr = data.draw(unit)
    PT = P.T.copy()
    norm = ks.move_prototype(PT, r, x, F(lr))
    want, want_norm = nv.move_prototype(P[r], x, lr)
    assert PT[:, r].tobytes() == want.tobytes() and F(norm) == want_norm


# ----------------------------------------------------------------------------- whole ticks

configs = st.fixed_dictionaries({
    "competition_strength": st.sampled_from([0.0, 0.5, 1.0]),
    "spike_threshold": st.sampled_from([0.05, 0.2, 0.5]),
    "stdp_lr": st.sampled_from([0.01, 0.2]),
    "homeostasis_target": st.sampled_from([0.1, 0.5]),
    "decay_rate": st.sampled_from([0.001, 0.9]),
    "trace_decay": st.sampled_from([0.1, 0.9]),
    "prototype_lr": st.sampled_from([0.0, 0.0, 0.3]),
    "use_ternary": st.booleans(),
})


def params_of(cfg, nm):
    """The ``params`` vector of :func:`run_ticks` (laid out as ``ks.PARAMS``)."""
    da, ser, ne, ach = (F(v) for v in nm)
    p = np.zeros(len(ks.PARAMS), F)
    p[ks.P_COMPETITION] = F(cfg["competition_strength"]) * ne
    p[ks.P_GATE] = ach
    p[ks.P_THRESHOLD] = F(cfg["spike_threshold"])
    p[ks.P_LR] = F(cfg["stdp_lr"]) * da
    p[ks.P_TARGET] = F(cfg["homeostasis_target"])
    p[ks.P_HOMEO_RATE] = ks.HOMEOSTASIS_GAIN * ser
    p[ks.P_DECAY] = F(cfg["decay_rate"]) * (F(1) - ser)
    p[ks.P_TRACE_DECAY] = F(cfg["trace_decay"])
    p[ks.P_PROTO_LR] = F(cfg["prototype_lr"])
    return p


@settings(max_examples=30)
@given(configs, st.integers(1, 20), st.integers(1, 8), st.integers(0, 8), st.sampled_from([1, 4, 5, 64]),
       st.sampled_from([0, 5, 95, 197]), st.integers(1, 14), st.sampled_from([1, 16]), st.data())
def test_run_ticks_matches_naive_network(cfg, n, d, k, block, tick0, t_rows, lanes, data):
    """Several ticks in one call reach the naive network's state, with the same changes
    (prototypes as they are, or padded with zero columns to whole 16-lane vectors)."""
    k = min(k, n - 1)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    P = (rng.standard_normal((n, d)) * 0.5).astype(F)
    idx = np.zeros((n, k), np.int64)
    ks.ring_indices(n, k, idx)
    w = rng.choice(f32([0.0, 0.005, 0.1, 0.5, 1.0]), (n, k)).astype(F)
    tern = rng.integers(-1, 2, (n, k)).astype(np.int8)
    nstate = np.zeros((4, n), F)
    nstate[:3] = rng.random((3, n)).astype(F)
    last_spike = rng.choice([-1, 100, 9000], n).astype(np.int64)
    nm = tuple(float(v) for v in f32(data.draw(st.tuples(unit, unit, unit, unit))))
    centre = rng.standard_normal(d).astype(F)
    X = (centre + F(0.2) * rng.standard_normal((t_rows, d))).astype(F)
    X[rng.random(t_rows) < 0.2] = 0
    naive = nv.NaiveSNN({
        "config": cfg, "prototypes": P, "indices": idx, "weights": w, "ternary_weights": tern,
        "traces": nstate[0], "firing_rates": nstate[1], "last_activations": nstate[2],
        "last_spike_ms": last_spike, "tick": tick0})
    PT = padded(P, lanes)
    ks.proto_norms(PT[:, :n], nstate[ks.S_PNORM])
    fws, iws, bws = np.zeros((3, n), F), np.zeros((5, n + 8), np.int64), np.zeros((2, n), np.uint8)
    wmark, wconf, wlist = np.zeros(n * k, np.uint8), np.zeros(n * k, F), np.zeros(n * k, np.int64)
    nw, npc = ks.run_ticks(X, PT, idx, w, tern, nstate, last_spike, tick0, params_of(cfg, nm),
                           cfg["use_ternary"], np.zeros((block, PT.shape[1]), F), np.zeros(block, F), fws,
                           iws, bws, wmark, wconf, wlist)
    wch, pch = {}, {}
    for x in X:
        a, b = naive.step(x, nm)
        wch.update(a)
        pch.update(b)
    assert {(int(f) // k, int(idx[int(f) // k, int(f) % k])): wconf[f] for f in wlist[:nw]} == wch
    assert {int(r): fws[ks.W_PCONF, r] for r in iws[ks.I_PLIST, :npc]} == pch
    assert not wmark.any() and not bws[ks.B_PMARK].any()
    assert np.ascontiguousarray(PT[:, :n].T).tobytes() == np.ascontiguousarray(naive.protos).tobytes()
    assert not PT[:, n:].any()
    assert nstate[ks.S_PNORM].tolist() == [nv.f32_sqrt(nv.seq_sum(p * p)) for p in naive.protos]
    assert nstate[ks.S_TRACES].tobytes() == naive.traces.tobytes()
    assert nstate[ks.S_RATES].tobytes() == naive.rates.tobytes()
    assert nstate[ks.S_LAST_ACT].tobytes() == naive.last_act.tobytes()
    assert last_spike.tolist() == naive.last_spike
    assert syn_dict(idx, w) == naive.syn and syn_dict(idx, tern, int) == naive.tern
    assert set(tern.ravel().tolist()) <= {-1, 0, 1}


@given(configs, st.integers(1, 6), st.integers(1, 8), st.integers(0, 8), st.sampled_from([9, 99, 199]),
       st.data())
def test_tick_dynamics_is_one_naive_step(cfg, n, d, k, tick0, data):
    """One tick from precomputed dot products (ticks 10, 100, 200: decay and homeostasis run)."""
    k = min(k, n - 1)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    P = (rng.standard_normal((n, d)) * 0.5).astype(F)
    idx = np.zeros((n, k), np.int64)
    ks.ring_indices(n, k, idx)
    w = rng.choice(f32([0.0, 0.005, 0.1, 0.5, 1.0]), (n, k)).astype(F)
    tern = rng.integers(-1, 2, (n, k)).astype(np.int8)
    traces, rates, last_act = (rng.random(n).astype(F) for _ in range(3))
    last_spike = rng.choice([-1, 100, 9000], n).astype(np.int64)
    nm = tuple(float(v) for v in f32(data.draw(st.tuples(unit, unit, unit, unit))))
    x = rng.standard_normal(d).astype(F)
    naive = nv.NaiveSNN({
        "config": cfg, "prototypes": P, "indices": idx, "weights": w, "ternary_weights": tern,
        "traces": traces, "firing_rates": rates, "last_activations": last_act,
        "last_spike_ms": last_spike, "tick": tick0})
    wch, pch = naive.step(x, nm)
    PT = P.T.copy()
    pnorm, dots, ni = np.zeros(n, F), np.zeros((1, n), F), np.zeros(1, F)
    ks.proto_norms(PT, pnorm)
    ks.input_dots(x[None], 0, 1, PT, dots, 0, ni, ks.WIDE_VECTORS)
    act, spread, pconf = np.zeros(n, F), np.zeros(n, F), np.zeros(n, F)
    order, ranks, keys, spk, plist = (np.zeros(n + 8, np.int64) for _ in range(5))
    mask, pmark = np.zeros(n, np.uint8), np.zeros(n, np.uint8)
    wmark, wconf, wlist = np.zeros(n * k, np.uint8), np.zeros(n * k, F), np.zeros(n * k, np.int64)
    nw, npc = ks.tick_dynamics(x, dots[0], ni[0], PT, pnorm, idx, w, tern, traces, rates, last_act, last_spike,
                               tick0 + 1, params_of(cfg, nm), cfg["use_ternary"], act, order, ranks, keys,
                               spread, mask, spk, wmark, wconf, wlist, 0, pmark, pconf, plist, 0)
    assert changed_dict(idx, wlist, wconf, nw) == wch
    assert {int(r): pconf[r] for r in plist[:npc]} == pch
    assert PT.T.tobytes() == np.ascontiguousarray(naive.protos).tobytes()
    assert traces.tobytes() == naive.traces.tobytes() and rates.tobytes() == naive.rates.tobytes()
    assert last_act.tobytes() == naive.last_act.tobytes() and last_spike.tolist() == naive.last_spike
    assert syn_dict(idx, w) == naive.syn and syn_dict(idx, tern, int) == naive.tern


def network_arrays(rng, n, d, k, lanes=16):
    """A random network's arrays as :func:`run_ticks` takes them (prototypes padded)."""
    P = (rng.standard_normal((n, d)) * 0.5).astype(F)
    idx = np.zeros((n, k), np.int64)
    ks.ring_indices(n, k, idx)
    PT = padded(P, lanes)
    nstate = np.zeros((4, n), F)
    nstate[:3] = rng.random((3, n)).astype(F)
    ks.proto_norms(PT[:, :n], nstate[ks.S_PNORM])
    return dict(PT=PT, idx=idx, w=rng.choice(f32([0.0, 0.005, 0.1, 0.5, 1.0]), (n, k)).astype(F),
                tern=rng.integers(-1, 2, (n, k)).astype(np.int8), nstate=nstate,
                last_spike=rng.choice([-1, 100, 9000], n).astype(np.int64),
                dots=np.zeros((64, PT.shape[1]), F), ni=np.zeros(64, F), fws=np.zeros((3, n), F),
                iws=np.zeros((5, n + 8), np.int64), bws=np.zeros((2, n), np.uint8),
                wmark=np.zeros(n * k, np.uint8), wconf=np.zeros(n * k, F), wlist=np.zeros(n * k, np.int64))


def copy_arrays(a):
    return {name: v.copy() for name, v in a.items()}


STATE = ("PT", "idx", "w", "tern", "nstate", "last_spike")


@settings(max_examples=25)
@given(configs, st.integers(1, 40), st.integers(1, 12), st.integers(0, 8), st.sampled_from([0, 9, 99]),
       st.sampled_from(["plain", "zero", "nan", "inf", "huge", "tiny"]), st.data())
def test_run_row_is_scan_then_one_tick(cfg, n, d, k, tick0, kind, data):
    """:func:`run_row` runs exactly the tick of :func:`run_ticks` on a valid input, and on an
    input with NaN / infinity or one that needs scaling returns ``ran=False`` having changed nothing."""
    k = min(k, n - 1)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    a = network_arrays(rng, n, d, k)
    x = rng.standard_normal(d).astype(F)
    x[rng.integers(d)] = {"plain": x[0], "zero": 0.0, "nan": np.nan, "inf": -np.inf, "huge": 1e30,
                          "tiny": x[0]}[kind]
    if kind == "zero":
        x[:] = 0
    if kind == "tiny":
        x[:] = F(1e-30)
    lo, hi = int(F(2.0 ** -60).view(np.uint32)), int(F(1e17).view(np.uint32))
    params = params_of(cfg, (0.5, 0.5, 0.5, 0.5))
    b = copy_arrays(a)
    sizes = ks.workspace_sizes(n, k, b["PT"].shape[1])
    fbuf, ibuf, bbuf = np.zeros(sizes[0], F), np.zeros(sizes[1], np.int64), np.zeros(sizes[2], np.uint8)
    ran, nw, npc = ks.run_row(x, lo, hi, b["PT"], b["idx"], b["w"], b["tern"], b["nstate"], b["last_spike"],
                              tick0, params, cfg["use_ternary"], fbuf, ibuf, bbuf)
    dots, ni, fws, wconf, iws, wlist, bws, wmark = ks.workspace(fbuf, ibuf, bbuf, n, k, b["PT"].shape[1])
    if kind in ("nan", "inf", "huge", "tiny"):
        assert not ran and (nw, npc) == (0, 0)
        assert all(b[name].tobytes() == a[name].tobytes() for name in STATE)
        return
    assert ran
    c = copy_arrays(a)
    expect = ks.run_ticks(x[None], c["PT"], c["idx"], c["w"], c["tern"], c["nstate"], c["last_spike"], tick0,
                          params, cfg["use_ternary"], c["dots"], c["ni"], c["fws"], c["iws"], c["bws"],
                          c["wmark"], c["wconf"], c["wlist"])
    assert (nw, npc) == expect
    assert all(b[name].tobytes() == c[name].tobytes() for name in STATE)
    assert wlist[:nw].tolist() == c["wlist"][:nw].tolist()
    assert wconf.tobytes() == c["wconf"].tobytes()
    assert fws.tobytes() == c["fws"].tobytes() and iws[ks.I_PLIST, :npc].tolist() == c["iws"][ks.I_PLIST, :npc].tolist()
    assert not wmark.any() and not bws[ks.B_PMARK].any()


@given(st.integers(1, 40), st.integers(0, 12), st.sampled_from([1, 16]))
def test_workspace_views_tile_their_buffers(n, k, lanes):
    """The scratch arrays of run_row are disjoint views that cover the three buffers exactly."""
    npad = -(-n // lanes) * lanes
    nf, ni_, nb = ks.workspace_sizes(n, k, npad)
    fbuf, ibuf, bbuf = np.zeros(nf, F), np.zeros(ni_, np.int64), np.zeros(nb, np.uint8)
    views = ks.workspace(fbuf, ibuf, bbuf, n, k, npad)
    shapes = [(ks.BLOCK_TICKS, npad), (ks.BLOCK_TICKS,), (3, n), (n * k,), (5, n + 8), (n * k,), (2, n), (n * k,)]
    assert [v.shape for v in views] == shapes
    for i, v in enumerate(views):
        v[...] = i + 1  # each view writes its own number; every element of a buffer ends written once
    assert sorted(set(fbuf.tolist())) == [1, 2, 3, 4][: 3 + (n * k > 0)]
    assert (fbuf > 0).all() and (ibuf > 0).all() and (bbuf > 0).all()
    assert (fbuf == 1).sum() == ks.BLOCK_TICKS * npad and (fbuf == 3).sum() == 3 * n
    assert (ibuf == 5).sum() == 5 * (n + 8) and (bbuf == 7).sum() == 2 * n
