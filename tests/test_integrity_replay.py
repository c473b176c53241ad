"""Forged but correctly hashed records: replay refuses them with a ChainError naming the record.

A hash proves only that a record was not changed after it was hashed. Whoever writes a
file or a journal can hash anything; these tests forge, for every operation kind, records
with arguments no live call could have made, and check that replaying them (directly,
from a journal tail, and through ``verify()`` of a ``.thermo`` v2 file) raises only
``ChainError``/``FormatError`` and never a bare Python or numpy error.
"""
import struct

import numpy as np

import pytest

from conftest import StepClock
from thermogram import (ChainError, ConsolidationPolicy, Delta, DeltaBatch, FormatError, Signal,
                        ThermalState, Thermogram, signal_vector)
from thermogram.chain import OpRecord
from thermogram.errors import ThermogramError
from thermogram.journal import JournalFile
from thermogram.signal import SIGNAL

ALLOWED = (ChainError, FormatError)


def base_capsule():
    """Hot key "a" (strength 100) and "b" (strength 100), cold key "c"."""
    t = Thermogram("forge", policy=ConsolidationPolicy.manual_only(), clock=StepClock())
    t.write("a", signal_vector([(1, 10), (1, 20)]), Signal.positive(100))
    t.write("b", signal_vector([(1, 30)]), Signal.positive(100))
    t.consolidate()
    t.insert_entry("c", signal_vector([(1, 5)]), Signal.positive(250), ThermalState.COLD)
    return t


def _entries(keys, layer=0, n=None, **over):
    n = len(keys) if n is None else n
    e = {"keys": list(keys), "layer": np.full(n, layer, np.uint8), "pol": np.ones(n, np.int8),
         "mag": np.full(n, 9, np.uint8), "count": np.zeros(n, np.uint64), "ts": np.zeros(n, np.int64),
         "values": signal_vector([(1, 1)] * n), "lengths": np.ones(n, np.int64)}
    e.update(over)
    return e


_META = {"last_consolidation": 0, "total_deltas": 0, "total_consolidations": 0, "custom": None, "pending": 0}
_GOOD_INSERT = {"key": "z", "value": signal_vector([(1, 1)]), "strength": [1, 9], "layer": 0,
                "update_count": 0, "updated_at": 0}
_GOOD_SIGN = {"alg": "hmac-sha256", "key_id": "hmac:0123456789abcdef", "size": None, "head": None,
              "root": b"\x00" * 32, "signature": b"\x01" * 32}


def _ins(**over):
    a = dict(_GOOD_INSERT)
    a.update(over)
    return a


def _sig(**over):
    a = dict(_GOOD_SIGN)
    a.update(over)
    return a


# (op, args) pairs, none of which a live call can record on base_capsule()
FORGED_OPS = [
    ("reinforce", {"key": "missing", "amount": [1, 50]}),
    ("weaken", {"key": "missing", "amount": [1, 50]}),
    ("reinforce", {"key": "a", "amount": [2, 50]}),
    ("reinforce", {"key": "a", "amount": [1, 300]}),
    ("reinforce", {"key": "a", "amount": [1, 2 ** 70]}),
    ("weaken", {"key": "a", "amount": "x"}),
    ("weaken", {"key": 5, "amount": [1, 1]}),
    ("reinforce", {"key": "a"}),
    ("reinforce", {"key": "a", "amount": [1, 1], "extra": 1}),
    ("warm", {"keys": ["a"]}),
    ("warm", {"keys": ["missing"]}),
    ("warm", {"keys": "c"}),
    ("warm", {"keys": [5]}),
    ("warm", {"keys": []}),
    ("warm", {"keys": ["c", "c"]}),
    ("warm", {}),
    ("configure", {}),
    ("configure", {"rule": 5}),
    ("configure", {"rule": {"policy": "nope"}}),
    ("configure", {"thermal_config": {"decay_rates": [[1, 2]]}}),
    ("configure", {"thermal_config": {"decay_rates": 5}}),
    ("configure", {"policy": {"triggers": [[1]]}}),
    ("configure", {"policy": {"triggers": [{"a": 1, "b": 2}]}}),
    ("configure", {"bogus": {}}),
    ("consolidate", {"x": 1}),
    ("apply_decay", {"x": 1}),
    ("run_thermal_transitions", {"x": None}),
    ("crystallize", {"x": b""}),
    ("prune_hot", {"x": []}),
    ("insert_entry", _ins(value=np.zeros(3, np.float32))),
    ("insert_entry", _ins(value=[(1, 1)])),
    ("insert_entry", _ins(value=np.zeros((2, 2), SIGNAL))),
    ("insert_entry", _ins(layer=7)),
    ("insert_entry", _ins(strength=[5, 5])),
    ("insert_entry", _ins(update_count=-1)),
    ("insert_entry", _ins(updated_at=2 ** 64)),
    ("insert_entry", _ins(key="\ud800")),
    ("insert_entry", _ins(key=b"k")),
    ("insert_entry", {"key": "z"}),
    ("set_custom", {"custom": "text"}),
    ("set_custom", {"custom": 5}),
    ("set_custom", {}),
    ("import", {"entries": _entries(["x"]), "metadata": {}}),
    ("import", {"entries": {"keys": ["x"]}, "metadata": _META}),
    ("import", {"entries": _entries(["x", "y"], n=1), "metadata": _META}),
    ("import", {"entries": _entries(["x"], lengths=np.full(1, 5, np.int64)), "metadata": _META}),
    ("import", {"entries": _entries(["x", "x"]), "metadata": _META}),
    ("import", {"entries": _entries(["a"]), "metadata": _META}),
    ("import", {"entries": _entries(["x"], layer=9), "metadata": _META}),
    ("import", {"entries": _entries(["x"]), "metadata": dict(_META, total_deltas=-1)}),
    ("import", {"entries": _entries(["x"]), "metadata": dict(_META, pending=3)}),
    ("import", {"entries": 5, "metadata": _META}),
    ("sign_head", _sig(key_id=["a"])),
    ("sign_head", _sig(signature=5)),
    ("sign_head", _sig(root=np.zeros(32, np.uint8))),
    ("sign_head", _sig(size="x")),
    ("sign_head", _sig(alg="rot13")),
    ("sign_head", {}),
    ("genesis", {"name": "again"}),
    ("no_such_op", {}),
]


def _forge_op(t, op, args, timestamp=None):
    """A correctly hashed operation record linked to ``t``'s head."""
    a = dict(args)
    if op == "sign_head":  # size/head right unless the case overrides them
        if a.get("size") is None:
            a["size"] = len(t.records())
        if a.get("head") is None:
            a["head"] = t.head_hash
    rec = OpRecord(op, a, t.records()[-1].timestamp + 1 if timestamp is None else timestamp)
    rec._link(t.head_hash)
    return rec


def _forged_deltas(t):
    """Correctly hashed deltas and batches that a live call on ``t`` would refuse."""
    d = Delta.delete("missing", timestamp=5)
    d._link(t.head_hash)
    b = DeltaBatch.from_arrays(["a", "missing"], [signal_vector([(1, 1)]), signal_vector([])],
                               types=np.array([1, 2], np.uint8), timestamps=5)
    b._link(t.head_hash)
    b2 = DeltaBatch.from_arrays(["a", "a"], [signal_vector([]), signal_vector([])],
                                types=np.array([2, 2], np.uint8), timestamps=5)  # second delete: gone
    b2._link(t.head_hash)
    return [d, b, b2]


def _all_forged(t):
    out = [(f"{op}:{i}", _forge_op(t, op, args)) for i, (op, args) in enumerate(FORGED_OPS)]
    out.append(("timestamp", _forge_op(t, "apply_decay", {}, timestamp=2 ** 63)))
    out += [(f"delta:{i}", r) for i, r in enumerate(_forged_deltas(t))]
    return out


def test_base_capsule_replays():
    t = base_capsule()
    assert Thermogram.replay(t.records()).state_digest() == t.state_digest()


@pytest.mark.parametrize("case", range(len(FORGED_OPS) + 4))
def test_forged_record_is_refused_by_replay(case):
    t = base_capsule()
    name, rec = _all_forged(t)[case]
    n = len(t.records())
    with pytest.raises(ChainError) as ei:
        Thermogram.replay(t.records() + [rec])
    assert ei.value.index == n, name


def test_forged_reinforce_of_missing_key_changes_nothing_else():
    """The issue's case: a reinforce of a missing key used to strengthen another entry."""
    t = base_capsule()
    rec = _forge_op(t, "reinforce", {"key": "missing", "amount": [1, 150]})
    with pytest.raises(ChainError, match="no layer holds"):
        Thermogram.replay(t.records() + [rec])


@pytest.mark.parametrize("case", range(len(FORGED_OPS) + 4))
def test_forged_record_in_a_journal_refuses_the_open(tmp_path, case):
    path = str(tmp_path / "c.thermo")
    t = Thermogram.open(path, create=True, clock=StepClock(),
                        policy=ConsolidationPolicy.manual_only())
    t.write("a", signal_vector([(1, 10), (1, 20)]), Signal.positive(100))
    t.write("b", signal_vector([(1, 30)]), Signal.positive(100))
    t.consolidate()
    t.insert_entry("c", signal_vector([(1, 5)]), Signal.positive(250), ThermalState.COLD)
    name, rec = _all_forged(t)[case]
    head = t.head_hash
    t.close()
    j = JournalFile(path, head)
    try:
        j.append(rec)
    except (ThermogramError, TypeError, ValueError, OverflowError, struct.error):
        j.close()
        return  # the journal writer cannot even frame this forgery, so no journal can carry it
    j.close()
    try:
        u = Thermogram.open(path)
    except ALLOWED:
        return
    # a frame that does not even decode is cut as a torn tail: then it must not be applied
    assert u.head_hash == head, name
    u.close()


@pytest.mark.parametrize("case", range(len(FORGED_OPS) + 4))
def test_forged_record_in_a_v2_file_fails_verify(tmp_path, case):
    """A v2 file's state comes from its entry table; ``verify()`` replays the records."""
    from thermogram.core import capsule_parts
    t = base_capsule()
    name, rec = _all_forged(t)[case]
    with capsule_parts(t) as parts:  # the forger writes the record into the file
        parts.chain.push_linked(rec)
    try:
        data = t.to_bytes()
    except (ThermogramError, struct.error):
        return  # the v2 encoder cannot even represent this forgery, so no file can carry it
    try:
        u = Thermogram.from_bytes(data)
    except ALLOWED:
        return
    with pytest.raises(ALLOWED):
        u.verify()
