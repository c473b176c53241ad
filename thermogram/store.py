"""The columnar entry table behind a capsule's four thermal layers.

One row per (key, layer) entry, in parallel numpy columns; ``slot[kid, layer]``
gives the row of a key's copy in a layer (or -1), so every layer operation
is one kernel call over the columns. Values live in one SIGNAL buffer; a row
owns the slice ``vals[voff:voff+vlen]``. Freed rows go on a free stack and
are reused; the value buffer is compacted when more than half is garbage.
"""
from __future__ import annotations

from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np

from .kernels import codec as _kc
from .kernels import thermal as _kt
from .signal import SIGNAL, Signal, copy_signals, put_signals

__all__ = ["EntryStore", "FREE"]

FREE = _kt.FREE


def _grow(arr: np.ndarray, n: int, fill=None) -> np.ndarray:
    new = np.empty((n,) + arr.shape[1:], dtype=arr.dtype)
    if arr.dtype == SIGNAL:
        put_signals(new, 0, arr)
    else:
        new[: arr.shape[0]] = arr
    if fill is not None:
        new[arr.shape[0]:] = fill
    return new


class EntryStore:
    """Columns: ``layer`` u8 (255 free), ``kid`` i64, ``pol`` i8, ``mag`` u8,
    ``count`` u64, ``ts`` i64 ns, ``voff`` i64, ``vlen`` i64; ``slot`` (keys, 4) i64."""

    def __init__(self, row_capacity: int = 64, key_capacity: int = 64, value_capacity: int = 256):
        rc = max(8, row_capacity)
        self.layer = np.full(rc, FREE, np.uint8)
        self.kid = np.zeros(rc, np.int64)
        self.pol = np.zeros(rc, np.int8)
        self.mag = np.zeros(rc, np.uint8)
        self.count = np.zeros(rc, np.uint64)
        self.ts = np.zeros(rc, np.int64)
        self.voff = np.zeros(rc, np.int64)
        self.vlen = np.zeros(rc, np.int64)
        self.free_stack = np.zeros(rc, np.int64)
        self.n_free = 0
        self.nrows = 0
        self.slot = np.full((max(8, key_capacity), 4), -1, np.int64)
        self.index: Dict[str, int] = {}
        self.keys: List[str] = []
        self.hottest = np.full(max(8, key_capacity), -1, np.int64)
        # (voff, vlen) of each key's hottest copy, side by side so a read touches one cache line
        self.hotv = np.full((max(8, key_capacity), 2), -1, np.int64)
        # every key's UTF-8 bytes, once, for the codec and the digest
        self.kblob = bytearray()
        self.koff = np.zeros(max(8, key_capacity), np.int64)
        self.klen = np.zeros(max(8, key_capacity), np.int64)
        self.hottest_dirty = False
        self._set_vals(np.zeros(max(16, value_capacity), SIGNAL))
        self.vend = 0

    def _set_vals(self, arr: np.ndarray) -> None:
        """Install a value buffer. Values are append-only (a row's slice is never
        overwritten), so read-only views handed out by ``read`` stay valid."""
        self.vals = arr
        self.vals_ro = arr.view()
        self.vals_ro.flags.writeable = False

    # capacity -----------------------------------------------------------
    def ensure_rows(self, extra: int) -> None:
        """Grow the row columns (at least doubling) so that ``extra`` more rows fit after ``nrows``."""
        need = self.nrows + extra
        cap = self.layer.shape[0]
        if need <= cap:
            return
        n = max(need, cap * 2)
        self.layer = _grow(self.layer, n, FREE)
        for name in ("kid", "pol", "mag", "count", "ts", "voff", "vlen", "free_stack"):
            setattr(self, name, _grow(getattr(self, name), n, 0))

    def ensure_keys(self, n_keys: int) -> None:
        """Grow the per-key arrays (``slot``, ``hottest``, ``hotv``, ``koff``, ``klen``; at least doubling)
        to hold ``n_keys`` keys."""
        cap = self.slot.shape[0]
        if n_keys <= cap:
            return
        n = max(n_keys, cap * 2)
        self.slot = _grow(self.slot, n, -1)
        self.hottest = _grow(self.hottest, n, -1)
        self.hotv = _grow(self.hotv, n, -1)
        self.koff = _grow(self.koff, n, 0)
        self.klen = _grow(self.klen, n, 0)

    def ensure_values(self, extra: int) -> None:
        """Make room for ``extra`` more signals after ``vend`` in the value buffer.

        Compacts in place when that frees enough and more than half the buffer is garbage;
        otherwise grows the buffer (at least doubling), compacting into the new one when
        garbage outweighs live values. Compaction moves rows, so ``hottest`` is marked stale.
        """
        need = self.vend + extra
        cap = self.vals.shape[0]
        if need <= cap:
            return
        live = int(self.vlen[: self.nrows][self.layer[: self.nrows] != FREE].sum())
        if live + extra <= cap and self.vend - live > cap // 2:
            self.compact()
            return
        n = max(need, cap * 2)
        if self.vend - live > live:  # mostly garbage: compact into the new buffer
            new = np.zeros(max(live + extra, n // 2, 16), SIGNAL)
            self.vend = int(_kt.compact_values(self.layer[: self.nrows], self.voff, self.vlen,
                                               self.vals.view(np.uint16), new.view(np.uint16)))
            if self.vend + extra > new.shape[0]:
                new = _grow(new, self.vend + extra)
            self._set_vals(new)
            self.mark_changed()
            return
        self._set_vals(_grow(self.vals, n))

    def compact(self) -> None:
        """Rewrite the value buffer without garbage."""
        new = np.zeros(self.vals.shape[0], SIGNAL)
        self.vend = int(_kt.compact_values(self.layer[: self.nrows], self.voff, self.vlen,
                                           self.vals.view(np.uint16), new.view(np.uint16)))
        self._set_vals(new)
        self.mark_changed()

    # keys ---------------------------------------------------------------
    def kid_of(self, key: str) -> Optional[int]:
        """Key id of ``key``, or None if it was never registered."""
        return self.index.get(key)

    def kid_for(self, key: str) -> int:
        """Key id of ``key``, registering it if new."""
        k = self.index.get(key)
        if k is None:
            k = len(self.keys)
            self.index[key] = k
            self.keys.append(key)
            self.ensure_keys(k + 1)
            enc = key.encode("utf-8", "surrogatepass")
            self.koff[k] = len(self.kblob)
            self.klen[k] = len(enc)
            self.kblob += enc
        return k

    def key_bytes(self, kids: np.ndarray) -> Tuple[bytes, np.ndarray]:
        """``(concatenated UTF-8 keys, byte lengths)`` of ``kids``, in that order."""
        lens = self.klen[kids]
        out = np.empty(int(lens.sum()), np.uint8)
        _kc.gather_values(self.koff, self.klen, kids, np.frombuffer(self.kblob, np.uint8), out)
        return out.tobytes(), lens

    # the hottest copy of each key (what read returns) -------------------------
    def mark_changed(self) -> None:
        """Kernels moved or freed rows: recompute ``hottest`` before the next read."""
        self.hottest_dirty = True

    def refresh_hottest(self) -> None:
        """Recompute ``hottest`` and ``hotv`` for every key from ``slot`` (one kernel call)."""
        n = len(self.keys)
        _kt.hottest_rows(self.slot[:n], self.voff, self.vlen, self.hottest[:n], self.hotv[:n])
        self.hottest_dirty = False

    def _touch(self, kid: int) -> None:
        if not self.hottest_dirty:
            sl = self.slot[kid]
            r = next((int(r) for r in sl if r >= 0), -1)
            self.hottest[kid] = r
            self.hotv[kid] = (self.voff[r], self.vlen[r]) if r >= 0 else (-1, -1)

    def kids_for(self, keys: List[str]) -> np.ndarray:
        """Key ids of many keys (registering new ones, in first-seen order)."""
        index = self.index
        new = [k for k in dict.fromkeys(keys) if k not in index]
        if new:
            start = len(self.keys)
            index.update(zip(new, range(start, start + len(new))))
            self.keys.extend(new)
            self.ensure_keys(len(self.keys))
            enc = [k.encode("utf-8", "surrogatepass") for k in new]
            lens = np.fromiter(map(len, enc), dtype=np.int64, count=len(enc))
            end = start + len(new)
            self.klen[start:end] = lens
            self.koff[start:end] = len(self.kblob) + np.cumsum(lens) - lens
            self.kblob += b"".join(enc)
        return np.fromiter(map(index.__getitem__, keys), dtype=np.int64, count=len(keys))

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
        key's hottest copy unless ``hottest`` is already stale (the value stays, as garbage, until
        compaction)."""
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
            ts: int) -> int:
        """Insert or overwrite the key's entry in ``layer``; returns its row."""
        r = int(self.slot[kid, layer])
        if r < 0:
            r = self.alloc_row()
            self.layer[r] = layer
            self.kid[r] = kid
            self.slot[kid, layer] = r
            self.vlen[r] = 0
        self.set_value(r, value)
        self.pol[r] = pol
        self.mag[r] = mag
        self.count[r] = count
        self.ts[r] = ts
        self._touch(kid)
        return r

    def set_value(self, r: int, value: np.ndarray) -> None:
        """Give row ``r`` a new value (appended: values are never overwritten)."""
        n = int(value.shape[0])
        self.ensure_values(n)
        self.voff[r] = self.vend
        self.vlen[r] = n
        put_signals(self.vals, self.vend, value)
        self.vend += n

    def value(self, r: int) -> np.ndarray:
        """Row ``r``'s value (a read-only view; values are never overwritten)."""
        o = int(self.voff[r])
        return self.vals_ro[o:o + int(self.vlen[r])]

    def strength(self, r: int) -> Signal:
        """Row ``r``'s strength as a :class:`Signal`."""
        return Signal._raw(int(self.pol[r]), int(self.mag[r]))

    def bulk_load(self, keys: List[str], layers: np.ndarray, pol: np.ndarray, mag: np.ndarray,
                  count: np.ndarray, ts: np.ndarray, values: np.ndarray, lengths: np.ndarray) -> None:
        """Append many entries at once (rows in the given order). The caller has
        checked that no (key, layer) pair is already present or repeated."""
        n = len(keys)
        kids = self.kids_for(keys)
        self.ensure_rows(n)
        nv = int(values.shape[0])
        self.ensure_values(nv)
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
        self.voff[rows] = offs + self.vend
        self.vlen[rows] = lengths
        put_signals(self.vals, self.vend, values)
        self.vend += nv
        self.slot[kids, layers.astype(np.int64)] = rows
        self.nrows += n
        self.mark_changed()

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
        keys = self.keys
        return [keys[k] for k in self.kid[self.rows_in(layer)].tolist()]

    def sorted_rows(self, layer: int) -> List[Tuple[str, int]]:
        """``(key, row)`` of a layer, sorted by key."""
        rows = self.rows_in(layer)
        keys = self.keys
        return sorted(zip((keys[k] for k in self.kid[rows].tolist()), rows.tolist()))

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
        """Bytes held by the row columns, the free stack, ``slot`` and the value buffer (capacity, not
        use; the key table and other per-key arrays are not counted)."""
        cols = sum(getattr(self, n).nbytes for n in ("layer", "kid", "pol", "mag", "count", "ts",
                                                     "voff", "vlen", "free_stack"))
        return cols + self.slot.nbytes + self.vals.nbytes

    def kernel_cols(self):
        """The columns in kernel argument order (``layer, kid, pol, mag, count, ts, voff, vlen``)."""
        n = self.nrows
        return (self.layer[:n], self.kid[:n], self.pol[:n], self.mag[:n], self.count[:n],
                self.ts[:n], self.voff[:n], self.vlen[:n])
