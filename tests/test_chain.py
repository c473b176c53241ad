import hashlib

import numpy as np
import pytest

from conftest import StepClock
from thermogram import (SIGNAL, ChainError, ConsolidationPolicy, Delta, DeltaBatch, DeltaType, ForkError,
                        HashChain, OpRecord, Signal, Thermogram, ValidationError, signal_vector)


def test_constructors_set_types_and_defaults(clock):
    c = Delta.create("k", [Signal.positive(3)], "src", clock=clock)
    assert c.delta_type == DeltaType.CREATE and c.strength == Signal.MAX_POSITIVE
    assert c.timestamp == clock.last
    u = Delta.update("k", [(1, 4)], "src", Signal.positive(9), timestamp=123)
    assert u.delta_type == DeltaType.UPDATE and u.timestamp == 123 and u.strength == Signal(1, 9)
    d = Delta.delete("k", "src")
    assert d.delta_type == DeltaType.DELETE and len(d.value) == 0
    m = Delta.merge("k", [(1, 4)], "src", Signal.positive(9))
    assert m.delta_type == DeltaType.MERGE
    assert len({c.id, u.id, d.id, m.id}) == 4


def test_hash_is_sha256_of_canonical_bytes():
    d = Delta.create("k", [(1, 2)], "s", timestamp=5, id="x")
    assert d.hash == hashlib.sha256(d.canonical_bytes()).hexdigest()
    assert d.canonical_bytes().startswith(b"thermogram:delta:v1\x00")


def test_hash_is_unambiguous_where_plain_concatenation_is_not():
    a = Delta.create("ab", [], "c", timestamp=1, id="i")
    b = Delta.create("a", [], "bc", timestamp=1, id="i")
    assert a.hash != b.hash
    # the reference's field concatenation cannot tell them apart
    def concat(d):
        return d.id.encode() + bytes([d.delta_type]) + d.key.encode() + d.source.encode()
    assert concat(a) == concat(b)


def test_unknown_delta_type_rejected():
    with pytest.raises(ValidationError, match="unknown delta type"):
        Delta("frobnicate", "k", [])
    with pytest.raises(ValidationError):
        Delta(7, "k", [])


def test_chain_autolinks_and_rejects_forks():
    ch = HashChain()
    d1 = Delta.create("a", [], timestamp=1)
    ch.append(d1)
    assert d1.prev_hash is None and ch.head_hash == d1.hash
    d2 = Delta.update("a", [], timestamp=2)  # prev_hash None: linked to the head
    ch.append(d2)
    assert d2.prev_hash == d1.hash
    d3 = Delta.update("a", [], timestamp=3, prev_hash=d2.hash)  # explicit and correct
    ch.append(d3)
    fork = Delta.update("a", [], timestamp=4, prev_hash=d1.hash)
    with pytest.raises(ForkError) as e:
        ch.append(fork)
    assert e.value.index == 3
    assert len(ch) == 3 and ch.verify()


def test_first_record_may_not_name_a_prev_hash():
    with pytest.raises(ForkError):
        HashChain().append(Delta.create("a", [], prev_hash="00" * 32))


def test_history_latest_since():
    ch = HashChain()
    ds = [Delta.create(k, [(1, i)], timestamp=i) for i, k in enumerate("abab")]
    for d in ds:
        ch.append(d)
    b = DeltaBatch.from_arrays(["a", "c"], [signal_vector([(1, 9)]), signal_vector([])], timestamps=10)
    ch.append(b)
    assert [d.value.tolist() for d in ch.history("a")] == [[(1, 0)], [(1, 2)], [(1, 9)]]
    assert ch.latest("b").hash == ds[3].hash
    assert ch.latest("c").key == "c" and ch.latest("zzz") is None
    assert ch.since(ds[1].hash) == [ds[2], ds[3], b]
    assert ch.since("nope") == []


def build_capsule():
    clock = StepClock()
    t = Thermogram("tamper", policy=ConsolidationPolicy.manual_only(), clock=clock)
    t.apply_delta(Delta.create("a", [(1, 10), (-1, 20)], "s", observation_count=3, custom=b"x", clock=clock))
    t.apply_batch(DeltaBatch.from_arrays(["b", "c"], np.array([[(1, 1)], [(0, 2)]], dtype=SIGNAL),
                                         Signal.positive(200), "update", clock=clock, source="snn"))
    t.consolidate()
    t.reinforce("a", Signal.positive(5))
    t.apply_delta(Delta.update("a", [(1, 11)], "s", Signal.positive(7), clock=clock))
    return t


def _tamper_values(rec):
    """(field, new value) pairs that each change one field of a record."""
    if rec.kind == "delta":
        v = rec.value.copy()
        v = np.concatenate([v, np.array([(1, 1)], SIGNAL)])
        return [("id", rec.id + "x"), ("delta_type", DeltaType.MERGE if rec.delta_type != DeltaType.MERGE else DeltaType.UPDATE),
                ("key", rec.key + "x"), ("value", v), ("timestamp", rec.timestamp + 1),
                ("source", rec.source + "x"), ("strength", Signal(1, (rec.strength.magnitude + 1) % 256)),
                ("observation_count", 99 if rec.observation_count != 99 else 98),
                ("custom", (rec.custom or b"") + b"y"), ("prev_hash", "ab" * 32), ("hash", "cd" * 32)]
    if rec.kind == "batch":
        vals = rec.values.copy()
        vals["magnitude"][0] ^= 1
        st = rec.strengths.copy()
        st["magnitude"][0] ^= 1
        return [("id", rec.id + "x"), ("source", rec.source + "x"), ("timestamp", rec.timestamp + 1),
                ("keys", (rec.keys[0] + "x",) + tuple(rec.keys[1:])), ("types", rec.types ^ np.uint8(1)),
                ("values", vals), ("offsets", np.array([0, 0, 2], np.int64)), ("strengths", st),
                ("timestamps", rec.timestamps + 1), ("prev_hash", "ab" * 32), ("hash", "cd" * 32)]
    return [("op", rec.op + "x"), ("args", {**rec.args, "extra": 1}), ("timestamp", rec.timestamp + 1),
            ("prev_hash", None if rec.prev_hash else "ab" * 32), ("hash", "cd" * 32)]


def test_every_tampered_field_of_every_record_is_detected():
    t = build_capsule()
    recs = t.records()
    assert {r.kind for r in recs} == {"op", "delta", "batch"}
    checked = 0
    for i, rec in enumerate(recs):
        for field, bad in _tamper_values(rec):
            attr = "_hash" if field == "hash" else field
            old = getattr(rec, attr)
            setattr(rec, attr, bad)
            try:
                with pytest.raises(ChainError) as e:
                    t.verify()
                assert e.value.index == i, (i, field)
            finally:
                setattr(rec, attr, old)
            checked += 1
            assert t.verify()
    assert checked >= 40


def test_replay_rejects_tampered_records():
    t = build_capsule()
    recs = [r.copy() for r in t.records()]
    recs[2].timestamp += 1
    with pytest.raises(ChainError) as e:
        Thermogram.replay(recs)
    assert e.value.index == 2


def test_replay_rejects_reordered_and_duplicated_records():
    t = build_capsule()
    recs = t.records()
    with pytest.raises(ChainError):
        Thermogram.replay([recs[0], recs[2], recs[1]] + recs[3:])
    with pytest.raises(ChainError):
        Thermogram.replay(recs[:3] + [recs[2]] + recs[3:])
    with pytest.raises(ChainError):
        Thermogram.replay(recs[1:])


def test_op_record_hash_covers_args():
    a = OpRecord("reinforce", {"key": "a", "amount": [1, 5]}, 1)
    b = OpRecord("reinforce", {"key": "a", "amount": [1, 6]}, 1)
    assert a.hash != b.hash
