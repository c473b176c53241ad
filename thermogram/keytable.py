"""A compact table of string keys: ``key <-> key id`` without a Python object per key.

Keys are kept as UTF-8 bytes in one ``bytearray`` with an int64 offset array, and
found through an int32 open-addressing hash table (CRC-32, linear probing, at most
half full). For a million 10-byte keys that is about 27 bytes a key, against
about 100 for a ``dict`` of ``str`` objects. Single lookups run in Python on the
raw buffers (``zlib.crc32`` and ``bytearray.startswith``); bulk registration
runs in :mod:`thermogram.kernels.keys`.

Key ids are dense (``0..len-1``) in first-seen order and never reused, so a
found ``key -> id`` pair stays true forever: the table remembers the last few
thousand found keys in a small ``dict`` (``recent``, emptied when full), which
makes repeated lookups of a working set as fast as a ``dict``.
"""
from __future__ import annotations

import zlib
from typing import Iterable, List, Optional, Sequence, Tuple

import numpy as np

from .kernels import keys as _kk

__all__ = ["KeyTable", "encode_key"]


def encode_key(key: str) -> bytes:
    """A key's bytes: UTF-8, with lone surrogates passed through (as the hashing does)."""
    return key.encode("utf-8", "surrogatepass")


def _decode(b: bytes) -> str:
    return b.decode("utf-8", "surrogatepass")


class KeyTable:
    """Dense key ids for string keys.

    Parameters
    ----------
    capacity : int
        Keys to size the arrays for (they grow as needed).
    """

    __slots__ = ("blob", "off", "tab", "n", "_mask", "_offv", "_tabv", "recent")

    #: how many found keys ``recent`` remembers before it starts over
    RECENT = 4096

    def __init__(self, capacity: int = 8):
        self.blob = bytearray()
        self.recent = {}
        self.off = np.zeros(max(8, capacity) + 1, np.int64)
        self.n = 0
        self._set_table(np.full(self._table_size(capacity), -1, np.int32))
        self._offv = memoryview(self.off)

    @staticmethod
    def _table_size(n: int) -> int:
        size = 16
        while size < 2 * n:
            size *= 2
        return size

    def _set_table(self, tab: np.ndarray) -> None:
        self.tab = tab
        self._mask = tab.shape[0] - 1
        self._tabv = memoryview(tab)

    # ------------------------------------------------------------------ capacity
    def _reserve(self, extra: int) -> None:
        need = self.n + extra
        if need + 1 > self.off.shape[0]:
            new = np.empty(max(need + 1, 2 * self.off.shape[0]), np.int64)
            new[: self.n + 1] = self.off[: self.n + 1]
            self.off = new
            self._offv = memoryview(new)
        if 2 * need > self.tab.shape[0]:
            tab = np.full(self._table_size(need), -1, np.int32)
            if self.n:
                _kk.rebuild_table(self._blob_array(), self.off, self.n, tab, _kk.CRC_TABLE)
            self._set_table(tab)

    def _blob_array(self) -> np.ndarray:
        """A uint8 copy-free view of the blob. Drop it before the blob grows
        (a ``bytearray`` cannot be resized while a view is alive)."""
        return np.frombuffer(self.blob, np.uint8) if self.blob else np.zeros(0, np.uint8)

    def _extend_blob(self, data: bytes) -> bytearray:
        """Append ``data`` to the blob (in place, amortized O(1)) and return the blob.

        A ``bytearray`` cannot be resized while a buffer view of it is alive; if one still
        is (a view handed to a kernel and kept by a traceback or a reference cycle until the
        next garbage collection), the blob is replaced by a grown copy instead: the old
        bytes stay valid for whoever holds that view, and the table reads the new ones."""
        blob = self.blob
        try:
            blob += data
        except BufferError:
            blob = self.blob = blob + data
        return blob

    # ------------------------------------------------------------------ lookups
    def __len__(self) -> int:
        return self.n

    def get(self, key: str) -> Optional[int]:
        """Id of ``key``, or None if it was never registered."""
        k = self.recent.get(key)
        if k is not None:
            return k
        return self._probe(key)

    def _probe(self, key: str, _crc=zlib.crc32) -> Optional[int]:
        """:meth:`get` through the hash table (remembering a found key in ``recent``)."""
        kb = key.encode("utf-8", "surrogatepass")
        mask = self._mask
        tab = self._tabv
        off = self._offv
        blob = self.blob
        i = _crc(kb) & mask
        while True:
            k = tab[i]
            if k < 0:
                return None
            if blob[off[k]:off[k + 1]] == kb:
                self._remember(key, k)
                return k
            i = (i + 1) & mask

    def _remember(self, key: str, k: int) -> None:
        """Put ``key -> k`` in ``recent`` (emptied first when full)."""
        recent = self.recent
        if len(recent) >= self.RECENT:
            recent.clear()
        recent[key] = k

    def __contains__(self, key: str) -> bool:
        return self.get(key) is not None

    def __getitem__(self, kid: int) -> str:
        if not 0 <= kid < self.n:
            raise IndexError(kid)
        off = self._offv
        return _decode(bytes(self.blob[off[kid]:off[kid + 1]]))

    def __iter__(self):
        return iter(self.take(range(self.n)))

    def take(self, kids: Iterable[int]) -> List[str]:
        """The keys of ``kids`` (any iterable of ids), in that order."""
        off = self._offv
        blob = self.blob
        return [_decode(blob[off[k]:off[k + 1]]) for k in kids]

    def lengths(self) -> np.ndarray:
        """Byte length of every key, by id (int64)."""
        return np.diff(self.off[: self.n + 1])

    def key_bytes(self, kids: np.ndarray) -> Tuple[bytes, np.ndarray]:
        """``(concatenated UTF-8 keys, int64 byte lengths)`` of ``kids``, in that order."""
        from .kernels import codec as _kc
        kids = np.asarray(kids, np.int64)
        lens = self.off[kids + 1] - self.off[kids]
        out = np.empty(int(lens.sum()), np.uint8)
        _kc.gather_values(self.off[: self.n], self.lengths(), kids, self._blob_array(), out)
        return out.tobytes(), lens

    def argsort(self, kids: np.ndarray) -> np.ndarray:
        """Positions that order ``kids`` by key (as ``sorted`` orders the ``str`` keys; stable)."""
        return _kk.argsort_keys(self._blob_array(), self.off, np.asarray(kids, np.int64))

    def framed(self, kids: np.ndarray) -> bytes:
        """``u64 length + UTF-8 bytes`` of each key of ``kids``, concatenated."""
        kids = np.asarray(kids, np.int64)
        lens = self.off[kids + 1] - self.off[kids]
        out = np.empty(int(lens.sum()) + 8 * kids.shape[0], np.uint8)
        _kk.frame_keys(self._blob_array(), self.off, kids, out)
        return out.tobytes()

    # ------------------------------------------------------------------ registration
    def add(self, key: str) -> int:
        """Id of ``key``, registering it if new (one probe either way; the pair is then
        remembered in ``recent``, so applying to a working set of keys does not probe)."""
        k = self.recent.get(key)
        if k is not None:
            return k
        if 2 * (self.n + 1) > self.tab.shape[0] or self.n + 2 > self.off.shape[0]:
            self._reserve(1)
        kb = key.encode("utf-8", "surrogatepass")
        mask = self._mask
        tab = self._tabv
        off = self._offv
        blob = self.blob
        i = zlib.crc32(kb) & mask
        while True:
            k = tab[i]
            if k < 0:
                break
            if blob[off[k]:off[k + 1]] == kb:
                self._remember(key, k)
                return k
            i = (i + 1) & mask
        k = self.n
        blob = self._extend_blob(kb)
        off[k + 1] = len(blob)
        tab[i] = k
        self.n = k + 1
        self._remember(key, k)
        return k

    def add_many(self, keys: Sequence[str]) -> np.ndarray:
        """Ids of many keys (int64, one per key), registering new ones in first-seen order."""
        enc = [k.encode("utf-8", "surrogatepass") for k in keys]
        lens = np.fromiter(map(len, enc), dtype=np.int64, count=len(enc))
        return self.add_blob(b"".join(enc), lens)

    def add_blob(self, joined: bytes, lens: np.ndarray) -> np.ndarray:
        """Like :meth:`add_many` for keys given as concatenated UTF-8 bytes and their lengths."""
        q = int(lens.shape[0])
        qoff = np.zeros(q + 1, np.int64)
        np.cumsum(lens, out=qoff[1:])
        qblob = np.frombuffer(joined, np.uint8) if len(joined) else np.zeros(0, np.uint8)
        self._reserve(q)
        kids = np.empty(q, np.int64)
        first = np.empty(q, np.int64)
        m = int(_kk.find_or_add(qblob, qoff, self._blob_array(), self.off, self.n, self.tab,
                                _kk.CRC_TABLE, kids, first))
        if m:
            n = self.n
            firsts = first[:m]
            new_lens = qoff[firsts + 1] - qoff[firsts]
            try:
                if m == q:  # every key new and distinct: the bytes are the query, in order
                    self._extend_blob(joined)
                else:
                    out = np.empty(int(new_lens.sum()), np.uint8)
                    from .kernels import codec as _kc
                    _kc.gather_values(qoff[:-1], np.diff(qoff), firsts, qblob, out)
                    self._extend_blob(out.tobytes())
            except BaseException:
                # the kernel put ids n.. into slots that were empty: empty them again, so a
                # failed registration (say, a BufferError while the blob is exported) leaves
                # the table exactly as it was, with no id that points past the keys
                self.tab[self.tab >= n] = -1
                raise
            np.cumsum(new_lens, out=self.off[n + 1:n + m + 1])
            self.off[n + 1:n + m + 1] += self.off[n]
            self.n = n + m
        return kids

    # ------------------------------------------------------------------ bulk views
    @classmethod
    def from_blob(cls, joined: bytes, lens: np.ndarray) -> "KeyTable":
        """A table of keys given as concatenated bytes (which must be distinct)."""
        t = cls(int(lens.shape[0]))
        kids = t.add_blob(joined, lens)
        if t.n != int(lens.shape[0]):
            raise ValueError("repeated key")
        del kids
        return t

    def nbytes(self) -> int:
        """Bytes held: key bytes, offsets and the hash table (capacity)."""
        return len(self.blob) + self.off.nbytes + self.tab.nbytes

    def copy(self) -> "KeyTable":
        """An independent copy."""
        t = KeyTable.__new__(KeyTable)
        t.blob = bytearray(self.blob)
        t.recent = {}
        t.off = self.off.copy()
        t._offv = memoryview(t.off)
        t.n = self.n
        t._set_table(self.tab.copy())
        return t

    def __reduce__(self):
        return (KeyTable.from_blob, (bytes(self.blob), self.lengths()))

    def __repr__(self) -> str:
        return f"KeyTable({self.n} keys, {len(self.blob)} key bytes)"
