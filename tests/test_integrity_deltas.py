"""Delta ids are unique per capsule, and applying never changes or keeps the caller's objects."""
import numpy as np
import pytest

from conftest import StepClock
from thermogram import (ChainError, ConsolidationPolicy, Delta, DeltaBatch, ReplayError, Signal, Thermogram,
                        ValidationError, signal_vector)


def capsule():
    t = Thermogram("ids", policy=ConsolidationPolicy.manual_only(), clock=StepClock())
    t.write("a", signal_vector([(1, 10)]), Signal.positive(100))
    return t


def snapshot(t):
    return t.state_digest(), t.head_hash, len(t.records()), t.pending_count


def test_applying_the_same_delta_twice_is_a_replay_error_and_changes_nothing():
    t = capsule()
    d = Delta.update("a", signal_vector([(1, 20)]), timestamp=5)
    rec = t.apply_delta(d)
    before = snapshot(t)
    with pytest.raises(ReplayError) as ei:
        t.apply_delta(d)
    assert ei.value.index == len(t.records()) - 1
    assert snapshot(t) == before
    assert [r.id for r in t.records() if r.kind == "delta"].count(d.id) == 1
    assert rec.id == d.id and t.head_hash == rec.hash


def test_a_replayed_id_is_refused_even_with_other_content_and_after_consolidation():
    t = capsule()
    d = Delta.update("a", signal_vector([(1, 20)]), timestamp=5, id="send-1")
    t.apply_delta(d)
    t.consolidate()
    before = snapshot(t)
    with pytest.raises(ReplayError):
        t.apply_delta(Delta.update("b", signal_vector([(1, 1)]), timestamp=9, id="send-1"))
    assert snapshot(t) == before


def test_a_retried_send_is_idempotent():
    t = capsule()
    d = Delta.update("a", signal_vector([(1, 20)]), timestamp=5)
    for _ in range(3):
        try:
            t.apply_delta(d)
        except ReplayError:
            pass
    assert t.pending_count == 2  # the write in capsule() and d, once


def test_applying_the_same_batch_twice_is_a_replay_error():
    t = capsule()
    b = DeltaBatch.from_arrays(["a", "b"], [signal_vector([(1, 1)]), signal_vector([(1, 2)])], timestamps=5)
    t.apply_batch(b)
    before = snapshot(t)
    with pytest.raises(ReplayError):
        t.apply_batch(b)
    assert snapshot(t) == before


def test_ids_are_known_after_a_reload_and_after_replay(tmp_path):
    t = capsule()
    d = Delta.update("a", signal_vector([(1, 20)]), timestamp=5)
    t.apply_delta(d)
    t.save(tmp_path / "c.thermo")
    for u in (Thermogram.load(tmp_path / "c.thermo"), Thermogram.replay(t.records())):
        with pytest.raises(ReplayError):
            u.apply_delta(d)


def test_ids_survive_the_journal(tmp_path):
    p = tmp_path / "j.thermo"
    d = Delta.update("a", signal_vector([(1, 20)]), timestamp=5)
    with Thermogram.open(p, create=True, policy=ConsolidationPolicy.manual_only()) as t:
        t.apply_delta(d)
    with Thermogram.open(p) as u:
        with pytest.raises(ReplayError):
            u.apply_delta(d)


def test_apply_delta_does_not_change_the_callers_delta_and_returns_the_record():
    t = capsule()
    d = Delta.update("a", signal_vector([(1, 20)]), timestamp=5)
    h = d.hash
    rec = t.apply_delta(d)
    assert d.prev_hash is None and d.hash == h  # untouched
    assert rec is not d and rec.prev_hash is not None and rec.hash == t.head_hash
    assert t.records()[-1] is rec or t.records()[-1].hash == rec.hash


def test_changing_a_delta_after_apply_cannot_break_verify_or_change_state():
    t = capsule()
    raw = np.array([(1, 20), (1, 30)], dtype=signal_vector([]).dtype)
    d = Delta.update("a", raw, timestamp=5)
    t.apply_delta(d)
    digest = t.state_digest()
    # everything a caller can do to its own object afterwards
    if d.value.flags.writeable:
        d.value[0] = (-1, 255)
    raw[0] = (-1, 255)
    d.key = "zzz"
    d.strength = Signal.negative(1)
    d.timestamp = 2 ** 70
    d.prev_hash = "00" * 32
    d.hash = "ff" * 32
    assert t.verify()
    assert t.state_digest() == digest
    assert t.read("a").tolist() == [(1, 20), (1, 30)]
    assert Thermogram.replay(t.records()).state_digest() == digest


def test_changing_a_batch_after_apply_cannot_break_verify():
    t = capsule()
    vals = np.array([[0.5, 1.0], [-0.25, 0.0]], np.float32)
    b = DeltaBatch.from_arrays(["a", "b"], vals, timestamps=np.array([5, 6], np.int64))
    t.apply_batch(b)
    digest = t.state_digest()
    for name in ("timestamps", "strengths", "offsets", "types", "values"):
        arr = getattr(b, name)
        if arr.flags.writeable:
            arr[...] = arr[::-1].copy() if arr.ndim else arr
    b.keys = ("x", "y")
    b.source = "changed"
    assert t.verify()
    assert t.state_digest() == digest
    assert Thermogram.replay(t.records()).state_digest() == digest


def test_a_delta_tampered_before_apply_is_validated():
    t = capsule()
    before = snapshot(t)
    bad = []
    for field, value in (("delta_type", 9), ("id", ""), ("id", 5), ("value", "x"), ("strength", (7, 7)),
                         ("timestamp", 2 ** 63), ("timestamp", 1.5), ("prev_hash", 5)):
        d = Delta.update("a", signal_vector([(1, 20)]), timestamp=5)
        setattr(d, field, value)
        with pytest.raises((ValidationError, ChainError)):
            t.apply_delta(d)
        bad.append(field)
    assert snapshot(t) == before


def test_write_and_delete_return_the_linked_record():
    t = capsule()
    r = t.write("b", signal_vector([(1, 1)]))
    assert r.hash == t.head_hash
    r2 = t.delete("b")
    assert r2.prev_hash == r.hash and r2.hash == t.head_hash
