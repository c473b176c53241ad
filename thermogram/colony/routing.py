"""Routing: which member holds a key.

Each key has a *locality key* (by default its prefix before the first ``_``,
see :func:`prefix_locality`); XXH3-64 of the locality key (:func:`locality_hash`)
falls in exactly one hash range of a consistent-hash ring, and each range
belongs to one member. The ring is two parallel lists: ``bounds`` (sorted range
starts, the first 0) and ``owners`` (member index of each range). Routing one
key is a binary search over the starts; routing many keys is one hashing kernel
and one range-assignment kernel. The functions here are pure: they take the
ring and return new lists, the colony keeps them.
"""
from __future__ import annotations

import bisect
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
import xxhash

from ..delta import DeltaBatch, validate_key
from ..errors import ValidationError
from ..kernels import colony as _kcol
from ..signal import SIGNAL

__all__ = ["HASH_SPACE", "prefix_locality", "locality_hash"]

HASH_SPACE = 2 ** 64
"""Size of the routing hash space (XXH3-64)."""
Locality = Optional[Callable[[str], str]]
"""``locality(key) -> str``, or None for :func:`prefix_locality`."""
_CUT = ord("_")
_xxh3_64 = xxhash.xxh3_64_intdigest
_EMPTY_SIGNALS = np.zeros(0, SIGNAL)


def prefix_locality(key: str) -> str:
    """The default locality key: ``key`` up to its first ``_`` (all of it if none).

    >>> prefix_locality("layer3_w_17")
    'layer3'
    """
    return key.partition("_")[0]


def locality_hash(part: str) -> int:
    """XXH3-64 (seed 0) of a locality key's UTF-8 bytes: the colony's routing hash."""
    return xxhash.xxh3_64_intdigest(part.encode("utf-8", "surrogatepass"))


# ----------------------------------------------------------------------------- hashing keys
def locality_of(key: str, locality: Locality) -> str:
    """The locality key of ``key`` (checked to be a str when ``locality`` is custom)."""
    if locality is None:
        return key.partition("_")[0]
    part = locality(key)
    if not isinstance(part, str):
        raise ValidationError(f"locality({key!r}) must return a str, got {type(part).__name__}")
    return part


def key_hash(key: str, locality: Locality) -> int:
    """The routing hash of one key (validated first)."""
    validate_key(key)
    return locality_hash(locality_of(key, locality))


def key_hashes(keys: Sequence[str], locality: Locality) -> np.ndarray:
    """Routing hashes of many keys (uint64), computed in one kernel call.

    Keys holding a NUL, and locality keys longer than the kernel's inline
    limit, are hashed one by one with :func:`locality_hash`.
    """
    if not isinstance(keys, (list, tuple)):
        keys = list(keys)
    n = len(keys)
    out = np.empty(n, np.uint64)
    if not n:
        return out
    if locality is None:
        parts, cut = keys, _CUT
    else:
        parts, cut = [locality_of(k, locality) for k in keys], -1
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


def route_key(key: str, locality: Locality, bounds: List[int], owners: List[int]) -> int:
    """Member index of one key: hash its locality key, bisect the range starts."""
    if type(key) is not str or not key:
        validate_key(key)
    part = key.partition("_")[0] if locality is None else locality_of(key, locality)
    try:
        h = _xxh3_64(part.encode("utf-8"))
    except UnicodeEncodeError:
        validate_key(key)  # a lone surrogate: raises ValidationError
        raise
    return owners[bisect.bisect_right(bounds, h) - 1]


def assign(hashes: np.ndarray, bounds: np.ndarray, owners: np.ndarray) -> np.ndarray:
    """Member index of each hash (int64), given the ring as uint64 / int64 arrays."""
    out = np.empty(len(hashes), np.int64)
    _kcol.assign_ranges(hashes, bounds, owners, out)
    return out


# ----------------------------------------------------------------------------- the ring
def even_ring(n: int) -> Tuple[List[int], List[int]]:
    """``n`` members owning equal consecutive ranges of the hash space."""
    return [i * HASH_SPACE // n for i in range(n)], list(range(n))


def ring_arrays(bounds: List[int], owners: List[int]) -> Tuple[np.ndarray, np.ndarray]:
    """The ring as the arrays :func:`assign` takes."""
    return np.array(bounds, dtype=np.uint64), np.array(owners, dtype=np.int64)


def ranges(bounds: List[int], owners: List[int], ids: Sequence[str]) -> List[Tuple[int, int, str]]:
    """``(start, end_exclusive, member id)`` of every range, in hash order."""
    ends = bounds[1:] + [HASH_SPACE]
    return [(b, e, ids[o]) for b, e, o in zip(bounds, ends, owners)]


def is_partition(bounds: List[int], owners: List[int], n_members: int) -> bool:
    """Whether the ring cuts the whole hash space in ranges and every member owns one."""
    return (bool(bounds) and bounds[0] == 0 and all(a < b for a, b in zip(bounds, bounds[1:]))
            and bounds[-1] < HASH_SPACE and set(owners) == set(range(n_members)))


def coalesce(bounds: List[int], owners: List[int]) -> Tuple[List[int], List[int]]:
    """The same ring with neighbouring ranges of one owner joined."""
    b, o = [bounds[0]], [owners[0]]
    for start, own in zip(bounds[1:], owners[1:]):
        if own != o[-1]:
            b.append(start)
            o.append(own)
    return b, o


def reassign(bounds: List[int], owners: List[int], src: int, dst: int,
             cut: int) -> Tuple[List[int], List[int]]:
    """The ring after every range of ``src`` at or above hash ``cut`` goes to ``dst``."""
    b, o = list(bounds), list(owners)
    r = bisect.bisect_right(b, cut) - 1
    if b[r] != cut:
        b.insert(r + 1, cut)
        o.insert(r + 1, o[r])
    for j in range(len(b)):
        if b[j] >= cut and o[j] == src:
            o[j] = dst
    return coalesce(b, o)


def drop_member(bounds: List[int], owners: List[int], keep: int,
                remove: int) -> Tuple[List[int], List[int]]:
    """The ring after member ``remove`` hands all its ranges to ``keep`` and the
    members after it shift down one index."""
    o = [keep if x == remove else x for x in owners]
    o = [x - 1 if x > remove else x for x in o]
    return coalesce(bounds, o)


# ----------------------------------------------------------------------------- batches
def member_groups(idx: np.ndarray) -> List[np.ndarray]:
    """The row numbers of each member, members in index order, rows in their order
    (``idx``: the member index of each row)."""
    order = np.argsort(idx, kind="stable")
    return np.split(order, np.flatnonzero(np.diff(idx[order])) + 1)


def split_batch(b: DeltaBatch, idx: np.ndarray, member_ids: Sequence[str]) -> List[Tuple[int, DeltaBatch]]:
    """Cut a batch by member: ``[(member index, sub-batch)]``, rows in their order.

    ``idx`` is the member index of each row (see :func:`assign`); each sub-batch
    is named ``f"{b.id}/{member id}"``.
    """
    groups = member_groups(idx)
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
                         id=f"{b.id}/{member_ids[i]}", timestamp=b.timestamp, _trusted=True)
        out.append((i, sub))
    return out
