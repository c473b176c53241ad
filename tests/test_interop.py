"""Interop with the reference crate: empty keys, ``keys()`` under a pending delete, and
``insert_entry`` values stored once.

The ``.thermo`` v1 files in ``tests/data/crate_v1`` were written by thermogram-rs 1.0 (see
the README there); the JSON beside each is what the crate's own decoder read from it.
"""
from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

from thermogram import Delta, Signal, Thermogram, ThermalState
from thermogram.errors import ThermogramError, ValidationError
from thermogram.io.thermo_v2 import _sections
from thermogram.signal import SIGNAL

from conftest import StepClock

DATA = pathlib.Path(__file__).resolve().parent / "data" / "crate_v1"


def crate(name: str):
    """``(bytes, crate's JSON)`` of a crate-written file."""
    return (DATA / f"{name}.thermo").read_bytes(), json.loads((DATA / f"{name}.json").read_text())


def sigs(pairs) -> list:
    return [tuple(p) for p in pairs]


def assert_reads_match(t: Thermogram, expected: dict) -> None:
    """Every key the crate reads back reads the same here (value, strength, layer)."""
    for key, want in expected.items():
        got = t.read_with_state(key)
        if want is None:
            assert got is None and t.read(key) is None, key
            continue
        value, strength, layer = got
        assert value.tolist() == sigs(want["signals"]), key
        assert [strength.polarity, strength.magnitude] == want["strength"], key
        assert layer.label == want["layer"], key
        assert t.read(key).tolist() == sigs(want["signals"]), key


# ----------------------------------------------------------------------------- 1. empty keys
@pytest.mark.parametrize("semantics", ["fixed", "reference"])
@pytest.mark.parametrize("name", ["emptykey_entry", "emptykey_delta"])
def test_crate_file_with_empty_key_loads_and_reads_back(name, semantics):
    data, want = crate(name)
    assert want["verify"] and "" in want["keys"]
    t = Thermogram.from_bytes(data, semantics=semantics)
    assert t.keys() == want["keys"]
    assert "" in t
    assert_reads_match(t, want["reads"])
    assert [d.key for d in t.history("")] == [d["key"] for d in want["deltas"]]
    # written back as v1 it is the crate's file, byte for byte
    assert t.to_bytes("v1") == data
    # and it survives our own format, verified and trusted
    for verify in (True, False):
        u = Thermogram.from_bytes(t.to_bytes(), verify=verify)
        assert u.state_digest() == t.state_digest() and u.head_hash == t.head_hash
        assert_reads_match(u, want["reads"])


@pytest.mark.parametrize("name", ["emptykey_entry", "emptykey_delta"])
def test_empty_key_consolidates_and_replays_reference(name):
    t = Thermogram.from_bytes(crate(name)[0], semantics="reference", clock=StepClock(2 * 10 ** 18))
    t.consolidate()
    assert t.pending_count == 0 and t.read("") is not None
    assert Thermogram.replay(t.records()).state_digest() == t.state_digest()
    u = Thermogram.from_bytes(t.to_bytes())
    assert u.state_digest() == t.state_digest()


def test_empty_key_replays_in_default_semantics():
    t = Thermogram.from_bytes(crate("emptykey_delta")[0], clock=StepClock(2 * 10 ** 18))
    t.consolidate()
    assert Thermogram.replay(t.records()).state_digest() == t.state_digest()


def test_reference_semantics_writes_the_empty_key():
    t = Thermogram("r", semantics="reference", clock=StepClock())
    t.apply_delta(Delta.update("", [0.5], "src"))
    assert t.read("").tolist() == [(1, 127)] and t.keys() == [""]
    t.consolidate()
    t.insert_entry("", [0.25], Signal.positive(200), "cold", update_count=7)
    t.write("", [1.0])
    assert t.reinforce("", Signal.positive(1))
    assert t.read("").tolist() == [(1, 255)]
    assert Thermogram.replay(t.records()).state_digest() == t.state_digest()
    u = Thermogram.from_bytes(t.to_bytes("v1"), semantics="reference")
    assert u.read("").tolist() == [(1, 255)]


WRITES = [
    ("apply_delta", lambda t: t.apply_delta(Delta.update("", [0.5]))),
    ("write", lambda t: t.write("", [0.5])),
    ("delete", lambda t: t.delete("")),
    ("insert_entry", lambda t: t.insert_entry("", [0.5], Signal.positive(9))),
    ("reinforce", lambda t: t.reinforce("", Signal.positive(9))),
    ("weaken", lambda t: t.weaken("", Signal.positive(9))),
    ("warm", lambda t: t.warm("")),
]


@pytest.mark.parametrize("name,call", WRITES, ids=[w[0] for w in WRITES])
def test_default_semantics_refuses_new_writes_of_the_empty_key(name, call):
    t = Thermogram("f", clock=StepClock())
    t.write("a", [0.5])
    digest, head = t.state_digest(), t.head_hash
    with pytest.raises(ValidationError, match="must not be empty"):
        call(t)
    assert t.state_digest() == digest and t.head_hash == head
    # reads of the empty key are fine in every semantics: it is simply not there
    assert t.read("") is None and "" not in t and t.read_with_strength("") is None


def test_empty_key_reads_in_default_semantics_of_a_crate_file():
    t = Thermogram.from_bytes(crate("emptykey_entry")[0])
    assert t.read("").tolist() == [] and t.entry("", "hot")["strength"] == Signal.positive(100)
    with pytest.raises(ValidationError):  # a new write still is not allowed
        t.reinforce("", Signal.positive(1))
    t.write("other", [0.5])
    t.consolidate()
    assert t.read("") is not None and t.keys() == ["", "other"]


def test_v2_keys_section_with_an_empty_key_still_bounds_the_key_count():
    t = Thermogram.from_bytes(crate("emptykey_entry")[0], semantics="reference")
    t.insert_entry("x", [0.5], Signal.positive(9))
    data = bytearray(t.to_bytes())
    a, b = _sections(bytes(data))[b"KEYS"]
    # KEYS: u64 n, packed lengths, blob; claim far more keys than bytes: refused before allocating
    bad = bytearray(data)
    bad[a:a + 8] = (10 ** 12).to_bytes(8, "little")
    with pytest.raises(ThermogramError):
        Thermogram.from_bytes(bytes(bad))


# ----------------------------------------------------------------------------- 2. keys() and a pending delete
def test_keys_with_pending_delete_matches_the_crate_in_reference_semantics():
    data, want = crate("seed29")
    gone = [k for k, v in want["reads"].items() if v is None]
    assert gone  # the crate lists a key that it reads as None (its newest pending delta deletes it)
    ref = Thermogram.from_bytes(data, semantics="reference")
    assert ref.keys() == want["keys"]
    assert_reads_match(ref, want["reads"])
    fixed = Thermogram.from_bytes(data)
    assert fixed.keys() == sorted(set(want["keys"]) - set(gone))
    assert all(fixed.read(k) is None for k in gone)


@pytest.mark.parametrize("semantics", ["fixed", "reference"])
def test_keys_with_pending_delete(semantics):
    t = Thermogram("k", semantics=semantics, clock=StepClock())
    t.write("held", [0.5])
    t.consolidate()
    t.delete("held")                        # held in a layer, newest pending delta deletes it
    t.write("fleeting", [0.5])
    t.delete("fleeting")                    # created and deleted while pending
    t.write("kept", [0.5])
    assert t.read("held") is None and t.read("fleeting") is None
    if semantics == "reference":
        assert t.keys() == ["fleeting", "held", "kept"]  # the crate's keys()
    else:
        assert t.keys() == ["kept"]                       # what read() finds
    t.consolidate()
    assert t.keys() == ["kept"]


# ----------------------------------------------------------------------------- 3. insert_entry values once
def _inserted(n_entries: int, n_signals: int, seed: int = 0) -> Thermogram:
    rng = np.random.default_rng(seed)
    t = Thermogram("sizes", clock=StepClock(), id="6f1c2a9e-0d4b-4c1e-9a53-2b7d8e4f1a60")
    for i in range(n_entries):
        v = np.empty(n_signals, SIGNAL)
        v["polarity"] = rng.integers(-1, 2, n_signals)
        v["magnitude"] = rng.integers(0, 256, n_signals)
        t.insert_entry(f"key_{i:02d}", v, Signal.positive(200), ThermalState(i % 4), update_count=i)
    return t


def test_insert_entry_values_are_stored_once():
    t = _inserted(20, 100)
    v1, v2 = t.to_bytes("v1"), t.to_bytes()
    secs = _sections(v2)
    assert secs[b"VALS"][1] - secs[b"VALS"][0] == 20 * 100 * 2  # every value once
    # the records refer to the arena: their size does not grow with the values
    big = _inserted(20, 1000).to_bytes()
    rs = lambda b: (lambda s: s[1] - s[0])(_sections(b)[b"RECS"])  # noqa: E731
    assert rs(big) == rs(v2)
    # 20 x 100: v2 adds the history (21 records with their hashes, the genesis configuration)
    # and META to what v1 holds; before the fix it was 3.3x v1
    assert len(v2) <= 1.5 * len(v1)
    # once values dominate, v2 is within 1.2x of the crate's format
    t4 = _inserted(20, 400)
    assert len(t4.to_bytes()) <= 1.2 * len(t4.to_bytes("v1"))


@pytest.mark.parametrize("verify", [True, False])
def test_insert_entry_records_round_trip(verify):
    t = _inserted(20, 100)
    t.write("key_03", [0.5, -0.5])
    t.consolidate()
    t.insert_entry("key_03", [], Signal.negative(3), "warm")  # an empty value
    hashes = [r.hash for r in t.records()]
    u = Thermogram.from_bytes(t.to_bytes(), verify=verify)
    assert [r.hash for r in u.records()] == hashes
    assert u.state_digest() == t.state_digest()
    u.verify()
    assert Thermogram.replay(u.records()).state_digest() == t.state_digest()
    # the loaded records still refer to the arena after it grows: saved again, stored once
    u.insert_entry("grow", np.zeros(50_000, SIGNAL), Signal.positive(1))
    w = u.to_bytes()
    assert Thermogram.from_bytes(w).state_digest() == u.state_digest()
    vals = (lambda s: s[1] - s[0])(_sections(w)[b"VALS"])
    assert len(w) - vals < 4000


def test_insert_entry_hash_covers_the_value_not_where_it_lives():
    t = _inserted(3, 10)
    rec = t.records()[1]
    assert rec.args["value"].flags.writeable is False  # a view of the arena copy
    assert rec.compute_hash() == rec.hash
    # replaying into another capsule leaves the original's records pointing at its own arena
    before = t.to_bytes()
    Thermogram.replay(t.records())
    assert t.to_bytes() == before
    # a copy of an insert_entry value gives the same record hash
    copy = t.records()[1].copy()
    copy.args["value"] = np.array(copy.args["value"])
    assert copy.compute_hash() == rec.hash
