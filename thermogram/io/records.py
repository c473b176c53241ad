"""Chain records as bytes: each kind's encoder and decoder side by side.

Three record kinds share one chain (see :mod:`thermogram.chain`): a delta, a batch of
deltas and an operation. Each has one *canonical* encoding: domain-tagged, every
field length-prefixed or fixed-width, so two different records never encode to the
same bytes. Its SHA-256 is the record's hash (:meth:`canonical_bytes` of the record
classes calls the encoders here), and the journal and Arrow record tables store it
framed as ``u8 kind | u32 length | canonical bytes | 32-byte hash``
(:func:`encode_record` / :func:`decode_record`).

The ``.thermo`` v2 RECS section stores the same records in a denser layout: keys by id
into the KEYS table, values by offset into the VALS arena, integer columns packed, no
``prev_hash`` (each record links to the one before it). Each kind's v2 encoder and
decoder sit next to its canonical ones; :mod:`thermogram.io.thermo_v2` frames them.

Why this module is one piece (~510 lines): every record kind's encoder sits beside its
decoder, and each tag is defined once, which is the point of the module.
"""
from __future__ import annotations

import struct
from binascii import a2b_hex
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from ..canonical import decode_value, i64, lp, opt_lp, u64
from ..chain import OpRecord, Record
from ..delta import Delta, DeltaBatch, DeltaType
from ..errors import FormatError, ThermogramError, ValidationError
from ..keytable import KeyTable
from ..signal import SIGNAL, Signal
from .packing import _M64, _Budget, _pack_args, _unpack_args, pack_ints, unpack_ints
from .reader import MAX_KEY_BYTES_ON_LOAD, Reader, _lp, _opt_lp, _rtext, _signal, _signals_from_bytes, _split_keys, _text

__all__ = ["DELTA_TAG", "BATCH_TAG", "OP_TAG", "KIND", "int_field", "read_int_field",
           "encode_delta", "decode_delta", "encode_batch", "decode_batch", "encode_op", "decode_op",
           "encode_record", "decode_record", "encode_records_v2", "decode_records_v2"]

DELTA_TAG = b"thermogram:delta:v1\x00"
BATCH_TAG = b"thermogram:batch:v1\x00"
OP_TAG = b"thermogram:op:v1\x00"
KIND = {"delta": 0, "batch": 1, "op": 2}
"""Record kind -> the kind byte of :func:`encode_record` and of the v2 RECS section."""


# ----------------------------------------------------------------------------- shared fields
def int_field(v: Any) -> bytes:
    """int64 when in range; anything else gets a distinct, tagged encoding (so a
    tampered out-of-range field can never collide with a valid one)."""
    if type(v) is int and -(2 ** 63) <= v < 2 ** 63:
        return b"\x00" + _pack_i64(v)
    if isinstance(v, (int, np.integer)) and -(2 ** 63) <= int(v) < 2 ** 63:
        return b"\x00" + i64(int(v))
    return b"\x01" + lp(repr(v).encode())


def read_int_field(r: Reader) -> int:
    """Inverse of :func:`int_field` for the in-range form (the only one a valid record has)."""
    flag = r.u8()
    if flag != 0:
        raise FormatError(f"{r.what}: malformed integer field")
    return r.i64()


_LINKED = b"\x01" + u64(64)  # opt_lp's head for a 64-byte field: every linked record's prev_hash


def _opt_hash(prev_hash: Any) -> bytes:
    """``prev_hash`` as an optional length-prefixed field."""
    if type(prev_hash) is str:
        b = prev_hash.encode()
        if len(b) == 64:  # a hex digest: opt_lp's bytes without its two calls
            return _LINKED + b
    return opt_lp(None if prev_hash is None else str(prev_hash).encode())


def _prev(b: Optional[bytes]) -> Optional[str]:
    """The inverse of :func:`_opt_hash`'s payload: None or 64 hex characters."""
    if b is None:
        return None
    s = _text(b, "prev_hash")
    if len(s) != 64:
        raise FormatError("prev_hash must be 64 hex characters")
    return s


# ----------------------------------------------------------------------------- delta
_pack_u64 = struct.Struct("<Q").pack
_pack_i64 = struct.Struct("<q").pack
_LP2 = _pack_u64(2)
# DELTA_TAG + int_field(t) for each delta type code (the fast path of encode_delta)
_DELTA_HEAD = {t: DELTA_TAG + b"\x00" + i64(t) for t in range(4)}


def encode_delta(delta_type: Any, id: Any, key: Any, value: Any, timestamp: Any, source: Any,
                 strength: Any, observation_count: Any, custom: Optional[bytes], prev_hash: Any) -> bytes:
    """The canonical bytes of a :class:`~thermogram.delta.Delta` from its fields.

    Fields tampered into the wrong type still encode (tagged by ``repr``), so a
    verify sees the change instead of failing."""
    if (type(id) is str and type(key) is str and type(source) is str and type(timestamp) is int
            and type(value) is np.ndarray and type(strength) is Signal and observation_count is None
            and custom is None and (prev_hash is None or type(prev_hash) is str)
            and (type(delta_type) is DeltaType or type(delta_type) is int)
            and -(2 ** 63) <= timestamp < 2 ** 63):
        head = _DELTA_HEAD.get(delta_type)
        dt = value.dtype
        if head is not None and (dt is SIGNAL or dt == SIGNAL):
            # the common record, byte for byte the general layout below, in one join
            ib = id.encode()
            kb = key.encode("utf-8", "surrogatepass")
            vb = value.tobytes()
            sb = source.encode("utf-8", "surrogatepass")
            return b"".join((
                head, _pack_u64(len(ib)), ib, _pack_u64(len(kb)), kb, _pack_u64(len(vb)), vb,
                b"\x00", _pack_i64(timestamp), _pack_u64(len(sb)), sb,
                _LP2, bytes((strength.polarity & 0xFF, strength.magnitude)),
                b"\x00\x00\x00" if prev_hash is None else b"\x00\x00\x01" + lp(prev_hash.encode())))
    vb = value.tobytes() if isinstance(value, np.ndarray) and value.dtype == SIGNAL else repr(value).encode()
    s = strength
    sb = bytes([s.polarity & 0xFF, s.magnitude]) if isinstance(s, Signal) else repr(s).encode()
    obs = b"\x00" if observation_count is None else b"\x01" + int_field(observation_count)
    return b"".join((
        DELTA_TAG, int_field(delta_type), lp(str(id).encode()),
        lp(str(key).encode("utf-8", "surrogatepass")), lp(vb),
        int_field(timestamp),
        lp(str(source).encode("utf-8", "surrogatepass")), lp(sb), obs,
        opt_lp(custom), _opt_hash(prev_hash),
    ))


def decode_delta(r: Reader) -> Delta:
    """Inverse of :func:`encode_delta`: a :class:`~thermogram.delta.Delta` (hash not set)."""
    if r.take(len(DELTA_TAG)) != DELTA_TAG:
        raise FormatError(f"{r.what}: bad delta tag")
    dtype = read_int_field(r)
    did = _rtext(_lp(r), "delta id")
    key = _rtext(_lp(r), "delta key")
    value = _signals_from_bytes(_lp(r), "delta value")
    ts = read_int_field(r)
    source = _rtext(_lp(r), "delta source")
    sb = _lp(r)
    if len(sb) != 2:
        raise FormatError("delta strength must be 2 bytes")
    strength = _signal(sb[0], sb[1], "delta strength")
    flag = r.u8()
    obs = None
    if flag == 1:
        obs = read_int_field(r)
        if obs < 0:
            obs += 2 ** 64
    elif flag != 0:
        raise FormatError("malformed observation count")
    custom = _opt_lp(r)
    prev = _prev(_opt_lp(r))
    try:
        d = Delta(dtype, key, value, source=source, strength=strength, timestamp=ts, id=did,
                  observation_count=obs, custom=custom)
    except ValidationError as e:
        raise FormatError(f"invalid delta record: {e}") from None
    d.prev_hash = prev
    return d


def _value_ref(s, view: np.ndarray) -> List[Any]:
    """v2: ``u8 0, u64 arena offset`` for a value held in the arena, else ``u8 1, u64 n, 2n bytes``."""
    o = s.offset_of(view)
    if o >= 0 or view.shape[0] == 0:
        return [struct.pack("<BQ", 0, max(o, 0))]
    return [struct.pack("<BQ", 1, view.shape[0]), np.ascontiguousarray(view).tobytes()]


def _value_at(r: Reader, arena: np.ndarray, n: int, what: str) -> Tuple[np.ndarray, int]:
    """v2: inverse of :func:`_value_ref`: ``(read-only arena view, offset)`` or an inline copy and -1."""
    how = r.u8()
    if how == 0:
        o = r.u64()
        if o + n > arena.shape[0]:
            raise FormatError(f"{what}: value outside the VALS section")
        v = arena[o:o + n]
        v.flags.writeable = False
        return v, o
    if how != 1:
        raise FormatError(f"{what}: unknown value reference {how}")
    m = r.u64()
    if m != n:
        raise FormatError(f"{what}: inline value length disagrees")
    return _signals_from_bytes(r.take(2 * n), what), -1


def _encode_delta_v2(s, rec: Delta) -> List[Any]:
    """v2 body of a delta record (``s``: the capsule's entry store, for key ids and the arena)."""
    kid = s.kid_of(rec.key)
    if kid is None:
        raise ThermogramError(f"delta record {rec.id} names a key the capsule's table lacks")
    out: List[Any] = [lp(str(rec.id).encode()),
                      struct.pack("<BQqQ", int(rec.delta_type), kid, int(rec.timestamp), rec.value.shape[0])]
    out += _value_ref(s, rec.value)
    obs = rec.observation_count
    out += [lp(rec.source.encode("utf-8", "surrogatepass")),
            bytes([rec.strength.polarity & 0xFF, rec.strength.magnitude]),
            b"\x00" if obs is None else b"\x01" + struct.pack("<Q", int(obs) & _M64),
            opt_lp(rec.custom)]
    return out


def _decode_delta_v2(r: Reader, what: str, keys: KeyTable, arena: np.ndarray,
                     budget: _Budget) -> Tuple[Delta, int]:
    """Inverse of :func:`_encode_delta_v2`: the delta and its value's arena offset (-1 inline)."""
    did = _rtext(_lp(r), "delta id")
    dtype, kid, ts, nv = struct.unpack("<BQqQ", r.take(25))
    if kid >= len(keys) or dtype > 3:
        raise FormatError(f"{what}: key id or delta type out of range")
    value, o = _value_at(r, arena, nv, what)
    source = _rtext(_lp(r), "delta source")
    sb = r.take(2)
    strength = _signal(sb[0], sb[1], "delta strength")
    flag = r.u8()
    if flag not in (0, 1):
        raise FormatError(f"{what}: malformed observation count")
    obs = r.u64() if flag else None
    custom = _opt_lp(r)
    try:
        rec = Delta(dtype, keys[kid], value, source=source, strength=strength, timestamp=ts,
                    id=did, observation_count=obs, custom=custom)
    except ValidationError as e:
        raise FormatError(f"invalid delta record: {e}") from None
    rec.value = value
    return rec, o


# ----------------------------------------------------------------------------- batch
def encode_batch(id: Any, source: Any, timestamp: Any, n: int, types: np.ndarray, klen_bytes: bytes,
                 kbytes: bytes, offsets: np.ndarray, values: np.ndarray, strengths: np.ndarray,
                 timestamps: np.ndarray, prev_hash: Any) -> bytes:
    """The canonical bytes of a :class:`~thermogram.delta.DeltaBatch` from its fields and
    its key blob (``klen_bytes``: u64 key byte lengths; ``kbytes``: the keys' UTF-8, joined)."""
    return b"".join((
        BATCH_TAG, lp(str(id).encode()), lp(str(source).encode("utf-8", "surrogatepass")),
        int_field(timestamp), u64(n), lp(np.ascontiguousarray(types).tobytes()),
        lp(klen_bytes), lp(kbytes), lp(np.ascontiguousarray(offsets).tobytes()),
        lp(np.ascontiguousarray(values).tobytes()),
        lp(np.ascontiguousarray(strengths).tobytes()),
        lp(np.ascontiguousarray(timestamps).tobytes()),
        _opt_hash(prev_hash),
    ))


def decode_batch(r: Reader) -> DeltaBatch:
    """Inverse of :func:`encode_batch`: a :class:`~thermogram.delta.DeltaBatch` (hash not set),
    every column checked."""
    if r.take(len(BATCH_TAG)) != BATCH_TAG:
        raise FormatError(f"{r.what}: bad batch tag")
    bid = _rtext(_lp(r), "batch id")
    source = _rtext(_lp(r), "batch source")
    ts = read_int_field(r)
    n = r.u64()
    if n > r.left():
        raise FormatError("batch row count exceeds the record")
    types = np.frombuffer(_lp(r), np.uint8).copy()
    klen_b = _lp(r)
    if len(klen_b) != 8 * n or types.shape != (n,):
        raise FormatError("batch column lengths disagree")
    klen = np.frombuffer(klen_b, np.uint64).astype(np.int64)
    kb = _lp(r)
    if int(klen.sum()) != len(kb):
        raise FormatError("batch key bytes disagree with their lengths")
    if n and int(klen.max()) > MAX_KEY_BYTES_ON_LOAD:
        raise FormatError("batch record holds an over-long key")
    keys = _split_keys(kb, klen, "batch key")
    offs_b = _lp(r)
    if len(offs_b) != 8 * (n + 1):
        raise FormatError("batch offsets have the wrong length")
    offsets = np.frombuffer(offs_b, np.int64).copy()
    values = _signals_from_bytes(_lp(r), "batch values")
    sb = _lp(r)
    if len(sb) != 2 * n:
        raise FormatError("batch strengths have the wrong length")
    strengths = _signals_from_bytes(sb, "batch strengths")
    strengths.flags.writeable = True
    tsb = _lp(r)
    if len(tsb) != 8 * n:
        raise FormatError("batch timestamps have the wrong length")
    timestamps = np.frombuffer(tsb, np.int64).copy()
    prev = _prev(_opt_lp(r))
    # every column was checked above or here; the keys are str by construction
    if n and (int(types.max()) > 3 or int(klen.min()) == 0):
        raise FormatError("invalid batch record: unknown delta type or empty key")
    if offsets[0] != 0 or offsets[-1] != values.shape[0] or (n and (np.diff(offsets) < 0).any()):
        raise FormatError("invalid batch record: bad value offsets")
    b = DeltaBatch(keys, types, values, offsets, strengths, timestamps, source=source, id=bid,
                   timestamp=ts, _trusted=True)
    b.prev_hash = prev
    return b


def _encode_batch_v2(s, rec: DeltaBatch) -> List[Any]:
    """v2 body of a batch record: columns packed, keys as ids into the capsule's table."""
    n = len(rec)
    if rec._kids is not None and rec._ktab is s.keys:
        kids = rec._kids
    else:  # bound to another table (or not bound): look the keys up, never add them here
        kids = np.array([s.keys.get(k) for k in rec.keys], dtype=object)
        if any(k is None for k in kids):
            raise ThermogramError(f"batch record {rec.id} names a key the capsule's table lacks")
        kids = kids.astype(np.int64)
    out: List[Any] = [lp(str(rec.id).encode()), lp(rec.source.encode("utf-8", "surrogatepass")),
                      struct.pack("<qQ", int(rec.timestamp), n)]
    out += pack_ints(rec.types)
    out += pack_ints(kids)
    out += pack_ints(np.diff(rec.offsets))
    out += _value_ref(s, rec.values)
    st = rec.strengths
    out += pack_ints(st["polarity"])
    out += pack_ints(st["magnitude"])
    out += pack_ints(rec.timestamps)
    return out


def _decode_batch_v2(r: Reader, what: str, keys: KeyTable, arena: np.ndarray,
                     budget: _Budget) -> Tuple[DeltaBatch, int]:
    """Inverse of :func:`_encode_batch_v2`: the batch (keys bound to ``keys``) and its values'
    arena offset (-1 inline)."""
    nk = len(keys)
    bid = _rtext(_lp(r), "batch id")
    source = _rtext(_lp(r), "batch source")
    ts, n = struct.unpack("<qQ", r.take(16))
    budget.take(n, what)
    types = unpack_ints(r, n)
    kids = unpack_ints(r, n)
    lens = unpack_ints(r, n)
    if n and (int(types.min()) < 0 or int(types.max()) > 3 or int(kids.min()) < 0
              or int(kids.max()) >= nk or int(lens.min()) < 0 or int(lens.max()) > arena.shape[0]
              or float(lens.sum(dtype=np.float64)) > arena.shape[0]):  # no int64 wrap
        raise FormatError(f"{what}: delta type, key id or value length out of range")
    budget.take_key_bytes(keys, kids, what)
    types = types.astype(np.uint8)
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(lens, out=offsets[1:])
    values, o = _value_at(r, arena, int(offsets[-1]), what)
    pol = unpack_ints(r, n)
    mag = unpack_ints(r, n)
    tss = unpack_ints(r, n)
    if n and (int(pol.min()) < -1 or int(pol.max()) > 1 or int(mag.min()) < 0 or int(mag.max()) > 255):
        raise FormatError(f"{what}: strength out of range")
    st = np.empty(n, SIGNAL)
    st["polarity"] = pol
    st["magnitude"] = mag
    rec = DeltaBatch((), types, values, offsets, st, tss, source=source, id=bid, timestamp=ts,
                     _trusted=True)
    rec.bind_keys(keys, kids)
    return rec, o


# ----------------------------------------------------------------------------- operation
_OP_NAMES: Dict[str, bytes] = {}  # op name -> its length-prefixed bytes (the first 64 names seen)


def encode_op(op: Any, timestamp: Any, args_bytes: bytes, prev_hash: Any) -> bytes:
    """The canonical bytes of an :class:`~thermogram.chain.OpRecord` from its fields
    (``args_bytes``: its arguments under :func:`~thermogram.canonical.encode_value`)."""
    name = _OP_NAMES.get(op) if type(op) is str else None
    if name is None:
        name = lp(str(op).encode())
        if type(op) is str and len(_OP_NAMES) < 64:
            _OP_NAMES[op] = name
    return b"".join((OP_TAG, name, int_field(timestamp), lp(args_bytes), _opt_hash(prev_hash)))


def decode_op(r: Reader) -> OpRecord:
    """Inverse of :func:`encode_op`: an :class:`~thermogram.chain.OpRecord` (hash not set)."""
    if r.take(len(OP_TAG)) != OP_TAG:
        raise FormatError(f"{r.what}: bad operation tag")
    op = _rtext(_lp(r), "operation name")
    ts = read_int_field(r)
    args = decode_value(_lp(r))
    if not isinstance(args, dict):
        raise FormatError("operation arguments must be a mapping")
    prev = _prev(_opt_lp(r))
    return OpRecord(op, args, ts, prev)


def _encode_op_v2(s, rec: OpRecord) -> List[Any]:
    """v2 body of an operation record: name, timestamp, arguments (compressed when that pays)."""
    return [lp(rec.op.encode()), struct.pack("<q", int(rec.timestamp)), *_pack_args(rec.args_bytes())]


def _decode_op_v2(r: Reader, what: str, keys: KeyTable, arena: np.ndarray,
                  budget: _Budget) -> Tuple[OpRecord, None]:
    """Inverse of :func:`_encode_op_v2` (no values, so the offset is None)."""
    op = _rtext(_lp(r), "operation name")
    ts = r.i64()
    ab = _unpack_args(r)
    args = decode_value(ab)
    if not isinstance(args, dict):
        raise FormatError("operation arguments must be a mapping")
    rec = OpRecord(op, args, ts, None)
    rec._abytes = ab
    return rec, None


# ----------------------------------------------------------------------------- insert_entry operation
_INSERT_ARGS = frozenset(("key", "value", "strength", "layer", "update_count", "updated_at"))
_INSERT_FIXED = struct.Struct("<qQBbBQqQ")  # timestamp, key id, layer, strength, count, updated_at, n


def _insert_entry_fields(s, rec: OpRecord) -> Optional[Tuple[Any, ...]]:
    """The fields of an ``insert_entry`` record in the dense v2 layout, or None if its arguments
    are not exactly what :meth:`~thermogram.Thermogram.insert_entry` makes (the record is then
    written as a plain operation, so its canonical bytes always rebuild from what is stored)."""
    a = rec.args
    if rec.op != "insert_entry" or a.keys() != _INSERT_ARGS:
        return None
    key, v, st = a["key"], a["value"], a["strength"]
    ints = (a["layer"], a["update_count"], a["updated_at"])
    if type(key) is not str or not isinstance(v, np.ndarray) or v.dtype != SIGNAL or v.ndim != 1 \
            or type(st) is not list or len(st) != 2 or any(type(x) is not int for x in (*st, *ints)):
        return None
    layer, count, ua = ints
    if not (0 <= layer <= 3 and st[0] in (-1, 0, 1) and 0 <= st[1] <= 255 and 0 <= count < 2 ** 64
            and -(2 ** 63) <= ua < 2 ** 63):
        return None
    kid = s.kid_of(key)
    if kid is None:
        return None
    return (int(rec.timestamp), kid, layer, st[0], st[1], count, ua, v.shape[0])


def _encode_insert_entry_v2(s, rec: OpRecord, fields: Tuple[Any, ...]) -> List[Any]:
    """v2 body of an ``insert_entry`` record (``kind 3``): its arguments as fixed-width fields
    and its value by arena reference, like a delta's (the value is stored once, in VALS)."""
    return [_INSERT_FIXED.pack(*fields)] + _value_ref(s, rec.args["value"])


def _decode_insert_entry_v2(r: Reader, what: str, keys: KeyTable, arena: np.ndarray,
                            budget: _Budget) -> Tuple[OpRecord, int]:
    """Inverse of :func:`_encode_insert_entry_v2`: the record (its arguments rebuilt exactly as
    ``insert_entry`` makes them) and its value's arena offset (-1 inline)."""
    ts, kid, layer, pol, mag, count, ua, n = _INSERT_FIXED.unpack(r.take(_INSERT_FIXED.size))
    if kid >= len(keys) or layer > 3 or pol not in (-1, 0, 1):
        raise FormatError(f"{what}: key id, layer or strength out of range")
    value, o = _value_at(r, arena, n, what)
    args = {"key": keys[kid], "value": value, "strength": [pol, mag], "layer": layer,
            "update_count": count, "updated_at": ua}
    return OpRecord("insert_entry", args, ts, None), o


# ----------------------------------------------------------------------------- framed record
_RECORD_HEAD = struct.Struct("<BI")  # u8 kind | u32 canonical length


def encode_record(rec: Record, canonical: Optional[bytes] = None) -> bytes:
    """``u8 kind | u32 length | canonical bytes | 32-byte hash`` (``canonical``: the
    record's canonical bytes if the caller has them already).

    Every journal append runs this once: the hash set by linking is used as is
    (``a2b_hex`` is ``bytes.fromhex`` without the whitespace handling, at under half
    its cost)."""
    cb = rec.canonical_bytes() if canonical is None else canonical
    return _RECORD_HEAD.pack(KIND[rec.kind], len(cb)) + cb + a2b_hex(rec._hash or rec.hash)


_DECODERS = (decode_delta, decode_batch, decode_op)  # indexed by the kind byte


def decode_record(r: Reader, rehash: bool = True) -> Record:
    """One record written by :func:`encode_record`. With ``rehash`` its SHA-256 is
    recomputed and checked against the stored hash."""
    kind = r.u8()
    n = r.u32()
    body = r.take(n)
    stored = r.take(32).hex()
    sub = Reader(body, what=f"{r.what} record")
    if kind >= len(_DECODERS):
        raise FormatError(f"unknown record kind {kind}")
    rec: Record = _DECODERS[kind](sub)
    if sub.left():
        raise FormatError("trailing bytes in a record")
    if rehash and rec.compute_hash() != stored:
        raise FormatError("record hash does not match its content")
    rec._hash = stored
    return rec


# ----------------------------------------------------------------------------- v2 RECS section
_ENCODERS_V2 = {"delta": _encode_delta_v2, "batch": _encode_batch_v2, "op": _encode_op_v2}
INSERT_ENTRY_KIND_V2 = 3
"""The RECS kind byte of an ``insert_entry`` operation written densely (value by arena reference)."""
_DECODERS_V2 = (_decode_delta_v2, _decode_batch_v2, _decode_op_v2,
                _decode_insert_entry_v2)  # indexed by the kind byte


def _encode_record_v2(s, rec: Record) -> List[Any]:
    """One record in the v2 RECS layout: ``u8 kind | 32-byte hash | body`` as byte-like parts."""
    kind = rec.kind
    if kind == "op" and rec.op == "insert_entry":
        fields = _insert_entry_fields(s, rec)
        if fields is not None:
            return [bytes([INSERT_ENTRY_KIND_V2]), bytes.fromhex(rec.hash)] + _encode_insert_entry_v2(s, rec, fields)
    return [bytes([KIND[kind]]), bytes.fromhex(rec.hash)] + _ENCODERS_V2[kind](s, rec)


def encode_records_v2(s, records: List[Record]) -> List[Any]:
    """The RECS section payload: ``u64 count`` then every record (see :func:`_encode_record_v2`)."""
    parts: List[Any] = [struct.pack("<Q", len(records))]
    for rec in records:
        parts += _encode_record_v2(s, rec)
    return parts


def decode_records_v2(data: bytes, start: int, end: int, budget: _Budget, keys: KeyTable,
                      arena: np.ndarray) -> Tuple[List[Record], List[Optional[int]]]:
    """Records (hash taken from the file, ``prev_hash`` = the previous record's hash) and
    the arena offset of each delta/batch/``insert_entry`` record's values (-1 inline, None for
    other operations)."""
    r = Reader(data, start, end, "RECS section")
    count = r.u64()
    if count * 34 > r.left():
        raise FormatError(f"RECS section claims {count} records, too many for its size")
    recs: List[Record] = []
    offs: List[Optional[int]] = []
    prev: Optional[str] = None
    for i in range(count):
        kind = r.u8()
        h = r.take(32).hex()
        what = f"record {i}"
        if kind >= len(_DECODERS_V2):
            raise FormatError(f"{what}: unknown record kind {kind}")
        rec, o = _DECODERS_V2[kind](r, what, keys, arena, budget)
        rec.prev_hash = prev
        rec._hash = h
        prev = h
        recs.append(rec)
        offs.append(o)
    if r.left():
        raise FormatError("RECS section: trailing bytes")
    return recs, offs
