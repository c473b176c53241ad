import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

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
