"""Pending deltas: applied but not yet folded into the layers.

Kept twice over, for two jobs: as columns for the consolidation kernel, and
as an overlay ``key -> latest pending state`` so that ``read`` is O(1).
"""
from __future__ import annotations

from itertools import repeat
from typing import Dict, Optional, Tuple

import numpy as np

from .delta import Delta, DeltaBatch, DeltaType
from .signal import SIGNAL, Signal, put_signals

__all__ = ["PendingLog", "Kept"]

_DELETE = int(DeltaType.DELETE)


class Kept:
    """Overlay entry of a merge that keeps the key's existing value.

    ``prev`` is the overlay entry the merge landed on, or None for "the
    consolidated state at read time"; ``own`` is the merge's value, used when
    there is nothing to keep (then the merge creates the key).
    """

    __slots__ = ("prev", "own", "strength")

    def __init__(self, prev: object, own: np.ndarray, strength: Signal):
        if type(prev) is Kept:  # a merge on a merge keeps what the first one keeps
            prev, own = prev.prev, prev.own
        self.prev = prev
        self.own = own
        self.strength = strength


def _grow(a: np.ndarray, n: int) -> np.ndarray:
    new = np.empty(n, a.dtype)
    if a.dtype == SIGNAL:
        put_signals(new, 0, a)
    else:
        new[: a.shape[0]] = a
    return new


class PendingLog:
    """Columns ``kid, type, pol, mag, ts, voff, vlen``, and the read overlay.

    Values are not copied here: each delta's value is appended once to the entry
    store's arena (:meth:`EntryStore.adopt`), where the chain's record keeps
    pointing at it, and ``voff``/``vlen`` index that arena.
    """

    COLS = ("kid", "type", "pol", "mag", "ts", "voff", "vlen")

    def __init__(self, store, capacity: int = 64):
        self.store = store
        self.kid = np.zeros(capacity, np.int64)
        self.type = np.zeros(capacity, np.uint8)
        self.pol = np.zeros(capacity, np.int8)
        self.mag = np.zeros(capacity, np.uint8)
        self.ts = np.zeros(capacity, np.int64)
        self.voff = np.zeros(capacity, np.int64)
        self.vlen = np.zeros(capacity, np.int64)
        self.n = 0
        self.overlay: Dict[str, object] = {}
        self.dirty_bytes = 0

    def __len__(self) -> int:
        return self.n

    def _reserve(self, rows: int) -> None:
        need = self.n + rows
        if need > self.kid.shape[0]:
            cap = max(need, 2 * self.kid.shape[0])
            for c in self.COLS:
                setattr(self, c, _grow(getattr(self, c), cap))

    def append_delta(self, kid: int, d: Delta, overlay_entry: object, voff: Optional[int] = None) -> None:
        """Append ``d`` (key id ``kid``) as one row; its value moves to the store's arena.

        ``overlay_entry`` becomes the overlay's entry for ``d.key`` (the delta itself or a
        :class:`Kept`); the dirty-size estimate grows by 2 bytes a signal + key length + 200.
        ``voff``: the value is already in the arena at this offset (a loaded file).
        """
        nv = int(d.value.shape[0])
        self._reserve(1)
        i = self.n
        self.kid[i] = kid
        self.type[i] = int(d.delta_type)
        self.pol[i] = d.strength.polarity
        self.mag[i] = d.strength.magnitude
        self.ts[i] = d.timestamp
        self.voff[i] = self.store.adopt(d, "value", d.value) if voff is None else voff
        self.vlen[i] = nv
        self.n += 1
        self.overlay[d.key] = overlay_entry
        self.dirty_bytes += nv * 2 + len(d.key) + 200

    def append_batch(self, kids: np.ndarray, b: DeltaBatch, overlay_entries=None,
                     voff: Optional[int] = None) -> None:
        """Append every row of ``b`` (key ids ``kids``, one per row); its values move to the
        store's arena.

        Parameters
        ----------
        kids : int64 array
            Key id of each row of ``b``.
        b : DeltaBatch
        overlay_entries : iterable, optional
            Overlay entry for each key, in row order; default ``(b, i)`` for row ``i``.
            A key repeated in ``b`` ends up with its last row's entry.
        voff : int, optional
            The values are already in the arena from this offset (a loaded file).
        """
        m = len(b)
        self._reserve(m)
        s = slice(self.n, self.n + m)
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
        if overlay_entries is None:
            self.overlay.update(zip(b.keys, zip(repeat(b), range(m))))
        else:
            self.overlay.update(zip(b.keys, overlay_entries))

    def lookup(self, key: str) -> Tuple[bool, object, Optional[Signal]]:
        """``(found, value or None if deleted, strength)`` from the overlay.

        For a value-keeping merge the value is the :class:`Kept` entry itself;
        the capsule resolves it against its layers.
        """
        e = self.overlay.get(key)
        if e is None:
            return False, None, None
        return self.resolve(e)

    @staticmethod
    def resolve(e: object) -> Tuple[bool, object, Optional[Signal]]:
        """``(True, value | None | Kept, strength)`` of one overlay entry."""
        if type(e) is tuple:
            b, i = e
            if b.types[i] == _DELETE:
                return True, None, None
            s = b.strengths[i]
            return True, b.values[b.offsets[i]:b.offsets[i + 1]], Signal._raw(int(s[0]), int(s[1]))
        if type(e) is Kept:
            return True, e, e.strength
        if e.delta_type == _DELETE:
            return True, None, None
        return True, e.value, e.strength

    def columns(self):
        """The first ``n`` rows of ``kid, type, pol, mag, ts, voff, vlen`` (views; ``voff`` /
        ``vlen`` index the store's value arena)."""
        n = self.n
        return (self.kid[:n], self.type[:n], self.pol[:n], self.mag[:n], self.ts[:n],
                self.voff[:n], self.vlen[:n])

    def clear(self) -> None:
        """Forget the folded deltas; buffers that grew large are given back."""
        if self.kid.shape[0] > 4096:
            self.__init__(self.store)
            return
        self.n = 0
        self.overlay = {}
        self.dirty_bytes = 0
