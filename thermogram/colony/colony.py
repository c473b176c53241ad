"""The :class:`ThermogramColony` class: thin orchestration over the topic modules.

The colony owns its members, their neuromodulator levels and the hash ring,
and a lock over all of them; routing (:mod:`.routing`), parallel consolidation
(:mod:`.parallel`), moving keys (:mod:`.topology`) and folders
(:mod:`.persist`) are functions those modules provide.
"""
# One piece although over 500 lines: this is the colony's public API, about fifty
# methods of a few lines each (mostly docstrings) that take the lock and delegate.
# Cutting the class into mixins over several files would hide that API without
# making any method simpler; the work itself lives in the topic modules.
from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..consolidation import ConsolidationPolicy
from ..core import Thermogram
from ..delta import Clock, Delta, DeltaBatch, validate_key
from ..errors import DurabilityError, FormatError, ValidationError
from ..limits import Limits
from ..neuromod import NeuromodState, NeuromodSyncConfig
from ..plasticity import PlasticityRule
from ..signal import Signal
from ..thermal import ThermalState
from . import display, parallel, persist, routing, topology
from .config import ColonyConfig, ColonyConsolidationResult, ColonyMetadata, ColonyStats, _count
from .routing import HASH_SPACE
from .topology import member_key_count

__all__ = ["ThermogramColony", "MemberRef"]

MemberRef = Union[int, str]
"""A member, by index or id."""


class ThermogramColony:
    """Many capsules acting as one memory: they grow, split, merge, rebalance and
    share a neuromodulatory state.

    Keys are spread over member capsules (:class:`~thermogram.core.Thermogram`)
    by consistent hashing of their locality keys (see :mod:`thermogram.colony`).

    Parameters
    ----------
    id : str
        Colony id; member ids are ``f"{id}-m{n}"`` (n counts up, never reused).
    name : str
        Human-readable name.
    rule : PlasticityRule, optional
        Plasticity rule of every member (default ``PlasticityRule.stdp_like()``).
    config : ColonyConfig, optional
        Thresholds and the members' thermal config (default ``ColonyConfig()``).
    members : int
        Start with this many members, the hash space cut in equal ranges
        (default 1, as the reference; more pre-shards a colony expected to grow).
    clock : callable, optional
        Integer ns since the epoch; members read it too. During a colony
        operation (consolidate, split, merge, rebalance) every member sees the
        time the operation started, so results do not depend on thread timing.
    locality : callable, optional
        ``locality(key) -> str``; keys with equal locality keys always live in
        the same member (default :func:`prefix_locality`). A group is never split,
        so finer locality allows finer splits.
    policy : ConsolidationPolicy, optional
        Members' own consolidation triggers (default ``ConsolidationPolicy.default()``).
    limits : Limits, optional
        Members' input caps.
    executor : "threads", "serial", Executor or dask.distributed.Client
        How :meth:`consolidate` runs members (default ``"threads"``). A
        ``ThreadPoolExecutor`` consolidates in place; other executors and Dask
        clients receive members as bytes (see :func:`consolidate_member`).
    max_workers : int, optional
        Threads for ``executor="threads"`` (default: members, at most the CPU count).
    neuromod : NeuromodState, optional
        The colony's central neuromodulator levels (default baseline).
    neuromod_sync : NeuromodSyncConfig, optional
        How members follow the central levels (default ``NeuromodSyncConfig.default()``
        on the colony clock); change one member's with :meth:`set_neuromod_sync`.
    route_cache : int
        Most keys kept in the key -> member cache of :meth:`route` (default
        262,144; 0 disables it; when full it starts over). The cache is cleared
        whenever a split, merge or rebalance moves a range. It pays off for a hot
        working set; for batches, :meth:`route_many` is faster than any per-key path.
    verify_remote : bool
        Re-hash every record of capsules coming back from another process
        (default True).

    Raises
    ------
    ValidationError
        An argument has the wrong type or value: an empty ``id``, a ``rule``,
        ``config``, ``policy``, ``limits``, ``neuromod`` or ``neuromod_sync`` of
        another type, a ``clock`` or ``locality`` that is not callable, or
        ``members``, ``max_workers`` or ``route_cache`` that is not a large
        enough integer. Methods raise it too for invalid keys, unknown members
        and unknown executors; :meth:`open` raises
        :class:`~thermogram.errors.FormatError` for a damaged folder.

    See Also
    --------
    ColonyConfig : thresholds for splits, merges and rebalancing.
    consolidate_member : the pure function remote executors run.

    Examples
    --------
    A colony that splits above four keys per member:

    >>> import numpy as np
    >>> from thermogram.colony import ThermogramColony, ColonyConfig
    >>> c = ThermogramColony("mesh", "Mesh", config=ColonyConfig(split_threshold=4, merge_threshold=1))
    >>> for i in range(12):
    ...     _ = c.write(f"g{i % 6}_w{i}", np.array([0.5, -0.25]))
    >>> r = c.consolidate()
    >>> (r.splits, c.member_count(), c.total_entries())
    (1, 2, 12)
    >>> c.read("g3_w9").tolist()
    [(1, 127), (-1, 63)]

    Keys sharing a locality key (the prefix before ``_``) live in one member:

    >>> c.route("g3_w3") == c.route("g3_w9")
    True
    >>> c.route_many(["g3_w3", "g3_w9"]).tolist() == [c.route("g3_w3")] * 2
    True

    Bad arguments are refused:

    >>> ThermogramColony("", "no id")
    Traceback (most recent call last):
        ...
    thermogram.errors.ValidationError: colony id must be a non-empty str
    """

    def __init__(self, id: str, name: str, rule: Optional[PlasticityRule] = None,
                 config: Optional[ColonyConfig] = None, *, members: int = 1,
                 clock: Optional[Clock] = None, locality: Optional[Callable[[str], str]] = None,
                 policy: Optional[ConsolidationPolicy] = None, limits: Optional[Limits] = None,
                 executor: Any = "threads", max_workers: Optional[int] = None,
                 neuromod: Optional[NeuromodState] = None,
                 neuromod_sync: Optional[NeuromodSyncConfig] = None, route_cache: int = 262_144,
                 verify_remote: bool = True, _restore: Optional[Dict[str, Any]] = None):
        if not isinstance(id, str) or not id:
            raise ValidationError("colony id must be a non-empty str")
        if not isinstance(name, str):
            raise ValidationError(f"name must be a str, got {type(name).__name__}")
        rule = PlasticityRule.stdp_like() if rule is None else rule
        config = ColonyConfig() if config is None else config
        policy = ConsolidationPolicy.default() if policy is None else policy
        _check_type(rule, PlasticityRule, "rule")
        _check_type(config, ColonyConfig, "config")
        _check_type(policy, ConsolidationPolicy, "policy")
        if clock is not None and not callable(clock):
            raise ValidationError("clock must be a callable returning integer nanoseconds")
        if locality is not None and not callable(locality):
            raise ValidationError("locality must be a callable key -> str")
        if limits is not None:
            _check_type(limits, Limits, "limits")
        if neuromod is not None:
            _check_type(neuromod, NeuromodState, "neuromod")
        if neuromod_sync is not None:
            _check_type(neuromod_sync, NeuromodSyncConfig, "neuromod_sync")
        n0 = _count(members, "members", 1)
        self._id = id
        self._name = name
        self._rule = rule
        self.config = config
        """The :class:`ColonyConfig` (assign a new one to change thresholds)."""
        self._policy = policy
        self.limits = Limits() if limits is None else limits
        self.clock: Clock = clock if clock is not None else time.time_ns
        self._locality = locality
        self.executor = executor
        """How :meth:`consolidate` runs members when it is not given an executor."""
        self.max_workers = None if max_workers is None else _count(max_workers, "max_workers", 1)
        self.verify_remote = bool(verify_remote)
        self._route_cache_max = _count(route_cache, "route_cache")
        self._cache: Dict[str, int] = {}
        self._lock = threading.RLock()
        self._frozen: Optional[int] = None
        self._path: Optional[str] = None
        self._central = NeuromodState() if neuromod is None else neuromod
        self._default_sync = (NeuromodSyncConfig.default(clock=self.clock) if neuromod_sync is None
                              else neuromod_sync)
        self._members: List[Thermogram] = []
        self._neuro: List[NeuromodState] = []
        self._sync: List[NeuromodSyncConfig] = []
        self._bounds: List[int] = [0]
        self._owners: List[int] = [0]
        if _restore is not None:
            self._restore(_restore)
            return
        now = self._now()
        self.metadata = ColonyMetadata(id, name, now, now)
        self._next_member = 0
        self._frozen = now
        try:
            for _ in range(n0):
                self._new_member(None)
        finally:
            self._frozen = None
        self._bounds, self._owners = routing.even_ring(n0)
        self._topology_changed()

    # ------------------------------------------------------------------ basics
    id = property(lambda self: self._id, doc="Colony id.")
    name = property(lambda self: self._name, doc="Colony name.")
    rule = property(lambda self: self._rule, doc="Plasticity rule of new members.")
    policy = property(lambda self: self._policy, doc="Consolidation policy of new members.")

    @property
    def members(self) -> Tuple[Thermogram, ...]:
        """The member capsules, in member order (read them; change them through the colony)."""
        return tuple(self._members)

    @property
    def member_ids(self) -> List[str]:
        """The ids of the members, in member order (a new list each time)."""
        return [m.id for m in self._members]

    @property
    def path(self) -> Optional[str]:
        """The folder this colony was last saved to or opened from."""
        return self._path

    def member_count(self) -> int:
        """Number of members."""
        with self._lock:
            return len(self._members)

    def member(self, ref: MemberRef) -> Thermogram:
        """A member by index or id."""
        with self._lock:
            return self._members[self._index(ref)]

    def _index(self, ref: MemberRef) -> int:
        if isinstance(ref, str):
            for i, m in enumerate(self._members):
                if m.id == ref:
                    return i
            raise ValidationError(f"no member with id {ref!r}")
        if isinstance(ref, bool) or not isinstance(ref, (int, np.integer)):
            raise ValidationError(f"a member is given by index or id, got {type(ref).__name__}")
        i = int(ref)
        if not 0 <= i < len(self._members):
            raise ValidationError(f"member index {i} out of range (0..{len(self._members) - 1})")
        return i

    def _now(self) -> int:
        t = self.clock()
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)):
            raise ValidationError(f"clock must return integer nanoseconds, got {t!r}")
        return int(t)

    def _member_clock(self) -> int:
        f = self._frozen
        return f if f is not None else self._now()

    def _new_member(self, like: Optional[int]) -> int:
        n = self._next_member
        self._next_member += 1
        mid = f"{self._id}-m{n}"
        m = Thermogram(mid, self._rule, thermal_config=self.config.thermal_config, policy=self._policy,
                       clock=self._member_clock, id=mid, limits=self.limits)
        self._members.append(m)
        if like is None:
            self._neuro.append(self._central.copy())
            self._sync.append(self._default_sync)
        else:
            self._neuro.append(self._neuro[like].copy())
            self._sync.append(self._sync[like])
        return len(self._members) - 1

    @contextmanager
    def _frozen_at(self) -> Iterator[int]:
        """``with self._frozen_at() as now:`` every member reads ``now`` (the time
        the block started) until the block ends."""
        now = self._now()
        self._frozen = now
        try:
            yield now
        finally:
            self._frozen = None

    # ------------------------------------------------------------------ routing
    def _topology_changed(self) -> None:
        self._bounds_np, self._owners_np = routing.ring_arrays(self._bounds, self._owners)
        self._cache = {}

    def _set_ring(self, ring: Tuple[List[int], List[int]]) -> None:
        self._bounds, self._owners = ring
        self._topology_changed()

    def key_hash(self, key: str) -> int:
        """The routing hash of ``key``: XXH3-64 of its locality key."""
        return routing.key_hash(key, self._locality)

    def key_hashes(self, keys: Sequence[str]) -> np.ndarray:
        """Routing hashes of many keys (uint64), computed in one kernel call."""
        return routing.key_hashes(keys, self._locality)

    def route(self, key: str) -> int:
        """Index of the member that holds (or will hold) ``key``.

        Looks in the key -> member cache first, then hashes the locality key
        and bisects the range starts.
        """
        with self._lock:
            m = self._cache.get(key)
            if m is not None:
                return m
            m = routing.route_key(key, self._locality, self._bounds, self._owners)
            if self._route_cache_max:
                if len(self._cache) >= self._route_cache_max:
                    self._cache = {}
                self._cache[key] = m
            return m

    def route_many(self, keys: Sequence[str]) -> np.ndarray:
        """Member index of each key (int64 array), vectorised: one hashing
        kernel and one range-assignment kernel over all keys."""
        with self._lock:
            return routing.assign(self.key_hashes(keys), self._bounds_np, self._owners_np)

    def member_for(self, key: str) -> Thermogram:
        """The member capsule that holds (or will hold) ``key``."""
        with self._lock:
            return self._members[self.route(key)]

    def ranges(self) -> List[Tuple[int, int, str]]:
        """The hash ranges: ``(start, end_exclusive, member id)``, in hash order."""
        with self._lock:
            return routing.ranges(self._bounds, self._owners, self.member_ids)

    def hash_share(self, ref: MemberRef) -> float:
        """Fraction of the hash space a member owns."""
        with self._lock:
            i = self._index(ref)
            return sum(e - b for b, e, mid in self.ranges() if mid == self._members[i].id) / HASH_SPACE

    # ------------------------------------------------------------------ reads
    def read(self, key: str) -> Optional[np.ndarray]:
        """The key's value (pending changes first, then the hottest layer), or None."""
        with self._lock:
            return self._members[self.route(key)].read(key)

    def read_with_strength(self, key: str) -> Optional[Tuple[np.ndarray, Signal]]:
        """``(value, strength)`` or None."""
        with self._lock:
            return self._members[self.route(key)].read_with_strength(key)

    def read_with_state(self, key: str) -> Optional[Tuple[np.ndarray, Signal, ThermalState]]:
        """``(value, strength, layer)`` or None; a pending change reports ``HOT``."""
        with self._lock:
            return self._members[self.route(key)].read_with_state(key)

    def read_many(self, keys: Sequence[str]) -> List[Optional[np.ndarray]]:
        """Values of many keys (None where missing), in order; routed in one vectorised pass."""
        keys = list(keys)
        with self._lock:
            members = self._members
            return [members[i].read(k) for k, i in zip(keys, self.route_many(keys).tolist())]

    def read_layer(self, key: str, state: Any) -> Optional[Dict[str, Any]]:
        """The key's consolidated entry in one layer (``key, value, strength,
        update_count, updated_at, layer``), or None."""
        with self._lock:
            return self._members[self.route(key)].entry(key, state)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str) or not key:
            return False
        with self._lock:
            return key in self._members[self.route(key)]

    def keys(self) -> List[str]:
        """Every key any member holds, sorted."""
        with self._lock:
            out: List[str] = []
            for m in self._members:
                out.extend(m.keys())
            out.sort()
            return out

    def __len__(self) -> int:
        return self.total_entries()

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    # ------------------------------------------------------------------ writes
    def apply_delta(self, delta: Delta) -> None:
        """Apply a delta to the member that holds its key (see :meth:`Thermogram.apply_delta`)."""
        if not isinstance(delta, Delta):
            raise ValidationError(f"apply_delta needs a Delta, got {type(delta).__name__} "
                                  "(use apply_batch for a DeltaBatch)")
        with self._lock:
            self._members[self.route(delta.key)].apply_delta(delta)
            self.metadata.modified = self._now()

    def apply_batch(self, batch: Union[DeltaBatch, Sequence[Delta]]) -> None:
        """Apply a columnar batch: routed in one vectorised pass, split per member
        (rows keep their order), one record in each member that receives rows.

        Every member's part is checked (deletes of missing keys, pending limits)
        before any member changes, so a refused batch changes nothing.
        """
        with self._lock:
            batch = DeltaBatch.coerce(batch, self.clock)
            n = len(batch)
            if not n:
                return
            idx = self.route_many(batch.keys)
            first = int(idx[0])
            if len(self._members) == 1 or bool((idx == first).all()):
                parts = [(first, batch)]
            else:
                if batch.prev_hash is not None:
                    raise ValidationError("a batch with an explicit prev_hash must route to a single member")
                parts = routing.split_batch(batch, idx, self.member_ids)
            for i, sub in parts:
                topology.preflight(self._members[i], sub)
            for i, sub in parts:
                self._members[i].apply_batch(sub)
            self.metadata.modified = self._now()

    def write(self, key: str, value: Any, strength: Any = None, *, state: Any = None,
              update_count: int = 0, updated_at: Optional[int] = None, source: str = "") -> Optional[Delta]:
        """Write ``key`` in the member that owns it.

        Without ``state``: an Update delta (Create if the key is new), pending
        until the next consolidation; returns the delta. With ``state`` (the
        reference's ``write``): place a consolidated entry directly in that
        layer with ``strength`` (default ``Signal.MAX_POSITIVE``), ``update_count``
        and ``updated_at``; returns None.
        """
        with self._lock:
            m = self._members[self.route(validate_key(key))]
            if state is None:
                d = m.write(key, value, strength, source=source)
            else:
                m.insert_entry(key, value, Signal.MAX_POSITIVE if strength is None else strength, state,
                               update_count=update_count, updated_at=updated_at)
                d = None
            self.metadata.modified = self._now()
            return d

    def delete(self, key: str, *, source: str = "") -> Delta:
        """Apply a Delete delta in the member that owns ``key``."""
        with self._lock:
            return self._members[self.route(validate_key(key))].delete(key, source=source)

    def reinforce(self, key: str, amount: Any) -> bool:
        """Strengthen the key's hottest consolidated entry (see :meth:`Thermogram.reinforce`)."""
        with self._lock:
            return self._members[self.route(validate_key(key))].reinforce(key, amount)

    def weaken(self, key: str, amount: Any) -> bool:
        """Weaken the key's hottest consolidated entry (see :meth:`Thermogram.weaken`)."""
        with self._lock:
            return self._members[self.route(validate_key(key))].weaken(key, amount)

    def apply_decay(self) -> None:
        """Decay every member's strengths by layer."""
        with self._lock, self._frozen_at():
            for m in self._members:
                m.apply_decay()

    # ------------------------------------------------------------------ sizes
    def total_entries(self) -> int:
        """Keys over all members (a key held in two layers of a member counts once)."""
        with self._lock:
            return sum(member_key_count(m) for m in self._members)

    def member_key_counts(self) -> List[int]:
        """Keys held by each member, in member order."""
        with self._lock:
            return [member_key_count(m) for m in self._members]

    def stats(self) -> ColonyStats:
        """Member count, keys, entries per layer, splits and merges so far."""
        with self._lock:
            layers = np.zeros(4, np.int64)
            pending = 0
            for m in self._members:
                c = m.layer_counts()
                layers += [c["hot"], c["warm"], c["cool"], c["cold"]]
                pending += m.pending_count
            return ColonyStats(len(self._members), self.total_entries(), *(int(x) for x in layers),
                               self.metadata.split_count, self.metadata.merge_count, pending)

    # ------------------------------------------------------------------ neuromodulation
    @property
    def neuromod(self) -> NeuromodState:
        """The colony's central neuromodulator levels (change them in place:
        ``colony.neuromod.reward(0.2)``); members follow at :meth:`sync_neuromod`."""
        return self._central

    @neuromod.setter
    def neuromod(self, state: NeuromodState) -> None:
        self._central = NeuromodState.coerce(state)

    def member_neuromod(self, ref: MemberRef) -> NeuromodState:
        """A member's own neuromodulator levels (e.g. for its SNN's ``process``)."""
        with self._lock:
            return self._neuro[self._index(ref)]

    def neuromod_sync(self, ref: MemberRef) -> NeuromodSyncConfig:
        """How a member follows the central levels."""
        with self._lock:
            return self._sync[self._index(ref)]

    def set_neuromod_sync(self, ref: MemberRef, config: NeuromodSyncConfig) -> None:
        """Set how a member follows the central levels: ``NeuromodSyncConfig.full_sync()``
        (copy), ``default()`` (partial: 10% of the gap) or ``independent()``."""
        _check_type(config, NeuromodSyncConfig, "config")
        with self._lock:
            self._sync[self._index(ref)] = config

    def sync_neuromod(self) -> int:
        """Pull every member's levels toward the central ones by its sync config;
        returns how many members synced (also done by :meth:`consolidate`)."""
        with self._lock:
            return sum(bool(cfg.apply_sync(local, self._central)) for local, cfg in zip(self._neuro, self._sync))

    # ------------------------------------------------------------------ consolidation
    def consolidate(self, executor: Any = None) -> ColonyConsolidationResult:
        """Consolidate every member, then split, merge and rebalance.

        1. Members' neuromodulator levels follow the central ones (:meth:`sync_neuromod`).
        2. Every member consolidates (fold pending deltas, prune, thermal
           transitions), in parallel by ``executor`` (default :attr:`executor`).
        3. Members over ``split_threshold`` keys split (while under ``max_members``).
        4. Members under ``merge_threshold`` keys merge, two at a time.
        5. Overloaded members hand hash ranges to underloaded ones.

        No key is lost or duplicated by steps 3–5: values, strengths, counts,
        timestamps and layers move unchanged. Every record carries the time
        the call started.
        """
        with self._lock, self._frozen_at() as now:
            res = ColonyConsolidationResult()
            res.neuromod_synced = self.sync_neuromod()
            for p, d, pr, dp in self._consolidate_members(list(range(len(self._members))), now, executor):
                res.promoted += p
                res.demoted += d
                res.pruned += pr
                res.deltas_processed += dp
            topology.run_topology_steps(self, [member_key_count(m) for m in self._members], res, now)
            self.metadata.modified = now
            return res

    def _consolidate_members(self, indices: List[int], now: int, executor: Any) -> List[Tuple[int, int, int, int]]:
        def install(k: int, new: Thermogram) -> None:
            self._members[indices[k]] = new

        return parallel.consolidate_members(
            [self._members[i] for i in indices], now, self.executor if executor is None else executor,
            max_workers=self.max_workers, member_clock=self._member_clock,
            verify_remote=self.verify_remote, install=install)

    def _settle(self, indices: Sequence[int], now: int) -> None:
        """Consolidate the members that have pending deltas (before moving their keys)."""
        todo = [i for i in indices if self._members[i].pending_count]
        if todo:
            self._consolidate_members(todo, now, "serial")

    # ------------------------------------------------------------------ splits, merges, moves
    def split(self, ref: MemberRef) -> bool:
        """Split one member now: the upper part of its hash range (from the
        ``balance_target`` quantile of its keys' hashes) goes to a new member.

        False when the colony is at ``max_members`` or all the member's keys
        share one locality key (a locality group is never split).
        """
        with self._lock:
            i = self._index(ref)
            if len(self._members) >= self.config.max_members:
                return False
            with self._frozen_at() as now:
                ok = self._split(i, now) > 0
                if ok:
                    self.metadata.split_count += 1
                    self.metadata.modified = now
                return ok

    def merge(self, keep: MemberRef, remove: MemberRef) -> None:
        """Merge member ``remove`` into member ``keep`` now (all its ranges and keys)."""
        with self._lock:
            a, b = self._index(keep), self._index(remove)
            if a == b:
                raise ValidationError("cannot merge a member into itself")
            with self._frozen_at() as now:
                self._merge(a, b, now)
                self.metadata.merge_count += 1
                self.metadata.modified = now

    def rebalance(self) -> int:
        """Move hash ranges from overloaded to underloaded members now; returns keys moved."""
        with self._lock, self._frozen_at() as now:
            self._settle(range(len(self._members)), now)
            moved = self._rebalance([member_key_count(m) for m in self._members], now)
            if moved:
                self.metadata.modified = now
            return moved

    def _rebalance(self, counts: List[int], now: int) -> int:
        return topology.run_rebalance(counts, self.config, len(self._members),
                                      lambda o, u, k: self._move_some(o, u, k, now))

    def _split(self, i: int, now: int) -> int:
        """Split member ``i``; returns the keys moved (0: not splittable)."""
        self._settle([i], now)
        cut = topology.split_cut(topology.sorted_key_hashes(self._members[i], self._locality),
                                 self.config.balance_target)
        if cut is None:
            return 0
        j = self._new_member(i)
        moved = self._transfer(i, j, cut, now, "split", remove_from_source=True)
        self._set_ring(routing.reassign(self._bounds, self._owners, i, j, cut))
        return moved

    def _merge(self, keep: int, remove: int, now: int) -> None:
        self._settle([keep, remove], now)
        self._transfer(remove, keep, 0, now, "merge", remove_from_source=False)
        ring = routing.drop_member(self._bounds, self._owners, keep, remove)
        del self._members[remove], self._neuro[remove], self._sync[remove]
        self._set_ring(ring)

    def _move_some(self, src: int, dst: int, at_most: int, now: int) -> int:
        """Hand ``dst`` the top of ``src``'s hashes: as many keys as possible, at
        most ``at_most``, never splitting a locality group. Returns keys moved."""
        if at_most <= 0:
            return 0
        cut = topology.move_cut(topology.sorted_key_hashes(self._members[src], self._locality), at_most)
        if cut is None:
            return 0
        moved = self._transfer(src, dst, cut, now, "rebalance", remove_from_source=True)
        self._set_ring(routing.reassign(self._bounds, self._owners, src, dst, cut))
        return moved

    def _transfer(self, src_i: int, dst_i: int, cut: int, now: int, reason: str,
                  remove_from_source: bool) -> int:
        return topology.transfer(self._members[src_i], self._members[dst_i], cut, now, reason,
                                 remove_from_source, self._locality)

    # ------------------------------------------------------------------ digests
    def member_digests(self) -> Dict[str, str]:
        """``{member id: state digest}``."""
        with self._lock:
            return {m.id: m.state_digest() for m in self._members}

    def state_digest(self) -> str:
        """SHA-256 (hex) over the colony's logical state: the hash ranges and their
        members, every member's :meth:`~Thermogram.state_digest`, and the central
        and per-member neuromodulator levels."""
        with self._lock:
            return persist.colony_digest(self._id, self._bounds, self._owners, self._members,
                                         self._neuro, self._central)

    # ------------------------------------------------------------------ persistence
    def _manifest(self, files: List[Tuple[str, str]]) -> Dict[str, Any]:
        return persist.manifest(
            colony_id=self._id, name=self._name, metadata=self.metadata, next_member=self._next_member,
            config=self.config, rule=self._rule, policy=self._policy,
            custom_locality=self._locality is not None, bounds=self._bounds, owners=self._owners,
            members=self._members, files=files, neuro=self._neuro, sync=self._sync,
            central=self._central, default_sync=self._default_sync)

    def save(self, folder: Any = None) -> str:
        """Save the colony as a folder: each member as ``member-<sha256>.thermo``
        (written atomically, skipped when that file already exists), then the
        ``colony.json`` manifest (atomically, last), then files no manifest
        names are deleted. A crash at any point leaves the previous colony.
        Returns the folder."""
        with self._lock:
            if folder is None:
                if self._path is None:
                    raise ValidationError("save() needs a folder (the colony was never saved or opened)")
                folder = self._path
            path = os.fspath(folder)
            if os.path.exists(path) and not os.path.isdir(path):
                raise ValidationError(f"cannot save a colony to {path}: it exists and is not a folder "
                                      "(a colony is saved as a folder of member files)")
            try:
                self._path = persist.save_folder(folder, self._members, self._manifest)
            except (FileExistsError, NotADirectoryError) as e:  # a path component is a file
                raise ValidationError(f"cannot save a colony to {path}: {e}") from None
            except DurabilityError:
                raise
            except OSError as e:  # the folder keeps the previous save: its manifest is written last
                raise DurabilityError(f"saving the colony to {path} failed ({e}); the folder still "
                                      "opens to the previous save") from e
            return self._path

    @staticmethod
    def distributed(client: Any, folder: Any, id: str, name: str, rule: Optional[PlasticityRule] = None,
                    config: Optional[ColonyConfig] = None, **kwargs: Any) -> "Any":
        """A colony whose members live on the workers of a Dask cluster.

        Each member is a Dask actor owning a file-backed capsule in ``folder``
        (which every worker must reach); calls are routed here and only each
        member's part travels. Returns a
        :class:`~thermogram.colony.distributed.DistributedColony`, which has the
        routing, read, write, consolidation, split, merge, rebalance and digest
        methods of this class (by default its config keeps the topology fixed). Keyword
        arguments: ``members``, ``clock``, ``locality``, ``policy``, ``limits``,
        ``neuromod``, ``neuromod_sync``, ``fsync``, ``max_retries``.
        """
        from .distributed import DistributedColony
        return DistributedColony(client, folder, id, name, rule, config, **kwargs)

    @classmethod
    def open(cls, folder: Any, *, clock: Optional[Clock] = None,
             locality: Optional[Callable[[str], str]] = None, verify: bool = True,
             **kwargs: Any) -> "ThermogramColony":
        """Open a colony saved by :meth:`save`.

        Checks the manifest's checksum, each member file's SHA-256, each
        member's id and state digest, and (``verify=True``, default) every
        record hash and that every key routes to the member holding it.
        A colony saved with a custom ``locality`` needs it passed again.
        Other keyword arguments are as for the constructor (``executor``,
        ``limits``, ``max_workers``, ...).
        """
        folder = os.path.abspath(os.fspath(folder))
        if not os.path.isdir(folder):
            raise FormatError(f"{folder} holds no colony (not a folder)")
        with persist.folder_lock(folder, shared=True):  # never a save half done
            doc = persist.read_manifest(folder)
            if doc.get("locality") == "custom" and locality is None:
                raise ValidationError("this colony was saved with a custom locality: pass locality= to open it")
            return cls(doc["id"], doc["name"], clock=clock, locality=locality,
                       _restore={"doc": doc, "folder": folder, "verify": verify}, **kwargs)

    def _restore(self, r: Dict[str, Any]) -> None:
        st = persist.restore(r["doc"], r["folder"], colony_id=self._id, name=self._name, verify=r["verify"],
                             clock=self.clock, member_clock=self._member_clock, limits=self.limits)
        self.config, self._rule, self._policy, self.metadata = st.config, st.rule, st.policy, st.metadata
        self._next_member, self._central, self._default_sync = st.next_member, st.central, st.default_sync
        self._members, self._neuro, self._sync = st.members, st.neuro, st.sync
        self._set_ring((st.bounds, st.owners))
        self._path = r["folder"]
        if r["verify"]:
            persist.check_routes(self._members, self.route_many)

    # ------------------------------------------------------------------ display
    def __repr__(self) -> str:
        st = self.stats()
        return (f"ThermogramColony({self._id!r}, members={st.member_count}, keys={st.total_entries}, "
                f"hot={st.hot_entries}, warm={st.warm_entries}, cool={st.cool_entries}, "
                f"cold={st.cold_entries}, splits={st.split_count}, merges={st.merge_count})")

    def _repr_html_(self) -> str:
        with self._lock:
            return display.colony_html(self._id, self._name, self._members, self._neuro, self._central,
                                       [self.hash_share(i) for i in range(len(self._members))],
                                       self.metadata)


def _check_type(value: Any, kind: type, name: str) -> None:
    if not isinstance(value, kind):
        raise ValidationError(f"{name} must be a {kind.__name__}, got {type(value).__name__}")


LOCK_FREE_SAFE: Dict[str, str] = {
    "__iter__": "iterates a snapshot taken by keys(), which holds the lock",
    "__len__": "calls total_entries(), which holds the lock",
    "__repr__": "calls stats(), which holds the lock",
    "key_hash": "a pure function of the key and the locality, fixed at construction",
    "key_hashes": "a pure function of the keys and the locality, fixed at construction",
    "open": "builds a new colony (no shared state)",
    "distributed": "builds a new colony (no shared state)",
}
"""Public methods of :class:`ThermogramColony` that do not take its lock themselves, and why
that is safe; every other public method holds the lock for its whole run."""
