"""Ternary weights: the Python API against tests/naive/ternary.py, storage round trips and
the reference's transition tables (enumerated). The kernels' own tests are in
tests/kernels/test_ternary.py."""
import io
import itertools
import pickle

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings, strategies as st

from naive import ternary as nt
import thermogram.ternary as tt
from thermogram.ternary import layer as ternary_layer
from thermogram.errors import ThermogramError, ValidationError
from thermogram.signal import Signal
from thermogram.ternary import (
    PackedTernary, TernaryLayer, TernaryWeight, WeightIndexError, apply_ternary_stdp,
    apply_ternary_stdp_array, apply_ternary_update, apply_ternary_update_array, decay_toward_zero,
    decay_toward_zero_array, flip_array, should_prune_ternary, should_prune_ternary_array,
    strengthen_array, ternary_majority_vote, ternary_majority_vote_array, weaken_array,
)

F = np.float32
W3 = (-1, 0, 1)
weights_st = st.lists(st.sampled_from(W3), max_size=70)
finite32 = st.floats(-4.0, 4.0, width=32, allow_nan=False, allow_infinity=False)


def as_i8(ws):
    return np.array(ws, dtype=np.int8)


def small_ints(shape, rng):
    """Integer-valued float32 inputs: every sum is exact in float32, whatever the order."""
    return rng.integers(-50, 51, size=shape).astype(np.float32)


# ============================================================================= TernaryWeight


def test_weight_values_and_conversions():
    assert [int(w) for w in TernaryWeight] == [-1, 0, 1]
    assert TernaryWeight.POS.to_f32() == 1.0 and TernaryWeight.NEG.to_f32() == -1.0
    assert TernaryWeight.ZERO.to_f32() == 0.0
    assert TernaryWeight(-1) is TernaryWeight.NEG
    with pytest.raises(ValidationError, match="-1, 0 or \\+1"):
        TernaryWeight(2)


@pytest.mark.parametrize("w", W3)
def test_weight_transitions_match_reference(w):
    tw = TernaryWeight(w)
    assert int(tw.strengthen()) == nt.strengthen(w)
    assert int(tw.weaken()) == nt.weaken(w)
    assert int(tw.flip()) == nt.flip(w)
    assert tw.is_active() == (w != 0)
    assert isinstance(tw.strengthen(), TernaryWeight)


def test_weight_from_f32_reference_cases():
    t = 0.5
    assert TernaryWeight.from_f32(0.8, t) is TernaryWeight.POS
    assert TernaryWeight.from_f32(0.3, t) is TernaryWeight.ZERO
    assert TernaryWeight.from_f32(-0.3, t) is TernaryWeight.ZERO
    assert TernaryWeight.from_f32(-0.8, t) is TernaryWeight.NEG
    assert TernaryWeight.from_f32(0.5, t) is TernaryWeight.POS  # >= threshold
    assert TernaryWeight.from_f32(-0.5, t) is TernaryWeight.NEG  # <= -threshold
    # compared in float32: this float64 rounds up to the threshold
    assert TernaryWeight.from_f32(0.49999999999, t) is TernaryWeight.POS
    assert TernaryWeight.from_f32(float("inf"), t) is TernaryWeight.POS


@given(finite32, st.floats(0, 2, width=32))
def test_weight_from_f32_matches_naive(v, t):
    assert int(TernaryWeight.from_f32(v, t)) == nt.quantize_one(v, t)


@pytest.mark.parametrize("bad", [(float("nan"), 0.5), (0.1, float("nan")), ("x", 0.5), (None, 0.5)])
def test_weight_from_f32_rejects_nan_and_non_numbers(bad):
    with pytest.raises(ValidationError):
        TernaryWeight.from_f32(*bad)


def test_weight_signal_conversion():
    assert TernaryWeight.POS.to_signal() == Signal(1, 255)
    assert TernaryWeight.NEG.to_signal() == Signal(-1, 255)
    assert TernaryWeight.ZERO.to_signal() == Signal.ZERO
    for w in TernaryWeight:
        assert TernaryWeight.from_signal(w.to_signal()) is w
    assert TernaryWeight.from_signal(Signal(1, 0)) is TernaryWeight.ZERO
    assert TernaryWeight.from_signal((-1, 7)) is TernaryWeight.NEG
    assert "POS" in TernaryWeight.POS._repr_html_()


# ============================================================================= bit layout


def test_bit_layout_matches_reference():
    p = PackedTernary([1, 0, -1, 1, 0])
    assert p.bytes() == bytes([0b01_10_00_01, 0b00000000])
    assert p.bytes() == nt.pack([1, 0, -1, 1, 0])
    assert PackedTernary([-1, -1, -1, -1]).bytes() == bytes([0b10101010])
    assert PackedTernary([1, 1, 1, 1]).bytes() == bytes([0b01010101])
    assert PackedTernary([]).bytes() == b""


# ============================================================================= PackedTernary


@given(weights_st)
def test_packed_api_round_trips(ws):
    p = PackedTernary(ws)
    assert len(p) == p.len() == len(ws)
    assert p.to_array().tolist() == ws
    assert [int(w) for w in p] == ws
    assert p.to_list() == [TernaryWeight(w) for w in ws]
    assert p.to_float().dtype == np.float32
    assert PackedTernary.from_bytes(p.bytes(), len(ws)) == p
    assert PackedTernary.from_bytes(bytearray(p.bytes()), len(ws), strict=True) == p
    assert PackedTernary.from_bytes(p.data, len(ws)) == p
    assert bytes(p) == p.bytes() == nt.pack(ws)
    assert pickle.loads(pickle.dumps(p)) == p
    assert p.memory_bytes() == (len(ws) + 3) // 4
    assert p.count_active() == sum(1 for w in ws if w)
    assert p.is_empty() == (not ws)


def test_packed_reference_examples():
    ws = [TernaryWeight.POS, TernaryWeight.ZERO, TernaryWeight.NEG, TernaryWeight.POS, TernaryWeight.ZERO]
    p = PackedTernary(ws)
    assert [p.get(i) for i in range(5)] == ws
    assert p[-1] is TernaryWeight.ZERO
    z = PackedTernary.zeros(8)
    z.set(0, TernaryWeight.POS)
    z.set(3, TernaryWeight.NEG)
    z[7] = 1
    assert z.to_array().tolist() == [1, 0, 0, -1, 0, 0, 0, 1]
    q = PackedTernary.from_f32([0.8, 0.2, -0.9, 0.1, -0.3], 0.5)
    assert q.to_array().tolist() == [1, 0, -1, 0, 0]
    assert PackedTernary([1, -1, 0, 1]).dot([1.0, 2.0, 3.0, 4.0]) == 3.0
    big = PackedTernary([1] * 1000)
    assert big.memory_bytes() == 250 and big.compression_ratio() == 16.0
    s = PackedTernary([0, 0, 1, 0])
    assert s.count_active() == 1 and s.sparsity() == 0.75
    assert PackedTernary([]).sparsity() == 1.0 and PackedTernary([]).compression_ratio() == 1.0
    assert p[1:4] == PackedTernary([0, -1, 1])


def test_packed_strengthen_weaken_in_place():
    p = PackedTernary([-1, 0, 1])
    for i in range(3):
        p.strengthen(i)
    assert p.to_array().tolist() == [0, 1, 1]
    for _ in range(3):
        for i in range(3):
            p.weaken(i)
    assert p.to_array().tolist() == [-1, -1, -1]


@given(st.lists(st.floats(-2, 2, width=32), max_size=50))
def test_packed_from_f32_adaptive_matches_naive(vs):
    p = PackedTernary.from_f32_adaptive(vs)
    t = nt.adaptive_threshold(vs)
    assert p.bytes() == nt.pack(nt.quantize(vs, t))
    assert np.float32(PackedTernary.compute_adaptive_threshold(vs)) == t


def test_packed_from_bytes_rejects_inconsistent_length():
    with pytest.raises(ValidationError, match="need 2 bytes"):
        PackedTernary.from_bytes(b"\x00", 5)
    with pytest.raises(ValidationError, match="need 1 bytes"):
        PackedTernary.from_bytes(b"\x00\x00", 4)
    with pytest.raises(ValidationError, match="need 0 bytes"):
        PackedTernary.from_bytes(b"\x00", 0)
    with pytest.raises(ValidationError):
        PackedTernary.from_bytes(b"\x00", -1)
    with pytest.raises(ValidationError):
        PackedTernary.from_bytes("text", 4)


def test_packed_from_bytes_reads_reserved_codes_as_zero():
    # 0b11 is reserved: the reference reads it as zero; bits past the length are ignored
    p = PackedTernary.from_bytes(bytes([0b11_01_11_10]), 3)
    assert p.to_array().tolist() == [-1, 0, 1]
    assert p.bytes() == bytes([0b00_01_00_10])
    with pytest.raises(ValidationError, match="invalid 2-bit codes"):
        PackedTernary.from_bytes(bytes([0b11_01_11_10]), 3, strict=True)
    with pytest.raises(ValidationError, match="invalid"):
        PackedTernary.from_bytes(bytes([0b01_00_00_00]), 3, strict=True)


def test_packed_validation_errors():
    with pytest.raises(ValidationError, match="only -1, 0 and \\+1; found 2 at index \\(1,\\)"):
        PackedTernary([0, 2])
    with pytest.raises(ValidationError, match="found -128 at index \\(2,\\)"):
        PackedTernary(np.array([0, 1, -128], np.int8))
    with pytest.raises(ValidationError, match="from_f32"):
        PackedTernary(np.array([0.5, 1.0]))
    with pytest.raises(ValidationError):
        PackedTernary([True, False])
    with pytest.raises(ValidationError, match="1-D"):
        PackedTernary(np.zeros((2, 2), np.int8))
    with pytest.raises(ValidationError, match="NaN"):
        PackedTernary.from_f32([0.1, float("nan")], 0.5)
    with pytest.raises(ValidationError, match="NaN or infinity"):
        PackedTernary.from_f32_adaptive([0.1, float("inf")])
    p = PackedTernary([1, 0, -1])
    with pytest.raises(WeightIndexError):
        p.get(3)
    with pytest.raises(IndexError):
        p.set(-4, 1)
    with pytest.raises(ThermogramError):
        p.strengthen(10)
    with pytest.raises(ValidationError):
        p.set(0, 2)
    with pytest.raises(ValidationError, match="shape \\(3,\\)"):
        p.dot([1.0, 2.0])


def test_packed_repr():
    p = PackedTernary([1, 0, 0, 0])
    assert repr(p) == "PackedTernary(4 weights, 1 bytes, 75.0% sparse)"
    assert "<b>PackedTernary</b>" in p._repr_html_() and "+000" in p._repr_html_()


# ============================================================================= TernaryLayer forward


def layer_case(rng, rows, cols):
    w = rng.integers(-1, 2, size=(rows, cols)).astype(np.int8)
    return w, TernaryLayer.from_weights(w, scales=rng.uniform(0.5, 2.0, rows).astype(np.float32))


@settings(max_examples=25)
@given(st.integers(0, 40), st.integers(0, 150), st.integers(0, 2**32 - 1))
def test_forward_equals_naive_matmul(rows, cols, seed):
    rng = np.random.default_rng(seed)
    w, layer = layer_case(rng, rows, cols)
    # integer inputs: exact, so the kernel must equal the float matmul of the unpacked weights
    x = small_ints(cols, rng)
    want = (w.astype(np.float64) @ x.astype(np.float64)).astype(np.float32) * layer.scales
    assert np.array_equal(layer.forward(x), want)
    # general inputs: the documented blocked order bit for bit, the reference order to rounding
    x = rng.standard_normal(cols).astype(np.float32)
    rows_bytes = [bytes(r) for r in layer.packed]
    got = layer.forward(x)
    assert np.array_equal(got, nt.layer_forward_blocked(rows_bytes, cols, layer.scales, x))
    ref = nt.layer_forward_reference(rows_bytes, cols, layer.scales, x)
    # two summation orders of n terms differ by at most ~2 n u sum|x| (u = float32 unit roundoff)
    bound = 2 * (cols + 16) * np.finfo(np.float32).eps * np.abs(x).sum() * layer.scales + 1e-30
    assert (np.abs(got.astype(np.float64) - ref) <= bound).all()


@settings(max_examples=20)
@given(st.integers(0, 40), st.integers(0, 150), st.integers(0, 20), st.booleans(), st.integers(0, 2**32 - 1))
def test_forward_batch_equals_forward_bit_for_bit(rows, cols, batch, tables, seed):
    rng = np.random.default_rng(seed)
    w, layer = layer_case(rng, rows, cols)
    x = rng.standard_normal((batch, cols)).astype(np.float32)
    xi = small_ints((batch, cols), rng)
    saved = ternary_layer._BATCH_MIN
    ternary_layer._BATCH_MIN = 0 if tables else 10**9  # pair-table kernel, or forward per input
    try:
        got = layer.forward_batch(x)
        exact = layer.forward_batch(xi)
    finally:
        ternary_layer._BATCH_MIN = saved
    assert got.shape == (batch, rows)
    for i in range(batch):
        assert np.array_equal(got[i], layer.forward(x[i]))
    want = (xi.astype(np.float64) @ w.T.astype(np.float64)).astype(np.float32) * layer.scales
    assert np.array_equal(exact, want)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NaN/inf arithmetic when run without the JIT
def test_forward_skips_inputs_under_zero_weights():
    layer = TernaryLayer.from_weights([[1, 0, -1, 0, 0]])
    x = np.array([2.0, np.nan, 0.5, np.inf, -np.inf], np.float32)
    assert layer.forward(x).tolist() == [1.5]
    assert layer.forward_batch(np.stack([x] * 40)).tolist() == [[1.5]] * 40


def test_forward_reference_example_and_outputs():
    layer = TernaryLayer.from_f32_matrix([[1.0, 0.0, -1.0], [-1.0, 1.0, 0.0]])
    assert layer.forward([1.0, 2.0, 3.0]).tolist() == [-2.0, 1.0]
    out = np.empty(2, np.float32)
    assert layer.forward(np.array([1, 2, 3]), out=out) is out
    with pytest.raises(ValidationError, match="out must be"):
        layer.forward([1.0, 2.0, 3.0], out=np.empty(2, np.float64))
    with pytest.raises(ValidationError, match="shape \\(3,\\)"):
        layer.forward([1.0, 2.0])
    with pytest.raises(ValidationError, match="\\(batch, 3\\)"):
        layer.forward_batch(np.zeros((4, 2)))
    with pytest.raises(ValidationError):
        layer.forward(np.array(["a", "b", "c"]))


@settings(max_examples=20)
@given(st.integers(0, 12), st.integers(0, 40), st.integers(0, 2**32 - 1))
def test_from_f32_matrix_matches_naive(rows, cols, seed):
    rng = np.random.default_rng(seed)
    m = (rng.standard_normal((rows, cols)) * rng.choice([1e-8, 1.0, 30.0])).astype(np.float32)
    if rows and cols:
        m[0, :] = 0.0  # an all-zero row takes scale 1.0
    layer = TernaryLayer.from_f32_matrix(m)
    rows_bytes, scales = nt.layer_from_f32_matrix(m)
    assert [bytes(r) for r in layer.packed] == rows_bytes
    assert np.array(scales, np.float32).tobytes() == layer.scales.tobytes()
    assert layer.dims() == (rows, cols)


# ============================================================================= TernaryLayer API


def test_layer_weights_access_and_memory():
    layer = TernaryLayer.zeros(3, 5)
    assert layer.dims() == (3, 5) and layer.shape == (3, 5)
    layer.set_weight(1, 4, TernaryWeight.NEG)
    layer.set_weight(-1, 0, 1)
    assert layer.get_weight(1, 4) is TernaryWeight.NEG
    assert layer.to_array().tolist() == [[0] * 5, [0, 0, 0, 0, -1], [1, 0, 0, 0, 0]]
    assert layer.row(1).to_array().tolist() == [0, 0, 0, 0, -1]
    assert layer.memory_bytes() == 3 * 2 + 3 * 4
    with pytest.raises(WeightIndexError, match="row 3"):
        layer.get_weight(3, 0)
    with pytest.raises(WeightIndexError, match="col 5"):
        layer.set_weight(0, 5, 1)
    with pytest.raises(ValueError):
        layer.packed[0, 0] = 1  # read-only view
    big = TernaryLayer.zeros(4096, 4096)
    assert big.packed.nbytes * 16 == 4096 * 4096 * 4


def test_layer_constructor_validation():
    with pytest.raises(ValidationError, match="shape \\(rows, 2\\)"):
        TernaryLayer(np.zeros((2, 3), np.uint8), 5)
    with pytest.raises(ValidationError, match="uint8"):
        TernaryLayer(np.zeros((2, 2), np.int64), 5)
    with pytest.raises(ValidationError, match="one per row"):
        TernaryLayer(np.zeros((2, 2), np.uint8), 5, scales=[1.0])
    with pytest.raises(ValidationError, match="NaN or infinity"):
        TernaryLayer(np.zeros((1, 2), np.uint8), 5, scales=[np.nan])
    with pytest.raises(ValidationError, match="2-D"):
        TernaryLayer.from_f32_matrix([1.0, 2.0])
    with pytest.raises(ValidationError, match="NaN or infinity"):
        TernaryLayer.from_f32_matrix([[1.0, np.nan]])
    with pytest.raises(ValidationError, match="2-D"):
        TernaryLayer.from_weights([1, 0, -1])
    with pytest.raises(ValidationError, match="rectangular"):
        TernaryLayer.from_f32_matrix([[1.0, 2.0], [3.0]])
    with pytest.raises(ValidationError, match="rectangular"):
        TernaryLayer.from_weights([[1, 0], [1]])
    # foreign bytes are stored canonically
    layer = TernaryLayer(np.array([[0xFF, 0xFF]], np.uint8), 5)
    assert layer.packed.tolist() == [[0, 0]]


@settings(max_examples=15)
@given(st.integers(0, 20), st.integers(0, 45), st.integers(0, 2**32 - 1))
def test_layer_storage_round_trips(rows, cols, seed):
    rng = np.random.default_rng(seed)
    _, layer = layer_case(rng, rows, cols)
    assert TernaryLayer.from_arrays(layer.to_arrays()) == layer
    table = layer.to_arrow()
    assert TernaryLayer.from_arrow(table) == layer
    for batch in table.to_batches():
        assert TernaryLayer.from_arrow(batch) == layer
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    assert TernaryLayer.from_arrow(pa.ipc.open_stream(sink.getvalue()).read_all()) == layer
    assert pickle.loads(pickle.dumps(layer)) == layer
    assert layer.copy() == layer


def test_layer_parquet_round_trip_and_sliced_tables():
    rng = np.random.default_rng(3)
    _, layer = layer_case(rng, 40, 37)
    buf = io.BytesIO()
    pq.write_table(layer.to_arrow(), buf)
    back = pq.read_table(io.BytesIO(buf.getvalue()))
    assert TernaryLayer.from_arrow(back) == layer
    # a table made of sliced chunks still reads the right bytes
    t = layer.to_arrow()
    chunked = pa.concat_tables([t.slice(0, 13), t.slice(13)])
    assert TernaryLayer.from_arrow(chunked) == layer


def test_layer_arrow_and_arrays_reject_malformed_input():
    layer = TernaryLayer.from_weights([[1, 0, -1], [0, 1, 1]])
    t = layer.to_arrow()
    meta = dict(t.schema.metadata)
    with pytest.raises(ValidationError, match="thermogram.kind"):
        TernaryLayer.from_arrow(t.replace_schema_metadata({}))
    with pytest.raises(ValidationError, match="metadata says 3"):
        TernaryLayer.from_arrow(t.replace_schema_metadata({**meta, b"thermogram.rows": b"3"}))
    with pytest.raises(ValidationError, match="fixed_size_binary\\(3\\)"):
        TernaryLayer.from_arrow(t.replace_schema_metadata({**meta, b"thermogram.cols": b"9"}))
    with pytest.raises(ValidationError, match="integer"):
        TernaryLayer.from_arrow(t.replace_schema_metadata({**meta, b"thermogram.cols": b"x"}))
    with pytest.raises(ValidationError, match="no 'scale' column"):
        TernaryLayer.from_arrow(t.drop_columns(["scale"]))
    with pytest.raises(ValidationError, match="Table or RecordBatch"):
        TernaryLayer.from_arrow({"packed": 1})
    arrays = layer.to_arrays()
    with pytest.raises(ValidationError, match="missing scales"):
        TernaryLayer.from_arrays({"packed": arrays["packed"], "dims": arrays["dims"]})
    with pytest.raises(ValidationError, match="must have 3 rows"):
        TernaryLayer.from_arrays({**arrays, "dims": np.array([2, 3])[::-1].copy()})
    with pytest.raises(ValidationError, match="one per row"):
        TernaryLayer.from_arrays({**arrays, "scales": np.ones(3, np.float32)})


def test_layer_repr():
    layer = TernaryLayer.from_weights([[1, 0, -1], [-1, 1, 0]])
    assert repr(layer) == "TernaryLayer(2x3, 10 bytes)"
    assert "4 active weights" in layer._repr_html_()
    assert "TernaryLayer" in TernaryLayer.zeros(0, 0)._repr_html_()


# ============================================================================= plasticity

# every confidence that sits on or next to a threshold of the reference (in float32)
_EDGES = [0.0, 0.3, 0.5, 0.7, 1.0, 26 / 255, 13 / 255, 51 / 255, 255 / 255]
CONFIDENCES = sorted({float(c) for e in _EDGES
                      for c in (np.nextafter(F(e), F(-1)), F(e), np.nextafter(F(e), F(2)))}
                     | {-1.0, 2.0, float("inf"), float("-inf")})
LEARNING_RATES = [0, 1, 13, 26, 51, 128, 254, 255]


def test_ternary_update_enumerates_every_combination():
    n = 0
    for policy, lr, cur, obs, conf in itertools.product(range(5), LEARNING_RATES, W3, W3, CONFIDENCES):
        want = nt.apply_ternary_update(policy, lr, cur, obs, conf)
        got = apply_ternary_update(policy, lr, cur, obs, conf)
        assert isinstance(got, TernaryWeight)
        assert int(got) == want, (policy, lr, cur, obs, conf)
        n += 1
    assert n == 5 * len(LEARNING_RATES) * 9 * len(CONFIDENCES)


def test_ternary_update_array_matches_scalar_for_every_combination():
    combos = list(itertools.product(W3, W3, CONFIDENCES))
    cur = np.array([c[0] for c in combos], np.int8)
    obs = np.array([c[1] for c in combos], np.int8)
    conf = np.array([c[2] for c in combos], np.float32)
    for policy in range(5):
        for lr in LEARNING_RATES:
            got = apply_ternary_update_array(policy, lr, cur, obs, conf)
            want = [nt.apply_ternary_update(policy, lr, c, o, f) for c, o, f in combos]
            assert got.dtype == np.int8 and got.tolist() == want


def test_ternary_update_reference_table_spot_checks():
    P, Z, N = TernaryWeight.POS, TernaryWeight.ZERO, TernaryWeight.NEG
    stdp, replace, ema, bayes, wta = range(5)
    assert apply_ternary_update(stdp, 26, Z, Z, 0.8) is P        # agreeing + confident: strengthen
    assert apply_ternary_update(stdp, 26, P, P, 0.7) is P        # 0.7 is not > 0.7: unchanged
    assert apply_ternary_update(stdp, 26, N, P, 0.6) is Z        # disagree, > 0.5: one step toward
    assert apply_ternary_update(stdp, 26, P, Z, 0.6) is Z
    assert apply_ternary_update(stdp, 26, N, P, 0.5) is Z        # disagree, low: decay to zero
    assert apply_ternary_update(replace, 0, N, P, 0.51) is P
    assert apply_ternary_update(replace, 0, N, P, 0.5) is N
    assert apply_ternary_update(ema, 26, N, P, 0.102) is P       # 26/255 = 0.10196...
    assert apply_ternary_update(ema, 26, N, P, 0.1) is N
    assert apply_ternary_update(ema, 26, N, P, F(26) / F(255)) is N  # equal is not greater
    assert apply_ternary_update(bayes, 26, N, P, 0.71) is P
    assert apply_ternary_update(bayes, 26, N, P, 0.5) is Z
    assert apply_ternary_update(bayes, 26, N, P, 0.3) is N
    assert apply_ternary_update(wta, 26, P, N, 0.9) is N
    assert apply_ternary_update(ema, Signal.positive(26), N, P, 0.102) is P


class _Policy(int):
    """Stand-in for an IntEnum policy."""


@pytest.mark.parametrize("args, match", [
    ((5, 26, 0, 0, 0.5), "policy"),
    ((-1, 26, 0, 0, 0.5), "policy"),
    (("EMA", 26, 0, 0, 0.5), "policy"),
    ((0, 256, 0, 0, 0.5), "learning_rate"),
    ((0, -1, 0, 0, 0.5), "learning_rate"),
    ((0, 26, 2, 0, 0.5), "current"),
    ((0, 26, 0, -2, 0.5), "observed"),
    ((0, 26, 0, 0, float("nan")), "NaN"),
])
def test_ternary_update_validation(args, match):
    with pytest.raises(ValidationError, match=match):
        apply_ternary_update(*args)


def test_ternary_update_accepts_int_enums_and_broadcasts():
    assert apply_ternary_update(_Policy(1), 0, 0, 1, 0.9) is TernaryWeight.POS
    assert apply_ternary_update_array(policy=2, lr_mag=26, current=[-1], observed=[1],
                                      confidence=[0.2]).tolist() == [1]
    out = apply_ternary_update_array(1, 0, np.zeros((2, 3), np.int8), 1, 0.9)
    assert out.shape == (2, 3) and (out == 1).all()
    with pytest.raises(ValidationError, match="do not broadcast"):
        apply_ternary_update_array(1, 0, np.zeros(3, np.int8), np.zeros(2, np.int8), 0.9)
    with pytest.raises(ValidationError, match="NaN"):
        apply_ternary_update_array(1, 0, [0, 1], [1, 1], [0.9, np.nan])
    with pytest.raises(ValidationError, match="only -1, 0 and \\+1"):
        apply_ternary_update_array(1, 0, [0, 3], [1, 1], 0.9)


DTS = [-(2**63), -5, -1, 0, 1, 5, 2**63 - 1]


def test_ternary_stdp_enumerates_every_combination():
    combos = list(itertools.product(W3, (False, True), (False, True), DTS))
    for w, pre, post, dt in combos:
        got = apply_ternary_stdp(w, pre, post, dt)
        assert isinstance(got, TernaryWeight)
        assert int(got) == nt.apply_ternary_stdp(w, pre, post, dt), (w, pre, post, dt)
    arr = apply_ternary_stdp_array(np.array([c[0] for c in combos], np.int8),
                                   np.array([c[1] for c in combos]), np.array([c[2] for c in combos]),
                                   np.array([c[3] for c in combos], np.int64))
    assert arr.tolist() == [nt.apply_ternary_stdp(*c) for c in combos]


def test_ternary_stdp_reference_cases_and_validation():
    P, Z, N = TernaryWeight.POS, TernaryWeight.ZERO, TernaryWeight.NEG
    assert apply_ternary_stdp(Z, True, True, 10) is P
    assert apply_ternary_stdp(Z, True, True, -10) is N
    assert apply_ternary_stdp(N, True, True, 0) is Z
    assert apply_ternary_stdp(P, True, True, 0) is P
    assert apply_ternary_stdp(Z, True, False, 10) is Z
    assert apply_ternary_stdp_array([0, 0], True, [True, False], 3).tolist() == [1, 0]
    with pytest.raises(ValidationError, match="dt_ms"):
        apply_ternary_stdp(0, True, True, 1.5)
    with pytest.raises(ValidationError, match="64-bit"):
        apply_ternary_stdp(0, True, True, 2**63)
    with pytest.raises(ValidationError, match="pre_fired"):
        apply_ternary_stdp(0, "yes", True, 1)
    with pytest.raises(ValidationError, match="boolean"):
        apply_ternary_stdp_array([0], [1], [True], [1])
    with pytest.raises(ValidationError, match="do not broadcast"):
        apply_ternary_stdp_array([0, 1], [True] * 3, True, 1)


def test_majority_vote_enumerates_every_sequence_up_to_length_5():
    seqs = [s for n in range(6) for s in itertools.product(W3, repeat=n)]
    for s in seqs:
        assert int(ternary_majority_vote(s)) == nt.majority_vote(s), s
        assert int(ternary_majority_vote([TernaryWeight(v) for v in s])) == nt.majority_vote(s)
    five = np.array([s for s in seqs if len(s) == 5], np.int8)  # (243, 5)
    got = ternary_majority_vote_array(five.T, axis=0)
    assert got.tolist() == [nt.majority_vote(s) for s in five.tolist()]
    assert ternary_majority_vote_array(five, axis=1).tolist() == got.tolist()
    assert ternary_majority_vote_array(five.reshape(3, 81, 5), axis=-1).shape == (3, 81)
    assert ternary_majority_vote(PackedTernary([1, -1, 1])) is TernaryWeight.POS
    with pytest.raises(ValidationError, match="axis"):
        ternary_majority_vote_array(five, axis=2)


def test_decay_prune_and_elementwise_transitions():
    for w in W3:
        assert int(decay_toward_zero(w)) == nt.decay_toward_zero(w)
        assert should_prune_ternary(w) == nt.should_prune(w)
    arr = np.array([[-1, 0, 1], [1, 1, -1]], np.int8)
    assert decay_toward_zero_array(arr).tolist() == [[0, 0, 0], [0, 0, 0]]
    assert should_prune_ternary_array(arr).tolist() == [[False, True, False], [False, False, False]]
    assert strengthen_array(arr).tolist() == [[nt.strengthen(v) for v in r] for r in arr.tolist()]
    assert weaken_array(arr).tolist() == [[nt.weaken(v) for v in r] for r in arr.tolist()]
    assert flip_array(arr).tolist() == [[nt.flip(v) for v in r] for r in arr.tolist()]
    assert strengthen_array(PackedTernary([-1, 1])).tolist() == [0, 1]
    with pytest.raises(ValidationError):
        decay_toward_zero(5)
    with pytest.raises(ValidationError):
        should_prune_ternary_array(np.array([0.0, 1.0]))


@given(st.lists(st.sampled_from(W3), max_size=60))
def test_transitions_stay_in_range(ws):
    w = as_i8(ws)
    for fn in (strengthen_array, weaken_array, flip_array, decay_toward_zero_array):
        assert set(fn(w).tolist()) <= set(W3)
    for policy in range(5):
        out = apply_ternary_update_array(policy, 26, w, w[::-1].copy(), np.linspace(0, 1, len(ws)))
        assert set(out.tolist()) <= set(W3)
    p = PackedTernary(ws)
    for i in range(len(ws)):
        p.strengthen(i)
    assert set(p.to_array().tolist()) <= {0, 1}


def test_plasticity_rule_ternary_methods_delegate():
    from thermogram import PlasticityRule, TernaryWeight
    import thermogram.ternary as tern
    for rule in (PlasticityRule.stdp_like(), PlasticityRule.conservative(), PlasticityRule.replace_only(),
                 PlasticityRule.bayesian(), PlasticityRule.aggressive()):
        for cur in TernaryWeight:
            for obs in TernaryWeight:
                for conf in (0.2, 0.4, 0.6, 0.8):
                    assert rule.apply_ternary_update(cur, obs, conf) == tern.apply_ternary_update(
                        int(rule.policy), rule.learning_rate.magnitude, cur, obs, conf)
    r = PlasticityRule.stdp_like()
    cur = np.array([-1, 0, 1, 1], np.int8)
    obs = np.array([1, 1, -1, 1], np.int8)
    conf = np.full(4, 0.9, np.float32)
    assert r.apply_ternary_update_array(cur, obs, conf).tolist() == [
        int(r.apply_ternary_update(TernaryWeight(c), TernaryWeight(o), 0.9)) for c, o in zip(cur, obs)]
    assert r.apply_ternary_stdp(TernaryWeight.ZERO, True, True, 5) == TernaryWeight.POS
    assert r.ternary_majority_vote([1, 1, -1]) == TernaryWeight.POS
    assert r.decay_toward_zero(TernaryWeight.NEG) == TernaryWeight.ZERO
    assert r.should_prune_ternary(TernaryWeight.ZERO)


def test_ternary_layer_roundtrips_through_a_thermo_v2_capsule(tmp_path):
    from thermogram import TernaryLayer, Thermogram
    rng = np.random.default_rng(5)
    layer = TernaryLayer.from_f32_matrix(rng.normal(size=(7, 13)).astype(np.float32))
    t = Thermogram("with-layer")
    t.extensions["encoder"] = layer.to_arrays()
    p = tmp_path / "c.thermo"
    t.save(p)
    back = TernaryLayer.from_arrays(Thermogram.load(p).extensions["encoder"])
    assert back.dims() == layer.dims()
    assert np.array_equal(back.to_array(), layer.to_array())
    x = rng.normal(size=13).astype(np.float32)
    assert np.array_equal(back.forward(x), layer.forward(x))
