"""The columnar entry table behind a capsule's four thermal layers.

One row per (key, layer) entry, in parallel numpy columns; ``slot[kid, layer]``
gives the row of a key's copy in a layer (or -1), so every layer operation
is one kernel call over the columns. Values live in one append-only SIGNAL
arena shared with the chain's records; a row points at ``vals[voff:voff+vlen]``.
Freed rows go on a free stack and are reused.

Why this module is one piece (~580 lines): the store owns its columns *and* every kernel call over
them (fold, transitions, crystallize, warm, prune, decay, gathers), each with its own
bookkeeping (free stack, slots, the hottest-copy index). Splitting the operations from
the columns they maintain would put that bookkeeping in two places.
"""
from __future__ import annotations

from typing import Dict, Iterator, List, NamedTuple, Optional, Tuple

import numpy as np
import xxhash

from .kernels import codec as _kc
from .kernels import consolidation as _kf
from .kernels import thermal as _kt
from .keytable import KeyTable
from .signal import SIGNAL, Signal, as_u8, copy_signals, put_signals, raw16

__all__ = ["EntryStore", "Columns", "PendingColumns", "FoldCounts", "TransitionCounts", "FREE"]

FREE = _kt.FREE


class Columns(NamedTuple):
    """Views of the entry columns over rows ``0..nrows-1`` (kernel argument order)."""

    layer: np.ndarray
    kid: np.ndarray
    pol: np.ndarray
    mag: np.ndarray
    count: np.ndarray
    ts: np.ndarray
    voff: np.ndarray
    vlen: np.ndarray


class PendingColumns(NamedTuple):
    """Views of the pending deltas' columns, oldest first (``voff``/``vlen`` index the arena)."""

    kid: np.ndarray
    type: np.ndarray
    pol: np.ndarray
    mag: np.ndarray
    ts: np.ndarray
    voff: np.ndarray
    vlen: np.ndarray


class FoldCounts(NamedTuple):
    """What :meth:`EntryStore.fold` did: entries merged into, created, deleted."""

    merged: int
    created: int
    deleted: int


class ConsolidationCounts(NamedTuple):
    """What :meth:`EntryStore.consolidate` did: the fold's counts, hot entries pruned, hot
    entries after the prune, and the transitions' counts (None if none ran)."""

    fold: "FoldCounts"
    pruned: int
    hot: int
    transitions: Optional["TransitionCounts"]


class TransitionCounts(NamedTuple):
    """What :meth:`EntryStore.transitions` did: promotions (hot->warm, warm->cool, cool->cold),
    demotions (cold->cool, cool->warm, warm->hot) and pruned entries."""

    promoted: Tuple[int, int, int]
    demoted: Tuple[int, int, int]
    pruned: int


def grow_column(arr: np.ndarray, n: int, fill=None) -> np.ndarray:
    """A new array of ``n`` rows: ``arr``'s rows first (SIGNAL rows through
    :func:`put_signals`), then ``fill`` (None: left uninitialised)."""
    new = np.empty((n,) + arr.shape[1:], dtype=arr.dtype)
    # ``names`` first: comparing a plain dtype with the structured SIGNAL costs ~0.4 us,
    # a quarter of growing a small column
    if arr.dtype.names is not None and arr.dtype == SIGNAL:
        put_signals(new, 0, arr)
    else:
        new[: arr.shape[0]] = arr
    if fill is not None:
        new[arr.shape[0]:] = fill
    return new


# keys whose read result the store keeps (see EntryStore.rc)
READ_CACHE_SIZE = 4096
# transition candidates are kept as a list of at most max(this, 1/128 of the rows): past that,
# one scan of every row (sequential, vectorised) is cheaper than visiting the listed rows
# (scattered). See EntryStore.transitions.
DUE_LIST_MIN = 64
DUE_LIST_FRACTION = 128


class EntryStore:
    """Columns: ``layer`` u8 (255 free), ``kid`` i32, ``pol`` i8, ``mag`` u8,
    ``count`` u64, ``ts`` i64 ns, ``voff`` i64, ``vlen`` i32; ``slot`` (keys, 4) i32;
    ``hotv`` (keys, 2) i64: ``(voff, vlen)`` of each key's hottest copy, for reads.

    Keys live in a compact :class:`~thermogram.keytable.KeyTable` (``keys``).

    The value buffer ``vals`` is an *arena*: append-only, shared by the entries and
    by the chain's records. A delta's value is appended once when it is applied; the
    record in the chain holds a read-only view of it (:meth:`adopt`), and folding it
    into an entry only points the entry at the same signals. Nothing is overwritten,
    so views handed out by reads stay valid; when the arena grows, the records' views
    are moved to the new buffer so the old one is freed.
    """

    # False: every transitions run scans the whole table (the tests compare both ways)
    TRACK_DUE = True

    def __init__(self, row_capacity: int = 64, key_capacity: int = 64, value_capacity: int = 256):
        rc = max(8, row_capacity)
        self.layer = np.full(rc, FREE, np.uint8)
        self.kid = np.zeros(rc, np.int32)
        self.pol = np.zeros(rc, np.int8)
        self.mag = np.zeros(rc, np.uint8)
        self.count = np.zeros(rc, np.uint64)
        self.ts = np.zeros(rc, np.int64)
        self.voff = np.zeros(rc, np.int64)
        self.vlen = np.zeros(rc, np.int32)
        self.free_stack = np.zeros(rc, np.int64)
        self.n_free = 0
        self.nrows = 0
        kc = max(8, key_capacity)
        self.slot = np.full((kc, 4), -1, np.int32)
        self.keys = KeyTable(kc)
        # (voff, vlen) of each key's hottest copy, side by side so a read touches one cache line
        self.hotv = np.full((kc, 2), -1, np.int64)
        self.hotv_mv = memoryview(self.hotv)  # ``hotv_mv[kid, i]`` -> int, 2x faster than .item
        self.hottest_dirty = False
        # key -> what ``Thermogram.read`` returned for it (a read-only view, or None), at
        # most READ_CACHE_SIZE keys. Filled by read's locked path only; read's lock-free
        # path returns an entry as is, so every change that can alter a key's read result
        # drops that key before the capsule lock is released: a per-key change drops its key
        # (_touch, kid_for, the pending log's appends), anything wider drops them all
        # (mark_changed, refresh_hottest, bulk key registration, a new arena buffer, the
        # pending log cleared). The dict object is never replaced (Thermogram keeps it).
        self.rc: Dict[str, Optional[np.ndarray]] = {}
        # Transition candidates. After a run of transitions under thresholds ``due_for``,
        # a live row can be due again only if it was written since (its layer, strength
        # or count) or that run wrote it: those rows are ``due_buf[:n_due]`` (repeats
        # allowed), and the next run under the same thresholds looks at them alone.
        # ``due_all``: no such list (a fresh table, a change to every row, too many rows).
        # Every writer of layer / pol / mag / count marks its rows (mark_due, mark_row_due)
        # or everything (mark_all_due).
        self.due_all = True
        self.due_for: Optional[tuple] = None
        self.due_buf = np.empty(64, np.int64)
        self.n_due = 0
        # pending row -> read-only view of its own value (see PendingLog.value_at)
        self._pview: Dict[int, np.ndarray] = {}
        self._clients: List[tuple] = []
        self._set_vals(np.zeros(max(16, value_capacity), SIGNAL))
        self.vend = 0
        # xxh3 of vals[:vend], kept up to date by every append (the .thermo VALS checksum)
        self.vhash = xxhash.xxh3_64()

    def _set_vals(self, arr: np.ndarray) -> None:
        """Install a value buffer and its read-only view."""
        self.vals = arr
        self.rc.clear()  # views of the old buffer would keep it alive
        self._pview = {}
        self.vals_ro = arr.view()
        self.vals_ro.flags.writeable = False
        self._v16 = arr.view(np.uint16)  # one 2-byte word per signal: fast copies
        self._v8 = arr.view(np.uint8)
        self._v8mv = memoryview(self._v8)  # slice assignment from bytes, without numpy views

    # capacity -----------------------------------------------------------
    def ensure_rows(self, extra: int) -> None:
        """Grow the row columns (at least doubling) so that ``extra`` more rows fit after ``nrows``."""
        need = self.nrows + extra
        cap = self.layer.shape[0]
        if need <= cap:
            return
        n = max(need, cap * 2)
        self.layer = grow_column(self.layer, n, FREE)
        for name in ("kid", "pol", "mag", "count", "ts", "voff", "vlen", "free_stack"):
            setattr(self, name, grow_column(getattr(self, name), n))

    def ensure_keys(self, n_keys: int) -> None:
        """Grow the per-key arrays (``slot``, ``hotv``; at least doubling) to hold
        ``n_keys`` keys."""
        cap = self.slot.shape[0]
        if n_keys <= cap:
            return
        n = max(n_keys, cap * 2)
        self.slot = grow_column(self.slot, n, -1)
        self.hotv = grow_column(self.hotv, n, -1)
        self.hotv_mv = memoryview(self.hotv)

    def ensure_values(self, extra: int) -> None:
        """Make room for ``extra`` more signals after ``vend`` (growing the arena at least 1.5x;
        record views are moved to the new buffer)."""
        need = self.vend + extra
        cap = self.vals.shape[0]
        if need <= cap:
            return
        self._set_vals(grow_column(self.vals[: self.vend], max(need, cap + cap // 2)))
        ro = self.vals_ro
        for obj, attr, o, n in self._clients:
            if isinstance(obj, dict):  # an operation record's arguments
                obj[attr] = ro[o:o + n]
            else:
                setattr(obj, attr, ro[o:o + n])

    def append_values(self, flat: np.ndarray) -> int:
        """Append a flat SIGNAL array to the arena; returns its offset."""
        n = int(flat.shape[0])
        if n == 0:
            return self.vend
        o = self.vend
        if o + n > self.vals.shape[0]:
            self.ensure_values(n)
        if n <= 256:
            # short values (one delta's): through bytes, ~5x cheaper than numpy views of a
            # structured array; the same bytes feed the checksum
            b = flat.tobytes()
            self._v8mv[2 * o:2 * (o + n)] = b
            self.vhash.update(b)
        else:
            self._v16[o:o + n] = flat.view(np.uint16) if flat.flags.c_contiguous else raw16(flat)
            self.vhash.update(self._v8[2 * o:2 * (o + n)])
        self.vend = o + n
        return o

    def adopt(self, obj: object, attr: str, flat: np.ndarray) -> int:
        """Append ``flat`` and make ``obj.<attr>`` a read-only view of the arena copy, kept
        pointing at the live buffer from then on. Returns the offset.

        ``obj`` may be a dict (an operation record's arguments): then ``obj[attr]`` is set."""
        o = self.append_values(flat)
        n = flat.shape[0]
        view = self.vals_ro[o:o + n]
        if isinstance(obj, dict):
            obj[attr] = view
        else:
            setattr(obj, attr, view)
        self._clients.append((obj, attr, o, n))
        return o

    def offset_of(self, view: np.ndarray) -> int:
        """Arena offset (in signals) of a view into the current arena, or -1."""
        if view.dtype != SIGNAL or view.ndim != 1 or view.base is None:
            return -1
        base = self.vals.__array_interface__["data"][0]
        p = view.__array_interface__["data"][0]
        o, rem = divmod(p - base, 2)
        if rem or o < 0 or o + view.shape[0] > self.vend or (view.strides[0] != 2 and view.shape[0] > 1):
            return -1
        return o

    def load_snapshot(self, keys: KeyTable, vals: np.ndarray, vhash, layer: np.ndarray, kid: np.ndarray,
                      pol: np.ndarray, mag: np.ndarray, count: np.ndarray, ts: np.ndarray,
                      voff: np.ndarray, vlen: np.ndarray) -> int:
        """Replace the whole (empty) store: key table, value arena (all of ``vals`` is used;
        ``vhash`` an xxh3_64 state over its bytes) and one row per entry, in order. Returns
        -1, or the first row whose key id or layer is out of range or whose (key, layer) pair
        repeats (the store is then unusable)."""
        n = int(layer.shape[0])
        self.keys = keys
        self.rc.clear()
        self.ensure_keys(len(keys))
        self._set_vals(vals)
        self.vend = int(vals.shape[0])
        self.vhash = vhash
        self.ensure_rows(n)
        self.layer[:n] = layer
        self.kid[:n] = kid
        self.pol[:n] = pol
        self.mag[:n] = mag
        self.count[:n] = count
        self.ts[:n] = ts
        self.voff[:n] = voff
        self.vlen[:n] = vlen
        self.nrows = n
        bad = int(_kc.load_slots(self.layer[:n], self.kid[:n], len(keys), self.slot))
        self.mark_changed()
        self.mark_all_due()
        return bad

    def track(self, obj: object, attr: str, offset: int, n: int) -> None:
        """Keep ``obj.<attr>`` (``obj[attr]`` for a dict; already a view of
        ``vals[offset:offset+n]``) pointing at the live arena when it grows (see :meth:`adopt`)."""
        self._clients.append((obj, attr, offset, n))

    # keys ---------------------------------------------------------------
    def kid_of(self, key: str) -> Optional[int]:
        """Key id of ``key``, or None if it was never registered."""
        return self.keys.get(key)

    def kid_for(self, key: str) -> int:
        """Key id of ``key``, registering it if new."""
        k = self.keys.add(key)
        rc = self.rc
        if rc:
            rc.pop(key, None)  # it may have been read as missing
        self.ensure_keys(k + 1)
        return k

    def kids_for(self, keys: List[str]) -> np.ndarray:
        """Key ids of many keys (registering new ones, in first-seen order)."""
        kids = self.keys.add_many(keys)
        self.rc.clear()
        self.ensure_keys(len(self.keys))
        return kids

    def kids_for_blob(self, joined: bytes, lens: np.ndarray) -> np.ndarray:
        """:meth:`kids_for` for keys given as concatenated UTF-8 bytes and byte lengths."""
        kids = self.keys.add_blob(joined, lens)
        self.rc.clear()
        self.ensure_keys(len(self.keys))
        return kids

    def key_bytes(self, kids: np.ndarray) -> Tuple[bytes, np.ndarray]:
        """``(concatenated UTF-8 keys, byte lengths)`` of ``kids``, in that order."""
        return self.keys.key_bytes(kids)

    # transition candidates (see __init__) ----------------------------------
    def mark_all_due(self) -> None:
        """Every row may be due: the next transitions run scans the whole table."""
        self.due_all = True
        self.n_due = 0

    def mark_due(self, rows: np.ndarray) -> None:
        """Rows whose layer, strength or count changed: candidates for the next transitions run."""
        if self.due_all:
            return
        k = int(rows.shape[0])
        n = self.n_due + k
        if n > self.due_cap():
            self.mark_all_due()
            return
        if n > self.due_buf.shape[0]:
            self.due_buf = grow_column(self.due_buf[: self.n_due], max(n, 2 * self.due_buf.shape[0]))
        self.due_buf[self.n_due:n] = rows
        self.n_due = n

    def due_cap(self) -> int:
        """The longest candidate list kept."""
        return max(DUE_LIST_MIN, self.nrows // DUE_LIST_FRACTION)

    def _due_plan(self, thresholds: tuple) -> Tuple[tuple, bool]:
        """``(key, full)`` for a transitions run under ``thresholds`` (promotion,
        min_observations, demotion, allow_demotion, prune threshold): the key the candidate
        list will be valid for, and whether this run must scan every row."""
        promotion, min_observations, demotion, allow_demotion, prune_threshold = thresholds
        key = (promotion.tobytes(), min_observations.tobytes(), demotion.tobytes(),
               allow_demotion.tobytes(), int(prune_threshold))
        return key, self.due_all or key != self.due_for or not self.TRACK_DUE

    def mark_row_due(self, r: int) -> None:
        """:meth:`mark_due` of one row."""
        if self.due_all:
            return
        n = self.n_due
        if n >= self.due_buf.shape[0]:
            self.mark_due(np.array([r], np.int64))
            return
        self.due_buf[n] = r
        self.n_due = n + 1

    # the hottest copy of each key (what read returns) -------------------------
    def mark_changed(self) -> None:
        """Kernels moved or freed rows: recompute ``hotv`` before the next read."""
        self.hottest_dirty = True
        self.rc.clear()

    def changed_keys(self, kids: np.ndarray) -> None:
        """Kernels moved or freed rows of ``kids`` only (repeats allowed): recompute their
        ``hotv`` now (unless it is stale already) and drop every cached read."""
        self.rc.clear()
        if not self.hottest_dirty:
            _kt.hottest_of_keys(kids, self.slot, self.voff, self.vlen, self.hotv)

    def refresh_hottest(self) -> None:
        """Recompute ``hotv`` for every key from ``slot`` (one kernel call)."""
        n = len(self.keys)
        _kt.hottest_rows(self.slot[:n], self.voff, self.vlen, self.hotv[:n])
        self.hottest_dirty = False
        self.rc.clear()

    def _touch(self, kid: int) -> None:
        rc = self.rc
        if rc:
            rc.pop(self.keys[kid], None)
        if not self.hottest_dirty:
            sl = self.slot[kid]
            r = next((int(r) for r in sl if r >= 0), -1)
            self.hotv[kid] = (self.voff[r], self.vlen[r]) if r >= 0 else (-1, -1)

    # reads: the consolidated state ------------------------------------------------
    def read(self, key: str) -> Optional[np.ndarray]:
        """The value of the key's hottest copy (a read-only arena view), or None. O(1)."""
        kid = self.keys.recent.get(key)
        if kid is None:
            kid = self.keys._probe(key)
            if kid is None:
                return None
        if self.hottest_dirty:
            self.refresh_hottest()
        hv = self.hotv_mv
        n = hv[kid, 1]
        if n < 0:
            return None
        o = hv[kid, 0]
        return self.vals_ro[o:o + n]

    def remember(self, key: str, value: Optional[np.ndarray]) -> None:
        """Keep ``value`` as ``key``'s read result (called under the capsule lock)."""
        rc = self.rc
        if len(rc) >= READ_CACHE_SIZE:
            rc.clear()
        rc[key] = value

    def lookup(self, key: str) -> Optional[Tuple[np.ndarray, Signal, int]]:
        """``(value, strength, layer)`` of the key's hottest copy, or None."""
        kid = self.keys.get(key)
        if kid is None:
            return None
        r, lay = self.hottest_of(kid)
        if r < 0:
            return None
        return self.value(r), self.strength(r), lay

    def hottest_row(self, key: str) -> int:
        """Row of the key's hottest copy, or -1."""
        kid = self.keys.get(key)
        return -1 if kid is None else self.hottest_of(kid)[0]

    def cold_kid(self, key: str) -> Optional[int]:
        """Key id of ``key`` if it has a cold copy, else None."""
        kid = self.keys.get(key)
        if kid is None or self.slot[kid, 3] < 0:
            return None
        return kid

    # rows -----------------------------------------------------------------
    def alloc_row(self) -> int:
        """A row to fill: the last freed one if any, else a new row at ``nrows`` (growing the columns)."""
        if self.n_free:
            self.n_free -= 1
            return int(self.free_stack[self.n_free])
        self.ensure_rows(1)
        r = self.nrows
        self.nrows += 1
        return r

    def free(self, r: int) -> None:
        """Release row ``r``: clear its slot, mark it free, push it on the free stack, and refresh its
        key's hottest copy unless ``hotv`` is already stale."""
        kid = int(self.kid[r])
        self.n_free = int(_kt.free_row(r, self.layer, self.kid, self.slot, self.free_stack, self.n_free))
        self._touch(kid)

    def row(self, kid: int, layer: int) -> int:
        """Row of key ``kid``'s entry in ``layer``, or -1 if it has none there."""
        return int(self.slot[kid, layer])

    def hottest_of(self, kid: int) -> Tuple[int, int]:
        """``(row, layer)`` of the key's hottest copy, or ``(-1, -1)``."""
        s = self.slot[kid]
        for lay in range(4):
            r = s[lay]
            if r >= 0:
                return int(r), lay
        return -1, -1

    def put(self, kid: int, layer: int, value: np.ndarray, pol: int, mag: int, count: int,
            ts: int, voff: Optional[int] = None) -> int:
        """Insert or overwrite the key's entry in ``layer``; returns its row.

        ``voff``: ``value`` is already in the arena at this offset (the row points at it;
        nothing is appended), else it is appended."""
        r = int(self.slot[kid, layer])
        if r < 0:
            r = self.alloc_row()
            self.layer[r] = layer
            self.kid[r] = kid
            self.slot[kid, layer] = r
            self.vlen[r] = 0
        if voff is None:
            self.set_value(r, value)
        else:
            self.voff[r] = voff
            self.vlen[r] = int(value.shape[0])
        self.pol[r] = pol
        self.mag[r] = mag
        self.count[r] = count
        self.ts[r] = ts
        self._touch(kid)
        self.mark_row_due(r)
        return r

    def set_value(self, r: int, value: np.ndarray) -> None:
        """Give row ``r`` a new value (appended: values are never overwritten)."""
        self.voff[r] = self.append_values(value)
        self.vlen[r] = int(value.shape[0])

    def value(self, r: int) -> np.ndarray:
        """Row ``r``'s value (a read-only view; values are never overwritten)."""
        o = int(self.voff[r])
        return self.vals_ro[o:o + int(self.vlen[r])]

    def strength(self, r: int) -> Signal:
        """Row ``r``'s strength as a :class:`Signal`."""
        return Signal.from_checked(int(self.pol[r]), int(self.mag[r]))

    def bulk_load(self, keys: List[str], layers: np.ndarray, pol: np.ndarray, mag: np.ndarray,
                  count: np.ndarray, ts: np.ndarray, values: np.ndarray, lengths: np.ndarray) -> None:
        """Append many entries at once (rows in the given order). The caller has
        checked that no (key, layer) pair is already present or repeated."""
        n = len(keys)
        kids = self.kids_for(keys)
        self.ensure_rows(n)
        r0 = self.nrows
        rows = np.arange(r0, r0 + n)
        self.layer[rows] = layers
        self.kid[rows] = kids
        self.pol[rows] = pol
        self.mag[rows] = mag
        self.count[rows] = count
        self.ts[rows] = ts
        offs = np.zeros(n, np.int64)
        if n:
            np.cumsum(lengths[:-1], out=offs[1:])
        self.voff[rows] = offs + self.append_values(values)
        self.vlen[rows] = lengths
        self.slot[kids, layers.astype(np.int64)] = rows
        self.nrows += n
        self.mark_changed()
        self.mark_due(rows)

    # views ---------------------------------------------------------------
    def live(self) -> np.ndarray:
        """The ``layer`` column of rows ``0..nrows-1`` (a view; ``FREE`` marks freed rows)."""
        return self.layer[: self.nrows]

    def counts(self) -> np.ndarray:
        """Number of entries in each layer, as an int64 array of 4 (hot, warm, cool, cold)."""
        out = np.zeros(4, np.int64)
        _kt.layer_counts(self.live(), out)
        return out

    def rows_in(self, layer: int) -> np.ndarray:
        """Rows in ``layer`` (0 hot .. 3 cold), ascending."""
        return np.flatnonzero(self.live() == layer)

    def keys_in(self, layer: int) -> List[str]:
        """Keys with an entry in ``layer`` (0 hot .. 3 cold), in row order (not sorted)."""
        return self.keys.take(self.kid[self.rows_in(layer)].tolist())

    def sorted_rows(self, layer: int) -> List[Tuple[str, int]]:
        """``(key, row)`` of a layer, sorted by key."""
        rows = self.rows_in(layer)
        return sorted(zip(self.keys.take(self.kid[rows].tolist()), rows.tolist()))

    def strengths(self, layer: int) -> np.ndarray:
        """SIGNAL array of the strengths of ``layer``'s entries, in row order."""
        rows = self.rows_in(layer)
        out = np.empty(len(rows), SIGNAL)
        out["polarity"] = self.pol[rows]
        out["magnitude"] = self.mag[rows]
        return out

    def estimated_bytes(self) -> int:
        """The reference's size estimate of the entries: 2 bytes a signal + key length + 100 each."""
        live = self.live() != FREE
        n = self.nrows
        return int((self.vlen[:n][live] * 2).sum()) + sum(
            len(k) for k in self.keys.take(self.kid[:n][live].tolist())) + 100 * int(live.sum())

    def entry(self, r: int) -> dict:
        """Row ``r`` as a dict: ``key``, ``value`` (a copy), ``strength`` (:class:`Signal`),
        ``update_count``, ``updated_at`` (int ns) and ``layer``."""
        return {"key": self.keys[int(self.kid[r])], "value": copy_signals(self.value(r)),
                "strength": self.strength(r), "update_count": int(self.count[r]),
                "updated_at": int(self.ts[r]), "layer": int(self.layer[r])}

    def iter_entries(self, layer: int) -> Iterator[dict]:
        """Every entry of ``layer`` as :meth:`entry` dicts, sorted by key."""
        for _, r in self.sorted_rows(layer):
            yield self.entry(r)

    def nbytes(self) -> int:
        """Bytes held by the row columns, the free stack, ``slot``, the value arena and the key table
        (capacity, not use)."""
        cols = sum(getattr(self, n).nbytes for n in ("layer", "kid", "pol", "mag", "count", "ts",
                                                     "voff", "vlen", "free_stack"))
        return cols + self.slot.nbytes + self.vals.nbytes + self.keys.nbytes()

    def columns(self) -> Columns:
        """The entry columns over rows ``0..nrows-1``, as views (kernel argument order)."""
        n = self.nrows
        return Columns(self.layer[:n], self.kid[:n], self.pol[:n], self.mag[:n], self.count[:n],
                       self.ts[:n], self.voff[:n], self.vlen[:n])

    def values_of(self, rows: np.ndarray) -> np.ndarray:
        """The values of ``rows``, concatenated in that order (a new SIGNAL array)."""
        rows = np.asarray(rows, np.int64)
        return self.gather(self.voff, self.vlen, rows)

    def gather(self, voff: np.ndarray, vlen: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """Arena slices ``vals[voff[i]:voff[i]+vlen[i]]`` for each ``i`` in ``ids``, concatenated."""
        out = np.empty(int(vlen[ids].sum()) if len(ids) else 0, SIGNAL)
        _kc.gather_values(voff, vlen, ids, self.vals.view(np.uint16), out.view(np.uint16))
        return out

    # layer operations: one kernel call each, bookkeeping included --------------------
    def consolidate(self, pending: PendingColumns, policy: int, decay_mag: int, lr_mag: int, fixed: bool,
                    hot_prune: Optional[int], thresholds: tuple, transitions: bool,
                    now: int) -> ConsolidationCounts:
        """A consolidation's table work, as one kernel call: fold the pending deltas into
        the hot layer with a plasticity rule (policy code, decay and learning-rate
        magnitudes; ``fixed``: DESIGN.md semantics, where a merge on a missing key creates
        it and a delete removes every layer's copy, else the reference's), free the hot
        entries below ``hot_prune`` (None: none), count the rows per layer, then (if
        ``transitions``) run :meth:`transitions` under ``thresholds`` (promotion,
        min_observations, demotion, allow_demotion, prune threshold). The same table as
        making those steps one by one."""
        p = pending
        n = int(p.kid.shape[0])
        if n > self.n_free + self.layer.shape[0] - self.nrows:  # room for every delta's row, else plan
            seen = np.zeros(len(self.keys), np.uint8)
            rows = _kf.plan_fold(p.kid, p.type, self.slot, seen)
            self.ensure_rows(max(0, int(rows) - self.n_free))
        # the fold writes (or frees) rows of the pending keys only: with few of them their
        # hottest copies and transition candidates are updated key by key
        few = n <= self.due_cap()
        if not few:
            self.mark_all_due()
        update_hotv = few and not self.hottest_dirty
        promotion, min_observations, demotion, allow_demotion, prune_threshold = thresholds
        key, full = self._due_plan(thresholds)
        track = not self.due_all
        stats = np.empty(16, np.int64)
        nrows, n_free, changed, complete = _kf.consolidate_pending(
            p.kid, p.type, p.pol, p.mag, p.ts, p.voff, p.vlen,
            int(policy), as_u8(decay_mag), as_u8(lr_mag), bool(fixed),
            -1 if hot_prune is None else int(hot_prune),
            bool(transitions), promotion, min_observations, demotion, allow_demotion,
            as_u8(prune_threshold), int(now),
            self.due_buf[: self.n_due], full, track, self.due_cap(),
            self.layer, self.kid, self.pol, self.mag, self.count, self.ts, self.voff, self.vlen,
            self.slot, self.nrows, self.free_stack, self.n_free, self.hotv, update_hotv, stats)
        self.nrows, self.n_free = int(nrows), int(n_free)
        self.rc.clear()
        if not (update_hotv and complete):
            self.hottest_dirty = True
        if transitions:
            self.due_all, self.due_for = False, key
        if not complete:
            self.mark_all_due()
        elif track or transitions:
            self.n_due = 0
            self.mark_due(changed)
        o = stats.tolist()
        tr = TransitionCounts((o[9], o[10], o[11]), (o[12], o[13], o[14]), o[15]) if transitions else None
        return ConsolidationCounts(FoldCounts(o[0], o[1], o[2]), o[4], o[5], tr)

    def prune(self, threshold: int, layer: int) -> int:
        """Free the entries of ``layer`` whose strength magnitude is below ``threshold``;
        returns how many."""
        c = self.columns()
        n, n_free = _kt.prune_below(as_u8(threshold), int(layer), c.layer, c.kid, c.mag, self.slot,
                                    self.free_stack, self.n_free)
        self.n_free = int(n_free)
        if n:
            self.mark_changed()
        return int(n)

    def count_below(self, threshold: int, layer: int) -> int:
        """Entries of ``layer`` whose strength magnitude is below ``threshold``."""
        n = self.nrows
        return int(np.count_nonzero((self.layer[:n] == layer) & (self.mag[:n] < threshold)))

    def decay(self, retention: np.ndarray) -> None:
        """Decay every entry's strength by its layer's retention factor (4 float32, hot..cold)."""
        n = self.nrows
        _kt.decay_all(self.layer[:n], self.pol[:n], self.mag[:n], retention)
        self.mark_all_due()

    def transitions(self, promotion: np.ndarray, min_observations: np.ndarray, demotion: np.ndarray,
                    allow_demotion: np.ndarray, prune_threshold: int, now: int) -> TransitionCounts:
        """Promote strong, well-observed entries colder, demote weak ones hotter where allowed,
        then prune every layer (the reference's cascade; thresholds as uint8 magnitudes).

        Under the thresholds of the last run, only the rows written since (and those that
        run wrote) are looked at (see ``__init__``); else, or with ``TRACK_DUE`` off,
        every row. Both give the same table."""
        out = np.zeros(7, np.int64)
        c = self.columns()
        key, full = self._due_plan((promotion, min_observations, demotion, allow_demotion, prune_threshold))
        n_free, changed, ks, complete = _kt.run_transitions_tracked(
            self.due_buf[: self.n_due], full, self.due_cap(), promotion, min_observations, demotion, allow_demotion,
            as_u8(prune_threshold), int(now), c.layer, c.kid, c.pol, c.mag, c.count, c.ts,
            c.voff, c.vlen, self.slot, self.free_stack, self.n_free, out)
        self.n_free = int(n_free)
        self.due_all, self.due_for, self.n_due = False, key, 0
        if complete:
            self.mark_due(changed)
            self.changed_keys(ks)
        else:
            self.mark_all_due()
            self.mark_changed()
        o = out.tolist()
        return TransitionCounts((o[0], o[1], o[2]), (o[3], o[4], o[5]), o[6])

    def crystallize(self, threshold: int, min_observations: int) -> Tuple[int, int]:
        """Move hot entries at or above ``threshold`` with at least ``min_observations``
        straight to cold; returns ``(new cold entries, merges into existing ones)``."""
        c = self.columns()
        n, m, n_free = _kt.crystallize_hot(as_u8(threshold), np.uint64(min_observations), c.layer,
                                           c.kid, c.pol, c.mag, c.count, c.ts, c.voff, c.vlen,
                                           self.slot, self.free_stack, self.n_free)
        self.n_free = int(n_free)
        self.mark_changed()
        self.mark_all_due()
        return int(n), int(m)

    def warm(self, kids: np.ndarray, warming_mag: int, now: int) -> int:
        """Bring the cold copies of ``kids`` back to hot, paying the warming cost; returns how many."""
        c = self.columns()
        kids = np.asarray(kids, np.int64)
        n, n_free = _kt.warm_kids(kids, as_u8(warming_mag), int(now),
                                  c.layer, c.kid, c.pol, c.mag, c.ts, self.slot, self.free_stack,
                                  self.n_free)
        self.n_free = int(n_free)
        self.mark_changed()
        self.mark_due(_kt.live_rows_of(kids, self.slot))
        return int(n)

    def reinforce(self, r: int, amount: Signal, now: int) -> None:
        """Add ``amount`` to row ``r``'s strength (signal addition), count + 1 (saturating)."""
        st = self.strength(r).add(amount)
        self.pol[r], self.mag[r] = st.polarity, st.magnitude
        self.count[r] = _kt.sat_add_u64(self.count[r], 1)
        self.ts[r] = now
        self.mark_row_due(r)

    def weaken(self, r: int, magnitude: int, now: int) -> None:
        """Subtract ``magnitude`` from row ``r``'s strength magnitude (saturating; 0 is ``ZERO``)."""
        m = max(0, int(self.mag[r]) - int(magnitude))
        if m == 0:
            self.pol[r], self.mag[r] = 0, 0
        else:
            self.mag[r] = m
        self.ts[r] = now
        self.mark_row_due(r)

    def live_rows_sorted(self) -> np.ndarray:
        """Live rows ordered by (layer, key bytes)."""
        rows = np.flatnonzero(self.live() != FREE)
        rows = rows[self.keys.argsort(self.kid[rows])]
        return rows[np.argsort(self.layer[rows], kind="stable")]

    def live_kids(self) -> np.ndarray:
        """Sorted unique key ids that have an entry in some layer."""
        n = self.nrows
        seen = np.zeros(len(self.keys), np.bool_)  # a mask, not a sort: O(rows + keys)
        seen[self.kid[:n][self.layer[:n] != FREE]] = True
        return np.flatnonzero(seen)
