import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from naive import signal as ns
from thermogram import (SIGNAL, Signal, ThermogramError, ValidationError, as_signal_vector,
                        signal_vector, signals_from_floats, signals_to_floats)


def test_signal_dtype_is_two_bytes():
    assert SIGNAL.itemsize == 2
    assert SIGNAL.names == ("polarity", "magnitude")


def test_constructors_and_constants():
    assert Signal.positive(5).to_tuple() == (1, 5)
    assert Signal.negative(7).to_tuple() == (-1, 7)
    assert Signal.ZERO.to_tuple() == (0, 0)
    assert Signal.MAX_POSITIVE.to_tuple() == (1, 255)
    assert Signal(1, 255) == Signal.MAX_POSITIVE and hash(Signal(1, 255)) == hash(Signal.MAX_POSITIVE)


@pytest.mark.parametrize("p,m", [(2, 1), (-2, 1), (1, 256), (1, -1), (0.5, 3), ("1", 3), (None, 1)])
def test_invalid_signal_raises_validation_error(p, m):
    with pytest.raises(ValidationError) as e:
        Signal(p, m)
    assert isinstance(e.value, ValueError) and isinstance(e.value, ThermogramError)


def test_signal_is_immutable():
    s = Signal(1, 3)
    with pytest.raises(AttributeError):
        s.magnitude = 4


@given(st.floats(-2, 2, allow_nan=False, width=32))
def test_from_signed_matches_naive_and_value_roundtrip(x):
    s = Signal.from_signed(x)
    assert s.to_tuple() == ns.from_signed(x)
    # value of the signal is within one quantum of the clamped input
    assert abs(abs(s.as_f32()) - min(abs(x), 1.0)) <= 1 / 255 + 1e-6 or s.polarity == 0


@given(st.sampled_from([-1, 0, 1]), st.integers(0, 255), st.floats(0, 3, width=32))
def test_decayed_stays_in_domain(p, m, r):
    s = Signal(p, m).decayed(r)
    assert s.polarity in (-1, 0, 1) and 0 <= s.magnitude <= 255
    if r <= 1:
        assert s.magnitude <= m


def test_vector_float_roundtrip():
    x = np.linspace(-1, 1, 101, dtype=np.float32)
    v = signals_from_floats(x)
    assert v.dtype == SIGNAL
    back = signals_to_floats(v)
    assert np.all(np.abs(np.abs(back) - np.abs(x)) <= 1 / 255 + 1e-6)


@pytest.mark.parametrize("bad", [[np.nan], [np.inf], [-np.inf], [0.5, np.nan]])
def test_nan_inf_in_float_conversion_rejected(bad):
    with pytest.raises(ValidationError, match="NaN or infinity"):
        signals_from_floats(np.array(bad, dtype=np.float32))
    with pytest.raises(ValidationError):
        as_signal_vector(np.array(bad))


def test_as_signal_vector_accepts_and_rejects():
    v = as_signal_vector([Signal.positive(3), (-1, 4)])
    assert v.tolist() == [(1, 3), (-1, 4)]
    assert not v.flags.writeable
    with pytest.raises(ValidationError, match="dtype"):
        as_signal_vector(np.array([1, 2, 3], dtype=np.int64))
    with pytest.raises(ValidationError):
        as_signal_vector("abc")
    with pytest.raises(ValidationError):
        as_signal_vector(np.zeros((2, 2), SIGNAL))
    bad = np.zeros(3, SIGNAL)
    bad["polarity"] = [1, 5, 0]
    with pytest.raises(ValidationError, match="polarity"):
        as_signal_vector(bad)


def test_as_signal_vector_copies():
    src = signal_vector([(1, 3)])
    v = as_signal_vector(src)
    src["magnitude"][0] = 9
    assert v["magnitude"][0] == 3


def test_magnitude_f32_is_float32_exact():
    for m in (0, 1, 128, 255):
        assert np.float32(Signal(1, m).magnitude_f32()) == np.float32(m) / np.float32(255)
    assert math.isclose(Signal(-1, 255).as_f32(), -1.0)


def test_kernel_argument_scalar_tables():
    from thermogram.signal import I8, U8, as_u8
    for i in range(256):
        assert U8[i] == np.uint8(i) and type(U8[i]) is np.uint8 and as_u8(i) is U8[i]
    for p in (-1, 0, 1):
        assert I8[p] == np.int8(p) and type(I8[p]) is np.int8
    for bad in (-1, 256, 2**70):
        with pytest.raises(OverflowError):
            as_u8(bad)


@pytest.fixture(params=[True, False], ids=["little-endian", "other byte order"])
def byte_order(request, monkeypatch):
    """Runs a test with the packed-signal helpers in either layout: the view of the SIGNAL
    bytes this machine uses, and the field-by-field path any other byte order takes."""
    from thermogram import signal as sig
    monkeypatch.setattr(sig, "_LITTLE_ENDIAN", request.param)
    return request.param


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])  # one layout for every example
@given(st.lists(st.tuples(st.sampled_from([-1, 0, 1]), st.integers(0, 255)), max_size=40))
def test_packed_signals_roundtrip(byte_order, pairs):
    from thermogram.signal import packed_signals, unpacked_signals
    a = np.array(pairs, SIGNAL).reshape(-1)
    p = packed_signals(a[::-1][::-1])
    assert p.dtype == np.uint16
    assert p.tolist() == [(m << 8) | (q & 0xFF) for q, m in pairs]
    back = unpacked_signals(p)
    assert back.dtype == SIGNAL and back.tolist() == a.tolist()


def test_conversions_and_rules_agree_in_both_layouts(byte_order):
    from thermogram import PlasticityRule
    rng = np.random.default_rng(7)
    x = rng.standard_normal(1000).astype(np.float32)
    s = signals_from_floats(x)
    assert s.tolist() == [Signal.from_signed(float(v)).to_tuple() for v in x]
    assert signals_to_floats(s).tolist() == [Signal(*t).as_f32() for t in s.tolist()]
    cur = s[::2]  # strided: not contiguous
    new = signals_from_floats(rng.standard_normal(500).astype(np.float32))
    for rule in (PlasticityRule.stdp_like(), PlasticityRule.bayesian(), PlasticityRule.replace_only()):
        dts = rng.uniform(0, 1e6, 500)
        got = rule.apply_update_array(cur, new, dts)
        assert got.tolist() == [rule.apply_update(Signal(*c), Signal(*n), d).to_tuple()
                                for c, n, d in zip(cur.tolist(), new.tolist(), dts)]
        assert rule.apply_update_array(cur, new, 3600.0).tolist() == rule.apply_update_array(
            cur, new, np.full(500, 3600.0)).tolist()


def test_apply_update_array_rejects_a_bad_time_delta():
    from thermogram import PlasticityRule
    rule = PlasticityRule.stdp_like()
    a = np.array([(1, 10), (1, 20), (-1, 30)], SIGNAL)
    for bad in ([1.0, 2.0], np.ones((3, 1)), "soon", [[1.0, 2.0, 3.0]]):
        with pytest.raises(ValidationError):
            rule.apply_update_array(a, a, bad)
    assert rule.apply_update_array(a, a, [5.0]).tolist() == rule.apply_update_array(a, a, 5.0).tolist()
