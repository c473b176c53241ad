"""Researcher ergonomics: float reads, the mapping protocol, pandas output."""
import numpy as np
import pandas as pd
import pytest

from thermogram import (ConsolidationPolicy, KeyMissingError, Signal, Thermogram, ThermogramError,
                        signal_vector, signals_to_floats)


@pytest.fixture
def t(clock):
    t = Thermogram("ergo", policy=ConsolidationPolicy.manual_only(), clock=clock)
    t.write("a", signal_vector([(1, 255), (-1, 51), (0, 9)]), Signal.positive(250))
    t.write("b", signal_vector([(1, 128)]), Signal.positive(160))
    t.consolidate()
    t.write("c", signal_vector([(-1, 255)]))          # pending only
    return t


def test_read_f32_is_the_signed_float_value(t):
    v = t.read_f32("a")
    assert v.dtype == np.float32
    np.testing.assert_array_equal(v, signals_to_floats(t.read("a")))
    np.testing.assert_array_equal(v, np.array([1.0, -51 / 255, 0.0], np.float32))
    np.testing.assert_array_equal(t.read_f32("c"), np.array([-1.0], np.float32))   # pending first
    assert t.read_f32("missing") is None


def test_mapping_protocol(t):
    np.testing.assert_array_equal(t["a"], t.read("a"))
    np.testing.assert_array_equal(t["c"], t.read("c"))
    with pytest.raises(KeyError) as e:
        t["missing"]
    assert isinstance(e.value, KeyMissingError) and isinstance(e.value, ThermogramError)
    assert "a" in t and "c" in t and "missing" not in t
    assert len(t) == 3 and sorted(t) == sorted(t.keys()) == ["a", "b", "c"]
    t.delete("b")
    assert "b" not in t and len(t) == 2 and "b" not in list(t)
    with pytest.raises(KeyError):
        t["b"]


def test_getitem_leaves_the_capsule_unchanged(t):
    before = (t.state_digest(), t.head_hash)
    with pytest.raises(KeyError):
        t["nope"]
    assert (t.state_digest(), t.head_hash) == before


def test_to_pandas_layers_in_thermal_order_and_datetimes(t):
    t.consolidate()
    t.run_thermal_transitions()
    df = t.to_pandas()
    assert isinstance(df, pd.DataFrame) and len(df) == len(t.to_arrow())
    assert list(df["layer"].cat.categories) == ["hot", "warm", "cool", "cold"] and df["layer"].cat.ordered
    assert str(df["updated_at"].dtype) == "datetime64[ns, UTC]"
    row = df.set_index("key").loc["a"]
    assert row["value"].dtype == np.float32
    np.testing.assert_array_equal(row["value"], t.read_f32("a"))
    sig = t.to_pandas(values="signals").set_index("key").loc["a", "value"]
    np.testing.assert_array_equal(sig, t.read("a"))
    # sorting by layer follows hot < warm < cool < cold
    mixed = pd.Categorical(["cold", "hot", "cool", "warm"], categories=df["layer"].cat.categories, ordered=True)
    assert list(pd.Series(mixed).sort_values()) == ["hot", "warm", "cool", "cold"]
    with pytest.raises(ThermogramError):
        t.to_pandas(values="nope")


def test_to_pandas_of_an_empty_capsule():
    df = Thermogram("empty").to_pandas()
    assert len(df) == 0 and "value" in df.columns and "layer" in df.columns
