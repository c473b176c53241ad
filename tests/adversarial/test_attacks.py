"""Adversarial suite: each attack or abuse has a specific error or a specific defined result."""
import os
import struct
import threading
import tracemalloc

import numpy as np
import pytest

import thermogram as tg
from conftest import StepClock
from thermogram import (SIGNAL, ChainError, ConsolidationPolicy, Delta, DeltaBatch, ForkError, FormatError,
                        LimitError, Limits, Signal, Thermogram, ValidationError, signal_vector)


def capsule(**kw):
    return Thermogram("adv", policy=ConsolidationPolicy.manual_only(), clock=StepClock(), **kw)


def filled():
    t = capsule()
    for i in range(5):
        t.write(f"k{i}", signal_vector([(1, 10 * i)]), Signal.positive(100))
    t.consolidate()
    t.write("p", signal_vector([(1, 1)]))
    return t


# 1. hash tampering
def test_hash_tampering_is_found_at_its_index():
    t = filled()
    t.records()[3]._hash = "0" * 64
    with pytest.raises(ChainError) as e:
        t.verify()
    assert e.value.index == 3


# 2. invalid links
def test_invalid_link_is_rejected():
    t = filled()
    with pytest.raises(ForkError):
        t.apply_delta(Delta.update("k1", signal_vector([(1, 1)]), prev_hash="f" * 64))


# 3. fork attack: two writers build on the same head; the second loses
def test_fork_attack():
    t = filled()
    head = t.head_hash
    t.apply_delta(Delta.update("k1", signal_vector([(1, 1)]), prev_hash=head))
    with pytest.raises(ForkError):
        t.apply_delta(Delta.update("k2", signal_vector([(1, 2)]), prev_hash=head))


# 4. corrupted deltas
def test_corrupted_delta_fields_are_detected():
    t = filled()
    rec = next(r for r in t.records() if r.kind == "delta")
    rec.strength = Signal.positive(1)
    with pytest.raises(ChainError):
        t.verify()


# 5. future timestamps
def test_future_timestamps_policy():
    t = capsule(limits=Limits(max_clock_skew_ns=60 * 10**9))
    far = StepClock().start + 10**15
    with pytest.raises(LimitError, match="ahead of the clock"):
        t.apply_delta(Delta.create("f", signal_vector([(1, 1)]), timestamp=far))
    u = capsule()  # default: no skew policy, the timestamp is recorded as given
    u.apply_delta(Delta.create("f", signal_vector([(1, 1)]), timestamp=far))
    u.consolidate()
    assert u.entry("f", "hot")["updated_at"] == far


# 6. empty values
def test_empty_values_are_valid():
    t = capsule()
    t.write("empty", signal_vector([]))
    assert t.read("empty").tolist() == []
    t.consolidate()
    assert t.read("empty").tolist() == []
    assert Thermogram.from_bytes(t.to_bytes()).read("empty").tolist() == []


# 7. 10M-signal payloads
def test_ten_million_signal_payload():
    big = np.zeros(10_000_000, SIGNAL)
    with pytest.raises(LimitError, match="max_value_len"):
        capsule(limits=Limits(max_value_len=1_000_000)).write("big", big)
    t = capsule()
    t.write("big", big)
    t.consolidate()
    assert len(t.read("big")) == 10_000_000


# 8. very long keys
def test_very_long_keys():
    t = capsule()
    with pytest.raises(LimitError, match="max_key_bytes"):
        t.write("k" * 1_000_000, signal_vector([(1, 1)]))
    with pytest.raises(LimitError):
        t.apply_batch(DeltaBatch.from_arrays(["ok", "é" * 3000], [signal_vector([]), signal_vector([])]))
    assert t.pending_count == 0
    t.write("k" * 4096, signal_vector([(1, 1)]))  # at the limit: accepted


# 9. unicode and control characters in keys
@pytest.mark.parametrize("key", ["ключ", "鍵🔑", "tab\tnew\nline", "nul\x00byte", "\u202eright-to-left", "a" + "\u0301" * 50])
def test_unicode_and_control_keys_roundtrip(key):
    t = capsule()
    t.write(key, signal_vector([(1, 7)]))
    t.consolidate()
    for fmt in ("v2", "v1"):
        u = Thermogram.from_bytes(t.to_bytes(fmt))
        assert u.read(key).tolist() == [(1, 7)] and u.keys() == [key]


def test_lone_surrogate_key_rejected():
    with pytest.raises(ValidationError, match="UTF-8"):
        capsule().write("bad\ud800", signal_vector([]))


# 10. rapid consolidations
def test_rapid_consolidations():
    t = filled()
    digest_entries = t.to_arrow().drop(["updated_at"])
    for _ in range(500):
        t.consolidate()
    assert t.total_consolidations == 501 and t.verify()
    assert Thermogram.replay(t.records()).state_digest() == t.state_digest()
    assert t.keys() == ["k0", "k1", "k2", "k3", "k4", "p"]
    del digest_entries


# 14. zero-strength deltas
def test_zero_strength_deltas_are_pruned_at_consolidation():
    t = capsule()
    t.apply_delta(Delta.create("z", signal_vector([(1, 1)]), strength=Signal.ZERO))
    assert t.read("z") is not None
    res = t.consolidate()
    assert res.entries_pruned == 1 and t.read("z") is None


# 15. negative-strength deltas
def test_negative_strength_deltas_keep_their_polarity():
    t = capsule()
    t.apply_delta(Delta.create("n", signal_vector([(1, 1)]), strength=Signal.negative(200)))
    t.consolidate()
    assert t.read_with_strength("n")[1] == Signal.negative(200)
    t.apply_delta(Delta.update("n", signal_vector([(1, 2)]), strength=Signal.negative(100)))
    t.consolidate()
    s = t.read_with_strength("n")[1]
    assert s.polarity in (-1, 0, 1) and 0 <= s.magnitude <= 255


# extra: replayed (duplicated), reordered and spliced records
def test_duplicated_records_are_rejected():
    t = filled()
    recs = t.records()
    with pytest.raises(ChainError):
        Thermogram.replay(recs + [recs[-1]])


def test_reordered_records_are_rejected():
    t = filled()
    recs = t.records()
    recs[2], recs[3] = recs[3], recs[2]
    with pytest.raises(ChainError):
        Thermogram.replay(recs)


def test_record_from_another_capsule_is_rejected():
    a, b = filled(), filled()
    recs = a.records()
    with pytest.raises(ChainError):
        Thermogram.replay(recs[:3] + [b.records()[3]] + recs[4:])
    foreign = b.records()[-1].copy()
    with pytest.raises(ForkError):
        a.apply_delta(foreign)


# extra: a file claiming 2**40 entries
def test_file_claiming_2_to_the_40_entries():
    t = filled()
    data = bytearray(t.to_bytes("v1"))
    # the hot layer's entry count follows the consolidation policy; find it by re-encoding with no entries
    empty = Thermogram("adv", policy=ConsolidationPolicy.manual_only(), clock=StepClock(), id=t.id)
    head_len = len(empty.to_bytes("v1")) - 4 * 4 - 4 - 1  # 4 layer counts, chain count, head flag
    struct.pack_into("<I", data, head_len, 2**32 - 1)
    import zlib
    struct.pack_into("<I", data, 12, zlib.crc32(bytes(data[16:])))
    tracemalloc.start()
    with pytest.raises(FormatError):
        Thermogram.from_bytes(bytes(data))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 50 * len(data) + 10_000_000
    v2 = bytearray(t.to_bytes("v2"))
    i = v2.index(b"ENTR") + 4 + 4 + 8 + 8  # ENTR payload starts with u64 entry count
    struct.pack_into("<Q", v2, i, 2**40)
    with pytest.raises(FormatError):
        Thermogram.from_bytes(bytes(v2))


# extra: a journal with garbage appended
def test_journal_with_garbage_appended(tmp_path):
    p = tmp_path / "j.thermo"
    with Thermogram.open(p, create=True) as t:
        t.write("a", signal_vector([(1, 1)]))
        digest = t.state_digest()
    with open(str(p) + ".journal", "ab") as f:
        f.write(os.urandom(4096))
    with Thermogram.open(p) as u:
        assert u.state_digest() == digest and u.verify()


# extra: pending cap
def test_pending_cap():
    t = capsule(limits=Limits(max_pending=3))
    for i in range(3):
        t.write(f"k{i}", signal_vector([]))
    with pytest.raises(LimitError, match="consolidate first"):
        t.write("k3", signal_vector([]))
    t.consolidate()
    t.write("k3", signal_vector([]))


def test_limits_validated():
    with pytest.raises(ValidationError):
        Limits(max_key_bytes=0)
    with pytest.raises(ValidationError):
        capsule(limits={"max_key_bytes": 5})


# 11-13. the spiking network under hostile input
from thermogram import EmbeddedSNN, EmbeddedSNNConfig, NeuromodState  # noqa: E402


def small_snn():
    return EmbeddedSNN(EmbeddedSNNConfig(num_neurons=8, input_dim=16, top_k=3, seed=1))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_into_the_snn_are_rejected_and_change_nothing(bad):
    snn = small_snn()
    before = snn.state()
    x = np.ones(16, np.float32)
    x[3] = bad
    with pytest.raises(ValidationError):
        snn.process(x)
    after = snn.state()
    assert all(np.array_equal(np.asarray(before[k]), np.asarray(after[k])) for k in before
               if isinstance(before[k], np.ndarray))


@pytest.mark.parametrize("shape", [(), (0,), (15,), (16, 1)])
def test_zero_dimensional_and_misshapen_input_rejected(shape):
    with pytest.raises(ValidationError):
        small_snn().process(np.zeros(shape, np.float32))


@pytest.mark.parametrize("level", [0.0, 1.0, 10.0, -5.0])
def test_extreme_neuromodulators_are_clamped_and_defined(level):
    n = NeuromodState(level, level, level, level)
    assert all(0.0 <= v <= 1.0 for v in n.as_array().tolist())
    n.reward(1e9)
    n.stress(1e9)
    assert all(0.0 <= v <= 1.0 for v in n.as_array().tolist())
    snn = small_snn()
    batch = snn.process(np.random.default_rng(0).normal(size=16).astype(np.float32), n)
    t = capsule()
    t.apply_batch(batch)
    t.consolidate()
    assert t.verify()
