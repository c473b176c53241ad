"""Kernels against the naive references in tests/naive.py."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import naive
from thermogram.kernels import consolidation as kc
from thermogram.kernels import plasticity as kp
from thermogram.kernels import signal as ks

pols = st.sampled_from([-1, 0, 1])
mags = st.integers(0, 255)
sigs = st.tuples(pols, mags)
floats32 = st.floats(width=32, allow_nan=True, allow_infinity=True)


@given(st.lists(floats32, min_size=0, max_size=50))
def test_from_signed_vec_matches_naive(xs):
    x = np.array(xs, dtype=np.float32)
    p = np.empty(len(xs), np.int8)
    m = np.empty(len(xs), np.uint8)
    ks.from_signed_vec(x, p, m)
    assert list(zip(p.tolist(), m.tolist())) == [naive.from_signed(v) for v in x]
    assert set(p.tolist()) <= {-1, 0, 1}


@given(st.lists(sigs, max_size=40), st.floats(-4, 300, width=32))
def test_scaled_vec_matches_naive(ss, factor):
    p = np.array([s[0] for s in ss], np.int8)
    m = np.array([s[1] for s in ss], np.uint8)
    op, om = np.empty_like(p), np.empty_like(m)
    ks.scaled_vec(p, m, np.float32(factor), op, om)
    assert list(zip(op.tolist(), om.tolist())) == [naive.scaled(s, factor) for s in ss]


@given(st.lists(st.tuples(sigs, sigs), max_size=40))
def test_add_vec_and_merge_match_naive(pairs):
    pa = np.array([a[0] for a, _ in pairs], np.int8)
    ma = np.array([a[1] for a, _ in pairs], np.uint8)
    pb = np.array([b[0] for _, b in pairs], np.int8)
    mb = np.array([b[1] for _, b in pairs], np.uint8)
    op, om = np.empty_like(pa), np.empty_like(ma)
    ks.add_vec(pa, ma, pb, mb, op, om)
    assert list(zip(op.tolist(), om.tolist())) == [naive.add(a, b) for a, b in pairs]
    for a, b in pairs:
        assert tuple(ks.merge_30_70_scalar(a[0], a[1], b[0], b[1])) == naive.merge_30_70(a, b)


@given(st.integers(0, 4), mags, mags,
       st.lists(st.tuples(sigs, sigs, st.floats(-1e40, 1e40, allow_nan=False)), max_size=30))
def test_apply_update_vec_matches_naive(policy, decay, lr, rows):
    cur = [r[0] for r in rows]
    new = [r[1] for r in rows]
    dt = np.array([r[2] for r in rows], np.float64)
    op = np.empty(len(rows), np.int8)
    om = np.empty(len(rows), np.uint8)
    with np.errstate(all="ignore"):
        kp.apply_update_vec(policy, np.uint8(decay), np.uint8(lr),
                            np.array([c[0] for c in cur], np.int8), np.array([c[1] for c in cur], np.uint8),
                            np.array([n[0] for n in new], np.int8), np.array([n[1] for n in new], np.uint8),
                            dt, op, om)
    got = list(zip(op.tolist(), om.tolist()))
    assert got == [naive.apply_update(policy, decay, lr, c, n, d) for c, n, d in zip(cur, new, dt)]
    assert all(0 <= m <= 255 for _, m in got) and set(op.tolist()) <= {-1, 0, 1}


@given(st.integers(-(2**62), 2**62))
def test_whole_seconds_truncates_toward_zero(ns):
    assert kc.whole_seconds(ns) == naive.whole_seconds(ns)


def test_below_threshold_mask():
    m = np.arange(256, dtype=np.uint8)
    out = np.empty(256, np.bool_)
    kp.below_threshold_mask(m, np.uint8(26), out)
    assert out.tolist() == [v < 26 for v in range(256)]


@pytest.mark.parametrize("x", [0.0, -0.0, 0.01, -0.01, 0.0100001, 1.0, -1.0, 2.0, 1e-45])
def test_from_signed_edge_cases(x):
    p, m = ks.from_signed_scalar(np.float32(x))
    assert (int(p), int(m)) == naive.from_signed(x)
