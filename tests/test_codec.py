"""Persistence: .thermo v2, the reference's v1 (conformance files), legacy JSON, atomic saves."""
import json
import os
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import thermogram as tg
from conftest import StepClock, conformance_dir
from thermogram import (SIGNAL, ConsolidationPolicy, Delta, DeltaBatch, FormatError, Signal, ThermalState,
                        Thermogram, signal_vector)
from thermogram.io import parse_rfc3339, reference_delta_hash, rfc3339

THERMO = conformance_dir() / "thermo"
FILES = sorted(p.stem for p in THERMO.glob("*.thermo")) if THERMO.exists() else []
if not FILES:  # they ship with the repository (tests/data/conformance/thermo)
    raise RuntimeError(f"no reference .thermo files at {THERMO}")


def sig(d):
    return Signal(d["polarity"], d["magnitude"])


def ts_ns(t):
    return t["secs"] * 1_000_000_000 + t["nanos"]


@pytest.mark.parametrize("name", FILES)
def test_conformance_v1_file_matches_sidecar(name):
    side = json.loads((THERMO / f"{name}.json").read_text())
    t = Thermogram.load(THERMO / f"{name}.thermo", semantics="reference")
    assert t.name == side["name"] and t.id == side["id"]
    assert t.rule == tg.PlasticityRule.from_dict(side["plasticity_rule"])
    assert t.thermal_config == tg.ThermalConfig.from_dict(side["thermal_config"])
    assert t.policy == ConsolidationPolicy.from_dict(side["consolidation_policy"])
    m = side["metadata"]
    assert t.created_at == ts_ns(m["created_at"]) and t.last_consolidation == ts_ns(m["last_consolidation"])
    assert t.total_deltas == m["total_deltas"] and t.total_consolidations == m["total_consolidations"]
    assert t.custom == (None if m["custom_hex"] is None else bytes.fromhex(m["custom_hex"]))
    for layer in ("hot", "warm", "cool", "cold"):
        got = t.entries(layer)
        exp = side["entries"][layer]
        assert len(got) == side["entry_counts"][layer]
        assert [g["key"] for g in got] == [e["key"] for e in exp]
        for g, e in zip(got, exp):
            assert g["strength"] == sig(e["strength"]) and g["update_count"] == e["update_count"]
            assert g["updated_at"] == ts_ns(e["updated_at"])
            assert g["value"].tolist() == [(v["polarity"], v["magnitude"]) for v in e["value"]]
    pending = [d for r in t.records() for d in r.deltas()]
    assert len(pending) == len(side["pending_deltas"])
    prev = None
    for d, e in zip(pending, side["pending_deltas"]):
        assert d.id == e["id"] and d.key == e["key"] and int(d.delta_type) == e["delta_type_byte"]
        assert d.timestamp == ts_ns(e["timestamp"]) and rfc3339(d.timestamp) == e["timestamp"]["rfc3339"]
        assert d.source == e["source"] and d.strength == sig(e["strength"])
        assert d.observation_count == e["observation_count"]
        assert d.value.tolist() == [(v["polarity"], v["magnitude"]) for v in e["value"]]
        assert reference_delta_hash(d, prev) == e["hash"] and e["prev_hash"] == prev
        prev = e["hash"]
    assert prev == side["head_hash"]
    t.verify()


@pytest.mark.parametrize("name", FILES)
def test_conformance_v1_byte_roundtrip(name):
    data = (THERMO / f"{name}.thermo").read_bytes()
    t = Thermogram.from_bytes(data)
    assert t.to_bytes("v1") == data  # entries keep the file's order, so bytes match exactly
    again = Thermogram.from_bytes(t.to_bytes("v2"))
    assert again.to_bytes("v1") == data
    assert again.state_digest() == t.state_digest() and again.head_hash == t.head_hash


@pytest.mark.parametrize("name", FILES)
def test_conformance_v1_reads_while_pending(name):
    side = json.loads((THERMO / f"{name}.json").read_text())
    t = Thermogram.load(THERMO / f"{name}.thermo", semantics="reference")
    latest = {}
    for e in side["pending_deltas"]:
        latest[e["key"]] = e
    for key, e in latest.items():
        got = t.read(key)
        if e["delta_type"] == "Delete":
            assert got is None
        else:
            assert got.tolist() == [(v["polarity"], v["magnitude"]) for v in e["value"]]


def test_rfc3339_matches_chrono_autosi():
    cases = {0: "1970-01-01T00:00:00+00:00", 817_000_000: "1970-01-01T00:00:00.817+00:00",
             305_843_000: "1970-01-01T00:00:00.305843+00:00", 436_792_461: "1970-01-01T00:00:00.436792461+00:00"}
    for ns, text in cases.items():
        assert rfc3339(ns) == text and parse_rfc3339(text) == ns
    assert parse_rfc3339("2025-06-16T15:14:02.817Z") == 1750086842817000000


def test_reference_hash_rule_matches_consolidation_vectors():
    data = json.loads((conformance_dir() / "consolidation.json").read_text())
    d0 = data["scenarios"][0]["batches"][0]["deltas"][0]
    d = Delta(d0["delta_type"], d0["key"], signal_vector([(v["polarity"], v["magnitude"]) for v in d0["value"]]),
              source=d0["source"], strength=sig(d0["strength"]), timestamp=ts_ns(d0["timestamp"]), id=d0["id"])
    assert reference_delta_hash(d, d0["prev_hash"]) == d0["hash"]


# ---------------------------------------------------------------- v2 round trip
def rich_capsule(clock=None):
    clock = clock or StepClock()
    t = Thermogram("rich", policy=ConsolidationPolicy.manual_only(), clock=clock)
    t.apply_batch(DeltaBatch.from_arrays([f"k{i}" for i in range(50)],
                                         np.random.default_rng(0).uniform(-1, 1, (50, 6)).astype(np.float32),
                                         Signal.positive(220), "create", clock=clock))
    t.consolidate()
    for _ in range(4):
        t.apply_batch(DeltaBatch.from_arrays([f"k{i}" for i in range(10)], np.zeros((10, 2), SIGNAL),
                                             Signal.positive(240), "update", clock=clock))
        t.consolidate()
    t.insert_entry("ünïcødé ☃", signal_vector([(1, 1)]), Signal.positive(250), "cold", update_count=2**40)
    t.apply_delta(Delta.merge("k3", signal_vector([(1, 9)]), "m", Signal.positive(30), clock=clock))
    t.apply_delta(Delta.delete("k4", clock=clock))
    t.set_custom(b"\x00\x01meta")
    return t


def test_v2_roundtrip_is_identity(tmp_path):
    t = rich_capsule()
    p = tmp_path / "cap.thermo"
    t.save(p)
    u = Thermogram.load(p)
    assert u.state_digest() == t.state_digest() and u.head_hash == t.head_hash
    assert [r.hash for r in u.records()] == [r.hash for r in t.records()]
    assert u.name == t.name and u.id == t.id and u.rule == t.rule and u.policy == t.policy
    assert u.thermal_config == t.thermal_config and u.custom == t.custom
    assert u.pending_count == t.pending_count == 2
    for k in t.keys():
        assert u.read(k).tolist() == t.read(k).tolist()
    u.verify()
    assert Thermogram.replay(u.records()).state_digest() == t.state_digest()
    # the loaded capsule goes on working exactly like the original
    t.clock = u.clock = lambda: 5 * 10**18
    t.consolidate()
    u.consolidate()
    assert u.state_digest() == t.state_digest()


def test_v1_writes_what_v1_reads():
    t = rich_capsule()
    t.consolidate()
    u = Thermogram.from_bytes(t.to_bytes("v1"))
    for lay in ThermalState:
        assert [(e["key"], e["value"].tolist(), e["strength"], e["updated_at"], min(e["update_count"], 2**32 - 1))
                for e in u.entries(lay)] == \
               [(e["key"], e["value"].tolist(), e["strength"], e["updated_at"], min(e["update_count"], 2**32 - 1))
                for e in t.entries(lay)]


def test_extensions_travel_in_v2():
    t = rich_capsule()
    t.extensions["snn"] = {"weights": np.arange(6, dtype=np.float32).reshape(2, 3), "tick": 7}
    u = Thermogram.from_bytes(t.to_bytes())
    assert u.extensions["snn"]["tick"] == 7
    assert np.array_equal(u.extensions["snn"]["weights"], t.extensions["snn"]["weights"])


ops = st.lists(st.tuples(st.sampled_from(["w", "d", "m", "c", "decay", "tr", "r"]), st.integers(0, 6),
                         st.integers(0, 255)), max_size=25)


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops, st.sampled_from(["fixed", "reference"]))
def test_property_save_load_is_identity(seq, semantics):
    clock = StepClock()
    t = Thermogram("p", policy=ConsolidationPolicy.manual_only(), clock=clock, semantics=semantics)
    for op, k, m in seq:
        key = f"k{k}"
        if op == "w":
            t.write(key, signal_vector([(1, m)] * (k % 3)), Signal.positive(m))
        elif op == "d" and t.read(key) is not None:
            t.delete(key)
        elif op == "m":
            t.apply_delta(Delta.merge(key, signal_vector([(-1, m)]), "", Signal.positive(m), clock=clock))
        elif op == "c":
            t.consolidate()
        elif op == "decay":
            t.apply_decay()
        elif op == "tr":
            t.run_thermal_transitions()
        elif op == "r":
            t.reinforce(key, Signal.positive(m))
    u = Thermogram.from_bytes(t.to_bytes())
    assert u.state_digest() == t.state_digest() and u.head_hash == t.head_hash
    assert u.keys() == t.keys()


# ---------------------------------------------------------------- hostile files
def _valid_files():
    out = [rich_capsule().to_bytes("v2"), Thermogram("e", clock=StepClock()).to_bytes("v2")]
    for name in FILES:
        out.append((THERMO / f"{name}.thermo").read_bytes())
    return out


VALID = _valid_files()


def _decode_or_formaterror(data):
    try:
        Thermogram.from_bytes(data)
    except FormatError:
        pass


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(range(len(VALID))), st.data())
def test_property_any_truncation_is_a_format_error(i, data):
    blob = VALID[i]
    cut = data.draw(st.integers(0, len(blob) - 1))
    with pytest.raises(FormatError):
        Thermogram.from_bytes(blob[:cut])


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(range(len(VALID))), st.data())
def test_property_any_byte_change_is_a_format_error_or_harmless(i, data):
    blob = bytearray(VALID[i])
    pos = data.draw(st.integers(0, len(blob) - 1))
    new = data.draw(st.integers(0, 255).filter(lambda b: b != blob[pos]))
    blob[pos] = new
    with pytest.raises(FormatError):
        Thermogram.from_bytes(bytes(blob))


@pytest.mark.parametrize("width", [4, 8])
def test_huge_lengths_are_rejected_before_allocation(width):
    for blob in VALID:
        for pos in range(16, min(len(blob), 400)):
            b = bytearray(blob)
            b[pos:pos + width] = b"\xff" * width
            if b == blob:
                continue
            with pytest.raises(FormatError):
                Thermogram.from_bytes(bytes(b))


def test_v1_with_valid_crc_but_tampered_chain_is_rejected():
    assert "mixed20" in FILES, "the mixed20 reference file ships in tests/data/conformance/thermo"
    import zlib
    data = bytearray((THERMO / "mixed20.thermo").read_bytes())
    i = data.rfind(b"harness_")  # a pending delta's source
    data[i] ^= 0x20
    struct.pack_into("<I", data, 12, zlib.crc32(bytes(data[16:])))
    with pytest.raises(FormatError, match="hash"):
        Thermogram.from_bytes(bytes(data))


def test_not_a_capsule():
    for junk in (b"", b"THR", b"hello world", b"THRM\x09\x00", b"\x00" * 64, b"{\"a\": 1}", b"[1,2]"):
        with pytest.raises(FormatError):
            Thermogram.from_bytes(junk)


def test_load_enforces_max_bytes(tmp_path):
    p = tmp_path / "c.thermo"
    rich_capsule().save(p)
    with pytest.raises(FormatError, match="limit"):
        Thermogram.load(p, max_bytes=100)


# ---------------------------------------------------------------- legacy JSON
def test_legacy_json_capsule():
    t = Thermogram.load(THERMO / "fast_merge_delete.thermo") if "fast_merge_delete" in FILES else rich_capsule()
    sv = lambda v: [{"polarity": int(p), "magnitude": int(m)} for p, m in v.tolist()]  # noqa: E731
    doc = {"id": "abc", "name": "from-json",
           "plasticity_rule": {**t.rule.to_dict(), **{k: {"polarity": 1, "magnitude": v[1]}
                                                      for k, v in t.rule.to_dict().items() if k != "policy"}},
           "thermal_config": t.thermal_config.to_dict(),
           "consolidation_policy": {"triggers": [{"DeltaCount": 1000}, {"TimePeriod": {"hours": 24}}, "Manual"],
                                    "enable_pruning": True, "enable_merging": True},
           "metadata": {"created_at": "2024-12-25T00:43:20.123456789+00:00",
                        "last_consolidation": "2024-12-25T00:44:20.5Z", "total_deltas": 3,
                        "total_consolidations": 1, "custom": [1, 2]},
           "dirty_chain": {"deltas": [], "head_hash": None}}
    for lay, field in enumerate(("hot_entries", "warm_entries", "cool_entries", "cold_entries")):
        doc[field] = {e["key"]: {"key": e["key"], "value": sv(e["value"]),
                                 "strength": {"polarity": e["strength"].polarity, "magnitude": e["strength"].magnitude},
                                 "updated_at": rfc3339(e["updated_at"]), "update_count": e["update_count"]}
                      for e in t.entries(lay)}
    prev = None
    d = Delta.update("jk", signal_vector([(1, 5)]), "src", Signal.positive(9), timestamp=1_700_000_000_123_000_000)
    h = reference_delta_hash(d, prev)
    doc["dirty_chain"] = {"deltas": [{"id": d.id, "delta_type": "Update", "key": "jk", "value": sv(d.value),
                                      "metadata": {"timestamp": rfc3339(d.timestamp), "source": "src",
                                                   "strength": {"polarity": 1, "magnitude": 9},
                                                   "observation_count": None, "custom": None},
                                      "prev_hash": None, "hash": h}], "head_hash": h}
    u = Thermogram.from_bytes(json.dumps(doc).encode())
    assert u.name == "from-json" and u.custom == b"\x01\x02" and u.read("jk").tolist() == [(1, 5)]
    for lay in ThermalState:
        assert [e["key"] for e in u.entries(lay)] == [e["key"] for e in t.entries(lay)]
    doc["dirty_chain"]["deltas"][0]["key"] = "tampered"
    with pytest.raises(FormatError):
        Thermogram.from_bytes(json.dumps(doc).encode())


# ---------------------------------------------------------------- atomic saves
def test_save_is_atomic_on_failure(tmp_path, monkeypatch):
    p = tmp_path / "c.thermo"
    t = rich_capsule()
    t.save(p)
    before = p.read_bytes()
    t.write("new", signal_vector([(1, 1)]))

    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        t.save(p)
    assert p.read_bytes() == before
    assert [f for f in os.listdir(tmp_path) if f != "c.thermo"] == []
