"""``kernels/colony.py`` against :mod:`naive.colony` (the ``xxhash`` package, ``bisect``,
left-to-right float32 sums)."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from naive import colony as nco
from thermogram.kernels import colony as kcol

# uint64 arithmetic wraps by design; without the JIT numpy says so
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")

finite32 = st.floats(-1e3, 1e3, width=32, allow_nan=False)
# lengths that reach every branch of XXH3's short paths: 0, 1-3, 4-8, 9-16, 17-128, 129-240, longer
key_bytes = st.one_of(st.binary(max_size=20), st.binary(min_size=100, max_size=260)).map(
    lambda b: b.replace(b"\x00", b"\x01"))


@given(st.binary(max_size=kcol.MAX_INLINE), st.binary(max_size=3))
def test_xxh3_64_matches_xxhash(data, pad):
    buf = np.frombuffer(pad + data + pad, np.uint8) if (pad or data) else np.zeros(0, np.uint8)
    assert int(kcol.xxh3_64(buf, len(pad), len(data), kcol.SECRET)) == nco.xxh3_64(data)


def test_xxh3_64_every_short_length():
    data = bytes(range(256)) * 2
    buf = np.frombuffer(data, np.uint8)
    for n in range(kcol.MAX_INLINE + 1):
        assert int(kcol.xxh3_64(buf, 3, n, kcol.SECRET)) == nco.xxh3_64(data[3:3 + n]), n


@given(st.lists(key_bytes, max_size=8), st.sampled_from([-1, ord("/"), ord("a")]))
def test_locality_hashes_match_naive(keys, cut):
    buf = np.frombuffer(b"\x00".join(keys), np.uint8) if keys else np.zeros(0, np.uint8)
    out = np.full(len(keys), 7, np.uint64)
    long_idx = np.full(len(keys), -1, np.int64)
    n_long = kcol.locality_hashes(buf, len(keys), cut, kcol.SECRET, out, long_idx)
    want, want_long = nco.locality_hashes(keys, cut)
    assert [int(v) for v in out] == want
    assert long_idx[:n_long].tolist() == want_long


@given(st.lists(st.integers(0, 2**64 - 1), max_size=30),
       st.lists(st.integers(1, 2**64 - 1), max_size=6, unique=True))
def test_assign_ranges_matches_bisect(hashes, starts):
    bounds = [0] + sorted(starts)
    owners = list(range(10, 10 + len(bounds)))
    out = np.zeros(len(hashes), np.int64)
    kcol.assign_ranges(np.array(hashes, np.uint64), np.array(bounds, np.uint64),
                       np.array(owners, np.int64), out)
    assert out.tolist() == nco.assign_ranges(hashes, bounds, owners)


@given(st.data(), st.integers(0, 40))
def test_embedding_math_matches_naive_bit_for_bit(data, n):
    a = np.array(data.draw(st.lists(finite32, min_size=n, max_size=n)), np.float32)
    b = np.array(data.draw(st.lists(finite32, min_size=n, max_size=n)), np.float32)
    if n and data.draw(st.booleans()):
        b[:] = 0
    assert np.float32(kcol.sum_squares_f32(a)).tobytes() == nco.sum_squares(a).tobytes()
    assert np.float32(kcol.dot_f32(a, b)).tobytes() == nco.dot(a, b).tobytes()
    assert np.float32(kcol.cosine_f32(a, b)).tobytes() == nco.cosine(a, b).tobytes()


@given(st.lists(st.lists(finite32, max_size=6), max_size=6))
def test_row_magnitudes_match_naive(rows):
    flat = np.array([v for r in rows for v in r], np.float32)
    offsets = np.zeros(len(rows) + 1, np.int64)
    np.cumsum([len(r) for r in rows], out=offsets[1:])
    out = np.zeros(len(rows), np.float32)
    kcol.row_magnitudes_f32(flat, offsets, out)
    assert out.tobytes() == np.array(nco.row_magnitudes(rows), np.float32).tobytes()
