"""The capsule's API: triggers, bad input, and each deliberate difference from the reference."""
import numpy as np
import pytest

from conftest import StepClock
from thermogram import (SIGNAL, ChainError, ConsolidationPolicy, ConsolidationTrigger, Delta, DeltaBatch,
                        DeltaType, ForkError, KeyMissingError, PlasticityRule, Signal, ThermalConfig,
                        ReplayError, ThermalState, Thermogram, ThermogramError, ValidationError, signal_vector)

HOUR = 3_600_000_000_000


def manual(clock=None, **kw):
    return Thermogram("t", policy=ConsolidationPolicy.manual_only(), clock=clock or StepClock(), **kw)


def v(*pairs):
    return signal_vector(pairs)


# ---------------------------------------------------------------- basic API
def test_write_read_update_delete_roundtrip():
    t = manual()
    t.apply_delta(Delta.create("a", v((1, 10)), "s"))
    assert t.read("a").tolist() == [(1, 10)]
    assert t.read_with_state("a")[2] == ThermalState.HOT
    t.apply_delta(Delta.update("a", v((1, 20)), "s", Signal.positive(100)))
    val, strength = t.read_with_strength("a")
    assert val.tolist() == [(1, 20)] and strength == Signal.positive(100)
    t.consolidate()
    assert t.read("a").tolist() == [(1, 20)] and t.keys() == ["a"]
    t.apply_delta(Delta.delete("a"))
    assert t.read("a") is None and "a" not in t and t.keys() == []
    t.consolidate()
    assert t.read("a") is None and t.total_entries() == 0
    assert [d.delta_type for d in t.history("a")] == [DeltaType.CREATE, DeltaType.UPDATE, DeltaType.DELETE]


def test_reads_are_read_only_snapshots():
    t = manual()
    t.write("a", v((1, 10)))
    t.consolidate()
    got = t.read("a")
    with pytest.raises(ValueError):
        got["magnitude"][0] = 99
    t.write("a", v((1, 20)))
    t.consolidate()
    assert got.tolist() == [(1, 10)]  # what was read stays what it was
    assert t.read("a").tolist() == [(1, 20)]
    pending = Delta.update("a", v((1, 3)))
    t.apply_delta(pending)
    with pytest.raises(ValueError):
        t.read("a")["magnitude"][0] = 1


def test_apply_batch_columnar():
    t = manual()
    keys = [f"w_{i}" for i in range(100)]
    vals = np.zeros((100, 4), SIGNAL)
    vals["polarity"] = 1
    vals["magnitude"] = np.arange(100)[:, None]
    t.apply_batch(DeltaBatch.from_arrays(keys, vals, Signal.positive(200), "create"))
    assert t.pending_count == 100 and len(t.records()) == 2
    assert t.read("w_7").tolist() == [(1, 7)] * 4
    t.consolidate()
    assert t.layer_counts()["hot"] == 100
    assert t.read_with_strength("w_99")[1] == Signal.positive(200)


def test_apply_batch_accepts_float_rows_and_delta_lists():
    t = manual()
    t.apply_batch(DeltaBatch.from_arrays(["a", "b"], np.array([[0.5, -1.0], [0.0, 0.2]])))
    assert t.read("a").tolist() == [(1, 127), (-1, 255)]
    t.apply_batch([Delta.update("a", v((1, 1))), Delta.merge("b", v((1, 2)))])
    assert t.read("a").tolist() == [(1, 1)]


def test_keys_for_state_and_entries():
    t = manual()
    t.insert_entry("c", v((1, 1)), Signal.positive(200), "cold", update_count=5, updated_at=7)
    t.insert_entry("h", v((1, 2)), Signal.positive(100), "hot")
    assert t.keys_for_state("cold") == ["c"] and t.cold_keys() == ["c"] and t.hot_keys() == ["h"]
    e = t.entry("c", ThermalState.COLD)
    assert e["update_count"] == 5 and e["updated_at"] == 7 and e["strength"] == Signal(1, 200)
    assert t.keys() == ["c", "h"]


def test_warm_matching_one_record():
    t = manual()
    for i in range(5):
        t.insert_entry(f"c{i}", v((1, i)), Signal.positive(200), "cold")
    n_rec = len(t.records())
    n = t.warm_matching(lambda k, e: e["value"][0]["magnitude"] % 2 == 0)
    assert n == 3 and len(t.records()) == n_rec + 1
    assert t.hot_keys() == ["c0", "c2", "c4"] and t.cold_keys() == ["c1", "c3"]
    assert t.entry("c0", "hot")["strength"] == Signal(1, 193)


def test_reinforce_weaken_return_false_for_missing():
    t = manual()
    assert t.reinforce("nope", Signal.positive(3)) is False
    assert t.weaken("nope", Signal.positive(3)) is False
    assert len(t.records()) == 1


def test_stats_and_html():
    t = manual()
    t.write("a", v((1, 1)))
    s = t.stats()
    assert s.dirty_deltas == 1 and s.total_deltas_lifetime == 1 and s.total_keys == 1
    html = t._repr_html_()
    assert "hot" in html and t.head_hash[:16] in html
    assert "DeltaBatch" in DeltaBatch.from_arrays(["a"], [v((1, 1))])._repr_html_()


# ---------------------------------------------------------------- triggers
def test_delta_count_trigger():
    t = Thermogram("t", policy=ConsolidationPolicy((ConsolidationTrigger.delta_count(3),)), clock=StepClock())
    t.write("a", v((1, 1)))
    t.write("b", v((1, 1)))
    assert t.pending_count == 2 and t.total_consolidations == 0
    t.write("c", v((1, 1)))
    assert t.pending_count == 0 and t.total_consolidations == 1


def test_time_period_trigger_uses_injected_clock():
    now = [10 * HOUR]
    t = Thermogram("t", policy=ConsolidationPolicy((ConsolidationTrigger.time_period(2),)),
                   clock=lambda: now[0])
    t.write("a", v((1, 1)))
    assert not t.should_consolidate() and t.pending_count == 1
    now[0] += 2 * HOUR
    assert t.should_consolidate()
    t.write("b", v((1, 1)))
    assert t.pending_count == 0 and t.total_consolidations == 1 and t.last_consolidation == now[0]


def test_dirty_size_trigger():
    t = Thermogram("t", policy=ConsolidationPolicy((ConsolidationTrigger.dirty_size(1000),)), clock=StepClock())
    t.write("a", np.zeros(100, SIGNAL))  # 200 + 1 + 200 bytes
    assert t.pending_count == 1 and t.dirty_size() == 401
    t.write("b", np.zeros(300, SIGNAL))
    assert t.pending_count == 0 and t.total_consolidations == 1


def test_manual_trigger_never_fires():
    t = manual()
    for i in range(1500):
        t.write(f"k{i}", v((1, 1)))
    assert t.pending_count == 1500 and not t.should_consolidate()


def test_default_policy_consolidates_at_1000():
    t = Thermogram("t", clock=StepClock())
    for i in range(999):
        t.write(f"k{i}", v((1, 1)))
    assert t.pending_count == 999
    t.write("k999", v((1, 1)))
    assert t.pending_count == 0 and t.total_consolidations == 1


# ---------------------------------------------------------------- bad input leaves the capsule unchanged
def populated():
    t = manual()
    t.write("a", v((1, 10)))
    t.write("b", v((-1, 20)))
    t.consolidate()
    t.write("c", v((1, 5)))
    return t


BAD_CALLS = [
    ("non-string key", lambda t: t.write(5, v((1, 1))), ValidationError),
    ("empty key", lambda t: t.write("", v((1, 1))), ValidationError),
    ("non-string key read", lambda t: t.read(None), ValidationError),
    ("int array value", lambda t: t.write("a", np.array([1, 2])), ValidationError),
    ("string value", lambda t: t.write("a", "hello"), ValidationError),
    ("2-D value", lambda t: t.write("a", np.zeros((2, 2), SIGNAL)), ValidationError),
    ("NaN value", lambda t: t.write("a", np.array([np.nan])), ValidationError),
    ("bad polarity value", lambda t: t.write("a", np.array([(3, 1)], SIGNAL)), ValidationError),
    ("strength polarity", lambda t: t.write("a", v((1, 1)), strength=(2, 1)), ValidationError),
    ("strength magnitude", lambda t: t.write("a", v((1, 1)), strength=(1, 256)), ValidationError),
    ("unknown delta type", lambda t: t.apply_delta(Delta("explode", "a", v((1, 1)))), ValidationError),
    ("not a delta", lambda t: t.apply_delta({"key": "a"}), ValidationError),
    ("delete missing key", lambda t: t.apply_delta(Delta.delete("zzz")), KeyMissingError),
    ("fork", lambda t: t.apply_delta(Delta.update("a", v((1, 1)), prev_hash="00" * 32)), ForkError),
    ("batch with bad row", lambda t: t.apply_batch(DeltaBatch.from_arrays(["a", 7], [v(), v()])), ValidationError),
    ("batch deleting missing", lambda t: t.apply_batch(DeltaBatch.from_arrays(["a", "zz"], [v(), v()],
                                                                          types=np.array([1, 2], np.uint8))),
     KeyMissingError),
    ("reinforce bad amount", lambda t: t.reinforce("a", (5, 5)), ValidationError),
    ("insert into bad layer", lambda t: t.insert_entry("x", v(), Signal(1, 1), "lukewarm"), ValidationError),
    ("batch type code", lambda t: t.apply_batch(DeltaBatch.from_arrays(["a"], [v()], types=np.array([9]))),
     ValidationError),
]


@pytest.mark.parametrize("name,call,err", BAD_CALLS, ids=[b[0] for b in BAD_CALLS])
def test_bad_input_raises_and_leaves_state_unchanged(name, call, err):
    t = populated()
    digest, head, n = t.state_digest(), t.head_hash, len(t.records())
    with pytest.raises(err) as e:
        call(t)
    assert isinstance(e.value, ThermogramError)
    assert str(e.value)
    assert t.state_digest() == digest and t.head_hash == head and len(t.records()) == n
    t.verify()


def test_fork_error_names_both_hashes():
    t = populated()
    with pytest.raises(ForkError, match="head"):
        t.apply_delta(Delta.update("a", v((1, 1)), prev_hash="ab" * 32))


def test_reapplying_a_delta_is_a_replay_error():
    t = populated()
    d = Delta.update("a", v((1, 1)))
    linked = t.apply_delta(d)
    t.write("b", v((1, 2)))
    with pytest.raises(ReplayError):
        t.apply_delta(d)
    with pytest.raises(ChainError):  # the linked copy names an old head: a fork or a replay
        t.apply_delta(linked)


# ---------------------------------------------------------------- deliberate differences (DESIGN.md)
def test_difference_1_chain_never_restarts():
    t = populated()
    before = t.records()
    t.consolidate()
    t.write("d", v((1, 1)))
    after = t.records()
    assert after[: len(before)] == before
    assert after[0].op == "genesis" and t.verify()
    assert [d.key for d in t.history("a")] == ["a"]  # history survives consolidation


def test_difference_2_unlinked_delta_links_to_head():
    t = populated()
    head = t.head_hash
    d = Delta.update("a", v((1, 1)))
    assert d.prev_hash is None
    r = t.apply_delta(d)
    assert d.prev_hash is None  # the caller's delta is not changed; the capsule keeps a copy
    assert r.prev_hash == head and t.head_hash == r.hash


def test_difference_3_canonical_hash():
    a = Delta.create("ab", [], "c", timestamp=1, id="i")
    b = Delta.create("a", [], "bc", timestamp=1, id="i")
    assert a.hash != b.hash


def test_difference_4_read_does_not_scan_the_chain(monkeypatch):
    t = manual()
    t.apply_batch(DeltaBatch.from_arrays([f"k{i}" for i in range(1000)], np.zeros((1000, 2), SIGNAL)))

    def boom(*a, **k):
        raise AssertionError("read scanned the chain")
    monkeypatch.setattr(t.chain, "latest", boom)
    monkeypatch.setattr(t.chain, "history", boom)
    assert t.read("k0") is not None and t.read("k999") is not None and t.read("zz") is None


@pytest.mark.parametrize("semantics", ["fixed", "reference"])
def test_difference_5_merge_on_missing_key(semantics):
    t = manual(semantics=semantics)
    t.apply_delta(Delta.merge("new", v((1, 9)), "s", Signal.positive(120)))
    t.consolidate()
    if semantics == "fixed":
        assert t.read("new").tolist() == [(1, 9)]
    else:
        assert t.read("new") is None  # the reference drops the write


@pytest.mark.parametrize("semantics", ["fixed", "reference"])
def test_difference_5_merge_on_existing_key_keeps_value(semantics):
    t = manual(semantics=semantics)
    t.apply_delta(Delta.create("x", v((1, 1)), strength=Signal.positive(100), timestamp=0))
    t.consolidate()
    t.apply_delta(Delta.merge("x", v((1, 200)), "s", Signal.positive(200), timestamp=0))
    pending = t.read("x").tolist()
    res = t.consolidate()
    assert t.read("x").tolist() == [(1, 1)] and res.entries_merged == 1
    expected = PlasticityRule.stdp_like().apply_update(Signal.positive(100), Signal.positive(200), 0)
    assert t.read_with_strength("x")[1] == expected
    # fixed: reading while pending already shows the kept value; reference shows the merge's
    assert pending == ([(1, 1)] if semantics == "fixed" else [(1, 200)])


def test_difference_6_consolidate_runs_transitions_not_crystallize():
    cfg = ThermalConfig.default().replace(min_observations=(1, 10, 50, 2 ** 64 - 1))
    for semantics, layer in (("fixed", "warm"), ("reference", "cold")):
        t = manual(semantics=semantics, thermal_config=cfg)
        t.apply_delta(Delta.create("s", v((1, 1)), strength=Signal.positive(250)))
        t.consolidate()
        assert t.read_with_state("s")[2] == ThermalState.parse(layer), semantics
    t = manual(thermal_config=cfg)
    t.insert_entry("s", v((1, 1)), Signal.positive(250), "hot", update_count=3)
    assert t.crystallize().crystallized == 1 and t.cold_keys() == ["s"]


@pytest.mark.parametrize("semantics", ["fixed", "reference"])
def test_difference_9_delete_reaches_every_layer(semantics):
    t = manual(semantics=semantics)
    t.insert_entry("c", v((1, 9)), Signal.positive(200), "cold", update_count=100)
    t.apply_delta(Delta.update("c", v((-1, 3)), strength=Signal.positive(100)))
    t.consolidate()
    assert t.read("c").tolist() == [(-1, 3)]  # the hot copy shadows the cold one
    t.apply_delta(Delta.delete("c"))
    assert t.read("c") is None
    t.consolidate()
    if semantics == "fixed":
        assert t.read("c") is None and t.total_entries() == 0
    else:
        assert t.read("c").tolist() == [(1, 9)]  # the reference's old value comes back


def test_semantics_validated():
    with pytest.raises(ValidationError):
        Thermogram("t", semantics="loose")


def test_replay_reproduces_digest_after_mixed_operations():
    t = populated()
    t.insert_entry("cold1", v((1, 1)), Signal.positive(250), "cold", update_count=2)
    t.warm("cold1")
    t.apply_decay()
    t.run_thermal_transitions()
    t.reinforce("a", Signal.positive(30))
    t.weaken("b", Signal.positive(3))
    t.apply_batch(DeltaBatch.from_arrays(["m1", "a"], [v((1, 1)), v((1, 2))], types="merge"))
    t.consolidate()
    t.prune_hot()
    t.crystallize()
    r = Thermogram.replay(t.records())
    assert r.state_digest() == t.state_digest() and r.head_hash == t.head_hash
    assert r.name == t.name and r.id == t.id and r.rule == t.rule and r.thermal_config == t.thermal_config


def test_replay_refuses_unknown_operations():
    from thermogram import OpRecord
    t = manual()
    recs = t.records()
    bad = OpRecord("format_disk", {}, 5)
    bad._link(recs[-1].hash)
    with pytest.raises(ChainError, match="unknown operation"):
        Thermogram.replay(recs + [bad])


def test_fold_capacity_with_deletes_merges_and_superseded_writes():
    t = manual()
    t.write("k", v((1, 1)))
    t.insert_entry("k", np.zeros(300, SIGNAL), Signal.positive(200), "cold")
    t.consolidate()
    big = np.zeros(500, SIGNAL)
    t.apply_delta(Delta.update("k", np.zeros(50, SIGNAL)))
    t.apply_delta(Delta.update("k", big))
    t.apply_delta(Delta.delete("k"))
    t.apply_delta(Delta.merge("k", np.zeros(700, SIGNAL), "", Signal.positive(200)))
    for i in range(200):
        t.apply_delta(Delta.create(f"n{i}", np.zeros(i % 7, SIGNAL)))
        t.apply_delta(Delta.delete(f"n{i}"))
        t.apply_delta(Delta.merge(f"n{i}", np.zeros(3, SIGNAL), "", Signal.positive(90)))
    t.consolidate()
    assert len(t.read("k")) == 700
    assert all(len(t.read(f"n{i}")) == 3 for i in range(200))
    r = Thermogram.replay(t.records())
    assert r.state_digest() == t.state_digest()


def test_new_ids_are_rfc4122_version_4_uuids():
    import uuid

    from thermogram.delta import new_id
    for _ in range(2000):
        u = uuid.UUID(new_id())
        assert u.version == 4 and u.variant == uuid.RFC_4122
