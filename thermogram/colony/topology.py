"""Topology: splitting, merging and rebalancing members, i.e. moving keys between them.

A split cuts a member's hash range at the ``balance_target`` quantile of its
keys' hashes and hands the upper part to a new member; a merge hands all of a
member's ranges to another; a rebalance hands the top of an overloaded
member's hashes to an underloaded one. A locality group (keys sharing one
locality hash) never straddles a cut.

Every move is recorded in the chains of both members: an ``import`` record on
the receiving side, and on the giving side a delete batch folded by a
consolidation that neither promotes, demotes nor prunes, so each member can
still be replayed and verified on its own. Values, strengths, counts,
timestamps and layers move unchanged.

The planning functions (:func:`run_splits`, :func:`run_merges`,
:func:`run_rebalance`) decide *what* moves from key counts and call back into
the colony, which owns the members and the ring.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np

from ..consolidation import ConsolidationPolicy
from ..core import Thermogram, capsule_parts, check_batch, record_import
from ..delta import DeltaBatch, DeltaType
from ..errors import ThermogramError
from ..signal import SIGNAL, Signal
from ..store import FREE, EntryStore
from ..thermal import USIZE_MAX
from .config import ColonyConfig
from .routing import Locality, key_hashes

_EMPTY_SIGNALS = np.zeros(0, SIGNAL)


# ----------------------------------------------------------------------------- reading members
# Members are read through the capsule's persistence seam (``thermogram.core``):
# ``capsule_parts`` for their columns under their lock, ``record_import`` and
# ``check_batch`` for changes.

@contextmanager
def _locked(a: Thermogram, b: Thermogram) -> Iterator[None]:
    """Hold the locks of two members (``a``'s first)."""
    with capsule_parts(a), capsule_parts(b):
        yield


def _held_kids(s: EntryStore) -> np.ndarray:
    """Sorted distinct key ids of a store's consolidated entries."""
    return s.live_kids()


def member_key_count(m: Thermogram) -> int:
    """Keys a member holds (fast when nothing is pending)."""
    with capsule_parts(m) as parts:
        if m.pending_count:
            return len(m.keys())
        return int(len(_held_kids(parts.store)))


def _held_keys(m: Thermogram) -> List[str]:
    """The distinct keys of a member's consolidated entries, in key-id order."""
    with capsule_parts(m) as parts:
        s = parts.store
        return s.keys.take(_held_kids(s).tolist())


def _export_entries(src: Thermogram, cut: int, locality: Locality) -> Optional[Tuple[List[str], Dict[str, Any]]]:
    """The consolidated entries of ``src`` whose keys hash at or above ``cut``,
    as the columns of an ``import`` record, and their distinct keys in row
    order; None when there are none."""
    with capsule_parts(src) as parts:
        s = parts.store
        rows = np.flatnonzero(s.live() != FREE)
        if not len(rows):
            return None
        row_kids = s.kid[rows]
        if cut > 0:
            uk = np.unique(row_kids)
            kh = np.zeros(len(s.keys), np.uint64)
            kh[uk] = key_hashes(s.keys.take(uk.tolist()), locality)
            rows = rows[kh[row_kids] >= np.uint64(cut)]
            if not len(rows):
                return None
            row_kids = s.kid[rows]
        keys = s.keys.take(row_kids.tolist())
        vlen = s.vlen[rows].copy()
        entries = {"keys": keys, "layer": s.layer[rows].copy(), "pol": s.pol[rows].copy(),
                   "mag": s.mag[rows].copy(), "count": s.count[rows].copy(), "ts": s.ts[rows].copy(),
                   "values": s.values_of(rows), "lengths": vlen}
    return list(dict.fromkeys(keys)), entries


def _first_held(m: Thermogram, keys: List[str]) -> Optional[str]:
    """The first of ``keys`` that ``m`` holds in any layer, or None."""
    with capsule_parts(m) as parts:
        s = parts.store
        for k in keys:
            if s.hottest_row(k) >= 0:
                return k
    return None


def _import_entries(m: Thermogram, entries: Dict[str, Any], metadata: Dict[str, Any], now: int) -> None:
    """Add exported entries to ``m`` as one ``import`` record."""
    record_import(m, entries, metadata, now)


# ----------------------------------------------------------------------------- moving keys
def preflight(m: Thermogram, sub: DeltaBatch) -> None:
    """Raise whatever ``m.apply_batch(sub)`` would raise (limits, a replayed id, a fork,
    deletes of missing keys), changing nothing."""
    check_batch(m, sub)


def sorted_key_hashes(m: Thermogram, locality: Locality) -> np.ndarray:
    """Routing hashes of the keys ``m`` holds, sorted (uint64)."""
    keys = _held_keys(m)
    if not keys:
        return np.zeros(0, np.uint64)
    kh = key_hashes(keys, locality)
    kh.sort()
    return kh


def split_cut(s: np.ndarray, balance_target: float) -> Optional[int]:
    """Where to split a member whose sorted key hashes are ``s``: the hash
    nearest the ``balance_target`` quantile that starts a locality group;
    None when all keys share one hash."""
    n = len(s)
    if n < 2:
        return None
    k = min(max(int(round(n * balance_target)), 1), n - 1)
    left = int(np.searchsorted(s, s[k], "left"))
    right = int(np.searchsorted(s, s[k], "right"))
    cands = [c for c in (left, right) if 0 < c < n]
    if not cands:
        return None
    c = min(cands, key=lambda c: (abs(c - k), c))
    return int(s[c])


def move_cut(s: np.ndarray, at_most: int) -> Optional[int]:
    """The lowest hash from which the top of ``s`` (sorted key hashes) holds at
    most ``at_most`` keys and as many as possible, without splitting a group;
    None when nothing can move."""
    if at_most <= 0:
        return None
    n = len(s)
    c = max(n - at_most, 1)
    if c >= n:
        return None
    if int(np.searchsorted(s, s[c], "left")) != c:
        c = int(np.searchsorted(s, s[c], "right"))
        if c >= n:
            return None
    return int(s[c])


def transfer(src: Thermogram, dst: Thermogram, cut: int, now: int, reason: str,
             remove_from_source: bool, locality: Locality) -> int:
    """Copy every entry of ``src`` whose key hashes at or above ``cut`` into
    ``dst`` (one ``import`` record), then (``remove_from_source``) delete those
    keys from ``src``. Returns the number of keys moved.

    Raises
    ------
    ThermogramError
        ``dst`` already holds one of the keys (nothing changes).
    """
    with _locked(src, dst):
        exported = _export_entries(src, cut, locality)
        if exported is None:
            return 0
        moved_keys, entries = exported
        receive_moved(dst, src.id, moved_keys, entries, now, reason)
        if remove_from_source:
            remove_keys(src, moved_keys, now, reason)
        return len(moved_keys)


def export_moved(src: Thermogram, cut: int, locality: Locality) -> Optional[Tuple[List[str], Dict[str, Any]]]:
    """The entries of ``src`` whose keys hash at or above ``cut`` (``cut=0``: all), as the
    columns of an ``import`` record, and their distinct keys; None when there are none.
    The giving side of :func:`transfer`, for a colony whose members live apart."""
    return _export_entries(src, cut, locality)


def receive_moved(dst: Thermogram, src_id: str, moved_keys: List[str], entries: Dict[str, Any], now: int,
                  reason: str) -> None:
    """Record entries exported from member ``src_id`` in ``dst`` as one ``import`` record
    (the receiving side of :func:`transfer`).

    Raises
    ------
    ThermogramError
        ``dst`` already holds one of the keys (nothing changes).
    """
    with capsule_parts(dst):
        dup = _first_held(dst, moved_keys)
        if dup is not None:
            raise ThermogramError(f"cannot move {dup!r} from {src_id} to {dst.id}: both hold it")
        meta = {"last_consolidation": dst.last_consolidation, "total_deltas": dst.total_deltas,
                "total_consolidations": dst.total_consolidations, "custom": dst.custom, "pending": 0,
                "source": f"colony-{reason}:{src_id}"}
        _import_entries(dst, entries, meta, now)


def receive_moved_once(dst: Thermogram, src_id: str, moved_keys: List[str], entries: Dict[str, Any],
                       now: int, reason: str, start: int) -> bool:
    """:func:`receive_moved` for a move that may be running again (its first attempt's
    answer lost): ``start`` is the length of ``dst``'s chain when the move began.
    Returns False when that attempt's ``import`` record is already there (nothing changes).

    Raises
    ------
    ThermogramError
        ``dst``'s chain grew in another way since the move began.
    """
    with capsule_parts(dst) as parts:
        n = len(parts.chain)
        if n == start:
            receive_moved(dst, src_id, moved_keys, entries, now, reason)
            return True
        last = parts.chain[start] if n == start + 1 else None
        if last is not None and last.kind == "op" and last.op == "import" and last.timestamp == int(now):
            return False
        raise ThermogramError(f"member {dst.id}: its chain changed during a {reason} from {src_id} "
                              f"({n - start} records since it began)")


def remove_keys(m: Thermogram, keys: List[str], now: int, reason: str) -> None:
    """Delete ``keys`` from every layer of ``m`` and nothing else: a delete
    batch folded by a consolidation under a thermal config that neither
    promotes, demotes nor prunes (set and restored by two ``configure`` records)."""
    tc, pol = m.thermal_config, m.policy
    still, no_prune = _removal_configs(tc, pol)
    batch = _removal_batch(m, keys, now, reason, len(m.chain))
    m.configure(thermal_config=still, policy=no_prune)
    try:
        m.apply_batch(batch)
        m.consolidate()
    finally:
        m.configure(thermal_config=tc, policy=pol)


def _removal_configs(tc: Any, pol: ConsolidationPolicy) -> Tuple[Any, ConsolidationPolicy]:
    """The thermal config and policy a removal runs under: no promotion, demotion or pruning."""
    still = tc.replace(min_observations=(USIZE_MAX,) * 4, allow_demotion=(False,) * 4,
                       prune_threshold=Signal.ZERO)
    return still, ConsolidationPolicy.manual_only(enable_pruning=False, enable_merging=pol.enable_merging)


def _removal_batch(m: Thermogram, keys: List[str], now: int, reason: str, start: int) -> DeltaBatch:
    n = len(keys)
    return DeltaBatch.from_arrays(keys, (_EMPTY_SIGNALS, np.zeros(n + 1, np.int64)), None,
                                  DeltaType.DELETE, now, source=f"colony-{reason}", id=f"{m.id}:{reason}:{start}")


REMOVAL_STEPS = 4
"""Records a removal (:func:`remove_keys`) appends: configure, delete batch, consolidate, configure."""


def remove_keys_step(m: Thermogram, keys: List[str], now: int, reason: str, start: int, tc: Any,
                     pol: ConsolidationPolicy) -> bool:
    """Run the next step of :func:`remove_keys`, resumed from ``m``'s chain: ``start`` is
    the chain's length when the removal began, ``tc``/``pol`` the config to restore at
    the end. Each step appends one record, exactly those :func:`remove_keys` appends,
    so a removal cut short (its process ended) finishes with the same records.
    Returns True once all steps are in the chain (then nothing changes).

    Raises
    ------
    ThermogramError
        The records after ``start`` are not a removal's.
    """
    with capsule_parts(m) as parts:
        chain = parts.chain
        done = len(chain) - start
        bid = f"{m.id}:{reason}:{start}"
        if done < 0 or done > REMOVAL_STEPS or (done >= 1 and getattr(chain[start], "op", None) != "configure") \
                or (done >= 2 and chain.index_of_id(bid) != start + 1):
            raise ThermogramError(f"member {m.id}: its chain does not continue with the {reason} removal "
                                  f"that began at record {start}")
        if done == 0:
            still, no_prune = _removal_configs(tc, pol)
            m.configure(thermal_config=still, policy=no_prune)
        elif done == 1:
            m.apply_batch(_removal_batch(m, keys, now, reason, start))
        elif done == 2:
            m.consolidate()
        elif done == 3:
            m.configure(thermal_config=tc, policy=pol)
        return len(chain) - start >= REMOVAL_STEPS


# ----------------------------------------------------------------------------- planning
def run_splits(counts: List[int], config: ColonyConfig, member_count: Callable[[], int],
               split: Callable[[int], int]) -> int:
    """Split every member over ``split_threshold`` keys (highest index first) while
    under ``max_members``; ``split(i)`` returns the keys it moved. ``counts`` is
    updated (a new member's count appended). Returns the number of splits."""
    if member_count() >= config.max_members:
        return 0
    over = [i for i, c in enumerate(counts) if c > config.split_threshold]
    splits = 0
    for i in reversed(over):
        if member_count() >= config.max_members:
            break
        moved = split(i)
        if moved:
            counts[i] -= moved
            counts.append(moved)
            splits += 1
    return splits


def run_merges(counts: List[int], config: ColonyConfig, member_count: Callable[[], int],
               merge: Callable[[int, int], None]) -> int:
    """Merge members under ``merge_threshold`` keys, two at a time (the second into
    the first), until fewer than two remain; ``counts`` is updated. Returns merges."""
    merges = 0
    while member_count() > 1:
        small = [i for i, c in enumerate(counts) if c < config.merge_threshold]
        if len(small) < 2:
            break
        a, b = small[0], small[1]
        merge(a, b)
        counts[a] += counts[b]
        del counts[b]
        merges += 1
    return merges


def run_topology_steps(colony: Any, counts: List[int], res: Any, now: int) -> None:
    """The topology steps that end a colony consolidation round, on either backend: splits,
    then merges, then the rebalance, through the colony's ``_split(i, now)``,
    ``_merge(a, b, now)`` and ``_rebalance(counts, now)``; ``res`` (a
    ColonyConsolidationResult) and the colony's metadata counters are updated."""
    meta = colony.metadata
    res.splits = run_splits(counts, colony.config, colony.member_count, lambda i: colony._split(i, now))
    meta.split_count += res.splits
    res.merges = run_merges(counts, colony.config, colony.member_count,
                            lambda a, b: colony._merge(a, b, now))
    meta.merge_count += res.merges
    res.rebalanced = colony._rebalance(counts, now)
    meta.total_entries = sum(counts)


def run_rebalance(counts: List[int], config: ColonyConfig, member_count: int,
                  move: Callable[[int, int, int], int]) -> int:
    """Hand keys from members above ``target + tol`` to members below
    ``target - tol`` (``target``: mean keys per member; ``tol``: its
    ``balance_tolerance`` share); ``move(src, dst, at_most)`` returns the keys it
    moved. ``counts`` is updated. Returns the keys moved."""
    n = member_count
    if n <= 1:
        return 0
    total = sum(counts)
    if total == 0:
        return 0
    target = total // n
    tol = int(np.float32(target) * np.float32(config.balance_tolerance))
    over = [i for i, c in enumerate(counts) if c > target + tol]
    under = [i for i, c in enumerate(counts) if c < max(0, target - tol)]
    moved = 0
    for o in over:
        for u in under:
            if counts[o] <= target + tol:
                break
            if counts[u] >= target:
                continue
            k = move(o, u, min(counts[o] - target, target - counts[u]))
            counts[o] -= k
            counts[u] += k
            moved += k
    return moved
