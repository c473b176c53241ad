"""``kernels/signal.py`` against :mod:`naive.signal`."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from naive import signal as ns
from thermogram.kernels import signal as ks

pols = st.sampled_from([-1, 0, 1])
mags = st.integers(0, 255)
sigs = st.tuples(pols, mags)
floats32 = st.floats(width=32, allow_nan=True, allow_infinity=True)


def split(ss):
    return np.array([s[0] for s in ss], np.int8), np.array([s[1] for s in ss], np.uint8)


def packed_pairs(ss):
    return np.array([(m << 8) | (p & 0xFF) for p, m in ss], np.uint16)


def pairs_of(packed):
    return [(int(np.uint8(v & 0xFF).view(np.int8)), int(v >> 8)) for v in packed.tolist()]


@given(st.lists(floats32, min_size=0, max_size=50))
def test_from_signed_packed_matches_naive(xs):
    x = np.array(xs, dtype=np.float32)
    out = np.full(len(xs), 0xABCD, np.uint16)
    ks.from_signed_packed(x, out)
    got = pairs_of(out)
    assert got == [ns.from_signed(v) for v in x]
    assert {p for p, _ in got} <= {-1, 0, 1}


@settings(max_examples=25)
@given(st.integers(1, 3000), st.integers(0, 2**32 - 1))
def test_from_signed_and_to_signed_packed_long_arrays(n, seed):
    """Long enough for the vectorised loops and their remainders, with the edge values
    (NaN, infinities, the polarity thresholds, -0.0) mixed in."""
    rng = np.random.default_rng(seed)
    edges = np.array([np.nan, np.inf, -np.inf, 0.01, -0.01, 0.0100001, -0.0, 1.0, -1.0, 1e-45, 3e38],
                     np.float32)
    x = rng.standard_normal(n).astype(np.float32)
    x[rng.integers(0, n, n // 7 + 1)] = rng.choice(edges, n // 7 + 1)
    out = np.empty(n, np.uint16)
    ks.from_signed_packed(x, out)
    got = pairs_of(out)
    assert got == [ns.from_signed(v) for v in x]
    back = np.empty(n, np.float32)
    ks.to_signed_packed(out, back)
    assert back.tobytes() == np.array([ns.signed_f32(a, b) for a, b in got], np.float32).tobytes()


@given(floats32)
def test_sat_u8_select_matches_sat_u8(x):
    assert int(ks.sat_u8_select(np.float32(x))) == int(ks.sat_u8(np.float32(x))) == ns.sat_u8(x)


@pytest.mark.parametrize("x", [0.0, -0.0, 0.01, -0.01, 0.0100001, 1.0, -1.0, 2.0, 1e-45])
def test_from_signed_edge_cases(x):
    p, m = ks.from_signed_scalar(np.float32(x))
    assert (int(p), int(m)) == ns.from_signed(x)


@given(floats32)
def test_sat_u8_matches_naive(x):
    assert int(ks.sat_u8(np.float32(x))) == ns.sat_u8(x)


@given(st.lists(sigs, max_size=40))
def test_magnitude_signed_and_to_signed_packed_match_naive(ss):
    out = np.empty(len(ss), np.float32)
    ks.to_signed_packed(packed_pairs(ss), out)
    assert out.tobytes() == np.array([ns.signed_f32(a, b) for a, b in ss], np.float32).tobytes()
    for a, b in ss:
        assert ks.magnitude_f32(np.uint8(b)) == ns.mag_f32(b)
        assert ks.signed_f32(np.int8(a), np.uint8(b)) == ns.signed_f32(a, b)


@given(st.lists(sigs, max_size=40), st.floats(-4, 300, width=32))
def test_scaled_vec_and_scalar_match_naive(ss, factor):
    p, m = split(ss)
    op, om = np.empty_like(p), np.empty_like(m)
    ks.scaled_vec(p, m, np.float32(factor), op, om)
    want = [ns.scaled(s, factor) for s in ss]
    assert list(zip(op.tolist(), om.tolist())) == want
    assert [tuple(int(v) for v in ks.scaled_scalar(np.int8(a), np.uint8(b), np.float32(factor)))
            for a, b in ss] == want


@given(st.lists(st.tuples(sigs, sigs), max_size=40))
def test_add_vec_and_merge_match_naive(pairs):
    pa, ma = split([a for a, _ in pairs])
    pb, mb = split([b for _, b in pairs])
    op, om = np.empty_like(pa), np.empty_like(ma)
    ks.add_vec(pa, ma, pb, mb, op, om)
    assert list(zip(op.tolist(), om.tolist())) == [ns.add(a, b) for a, b in pairs]
    for a, b in pairs:
        assert tuple(int(v) for v in ks.add_scalar(a[0], a[1], b[0], b[1])) == ns.add(a, b)
        assert tuple(ks.merge_30_70_scalar(a[0], a[1], b[0], b[1])) == ns.merge_30_70(a, b)
