"""Pending deltas: applied but not yet folded into the layers.

Kept as columns, one row per delta in order, for two jobs: the consolidation
kernel folds them (:meth:`PendingLog.columns`), and ``read`` finds a key's
newest pending state in O(1) through the overlay ``key -> newest row``.

Every overlay entry is a row number, whatever made it (a :class:`Delta` or a
row of a :class:`DeltaBatch`), so one small set of methods answers every read.
A value-keeping merge (``semantics="fixed"``: a merge keeps the value of what it
lands on) also records, in ``kprev``/``kown``, which row's value it keeps:
``kprev[i]`` is ``NOT_KEPT`` for an ordinary row, ``CONSOLIDATED`` when the merge
keeps the key's consolidated value, or the pending row whose value it keeps;
``kown[i]`` is the row whose value is used when there is nothing to keep (then
the merge creates the key).
"""
from __future__ import annotations

from typing import Dict, Iterable, Optional, Tuple

import numpy as np

from .delta import Delta, DeltaBatch, DeltaType
from .signal import Signal
from .store import EntryStore, PendingColumns, grow_column

__all__ = ["PendingLog", "MISSING", "NOT_KEPT", "CONSOLIDATED"]

_DELETE = int(DeltaType.DELETE)
NOT_KEPT = -2
"""``kprev`` of a row that is not a value-keeping merge."""
CONSOLIDATED = -1
"""``kprev`` of a value-keeping merge that keeps the key's consolidated value."""


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing()
"""Returned by :meth:`PendingLog.read` for a key with no pending delta (None means deleted)."""


class PendingLog:
    """Columns ``kid, type, pol, mag, ts, voff, vlen, kprev, kown`` and the read overlay.

    Values are not copied here: each delta's value is appended once to the entry
    store's arena (:meth:`EntryStore.adopt`), where the chain's record keeps
    pointing at it, and ``voff``/``vlen`` index that arena.
    """

    COLS = ("kid", "type", "pol", "mag", "ts", "voff", "vlen", "kprev", "kown")

    def __init__(self, store: EntryStore, capacity: int = 64):
        self.store = store
        self.kid = np.zeros(capacity, np.int64)
        self.type = np.zeros(capacity, np.uint8)
        self.pol = np.zeros(capacity, np.int8)
        self.mag = np.zeros(capacity, np.uint8)
        self.ts = np.zeros(capacity, np.int64)
        self.voff = np.zeros(capacity, np.int64)
        self.vlen = np.zeros(capacity, np.int64)
        self.kprev = np.full(capacity, NOT_KEPT, np.int64)
        self.kown = np.zeros(capacity, np.int64)
        self.n = 0
        store._pview.clear()  # row numbers start again
        store.rc.clear()  # read results that came from pending rows
        self.overlay: Dict[str, int] = {}
        self.dirty_bytes = 0
        self._views()

    def _views(self) -> None:
        # memoryviews index ~2x faster than numpy scalars on the read path
        self._type_mv = memoryview(self.type)
        self._voff_mv = memoryview(self.voff)
        self._vlen_mv = memoryview(self.vlen)
        self._kprev_mv = memoryview(self.kprev)
        self._kown_mv = memoryview(self.kown)
        self._kid_mv = memoryview(self.kid)
        self._pol_mv = memoryview(self.pol)
        self._mag_mv = memoryview(self.mag)
        self._ts_mv = memoryview(self.ts)

    def __len__(self) -> int:
        return self.n

    def _reserve(self, rows: int) -> None:
        need = self.n + rows
        if need > self.kid.shape[0]:
            cap = max(need, 2 * self.kid.shape[0])
            for c in self.COLS:
                setattr(self, c, grow_column(getattr(self, c), cap))
            self.kprev[self.n:] = NOT_KEPT
            self._views()

    # appending -----------------------------------------------------------------
    def _keep(self, i: int, key: str) -> None:
        """Make row ``i`` a value-keeping merge over the key's current overlay entry."""
        prev = self.overlay.get(key)
        if prev is None:
            self.kprev[i], self.kown[i] = CONSOLIDATED, i
        elif self.kprev[prev] != NOT_KEPT:  # a merge on a merge keeps what the first one keeps
            self.kprev[i], self.kown[i] = self.kprev[prev], self.kown[prev]
        else:
            self.kprev[i], self.kown[i] = prev, i

    def append_delta(self, kid: int, d: Delta, keeps: bool = False, voff: Optional[int] = None) -> None:
        """Append ``d`` (key id ``kid``) as one row; its value moves to the store's arena.

        ``keeps``: ``d`` is a value-keeping merge. ``voff``: the value is already in the
        arena at this offset (a loaded file). The dirty-size estimate grows by 2 bytes a
        signal + key length + 200, as the reference's.
        """
        nv = d.value.shape[0]
        i = self.n
        if i >= self.kid.shape[0]:
            self._reserve(1)
        # one row through memoryviews (plain ints; ~3x cheaper than numpy scalar stores)
        self._kid_mv[i] = kid
        self._type_mv[i] = d.delta_type
        s = d.strength
        self._pol_mv[i] = s.polarity
        self._mag_mv[i] = s.magnitude
        self._ts_mv[i] = d.timestamp
        self._voff_mv[i] = self.store.adopt(d, "value", d.value) if voff is None else voff
        self._vlen_mv[i] = nv
        key = d.key
        if keeps:
            self._keep(i, key)
        self.n = i + 1
        self.overlay[key] = i
        rc = self.store.rc
        if rc:
            rc.pop(key, None)
        self.dirty_bytes += nv * 2 + len(key) + 200

    def append_batch(self, kids: np.ndarray, b: DeltaBatch, keeps: Optional[np.ndarray] = None,
                     voff: Optional[int] = None) -> None:
        """Append every row of ``b`` (key ids ``kids``, one per row); its values move to the
        store's arena.

        Parameters
        ----------
        kids : int64 array
            Key id of each row of ``b``.
        b : DeltaBatch
        keeps : bool array, optional
            Which rows are value-keeping merges (resolved in row order, so a merge keeps the
            value of an earlier row of the same batch).
        voff : int, optional
            The values are already in the arena from this offset (a loaded file).
        """
        m = len(b)
        self._reserve(m)
        n0 = self.n
        s = slice(n0, n0 + m)
        self.kid[s] = kids
        self.type[s] = b.types
        self.pol[s] = b.strengths["polarity"]
        self.mag[s] = b.strengths["magnitude"]
        self.ts[s] = b.timestamps
        self.dirty_bytes += b.dirty_bytes()
        base = self.store.adopt(b, "values", b.values) if voff is None else voff
        self.voff[s] = b.offsets[:-1] + base
        self.vlen[s] = np.diff(b.offsets)
        self.n += m
        rc = self.store.rc
        if rc:
            if m >= len(rc):
                rc.clear()
            else:
                for k in b.keys:
                    rc.pop(k, None)
        if keeps is None or not keeps.any():
            self.overlay.update(zip(b.keys, range(n0, n0 + m)))
            return
        overlay = self.overlay
        for j, k in enumerate(b.keys):
            if keeps[j]:
                self._keep(n0 + j, k)
            overlay[k] = n0 + j

    # reading -------------------------------------------------------------------
    def _plain(self, i: int) -> Optional[np.ndarray]:
        """Row ``i``'s own value (a read-only arena view), or None for a delete."""
        if self._type_mv[i] == _DELETE:
            return None
        o = self._voff_mv[i]
        return self.store.vals_ro[o:o + self._vlen_mv[i]]

    def value_at(self, i: int, key: str) -> Optional[np.ndarray]:
        """The value that pending row ``i`` (the overlay entry of ``key``) gives ``key``:
        None for a delete; a value-keeping merge resolves what it keeps."""
        k = self._kprev_mv[i]
        if k == NOT_KEPT:
            # a row's own value never changes while it is pending: its view is cached in
            # the store (which drops the cache when its arena buffer is replaced)
            pv = self.store._pview
            v = pv.get(i)
            if v is None:
                v = self._plain(i)
                if v is None:
                    return None
                if len(pv) >= 4096:
                    pv.clear()
                pv[i] = v
            return v
        v = self.store.read(key) if k == CONSOLIDATED else self._plain(k)
        return self._plain(self._kown_mv[i]) if v is None else v

    def read(self, key: str) -> object:
        """The key's pending value, None if its newest pending delta deletes it, or
        :data:`MISSING` if no pending delta touches it."""
        i = self.overlay.get(key)
        if i is None:
            return MISSING
        return self.value_at(i, key)

    def lookup(self, key: str) -> Tuple[bool, Optional[np.ndarray], Optional[Signal]]:
        """``(found, value or None if deleted, strength)`` from the overlay."""
        i = self.overlay.get(key)
        if i is None:
            return False, None, None
        v = self.value_at(i, key)
        if v is None:
            return True, None, None
        return True, v, Signal.from_checked(int(self.pol[i]), int(self.mag[i]))

    def deletes(self, i: int) -> bool:
        """Whether pending row ``i`` leaves its key deleted."""
        return self._kprev_mv[i] == NOT_KEPT and self._type_mv[i] == _DELETE

    def live_and_deleted(self) -> Tuple[Iterable[str], Iterable[str]]:
        """Keys whose newest pending delta keeps them, and keys it deletes."""
        live, gone = [], []
        for k, i in self.overlay.items():
            (gone if self.deletes(i) else live).append(k)
        return live, gone

    def columns(self) -> PendingColumns:
        """The first ``n`` rows of ``kid, type, pol, mag, ts, voff, vlen`` (views; ``voff`` /
        ``vlen`` index the store's value arena)."""
        n = self.n
        return PendingColumns(self.kid[:n], self.type[:n], self.pol[:n], self.mag[:n], self.ts[:n],
                              self.voff[:n], self.vlen[:n])

    def clear(self) -> None:
        """Forget the folded deltas; buffers that grew large are given back."""
        if self.kid.shape[0] > 4096:
            self.__init__(self.store)
            return
        self.kprev[: self.n] = NOT_KEPT
        self.store._pview.clear()
        self.store.rc.clear()
        self.n = 0
        self.overlay = {}
        self.dirty_bytes = 0
