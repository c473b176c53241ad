"""``kernels/plasticity.py`` against :mod:`naive.plasticity`."""
import numpy as np
from hypothesis import given, settings, strategies as st

from naive import plasticity as npl
from thermogram.kernels import plasticity as kp

pols = st.sampled_from([-1, 0, 1])
mags = st.integers(0, 255)
sigs = st.tuples(pols, mags)


def packed(sigs):
    """(polarity, magnitude) pairs as the kernel's packed uint16 (polarity byte low)."""
    return np.array([(m << 8) | (p & 0xFF) for p, m in sigs], np.uint16)


def unpacked(a):
    return [(int(np.uint8(v & 0xFF).view(np.int8)), int(v >> 8)) for v in a.tolist()]


@given(st.integers(0, 4), mags, mags,
       st.lists(st.tuples(sigs, sigs, st.floats(-1e40, 1e40, allow_nan=False)), max_size=30))
def test_apply_update_packed_and_scalar_match_naive(policy, decay, lr, rows):
    cur = [r[0] for r in rows]
    new = [r[1] for r in rows]
    dt = np.array([r[2] for r in rows], np.float64)
    out = np.full(len(rows), 0xABCD, np.uint16)
    with np.errstate(all="ignore"):
        kp.apply_update_packed(policy, np.uint8(decay), np.uint8(lr), packed(cur), packed(new), dt, out)
        scalar = [tuple(int(v) for v in kp.apply_update_scalar(policy, np.uint8(decay), np.uint8(lr),
                                                                np.int8(c[0]), np.uint8(c[1]), np.int8(n[0]),
                                                                np.uint8(n[1]), d))
                  for c, n, d in zip(cur, new, dt)]
    got = unpacked(out)
    want = [npl.apply_update(policy, decay, lr, c, n, d) for c, n, d in zip(cur, new, dt)]
    assert got == want and scalar == want
    assert all(0 <= m <= 255 for _, m in got) and {p for p, _ in got} <= {-1, 0, 1}


@settings(max_examples=30)
@given(st.integers(0, 4), mags, mags, st.integers(1, 2000), st.sampled_from([0.0, 3600.0, -7e5, 1e39, -1e39]),
       st.integers(0, 2**32 - 1))
def test_apply_update_packed_long_arrays_one_dt(policy, decay, lr, n, dt, seed):
    """Arrays long enough for the vectorised loops and their remainders; one time delta for
    every element (the STDP loop that reads it once) against the per-element form."""
    rng = np.random.default_rng(seed)
    cur = list(zip(rng.integers(-1, 2, n).tolist(), rng.integers(0, 256, n).tolist()))
    new = list(zip(rng.integers(-1, 2, n).tolist(), rng.integers(0, 256, n).tolist()))
    one = np.empty(n, np.uint16)
    each = np.empty(n, np.uint16)
    with np.errstate(all="ignore"):
        kp.apply_update_packed(policy, np.uint8(decay), np.uint8(lr), packed(cur), packed(new),
                               np.array([dt]), one)
        kp.apply_update_packed(policy, np.uint8(decay), np.uint8(lr), packed(cur), packed(new),
                               np.full(n, dt), each)
    want = [npl.apply_update(policy, decay, lr, c, w, dt) for c, w in zip(cur, new)]
    assert unpacked(one) == want and unpacked(each) == want


@given(st.lists(mags, max_size=60), mags)
def test_below_threshold_mask_matches_naive(ms, thr):
    m = np.array(ms, np.uint8)
    out = np.empty(len(ms), np.bool_)
    kp.below_threshold_mask(m, np.uint8(thr), out)
    assert out.tolist() == npl.below_threshold(ms, thr)


def test_below_threshold_mask_every_magnitude():
    m = np.arange(256, dtype=np.uint8)
    out = np.empty(256, np.bool_)
    kp.below_threshold_mask(m, np.uint8(26), out)
    assert out.tolist() == npl.below_threshold(range(256), 26)
