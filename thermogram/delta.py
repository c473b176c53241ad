"""Deltas: the only way a capsule's content changes.

A :class:`Delta` is one keyed change; a :class:`DeltaBatch` is many of them
in columns (one chain record, one hash). Both hash a canonical,
length-prefixed, domain-tagged encoding of every field with SHA-256.

Why this module is one piece (~650 lines): :class:`Delta` and :class:`DeltaBatch` are the two shapes
of one record kind and share :class:`HashedRecord`, validation and the value-column helpers;
most of the length is their numpy-style docstrings. Their byte encoding lives in
:mod:`thermogram.io.records`.
"""
from __future__ import annotations

import enum
import hashlib
import os
import random
import time
from typing import Any, Callable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from .canonical import record_layouts
from .errors import ValidationError, parse_int_enum
from .signal import SIGNAL, Signal, as_signal_vector, signals_from_floats

__all__ = ["DeltaType", "Delta", "DeltaBatch", "new_id", "reseed_ids", "validate_key", "Clock"]

Clock = Callable[[], int]
"""A clock returns the current time as integer nanoseconds since the Unix epoch (UTC)."""

_rng = random.Random(os.urandom(32))
# ids drawn ahead, the next one last (see new_id); emptied with every re-seed
_ids: List[str] = []
_ID_BLOCK = 256


def _reseed_after_fork() -> None:
    _ids.clear()  # a child must not hand out ids its parent holds too
    _rng.seed(os.urandom(32))


os.register_at_fork(after_in_child=_reseed_after_fork)


def _draw_ids() -> None:
    """Append the next ``_ID_BLOCK`` ids, in reverse order, to ``_ids``.

    One ``getrandbits(128 * k)`` yields the same bits, 32-bit word by word, as ``k`` calls of
    ``getrandbits(128)``: chunk ``i`` (from the least significant end) is the ``i``-th id of the
    one-at-a-time sequence, so a seeded generator gives the same ids either way. The version
    and variant bits of every chunk are set with two big-integer operations; the big-endian
    bytes of the block are then the ids last one first, each big-endian, and their hex digits
    are laid out as ``8-4-4-4-12`` with five slice copies (numpy) and split by ``str.split``:
    a fraction of the cost of formatting each id by itself."""
    k = _ID_BLOCK
    raw = ((_rng.getrandbits(128 * k) & _UUID_KEEP_BLOCK) | _UUID_SET_BLOCK).to_bytes(16 * k, "big")
    hexd = np.frombuffer(raw.hex().encode("ascii"), np.uint8).reshape(k, 32)
    text = np.empty((k, 37), np.uint8)  # 36 characters and a separator per id
    text[:, _UUID_DASHES] = ord("-")
    text[:, 36] = ord(" ")
    for dst, src in _UUID_GROUPS:
        text[:, dst:dst + src[1] - src[0]] = hexd[:, src[0]:src[1]]
    _ids.extend(text.tobytes().decode("ascii").split())


# RFC 4122 version 4: bits 76-79 are the version (0100), bits 62-63 the variant (10)
_UUID_KEEP = ~((0xF << 76) | (0x3 << 62)) & ((1 << 128) - 1)
_UUID_SET = (0x4 << 76) | (0x2 << 62)
# the same masks repeated for every 128-bit chunk of a block
_UUID_KEEP_BLOCK = sum(_UUID_KEEP << (128 * i) for i in range(_ID_BLOCK))
_UUID_SET_BLOCK = sum(_UUID_SET << (128 * i) for i in range(_ID_BLOCK))
# where the hex digit groups of a UUID string (8-4-4-4-12) come from and go, and its dashes
_UUID_GROUPS = ((0, (0, 8)), (9, (8, 12)), (14, (12, 16)), (19, (16, 20)), (24, (20, 32)))
_UUID_DASHES = [8, 13, 18, 23]


def new_id() -> str:
    """A random RFC 4122 version-4 UUID string.

    Ids are drawn from the generator 256 at a time (see ``_draw_ids``); ``list.pop`` hands
    each out once, from any thread."""
    while True:
        try:
            return _ids.pop()
        except IndexError:  # (another thread may take the block before this one does)
            _draw_ids()


def reseed_ids(seed: Any) -> None:
    """Re-seed the id generator (reproducible ids, for tests and fingerprints)."""
    _ids.clear()
    _rng.seed(seed)


_frombuffer = np.frombuffer
_new_object = object.__new__
_MAX_POSITIVE = Signal.MAX_POSITIVE
_ndarray = np.ndarray
_time_ns = time.time_ns
# the read-only value array of each one-signal value met so far (at most 3 x 256): a value
# over immutable bytes can never be written, so every Delta holding it may share one array
_ONE_SIGNAL: dict = {}
# polarity bytes a SIGNAL value may hold (-1, 0, +1 as int8)
_POLARITY_BYTES = b"\x00\x01\xff"


class DeltaType(enum.IntEnum):
    """Kind of change; values are the reference's type bytes."""

    CREATE = 0
    UPDATE = 1
    DELETE = 2
    MERGE = 3

    @classmethod
    def parse(cls, value: Any) -> "DeltaType":
        """DeltaType from itself, its byte, or a name (``"update"``, ``"Merge"``...)."""
        return parse_int_enum(cls, value, "delta type", "create, update, delete or merge")


# the members as module constants: on CPython 3.11 the enum metaclass defines __getattr__, so
# every attribute read on the class (``DeltaType.CREATE``) takes the slow lookup hook (~0.2 us
# here); a module global costs ~15 ns
_CREATE, _UPDATE, _DELETE, _MERGE = DeltaType.CREATE, DeltaType.UPDATE, DeltaType.DELETE, DeltaType.MERGE


def validate_key(key: Any, what: str = "key", *, allow_empty: bool = False) -> str:
    """Return ``key`` if it is a str encodable as UTF-8, else raise.

    The empty key is rejected unless ``allow_empty``: the reference crate accepts it, so
    deltas, reads and capsules with ``semantics="reference"`` allow it, while new writes
    under the default semantics keep rejecting it (README, *Semantics and the reference*).
    """
    if not isinstance(key, str):
        raise ValidationError(f"{what} must be a str, got {type(key).__name__}")
    if not key and not allow_empty:
        raise ValidationError(f"{what} must not be empty (the empty key is accepted only by "
                              "capsules with semantics='reference' and in files the reference wrote)")
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(f"{what} is not valid UTF-8 (lone surrogate)") from None
    return key


def _timestamp(ts: Any, clock: Optional[Clock]) -> int:
    if ts is None:
        return int(clock()) if clock is not None else time.time_ns()
    if type(ts) is int and -(2 ** 63) <= ts < 2 ** 63:
        return ts
    if isinstance(ts, (int, np.integer)) and not isinstance(ts, bool):
        t = int(ts)
        if not -(2 ** 63) <= t < 2 ** 63:
            raise ValidationError(f"timestamp out of int64 range: {t}")
        return t
    raise ValidationError(f"timestamp must be integer nanoseconds since the epoch, got {ts!r}")


class HashedRecord:
    """What every chain record shares: a lazily computed SHA-256 of its canonical
    bytes (``hash``), and linking to a predecessor (``prev_hash``)."""

    __slots__ = ()

    def canonical_bytes(self) -> bytes:  # pragma: no cover - every record defines it
        """The domain-tagged, length-prefixed encoding of every field that the hash covers."""
        raise NotImplementedError

    def compute_hash(self) -> str:
        """SHA-256 hex digest of :meth:`canonical_bytes` ("" if a field was tampered
        into something that cannot be encoded, so it never matches)."""
        try:
            return hashlib.sha256(self.canonical_bytes()).hexdigest()
        except (TypeError, ValueError, OverflowError, AttributeError):
            return ""

    @property
    def hash(self) -> str:
        """SHA-256 hex digest of the record, computed on first use and cached (assignable)."""
        if self._hash is None:
            self._hash = self.compute_hash()
        return self._hash

    @hash.setter
    def hash(self, value: str) -> None:
        self._hash = value

    def verify_hash(self) -> bool:
        """True when the stored hash matches the fields."""
        return self.hash == self.compute_hash()

    def _link(self, prev_hash: Optional[str]) -> bytes:
        """Set ``prev_hash`` and the hash; returns the canonical bytes hashed (so a
        journal can write them without encoding the record twice)."""
        self.prev_hash = prev_hash
        cb = self.canonical_bytes()
        self._hash = hashlib.sha256(cb).hexdigest()
        return cb


_EMPTY = np.zeros(0, dtype=SIGNAL)
# the columns of an empty batch (read-only: every empty batch shares them)
_NO_TYPES = np.zeros(0, np.uint8)
_NO_OFFSETS = np.zeros(1, np.int64)
_NO_TIMES = np.zeros(0, np.int64)
_EMPTY.flags.writeable = False
for _a in (_NO_TYPES, _NO_OFFSETS, _NO_TIMES):
    _a.flags.writeable = False
del _a


class Delta(HashedRecord):
    """One change to one key.

    Build with :meth:`create`, :meth:`update`, :meth:`delete` or
    :meth:`merge`. ``timestamp`` is integer ns (UTC); pass it explicitly or
    inject a ``clock``. ``prev_hash=None`` means "link to the current head"
    when the delta is applied; an explicit ``prev_hash`` must equal the head.

    Parameters
    ----------
    delta_type : DeltaType, str or int
        ``"create"``, ``"update"``, ``"delete"`` or ``"merge"`` (any case), or
        the :class:`DeltaType` member or its code.
    key : str
        The key changed: valid UTF-8. It may be empty, as in the reference crate; a capsule
        with the default ``semantics="fixed"`` refuses to apply such a delta.
    value : array_like, optional
        The new value: a 1-D SIGNAL vector, or signed floats converted with
        :func:`~thermogram.signal.signals_from_floats` (clamped to [-1, 1]).
        Default: empty.
    source : str, optional
        Who made the change (free text, hashed).
    strength : Signal or (polarity, magnitude), optional
        Default: ``Signal.MAX_POSITIVE``.
    timestamp : int, optional
        Nanoseconds since the Unix epoch (UTC). Default: ``clock()``, else now.
    prev_hash : str, optional
        The head this delta must link to; None links to whatever the head is.
    id : str, optional
        Default: a random UUID4.
    observation_count : int, optional
        0 to 2**64 - 1, or None.
    custom : bytes, optional
        Opaque user bytes, hashed with the rest.
    clock : callable, optional
        Returns int ns; read when ``timestamp`` is None.

    Attributes
    ----------
    id, delta_type, key, value, timestamp, source, strength,
    observation_count, custom, prev_hash : the hashed fields
    hash : str
        SHA-256 (hex) of the canonical encoding of all fields above.

    Raises
    ------
    ValidationError
        If a field is malformed: unknown type, non-UTF-8 key, NaN or
        infinite value, bad polarity, timestamp outside int64, non-str source.

    See Also
    --------
    DeltaBatch : many deltas as columns, one chain record.

    Examples
    --------
    >>> d = Delta.update("w", [0.5, -1.0], "doc", strength=Signal.positive(200), timestamp=1_000)
    >>> d.delta_type, d.key, d.value.tolist()
    (<DeltaType.UPDATE: 1>, 'w', [(1, 127), (-1, 255)])
    >>> d.strength, d.timestamp, d.prev_hash
    (Signal(+1, 200), 1000, None)
    >>> len(d.hash), d.verify_hash()
    (64, True)
    >>> Delta("rename", "w")
    Traceback (most recent call last):
        ...
    thermogram.errors.ValidationError: unknown delta type 'rename'; expected create, update, delete or merge
    """

    __slots__ = ("id", "delta_type", "key", "value", "timestamp", "source", "strength",
                 "observation_count", "custom", "prev_hash", "_hash")
    kind = "delta"

    def __init__(self, delta_type: Any, key: str, value: Any = None, *, source: str = "",
                 strength: Any = None, timestamp: Optional[int] = None,
                 prev_hash: Optional[str] = None, id: Optional[str] = None,
                 observation_count: Optional[int] = None, custom: Optional[bytes] = None,
                 clock: Optional[Clock] = None):
        self._fill(delta_type, key, value, source, strength, timestamp, prev_hash, id, observation_count,
                   custom, clock)

    def _fill(self, delta_type: Any, key: Any, value: Any, source: Any, strength: Any, timestamp: Any,
              prev_hash: Any, id: Any, observation_count: Any, custom: Any, clock: Optional[Clock]) -> None:
        """Check and set every field (the constructor's body, with positional arguments: the
        named constructors call it on a bare instance, because calling a class with keyword
        arguments costs ~0.5 us more than this in CPython)."""
        self.delta_type = delta_type if type(delta_type) is DeltaType else DeltaType.parse(delta_type)
        # an ASCII str is valid UTF-8: only other keys go through the full check
        self.key = key if type(key) is str and key.isascii() else validate_key(key, allow_empty=True)
        if value is None:
            self.value = _EMPTY
        elif (type(value) is _ndarray and value.ndim == 1 and (value.dtype is SIGNAL or value.dtype == SIGNAL)
              and 0 < len(value) <= 256):
            # a short SIGNAL vector (the common case): copied into an immutable bytes object
            # (so the array over it is read-only for good), polarities checked on the raw
            # bytes; as_signal_vector raises the usual error for a bad one
            b = value.tobytes()
            if len(b) == 2:  # one signal: one of 768 read-only arrays, shared (see _ONE_SIGNAL)
                v = _ONE_SIGNAL.get(b)
                if v is None:
                    if b[0] not in _POLARITY_BYTES:
                        as_signal_vector(value)
                    v = _ONE_SIGNAL[b] = _frombuffer(b, SIGNAL)
                self.value = v
            else:
                if b[0::2].translate(None, _POLARITY_BYTES):
                    as_signal_vector(value)
                self.value = _frombuffer(b, SIGNAL)
        else:
            self.value = as_signal_vector(value)
        if not isinstance(source, str):
            raise ValidationError(f"source must be a str, got {type(source).__name__}")
        self.source = source
        self.strength = (_MAX_POSITIVE if strength is None
                         else strength if type(strength) is Signal else Signal.coerce(strength, "strength"))
        self.timestamp = _time_ns() if timestamp is None and clock is None else _timestamp(timestamp, clock)
        if prev_hash is not None and not isinstance(prev_hash, str):
            raise ValidationError("prev_hash must be a hex str or None")
        self.prev_hash = prev_hash
        if id is None:
            try:
                id = _ids.pop()  # new_id() without its call
            except IndexError:
                id = new_id()
        elif not isinstance(id, str) or not id:
            raise ValidationError("id must be a non-empty str")
        self.id = id
        if observation_count is None:
            self.observation_count = None
        elif (not isinstance(observation_count, (int, np.integer)) or isinstance(observation_count, bool)
              or not 0 <= int(observation_count) < 2 ** 64):
            raise ValidationError("observation_count must be None or an integer in 0..2**64-1")
        else:
            self.observation_count = int(observation_count)
        if custom is None:
            self.custom = None
        elif isinstance(custom, (bytes, bytearray)):
            self.custom = bytes(custom)
        else:
            raise ValidationError("custom must be bytes or None")
        self._hash: Optional[str] = None

    # constructors ------------------------------------------------------
    @classmethod
    def create(cls, key: str, value: Any, source: str = "", *, strength: Any = None,
               **kw: Any) -> "Delta":
        """A Create delta (strength defaults to ``Signal.MAX_POSITIVE``, as the reference)."""
        # :meth:`_named` written out: the most used constructor saves its extra call (~0.1 us)
        if kw or cls is not Delta:
            return cls(_CREATE, key, value, source=source, strength=strength, **kw)
        d = _new_object(Delta)
        d._fill(_CREATE, key, value, source, strength, None, None, None, None, None, None)
        return d

    @classmethod
    def update(cls, key: str, value: Any, source: str = "", strength: Any = None,
               prev_hash: Optional[str] = None, **kw: Any) -> "Delta":
        """An Update delta."""
        return cls._named(_UPDATE, key, value, source, strength, prev_hash, kw)

    @classmethod
    def delete(cls, key: str, source: str = "", prev_hash: Optional[str] = None,
               **kw: Any) -> "Delta":
        """A Delete delta (empty value, strength ``MAX_POSITIVE``)."""
        return cls._named(_DELETE, key, None, source, kw.pop("strength", None), prev_hash, kw)

    @classmethod
    def merge(cls, key: str, value: Any, source: str = "", strength: Any = None,
              prev_hash: Optional[str] = None, **kw: Any) -> "Delta":
        """A Merge delta: strength folds by the rule, the stored value is kept."""
        return cls._named(_MERGE, key, value, source, strength, prev_hash, kw)

    @classmethod
    def _named(cls, delta_type: DeltaType, key: Any, value: Any, source: Any, strength: Any,
               prev_hash: Any, kw: dict) -> "Delta":
        """What update / delete / merge build: a bare Delta filled positionally, or the class
        call when there are more fields or the class is a subclass (its constructor runs)."""
        if kw or cls is not Delta:
            return cls(delta_type, key, value, source=source, strength=strength, prev_hash=prev_hash, **kw)
        d = _new_object(Delta)
        d._fill(delta_type, key, value, source, strength, None, prev_hash, None, None, None, None)
        return d

    # hashing -----------------------------------------------------------
    def canonical_bytes(self) -> bytes:
        """The exact bytes that :attr:`hash` covers (the layout is
        :func:`thermogram.io.records.encode_delta`)."""
        return record_layouts().encode_delta(self.delta_type, self.id, self.key, self.value, self.timestamp,
                                             self.source, self.strength, self.observation_count, self.custom,
                                             self.prev_hash)

    # views ---------------------------------------------------------------
    def keys(self) -> List[str]:
        """Keys this record changes: a one-item list holding ``key``."""
        return [self.key]

    def deltas(self) -> Iterator["Delta"]:
        """The deltas this record holds: yields only itself."""
        yield self

    def copy(self) -> "Delta":
        """A shallow copy: a new Delta with the same fields and cached hash (``value`` is shared)."""
        d = object.__new__(Delta)
        d.id = self.id
        d.delta_type = self.delta_type
        d.key = self.key
        d.value = self.value
        d.timestamp = self.timestamp
        d.source = self.source
        d.strength = self.strength
        d.observation_count = self.observation_count
        d.custom = self.custom
        d.prev_hash = self.prev_hash
        d._hash = self._hash
        return d

    def to_dict(self) -> dict:
        """All fields plus ``hash`` as a plain dict.

        ``delta_type`` is its lower-case name, ``value`` a list of ``[polarity, magnitude]``
        pairs, ``strength`` one such pair; ``custom`` stays bytes (or None).
        """
        return {"id": self.id, "delta_type": self.delta_type.name.lower(), "key": self.key,
                "value": [list(x) for x in self.value.tolist()], "timestamp": self.timestamp,
                "source": self.source, "strength": list(self.strength),
                "observation_count": self.observation_count, "custom": self.custom,
                "prev_hash": self.prev_hash, "hash": self.hash}

    def __eq__(self, other):
        if not isinstance(other, Delta):
            return NotImplemented
        return self.canonical_bytes() == other.canonical_bytes() and self.hash == other.hash

    __hash__ = None  # mutable

    def __repr__(self) -> str:
        return (f"Delta({self.delta_type.name.lower()}, key={self.key!r}, len={len(self.value)}, "
                f"strength={self.strength!r}, hash={self.hash[:12]}…)")


def _as_value_columns(values: Any, n: int):
    """(flat SIGNAL array, int64 offsets[n+1]) from the accepted value layouts."""
    if isinstance(values, tuple) and len(values) == 2 and _looks_like_float_offsets(values, n):
        # (flat, offsets) with float offsets: refused, never read as a second value row
        raise ValidationError(f"value offsets must be an integer array, got dtype {values[1].dtype}")
    if isinstance(values, tuple) and len(values) == 2 and isinstance(values[1], np.ndarray) \
            and values[1].dtype.kind in "iu":
        flat = as_signal_vector(values[0], "values")
        _check_int_range(values[1], "value offsets", 0, 2 ** 63)
        offs = np.ascontiguousarray(values[1], dtype=np.int64)
        if offs.shape != (n + 1,) or offs[0] != 0 or offs[-1] != flat.shape[0] or (np.diff(offs) < 0).any():
            raise ValidationError("value offsets must be non-decreasing, start at 0, end at len(values)")
        return flat, offs
    if isinstance(values, np.ndarray) and values.ndim == 2:
        if values.shape[0] != n:
            raise ValidationError(f"values has {values.shape[0]} rows for {n} keys")
        if values.dtype == SIGNAL:
            flat = np.ascontiguousarray(values).reshape(-1).copy()
            from .signal import validate_polarity
            validate_polarity(flat, "values")
        elif values.dtype.kind == "f":
            try:
                flat = signals_from_floats(np.ascontiguousarray(values, dtype=np.float32).reshape(-1))
            except ValidationError as e:
                raise ValidationError(f"values: {e}") from None
        else:
            raise ValidationError(f"values must be SIGNAL or float, got dtype {values.dtype}")
        d = values.shape[1]
        offs = np.arange(n + 1, dtype=np.int64) * d
        flat.flags.writeable = False
        return flat, offs
    if isinstance(values, (list, tuple)) or (isinstance(values, np.ndarray) and values.dtype == object):
        if len(values) != n:
            raise ValidationError(f"values has {len(values)} items for {n} keys")
        parts = [as_signal_vector(v, f"values[{i}]") for i, v in enumerate(values)]
        lens = np.fromiter((p.shape[0] for p in parts), dtype=np.int64, count=n)
        offs = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(lens, out=offs[1:])
        flat = np.concatenate(parts) if parts else np.zeros(0, SIGNAL)
        flat.flags.writeable = False
        return flat, offs
    raise ValidationError("values must be a 2-D SIGNAL/float array, a list of vectors, "
                          "or a (flat, offsets) pair")


def _looks_like_float_offsets(values: tuple, n: int) -> bool:
    """Whether a 2-tuple ``values`` is a ``(flat, offsets)`` pair with float offsets: the second
    item a float array of n + 1 entries (for n == 2, where it could also be a row of three
    values, only when it also runs from 0 to ``len(flat)``, non-decreasing)."""
    flat, offs = values
    if not isinstance(offs, np.ndarray) or offs.dtype.kind != "f" or offs.shape != (n + 1,):
        return False
    if n != 2:
        return True
    try:
        m = len(flat)
    except TypeError:
        return False
    return bool(offs[0] == 0 and offs[-1] == m and (np.diff(offs) >= 0).all())


def _check_int_range(a: np.ndarray, what: str, lo: int, hi: int) -> None:
    """Raise :class:`ValidationError` unless the integer array ``a`` lies in ``[lo, hi)``
    (checked before any cast, so a uint64 2**63 is never read as -2**63)."""
    if a.dtype.kind not in "iu":
        raise ValidationError(f"{what} must be integers, got dtype {a.dtype}")
    if a.size and (int(a.min()) < lo or int(a.max()) >= hi):
        raise ValidationError(f"{what} must lie in [{lo}, {hi})")


def _uniform(one: np.ndarray, n: int) -> np.ndarray:
    """A read-only length-``n`` column repeating ``one[0]``, without storing n copies."""
    return np.broadcast_to(one, (n,))


class DeltaBatch(HashedRecord):
    """Many deltas as columns: one chain record, one SHA-256 over all columns.

    Build with :meth:`from_arrays` (fast path) or :meth:`from_deltas`; the
    constructor takes the finished columns. Indexing and iteration give
    :class:`Delta` views (ids ``"{batch id}#{i}"``).

    Parameters
    ----------
    keys : sequence of str
        One key per row; non-empty, valid UTF-8. Rows may repeat a key.
    types : ndarray of uint8, shape (n,)
        :class:`DeltaType` codes (0 to 3).
    values : ndarray of SIGNAL, shape (m,)
        Every row's value, concatenated.
    offsets : ndarray of int64, shape (n + 1,)
        Row ``i`` is ``values[offsets[i]:offsets[i+1]]``; starts at 0, ends at m.
    strengths : ndarray of SIGNAL, shape (n,)
    timestamps : ndarray of int64, shape (n,)
        Nanoseconds since the Unix epoch (UTC), one per row.
    source : str, optional
        Who made the changes.
    id : str, optional
        Default: a random UUID4.
    timestamp : int, optional
        The record's own time (ns). Default: ``clock()``, else now.
    prev_hash : str, optional
        The head this batch must link to; None links to whatever the head is.
    clock : callable, optional
        Returns int ns; read when ``timestamp`` is None.

    Attributes
    ----------
    keys : tuple of str
        Once the batch is applied, the keys are held as ids into the capsule's
        key table (no ``str`` per row); ``keys`` then builds the tuple on access.
    types : uint8 array of :class:`DeltaType` codes
    values : flat SIGNAL array; row ``i`` is ``values[offsets[i]:offsets[i+1]]``
    offsets : int64 array, length n + 1
    strengths : SIGNAL array, length n
    timestamps : int64 array (ns), length n
    source, id, timestamp, prev_hash, hash : record fields

    Raises
    ------
    ValidationError
        If a column has the wrong dtype or length, a key is empty or not
        UTF-8, a type code or polarity is unknown, or the offsets do not
        cover ``values`` in order.

    See Also
    --------
    Delta : one change to one key.

    Examples
    --------
    >>> import numpy as np
    >>> vals = np.array([[0.5, 1.0], [-0.25, 0.0]], np.float32)
    >>> b = DeltaBatch.from_arrays(["a", "b"], vals, Signal.positive(150), "update", timestamps=5)
    >>> len(b), b.keys, b.offsets.tolist()
    (2, ('a', 'b'), [0, 2, 4])
    >>> b.value(1).tolist()
    [(-1, 63), (0, 0)]
    >>> d = b[1]
    >>> d.delta_type, d.key, d.strength, d.timestamp
    (<DeltaType.UPDATE: 1>, 'b', Signal(+1, 150), 5)
    >>> [d.key for d in b]
    ['a', 'b']
    >>> DeltaBatch.from_arrays(["a"], vals, timestamps=5)
    Traceback (most recent call last):
        ...
    thermogram.errors.ValidationError: values has 2 rows for 1 keys
    """

    kind = "batch"
    __slots__ = ("id", "source", "timestamp", "_keys", "_kids", "_ktab", "types", "values", "offsets",
                 "strengths", "timestamps", "prev_hash", "_hash", "_kcache")

    def __init__(self, keys, types, values, offsets, strengths, timestamps, *, source="",
                 id=None, timestamp=None, prev_hash=None, clock=None, _trusted=False):
        self._keys = keys if type(keys) is tuple else tuple(keys) if isinstance(keys, list) else keys
        self._kids = None
        self._ktab = None
        self._kcache = None
        self.types = types
        self.values = values
        self.offsets = offsets
        self.strengths = strengths
        self.timestamps = timestamps
        self.source = source
        self.id = new_id() if id is None else id
        self.timestamp = _timestamp(timestamp, clock)
        self.prev_hash = prev_hash
        self._hash = None
        if not _trusted:
            self._validate()

    @property
    def keys(self):
        """The row keys, as a tuple of str."""
        if self._keys is None:
            return tuple(self._ktab.take(self._kids.tolist()))
        return self._keys

    @keys.setter
    def keys(self, keys) -> None:
        self._keys = keys
        self._kids = None
        self._ktab = None
        self._kcache = None

    def bind_keys(self, table, kids: np.ndarray) -> None:
        """Hold the keys as ids ``kids`` into ``table`` (a :class:`~thermogram.keytable.KeyTable`
        that already holds them) instead of ``str`` objects. The content is unchanged."""
        self._kids = np.asarray(kids, np.int32)
        self._ktab = table
        self._keys = None
        self._kcache = None

    def __getstate__(self):
        """Pickle as a free-standing batch: keys as a tuple, not ids into a capsule's table."""
        state = {name: getattr(self, name) for name in DeltaBatch.__slots__}
        if self._keys is None:
            state.update(_keys=self.keys, _kids=None, _ktab=None)
        state["_kcache"] = None
        return (None, state)

    def __setstate__(self, state) -> None:
        for name, value in state[1].items():
            object.__setattr__(self, name, value)

    def _validate(self) -> None:
        n = len(self.keys)
        if not isinstance(self.keys, tuple):
            raise ValidationError("keys must be a sequence of str")
        for k in self.keys:
            if type(k) is not str or not k:
                validate_key(k)
        try:  # one C-speed pass: keys must be valid UTF-8 (no lone surrogates), as a Delta's
            "".join(self.keys).encode("utf-8")
        except UnicodeEncodeError:
            for k in self.keys:
                validate_key(k)
        for name, arr, dt in (("types", self.types, np.uint8), ("offsets", self.offsets, np.int64),
                              ("timestamps", self.timestamps, np.int64)):
            if not isinstance(arr, np.ndarray) or arr.dtype != dt:
                raise ValidationError(f"{name} must be a {np.dtype(dt)} array")
        if self.types.shape != (n,) or self.timestamps.shape != (n,) or self.offsets.shape != (n + 1,):
            raise ValidationError("batch columns must all have one entry per key")
        if n and self.types.max() > 3:
            raise ValidationError(f"unknown delta type code {int(self.types.max())}; expected 0..3")
        if not isinstance(self.strengths, np.ndarray) or self.strengths.dtype != SIGNAL \
                or self.strengths.shape != (n,):
            raise ValidationError("strengths must be a SIGNAL array with one entry per key")
        from .signal import validate_polarity
        validate_polarity(self.strengths, "strengths")
        if not isinstance(self.values, np.ndarray) or self.values.dtype != SIGNAL or self.values.ndim != 1:
            raise ValidationError("values must be a flat SIGNAL array")
        validate_polarity(self.values, "values")
        if self.offsets[0] != 0 or self.offsets[-1] != self.values.shape[0] or (np.diff(self.offsets) < 0).any():
            raise ValidationError("offsets must be non-decreasing from 0 to len(values)")
        if not isinstance(self.source, str):
            raise ValidationError("source must be a str")

    @classmethod
    def from_arrays(cls, keys: Sequence[str], values: Any, strengths: Any = None,
                    types: Any = DeltaType.UPDATE, timestamps: Any = None, *, source: str = "",
                    clock: Optional[Clock] = None, id: Optional[str] = None) -> "DeltaBatch":
        """Columnar batch.

        Parameters
        ----------
        keys : sequence of str
        values : 2-D SIGNAL or float array (one row per key), a list of vectors,
            or a ``(flat SIGNAL array, offsets)`` pair.
        strengths : Signal, SIGNAL array, or None (``MAX_POSITIVE``)
        types : DeltaType / name, or an array of type codes
        timestamps : int ns, int64 array, or None (one clock reading for all)
        """
        keys = list(keys)
        n = len(keys)
        for k in keys:
            if type(k) is not str or not k:
                validate_key(k)
        flat, offs = _as_value_columns(values, n)
        if strengths is None or isinstance(strengths, (Signal, tuple)):
            s = Signal.MAX_POSITIVE if strengths is None else Signal.coerce(strengths, "strength")
            one = np.empty(1, SIGNAL)
            one["polarity"] = s.polarity
            one["magnitude"] = s.magnitude
            st = _uniform(one, n)
        else:
            st = np.array(strengths, copy=True)
            if st.dtype != SIGNAL or st.shape != (n,):
                raise ValidationError("strengths must be a Signal or a SIGNAL array with one entry per key")
        if isinstance(types, np.ndarray):
            if types.dtype.kind not in "iu" or types.shape != (n,):
                raise ValidationError("types must be an integer array with one code per key")
            if n and (types.min() < 0 or types.max() > 3):
                raise ValidationError("unknown delta type code; expected 0..3")
            ty = types.astype(np.uint8)
        else:
            ty = _uniform(np.array([int(DeltaType.parse(types))], np.uint8), n)
        if timestamps is None or isinstance(timestamps, (int, np.integer)):
            ts = _uniform(np.array([_timestamp(timestamps, clock)], np.int64), n)
        else:
            ts = np.asarray(timestamps)
            if ts.dtype.kind not in "iu" or ts.shape != (n,):
                raise ValidationError("timestamps must be int64 nanoseconds, one per key")
            _check_int_range(ts, "timestamps", -(2 ** 63), 2 ** 63)
            ts = ts.astype(np.int64)
        return cls(keys, ty, flat, offs, st, ts, source=source, id=id, clock=clock)

    @classmethod
    def empty(cls, source: str = "", timestamp: Optional[int] = None) -> "DeltaBatch":
        """A batch of no deltas (its own id; ``timestamp`` int ns, default now).

        Examples
        --------
        >>> b = DeltaBatch.empty("snn", timestamp=5)
        >>> len(b), b.source, b.timestamp
        (0, 'snn', 5)
        """
        if not isinstance(source, str):
            raise ValidationError("source must be a str")
        b = object.__new__(cls)
        b._keys, b._kids, b._ktab, b._kcache = (), None, None, None
        b.types, b.values, b.offsets = _NO_TYPES, _EMPTY, _NO_OFFSETS
        b.strengths, b.timestamps = _EMPTY, _NO_TIMES
        b.source = source
        b.id = new_id()
        b.timestamp = time.time_ns() if timestamp is None else _timestamp(timestamp, None)
        b.prev_hash = None
        b._hash = None
        return b

    @classmethod
    def coerce(cls, batch: Any, clock: Optional[Clock] = None, what: str = "apply_batch") -> "DeltaBatch":
        """``batch`` itself if it is a :class:`DeltaBatch`, a batch of it if it is a list or
        tuple of :class:`Delta` (:meth:`from_deltas`), else a :class:`ValidationError`."""
        if isinstance(batch, DeltaBatch):
            return batch
        if isinstance(batch, (list, tuple)):
            return cls.from_deltas(batch, clock=clock)
        raise ValidationError(f"{what} needs a DeltaBatch or a list of Delta, got {type(batch).__name__}")

    @classmethod
    def from_deltas(cls, deltas: Sequence[Delta], *, source: str = "", clock: Optional[Clock] = None) -> "DeltaBatch":
        """Batch holding the same changes as ``deltas`` (their ids and prev_hash are not kept)."""
        deltas = list(deltas)
        for d in deltas:
            if not isinstance(d, Delta):
                raise ValidationError(f"from_deltas needs Delta objects, got {type(d).__name__}")
        n = len(deltas)
        st = np.empty(n, SIGNAL)
        st["polarity"] = [d.strength.polarity for d in deltas]
        st["magnitude"] = [d.strength.magnitude for d in deltas]
        return cls.from_arrays([d.key for d in deltas], [d.value for d in deltas], st,
                               np.array([int(d.delta_type) for d in deltas], dtype=np.uint8),
                               np.array([d.timestamp for d in deltas], dtype=np.int64),
                               source=source, clock=clock)

    def __len__(self) -> int:
        return int(self.types.shape[0]) if self._keys is None else len(self._keys)

    def value(self, i: int) -> np.ndarray:
        """Row ``i``'s value: a view ``values[offsets[i]:offsets[i+1]]`` of SIGNALs (not a copy)."""
        return self.values[self.offsets[i]:self.offsets[i + 1]]

    def key(self, i: int) -> str:
        """Row ``i``'s key."""
        if self._keys is None:
            return self._ktab[int(self._kids[i])]
        return self._keys[i]

    def delta(self, i: int) -> Delta:
        """Row ``i`` as a :class:`Delta` (not itself a chain record)."""
        s = self.strengths[i]
        d = Delta(int(self.types[i]), self.key(i), self.value(i), source=self.source,
                  strength=Signal.from_checked(int(s["polarity"]), int(s["magnitude"])),
                  timestamp=int(self.timestamps[i]), id=f"{self.id}#{i}")
        d._hash = self.hash
        return d

    def __getitem__(self, i: int) -> Delta:
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        return self.delta(i % len(self))

    def deltas(self) -> Iterator[Delta]:
        """Every row as a :class:`Delta` view, in order (see :meth:`delta`)."""
        for i in range(len(self)):
            yield self.delta(i)

    __iter__ = deltas

    def dirty_bytes(self) -> int:
        """Size estimate the reference uses: 2 bytes a signal + key bytes + 200 a delta."""
        return int(self.values.shape[0]) * 2 + sum(len(k) for k in self.keys) + 200 * len(self)

    def _key_blob(self) -> Tuple[bytes, bytes]:
        """``(u64 key byte lengths, concatenated UTF-8 keys)``, encoded once per key list.

        The cache is tied to the identity of the ``keys`` tuple, which cannot change
        in place; assigning another ``keys`` recomputes it."""
        if self._keys is None:
            joined, lens = self._ktab.key_bytes(self._kids)
            return lens.astype(np.uint64).tobytes(), joined
        keys = self._keys
        cached = self._kcache
        if cached is not None and cached[0] is keys:
            return cached[1], cached[2]
        try:
            kb = [k.encode("utf-8", "surrogatepass") for k in keys]
        except AttributeError:  # tampered into something that is not a str
            kb = [repr(k).encode() for k in keys]
        klen = np.fromiter((len(b) for b in kb), dtype=np.uint64, count=len(kb)).tobytes()
        joined = b"".join(kb)
        if type(keys) is tuple:
            self._kcache = (keys, klen, joined)
        return klen, joined

    def canonical_bytes(self) -> bytes:
        """The exact bytes that :attr:`hash` covers: tag, id, source, timestamp, then every column."""
        klen_bytes, kbytes = self._key_blob()
        return record_layouts().encode_batch(self.id, self.source, self.timestamp, len(self), self.types,
                                             klen_bytes, kbytes, self.offsets, self.values, self.strengths,
                                             self.timestamps, self.prev_hash)

    def copy(self) -> "DeltaBatch":
        """A shallow copy: a new batch with the same fields and cached hash (column arrays are shared)."""
        b = object.__new__(DeltaBatch)
        for s in DeltaBatch.__slots__:
            object.__setattr__(b, s, getattr(self, s))
        return b

    def _repr_html_(self) -> str:
        n = len(self)
        counts = np.bincount(self.types, minlength=4) if n else np.zeros(4, int)
        rows = "".join(f"<tr><td>{t.name.lower()}</td><td>{int(counts[t])}</td></tr>" for t in DeltaType)
        return (f"<div><b>DeltaBatch</b> {n} deltas, {int(self.values.shape[0])} signals, "
                f"source {self.source!r}, hash <code>{self.hash[:12]}</code>"
                f"<table><tr><th>type</th><th>count</th></tr>{rows}</table></div>")

    def __repr__(self) -> str:
        return f"DeltaBatch(n={len(self)}, signals={int(self.values.shape[0])}, hash={self.hash[:12]}…)"
