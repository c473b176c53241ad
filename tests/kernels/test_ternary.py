"""``kernels/ternary.py`` against :mod:`naive.ternary`: packing, quantization, products,
transitions, enumerated where the domain is small."""
import itertools

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from naive import ternary as nt
from thermogram.kernels import ternary as kt

F = np.float32
W3 = (-1, 0, 1)
weights_st = st.lists(st.sampled_from(W3), max_size=70)
finite32 = st.floats(-4.0, 4.0, width=32, allow_nan=False, allow_infinity=False)

# every confidence on or next to a threshold of the reference (in float32), and a few outside [0, 1]
_EDGES = [0.0, 0.3, 0.5, 0.7, 1.0, 26 / 255, 13 / 255, 51 / 255, 255 / 255]
CONFIDENCES = sorted({float(c) for e in _EDGES
                      for c in (np.nextafter(F(e), F(-1)), F(e), np.nextafter(F(e), F(2)))}
                     | {-1.0, 2.0, float("inf"), float("-inf")})
LEARNING_RATES = [0, 1, 13, 26, 51, 128, 254, 255]
DTS = [-(2**63), -5, -1, 0, 1, 5, 2**63 - 1]


def as_i8(ws):
    return np.array(ws, dtype=np.int8)


def random_packed_rows(rng, rows, cols):
    w = rng.integers(-1, 2, size=(rows, cols)).astype(np.int8)
    packed = np.zeros((rows, (cols + 3) // 4), np.uint8)
    for r in range(rows):
        kt.pack_ternary(w[r], packed[r])
    return w, packed, rng.uniform(0.5, 2.0, rows).astype(np.float32)


# ----------------------------------------------------------------------------- codes and packing

def test_code_kernels_enumerate_every_code():
    for w in W3:
        assert kt.code_of(np.int8(w)) == nt.to_2bit(w)
    for code in range(256):  # only the two low bits count; 0b11 reads as zero
        assert kt.weight_of(np.uint8(code)) == nt.from_2bit(code)


def test_count_invalid():
    w = np.array([-1, 0, 1, 2, -2, 127, -128], np.int8)
    assert kt.count_invalid(w) == sum(1 for v in w.tolist() if v not in W3) == 4


@given(weights_st)
def test_pack_unpack_identity_and_naive_bytes(ws):
    w = as_i8(ws)
    packed = np.empty((len(ws) + 3) // 4, np.uint8)
    kt.pack_ternary(w, packed)
    assert packed.tobytes() == nt.pack(ws)
    out = np.empty(len(ws), np.int8)
    kt.unpack_ternary(packed, len(ws), out)
    assert out.tolist() == ws
    assert set(out.tolist()) <= set(W3)
    f = np.empty(len(ws), np.float32)
    kt.unpack_ternary_f32(packed, len(ws), f)
    assert f.tolist() == [float(v) for v in ws]
    assert kt.count_active(packed, len(ws)) == nt.count_active(bytes(packed), len(ws))


@given(st.binary(max_size=20), st.integers(0, 3))
def test_unpack_and_count_read_like_the_reference_on_any_bytes(data, cut):
    n = max(0, 4 * len(data) - cut)
    buf = np.frombuffer(data, np.uint8).copy()
    out = np.empty(n, np.int8)
    kt.unpack_ternary(buf, n, out)
    assert out.tolist() == nt.unpack(data, n)
    assert kt.count_active(buf, n) == nt.count_active(data, n)
    changed = kt.canonicalize(buf, n)
    assert buf.tobytes() == nt.canonical(data, n)
    expect = sum(1 for j, b in enumerate(data) for k in range(4) if (b >> 2 * k) & 3 and
                 (4 * j + k >= n or (b >> 2 * k) & 3 == 3))
    assert changed == expect


# ----------------------------------------------------------------------------- quantization

@given(st.lists(finite32, max_size=60), st.floats(-1, 2, width=32))
def test_quantize_pack_matches_naive(vs, t):
    v = np.array(vs, np.float32)
    packed = np.empty((len(vs) + 3) // 4, np.uint8)
    kt.quantize_pack(v, F(t), packed)
    assert packed.tobytes() == nt.pack(nt.quantize(vs, t))


@given(st.lists(st.floats(-3, 3, width=32), max_size=80))
def test_adaptive_threshold_matches_naive_bit_for_bit(vs):
    got = kt.adaptive_threshold(np.array(vs, np.float32))
    assert np.float32(got).tobytes() == nt.adaptive_threshold(vs).tobytes()


def test_adaptive_threshold_edge_cases():
    for vs in ([0.0] * 5, [1e-7, -1e-6], [0.5, -1.5, 0.0]):
        assert kt.adaptive_threshold(np.array(vs, np.float32)) == nt.adaptive_threshold(vs)
    assert kt.adaptive_threshold(np.zeros(5, np.float32)) == F(0.5)
    assert kt.adaptive_threshold(np.array([0.5, -1.5, 0.0], np.float32)) == F(1.0)


@settings(max_examples=20)
@given(st.integers(0, 8), st.integers(0, 30), st.integers(0, 2**32 - 1))
def test_quantize_rows_matches_naive(rows, cols, seed):
    rng = np.random.default_rng(seed)
    m = (rng.standard_normal((rows, cols)) * rng.choice([1e-8, 1.0, 30.0])).astype(np.float32)
    if rows and cols:
        m[0, :] = 0.0  # an all-zero row takes scale 1.0
    packed = np.empty((rows, (cols + 3) // 4), np.uint8)
    scales = np.empty(rows, np.float32)
    kt.quantize_rows(m, np.empty(cols, np.float32), packed, scales)
    rows_bytes, want_scales = nt.layer_from_f32_matrix(m)
    assert [bytes(r) for r in packed] == rows_bytes
    assert scales.tobytes() == np.array(want_scales, np.float32).tobytes()


# ----------------------------------------------------------------------------- products

@given(st.lists(finite32, max_size=40))
def test_dot_is_the_references_left_to_right_sum(vs):
    n = len(vs)
    ws = np.random.default_rng(n).integers(-1, 2, n).tolist()
    x = np.array(vs, np.float32)
    data = nt.pack(ws)
    got = kt.dot_packed(np.frombuffer(data, np.uint8), n, x)
    assert np.float32(got).tobytes() == nt.dot(data, n, x).tobytes()


@settings(max_examples=20)
@given(st.integers(0, 40), st.integers(0, 150), st.integers(0, 2**32 - 1))
def test_layer_forward_matches_naive_blocked_order(rows, cols, seed):
    rng = np.random.default_rng(seed)
    _, packed, scales = random_packed_rows(rng, rows, cols)
    x = rng.standard_normal(cols).astype(np.float32)
    out = np.empty(rows, np.float32)
    kt.layer_forward(packed, cols, x, scales, out)
    want = nt.layer_forward_blocked([bytes(r) for r in packed], cols, scales, x)
    assert out.tobytes() == want.tobytes()


@pytest.mark.parametrize("chunk", [1, 3, 64])
def test_layer_forward_batch_chunks_and_row_blocks(chunk):
    rng = np.random.default_rng(chunk)
    rows, cols, batch = 70, 131, 11  # rows span three row blocks; cols leave a tail byte
    _, packed, scales = random_packed_rows(rng, rows, cols)
    x = rng.standard_normal((batch, cols)).astype(np.float32)
    out = np.empty((batch, rows), np.float32)
    kt.layer_forward_batch(packed, cols, x, scales, chunk, out)
    rows_bytes = [bytes(r) for r in packed]
    for i in range(batch):
        assert out[i].tobytes() == nt.layer_forward_blocked(rows_bytes, cols, scales, x[i]).tobytes()


def test_pair_tables_kernel():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((3, 6)).astype(np.float32)
    t = kt.pair_tables(x, 6, 2)
    assert t.shape == (2, 2, 16, 3)
    xs = np.concatenate([x, np.zeros((3, 2), np.float32)], axis=1)  # padded to 4 * 2 columns
    for j, h, q, i in itertools.product(range(2), range(2), range(16), range(3)):
        va, vb = xs[i, 4 * j + 2 * h], xs[i, 4 * j + 2 * h + 1]
        want = F(nt._signed(q & 1, q & 2, va) + nt._signed(q & 4, q & 8, vb))
        assert t[j, h, q, i] == want


# ----------------------------------------------------------------------------- transitions

def test_scalar_and_vector_transitions_enumerate_every_weight():
    w = as_i8(W3)
    for fn, vec, twin in ((kt.strengthen, kt.strengthen_vec, nt.strengthen),
                          (kt.weaken, kt.weaken_vec, nt.weaken),
                          (kt.flip, kt.flip_vec, nt.flip),
                          (kt.decay_toward_zero, kt.decay_toward_zero_vec, nt.decay_toward_zero)):
        assert [int(fn(np.int8(v))) for v in W3] == [twin(v) for v in W3]
        out = np.empty(3, np.int8)
        vec(w, out)
        assert out.tolist() == [twin(v) for v in W3]
    for cur, tgt in itertools.product(W3, W3):
        assert int(kt.move_toward(np.int8(cur), np.int8(tgt))) == nt.move_toward(cur, tgt)
    mask = np.empty(3, np.bool_)
    kt.prune_mask_vec(w, mask)
    assert mask.tolist() == [nt.should_prune(v) for v in W3]


def test_ternary_update_enumerates_every_combination():
    combos = list(itertools.product(W3, W3, CONFIDENCES))
    cur = as_i8([c[0] for c in combos])
    obs = as_i8([c[1] for c in combos])
    conf = np.array([c[2] for c in combos], np.float32)
    for policy, lr in itertools.product(range(5), LEARNING_RATES):
        want = [nt.apply_ternary_update(policy, lr, c, o, f) for c, o, f in combos]
        out = np.empty(len(combos), np.int8)
        kt.ternary_update_vec(policy, np.uint8(lr), cur, obs, conf, out)
        assert out.tolist() == want, (policy, lr)
    for policy, (c, o, f) in itertools.product(range(5), combos[::7]):
        assert int(kt.ternary_update(policy, np.uint8(26), np.int8(c), np.int8(o), np.float32(f))) == \
            nt.apply_ternary_update(policy, 26, c, o, f)


def test_ternary_stdp_enumerates_every_combination():
    combos = list(itertools.product(W3, (False, True), (False, True), DTS))
    for w, pre, post, dt in combos:
        assert int(kt.ternary_stdp(np.int8(w), pre, post, np.int64(dt))) == nt.apply_ternary_stdp(w, pre, post, dt)
    out = np.empty(len(combos), np.int8)
    kt.ternary_stdp_vec(as_i8([c[0] for c in combos]), np.array([c[1] for c in combos]),
                        np.array([c[2] for c in combos]), np.array([c[3] for c in combos], np.int64), out)
    assert out.tolist() == [nt.apply_ternary_stdp(*c) for c in combos]


def test_majority_vote_enumerates_every_sequence_up_to_length_5():
    seqs = [s for n in range(6) for s in itertools.product(W3, repeat=n)]
    for s in seqs:
        assert int(kt.majority_vote(as_i8(s))) == nt.majority_vote(s), s
    five = as_i8([s for s in seqs if len(s) == 5])  # (243, 5)
    out = np.empty(len(five), np.int8)
    kt.majority_vote_columns(np.ascontiguousarray(five.T), out)
    assert out.tolist() == [nt.majority_vote(s) for s in five.tolist()]


@given(weights_st, st.integers(0, 4), st.integers(0, 255), st.data())
def test_transitions_stay_in_range(ws, policy, lr, data):
    w = as_i8(ws)
    out = np.empty(len(ws), np.int8)
    for vec in (kt.strengthen_vec, kt.weaken_vec, kt.flip_vec, kt.decay_toward_zero_vec):
        vec(w, out)
        assert set(out.tolist()) <= set(W3)
    conf = np.array(data.draw(st.lists(st.floats(-1, 2, width=32), min_size=len(ws), max_size=len(ws))),
                    np.float32)
    kt.ternary_update_vec(policy, np.uint8(lr), w, w[::-1].copy(), conf, out)
    assert set(out.tolist()) <= set(W3)
    assert out.tolist() == [nt.apply_ternary_update(policy, lr, c, o, f)
                            for c, o, f in zip(ws, ws[::-1], conf)]
