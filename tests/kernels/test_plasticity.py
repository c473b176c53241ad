"""``kernels/plasticity.py`` against :mod:`naive.plasticity`."""
import numpy as np
from hypothesis import given, strategies as st

from naive import plasticity as npl
from thermogram.kernels import plasticity as kp

pols = st.sampled_from([-1, 0, 1])
mags = st.integers(0, 255)
sigs = st.tuples(pols, mags)


@given(st.integers(0, 4), mags, mags,
       st.lists(st.tuples(sigs, sigs, st.floats(-1e40, 1e40, allow_nan=False)), max_size=30))
def test_apply_update_vec_and_scalar_match_naive(policy, decay, lr, rows):
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
        scalar = [tuple(int(v) for v in kp.apply_update_scalar(policy, np.uint8(decay), np.uint8(lr),
                                                                np.int8(c[0]), np.uint8(c[1]), np.int8(n[0]),
                                                                np.uint8(n[1]), d))
                  for c, n, d in zip(cur, new, dt)]
    got = list(zip(op.tolist(), om.tolist()))
    want = [npl.apply_update(policy, decay, lr, c, n, d) for c, n, d in zip(cur, new, dt)]
    assert got == want and scalar == want
    assert all(0 <= m <= 255 for _, m in got) and set(op.tolist()) <= {-1, 0, 1}


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
