"""Colonies: many capsules acting as one memory.

A :class:`ThermogramColony` spreads keys over member capsules
(:class:`~thermogram.core.Thermogram`) by consistent hashing. Each key has a
*locality key* (by default its prefix before the first ``_``, so
``layer3_w_17`` and ``layer3_w_18`` stay together); XXH3-64 of the locality
key falls in exactly one hash range, and each range belongs to one member.
Routing is a binary search over a handful of range starts: O(1) per key and
independent of how many keys the colony holds.

The colony grows and shrinks in :meth:`~ThermogramColony.consolidate`:
members over ``split_threshold`` keys split their hash range in two at the
``balance_target`` quantile of their keys' hashes (the median by default),
members under ``merge_threshold`` merge, and overloaded members hand a hash
range to underloaded ones. Every move is recorded in the chains of both
members (an ``import`` record on the receiving side; a delete batch folded by
a consolidation that neither promotes, demotes nor prunes on the giving side),
so each member can still be replayed and verified on its own.

Members consolidate in parallel: on threads (the kernels release the GIL),
on any ``concurrent.futures`` executor, or on a Dask cluster when given a
``dask.distributed.Client``; the last two ship members as ``.thermo`` bytes
to :func:`consolidate_member`, a pure function, so every path reaches the
same state digests.

A colony is saved as a folder: one ``.thermo`` per member, named by the
SHA-256 of its bytes, plus a ``colony.json`` manifest written atomically last.
A crash at any point of a save leaves the previous manifest and every file it
names, i.e. the previous consistent colony.
"""
from __future__ import annotations

import bisect
import hashlib
import html
import json
import os
import re
import threading
import time
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from dataclasses import replace as _dc_replace
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import xxhash

from .canonical import lp, u64
from .codec import atomic_write, fsync_dir
from .consolidation import ConsolidationPolicy
from .core import Thermogram
from .delta import Clock, Delta, DeltaBatch, DeltaType, validate_key
from .errors import FormatError, ThermogramError, ValidationError
from .kernels import codec as _kcodec
from .kernels import colony as _kcol
from .limits import Limits
from .neuromod import NeuromodState, NeuromodSyncConfig
from .plasticity import PlasticityRule
from .signal import SIGNAL, Signal
from .store import FREE
from .thermal import USIZE_MAX, ThermalConfig, ThermalState

__all__ = ["ColonyConfig", "ColonyConsolidationResult", "ColonyStats", "ColonyMetadata",
           "ThermogramColony", "consolidate_member", "prefix_locality", "locality_hash",
           "MANIFEST_NAME"]

HASH_SPACE = 2 ** 64
MANIFEST_NAME = "colony.json"
"""File name of a saved colony's manifest."""
_MANIFEST_FORMAT = "thermogram-colony"
_MANIFEST_VERSION = 1
_MEMBER_FILE = re.compile(r"^member-[0-9a-f]{32}\.thermo$")
_CUT = ord("_")
_xxh3_64 = xxhash.xxh3_64_intdigest
_EMPTY_SIGNALS = np.zeros(0, SIGNAL)


# ----------------------------------------------------------------------------- configuration
def _count(v: Any, name: str, minimum: int = 0) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or int(v) < minimum:
        raise ValidationError(f"{name} must be an integer >= {minimum}, got {v!r}")
    return int(v)


def _f32(v: Any, name: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise ValidationError(f"{name} must be a real number, got {type(v).__name__}")
    f = np.float32(v)
    if not np.isfinite(f):
        raise ValidationError(f"{name} must be finite, got {v!r}")
    return float(f)


@dataclass(frozen=True)
class ColonyConfig:
    """How a colony grows, shrinks and balances (the reference's fields and defaults).

    Parameters
    ----------
    split_threshold : int
        A member holding more keys than this splits in two at the next
        :meth:`ThermogramColony.consolidate` (default 10,000).
    merge_threshold : int
        Members holding fewer keys than this merge, two at a time (default 1,000).
    balance_target : float
        Where a split cuts a member's keys, as a quantile of their locality
        hashes: 0.5 (default) gives two halves.
    balance_tolerance : float
        Rebalancing moves keys only from members above ``target * (1 + tolerance)``
        to members below ``target * (1 - tolerance)``, where ``target`` is the
        mean keys per member (default 0.3).
    max_members : int
        No split beyond this many members (default 16).
    thermal_config : ThermalConfig
        Thermal configuration of new members (default ``ThermalConfig.default()``).

    Examples
    --------
    >>> ColonyConfig.fast_learner().split_threshold
    5000
    >>> ColonyConfig().replace(max_members=4).max_members
    4
    """

    split_threshold: int = 10_000
    merge_threshold: int = 1_000
    balance_target: float = 0.5
    balance_tolerance: float = 0.3
    max_members: int = 16
    thermal_config: ThermalConfig = field(default_factory=ThermalConfig.default)

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731
        set_("split_threshold", _count(self.split_threshold, "split_threshold"))
        set_("merge_threshold", _count(self.merge_threshold, "merge_threshold"))
        set_("max_members", _count(self.max_members, "max_members", 1))
        bt = _f32(self.balance_target, "balance_target")
        if not 0.0 < bt < 1.0:
            raise ValidationError(f"balance_target must be in (0, 1), got {self.balance_target!r}")
        set_("balance_target", bt)
        tol = _f32(self.balance_tolerance, "balance_tolerance")
        if tol < 0.0:
            raise ValidationError(f"balance_tolerance must be >= 0, got {self.balance_tolerance!r}")
        set_("balance_tolerance", tol)
        if not isinstance(self.thermal_config, ThermalConfig):
            raise ValidationError(f"thermal_config must be a ThermalConfig, got {type(self.thermal_config).__name__}")

    @classmethod
    def default(cls) -> "ColonyConfig":
        """Split above 10,000 keys, merge below 1,000, tolerance 0.3, at most 16 members."""
        return cls()

    @classmethod
    def fast_learner(cls) -> "ColonyConfig":
        """Smaller, faster members: split above 5,000, merge below 500, tolerance 0.25,
        at most 8 members, ``ThermalConfig.fast_learner()``."""
        return cls(5_000, 500, 0.5, 0.25, 8, ThermalConfig.fast_learner())

    def replace(self, **changes: Any) -> "ColonyConfig":
        """A copy with some fields changed."""
        return _dc_replace(self, **changes)

    def to_dict(self) -> Dict[str, Any]:
        """Plain, JSON-ready dict."""
        return {"split_threshold": self.split_threshold, "merge_threshold": self.merge_threshold,
                "balance_target": self.balance_target, "balance_tolerance": self.balance_tolerance,
                "max_members": self.max_members, "thermal_config": self.thermal_config.to_dict()}

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "ColonyConfig":
        """Inverse of :meth:`to_dict`."""
        if not isinstance(d, dict):
            raise ValidationError(f"colony config must be a mapping, got {type(d).__name__}")
        try:
            return cls(d["split_threshold"], d["merge_threshold"], d["balance_target"],
                       d["balance_tolerance"], d["max_members"], ThermalConfig.from_dict(d["thermal_config"]))
        except KeyError as e:
            raise ValidationError(f"colony config is missing field {e}") from None


@dataclass
class ColonyConsolidationResult:
    """What one :meth:`ThermogramColony.consolidate` did (summed over members)."""

    promoted: int = 0
    """Entries moved to a colder layer."""
    demoted: int = 0
    """Entries moved to a hotter layer."""
    pruned: int = 0
    """Entries dropped (weak hot entries, and weak entries of any layer after the transitions)."""
    rebalanced: int = 0
    """Keys moved from overloaded to underloaded members."""
    splits: int = 0
    merges: int = 0
    deltas_processed: int = 0
    """Pending deltas folded into the members."""
    neuromod_synced: int = 0
    """Members whose neuromodulator levels were pulled toward the colony's."""

    def to_dict(self) -> Dict[str, int]:
        """The counters as a plain dict (a shallow copy of the fields)."""
        return dict(self.__dict__)


@dataclass
class ColonyStats:
    """Sizes of a colony (see :meth:`ThermogramColony.stats`)."""

    member_count: int
    total_entries: int
    """Keys over all members (as the reference: a key in two layers of a member counts once)."""
    hot_entries: int
    warm_entries: int
    cool_entries: int
    cold_entries: int
    split_count: int
    merge_count: int
    pending_deltas: int = 0


@dataclass
class ColonyMetadata:
    """Identity and lifetime counters of a colony (times are int ns, UTC)."""

    id: str
    name: str
    created: int
    modified: int
    total_entries: int = 0
    split_count: int = 0
    merge_count: int = 0

    def to_dict(self) -> Dict[str, Any]:
        """The fields as a plain dict (a shallow copy of the fields)."""
        return dict(self.__dict__)


# ----------------------------------------------------------------------------- locality
def prefix_locality(key: str) -> str:
    """The default locality key: ``key`` up to its first ``_`` (all of it if none).

    >>> prefix_locality("layer3_w_17")
    'layer3'
    """
    return key.partition("_")[0]


def locality_hash(part: str) -> int:
    """XXH3-64 (seed 0) of a locality key's UTF-8 bytes: the colony's routing hash."""
    return xxhash.xxh3_64_intdigest(part.encode("utf-8", "surrogatepass"))


class _FixedClock:
    """A clock that always reads ``now`` (picklable, for workers)."""

    __slots__ = ("now",)

    def __init__(self, now: int):
        self.now = int(now)

    def __call__(self) -> int:
        return self.now


def _consolidate_report(data: bytes, now_ns: int) -> Tuple[bytes, Tuple[int, int, int, int]]:
    t = Thermogram.from_bytes(data, clock=_FixedClock(now_ns), verify=False)
    r = t.consolidate()
    return t.to_bytes(), (r.promoted, r.demoted, r.entries_pruned + r.transition_pruned, r.deltas_processed)


def consolidate_member(data: bytes, now_ns: int) -> bytes:
    """Consolidate one capsule given as ``.thermo`` bytes, at the fixed time ``now_ns``.

    A pure function (the same bytes and time give the same bytes back), run
    on Dask workers or other processes by :meth:`ThermogramColony.consolidate`.

    Parameters
    ----------
    data : bytes
        The capsule, as :meth:`Thermogram.to_bytes` writes it.
    now_ns : int
        The time every record of the consolidation carries.

    Returns
    -------
    bytes
        The consolidated capsule.
    """
    return _consolidate_report(data, now_ns)[0]


def _is_dask_client(obj: Any) -> bool:
    mod = type(obj).__module__ or ""
    return mod.startswith("distributed") and hasattr(obj, "scatter") and hasattr(obj, "gather")


def _member_key_count(m: Thermogram) -> int:
    """Keys a member holds (fast when nothing is pending)."""
    with m._lock:
        if m.pending_count:
            return len(m.keys())
        s = m._store
        live = s.live()
        kids = s.kid[: s.nrows][live != FREE]
        if not len(kids):
            return 0
        seen = np.zeros(len(s.keys), np.bool_)
        seen[kids] = True
        return int(np.count_nonzero(seen))


# ----------------------------------------------------------------------------- the colony
MemberRef = Union[int, str]


class ThermogramColony:
    """Many capsules acting as one memory: they grow, split, merge, rebalance and
    share a neuromodulatory state.

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

    Examples
    --------
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
        if not isinstance(rule, PlasticityRule):
            raise ValidationError(f"rule must be a PlasticityRule, got {type(rule).__name__}")
        if not isinstance(config, ColonyConfig):
            raise ValidationError(f"config must be a ColonyConfig, got {type(config).__name__}")
        if not isinstance(policy, ConsolidationPolicy):
            raise ValidationError(f"policy must be a ConsolidationPolicy, got {type(policy).__name__}")
        if clock is not None and not callable(clock):
            raise ValidationError("clock must be a callable returning integer nanoseconds")
        if locality is not None and not callable(locality):
            raise ValidationError("locality must be a callable key -> str")
        if limits is not None and not isinstance(limits, Limits):
            raise ValidationError(f"limits must be a Limits, got {type(limits).__name__}")
        if neuromod is not None and not isinstance(neuromod, NeuromodState):
            raise ValidationError(f"neuromod must be a NeuromodState, got {type(neuromod).__name__}")
        if neuromod_sync is not None and not isinstance(neuromod_sync, NeuromodSyncConfig):
            raise ValidationError(f"neuromod_sync must be a NeuromodSyncConfig, got {type(neuromod_sync).__name__}")
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
        self._bounds = [i * HASH_SPACE // n0 for i in range(n0)]
        self._owners = list(range(n0))
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
        return len(self._members)

    def member(self, ref: MemberRef) -> Thermogram:
        """A member by index or id."""
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

    # ------------------------------------------------------------------ routing
    def _topology_changed(self) -> None:
        self._bounds_np = np.array(self._bounds, dtype=np.uint64)
        self._owners_np = np.array(self._owners, dtype=np.int64)
        self._cache = {}

    def _locality_of(self, key: str) -> str:
        if self._locality is None:
            return key.partition("_")[0]
        part = self._locality(key)
        if not isinstance(part, str):
            raise ValidationError(f"locality({key!r}) must return a str, got {type(part).__name__}")
        return part

    def key_hash(self, key: str) -> int:
        """The routing hash of ``key``: XXH3-64 of its locality key."""
        validate_key(key)
        return locality_hash(self._locality_of(key))

    def key_hashes(self, keys: Sequence[str]) -> np.ndarray:
        """Routing hashes of many keys (uint64), computed in one kernel call."""
        if not isinstance(keys, (list, tuple)):
            keys = list(keys)
        n = len(keys)
        out = np.empty(n, np.uint64)
        if not n:
            return out
        if self._locality is None:
            parts, cut = keys, _CUT
        else:
            parts, cut = [self._locality_of(k) for k in keys], -1
        try:
            joined = "\x00".join(parts)
        except TypeError:
            for k in parts:
                validate_key(k, "locality key" if parts is not keys else "key")
            raise
        if joined.count("\x00") != n - 1:  # a key holds NUL: hash one by one
            for i, p in enumerate(parts):
                out[i] = locality_hash(p if cut < 0 else p.partition("_")[0])
            return out
        buf = np.frombuffer(joined.encode("utf-8", "surrogatepass"), np.uint8)
        long_idx = np.empty(n, np.int64)
        with np.errstate(over="ignore"):  # XXH3 wraps modulo 2**64 (matters only without the JIT)
            n_long = _kcol.locality_hashes(buf, n, cut, _kcol.SECRET, out, long_idx)
        for i in long_idx[:n_long].tolist():
            p = parts[i]
            out[i] = locality_hash(p if cut < 0 else p.partition("_")[0])
        return out

    def route(self, key: str) -> int:
        """Index of the member that holds (or will hold) ``key``.

        Looks in the key -> member cache first, then hashes the locality key
        and bisects the range starts.
        """
        m = self._cache.get(key)
        if m is not None:
            return m
        if type(key) is not str or not key:
            validate_key(key)
        part = key.partition("_")[0] if self._locality is None else self._locality_of(key)
        try:
            h = _xxh3_64(part.encode("utf-8"))
        except UnicodeEncodeError:
            validate_key(key)  # a lone surrogate: raises ValidationError
            raise
        m = self._owners[bisect.bisect_right(self._bounds, h) - 1]
        if self._route_cache_max:
            if len(self._cache) >= self._route_cache_max:
                self._cache = {}
            self._cache[key] = m
        return m

    def route_many(self, keys: Sequence[str]) -> np.ndarray:
        """Member index of each key (int64 array), vectorised: one hashing
        kernel and one range-assignment kernel over all keys."""
        h = self.key_hashes(keys)
        out = np.empty(len(h), np.int64)
        _kcol.assign_ranges(h, self._bounds_np, self._owners_np, out)
        return out

    def member_for(self, key: str) -> Thermogram:
        """The member capsule that holds (or will hold) ``key``."""
        return self._members[self.route(key)]

    def ranges(self) -> List[Tuple[int, int, str]]:
        """The hash ranges: ``(start, end_exclusive, member id)``, in hash order."""
        ends = self._bounds[1:] + [HASH_SPACE]
        return [(b, e, self._members[o].id) for b, e, o in zip(self._bounds, ends, self._owners)]

    def hash_share(self, ref: MemberRef) -> float:
        """Fraction of the hash space a member owns."""
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
            if not isinstance(batch, DeltaBatch):
                if isinstance(batch, (list, tuple)):
                    batch = DeltaBatch.from_deltas(batch, clock=self.clock)
                else:
                    raise ValidationError("apply_batch needs a DeltaBatch or a list of Delta, "
                                          f"got {type(batch).__name__}")
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
                parts = self._split_batch(batch, idx)
            for i, sub in parts:
                self._preflight(self._members[i], sub)
            for i, sub in parts:
                self._members[i].apply_batch(sub)
            self.metadata.modified = self._now()

    def _split_batch(self, b: DeltaBatch, idx: np.ndarray) -> List[Tuple[int, DeltaBatch]]:
        order = np.argsort(idx, kind="stable")
        sorted_idx = idx[order]
        cuts = np.flatnonzero(np.diff(sorted_idx)) + 1
        groups = np.split(order, cuts)
        offs = b.offsets
        vals16 = b.values.view(np.uint16)
        out = []
        for rows in groups:
            i = int(idx[rows[0]])
            starts = offs[rows]
            lens = offs[rows + 1] - starts
            new_offs = np.zeros(len(rows) + 1, np.int64)
            np.cumsum(lens, out=new_offs[1:])
            total = int(new_offs[-1])
            if total:
                gather = np.repeat(starts - new_offs[:-1], lens) + np.arange(total, dtype=np.int64)
                values = vals16[gather].view(SIGNAL)
            else:
                values = _EMPTY_SIGNALS.copy()
            keys = b.keys
            sub = DeltaBatch([keys[r] for r in rows.tolist()], b.types[rows], values, new_offs,
                             b.strengths[rows], b.timestamps[rows], source=b.source,
                             id=f"{b.id}/{self._members[i].id}", timestamp=b.timestamp, _trusted=True)
            out.append((i, sub))
        return out

    @staticmethod
    def _preflight(m: Thermogram, sub: DeltaBatch) -> None:
        m.limits.check_pending(m.pending_count, len(sub))
        if m.semantics == "fixed":
            m._check_batch_deletes(sub)  # the capsule's own all-or-nothing delete check

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
        with self._lock:
            self._frozen = self._now()
            try:
                for m in self._members:
                    m.apply_decay()
            finally:
                self._frozen = None

    # ------------------------------------------------------------------ sizes
    def total_entries(self) -> int:
        """Keys over all members (a key held in two layers of a member counts once)."""
        with self._lock:
            return sum(_member_key_count(m) for m in self._members)

    def member_key_counts(self) -> List[int]:
        """Keys held by each member, in member order."""
        with self._lock:
            return [_member_key_count(m) for m in self._members]

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
        return self._neuro[self._index(ref)]

    def neuromod_sync(self, ref: MemberRef) -> NeuromodSyncConfig:
        """How a member follows the central levels."""
        return self._sync[self._index(ref)]

    def set_neuromod_sync(self, ref: MemberRef, config: NeuromodSyncConfig) -> None:
        """Set how a member follows the central levels: ``NeuromodSyncConfig.full_sync()``
        (copy), ``default()`` (partial: 10% of the gap) or ``independent()``."""
        if not isinstance(config, NeuromodSyncConfig):
            raise ValidationError(f"config must be a NeuromodSyncConfig, got {type(config).__name__}")
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
        with self._lock:
            now = self._now()
            self._frozen = now
            try:
                res = ColonyConsolidationResult()
                res.neuromod_synced = self.sync_neuromod()
                for p, d, pr, dp in self._consolidate_members(list(range(len(self._members))), now, executor):
                    res.promoted += p
                    res.demoted += d
                    res.pruned += pr
                    res.deltas_processed += dp
                counts = [_member_key_count(m) for m in self._members]
                res.splits = self._check_and_split(counts, now)
                res.merges = self._check_and_merge(counts, now)
                res.rebalanced = self._rebalance(counts, now)
                self.metadata.total_entries = sum(counts)
                self.metadata.modified = now
                return res
            finally:
                self._frozen = None

    def _consolidate_members(self, indices: List[int], now: int, executor: Any) -> List[Tuple[int, int, int, int]]:
        ex = self.executor if executor is None else executor
        members = [self._members[i] for i in indices]
        if not members:
            return []
        if isinstance(ex, str):
            if ex not in ("serial", "threads"):
                raise ValidationError(f"executor must be 'threads', 'serial', an Executor or a Dask client, "
                                      f"got {ex!r}")
            if ex == "serial" or len(members) == 1:
                return [self._consolidate_here(m) for m in members]
            workers = self.max_workers or min(len(members), os.cpu_count() or 1)
            with ThreadPoolExecutor(max_workers=workers) as pool:
                return list(pool.map(self._consolidate_here, members))
        if isinstance(ex, ThreadPoolExecutor):
            return list(ex.map(self._consolidate_here, members))
        datas = [m.to_bytes() for m in members]
        if _is_dask_client(ex):
            remote = ex.scatter(datas)
            futs = ex.map(_consolidate_report, remote, [now] * len(datas), pure=False)
            out = ex.gather(futs)
        elif isinstance(ex, Executor):
            out = [f.result() for f in [ex.submit(_consolidate_report, d, now) for d in datas]]
        else:
            raise ValidationError("executor must be 'threads', 'serial', an Executor or a Dask client, "
                                  f"got {type(ex).__name__}")
        counts = []
        for i, (data, c) in zip(indices, out):
            old = self._members[i]
            new = Thermogram.from_bytes(data, clock=self._member_clock, verify=self.verify_remote)
            if new.id != old.id:
                raise FormatError(f"member {old.id!r} came back as {new.id!r}")
            new.limits = old.limits
            self._members[i] = new
            counts.append(tuple(c))
        return counts

    @staticmethod
    def _consolidate_here(m: Thermogram) -> Tuple[int, int, int, int]:
        r = m.consolidate()
        return r.promoted, r.demoted, r.entries_pruned + r.transition_pruned, r.deltas_processed

    def _settle(self, indices: Sequence[int], now: int) -> None:
        """Consolidate the members that have pending deltas (before moving their keys)."""
        todo = [i for i in indices if self._members[i].pending_count]
        if todo:
            self._consolidate_members(todo, now, "serial")

    def _check_and_split(self, counts: List[int], now: int) -> int:
        cfg = self.config
        if len(self._members) >= cfg.max_members:
            return 0
        over = [i for i, c in enumerate(counts) if c > cfg.split_threshold]
        splits = 0
        for i in reversed(over):
            if len(self._members) >= cfg.max_members:
                break
            moved = self._split(i, now)
            if moved:
                counts[i] -= moved
                counts.append(moved)
                splits += 1
        self.metadata.split_count += splits
        return splits

    def _check_and_merge(self, counts: List[int], now: int) -> int:
        merges = 0
        while len(self._members) > 1:
            small = [i for i, c in enumerate(counts) if c < self.config.merge_threshold]
            if len(small) < 2:
                break
            a, b = small[0], small[1]
            self._merge(a, b, now)
            counts[a] += counts[b]
            del counts[b]
            merges += 1
        self.metadata.merge_count += merges
        return merges

    def _rebalance(self, counts: List[int], now: int) -> int:
        n = len(self._members)
        if n <= 1:
            return 0
        total = sum(counts)
        if total == 0:
            return 0
        target = total // n
        tol = int(np.float32(target) * np.float32(self.config.balance_tolerance))
        over = [i for i, c in enumerate(counts) if c > target + tol]
        under = [i for i, c in enumerate(counts) if c < max(0, target - tol)]
        moved = 0
        for o in over:
            for u in under:
                if counts[o] <= target + tol:
                    break
                if counts[u] >= target:
                    continue
                k = self._move_some(o, u, min(counts[o] - target, target - counts[u]), now)
                counts[o] -= k
                counts[u] += k
                moved += k
        return moved

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
            now = self._now()
            self._frozen = now
            try:
                ok = self._split(i, now) > 0
                if ok:
                    self.metadata.split_count += 1
                    self.metadata.modified = now
                return ok
            finally:
                self._frozen = None

    def merge(self, keep: MemberRef, remove: MemberRef) -> None:
        """Merge member ``remove`` into member ``keep`` now (all its ranges and keys)."""
        with self._lock:
            a, b = self._index(keep), self._index(remove)
            if a == b:
                raise ValidationError("cannot merge a member into itself")
            now = self._now()
            self._frozen = now
            try:
                self._merge(a, b, now)
                self.metadata.merge_count += 1
                self.metadata.modified = now
            finally:
                self._frozen = None

    def rebalance(self) -> int:
        """Move hash ranges from overloaded to underloaded members now; returns keys moved."""
        with self._lock:
            now = self._now()
            self._frozen = now
            try:
                self._settle(range(len(self._members)), now)
                moved = self._rebalance([_member_key_count(m) for m in self._members], now)
                if moved:
                    self.metadata.modified = now
                return moved
            finally:
                self._frozen = None

    def _sorted_key_hashes(self, i: int) -> np.ndarray:
        s = self._members[i]._store
        live = s.live()
        kids = s.kid[: s.nrows][live != FREE]
        if not len(kids):
            return np.zeros(0, np.uint64)
        seen = np.zeros(len(s.keys), np.bool_)
        seen[kids] = True
        uk = np.flatnonzero(seen)
        kh = self.key_hashes(s.keys.take(uk.tolist()))
        kh.sort()
        return kh

    def _split(self, i: int, now: int) -> int:
        """Split member ``i``; returns the keys moved (0: not splittable)."""
        self._settle([i], now)
        s = self._sorted_key_hashes(i)
        n = len(s)
        if n < 2:
            return 0
        k = min(max(int(round(n * self.config.balance_target)), 1), n - 1)
        left = int(np.searchsorted(s, s[k], "left"))
        right = int(np.searchsorted(s, s[k], "right"))
        cands = [c for c in (left, right) if 0 < c < n]
        if not cands:
            return 0
        c = min(cands, key=lambda c: (abs(c - k), c))
        cut = int(s[c])
        j = self._new_member(i)
        moved = self._transfer(i, j, cut, now, "split", remove_from_source=True)
        self._reassign(i, j, cut)
        return moved

    def _merge(self, keep: int, remove: int, now: int) -> None:
        self._settle([keep, remove], now)
        self._transfer(remove, keep, 0, now, "merge", remove_from_source=False)
        self._owners = [keep if o == remove else o for o in self._owners]
        self._owners = [o - 1 if o > remove else o for o in self._owners]
        del self._members[remove], self._neuro[remove], self._sync[remove]
        self._coalesce()
        self._topology_changed()

    def _move_some(self, src: int, dst: int, at_most: int, now: int) -> int:
        """Hand ``dst`` the top of ``src``'s hashes: as many keys as possible, at
        most ``at_most``, never splitting a locality group. Returns keys moved."""
        if at_most <= 0:
            return 0
        s = self._sorted_key_hashes(src)
        n = len(s)
        c = max(n - at_most, 1)
        if c >= n:
            return 0
        if int(np.searchsorted(s, s[c], "left")) != c:
            c = int(np.searchsorted(s, s[c], "right"))
            if c >= n:
                return 0
        cut = int(s[c])
        moved = self._transfer(src, dst, cut, now, "rebalance", remove_from_source=True)
        self._reassign(src, dst, cut)
        return moved

    def _reassign(self, src: int, dst: int, cut: int) -> None:
        """Every range of ``src`` at or above ``cut`` goes to ``dst``."""
        b, o = self._bounds, self._owners
        r = bisect.bisect_right(b, cut) - 1
        if b[r] != cut:
            b.insert(r + 1, cut)
            o.insert(r + 1, o[r])
        for j in range(len(b)):
            if b[j] >= cut and o[j] == src:
                o[j] = dst
        self._coalesce()
        self._topology_changed()

    def _coalesce(self) -> None:
        b, o = [self._bounds[0]], [self._owners[0]]
        for start, own in zip(self._bounds[1:], self._owners[1:]):
            if own != o[-1]:
                b.append(start)
                o.append(own)
        self._bounds, self._owners = b, o

    def _transfer(self, src_i: int, dst_i: int, cut: int, now: int, reason: str,
                  remove_from_source: bool) -> int:
        """Copy every entry of ``src`` whose key hashes at or above ``cut`` into
        ``dst`` (one ``import`` record), then delete those keys from ``src``.
        Returns the number of keys moved."""
        src, dst = self._members[src_i], self._members[dst_i]
        with src._lock, dst._lock:
            s = src._store
            rows = np.flatnonzero(s.live() != FREE)
            if not len(rows):
                return 0
            row_kids = s.kid[rows]
            if cut > 0:
                uk = np.unique(row_kids)
                kh = np.zeros(len(s.keys), np.uint64)
                kh[uk] = self.key_hashes(s.keys.take(uk.tolist()))
                rows = rows[kh[row_kids] >= np.uint64(cut)]
                if not len(rows):
                    return 0
                row_kids = s.kid[rows]
            keys = s.keys.take(row_kids.tolist())
            moved_keys = list(dict.fromkeys(keys))
            di, ds = dst._store.keys, dst._store.slot
            for k in moved_keys:
                kid = di.get(k)
                if kid is not None and (ds[kid] >= 0).any():
                    raise ThermogramError(f"cannot move {k!r} from {src.id} to {dst.id}: both hold it")
            vlen = s.vlen[rows].copy()
            vals = np.empty(int(vlen.sum()), SIGNAL)
            _kcodec.gather_values(s.voff, s.vlen, rows, s.vals.view(np.uint16), vals.view(np.uint16))
            entries = {"keys": keys, "layer": s.layer[rows].copy(), "pol": s.pol[rows].copy(),
                       "mag": s.mag[rows].copy(), "count": s.count[rows].copy(), "ts": s.ts[rows].copy(),
                       "values": vals, "lengths": vlen}
            meta = {"last_consolidation": dst.last_consolidation, "total_deltas": dst.total_deltas,
                    "total_consolidations": dst.total_consolidations, "custom": dst.custom, "pending": 0,
                    "source": f"colony-{reason}:{src.id}"}
            dst._run_op("import", {"entries": entries, "metadata": meta}, now)
            if remove_from_source:
                self._remove_keys(src, moved_keys, now, reason)
            return len(moved_keys)

    @staticmethod
    def _remove_keys(m: Thermogram, keys: List[str], now: int, reason: str) -> None:
        """Delete ``keys`` from every layer of ``m`` and nothing else: a delete
        batch folded by a consolidation under a thermal config that neither
        promotes, demotes nor prunes (set and restored by two ``configure`` records)."""
        tc, pol = m.thermal_config, m.policy
        still = tc.replace(min_observations=(USIZE_MAX,) * 4, allow_demotion=(False,) * 4,
                           prune_threshold=Signal.ZERO)
        no_prune = ConsolidationPolicy.manual_only(enable_pruning=False, enable_merging=pol.enable_merging)
        n = len(keys)
        batch = DeltaBatch.from_arrays(keys, (_EMPTY_SIGNALS, np.zeros(n + 1, np.int64)), None,
                                       DeltaType.DELETE, now, source=f"colony-{reason}",
                                       id=f"{m.id}:{reason}:{len(m.chain)}")
        m.configure(thermal_config=still, policy=no_prune)
        try:
            m.apply_batch(batch)
            m.consolidate()
        finally:
            m.configure(thermal_config=tc, policy=pol)

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
            h = hashlib.sha256(b"thermogram:colony:v1\x00")
            h.update(lp(self._id.encode("utf-8", "surrogatepass")))
            h.update(u64(len(self._bounds)))
            for b, o in zip(self._bounds, self._owners):
                h.update(u64(b) + lp(self._members[o].id.encode("utf-8", "surrogatepass")))
            h.update(u64(len(self._members)))
            for m, nm in zip(self._members, self._neuro):
                h.update(lp(m.id.encode("utf-8", "surrogatepass")) + bytes.fromhex(m.state_digest()))
                h.update(nm.as_array().tobytes())
            h.update(self._central.as_array().tobytes())
            return h.hexdigest()

    # ------------------------------------------------------------------ persistence
    def _manifest(self, files: List[Tuple[str, str]]) -> Dict[str, Any]:
        md = self.metadata
        return {
            "format": _MANIFEST_FORMAT, "version": _MANIFEST_VERSION,
            "id": self._id, "name": self._name,
            "metadata": {"created": md.created, "modified": md.modified, "total_entries": md.total_entries,
                         "split_count": md.split_count, "merge_count": md.merge_count},
            "next_member": self._next_member,
            "config": self.config.to_dict(), "rule": self._rule.to_dict(), "policy": self._policy.to_dict(),
            "locality": "prefix" if self._locality is None else "custom",
            "ranges": [[b, self._members[o].id] for b, o in zip(self._bounds, self._owners)],
            "neuromod": self._central.to_dict(),
            "default_sync": self._default_sync.to_dict(),
            "members": [{"id": m.id, "file": f, "sha256": sha, "state_digest": m.state_digest(),
                         "neuromod": nm.to_dict(), "sync": sc.to_dict()}
                        for m, (f, sha), nm, sc in zip(self._members, files, self._neuro, self._sync)],
        }

    @staticmethod
    def _manifest_bytes(doc: Dict[str, Any]) -> bytes:
        body = json.dumps(doc, sort_keys=True, separators=(",", ":"))
        doc = dict(doc, checksum=hashlib.sha256(body.encode()).hexdigest())
        return json.dumps(doc, sort_keys=True, indent=1).encode()

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
            folder = os.path.abspath(os.fspath(folder))
            os.makedirs(folder, exist_ok=True)
            files = []
            for m in self._members:
                data = m.to_bytes()
                sha = hashlib.sha256(data).hexdigest()
                fname = f"member-{sha[:32]}.thermo"
                path = os.path.join(folder, fname)
                if not _file_has(path, sha):
                    atomic_write(path, data)
                files.append((fname, sha))
            atomic_write(os.path.join(folder, MANIFEST_NAME), self._manifest_bytes(self._manifest(files)))
            keep = {f for f, _ in files}
            removed = False
            for f in os.listdir(folder):
                stale_member = _MEMBER_FILE.match(f) and f not in keep
                stale_tmp = f.startswith((".member-", "." + MANIFEST_NAME + ".")) and f.endswith(".tmp")
                if stale_member or stale_tmp:
                    try:
                        os.unlink(os.path.join(folder, f))
                        removed = True
                    except OSError:
                        pass
            if removed:
                fsync_dir(folder)
            self._path = folder
            return folder

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
        mpath = os.path.join(folder, MANIFEST_NAME)
        try:
            with open(mpath, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            raise FormatError(f"{folder} holds no colony ({MANIFEST_NAME} is missing)") from None
        try:
            doc = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
            raise FormatError(f"{MANIFEST_NAME} is not valid JSON: {e}") from None
        if not isinstance(doc, dict) or doc.get("format") != _MANIFEST_FORMAT:
            raise FormatError(f"{MANIFEST_NAME} is not a thermogram colony manifest")
        if doc.get("version") != _MANIFEST_VERSION:
            raise FormatError(f"unsupported colony manifest version {doc.get('version')!r}")
        body = {k: v for k, v in doc.items() if k != "checksum"}
        expect = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
        if doc.get("checksum") != expect:
            raise FormatError(f"{MANIFEST_NAME} checksum mismatch (corrupt or edited manifest)")
        if doc.get("locality") == "custom" and locality is None:
            raise ValidationError("this colony was saved with a custom locality: pass locality= to open it")
        c = cls(doc["id"], doc["name"], clock=clock, locality=locality,
                _restore={"doc": doc, "folder": folder, "verify": verify}, **kwargs)
        return c

    def _restore(self, r: Dict[str, Any]) -> None:
        doc, folder, verify = r["doc"], r["folder"], r["verify"]
        try:
            self.config = ColonyConfig.from_dict(doc["config"])
            self._rule = PlasticityRule.from_dict(doc["rule"])
            self._policy = ConsolidationPolicy.from_dict(doc["policy"])
            md = doc["metadata"]
            self.metadata = ColonyMetadata(self._id, self._name, int(md["created"]), int(md["modified"]),
                                           int(md["total_entries"]), int(md["split_count"]),
                                           int(md["merge_count"]))
            self._next_member = int(doc["next_member"])
            self._central = NeuromodState.from_dict(doc["neuromod"])
            self._default_sync = _sync_from_dict(doc["default_sync"], self.clock)
            ids = []
            for e in doc["members"]:
                path = os.path.join(folder, os.path.basename(str(e["file"])))
                try:
                    with open(path, "rb") as f:
                        data = f.read()
                except FileNotFoundError:
                    raise FormatError(f"member file {e['file']} named by the manifest is missing") from None
                if hashlib.sha256(data).hexdigest() != e["sha256"]:
                    raise FormatError(f"member file {e['file']} does not match its SHA-256 in the manifest")
                m = Thermogram.from_bytes(data, clock=self._member_clock, verify=verify)
                if m.id != e["id"]:
                    raise FormatError(f"member file {e['file']} holds {m.id!r}, the manifest says {e['id']!r}")
                if m.state_digest() != e["state_digest"]:
                    raise FormatError(f"member {m.id!r}: state digest differs from the manifest")
                m.limits = self.limits
                self._members.append(m)
                self._neuro.append(NeuromodState.from_dict(e["neuromod"]))
                self._sync.append(_sync_from_dict(e["sync"], self.clock))
                ids.append(m.id)
            pos = {mid: i for i, mid in enumerate(ids)}
            bounds = [int(b) for b, _ in doc["ranges"]]
            owners = [pos[mid] for _, mid in doc["ranges"]]
        except (KeyError, TypeError, ValueError) as e:
            if isinstance(e, ValidationError):
                raise FormatError(f"colony manifest: {e}") from None
            raise FormatError(f"colony manifest is malformed: {e!r}") from None
        if not bounds or bounds[0] != 0 or any(a >= b for a, b in zip(bounds, bounds[1:])) \
                or bounds[-1] >= HASH_SPACE or set(owners) != set(range(len(ids))):
            raise FormatError("colony manifest: hash ranges are not a partition among the members")
        self._bounds, self._owners = bounds, owners
        self._topology_changed()
        self._path = folder
        if verify:
            for i, m in enumerate(self._members):
                ks = m.keys()
                if ks and not bool((self.route_many(ks) == i).all()):
                    raise FormatError(f"member {m.id!r} holds keys that route elsewhere "
                                      "(wrong locality function, or a corrupt manifest)")

    # ------------------------------------------------------------------ display
    def __repr__(self) -> str:
        st = self.stats()
        return (f"ThermogramColony({self._id!r}, members={st.member_count}, keys={st.total_entries}, "
                f"hot={st.hot_entries}, warm={st.warm_entries}, cool={st.cool_entries}, "
                f"cold={st.cold_entries}, splits={st.split_count}, merges={st.merge_count})")

    def _repr_html_(self) -> str:
        with self._lock:
            esc = html.escape
            rows = []
            tot = np.zeros(6, np.int64)
            for i, m in enumerate(self._members):
                c = m.layer_counts()
                keys = _member_key_count(m)
                vals = [c["hot"], c["warm"], c["cool"], c["cold"], keys, m.pending_count]
                tot += vals
                lv = " / ".join(f"{x:.2f}" for x in self._neuro[i].as_array())
                rows.append(f"<tr><td>{esc(m.id)}</td><td style='text-align:right'>{100 * self.hash_share(i):.1f}%</td>"
                            + "".join(f"<td style='text-align:right'>{v}</td>" for v in vals)
                            + f"<td>{lv}</td></tr>")
            rows.append("<tr><td><b>total</b></td><td></td>"
                        + "".join(f"<td style='text-align:right'><b>{int(v)}</b></td>" for v in tot)
                        + "<td></td></tr>")
            central = " · ".join(f"{k} {v:.3f}" for k, v in self._central.to_dict().items())
            return (f"<div class='thermogram-colony'><b>ThermogramColony</b> {esc(repr(self._name))} "
                    f"<small>({esc(self._id)}: {len(self._members)} members, "
                    f"{self.metadata.split_count} splits, {self.metadata.merge_count} merges)</small>"
                    "<table><tr><th>member</th><th>hash share</th><th>hot</th><th>warm</th><th>cool</th>"
                    "<th>cold</th><th>keys</th><th>pending</th><th>DA / 5-HT / NE / ACh</th></tr>"
                    f"{''.join(rows)}</table>central neuromod: {central}</div>")


def _sync_from_dict(d: Dict[str, Any], clock: Optional[Clock]) -> NeuromodSyncConfig:
    return NeuromodSyncConfig(bool(d["enabled"]), float(d["sync_rate"]), int(d["sync_interval_ms"]), clock)


def _file_has(path: str, sha: str) -> bool:
    """Whether ``path`` exists with exactly the content of SHA-256 ``sha``."""
    try:
        with open(path, "rb") as f:
            h = hashlib.sha256()
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest() == sha
    except OSError:
        return False
