"""The integer codes the kernels hard-code, pinned to the Python enums they mirror.

Every code is written out here as a literal, and both sides are checked
against it: renumbering an enum member or a kernel constant alone fails.
"""
import numpy as np
import pytest

from thermogram import DeltaType, ThermalState, UpdatePolicy
from thermogram.kernels import codec as kcodec
from thermogram.kernels import consolidation as kc
from thermogram.kernels import plasticity as kp
from thermogram.kernels import snn as ksnn
from thermogram.kernels import ternary as kt
from thermogram.kernels import thermal as kth
from thermogram.ternary import TernaryWeight

DELTA_TYPES = {"CREATE": 0, "UPDATE": 1, "DELETE": 2, "MERGE": 3}
LAYERS = {"HOT": 0, "WARM": 1, "COOL": 2, "COLD": 3}
POLICIES = {"STDP": 0, "REPLACE": 1, "EMA": 2, "BAYESIAN": 3, "WTA": 4}
TERNARY = {"NEG": -1, "ZERO": 0, "POS": 1}
TWO_BIT = {"ZERO": 0b00, "POS": 0b01, "NEG": 0b10}


def members(enum_cls) -> dict:
    return {m.name: int(m.value) for m in enum_cls}


@pytest.mark.parametrize("enum_cls, codes", [(DeltaType, DELTA_TYPES), (ThermalState, LAYERS),
                                             (UpdatePolicy, POLICIES), (TernaryWeight, TERNARY)])
def test_enums_have_exactly_the_pinned_codes(enum_cls, codes):
    assert members(enum_cls) == codes


def test_consolidation_delta_type_codes():
    assert {n: getattr(kc, n) for n in DELTA_TYPES} == DELTA_TYPES
    assert {n: int(getattr(DeltaType, n)) for n in DELTA_TYPES} == DELTA_TYPES


def test_thermal_layer_codes_and_free_marker():
    assert {n: getattr(kth, n) for n in LAYERS} == LAYERS
    assert {n: int(getattr(ThermalState, n)) for n in LAYERS} == LAYERS
    # the kernels treat a layer byte > 3 as a free row, and mark free rows 255
    assert kth.FREE == 255 and kth.FREE > max(LAYERS.values())
    assert np.uint8(kth.FREE) == kth.FREE


def test_plasticity_policy_codes():
    assert {n: getattr(kp, n) for n in POLICIES} == POLICIES
    assert {n: int(getattr(UpdatePolicy, n)) for n in POLICIES} == POLICIES


def test_ternary_policy_codes():
    assert {n: getattr(kt, f"POLICY_{n}") for n in POLICIES} == POLICIES


def test_ternary_two_bit_codes():
    assert {n: getattr(kt, f"CODE_{n}") for n in TWO_BIT} == TWO_BIT
    for name, code in TWO_BIT.items():
        w = TernaryWeight[name]
        assert int(kt.code_of(np.int8(w))) == code
        assert int(kt.weight_of(np.uint8(code))) == int(w)
    assert int(kt.weight_of(np.uint8(0b11))) == 0  # reserved: reads as zero


def test_codec_error_codes_and_polarity_bytes():
    assert (kcodec.TRUNCATED, kcodec.BAD_POLARITY, kcodec.BAD_NANOS) == (-1, -2, -3)
    # the polarity bytes the codec kernels accept are those of int8 -1, 0, +1
    valid = np.array(sorted(TERNARY.values()), np.int8).view(np.uint8).tolist()
    assert sorted(valid) == [0, 1, 255]
    raw = np.array([[b, 7] for b in range(256)], np.uint8).ravel()
    ok = [b for b in range(256) if kcodec.check_polarity(raw[2 * b:2 * b + 2].copy()) == -1]
    assert ok == sorted(valid)


def test_snn_parameter_slots_and_never():
    names = ("competition", "gate", "threshold", "lr", "target", "homeo_rate", "decay", "trace_decay",
             "proto_lr")
    assert ksnn.PARAMS == names
    for i, name in enumerate(names):
        assert getattr(ksnn, f"P_{name.upper()}") == i
    assert ksnn.NEVER == -1
    assert (ksnn.S_TRACES, ksnn.S_RATES, ksnn.S_LAST_ACT, ksnn.S_PNORM) == (0, 1, 2, 3)
    assert (ksnn.W_ACT, ksnn.W_SPREAD, ksnn.W_PCONF) == (0, 1, 2)
    assert (ksnn.I_ORDER, ksnn.I_RANKS, ksnn.I_KEYS, ksnn.I_SPK, ksnn.I_PLIST) == (0, 1, 2, 3, 4)
    assert (ksnn.B_MASK, ksnn.B_PMARK) == (0, 1)
