"""Colonies past one machine: members resident on Dask workers.

Why this module is one piece (~1,300 lines): the member actor and the caller-side colony
speak one small protocol (record bytes out, counts and digests back, re-creation on a lost
worker); keeping both ends and the manifest together keeps that protocol readable in one place.

:class:`DistributedColony` (made by :meth:`ThermogramColony.distributed`) keeps
each member as a Dask *actor* (:class:`MemberActor`) on a worker. The actor owns
a file-backed capsule (:meth:`Thermogram.open`: a snapshot and a durable journal)
in a folder every worker can reach. The caller keeps only the hash ring, the
neuromodulator levels and a small manifest; it routes with the same O(1) routing
as :class:`ThermogramColony` and sends each member only its part of a call:

* ``apply_batch``: each member that receives rows gets its sub-batch as its
  canonical record bytes (the bytes its hash covers,
  :func:`thermogram.io.records.encode_batch`); the parts of the members living
  on one worker travel together, one message per worker per call
  (:meth:`MemberActor.apply_parts`);
* ``write`` / ``apply_delta`` / ``delete`` / ``read``: one message to the owner;
  ``read_many``: one message per member holding any of the keys;
* ``consolidate``: one message per member, run in place on its worker; only
  the four counts come back.

A member acknowledges a write only once its journal holds it (the capsules are
opened with ``fsync="always"`` by default). When a worker is lost, the next
call to each of its members re-creates the actor on a live worker from the
member's snapshot and journal and sends the call again: a batch that had
already landed is refused by the capsule with :class:`ReplayError` (batch
and delta ids are unique per capsule), which the retry treats as success.
The manifest (``colony-distributed.json``) names each member, its files and
the worker it lives on, and is rewritten atomically whenever that changes.

Splits, merges and rebalancing move just the keys that move: the giving
member's actor exports those entries, the receiving actor records them as one
``import`` record and the giving one deletes them with the same four records
as in process (:mod:`thermogram.colony.topology`), so both chains record the
move exactly as an in-process colony's would. The manifest names the move
before it starts; each step can be sent again (a member finds from its own
chain how far an earlier attempt got), so a move cut short by a lost worker is
finished by the retry, or by :meth:`DistributedColony.open`. The default
config keeps the topology fixed (:func:`fixed_topology_config`).

Dask is never imported here: the caller passes a ``distributed.Client``.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..consolidation import ConsolidationPolicy
from ..core import Thermogram
from ..delta import Clock, Delta, DeltaBatch, DeltaType, validate_key
from ..errors import FormatError, ReplayError, ThermogramError, ValidationError
from ..io.files import atomic_write, read_file
from ..io.reader import Reader
from ..io.records import decode_batch, decode_delta, encode_batch
from ..limits import Limits
from ..neuromod import NeuromodState, NeuromodSyncConfig
from ..plasticity import PlasticityRule
from ..signal import Signal
from ..thermal import ThermalConfig
from . import persist, routing, topology
from .config import ColonyConfig, ColonyConsolidationResult, ColonyMetadata, _count

__all__ = ["DistributedColony", "MemberActor", "MemberLostError", "DISTRIBUTED_MANIFEST"]

DISTRIBUTED_MANIFEST = "colony-distributed.json"
"""File name of a distributed colony's manifest (in its shared folder)."""
_FORMAT = "thermogram-distributed-colony"
_VERSION = 2
"""Manifest version written (1: before topology changes; still read)."""
_START_TIMEOUT_S = 20.0
"""Longest wait for one attempt to start a member on a worker."""
_RESIDENT: Dict[str, "MemberActor"] = {}
"""The members living in this process, by id (on a worker: its actors), so one
message can carry the parts of every member on that worker (see :meth:`MemberActor.apply_parts`)."""


class MemberLostError(ThermogramError):
    """A member's worker was lost and the member could not be re-created (or the
    call still failed after the allowed retries). ``member`` names it;
    ``unacknowledged`` lists the batch or delta ids of the call that may not have
    landed (send them again: a batch that did land is refused with
    :class:`~thermogram.errors.ReplayError`)."""

    def __init__(self, message: str, member: str = "", unacknowledged: Sequence[str] = ()):
        super().__init__(message)
        self.member = member
        self.unacknowledged = list(unacknowledged)


class _SetClock:
    """The actor's clock: reads the time the caller sent with the current call."""

    __slots__ = ("now",)

    def __init__(self, now: int):
        self.now = int(now)

    def __call__(self) -> int:
        return self.now


# ----------------------------------------------------------------------------- the worker side
class MemberActor:
    """One member, resident on a Dask worker: a file-backed capsule and the calls
    the caller routes to it. Every call that changes state takes ``now`` (the
    colony's time for that call): the capsule's clock reads it, so a member
    re-created elsewhere, or one run in another process, records the same times.

    Parameters
    ----------
    path : str
        The member's snapshot (its journal lies beside it); created when missing.
    spec : dict
        ``name``, ``id``, ``rule``, ``thermal_config``, ``policy`` (the objects)
        and ``limits``: used to create a missing member; ``must_exist`` (re-created
        or reopened members) raises :class:`FormatError` instead when the files are gone.
    fsync : str
        Journal policy (``"always"``: every acknowledged write is on disk).
    now : int
        The time of the member's creation (ns).
    """

    def __init__(self, path: str, spec: Dict[str, Any], fsync: str, now: int):
        self._clock = _SetClock(now)
        self._path = os.path.abspath(path)
        limits = spec.get("limits")
        create = {k: spec[k] for k in ("name", "id", "rule", "thermal_config", "policy")}
        self.recovered = os.path.exists(path)
        if spec.get("must_exist") and not self.recovered:  # never re-create a member empty
            raise FormatError(f"member {spec['id']!r}: its snapshot {path} is missing from the shared folder")
        stale = _RESIDENT.get(spec["id"])
        if stale is not None and stale.path == self._path:
            # an earlier start of this member in this process whose handle the caller gave up
            # on (its answer was lost or late): the newest start takes the files over
            stale.close()
        self._t = Thermogram.open(path, create=True, fsync=fsync, clock=self._clock, **create)
        if self._t.id != spec["id"]:
            got = self._t.id
            self._t.close()
            raise FormatError(f"{path} holds member {got!r}, expected {spec['id']!r}")
        if limits is not None:
            self._t.limits = limits
        self._config = (spec["thermal_config"], spec["policy"])  # what a removal restores
        self._crash_after: Optional[int] = None
        _RESIDENT[self._t.id] = self

    @property
    def path(self) -> str:
        """The member's snapshot path."""
        return self._path

    def _at(self, now: int) -> Thermogram:
        self._clock.now = int(now)
        return self._t

    def _applied(self) -> None:
        if self._crash_after is not None:
            self._crash_after -= 1
            if self._crash_after <= 0:  # fault injection: the write is journaled, the answer never sent
                os._exit(70)

    def crash_after(self, applies: int) -> int:
        """Fault injection for tests: end this worker process abruptly right after
        the ``applies``-th next write is journaled, before it is acknowledged."""
        self._crash_after = int(applies)
        return os.getpid()

    def info(self) -> Dict[str, Any]:
        """``id``, ``digest``, ``keys`` (count), ``pending``, ``layers``, ``head``,
        ``recovered`` (opened from existing files) and ``pid``."""
        t = self._t
        c = t.layer_counts()
        from .topology import member_key_count
        return {"id": t.id, "digest": t.state_digest(), "keys": member_key_count(t),
                "pending": t.pending_count, "layers": [c["hot"], c["warm"], c["cool"], c["cold"]],
                "head": t.head_hash, "records": len(t.chain), "recovered": self.recovered, "pid": os.getpid()}

    def apply_batch(self, data: bytes, now: int) -> int:
        """Apply a sub-batch sent as its canonical record bytes; returns the pending count."""
        t = self._at(now)
        t.apply_batch(decode_batch(Reader(data, what="batch message")))
        self._applied()
        return t.pending_count

    def apply_parts(self, parts: List[Tuple[str, bytes]], now: int) -> List[Tuple[str, Any]]:
        """Apply the sub-batches of several members living in this process, in one
        message: ``parts`` is ``[(member id, record bytes)]``. Returns per part
        ``("ok", pending count)``, ``("error", the ThermogramError)`` or
        ``("absent", None)`` when that member does not live here (the caller then
        sends it on its own). Runs on the worker's actor thread, as every member call."""
        out: List[Tuple[str, Any]] = []
        for mid, data in parts:
            m = _RESIDENT.get(mid)
            if m is None:
                out.append(("absent", None))
                continue
            try:
                out.append(("ok", m.apply_batch(data, now)))
            except ThermogramError as e:
                out.append(("error", e))
        return out

    def preflight(self, data: bytes, now: int) -> None:
        """Raise what :meth:`apply_batch` would raise, changing nothing."""
        from .topology import preflight
        preflight(self._at(now), decode_batch(Reader(data, what="batch message")))

    def apply_delta(self, data: bytes, now: int) -> Tuple[Delta, int]:
        """Apply one delta sent as its canonical bytes; returns the linked record and the pending count."""
        t = self._at(now)
        d = decode_delta(Reader(data, what="delta message"))
        rec = t.apply_delta(d)
        self._applied()
        return rec, t.pending_count

    def write(self, key: str, value: Any, strength: Any, source: str, delta_id: str,
              now: int) -> Tuple[Delta, int]:
        """:meth:`Thermogram.write` with the delta id chosen by the caller (so a
        retried write is recognised); returns the linked record and the pending count."""
        t = self._at(now)
        kind = DeltaType.UPDATE if t.read(key) is not None else DeltaType.CREATE
        rec = t.apply_delta(Delta(kind, key, value, source=source, strength=strength, id=delta_id,
                                  timestamp=int(now)))
        self._applied()
        return rec, t.pending_count

    def delete(self, key: str, source: str, delta_id: str, now: int) -> Tuple[Delta, int]:
        """Apply a Delete delta with the caller's id; returns the record and the pending count."""
        t = self._at(now)
        rec = t.apply_delta(Delta(DeltaType.DELETE, key, source=source, id=delta_id, timestamp=int(now)))
        self._applied()
        return rec, t.pending_count

    def insert_entry(self, key: str, value: Any, strength: Any, state: Any, update_count: int,
                     updated_at: Optional[int], now: int) -> None:
        """Place a consolidated entry directly (see :meth:`Thermogram.insert_entry`)."""
        self._at(now).insert_entry(key, value, strength, state, update_count=update_count,
                                   updated_at=updated_at)

    def read(self, key: str, now: int) -> Optional[np.ndarray]:
        """The key's value, or None."""
        return self._at(now).read(key)

    def read_many(self, keys: List[str], now: int) -> List[Optional[np.ndarray]]:
        """Values of many keys (None where missing), in order."""
        t = self._at(now)
        return [t.read(k) for k in keys]

    def read_with_state(self, key: str, now: int) -> Optional[Tuple[np.ndarray, Signal, Any]]:
        """``(value, strength, layer)`` or None."""
        return self._at(now).read_with_state(key)

    def keys(self) -> List[str]:
        """Every key the member holds, sorted."""
        return self._t.keys()

    def consolidate(self, now: int, retry: bool = False) -> Tuple[int, int, int, int]:
        """Consolidate in place at ``now``; returns ``(promoted, demoted, pruned, deltas)``.

        ``retry``: the call is sent again after its answer was lost. When the
        member's last record is then a consolidation at ``now`` with nothing
        pending, that attempt landed: nothing runs again and zeros come back.
        (A first attempt always runs, as in process, even twice at one time.)"""
        t = self._at(now)
        last = t.chain[len(t.chain) - 1]
        if retry and t.pending_count == 0 and getattr(last, "op", None) == "consolidate" \
                and last.timestamp == int(now):
            return (0, 0, 0, 0)
        r = t.consolidate()
        return (r.promoted, r.demoted, r.entries_pruned + r.transition_pruned, r.deltas_processed)

    # -------------------------------------------------------------- moving keys
    # A move runs as three idempotent calls (export, receive, remove), each of which
    # may be sent again after its worker was lost: the receiving and the giving
    # member find from their own chains how far an earlier attempt got.

    def plan_cut(self, kind: str, arg: float, locality: Any) -> Tuple[Optional[int], int]:
        """Where a ``"split"`` (``arg``: the balance target) or a ``"move"`` (``arg``:
        at most that many keys) would cut this member's key hashes (None: nowhere),
        and the length of its chain."""
        from .topology import move_cut, sorted_key_hashes, split_cut
        s = sorted_key_hashes(self._t, locality)
        cut = split_cut(s, float(arg)) if kind == "split" else move_cut(s, int(arg))
        return cut, len(self._t.chain)

    def export_moved(self, cut: int, locality: Any) -> Optional[Tuple[List[str], Dict[str, Any]]]:
        """The entries whose keys hash at or above ``cut`` (just those), or None."""
        from .topology import export_moved
        return export_moved(self._t, int(cut), locality)

    def receive_moved(self, src_id: str, keys: List[str], entries: Dict[str, Any], now: int, reason: str,
                      start: int) -> bool:
        """Record moved entries as one ``import`` record, unless an earlier attempt of
        this move (the chain had ``start`` records when it began) already did."""
        from .topology import receive_moved_once
        landed = receive_moved_once(self._at(now), src_id, keys, entries, int(now), reason, int(start))
        if landed:
            self._applied()
        return landed

    def remove_moved(self, keys: List[str], now: int, reason: str, start: int) -> None:
        """Delete moved keys exactly as the in-process colony does (four records),
        resuming where an earlier attempt of this move stopped."""
        from .topology import remove_keys_step
        t = self._at(now)
        if not keys and len(t.chain) - int(start) <= 1:
            raise ThermogramError(f"member {t.id}: no keys to remove for the {reason} begun at record {start}")
        tc, pol = self._config
        while True:
            before = len(t.chain)
            done = remove_keys_step(t, keys, int(now), reason, int(start), tc, pol)
            if len(t.chain) != before:
                self._applied()
            if done:
                return

    def checkpoint(self) -> None:
        """Write a new snapshot and start a new journal segment."""
        self._t.checkpoint()

    def close(self) -> None:
        """Flush the journal and release the member's files."""
        if _RESIDENT.get(self._t.id) is self:
            del _RESIDENT[self._t.id]
        self._t.close()


# ----------------------------------------------------------------------------- the wire
def encode_parts(b: DeltaBatch, idx: np.ndarray, member_ids: Sequence[str]) -> List[Tuple[int, bytes, int, str]]:
    """Cut a batch by member straight into the messages: ``[(member index, record bytes,
    rows, sub-batch id)]``, rows in their order.

    The bytes are exactly the canonical bytes of the sub-batches
    :func:`routing.split_batch` makes (ids ``f"{b.id}/{member id}"``), built with a
    few array gathers over the batch's keys encoded once, instead of a
    :class:`DeltaBatch` and a per-key encoding per member. A batch that routes to one
    member is sent whole (its own id and ``prev_hash``).
    """
    n = len(b)
    first = int(idx[0])
    if bool((idx == first).all()):
        return [(first, b.canonical_bytes(), n, b.id)]
    keys = b.keys
    joined = "\x00".join(keys).encode("utf-8", "surrogatepass")
    buf = np.frombuffer(joined, np.uint8)
    seps = np.flatnonzero(buf == 0)
    if len(seps) == n - 1:
        kstart = np.empty(n, np.int64)
        kstart[0] = 0
        kstart[1:] = seps + 1
        klen = np.empty(n, np.int64)
        klen[:-1] = seps - kstart[:-1]
        klen[-1] = len(buf) - kstart[-1]
    else:  # a key holds NUL: encode key by key
        kb = [k.encode("utf-8", "surrogatepass") for k in keys]
        klen = np.fromiter(map(len, kb), np.int64, n)
        buf = np.frombuffer(b"".join(kb), np.uint8)
        kstart = np.zeros(n, np.int64)
        np.cumsum(klen[:-1], out=kstart[1:])
    groups = routing.member_groups(idx)
    offs = b.offsets
    vals16 = b.values.view(np.uint16)
    out = []
    for rows in groups:
        i = int(idx[rows[0]])
        lens = klen[rows]
        kends = np.cumsum(lens)
        gather = np.repeat(kstart[rows] - (kends - lens), lens) + np.arange(int(kends[-1]), dtype=np.int64)
        vstarts = offs[rows]
        vlens = offs[rows + 1] - vstarts
        new_offs = np.zeros(len(rows) + 1, np.int64)
        np.cumsum(vlens, out=new_offs[1:])
        vg = np.repeat(vstarts - new_offs[:-1], vlens) + np.arange(int(new_offs[-1]), dtype=np.int64)
        sid = f"{b.id}/{member_ids[i]}"
        data = encode_batch(sid, b.source, b.timestamp, len(rows), b.types[rows],
                            lens.astype(np.uint64).tobytes(), buf[gather].tobytes(), new_offs,
                            vals16[vg], b.strengths[rows], b.timestamps[rows], None)
        out.append((i, data, len(rows), sid))
    return out


# ----------------------------------------------------------------------------- the caller side
def _is_lost(e: BaseException) -> bool:
    """Whether ``e`` says the actor's worker is gone (not an error of the call itself)."""
    if isinstance(e, ThermogramError):
        return False
    name = type(e).__name__
    return (isinstance(e, (OSError, TimeoutError)) or name in ("KilledWorker", "CancelledError",
                                                               "FutureCancelledError", "CommClosedError")
            or (isinstance(e, RuntimeError) and "lost" in str(e)))


class _Failed:
    """A call that could not even be sent: ``result()`` raises why."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException):
        self.error = error

    def result(self, timeout: Any = None) -> Any:
        raise self.error


class _Outcome:
    """The answer to a member's part of a grouped message, as a future: ``result()``
    gives the value or raises the error (a lost message counts as a sent attempt)."""

    __slots__ = ("value", "error")

    def __init__(self, value: Any = None, error: Optional[BaseException] = None):
        self.value, self.error = value, error

    def result(self, timeout: Any = None) -> Any:
        if self.error is not None:
            raise self.error
        return self.value


class _MemberView:
    """What :func:`persist.colony_digest` reads of a member: its id and digest."""

    __slots__ = ("id", "_digest")

    def __init__(self, id: str, digest: str):
        self.id = id
        self._digest = digest

    def state_digest(self) -> str:
        return self._digest


def fixed_topology_config(members: int, thermal_config: Optional[ThermalConfig] = None) -> ColonyConfig:
    """The distributed backend's default config: :meth:`DistributedColony.consolidate`
    never changes the topology (no splits: ``max_members`` equal to ``members``; no
    merges: ``merge_threshold=0``; no rebalancing: ``balance_tolerance=1``)."""
    return ColonyConfig(merge_threshold=0, balance_tolerance=1.0, max_members=members,
                        thermal_config=ThermalConfig.default() if thermal_config is None else thermal_config)


def _moves_keys(config: ColonyConfig, members: int) -> bool:
    """Whether a consolidation under ``config`` may split, merge or rebalance."""
    return config.max_members > members or config.merge_threshold > 0 or config.balance_tolerance < 1.0


class DistributedColony:
    """A colony whose members live on Dask workers; the methods of
    :class:`ThermogramColony` that route, read, write and consolidate.

    Make one with :meth:`ThermogramColony.distributed` (a new colony) or
    :meth:`DistributedColony.open` (re-attach to a folder).

    Parameters
    ----------
    client : distributed.Client
        The cluster to place members on.
    folder : str or path
        A folder every worker can read and write (members' snapshots and
        journals, and the manifest).
    id, name : str
        Colony id and name (member ids are ``f"{id}-m{n}"``).
    rule, config, policy, limits, clock, locality, neuromod, neuromod_sync
        As for :class:`ThermogramColony`. The default ``config`` keeps the
        topology fixed (:func:`fixed_topology_config`); pass one with room to
        split, merge or rebalance (``max_members``, ``merge_threshold``,
        ``balance_tolerance``) to have :meth:`consolidate` move keys as the
        in-process colony does.
    members : int
        How many members (the hash space cut in equal ranges).
    fsync : str
        Journal policy of the members: ``"always"`` (default; a write is
        acknowledged only once it is on disk, so a lost worker loses nothing
        acknowledged) or ``"never"`` (faster; acknowledged writes still in a
        worker's buffer are lost with it).
    max_retries : int
        Re-creations of a lost member per call before :class:`MemberLostError`.
    """

    def __init__(self, client: Any, folder: Any, id: str, name: str, rule: Optional[PlasticityRule] = None,
                 config: Optional[ColonyConfig] = None, *, members: int = 1, clock: Optional[Clock] = None,
                 locality: Optional[Callable[[str], str]] = None, policy: Optional[ConsolidationPolicy] = None,
                 limits: Optional[Limits] = None, neuromod: Optional[NeuromodState] = None,
                 neuromod_sync: Optional[NeuromodSyncConfig] = None, fsync: str = "always",
                 max_retries: int = 2, _restore: Optional[Dict[str, Any]] = None):
        if not isinstance(id, str) or not id:
            raise ValidationError("colony id must be a non-empty str")
        if not isinstance(name, str):
            raise ValidationError(f"name must be a str, got {type(name).__name__}")
        if fsync not in ("always", "never"):
            raise ValidationError(f"fsync must be 'always' or 'never' on the distributed backend, got {fsync!r}")
        if clock is not None and not callable(clock):
            raise ValidationError("clock must be a callable returning integer nanoseconds")
        if locality is not None and not callable(locality):
            raise ValidationError("locality must be a callable key -> str")
        n0 = _count(members, "members", 1)
        self._client = client
        self._folder = os.path.abspath(os.fspath(folder))
        self._id, self._name = id, name
        self._rule = PlasticityRule.stdp_like() if rule is None else rule
        self.config = fixed_topology_config(n0) if config is None else config
        if not isinstance(self.config, ColonyConfig):
            raise ValidationError(f"config must be a ColonyConfig, got {type(self.config).__name__}")
        self._policy = ConsolidationPolicy.default() if policy is None else policy
        self.limits = Limits() if limits is None else limits
        self.clock: Clock = clock if clock is not None else time.time_ns
        self._locality = locality
        self._fsync = fsync
        self.max_retries = _count(max_retries, "max_retries")
        self._central = NeuromodState() if neuromod is None else neuromod
        self._default_sync = (NeuromodSyncConfig.default(clock=self.clock) if neuromod_sync is None
                              else neuromod_sync)
        self.recoveries: List[Tuple[str, str, str]] = []
        """``(member id, old worker, new worker)`` of every re-created member, in order."""
        self._actors: List[Any] = []
        self._futures: List[Any] = []
        self._where: List[str] = []
        self._pending: List[int] = []
        self._lost: set = set()  # ids of members an earlier call gave up on
        self._move: Optional[Dict[str, Any]] = None  # the move under way (named in the manifest)
        os.makedirs(self._folder, exist_ok=True)
        if _restore is not None:
            doc = _restore
            self.config = ColonyConfig.from_dict(doc["config"])
            self._rule = PlasticityRule.from_dict(doc["rule"])
            self._policy = ConsolidationPolicy.from_dict(doc["policy"])
            self._ids = [e["id"] for e in doc["members"]]
            self._neuro = [NeuromodState.from_dict(e["neuromod"]) for e in doc["members"]]
            self._sync = [persist._sync_from_dict(e["sync"], self.clock) for e in doc["members"]]
            self._central = NeuromodState.from_dict(doc["neuromod"])
            self._default_sync = persist._sync_from_dict(doc["default_sync"], self.clock)
            pos = {m: i for i, m in enumerate(self._ids)}
            self._bounds = [int(b) for b, _ in doc["ranges"]]
            self._owners = [pos[m] for _, m in doc["ranges"]]
            md = doc["metadata"]
            self.metadata = ColonyMetadata(id, name, int(md["created"]), int(md["modified"]),
                                           int(md["total_entries"]), int(md.get("split_count", 0)),
                                           int(md.get("merge_count", 0)))
            self._next_member = int(doc.get("next_member", len(self._ids)))
            self._move = doc.get("move")
        else:
            taken = [f for f in os.listdir(self._folder)
                     if f == DISTRIBUTED_MANIFEST or f.startswith(f"{id}-m") and ".thermo" in f]
            if taken:
                raise ValidationError(f"{self._folder} already holds a distributed colony ({sorted(taken)[0]}): "
                                      "attach to it with DistributedColony.open(client, folder), or use "
                                      "another folder")
            now = self._now()
            self.metadata = ColonyMetadata(id, name, now, now)
            self._ids = [f"{id}-m{n}" for n in range(n0)]
            self._neuro = [self._central.copy() for _ in range(n0)]
            self._sync = [self._default_sync] * n0
            self._bounds, self._owners = routing.even_ring(n0)
            self._next_member = n0
        self._bounds_np, self._owners_np = routing.ring_arrays(self._bounds, self._owners)
        now = self._now() if _restore is None else self.metadata.created
        workers = self._workers()
        futs = [self._start(i, workers[i % len(workers)], *self._birth(i, now, _restore is not None))
                for i in range(len(self._ids))]
        self._futures = [f for f, _ in futs]
        self._where = [w for _, w in futs]
        try:
            self._actors = [f.result(timeout=_START_TIMEOUT_S) for f in self._futures]
            self._pending = [int(x["pending"]) for x in self._gather("info", range(len(self._ids)))]
        except BaseException:  # close the members that did start, so their files are free again
            for f in self._futures:
                try:
                    if f.status == "finished":
                        f.result().close().result()
                    f.release()
                except Exception:  # noqa: BLE001, S110 - already failing; the first error is raised
                    pass
            raise
        if self._move is not None:  # a move cut short: finish it before anything else
            self._finish_move(self._move)
        self._write_manifest()

    # ------------------------------------------------------------------ placement
    def _workers(self, timeout: float = _START_TIMEOUT_S) -> List[str]:
        """The cluster's worker addresses, sorted; waits up to ``timeout`` seconds for
        one to be there (a lost worker's replacement may still be starting)."""
        deadline = time.monotonic() + timeout
        while True:
            ws = sorted(self._client.scheduler_info()["workers"])
            if ws:
                return ws
            if time.monotonic() >= deadline:
                raise MemberLostError(f"the cluster has had no workers to place members on for {timeout:.0f} s")
            time.sleep(0.1)

    def _spec(self, i: int) -> Dict[str, Any]:
        mid = self._ids[i]
        return {"name": mid, "id": mid, "rule": self._rule, "thermal_config": self.config.thermal_config,
                "policy": self._policy, "limits": self.limits}

    def member_path(self, ref: Union[int, str]) -> str:
        """A member's snapshot path in the shared folder (its journal lies beside it)."""
        return os.path.join(self._folder, f"{self._ids[self._index(ref)]}.thermo")

    def _birth(self, i: int, now: int, reopening: bool) -> Tuple[int, bool]:
        """``(now, must_exist)`` to start member ``i`` with: the member a split under way
        creates may not have files yet (it is born at the split's time)."""
        mv = self._move
        if mv is not None and mv["reason"] == "split" and mv["dst"] == self._ids[i]:
            return int(mv["now"]), False
        return now, reopening

    def _start(self, i: int, worker: str, now: int, must_exist: bool = True) -> Tuple[Any, str]:
        spec = dict(self._spec(i), must_exist=must_exist)
        fut = self._client.submit(MemberActor, self.member_path(i), spec, self._fsync, now,
                                  actor=True, workers=[worker], allow_other_workers=False,
                                  key=f"thermogram-member-{self._ids[i]}-{uuid.uuid4().hex}")
        return fut, worker

    def _recreate(self, i: int, cause: BaseException) -> None:
        """Start member ``i`` again on the live worker holding the fewest members,
        from its snapshot and journal, and rewrite the manifest."""
        old = self._where[i]
        if self._actors[i] is not None and old in self._workers():
            try:  # a late answer, not a dead worker: free the files before starting it again
                self._actors[i].close().result(timeout=_START_TIMEOUT_S / 4)
            except Exception:  # noqa: BLE001 - it is gone after all
                pass
        try:
            self._futures[i].release()
        except Exception:  # the future of a lost actor may already be gone
            pass
        deadline = time.monotonic() + 60.0
        last: BaseException = cause
        while time.monotonic() < deadline:
            try:
                live = self._workers()
                load = {w: 0 for w in live}
                for j, w in enumerate(self._where):
                    if j != i and w in load:
                        load[w] += 1
                target = min(live, key=lambda w: (w == old, load[w], w))
                fut, addr = self._start(i, target, *self._birth(i, self.metadata.created, True))
                try:
                    actor = fut.result(timeout=_START_TIMEOUT_S)
                    info = actor.info().result(timeout=_START_TIMEOUT_S)
                except BaseException:
                    fut.release()  # e.g. the chosen worker was itself going away
                    raise
                self._futures[i], self._actors[i], self._where[i] = fut, actor, addr
                self._pending[i] = int(info["pending"])
                self.recoveries.append((self._ids[i], old, addr))
                self._write_manifest()
                return
            except ThermogramError as e:
                if type(e).__name__ != "LockedError":  # the dying process may still hold the lock
                    raise MemberLostError(f"member {self._ids[i]!r} could not be re-created: {e}",
                                          self._ids[i]) from e
                last = e
            except Exception as e:  # noqa: BLE001 - a worker still going away
                if not _is_lost(e):
                    raise
                last = e
            time.sleep(0.2)
        raise MemberLostError(f"member {self._ids[i]!r} was lost with worker {old} and could not be "
                              f"re-created within 60 s: {last!r}", self._ids[i]) from last

    def _call(self, i: int, method: str, *args: Any, ids: Sequence[str] = ()) -> Any:
        """Call ``method`` on member ``i``, re-creating it and retrying when its worker is lost.

        ``ids``: the batch or delta ids the call writes; a retry refused with
        :class:`ReplayError` for them means the first attempt landed."""
        self._revive([i])
        return self._finish(i, method, args, self._send(i, method, args), ids)

    def _send(self, i: int, method: str, args: Tuple[Any, ...]) -> Any:
        """Start ``method`` on member ``i``: its future, or the exception that stopped the send."""
        try:
            return getattr(self._actors[i], method)(*args)
        except Exception as e:  # noqa: BLE001 - the handle of an actor whose worker is gone
            if not _is_lost(e):
                raise
            return _Failed(e)

    def _revive(self, indices: Sequence[int]) -> None:
        """Re-create the members among ``indices`` that an earlier call reported lost."""
        for i in indices:
            if self._ids[i] in self._lost:
                self._recreate(i, MemberLostError(f"member {self._ids[i]!r} was reported lost", self._ids[i]))
                self._lost.discard(self._ids[i])

    def _finish(self, i: int, method: str, args: Tuple[Any, ...], fut: Any, ids: Sequence[str],
                resend: bool = False) -> Any:
        attempt = unsent = 0
        while True:
            try:
                return fut.result()
            except ReplayError:
                if ids and (attempt or resend):
                    return None  # an earlier attempt landed before its answer was lost
                raise
            except Exception as e:  # noqa: BLE001
                if not _is_lost(e):
                    raise
                if isinstance(fut, _Failed) and unsent < 3:  # never sent (the handle knew its worker was gone)
                    unsent += 1
                    self._recreate_for(i, e, ids)
                    fut = self._send(i, method, args)
                    continue
                if attempt >= self.max_retries:
                    self._lost.add(self._ids[i])
                    raise MemberLostError(f"member {self._ids[i]!r}: {method} failed {attempt + 1} times "
                                          f"as its worker was lost ({e!r})", self._ids[i], ids) from e
                attempt += 1
                self._recreate_for(i, e, ids)
                if method == "consolidate":  # the lost attempt may have landed: the member checks
                    args = (args[0], True)
                fut = self._send(i, method, args)

    def _recreate_for(self, i: int, cause: BaseException, ids: Sequence[str]) -> None:
        """:meth:`_recreate` for a call writing ``ids``: a failure names them as unacknowledged."""
        try:
            self._recreate(i, cause)
        except MemberLostError as e:
            self._lost.add(self._ids[i])
            raise MemberLostError(str(e), self._ids[i], ids) from e

    def _gather(self, method: str, indices: Sequence[int], args: Callable[[int], Tuple[Any, ...]] = lambda i: (),
                ids: Callable[[int], Sequence[str]] = lambda i: (), resend: bool = False) -> List[Any]:
        """Call ``method`` on several members at once (one message each); results in order.
        Every member's answer is awaited before an error is raised; members lost beyond
        the retries are reported together in one :class:`MemberLostError`."""
        indices = list(indices)
        self._revive(indices)
        futs = [self._send(i, method, args(i)) for i in indices]
        return self._collect(method, indices, args, futs, ids, resend)

    def _collect(self, method: str, indices: List[int], args: Callable[[int], Tuple[Any, ...]], futs: List[Any],
                 ids: Callable[[int], Sequence[str]], resend: bool) -> List[Any]:
        """Wait for every member's answer (retrying lost ones), then raise what went wrong."""
        out: List[Any] = []
        lost: List[MemberLostError] = []
        first: Optional[BaseException] = None
        for i, f in zip(indices, futs):  # wait for every member, so each one's answer is known
            try:
                out.append(self._finish(i, method, args(i), f, ids(i), resend))
            except MemberLostError as e:
                lost.append(e)
                out.append(None)
            except Exception as e:  # noqa: BLE001 - raised once the others are done
                first = e if first is None else first
                out.append(None)
        if lost:
            raise MemberLostError("; ".join(str(e) for e in lost) + " (send the unacknowledged ids again"
                                  + (": apply_batch(batch, resend=True))" if method == "apply_batch" else ")"),
                                  lost[0].member, [x for e in lost for x in e.unacknowledged])
        if first is not None:
            raise first
        return out

    # ------------------------------------------------------------------ manifest
    def _manifest(self) -> Dict[str, Any]:
        md = self.metadata
        return {
            "format": _FORMAT, "version": _VERSION, "id": self._id, "name": self._name,
            "metadata": {"created": md.created, "modified": md.modified, "total_entries": md.total_entries,
                         "split_count": md.split_count, "merge_count": md.merge_count},
            "next_member": self._next_member, "move": self._move,
            "config": self.config.to_dict(), "rule": self._rule.to_dict(), "policy": self._policy.to_dict(),
            "locality": "prefix" if self._locality is None else "custom", "fsync": self._fsync,
            "ranges": [[b, self._ids[o]] for b, o in zip(self._bounds, self._owners)],
            "neuromod": self._central.to_dict(), "default_sync": self._default_sync.to_dict(),
            "members": [{"id": mid, "file": os.path.basename(self.member_path(i)), "worker": self._where[i],
                         "neuromod": nm.to_dict(), "sync": sc.to_dict()}
                        for i, (mid, nm, sc) in enumerate(zip(self._ids, self._neuro, self._sync))],
        }

    def _write_manifest(self) -> None:
        atomic_write(os.path.join(self._folder, DISTRIBUTED_MANIFEST), persist.manifest_bytes(self._manifest()))

    @staticmethod
    def read_manifest(folder: Any) -> Dict[str, Any]:
        """A distributed colony's manifest, checked (format, version, checksum).

        Raises
        ------
        FormatError
            Missing, not JSON, of another format or version, or the checksum differs.
        """
        path = os.path.join(os.path.abspath(os.fspath(folder)), DISTRIBUTED_MANIFEST)
        try:
            doc = json.loads(read_file(path).decode("utf-8"))
        except FileNotFoundError:
            raise FormatError(f"{folder} holds no distributed colony ({DISTRIBUTED_MANIFEST} is missing)") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise FormatError(f"{DISTRIBUTED_MANIFEST} is not valid JSON: {e}") from None
        if not isinstance(doc, dict) or doc.get("format") != _FORMAT or doc.get("version") not in (1, _VERSION):
            raise FormatError(f"{DISTRIBUTED_MANIFEST} is not a version {_VERSION} distributed colony manifest")
        body = {k: v for k, v in doc.items() if k != "checksum"}
        expect = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
        if doc.get("checksum") != expect:
            raise FormatError(f"{DISTRIBUTED_MANIFEST} checksum mismatch (corrupt or edited manifest)")
        return doc

    @classmethod
    def open(cls, client: Any, folder: Any, *, clock: Optional[Clock] = None,
             locality: Optional[Callable[[str], str]] = None, **kwargs: Any) -> "DistributedColony":
        """Re-attach to a distributed colony's folder: every member is started on
        the cluster from its snapshot and journal (other keyword arguments as
        for the constructor: ``limits``, ``max_retries``)."""
        doc = cls.read_manifest(folder)
        if doc.get("locality") == "custom" and locality is None:
            raise ValidationError("this colony was made with a custom locality: pass locality= to open it")
        kwargs.setdefault("fsync", doc.get("fsync", "always"))
        return cls(client, folder, doc["id"], doc["name"], clock=clock, locality=locality,
                   _restore=doc, **kwargs)

    # ------------------------------------------------------------------ basics
    id = property(lambda self: self._id, doc="Colony id.")
    name = property(lambda self: self._name, doc="Colony name.")
    folder = property(lambda self: self._folder, doc="The shared folder of members and manifest.")

    @property
    def member_ids(self) -> List[str]:
        """The ids of the members, in member order."""
        return list(self._ids)

    @property
    def placement(self) -> Dict[str, str]:
        """``{member id: worker address}`` (as the manifest names them)."""
        return dict(zip(self._ids, self._where))

    def member_count(self) -> int:
        """Number of members."""
        return len(self._ids)

    def _index(self, ref: Union[int, str]) -> int:
        if isinstance(ref, str):
            try:
                return self._ids.index(ref)
            except ValueError:
                raise ValidationError(f"no member with id {ref!r}") from None
        if isinstance(ref, bool) or not isinstance(ref, (int, np.integer)) or not 0 <= int(ref) < len(self._ids):
            raise ValidationError(f"no member {ref!r} (0..{len(self._ids) - 1} or an id)")
        return int(ref)

    def _now(self) -> int:
        t = self.clock()
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)):
            raise ValidationError(f"clock must return integer nanoseconds, got {t!r}")
        return int(t)

    def member_actor(self, ref: Union[int, str]) -> Any:
        """The Dask actor handle of a member (advanced use: fault injection, inspection)."""
        return self._actors[self._index(ref)]

    # ------------------------------------------------------------------ routing
    def key_hashes(self, keys: Sequence[str]) -> np.ndarray:
        """Routing hashes of many keys (uint64)."""
        return routing.key_hashes(keys, self._locality)

    def route(self, key: str) -> int:
        """Index of the member that holds (or will hold) ``key``."""
        return routing.route_key(key, self._locality, self._bounds, self._owners)

    def route_many(self, keys: Sequence[str]) -> np.ndarray:
        """Member index of each key (int64 array), vectorised."""
        return routing.assign(self.key_hashes(keys), self._bounds_np, self._owners_np)

    def ranges(self) -> List[Tuple[int, int, str]]:
        """The hash ranges: ``(start, end_exclusive, member id)``, in hash order."""
        return routing.ranges(self._bounds, self._owners, self._ids)

    # ------------------------------------------------------------------ writes
    def apply_batch(self, batch: Union[DeltaBatch, Sequence[Delta]], *, resend: bool = False) -> None:
        """Route a batch in one vectorised pass and send each member its rows as
        one message (the sub-batch's canonical record bytes); returns once every
        member has journaled its part.

        The pending limit is checked on the caller side and, when the batch
        holds deletes, every member checks its part before any applies; other
        refusals (a replayed id) leave the members that applied their parts
        applied (see the module notes).

        ``resend=True`` sends a batch again after a :class:`MemberLostError`:
        members that already hold their part (refused as a replay) count as done.
        """
        batch = DeltaBatch.coerce(batch, self.clock)
        if not len(batch):
            return
        idx = self.route_many(batch.keys)
        if batch.prev_hash is not None and not bool((idx == idx[0]).all()):
            raise ValidationError("a batch with an explicit prev_hash must route to a single member")
        parts = encode_parts(batch, idx, self._ids)
        for i, _, n_rows, _ in parts:
            self.limits.check_pending(self._pending[i], n_rows)
        now = self._now()
        msg = {i: data for i, data, _, _ in parts}
        rows = {i: r for i, _, r, _ in parts}
        subids = {i: [sid] for i, _, _, sid in parts}
        if bool((batch.types == int(DeltaType.DELETE)).any()):
            self._gather("preflight", list(msg), lambda i: (msg[i], now))
        res = self._apply_grouped(msg, now, subids, resend)
        for i, p in zip(msg, res):  # None: a retry found the part already landed
            self._pending[i] = self._pending[i] + rows[i] if p is None else int(p)
        self.metadata.modified = now

    def _apply_grouped(self, msg: Dict[int, bytes], now: int, subids: Dict[int, List[str]],
                       resend: bool) -> List[Any]:
        """Send the members' parts, one message per worker (to one of its members, which
        applies its siblings' parts in the same process); answers in the order of ``msg``.
        A lost message is retried member by member (re-created where needed)."""
        indices = list(msg)
        self._revive(indices)
        by_worker: Dict[str, List[int]] = {}
        for i in indices:
            by_worker.setdefault(self._where[i], []).append(i)
        sent = [(members, self._send(members[0], "apply_parts", ([(self._ids[i], msg[i]) for i in members], now)))
                for members in by_worker.values()]
        futs: Dict[int, Any] = {}
        for members, fut in sent:
            try:
                answers = fut.result()
            except Exception as e:  # noqa: BLE001
                if not _is_lost(e):
                    raise
                for i in members:  # sent: each part may or may not have landed
                    futs[i] = e if isinstance(fut, _Failed) else _Outcome(error=e)
                continue
            for i, (status, value) in zip(members, answers):
                if status == "absent":
                    futs[i] = None
                else:
                    futs[i] = _Outcome(value=value) if status == "ok" else _Outcome(error=value)
        for i in indices:  # not sent yet (absent there, or the handle knew its worker was gone)
            f = futs[i]
            if f is None or isinstance(f, BaseException):
                futs[i] = self._send(i, "apply_batch", (msg[i], now)) if f is None else _Failed(f)
        return self._collect("apply_batch", indices, lambda i: (msg[i], now), [futs[i] for i in indices],
                             lambda i: subids[i], resend)

    def apply_delta(self, delta: Delta) -> None:
        """Send a delta (its canonical bytes) to the member that holds its key."""
        if not isinstance(delta, Delta):
            raise ValidationError(f"apply_delta needs a Delta, got {type(delta).__name__} "
                                  "(use apply_batch for a DeltaBatch)")
        i = self.route(delta.key)
        self.limits.check_pending(self._pending[i], 1)
        now = self._now()
        r = self._call(i, "apply_delta", delta.canonical_bytes(), now, ids=[delta.id])
        self._pending[i] = self._pending[i] + 1 if r is None else int(r[1])
        self.metadata.modified = now

    def write(self, key: str, value: Any, strength: Any = None, *, state: Any = None,
              update_count: int = 0, updated_at: Optional[int] = None, source: str = "") -> Optional[Delta]:
        """Write ``key`` in the member that owns it (see :meth:`ThermogramColony.write`)."""
        i = self.route(validate_key(key))
        now = self._now()
        if state is not None:
            self._call(i, "insert_entry", key, value, Signal.MAX_POSITIVE if strength is None else strength,
                       state, update_count, updated_at, now)
            return None
        self.limits.check_pending(self._pending[i], 1)
        did = str(uuid.uuid4())
        r = self._call(i, "write", key, value, strength, source, did, now, ids=[did])
        if r is None:  # landed before a lost answer: the record is in the member's chain
            self._pending[i] += 1
            return None
        self._pending[i] = int(r[1])
        self.metadata.modified = now
        return r[0]

    def delete(self, key: str, *, source: str = "") -> Optional[Delta]:
        """Apply a Delete delta in the member that owns ``key``."""
        i = self.route(validate_key(key))
        did = str(uuid.uuid4())
        r = self._call(i, "delete", key, source, did, self._now(), ids=[did])
        if r is None:
            self._pending[i] += 1
            return None
        self._pending[i] = int(r[1])
        return r[0]

    # ------------------------------------------------------------------ reads
    def read(self, key: str) -> Optional[np.ndarray]:
        """The key's value from the member that owns it, or None."""
        return self._call(self.route(validate_key(key)), "read", key, self._now())

    def read_with_state(self, key: str) -> Optional[Tuple[np.ndarray, Signal, Any]]:
        """``(value, strength, layer)`` or None."""
        return self._call(self.route(validate_key(key)), "read_with_state", key, self._now())

    def read_many(self, keys: Sequence[str]) -> List[Optional[np.ndarray]]:
        """Values of many keys (None where missing), in order: one message per member."""
        keys = list(keys)
        if not keys:
            return []
        idx = self.route_many(keys)
        groups: Dict[int, List[int]] = {}
        for pos, i in enumerate(idx.tolist()):
            groups.setdefault(i, []).append(pos)
        now = self._now()
        res = self._gather("read_many", list(groups), lambda i: ([keys[p] for p in groups[i]], now))
        out: List[Optional[np.ndarray]] = [None] * len(keys)
        for i, vals in zip(groups, res):
            for p, v in zip(groups[i], vals):
                out[p] = v
        return out

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str) or not key:
            return False
        return self.read(key) is not None

    def keys(self) -> List[str]:
        """Every key any member holds, sorted (each member sends its keys)."""
        out: List[str] = []
        for ks in self._gather("keys", range(len(self._ids))):
            out.extend(ks)
        out.sort()
        return out

    # ------------------------------------------------------------------ sizes, digests
    def _infos(self) -> List[Dict[str, Any]]:
        return self._gather("info", range(len(self._ids)))

    def member_key_counts(self) -> List[int]:
        """Keys held by each member, in member order."""
        return [int(x["keys"]) for x in self._infos()]

    def total_entries(self) -> int:
        """Keys over all members."""
        return sum(self.member_key_counts())

    def __len__(self) -> int:
        return self.total_entries()

    def member_digests(self) -> Dict[str, str]:
        """``{member id: state digest}``, computed on the workers."""
        return {x["id"]: x["digest"] for x in self._infos()}

    def state_digest(self) -> str:
        """The colony digest, exactly as :meth:`ThermogramColony.state_digest` computes it."""
        views = [_MemberView(x["id"], x["digest"]) for x in self._infos()]
        return persist.colony_digest(self._id, self._bounds, self._owners, views, self._neuro, self._central)

    # ------------------------------------------------------------------ neuromodulation
    @property
    def neuromod(self) -> NeuromodState:
        """The colony's central neuromodulator levels (kept by the caller)."""
        return self._central

    def member_neuromod(self, ref: Union[int, str]) -> NeuromodState:
        """A member's own neuromodulator levels."""
        return self._neuro[self._index(ref)]

    def sync_neuromod(self) -> int:
        """Pull every member's levels toward the central ones (as :meth:`ThermogramColony.sync_neuromod`)."""
        return sum(bool(cfg.apply_sync(local, self._central)) for local, cfg in zip(self._neuro, self._sync))

    # ------------------------------------------------------------------ consolidation
    def consolidate(self) -> ColonyConsolidationResult:
        """Consolidate every member in place on its worker (all at once; only the
        counts come back), then split, merge and rebalance as
        :meth:`ThermogramColony.consolidate` does, when :attr:`config` allows it
        (the default config keeps the topology fixed)."""
        now = self._now()
        res = ColonyConsolidationResult()
        res.neuromod_synced = self.sync_neuromod()
        for p, d, pr, dp in self._gather("consolidate", range(len(self._ids)), lambda i: (now,)):
            res.promoted += p
            res.demoted += d
            res.pruned += pr
            res.deltas_processed += dp
        self._pending = [0] * len(self._ids)
        if _moves_keys(self.config, len(self._ids)):
            topology.run_topology_steps(self, self.member_key_counts(), res, now)
        self.metadata.modified = now
        self._write_manifest()
        return res

    # ------------------------------------------------------------------ splits, merges, moves
    def split(self, ref: Union[int, str]) -> bool:
        """Split one member now: the upper part of its hash range (from the
        ``balance_target`` quantile of its keys' hashes) goes to a new member,
        started on the live worker holding the fewest members; only those keys
        travel. False when the colony is at ``config.max_members`` or all the
        member's keys share one locality key (as :meth:`ThermogramColony.split`)."""
        i = self._index(ref)
        if len(self._ids) >= self.config.max_members:
            return False
        now = self._now()
        ok = self._split(i, now) > 0
        if ok:
            self.metadata.split_count += 1
            self.metadata.modified = now
            self._write_manifest()
        return ok

    def merge(self, keep: Union[int, str], remove: Union[int, str]) -> None:
        """Merge member ``remove`` into member ``keep`` now: its entries travel to
        ``keep``'s worker, its ranges go to ``keep``, its actor and files go away."""
        a, b = self._index(keep), self._index(remove)
        if a == b:
            raise ValidationError("cannot merge a member into itself")
        now = self._now()
        self._merge(a, b, now)
        self.metadata.merge_count += 1
        self.metadata.modified = now
        self._write_manifest()

    def rebalance(self) -> int:
        """Move hash ranges from overloaded to underloaded members now (the keys in
        them, nothing else, travel); returns keys moved."""
        now = self._now()
        self._settle(range(len(self._ids)), now)
        moved = self._rebalance(self.member_key_counts(), now)
        if moved:
            self.metadata.modified = now
            self._write_manifest()
        return moved

    def _rebalance(self, counts: List[int], now: int) -> int:
        return topology.run_rebalance(counts, self.config, len(self._ids),
                                      lambda o, u, k: self._move_some(o, u, k, now))

    def _settle(self, indices: Sequence[int], now: int) -> None:
        """Consolidate the members that have pending deltas (before moving their keys)."""
        indices = list(indices)
        todo = [i for i, x in zip(indices, self._gather("info", indices)) if x["pending"]]
        if todo:
            self._gather("consolidate", todo, lambda i: (now,))
            for i in todo:
                self._pending[i] = 0

    def _split(self, i: int, now: int) -> int:
        """Split member ``i``; returns the keys moved (0: not splittable)."""
        self._settle([i], now)
        cut, start = self._call(i, "plan_cut", "split", self.config.balance_target, self._locality)
        if cut is None:
            return 0
        mid = f"{self._id}-m{self._next_member}"
        mv = {"reason": "split", "src": self._ids[i], "dst": mid, "cut": int(cut), "now": now,
              "src_start": int(start), "dst_start": 1}  # a new member's chain: its genesis record
        self._next_member += 1
        self._ids.append(mid)
        self._neuro.append(self._neuro[i].copy())
        self._sync.append(self._sync[i])
        self._where.append(self._least_loaded(exclude=len(self._ids) - 1))
        self._actors.append(None)
        self._futures.append(None)
        self._pending.append(0)
        self._move = mv
        self._write_manifest()  # names the member and the move before its files exist
        fut, _ = self._start(len(self._ids) - 1, self._where[-1], now, must_exist=False)
        self._futures[-1] = fut
        try:
            self._actors[-1] = fut.result(timeout=_START_TIMEOUT_S)
        except Exception as e:  # noqa: BLE001
            if not _is_lost(e):
                raise
            self._lost.add(mid)  # the next call starts it elsewhere
        return self._finish_move(mv)

    def _merge(self, keep: int, remove: int, now: int) -> None:
        self._settle([keep, remove], now)
        start = int(self._call(keep, "info")["records"])
        mv = {"reason": "merge", "src": self._ids[remove], "dst": self._ids[keep], "cut": 0, "now": now,
              "src_start": None, "dst_start": start}
        self._move = mv
        self._write_manifest()
        self._finish_move(mv)

    def _move_some(self, src: int, dst: int, at_most: int, now: int) -> int:
        """Hand ``dst`` the top of ``src``'s hashes: as many keys as possible, at
        most ``at_most``, never splitting a locality group. Returns keys moved."""
        if at_most <= 0:
            return 0
        cut, start = self._call(src, "plan_cut", "move", at_most, self._locality)
        if cut is None:
            return 0
        mv = {"reason": "rebalance", "src": self._ids[src], "dst": self._ids[dst], "cut": int(cut), "now": now,
              "src_start": int(start), "dst_start": int(self._call(dst, "info")["records"])}
        self._move = mv
        self._write_manifest()
        return self._finish_move(mv)

    def _finish_move(self, mv: Dict[str, Any]) -> int:
        """Run (or finish, after a lost worker or on reopening) the move the manifest
        names: export the moving keys' entries from the giving member, record them in
        the receiving one, delete them from the giving one (not for a merge), then
        write the new ring into the manifest. Every step can be sent again. Returns
        the keys moved (counted by this run's export)."""
        s, d = self._index(mv["src"]), self._index(mv["dst"])
        now, reason = int(mv["now"]), mv["reason"]
        exported = self._call(s, "export_moved", int(mv["cut"]), self._locality)
        keys: List[str] = []
        if exported is not None:
            keys, entries = exported
            self._call(d, "receive_moved", mv["src"], keys, entries, now, reason, int(mv["dst_start"]))
        if reason != "merge" and (keys or mv.get("src_start") is not None):
            self._call(s, "remove_moved", keys, now, reason, int(mv["src_start"]))
        if reason == "merge":
            ring = routing.drop_member(self._bounds, self._owners, d, s)
            gone, gone_fut = self._actors[s], self._futures[s]
            for seq in (self._ids, self._neuro, self._sync, self._where, self._actors, self._futures, self._pending):
                del seq[s]
            self._lost.discard(mv["src"])
        else:
            ring = routing.reassign(self._bounds, self._owners, s, d, int(mv["cut"]))
        self._bounds, self._owners = ring
        self._bounds_np, self._owners_np = routing.ring_arrays(self._bounds, self._owners)
        self._move = None
        self._write_manifest()  # the move is done: the new ring, no move under way
        if reason == "merge":
            self._retire(mv["src"], gone, gone_fut)
        return len(keys)

    def _retire(self, mid: str, actor: Any, fut: Any) -> None:
        """Close a merged-away member's actor and delete its files (no manifest names them)."""
        try:
            if actor is not None:
                actor.close().result(timeout=_START_TIMEOUT_S)
        except Exception:  # noqa: BLE001 - its worker may be gone; its files go all the same
            pass
        if fut is not None:
            try:
                fut.release()
            except Exception:  # noqa: BLE001
                pass
        prefix = f"{mid}.thermo"
        for f in os.listdir(self._folder):
            if f == prefix or f.startswith(prefix + "."):
                try:
                    os.remove(os.path.join(self._folder, f))
                except OSError:
                    pass

    def _least_loaded(self, exclude: int = -1) -> str:
        """The live worker holding the fewest members (ties: the first address)."""
        live = self._workers()
        load = {w: 0 for w in live}
        for j, w in enumerate(self._where):
            if j != exclude and w in load:
                load[w] += 1
        return min(live, key=lambda w: (load[w], w))

    # ------------------------------------------------------------------ lifetime
    def checkpoint(self) -> None:
        """Every member writes a new snapshot and starts a new journal segment."""
        self._gather("checkpoint", range(len(self._ids)))

    def close(self) -> None:
        """Close every member's files and release the actors (the folder stays;
        :meth:`open` attaches to it again)."""
        try:
            self._write_manifest()
            self._gather("close", range(len(self._ids)))
        finally:
            for f in self._futures:
                try:
                    f.release()
                except Exception:  # noqa: BLE001 - the client may be closing
                    pass
            self._actors, self._futures = [], []

    def __enter__(self) -> "DistributedColony":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"DistributedColony({self._id!r}, members={len(self._ids)}, "
                f"workers={len(set(self._where))}, folder={self._folder!r})")
