"""The hash chain: every record links to the one before it by SHA-256.

Three kinds of record share one chain: :class:`~thermogram.delta.Delta`,
:class:`~thermogram.delta.DeltaBatch`, and :class:`OpRecord` (an operation
such as ``consolidate`` or ``apply_decay`` with its arguments and time).
"""
from __future__ import annotations

from typing import Any, Dict, Iterator, List, Optional, Sequence, Union

from .canonical import encode_value, record_layouts
from .delta import Delta, DeltaBatch, HashedRecord
from .errors import ChainError, ForkError, ValidationError

__all__ = ["OpRecord", "Record", "HashChain"]


class OpRecord(HashedRecord):
    """An operation on the capsule, recorded so that replay can redo it.

    Attributes
    ----------
    op : str
        Operation name (``"consolidate"``, ``"apply_decay"``, ``"genesis"``...).
    args : dict
        Its arguments (plain values: ints, strs, lists, dicts, arrays).
    timestamp : int
        Clock reading (ns) when it ran; replay uses it as "now".
    prev_hash, hash : str
    """

    kind = "op"
    __slots__ = ("op", "args", "timestamp", "prev_hash", "_hash", "_abytes")

    def __init__(self, op: str, args: Optional[Dict[str, Any]] = None, timestamp: int = 0,
                 prev_hash: Optional[str] = None):
        self.op = op
        self.args = {} if args is None else args
        self.timestamp = int(timestamp)
        self.prev_hash = prev_hash
        self._hash: Optional[str] = None
        self._abytes: Optional[bytes] = None

    def canonical_bytes(self) -> bytes:
        """The exact bytes that :attr:`hash` covers: tag, op name, timestamp, encoded args, prev_hash.

        Always encodes ``args`` afresh (so a verify sees any change); the encoding is kept
        for :meth:`args_bytes`."""
        ab = encode_value(self.args)
        self._abytes = ab
        return record_layouts().encode_op(self.op, self.timestamp, ab, self.prev_hash)

    def args_bytes(self) -> bytes:
        """The canonical encoding of ``args`` as last hashed or loaded (what files store)."""
        if self._abytes is None:
            self._abytes = encode_value(self.args)
        return self._abytes

    def keys(self) -> List[str]:
        """Keys this record changes: always empty (an operation carries no deltas)."""
        return []

    def deltas(self) -> Iterator[Delta]:
        """The deltas this record holds: always an empty iterator."""
        return iter(())

    def copy(self) -> "OpRecord":
        """A new record with the same fields and cached hash (``args`` is a new dict holding
        the same values, so replaying the copy may re-point a value at its own capsule's arena
        without touching the original)."""
        r = OpRecord(self.op, dict(self.args), self.timestamp, self.prev_hash)
        r._hash = self._hash
        r._abytes = self._abytes
        return r

    def __repr__(self) -> str:
        return f"OpRecord({self.op!r}, t={self.timestamp}, hash={self.hash[:12]}…)"


Record = Union[Delta, DeltaBatch, OpRecord]


class HashChain:
    """An append-only list of records, each linked to its predecessor.

    ``append`` links a record whose ``prev_hash`` is None to the head; a
    record with an explicit ``prev_hash`` that is not the head is a fork
    and raises :class:`ForkError`.
    """

    def __init__(self) -> None:
        self.records: List[Record] = []
        self.head_hash: Optional[str] = None
        self._ids: Dict[str, int] = {}  # delta/batch id -> first record holding it
        self._ids_upto = 0  # records[:_ids_upto] are indexed in _ids

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records)

    def __getitem__(self, i):
        return self.records[i]

    def check_link(self, record: Record) -> None:
        """Raise :class:`ForkError` if ``record`` names a prev_hash other than the head."""
        prev = record.prev_hash
        if prev is None:
            return
        if self.head_hash is None:
            raise ForkError(f"first record must not name a prev_hash (got {prev[:16]}…)",
                            index=len(self.records))
        if prev != self.head_hash:
            raise ForkError(f"record links to {prev[:16]}… but the head is {self.head_hash[:16]}… "
                            "(a fork: apply on top of the current head, or pass prev_hash=None)",
                            index=len(self.records))

    def append(self, record: Record) -> str:
        """Link ``record`` to the head (checking for forks), hash it, append it.

        Returns the new head hash.
        """
        if not isinstance(record, (Delta, DeltaBatch, OpRecord)):
            raise ValidationError(f"not a chain record: {type(record).__name__}")
        self.check_link(record)
        record._link(self.head_hash)
        self.records.append(record)
        self.head_hash = record.hash
        return self.head_hash

    def push_linked(self, record: Record) -> None:
        """Append a record already linked to the head by :meth:`check_link` + ``_link``."""
        self.records.append(record)
        self.head_hash = record.hash

    def check_verified(self, record: Record, rehash: bool = True) -> None:
        """Raise :class:`ChainError` unless ``record`` links to the head and (``rehash``)
        its stored hash matches its content; changes nothing."""
        i = len(self.records)
        if record.prev_hash != self.head_hash:
            raise ChainError(f"record {i} does not link to the previous record", index=i)
        if rehash and record.hash != record.compute_hash():
            raise ChainError(f"record {i} hash does not match its content", index=i)

    def append_verified(self, record: Record, rehash: bool = True) -> str:
        """Append a record that already carries its link and hash (replay, load);
        raises :class:`ChainError` if either does not check out (``rehash=False``
        checks the link only, for bytes already checked otherwise)."""
        self.check_verified(record, rehash)
        self.records.append(record)
        self.head_hash = record.hash
        return self.head_hash

    def adopt_trusted(self, records: Sequence[Record]) -> None:
        """Append records whose links and hashes were already checked elsewhere (a file's
        checksums): only the head is taken from the last one."""
        if records:
            self.records.extend(records)
            self.head_hash = records[-1].hash

    def first_invalid(self) -> Optional[int]:
        """Index of the first record whose hash or link is wrong, or None."""
        prev: Optional[str] = None
        for i, r in enumerate(self.records):
            if r.prev_hash != prev or r.hash != r.compute_hash():
                return i
            prev = r.hash
        if self.head_hash != prev:
            return len(self.records)
        return None

    def verify(self) -> bool:
        """Check every hash and link; raise :class:`ChainError` (with ``.index``)
        at the first bad record, else return True."""
        prev: Optional[str] = None
        for i, r in enumerate(self.records):
            if r.prev_hash != prev:
                raise ChainError(f"record {i} does not link to the previous record", index=i)
            if r.hash != r.compute_hash():
                raise ChainError(f"record {i} hash does not match its content (tampered)", index=i)
            prev = r.hash
        if self.head_hash != prev:
            raise ChainError("head hash does not match the last record", index=len(self.records))
        return True

    # queries -------------------------------------------------------------
    def iter_deltas(self) -> Iterator[Delta]:
        """Every delta, batches expanded, in chain order."""
        for r in self.records:
            if r.kind == "delta":
                yield r
            elif r.kind == "batch":
                yield from r.deltas()

    def history(self, key: str) -> List[Delta]:
        """Every delta on ``key``, oldest first."""
        out: List[Delta] = []
        for r in self.records:
            if r.kind == "delta":
                if r.key == key:
                    out.append(r)
            elif r.kind == "batch":
                for i, k in enumerate(r.keys):
                    if k == key:
                        out.append(r.delta(i))
        return out

    def latest(self, key: str) -> Optional[Delta]:
        """The newest delta on ``key``, or None."""
        for r in reversed(self.records):
            if r.kind == "delta":
                if r.key == key:
                    return r
            elif r.kind == "batch":
                ks = r.keys
                for i in range(len(ks) - 1, -1, -1):
                    if ks[i] == key:
                        return r.delta(i)
        return None

    def since(self, hash: str) -> List[Record]:
        """Records after the one whose hash is ``hash`` (empty if unknown)."""
        for i, r in enumerate(self.records):
            if r.hash == hash:
                return self.records[i + 1:]
        return []

    def index_of_id(self, rid: str) -> Optional[int]:
        """Position of the first delta or batch record whose ``id`` is ``rid``, or None.

        The index of ids is extended lazily over the records appended since the last
        call (by any path: live, replay, load), so a lookup costs O(1) amortized."""
        recs = self.records
        n = len(recs)
        if self._ids_upto > n:  # records were replaced: index again
            self._ids.clear()
            self._ids_upto = 0
        ids = self._ids
        for i in range(self._ids_upto, n):
            r = recs[i]
            if r.kind != "op":
                ids.setdefault(r.id, i)
        self._ids_upto = n
        return ids.get(rid)

    def index_of(self, hash: str) -> Optional[int]:
        """Position of the record whose hash is ``hash``, or None if no record has it."""
        for i, r in enumerate(self.records):
            if r.hash == hash:
                return i
        return None
