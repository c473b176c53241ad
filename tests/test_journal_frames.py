"""The journal writer's frames: byte-identical to ``encode_record`` framing under every
fsync policy, and records it cannot frame are refused before anything is written."""
import os

import numpy as np
import pytest
import xxhash

import thermogram.journal as journal
from thermogram import ConsolidationPolicy, Signal, Thermogram, ValidationError, signal_vector
from thermogram.chain import OpRecord
from thermogram.io import encode_record
from thermogram.journal import FRAME, HEADER, JournalFile, read_journal


def _frame(rec) -> bytes:
    payload = encode_record(rec)
    return FRAME.pack(len(payload), xxhash.xxh3_64_intdigest(payload)) + payload


@pytest.mark.parametrize("policy", ["always", "batch", "never"])
def test_segment_is_encode_record_framing(tmp_path, policy):
    p = tmp_path / "c.thermo"
    with Thermogram.open(p, create=True, fsync=policy, batch_size=3,
                         policy=ConsolidationPolicy.manual_only()) as t:
        n0 = len(t.records())  # held by the snapshot
        for i in range(5):
            t.write(f"k{i}", signal_vector([(1, i), (-1, 200)]), Signal.positive(100 + i), source="s\u00e9")
        t.apply_batch([tg_delta(f"b{i}") for i in range(4)])
        t.reinforce("k1", Signal.positive(3))
        t.consolidate()
        t.delete("k2")
        records = t.records()
    base, recs, good, size = read_journal(str(p) + ".journal")
    assert good == size and len(recs) == len(records) - n0 >= 8
    data = open(str(p) + ".journal", "rb").read()
    assert data[HEADER.size:] == b"".join(_frame(r) for r in records[-len(recs):])
    assert [r.hash for r in recs] == [r.hash for r in records[-len(recs):]]


def tg_delta(key):
    from thermogram import Delta
    return Delta.create(key, signal_vector([(1, 7)]), "src")


@pytest.mark.parametrize("policy", ["always", "batch", "never"])
def test_record_over_the_frame_limit_is_refused_and_changes_nothing(tmp_path, monkeypatch, policy):
    p = tmp_path / "c.thermo"
    t = Thermogram.open(p, create=True, fsync=policy, policy=ConsolidationPolicy.manual_only())
    t.write("small", signal_vector([(1, 1)]))
    t._journal.sync()
    digest, head, n = t.state_digest(), t.head_hash, len(t.records())
    jsize = os.path.getsize(str(p) + ".journal")
    monkeypatch.setattr(journal, "MAX_FRAME", 300)
    with pytest.raises(ValidationError, match="over the 300-byte limit"):
        t.write("big", np.ones(64, dtype=np.float64))
    assert (t.state_digest(), t.head_hash, len(t.records())) == (digest, head, n)
    monkeypatch.undo()
    t.write("after", signal_vector([(1, 2)]))  # the writer is not poisoned
    t.close()
    assert os.path.getsize(str(p) + ".journal") > jsize
    with Thermogram.open(p, readonly=True) as u:
        assert u.read("big") is None and u.read("after").tolist() == [(1, 2)]
        assert len(u.records()) == n + 1


class _Unknown(OpRecord):
    kind = "unknown-kind"


def test_record_of_an_unknown_kind_is_a_validation_error(tmp_path):
    j = JournalFile(str(tmp_path / "j.thermo"), "00" * 32, "always", create=True)
    try:
        bad = _Unknown("reinforce", {"key": "k", "amount": [1, 5]}, 1)
        cb = bad._link(None)
        with pytest.raises(ValidationError, match="cannot be stored"):
            j.append(bad, cb)
        assert os.path.getsize(j.jpath) == HEADER.size and j.failed is None
        good = OpRecord("reinforce", {"key": "k", "amount": [1, 5]}, 1)
        j.append(good, good._link(None))
    finally:
        j.close()
    assert open(j.jpath, "rb").read()[HEADER.size:] == _frame(good)
