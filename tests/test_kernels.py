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


# ---------------------------------------------------------------------------- codec and key kernels
from thermogram.kernels import codec as kcodec  # noqa: E402
from thermogram.kernels import keys as kkeys  # noqa: E402

_INT_DTYPES = [np.int8, np.uint8, np.int32, np.int64, np.uint64]


@given(st.sampled_from(_INT_DTYPES), st.data())
def test_plan_int_column_matches_naive(dtype, data):
    info = np.iinfo(dtype)
    kind = data.draw(st.sampled_from(["random", "constant", "arithmetic"]))
    n = data.draw(st.integers(0, 12))
    if kind == "random":
        vals = data.draw(st.lists(st.integers(int(info.min), int(info.max)), min_size=n, max_size=n))
    elif kind == "constant":
        vals = [data.draw(st.integers(int(info.min), int(info.max)))] * n
    else:
        start = data.draw(st.integers(int(info.min), int(info.max)))
        step = data.draw(st.integers(-3, 3))
        vals = [start + i * step for i in range(n)]
        vals = [v for v in vals if info.min <= v <= info.max]
    col = np.array(vals, dtype=dtype)
    with np.errstate(over="ignore"):  # int64 differences wrap by design (seen without the JIT)
        lo, hi, arith, step = kcodec.plan_int_column(col)
    want = naive.plan_int_column([int(v) for v in col])
    assert (int(lo), int(hi), bool(arith), int(step)) == want


@given(st.binary(max_size=40))
def test_check_polarity_matches_naive(raw):
    raw = raw[: len(raw) // 2 * 2]
    arr = np.frombuffer(raw, np.uint8) if raw else np.zeros(0, np.uint8)
    assert kcodec.check_polarity(arr) == naive.first_bad_polarity(raw)


@given(st.lists(st.tuples(st.integers(0, 5), st.integers(-1, 6)), max_size=20))
def test_load_slots_matches_naive(rows):
    layer = np.array([r[0] for r in rows], np.int64)
    kid = np.array([r[1] for r in rows], np.int64)
    slot = np.full((6, 4), -1, np.int32)
    bad = kcodec.load_slots(layer, kid, 6, slot)
    want_slots, want_bad = naive.load_slots(layer.tolist(), kid.tolist(), 6)
    assert bad == want_bad
    got = {(k, lay): int(slot[k, lay]) for k in range(6) for lay in range(4) if slot[k, lay] >= 0}
    assert got == want_slots


@given(st.lists(st.binary(min_size=1, max_size=5), max_size=15), st.data())
def test_gather_values_and_key_kernels_match_naive(keys, data):
    import zlib
    blob = np.frombuffer(b"".join(keys), np.uint8) if keys else np.zeros(0, np.uint8)
    off = np.zeros(len(keys) + 1, np.int64)
    np.cumsum([len(k) for k in keys], out=off[1:])
    ids = np.array(data.draw(st.lists(st.integers(0, max(len(keys) - 1, 0)), max_size=10)) if keys else [],
                   dtype=np.int64)
    out = np.empty(int(sum(len(keys[i]) for i in ids)), np.uint8)
    kcodec.gather_values(off[:-1], np.diff(off), ids, blob, out)
    assert out.tobytes() == b"".join(keys[i] for i in ids)
    for i, k in enumerate(keys):
        assert int(kkeys.crc32(blob, off[i], off[i + 1], kkeys.CRC_TABLE)) == zlib.crc32(k)
    order = kkeys.argsort_keys(blob, off, np.arange(len(keys)))
    assert order.tolist() == sorted(range(len(keys)), key=lambda i: keys[i])
