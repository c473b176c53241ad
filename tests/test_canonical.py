"""``encode_value`` (the canonical encoding of operation arguments and genesis configuration)
against its naive twin, byte for byte, and ``decode_value`` as its inverse."""
import collections

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from naive import canonical as nc
from thermogram.canonical import decode_value, encode_value

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2 ** 70), max_value=2 ** 70),
    st.floats(allow_nan=False), st.text(max_size=8), st.binary(max_size=8),
    st.integers(-100, 100).map(np.int16), st.floats(width=32, allow_nan=False).map(np.float32),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(st.text(max_size=6), inner, max_size=4),
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(values)
def test_encode_value_matches_the_naive_encoder(v):
    assert encode_value(v) == nc.encode_value(v)


class Text(str):
    pass


class Number(int):
    pass


class Items(list):
    pass


@pytest.mark.parametrize("v", [
    {}, [], (), "", 0, -1, 2 ** 64, True, False, None, 1.5, float("inf"), b"", bytearray(b"ab"),
    memoryview(b"xyz"), Text("sub"), Number(7), Items([1, "a"]), collections.OrderedDict(b=1, a=[2]),
    np.int64(-3), np.uint8(200), np.float64(0.25), np.arange(6, dtype=np.int32).reshape(2, 3),
    np.arange(6, dtype=np.float32)[::2], np.zeros(0, np.uint8), np.array(3.5),
    {"rule": {"policy": 1, "rate": [1, 150]}, "name": "x", "nested": [[1, [2, (3,)]], {"k": None}]},
    "a\ud800b",
])
def test_every_type_and_subclass_matches_the_naive_encoder(v):
    assert encode_value(v) == nc.encode_value(v)


@pytest.mark.parametrize("v", [object(), {1: 2}, [1, object()], {"a": {"b": {1, 2}}}])
def test_what_cannot_be_encoded_raises_as_before(v):
    with pytest.raises((TypeError, AttributeError)) as new:
        encode_value(v)
    with pytest.raises(type(new.value)):
        nc.encode_value(v)


@settings(max_examples=200, deadline=None)
@given(st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8), st.binary(max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=6), inner, max_size=4)),
    max_leaves=20))
def test_decode_inverts_encode(v):
    assert decode_value(encode_value(v)) == v
