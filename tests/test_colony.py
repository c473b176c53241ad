"""Colonies: routing kernels against naive twins, the reference's colony rules, moves that never
lose or duplicate an entry (property test), neuromodulation, folders, parallel and Dask consolidation."""
import bisect
import os
import random

import numpy as np
import pytest
import xxhash
from hypothesis import event, given, settings
from hypothesis import strategies as st

from conftest import StepClock
from thermogram import (ConsolidationPolicy, Delta, DeltaBatch, KeyMissingError, NeuromodState,
                        NeuromodSyncConfig, PlasticityRule, Signal, ThermalConfig, ThermalState, Thermogram,
                        ValidationError, signal_vector)
from thermogram.colony import persist as colony_persist
from thermogram.colony import (ColonyConfig, ColonyConsolidationResult, ThermogramColony, consolidate_member,
                               locality_hash, prefix_locality)
from thermogram.errors import FormatError
from thermogram.kernels import colony as kc

T0 = 1_700_000_000_000_000_000

# XXH3 arithmetic wraps modulo 2**64 on purpose; numpy says so when the kernels run without the JIT
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")


def colony(config=None, **kw):
    kw.setdefault("clock", StepClock())
    kw.setdefault("policy", ConsolidationPolicy.manual_only())
    return ThermogramColony("c", "Colony", PlasticityRule.stdp_like(), config or ColonyConfig(), **kw)


def v(*pairs):
    return signal_vector(pairs)


def fill(c, keys, dim=2, seed=0, types="update"):
    rng = np.random.default_rng(seed)
    vals = rng.uniform(-1, 1, (len(keys), dim)).astype(np.float32)
    n = sum(len(m.records()) for m in c.members)  # each fill its own id, deterministic per colony
    c.apply_batch(DeltaBatch.from_arrays(list(keys), vals, Signal.MAX_POSITIVE, types, clock=lambda: T0,
                                         id=f"fill-{seed}-{n}"))


def snapshot(c):
    """Every consolidated entry of every member: {key: [(layer, value, strength, count, ts), ...]}."""
    out = {}
    for m in c.members:
        for st_ in ThermalState:
            for e in m.entries(st_):
                out.setdefault(e["key"], []).append((int(e["layer"]), e["value"].tolist(), tuple(e["strength"]),
                                                     e["update_count"], e["updated_at"]))
    return {k: sorted(x) for k, x in out.items()}


def check_partition(c):
    """Each key lives in exactly one member, the one it routes to."""
    seen = {}
    for i, m in enumerate(c.members):
        ks = m.keys()
        for k in ks:
            assert k not in seen, f"{k} in members {seen[k]} and {i}"
            seen[k] = i
        if ks:
            assert (c.route_many(ks) == i).all()
            assert all(c.route(k) == i for k in ks[:20])
    assert sum(c.member_key_counts()) == len(seen) == c.total_entries()
    return seen


# ------------------------------------------------------------------ kernels against naive twins
def naive_route(keys, bounds, owners, locality=prefix_locality):
    out = []
    for k in keys:
        h = xxhash.xxh3_64_intdigest(locality(k).encode("utf-8", "surrogatepass"))
        out.append(owners[bisect.bisect_right(bounds, h) - 1])
    return out


@pytest.mark.parametrize("n", list(range(0, 241, 1)))
def test_xxh3_kernel_matches_xxhash_every_length(n):
    rng = random.Random(n)
    for _ in range(3):
        b = bytes(rng.getrandbits(8) for _ in range(n))
        arr = np.frombuffer(b"pad" + b, np.uint8)
        assert int(kc.xxh3_64(arr, 3, n, kc.SECRET)) == xxhash.xxh3_64_intdigest(b)


@given(st.binary(max_size=240))
def test_xxh3_kernel_matches_xxhash(b):
    assert int(kc.xxh3_64(np.frombuffer(b + b"\x00", np.uint8), 0, len(b), kc.SECRET)) == xxhash.xxh3_64_intdigest(b)


key_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=12)


@given(st.lists(st.one_of(key_text, st.builds(lambda a, b: a + "_" + b, key_text, key_text),
                          st.just("x" * 300), st.just("y" * 250 + "_z")), max_size=30))
def test_locality_hashes_match_naive(keys):
    c = ThermogramColony("h", "h", members=5, clock=StepClock())
    got = c.key_hashes(keys)
    assert got.tolist() == [locality_hash(prefix_locality(k)) for k in keys]
    assert c.route_many(keys).tolist() == naive_route(keys, c._bounds, c._owners)
    assert [c.route(k) for k in keys] == naive_route(keys, c._bounds, c._owners)


def test_locality_hashes_keys_with_nul_and_custom_locality():
    keys = ["a\x00b_c", "a_1", "zz"]
    c = ThermogramColony("h", "h", members=3, clock=StepClock())
    assert c.key_hashes(keys).tolist() == [locality_hash(prefix_locality(k)) for k in keys]
    loc = lambda k: k[-2:]  # noqa: E731
    c2 = ThermogramColony("h", "h", members=3, clock=StepClock(), locality=loc)
    keys = ["abc_de", "xx_de", "q" * 500, "k\x00y"]
    assert c2.key_hashes(keys).tolist() == [locality_hash(loc(k)) for k in keys]
    assert c2.route_many(keys).tolist() == naive_route(keys, c2._bounds, c2._owners, loc)
    bad = ThermogramColony("h", "h", clock=StepClock(), locality=lambda k: 3)
    with pytest.raises(ValidationError):
        bad.route("a")


@given(st.lists(st.integers(0, 2 ** 64 - 1), min_size=1, max_size=8, unique=True),
       st.lists(st.integers(0, 2 ** 64 - 1), max_size=50))
def test_assign_ranges_matches_bisect(starts, hashes):
    bounds = sorted(set([0] + starts))
    owners = list(range(len(bounds)))[::-1]
    out = np.empty(len(hashes), np.int64)
    kc.assign_ranges(np.array(hashes, np.uint64), np.array(bounds, np.uint64), np.array(owners, np.int64), out)
    assert out.tolist() == [owners[bisect.bisect_right(bounds, h) - 1] for h in hashes]


# ------------------------------------------------------------------ configuration
def test_config_presets_match_the_reference():
    d = ColonyConfig()
    assert (d.split_threshold, d.merge_threshold, d.balance_target, d.balance_tolerance, d.max_members) == \
        (10_000, 1_000, 0.5, float(np.float32(0.3)), 16)
    assert d.thermal_config == ThermalConfig.default() and ColonyConfig.default() == d
    f = ColonyConfig.fast_learner()
    assert (f.split_threshold, f.merge_threshold, f.balance_target, f.balance_tolerance, f.max_members) == \
        (5_000, 500, 0.5, 0.25, 8)
    assert f.thermal_config == ThermalConfig.fast_learner()
    assert ColonyConfig.from_dict(f.to_dict()) == f
    for bad in (dict(split_threshold=-1), dict(max_members=0), dict(balance_target=1.0),
                dict(balance_tolerance=float("nan")), dict(thermal_config="x"), dict(merge_threshold=True)):
        with pytest.raises(ValidationError):
            ColonyConfig(**bad)


def test_constructor_validation():
    for kw in (dict(rule="x"), dict(config=1), dict(clock=3), dict(locality=1), dict(members=0),
               dict(neuromod=1), dict(neuromod_sync=1), dict(policy=2)):
        with pytest.raises(ValidationError):
            ThermogramColony("c", "n", **kw)
    with pytest.raises(ValidationError):
        ThermogramColony("", "n")
    with pytest.raises(ValidationError):
        colony().consolidate(executor="gpu")


# ------------------------------------------------------------------ the reference's tests
def test_colony_creation():
    c = ThermogramColony("test_colony", "Test Colony", PlasticityRule.stdp_like())
    assert c.member_count() == 1 and c.total_entries() == 0
    assert c.member_ids == ["test_colony-m0"]


def test_colony_write_read():
    c = colony()
    c.write("key1", v((1, 1), (1, 2), (1, 3)), Signal.positive(204), state=ThermalState.HOT, update_count=1)
    assert c.read("key1").tolist() == [(1, 1), (1, 2), (1, 3)]
    e = c.read_layer("key1", "hot")
    assert e["strength"] == Signal.positive(204) and e["update_count"] == 1
    assert c.read_layer("key1", "cold") is None and c.read("nope") is None


def test_colony_locality():
    c = colony(members=4)
    for i in range(10):
        c.write(f"group_a_{i}", v((1, i)), Signal.positive(204), state="hot", update_count=1)
    st_ = c.stats()
    assert st_.member_count == 4 and st_.total_entries == 10
    assert sorted(c.member_key_counts()) == [0, 0, 0, 10]  # one locality group, one member


def test_colony_split():
    c = colony(ColonyConfig(split_threshold=5, merge_threshold=1, max_members=4))
    for i in range(10):
        c.write(f"key{i}_x", v((1, i)), Signal.positive(204), state="hot", update_count=5)
    r = c.consolidate()
    assert r.splits > 0 and c.member_count() > 1
    check_partition(c)


def test_colony_reinforce_weaken():
    c = colony()
    c.write("key1", v((1, 1), (1, 2), (1, 3)), Signal.positive(128), state="hot", update_count=1)
    assert c.reinforce("key1", Signal.positive(51))
    assert c.read_with_strength("key1")[1].magnitude > 128
    assert c.weaken("key1", Signal.positive(26))
    assert not c.reinforce("missing", Signal.positive(1))


# ------------------------------------------------------------------ reads and writes
def test_apply_batch_routes_rows_in_order_one_record_per_member():
    c = colony(members=4)
    keys = [f"g{i % 9}_k{i}" for i in range(200)] + ["g0_k0"]
    vals = np.zeros((201, 1), np.float32)
    vals[:, 0] = np.linspace(-1, 1, 201)
    heads = [len(m.records()) for m in c.members]
    c.apply_batch(DeltaBatch.from_arrays(keys, vals, Signal.positive(99), "update", timestamps=T0, id="b"))
    routed = c.route_many(keys)
    for i, m in enumerate(c.members):
        got = [k for k, r in zip(keys, routed) if r == i]
        recs = m.records()[heads[i]:]
        assert len(recs) == (1 if got else 0)
        if got:
            assert list(recs[0].keys) == got and recs[0].id == f"b/{m.id}"
    assert c.read("g0_k0").tolist() == [(1, 255)]  # the later row wins
    assert c.read("g5_k5") is not None and c.read_with_state("g5_k5")[2] == ThermalState.HOT
    assert "g5_k5" in c and "nope_1" not in c and 3 not in c
    assert len(c) == 200 and c.keys() == sorted(set(keys))


def test_apply_batch_is_all_or_nothing_across_members():
    c = colony(members=4)
    fill(c, [f"g{i}_k" for i in range(20)])
    c.consolidate()
    digest = c.state_digest()
    keys = [f"g{i}_k" for i in range(20)] + ["zz_missing"]
    types = np.array([1] * 20 + [2], np.uint8)
    vals = [v((1, 3))] * 20 + [v()]
    with pytest.raises(KeyMissingError):
        c.apply_batch(DeltaBatch.from_arrays(keys, vals, None, types, timestamps=T0))
    assert c.state_digest() == digest
    # deletes of keys created earlier in the same batch are fine
    c.apply_batch(DeltaBatch.from_arrays(["new_1", "new_1"], [v((1, 1)), v()], None,
                                         np.array([0, 2], np.uint8), timestamps=T0))
    assert c.read("new_1") is None


def test_apply_delta_write_delete():
    c = colony(members=3)
    c.apply_delta(Delta.create("a_1", v((1, 5)), timestamp=T0))
    c.apply_batch([Delta.update("b_1", v((1, 6)), timestamp=T0)])
    d = c.write("c_1", np.array([0.5]))
    assert isinstance(d, Delta) and c.read("c_1").tolist() == [(1, 127)]
    c.delete("a_1")
    assert c.read("a_1") is None
    with pytest.raises(ValidationError):
        c.apply_delta(DeltaBatch.from_arrays(["a"], [v((1, 1))]))
    with pytest.raises(ValidationError):
        c.apply_batch("nope")
    with pytest.raises(ValidationError):
        c.route("")


def test_route_cache_is_invalidated_by_topology_changes():
    c = colony(ColonyConfig(split_threshold=10, merge_threshold=0))
    keys = [f"g{i}_k" for i in range(40)]
    fill(c, keys)
    assert all(c.route(k) == 0 for k in keys)
    assert len(c._cache) == 40
    c.consolidate()
    assert c.member_count() == 2 and c._cache == {}
    assert [c.route(k) for k in keys] == c.route_many(keys).tolist()
    small = ThermogramColony("c", "c", route_cache=2, clock=StepClock())
    for k in keys[:5]:
        small.route(k)
    assert len(small._cache) <= 2
    off = ThermogramColony("c", "c", route_cache=0, clock=StepClock())
    off.route("a_b")
    assert off._cache == {}


# ------------------------------------------------------------------ split, merge, rebalance
def test_split_cuts_at_the_median_hash_and_moves_entries_intact():
    c = colony(ColonyConfig(split_threshold=100, merge_threshold=0))
    keys = [f"g{i}_k{j}" for i in range(60) for j in range(3)]
    fill(c, keys)
    c.consolidate()  # 180 keys > 100: one split
    assert c.member_count() == 2
    counts = c.member_key_counts()
    assert sum(counts) == 180 and abs(counts[0] - counts[1]) <= 6  # halves, up to a locality group
    before = snapshot(c)
    assert c.split(1)
    assert snapshot(c) == before and c.member_count() == 3
    check_partition(c)
    # the cut is a range boundary: ranges tile the hash space
    r = c.ranges()
    assert r[0][0] == 0 and r[-1][1] == 2 ** 64 and all(a[1] == b[0] for a, b in zip(r, r[1:]))


def test_moves_are_recorded_and_members_replay():
    c = colony(ColonyConfig(split_threshold=30, merge_threshold=0))
    fill(c, [f"g{i}_k{j}" for i in range(20) for j in range(4)])
    c.consolidate()
    c.merge(0, 1)
    c.split(0)
    for m in c.members:
        assert m.verify()
        assert Thermogram.replay(m.records()).state_digest() == m.state_digest()
        ops = [r.op for r in m.records() if r.kind == "op"]
        assert "genesis" in ops
    ops0 = [r.op for r in c.member(0).records() if r.kind == "op"]
    assert "import" in ops0 and "configure" in ops0  # received a merge, gave a split


def test_unsplittable_member_stays_whole():
    c = colony(ColonyConfig(split_threshold=5, merge_threshold=0))
    fill(c, [f"one_k{i}" for i in range(20)])
    r = c.consolidate()
    assert r.splits == 0 and c.member_count() == 1
    assert not c.split(0)
    fine = colony(ColonyConfig(split_threshold=5, merge_threshold=0), locality=lambda k: k)
    fill(fine, [f"one_k{i}" for i in range(20)])
    assert fine.consolidate().splits == 1


def test_max_members_caps_splits():
    c = colony(ColonyConfig(split_threshold=5, merge_threshold=0, max_members=3))
    fill(c, [f"g{i}_k" for i in range(200)])
    for _ in range(5):
        c.consolidate()
    assert c.member_count() == 3 and not c.split(0)
    check_partition(c)


def test_merges_small_members_two_at_a_time():
    c = colony(ColonyConfig(split_threshold=10 ** 6, merge_threshold=10), members=6)
    fill(c, [f"g{i}_k" for i in range(12)])
    c.consolidate()
    before = snapshot(c)
    assert c.member_count() < 6 and c.stats().merge_count >= 1
    assert snapshot(c) == before
    check_partition(c)
    with pytest.raises(ValidationError):
        c.merge(0, 0)


def test_rebalance_moves_ranges_to_underloaded_members():
    c = colony(ColonyConfig(split_threshold=10 ** 6, merge_threshold=0, balance_tolerance=0.1), members=2)
    c._bounds, c._owners = [0, 2 ** 64 - 2 ** 60], [0, 1]  # member 0 owns 15/16 of the hash space
    c._topology_changed()
    fill(c, [f"g{i}_k" for i in range(300)])
    c.consolidate()
    counts = c.member_key_counts()
    assert abs(counts[0] - counts[1]) < 60, counts
    check_partition(c)
    r = c.consolidate()
    assert r.rebalanced == 0  # already within tolerance


def test_explicit_operations_consolidate_pending_first():
    c = colony(ColonyConfig(split_threshold=10 ** 6, merge_threshold=0), members=2)
    fill(c, [f"g{i}_k" for i in range(50)])
    assert all(m.pending_count for m in c.members)
    c.merge(0, 1)
    assert c.member(0).pending_count == 0 and c.total_entries() == 50
    assert c.split(0)
    fill(c, [f"h{i}_k" for i in range(50)], seed=1)
    assert c.rebalance() >= 0 and all(m.pending_count == 0 for m in c.members)
    check_partition(c)


# ------------------------------------------------------------------ the property: no entry lost or duplicated
KEYS = [f"g{g}_k{i}" for g in range(10) for i in range(5)]
GROUPS = sorted({k.partition("_")[0] for k in KEYS})
op = st.one_of(
    st.tuples(st.just("write"), st.lists(st.tuples(st.sampled_from(KEYS), st.integers(-255, 255)),
                                         min_size=1, max_size=25)),
    st.tuples(st.just("write"), st.lists(st.sampled_from(GROUPS), min_size=1, max_size=10).map(
        lambda gs: [(k, (len(k) * 7 + i) % 511 - 255) for i, k in enumerate(KEYS) if k.partition("_")[0] in gs])),
    st.tuples(st.just("delete"), st.lists(st.sampled_from(KEYS), max_size=6)),
    st.tuples(st.just("consolidate"), st.sampled_from(["serial", "threads"])),
    st.tuples(st.just("split"), st.integers(0, 7)),
    st.tuples(st.just("merge"), st.integers(0, 7), st.integers(0, 7)),
    st.tuples(st.just("rebalance")),
    st.tuples(st.just("reload")),
)


PROPERTY_CONFIG = ColonyConfig(split_threshold=8, merge_threshold=3, max_members=6, balance_tolerance=0.2)


def run_ops(c, ops, mktemp, note=lambda s: None):
    """Apply ``ops`` to colony ``c`` and a dict model; after every op the colony's keys and values
    equal the model's and each key lives in exactly one member; splits, merges, rebalances and
    reloads leave every entry (layer, value, strength, count, time) exactly as it was."""
    model = {}
    for o in ops:
        kind = o[0]
        before = None
        if kind in ("split", "merge", "rebalance"):
            for m in c.members:  # what the operation would do first; then only moves remain
                if m.pending_count:
                    m.consolidate()
            before = snapshot(c)
        if kind == "write":
            rows = o[1]
            keys = [k for k, _ in rows]
            vals = [v((1 if x >= 0 else -1, abs(x))) for _, x in rows]
            c.apply_batch(DeltaBatch.from_arrays(keys, vals, Signal.MAX_POSITIVE, "update", timestamps=T0))
            for k, val in zip(keys, vals):
                model[k] = val.tolist()
        elif kind == "delete":
            keys = [k for k in dict.fromkeys(o[1]) if k in model]
            if keys:
                c.apply_batch(DeltaBatch.from_arrays(keys, [v()] * len(keys), None, "delete", timestamps=T0))
                for k in keys:
                    del model[k]
        elif kind == "consolidate":
            r = c.consolidate(executor=o[1])
            note(f"consolidate: splits={r.splits > 0} merges={r.merges > 0} rebalanced={r.rebalanced > 0}")
        elif kind == "split":
            if o[1] < c.member_count():
                note(f"split: {c.split(o[1])}")
        elif kind == "merge":
            a, b = o[1] % c.member_count(), o[2] % c.member_count()
            if a != b:
                c.merge(a, b)
        elif kind == "rebalance":
            note(f"rebalance: moved={c.rebalance() > 0}")
        elif kind == "reload":
            c.consolidate()
            before = snapshot(c)
            folder = mktemp("colony")
            digest = c.state_digest()
            c.save(folder)
            c = ThermogramColony.open(folder, clock=StepClock(T0 * 2), policy=ConsolidationPolicy.manual_only())
            assert c.state_digest() == digest
        if before is not None:
            assert snapshot(c) == before, kind
        note(f"{c.member_count()} members")
        assert c.keys() == sorted(model)
        for k, val in model.items():
            assert c.read(k).tolist() == val
        check_partition(c)
    for m in c.members:
        assert m.verify()
    return c


@settings(max_examples=60, deadline=None)
@given(st.lists(op, min_size=1, max_size=14), st.integers(1, 3))
def test_no_entry_is_lost_or_duplicated(tmp_path_factory, ops, start_members):
    run_ops(colony(PROPERTY_CONFIG, members=start_members), ops, tmp_path_factory.mktemp, event)


def random_ops(rng, n):
    ops = []
    for _ in range(n):
        r = rng.random()
        if r < 0.35:
            gs = set(rng.sample(GROUPS, rng.randint(1, 6)))
            ops.append(("write", [(k, rng.randint(-255, 255)) for k in KEYS if k.partition("_")[0] in gs]))
        elif r < 0.45:
            ops.append(("delete", rng.sample(KEYS, rng.randint(1, 12))))
        elif r < 0.7:
            ops.append(("consolidate", rng.choice(["serial", "threads"])))
        elif r < 0.8:
            ops.append(("split", rng.randint(0, 5)))
        elif r < 0.88:
            ops.append(("merge", rng.randint(0, 5), rng.randint(0, 5)))
        elif r < 0.96:
            ops.append(("rebalance",))
        else:
            ops.append(("reload",))
    return ops


@pytest.mark.parametrize("seed", range(12))
def test_no_entry_is_lost_or_duplicated_long_sequences(tmp_path_factory, seed):
    """Longer seeded sequences than hypothesis's typical examples, so colonies grow to several
    members and go through many splits, merges and rebalances."""
    rng = random.Random(seed)
    seen = []
    c = run_ops(colony(PROPERTY_CONFIG, members=rng.randint(1, 3)), random_ops(rng, 40),
                tmp_path_factory.mktemp, seen.append)
    assert any("splits=True" in s for s in seen) or any(s == "split: True" for s in seen)
    assert c.stats().split_count + c.stats().merge_count > 0


# ------------------------------------------------------------------ consolidation results and determinism
def test_consolidate_reports_member_counts():
    cfg = ColonyConfig(split_threshold=10 ** 6, merge_threshold=0, thermal_config=ThermalConfig.fast_learner())
    c = colony(cfg, members=3)
    keys = [f"g{i}_k" for i in range(30)]
    promoted = 0
    for _ in range(3):
        fill(c, keys)
        r = c.consolidate()
        promoted += r.promoted
        assert isinstance(r, ColonyConsolidationResult) and r.deltas_processed == 30
        assert r.to_dict()["promoted"] == r.promoted
    assert promoted == sum(m.layer_counts()["warm"] + m.layer_counts()["cool"] for m in c.members) > 0
    c.write("weak_1", np.array([0.1]), Signal.positive(1))
    assert c.consolidate().pruned == 1


def build_colony(executor="serial", members=4, n=400):
    c = ThermogramColony("det", "det", config=ColonyConfig(split_threshold=150, merge_threshold=20),
                         members=members, clock=StepClock(), policy=ConsolidationPolicy.manual_only(),
                         executor=executor)
    fill(c, [f"g{i // 3}_k{i}" for i in range(n)])
    return c


def test_operations_are_deterministic_and_executors_agree():
    digests = set()
    heads = set()
    for ex in ("serial", "threads", "serial"):
        c = build_colony(ex)
        c.consolidate()
        fill(c, [f"g{i // 3}_k{i}" for i in range(0, 400, 7)], seed=3)
        c.consolidate()
        digests.add(c.state_digest())
        heads.add(tuple(m.head_hash for m in c.members))
    assert len(digests) == 1 and len(heads) == 1


def test_process_pool_executor_gives_the_same_state():
    from concurrent.futures import ProcessPoolExecutor
    serial = build_colony()
    serial.consolidate()
    other = build_colony()
    with ProcessPoolExecutor(2) as ex:
        other.consolidate(executor=ex)
    assert other.member_digests() == serial.member_digests()
    assert other.state_digest() == serial.state_digest()


def test_consolidate_member_is_pure():
    t = Thermogram("m", policy=ConsolidationPolicy.manual_only(), clock=StepClock())
    t.write("a", np.array([0.3]))
    data = t.to_bytes()
    out1, out2 = consolidate_member(data, T0), consolidate_member(data, T0)
    assert out1 == out2
    t2 = Thermogram.from_bytes(out1)
    assert t2.pending_count == 0 and t2.records()[-1].timestamp == T0
    t.clock = lambda: T0
    t.consolidate()
    assert t.state_digest() == t2.state_digest()


def test_dask_local_cluster_matches_serial():
    distributed = pytest.importorskip("distributed")
    serial = build_colony(members=16, n=800)
    serial.consolidate()
    remote = build_colony(members=16, n=800)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        remote.consolidate(executor=client)
        assert remote.member_digests() == serial.member_digests()
        assert remote.state_digest() == serial.state_digest()
        assert remote.member_count() == serial.member_count() == 16


# ------------------------------------------------------------------ neuromodulation
def test_neuromod_sync_full_partial_independent():
    clock = StepClock(step=1_000_000_000)
    c = ThermogramColony("n", "n", config=ColonyConfig(merge_threshold=0), members=3, clock=clock,
                         neuromod_sync=NeuromodSyncConfig.full_sync(clock))
    c.set_neuromod_sync(1, NeuromodSyncConfig.default(clock))
    c.set_neuromod_sync("n-m2", NeuromodSyncConfig.independent(clock))
    c.neuromod.reward(0.5).focus(0.3)
    assert c.sync_neuromod() == 2
    assert c.member_neuromod(0) == c.neuromod
    partial = c.member_neuromod(1)
    assert abs(partial.dopamine - 0.55) < 1e-6 and abs(partial.acetylcholine - 0.53) < 1e-6
    assert c.member_neuromod(2) == NeuromodState.baseline()
    assert c.consolidate().neuromod_synced == 2
    assert c.member_neuromod(1).dopamine > partial.dopamine or c.member_neuromod(1) is partial
    with pytest.raises(ValidationError):
        c.set_neuromod_sync(0, "full")
    with pytest.raises(ValidationError):
        c.member_neuromod("nope")
    c.neuromod = {"dopamine": 0.1, "serotonin": 0.2, "norepinephrine": 0.3, "acetylcholine": 0.4}
    assert c.neuromod.dopamine == pytest.approx(0.1)


def test_split_members_inherit_neuromod():
    c = colony(ColonyConfig(split_threshold=10, merge_threshold=0))
    c.member_neuromod(0).stress(0.2)
    c.set_neuromod_sync(0, NeuromodSyncConfig.independent())
    fill(c, [f"g{i}_k" for i in range(30)])
    c.consolidate()
    assert c.member_count() == 2
    assert c.member_neuromod(1) == c.member_neuromod(0) and c.member_neuromod(1) is not c.member_neuromod(0)
    assert c.neuromod_sync(1) == NeuromodSyncConfig.independent()


# ------------------------------------------------------------------ persistence
def saved_colony(tmp_path):
    c = build_colony()
    c.consolidate()
    c.neuromod.reward(0.2)
    c.sync_neuromod()
    folder = tmp_path / "col"
    c.save(folder)
    return c, folder


def test_save_open_roundtrip(tmp_path):
    c, folder = saved_colony(tmp_path)
    files = sorted(os.listdir(folder))
    assert "colony.json" in files and sum(f.endswith(".thermo") for f in files) == c.member_count()
    d = ThermogramColony.open(folder, clock=StepClock())
    assert d.state_digest() == c.state_digest() and d.member_digests() == c.member_digests()
    assert d.config == c.config and d.ranges() == c.ranges() and d.path == str(folder)
    assert d.stats().split_count == c.stats().split_count
    assert d.keys() == c.keys()
    # keeps working, and saves over itself; unchanged members are not rewritten
    mtimes = {f: os.stat(folder / f).st_mtime_ns for f in files if f.endswith(".thermo")}
    first = d.member(0)
    d.write(first.keys()[0], np.array([0.25, 0.25]))
    d.save()
    after = sorted(os.listdir(folder))
    assert sum(f.endswith(".thermo") for f in after) == d.member_count()
    kept = [f for f in mtimes if f in after]
    assert len(kept) == d.member_count() - 1 and all(os.stat(folder / f).st_mtime_ns == mtimes[f] for f in kept)
    assert ThermogramColony.open(folder).state_digest() == d.state_digest()


def test_crash_between_member_writes_leaves_the_previous_colony(tmp_path, monkeypatch):
    c, folder = saved_colony(tmp_path)
    good = c.state_digest()
    fill(c, [f"g{i // 3}_k{i}" for i in range(0, 400, 2)], seed=9)
    c.consolidate()
    assert c.state_digest() != good
    real = colony_persist.atomic_write
    crashes = 0
    for crash_at in range(1, 100):
        calls = []

        def flaky(path, data):
            calls.append(path)
            if len(calls) == crash_at:
                raise OSError("power cut")
            real(path, data)

        monkeypatch.setattr(colony_persist, "atomic_write", flaky)
        try:
            c.save(folder)
        except OSError:
            crashes += 1
            assert ThermogramColony.open(folder).state_digest() == good
        else:
            break
        finally:
            monkeypatch.setattr(colony_persist, "atomic_write", real)
    assert crashes >= 2 and calls[-1].endswith("colony.json")  # crashed before and after member writes
    assert ThermogramColony.open(folder).state_digest() == c.state_digest()
    assert sum(f.endswith(".thermo") for f in os.listdir(folder)) == c.member_count()


def test_open_rejects_damage(tmp_path):
    c, folder = saved_colony(tmp_path)
    man = folder / "colony.json"
    text = man.read_text()
    assert '"name": "det"' in text
    man.write_text(text.replace('"name": "det"', '"name": "dex"'))
    with pytest.raises(FormatError):
        ThermogramColony.open(folder)
    man.write_text(text)
    member_file = next(f for f in os.listdir(folder) if f.endswith(".thermo"))
    data = bytearray((folder / member_file).read_bytes())
    data[len(data) // 2] ^= 1
    (folder / member_file).write_bytes(bytes(data))
    with pytest.raises(FormatError):
        ThermogramColony.open(folder)
    (folder / member_file).unlink()
    with pytest.raises(FormatError):
        ThermogramColony.open(folder)
    with pytest.raises(FormatError):
        ThermogramColony.open(tmp_path / "empty")
    man.write_text("{not json")
    with pytest.raises(FormatError):
        ThermogramColony.open(folder)


def test_custom_locality_must_be_given_again(tmp_path):
    loc = lambda k: k[:2]  # noqa: E731
    c = ThermogramColony("l", "l", members=3, locality=loc, clock=StepClock())
    fill(c, [f"{a}{b}_x" for a in "abcdef" for b in "xyz"])
    c.save(tmp_path / "l")
    with pytest.raises(ValidationError):
        ThermogramColony.open(tmp_path / "l")
    assert ThermogramColony.open(tmp_path / "l", locality=loc).state_digest() == c.state_digest()
    with pytest.raises(FormatError):  # another locality routes keys elsewhere
        ThermogramColony.open(tmp_path / "l", locality=lambda k: k[::-1])


def test_save_needs_a_folder():
    with pytest.raises(ValidationError):
        colony().save()


# ------------------------------------------------------------------ display
def test_repr_and_html():
    c = build_colony()
    c.consolidate()
    assert repr(c).startswith("ThermogramColony('det', members=")
    h = c._repr_html_()
    assert "det-m0" in h and "central neuromod" in h and "hash share" in h and "<table>" in h
    assert pytest.approx(sum(c.hash_share(i) for i in range(c.member_count()))) == 1.0
