"""Distributed colonies: members resident on Dask workers (a LocalCluster of two worker
processes here). The same operations give the same member and colony digests on the
cluster, on threads and serially; a worker killed while batches stream in loses no
acknowledged batch; a write journaled but never acknowledged is retried idempotently.
Splits, merges and rebalancing reach the same digests on every backend, and a worker lost
in the middle of a move leaves every key held exactly once (finished by the retry, or by
reopening the folder).

Skipped only when dask.distributed is not installed. ``THERMOGRAM_DIST_BATCHES`` sets how
many batches the fault test streams (default 24), ``THERMOGRAM_DIST_EXAMPLES`` how many
operation sequences the property test tries (default 6)."""
import json
import os
import signal
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from thermogram import ConsolidationPolicy, Delta, DeltaBatch, ReplayError, Signal, ThermalState, Thermogram
from thermogram.colony import ColonyConfig, ThermogramColony
from thermogram.colony import routing
from thermogram.colony.distributed import (DISTRIBUTED_MANIFEST, DistributedColony, MemberLostError,
                                           encode_parts, fixed_topology_config)
from thermogram.errors import FormatError, KeyMissingError, ThermogramError, ValidationError

distributed = pytest.importorskip("distributed")

pytestmark = [pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning"),
              pytest.mark.filterwarnings("ignore::ResourceWarning"),
              pytest.mark.filterwarnings("ignore::UserWarning")]

T0 = 1_700_000_000_000_000_000
MEMBERS = 4
N_BATCHES = int(os.environ.get("THERMOGRAM_DIST_BATCHES", "24"))


class ManualClock:
    """A clock the test moves: every call in one step reads the same time."""

    def __init__(self):
        self.t = T0

    def __call__(self):
        return self.t


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as c:
        yield c


def make(kind, clock, client=None, folder=None, config=None, **kw):
    kw = dict(members=MEMBERS, clock=clock, policy=ConsolidationPolicy.manual_only(), **kw)
    if kind == "cluster":
        return ThermogramColony.distributed(client, folder, "c", "Colony", config=config, **kw)
    return ThermogramColony("c", "Colony", config=fixed_topology_config(MEMBERS) if config is None else config,
                            executor=kind, **kw)


def batch(i, n=500, dim=4, deletes=()):
    rng = np.random.default_rng(i)
    keys = [f"g{int(x)}_w{int(y)}" for x, y in zip(rng.integers(0, 40, n), rng.integers(0, 200, n))]
    vals = rng.uniform(-1, 1, (n, dim)).astype(np.float32)
    b = DeltaBatch.from_arrays(keys, vals, Signal.positive(int(rng.integers(1, 256))), "update",
                               timestamps=T0 + i, id=f"batch-{i}", clock=lambda: T0 + i)
    if deletes:
        b = DeltaBatch.from_deltas(list(b) + [Delta.delete(k, timestamp=T0 + i) for k in deletes],
                                   clock=lambda: T0 + i)
        b.id = f"batch-{i}"
    return b


def run_sequence(col, clock, seed):
    """A mixed operation sequence; every step at its own time."""
    rng = np.random.default_rng(seed)
    for step in range(6):
        clock.t += 1_000_000_000
        col.apply_batch(batch(seed * 100 + step, n=int(rng.integers(50, 400))))
        col.write(f"g{step}_solo", rng.uniform(-1, 1, 3).astype(np.float32), Signal.positive(200))
        if step == 2:
            col.write(f"g{step}_placed", np.array([0.5, -0.5]), state=ThermalState.WARM, update_count=3,
                      updated_at=clock.t)
            col.neuromod.reward(0.3)
        if step in (1, 4):
            r = col.consolidate()
            assert r.deltas_processed > 0
        if step == 3:  # delete keys that exist: the member checks before it applies
            held = sorted(col.keys())[:3]
            clock.t += 1
            col.apply_batch(batch(seed * 100 + 50, n=20, deletes=held))
            assert all(col.read(k) is None for k in held)
    clock.t += 1_000_000_000
    col.consolidate()


@pytest.mark.parametrize("seed", [1, 2])
def test_cluster_threads_and_serial_reach_identical_digests(client, tmp_path, seed):
    digests = {}
    for kind in ("serial", "threads", "cluster"):
        clock = ManualClock()
        col = make(kind, clock, client, tmp_path / kind)
        try:
            run_sequence(col, clock, seed)
            digests[kind] = (col.member_digests(), col.state_digest(), col.keys(),
                             [None if v is None else v.tolist() for v in col.read_many(["g0_solo", "g9_x"])])
        finally:
            if kind == "cluster":
                col.close()
    assert digests["cluster"] == digests["serial"] == digests["threads"]
    assert len(set(digests["serial"][0].values())) == MEMBERS  # the members really differ
    # reopening the folder on the cluster gives the same colony back
    reopened = DistributedColony.open(client, tmp_path / "cluster", clock=ManualClock())
    try:
        assert reopened.state_digest() == digests["serial"][1]
    finally:
        reopened.close()


def test_only_each_members_part_travels_and_reads_route(client, tmp_path):
    clock = ManualClock()
    col = make("cluster", clock, client, tmp_path)
    try:
        b = batch(7, n=300)
        col.apply_batch(b)
        owners = col.route_many(b.keys)
        counts = col.member_key_counts()
        for i in range(MEMBERS):  # each member holds exactly the keys routed to it
            assert counts[i] == len({k for k, o in zip(b.keys, owners) if o == i})
        k = b.keys[0]
        assert col.read(k) is not None and k in col and "g99_none" not in col
        with pytest.raises(KeyMissingError):  # a delete of a missing key is refused everywhere
            col.apply_batch(batch(8, n=10, deletes=["g1_never"]))
        assert col.member_key_counts() == counts
        with pytest.raises(ReplayError):  # the same batch id again: each delta applies once
            col.apply_batch(b)
        assert col.split(0) is False  # the default config keeps the members it was made with
        with pytest.raises(ValidationError, match="into itself"):
            col.merge(1, 1)
        assert col.rebalance() == 0 and col.member_key_counts() == counts
        doc = json.loads((tmp_path / DISTRIBUTED_MANIFEST).read_text())
        assert [m["id"] for m in doc["members"]] == col.member_ids
        assert {m["id"]: m["worker"] for m in doc["members"]} == col.placement
    finally:
        col.close()


def test_bad_arguments_are_refused(client, tmp_path):
    with pytest.raises(ValidationError, match="fsync"):
        ThermogramColony.distributed(client, tmp_path, "c", "C", fsync="sometimes")
    with pytest.raises(FormatError, match="holds no distributed colony"):
        DistributedColony.open(client, tmp_path / "empty")
    col = make("cluster", ManualClock(), client, tmp_path / "one")
    col.close()
    with pytest.raises(ValidationError, match="already holds a distributed colony"):
        make("cluster", ManualClock(), client, tmp_path / "one")  # never attached to silently
    os.remove(tmp_path / "one" / f"{col.member_ids[2]}.thermo")
    with pytest.raises(FormatError, match="missing"):  # a member is never re-created empty
        DistributedColony.open(client, tmp_path / "one")
    for f in os.listdir(tmp_path / "one"):  # the members that did start were closed again
        if f.endswith(".thermo") and not f.startswith(col.member_ids[2]):
            with Thermogram.open(tmp_path / "one" / f) as t:
                assert t.id == f[:-len(".thermo")]


def _reference(batches):
    ref = make("serial", ManualClock())
    for b in batches:
        ref.apply_batch(b)
    return ref


def test_journaled_but_unacknowledged_batch_is_retried_idempotently(client, tmp_path):
    """The worker ends right after member 0 journals its part, before answering: the
    member is re-created from its files, the part is sent again and refused as a
    replay (it landed), which counts as success. Nothing is applied twice."""
    col = make("cluster", ManualClock(), client, tmp_path)
    try:
        first = batch(20)
        col.apply_batch(first)
        before = col.placement
        old_worker = before[col.member_ids[0]]
        col.member_actor(0).crash_after(1).result()
        second = batch(21)
        col.apply_batch(second)  # acknowledged despite the crash
        assert col.recoveries[0][:2] == (col.member_ids[0], old_worker)
        ref = _reference([first, second])
        assert col.member_digests() == ref.member_digests()
        assert col.state_digest() == ref.state_digest()
        # every member that lived in the ended worker was re-created elsewhere, once
        assert sorted(r[0] for r in col.recoveries) == sorted(m for m, w in before.items() if w == old_worker)
        assert all(r[1] == old_worker != r[2] for r in col.recoveries)
        doc = DistributedColony.read_manifest(tmp_path)  # the manifest names the new home
        assert doc["members"][0]["worker"] == col.placement[col.member_ids[0]]
    finally:
        col.close()


def test_a_lost_member_beyond_the_retries_is_reported(client, tmp_path):
    col = make("cluster", ManualClock(), client, tmp_path, max_retries=0)
    try:
        placed = col.placement
        col.member_actor(1).crash_after(1).result()
        b = batch(30)
        with pytest.raises(MemberLostError) as e:
            col.apply_batch(b)
        lost_worker = placed[col.member_ids[1]]
        assert placed[e.value.member] == lost_worker
        assert f"{b.id}/{col.member_ids[1]}" in e.value.unacknowledged
        assert {u.split("/")[1] for u in e.value.unacknowledged} <= {m for m, w in placed.items() if w == lost_worker}
        with pytest.raises(ReplayError):  # member 1's part had landed: a plain resend is refused
            col.apply_batch(b)
        col.apply_batch(b, resend=True)  # lost members are re-created; landed parts count as done
        assert col.member_digests() == _reference([b]).member_digests()
    finally:
        col.close()


def test_worker_killed_while_batches_stream_loses_nothing_acknowledged(client, tmp_path):
    """SIGKILL one worker process from another thread while batches stream in; every
    batch acknowledged to the caller (here: all of them, as lost members are re-created
    and their parts retried) is in the members' files and state."""
    col = make("cluster", ManualClock(), client, tmp_path)
    acked = []
    killed = threading.Event()
    go = threading.Event()
    victim = col.placement[col.member_ids[0]]
    pid = client.run(os.getpid, workers=[victim])[victim]

    def killer():
        go.wait(60)
        os.kill(pid, signal.SIGKILL)
        killed.set()

    th = threading.Thread(target=killer)
    th.start()
    try:
        batches = [batch(100 + i, n=1000) for i in range(N_BATCHES)]
        for i, b in enumerate(batches):
            col.apply_batch(b)
            acked.append(b)
            if i == 3:
                go.set()
        th.join(60)
        assert killed.is_set()
        col.read_many([b.keys[0] for b in batches])  # touch every member: all are alive again
        assert col.recoveries and all(old == victim for _, old, _ in col.recoveries)
        ref = _reference(acked)
        assert col.member_digests() == ref.member_digests()
        assert col.state_digest() == ref.state_digest()
    finally:
        go.set()
        th.join(60)
        col.close()
    reopened = DistributedColony.open(client, tmp_path, clock=ManualClock())
    try:
        assert reopened.state_digest() == ref.state_digest()
        assert victim not in reopened.placement.values()
    finally:
        reopened.close()


def test_in_process_read_many_matches_read():
    col = make("serial", ManualClock())
    b = batch(3, n=100)
    col.apply_batch(b)
    ks = list(b.keys[:10]) + ["g0_missing"]
    assert [None if v is None else v.tolist() for v in col.read_many(ks)] == \
        [None if col.read(k) is None else col.read(k).tolist() for k in ks]


@pytest.mark.parametrize("nul", [False, True])
def test_wire_messages_are_the_sub_batches_record_bytes(nul):
    """The fast encoder sends exactly the canonical bytes of the sub-batches the
    in-process colony applies (ragged values, non-ASCII keys, a key holding NUL)."""
    rng = np.random.default_rng(5)
    keys = [f"g{int(x)}_ключ{int(y)}" for x, y in zip(rng.integers(0, 30, 400), rng.integers(0, 99, 400))]
    if nul:
        keys[7] = "g3_a\x00b"
    deltas = [Delta.update(k, rng.uniform(-1, 1, int(rng.integers(0, 5))).astype(np.float32),
                           strength=Signal.positive(int(rng.integers(1, 256))), timestamp=T0 + j)
              for j, k in enumerate(keys)]
    b = DeltaBatch.from_deltas(deltas, source="src", clock=lambda: T0)
    col = make("serial", ManualClock())
    idx = col.route_many(b.keys)
    got = encode_parts(b, idx, col.member_ids)
    want = routing.split_batch(b, idx, col.member_ids)
    assert [(i, data, n, sid) for i, data, n, sid in got] == \
        [(i, sub.canonical_bytes(), len(sub), sub.id) for i, sub in want]
    one = np.zeros(len(b), np.int64)
    assert encode_parts(b, one, col.member_ids) == [(0, b.canonical_bytes(), len(b), b.id)]


OPS = st.lists(st.one_of(
    st.tuples(st.just("batch"), st.integers(1, 300), st.integers(0, 10_000)),
    st.tuples(st.just("write"), st.integers(0, 60), st.floats(-1, 1, width=32)),
    st.tuples(st.just("delete"), st.integers(0, 2)),
    st.tuples(st.just("consolidate")),
    st.tuples(st.just("reward"), st.floats(0, 1, width=32)),
    st.tuples(st.just("split"), st.integers(0, 6)),
    st.tuples(st.just("merge"), st.integers(0, 6)),
    st.tuples(st.just("rebalance")),
), min_size=1, max_size=12)


@settings(max_examples=int(os.environ.get("THERMOGRAM_DIST_EXAMPLES", "6")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=OPS)
def test_property_cluster_and_serial_agree_on_any_sequence(client, tmp_path_factory, ops):
    folder = tmp_path_factory.mktemp("prop")
    runs = []
    for kind in ("serial", "cluster"):
        clock = ManualClock()
        col = make(kind, clock, client, folder, config=MOVING.replace(split_threshold=150))
        try:
            for j, op in enumerate(ops):
                clock.t += 1_000_000_000
                if op[0] == "batch":
                    b = batch(op[2], n=op[1])
                    b.id = f"p{j}"
                    col.apply_batch(b)
                elif op[0] == "write":
                    col.write(f"g{op[1] % 40}_w{op[1]}", np.array([op[2], -op[2]], np.float32))
                elif op[0] == "delete":
                    held = sorted(col.keys())
                    if held:
                        col.delete(held[op[1] % len(held)])
                elif op[0] == "consolidate":
                    col.consolidate()
                elif op[0] == "split":
                    col.split(op[1] % col.member_count())
                elif op[0] == "merge":
                    if col.member_count() > 1:
                        col.merge(op[1] % (col.member_count() - 1), col.member_count() - 1)
                elif op[0] == "rebalance":
                    col.rebalance()
                else:
                    col.neuromod.reward(op[1])
            runs.append((col.member_digests(), col.state_digest(), col.ranges(), _held_once(col)))
        finally:
            if kind == "cluster":
                col.close()
    assert runs[0] == runs[1]


# ----------------------------------------------------------------------------- topology
# Splits, merges and rebalancing: only the moving keys' entries travel; both members
# record the move exactly as in process, so every backend reaches the same digests.

MOVING = ColonyConfig(split_threshold=250, merge_threshold=0, balance_tolerance=0.2, max_members=7)


def run_topology_sequence(col, clock, seed):
    """Batches, explicit splits, a merge, rebalancing and consolidations that split."""
    rng = np.random.default_rng(seed)
    moved = []
    for step in range(5):
        clock.t += 1_000_000_000
        col.apply_batch(batch(seed * 100 + step, n=int(rng.integers(150, 400))))
        col.write(f"g{step}_solo", rng.uniform(-1, 1, 3).astype(np.float32), Signal.positive(200))
        if step == 1:
            moved.append(("split", col.split(int(rng.integers(0, col.member_count())))))
            moved.append(("rebalance", col.rebalance()))
        if step == 2:
            col.merge(0, col.member_count() - 1)
            moved.append(("merge", col.member_count()))
        if step in (2, 4):
            r = col.consolidate()
            moved.append(("consolidate", r.splits, r.merges, r.rebalanced))
    clock.t += 1_000_000_000
    col.delete(sorted(col.keys())[0])
    col.consolidate()
    return moved


def _held_once(col):
    """Every key is held by exactly one member, the one it routes to."""
    per = col._gather("keys", range(col.member_count())) if hasattr(col, "_gather") else \
        [m.keys() for m in col.members]
    flat = [k for ks in per for k in ks]
    assert len(flat) == len(set(flat))
    for i, ks in enumerate(per):
        if ks:
            assert set(col.route_many(ks).tolist()) == {i}
    return sorted(flat)


@pytest.mark.parametrize("seed", [3, 4])
def test_topology_changes_reach_identical_digests_everywhere(client, tmp_path, seed):
    out = {}
    for kind in ("serial", "threads", "cluster"):
        clock = ManualClock()
        col = make(kind, clock, client, tmp_path / kind, config=MOVING)
        try:
            moved = run_topology_sequence(col, clock, seed)
            out[kind] = (moved, col.member_ids, col.ranges(), col.member_digests(), col.state_digest(),
                         _held_once(col))
        finally:
            if kind == "cluster":
                col.close()
    assert out["cluster"] == out["serial"] == out["threads"]
    moved = out["serial"][0]
    assert moved[0] == ("split", True) and any(m[0] == "rebalance" and m[1] > 0 for m in moved)
    assert sum(m[1] for m in moved if m[0] == "consolidate") > 0  # consolidation split members too
    files = sorted(f[:-len(".thermo")] for f in os.listdir(tmp_path / "cluster") if f.endswith(".thermo"))
    assert files == sorted(out["serial"][1])  # the merged-away member's files are gone
    reopened = DistributedColony.open(client, tmp_path / "cluster", clock=ManualClock())
    try:
        assert reopened.state_digest() == out["serial"][4] and reopened.member_ids == out["serial"][1]
    finally:
        reopened.close()


def _moving_colony(kind, client, folder, **kw):
    """Four members, then a split of member 0: members 0 and 4 hold about half as many
    keys as the others, so a rebalance has keys to move."""
    clock = ManualClock()
    config = ColonyConfig(split_threshold=10**6, merge_threshold=0, balance_tolerance=0.05, max_members=5)
    col = make(kind, clock, client, folder, config=config, **kw)
    for i in range(3):
        col.apply_batch(batch(600 + i, n=600))
    clock.t += 1_000_000_000
    assert col.split(0)
    clock.t += 1_000_000_000
    return col, clock


@pytest.mark.parametrize("side,step", [("dst", 1), ("src", 1), ("src", 2), ("src", 4)])
def test_worker_lost_during_a_rebalance_keeps_every_key_once(client, tmp_path, side, step):
    """A worker ends right after a step of a move is journaled, before it answers:
    ``("dst", 1)`` after the receiving member's import (both members hold the keys),
    ``("src", n)`` after the n-th of the giving member's four removal records. With no
    retries the rebalance fails; reopening the folder finishes the move the manifest
    names: every key is held once, by the member it routes to, with its value."""
    ref, _ = _moving_colony("serial", None, None)
    before = ref.member_key_counts()
    assert ref.rebalance() > 0
    after = ref.member_key_counts()
    giver = int(np.argmin(np.subtract(after, before)))
    taker = int(np.argmax(np.subtract(after, before)))
    keys = _held_once(ref)
    want = [v.tolist() for v in ref.read_many(keys)]
    col, clock = _moving_colony("cluster", client, tmp_path, max_retries=0)
    try:
        assert col.member_ids == ref.member_ids and col.member_key_counts() == before
        ring = col.ranges()
        col.member_actor(taker if side == "dst" else giver).crash_after(step).result()
        with pytest.raises(MemberLostError):
            col.rebalance()
    finally:
        col.close()
    move = DistributedColony.read_manifest(tmp_path)["move"]
    assert move is not None and move["reason"] == "rebalance"  # named before it began, still to finish
    reopened = DistributedColony.open(client, tmp_path, clock=clock)  # finishes the move
    try:
        assert DistributedColony.read_manifest(tmp_path)["move"] is None
        assert reopened.ranges() != ring  # the move's range changed hands
        assert _held_once(reopened) == keys
        assert [v.tolist() for v in reopened.read_many(keys)] == want
        reopened.rebalance()  # the moves the failed call never began
        assert _held_once(reopened) == keys
        assert [v.tolist() for v in reopened.read_many(keys)] == want
    finally:
        reopened.close()


def test_a_rebalance_retried_after_a_lost_worker_completes(client, tmp_path):
    """With retries (the default), a worker lost mid-move costs nothing: the member is
    re-created from its files and the step sent again finds what had landed."""
    ref, _ = _moving_colony("serial", None, None)
    before = ref.member_key_counts()
    ref.rebalance()
    taker = int(np.argmax(np.subtract(ref.member_key_counts(), before)))
    col, clock = _moving_colony("cluster", client, tmp_path)
    try:
        col.member_actor(taker).crash_after(1).result()
        col.rebalance()
        assert col.recoveries and col.recoveries[0][0] == col.member_ids[taker]
        assert _held_once(col) == _held_once(ref)
        assert col.state_digest() == ref.state_digest()
    finally:
        col.close()
