"""Binary formats: ``.thermo`` v2 (ours), the reference's ``.thermo`` v1, legacy JSON.

v2 layout (little-endian)::

    header   "THRM" | u16 version=2 | u16 flags=0 | u32 section count | u32 reserved=0
    section  4-byte tag | u32 flags=0 | u64 payload length | u64 xxh3_64(payload) | payload

Sections: ``META`` (counters and changed configuration, JSON), ``KEYS`` (the key
table), ``VALS`` (the value arena: every value once), ``ENTR`` (entry columns
pointing into both), ``RECS`` (every record since creation, referring to keys by
id and values by arena offset) and optionally ``EXTN`` (extension state, e.g. an
SNN, canonical value encoding). Integer columns are packed (constant, arithmetic
or frame-of-reference). Every length is checked against the bytes that remain
before anything is allocated; any inconsistency raises
:class:`~thermogram.errors.FormatError`. docs/format.md is the specification.

v1 is the reference crate's format (CRC32 over everything after a 16-byte
header; u16-prefixed strings; entries in HashMap order). It is read fully —
pending deltas included, their SHA-256 chain checked under the reference's
own hashing rule — and written on request so the Rust crate can read it.
"""
from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import json
import os
import struct
import tempfile
import zlib
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import xxhash

from .canonical import decode_value, encode_value
from .chain import OpRecord, Record
from .consolidation import ConsolidationPolicy, ConsolidationTrigger
from .delta import _BATCH_TAG, _DELTA_TAG, Delta, DeltaBatch, DeltaType
from .errors import FormatError, ThermogramError, ValidationError
from .keytable import KeyTable
from .kernels import codec as _kc
from .plasticity import PlasticityRule, UpdatePolicy
from .signal import SIGNAL, Signal
from .store import FREE
from .thermal import ThermalConfig

__all__ = ["save", "load", "encode", "decode", "encode_v1", "decode_v1", "encode_v2", "decode_v2",
           "encode_v2_parts", "decode_legacy_json", "detect_format", "rfc3339", "parse_rfc3339", "reference_delta_hash",
           "atomic_write", "encode_record", "decode_record", "DEFAULT_MAX_BYTES"]

MAGIC = b"THRM"
NS = 1_000_000_000
DEFAULT_MAX_BYTES = 16 * 2 ** 30
"""Largest file :func:`load` reads unless told otherwise (16 GiB)."""
MAX_KEY_BYTES = 65_535
MAX_KEY_BYTES_ON_LOAD = 1 << 20
"""Longest key a file may hold (1 MiB); longer is treated as a hostile file."""


# ----------------------------------------------------------------------------- byte reader
class Reader:
    """Bounds-checked little-endian reader: every read checks the bytes left."""

    __slots__ = ("buf", "pos", "end", "what")

    def __init__(self, buf: bytes, pos: int = 0, end: Optional[int] = None, what: str = "file"):
        self.buf = buf
        self.pos = pos
        self.end = len(buf) if end is None else end
        self.what = what

    def left(self) -> int:
        """Number of bytes between the current position and ``end``."""
        return self.end - self.pos

    def take(self, n: int) -> bytes:
        """The next ``n`` bytes, advancing the position; raises :class:`FormatError` if fewer are left."""
        if n < 0 or n > self.end - self.pos:
            raise FormatError(f"{self.what}: truncated (need {n} bytes at offset {self.pos}, "
                              f"{self.end - self.pos} left)")
        b = self.buf[self.pos:self.pos + n]
        self.pos += n
        return b

    def _unpack(self, fmt: str, n: int):
        return struct.unpack_from(fmt, self.take(n))[0]

    def u8(self) -> int:
        """Read the next unsigned 8-bit integer."""
        return self._unpack("<B", 1)

    def u16(self) -> int:
        """Read the next little-endian unsigned 16-bit integer."""
        return self._unpack("<H", 2)

    def u32(self) -> int:
        """Read the next little-endian unsigned 32-bit integer."""
        return self._unpack("<I", 4)

    def u64(self) -> int:
        """Read the next little-endian unsigned 64-bit integer."""
        return self._unpack("<Q", 8)

    def i64(self) -> int:
        """Read the next little-endian signed 64-bit integer."""
        return self._unpack("<q", 8)

    def count(self, min_item_bytes: int, what: str, width: int = 4) -> int:
        """A u32/u64 element count, checked against the bytes left before any allocation."""
        n = self.u32() if width == 4 else self.u64()
        if n * max(min_item_bytes, 1) > self.left():
            raise FormatError(f"{self.what}: {what} count {n} exceeds the {self.left()} bytes left")
        return n


def _signal(p: int, m: int, what: str) -> Signal:
    pol = p - 256 if p > 127 else p
    if pol not in (-1, 0, 1):
        raise FormatError(f"invalid polarity {pol} in {what}")
    return Signal._raw(pol, m)


def _signals_from_bytes(b: bytes, what: str) -> np.ndarray:
    if len(b) % 2:
        raise FormatError(f"{what}: odd signal byte count")
    v = np.frombuffer(bytearray(b), dtype=SIGNAL)  # a plain byte copy (numpy copies SIGNAL field by field)
    p = v["polarity"]
    if p.size and (p.min() < -1 or p.max() > 1):
        raise FormatError(f"invalid polarity in {what}")
    v.flags.writeable = False
    return v


# ----------------------------------------------------------------------------- time
def rfc3339(ns: int) -> str:
    """The text chrono's ``DateTime<Utc>::to_rfc3339()`` prints for ``ns`` since the epoch.

    Fraction digits as chrono's AutoSi: none, 3, 6 or 9, whichever is exact.
    """
    secs, nanos = divmod(int(ns), NS)
    d = _dt.datetime(1970, 1, 1) + _dt.timedelta(seconds=secs)
    base = f"{d.year:04d}-{d.month:02d}-{d.day:02d}T{d.hour:02d}:{d.minute:02d}:{d.second:02d}"
    if nanos == 0:
        frac = ""
    elif nanos % 1_000_000 == 0:
        frac = f".{nanos // 1_000_000:03d}"
    elif nanos % 1_000 == 0:
        frac = f".{nanos // 1_000:06d}"
    else:
        frac = f".{nanos:09d}"
    return f"{base}{frac}+00:00"


def parse_rfc3339(text: str) -> int:
    """Integer ns since the epoch from an RFC 3339 string (any offset, up to 9 fraction digits)."""
    if not isinstance(text, str):
        raise FormatError(f"timestamp must be an RFC 3339 string, got {text!r}")
    t = text.strip()
    try:
        if t.endswith(("Z", "z")):
            t, off = t[:-1], "+00:00"
        else:
            t, off = t[:-6], t[-6:]
        frac_ns = 0
        if "." in t:
            t, frac = t.split(".", 1)
            if not frac.isdigit() or len(frac) > 9:
                raise ValueError
            frac_ns = int(frac.ljust(9, "0"))
        d = _dt.datetime.fromisoformat(t + off)
    except ValueError:
        raise FormatError(f"not an RFC 3339 timestamp: {text!r}") from None
    epoch = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
    delta = d - epoch
    return (delta.days * 86400 + delta.seconds) * NS + frac_ns


def _ns(secs: int, nanos: int) -> int:
    if nanos >= NS:
        raise FormatError(f"invalid timestamp: {nanos} nanoseconds")
    ns = secs * NS + nanos
    if not -(2 ** 63) <= ns < 2 ** 63:
        raise FormatError(f"timestamp {secs}s is outside the supported range (years 1677-2262)")
    return ns


# ----------------------------------------------------------------------------- the reference's hashing
def reference_delta_hash(d: Delta, prev_hash: Optional[str]) -> str:
    """SHA-256 of a delta under the reference's rule: plain concatenation of id,
    type byte, key, signals, RFC 3339 timestamp, source, strength and prev hash."""
    h = hashlib.sha256()
    h.update(d.id.encode())
    h.update(bytes([int(d.delta_type)]))
    h.update(d.key.encode())
    h.update(d.value.tobytes())
    h.update(rfc3339(d.timestamp).encode())
    h.update(d.source.encode())
    h.update(bytes([d.strength.polarity & 0xFF, d.strength.magnitude]))
    if prev_hash is not None:
        h.update(prev_hash.encode())
    return h.hexdigest()


# ----------------------------------------------------------------------------- records (v2, journal)
_KIND = {"delta": 0, "batch": 1, "op": 2}
_OP_TAG = b"thermogram:op:v1\x00"


def encode_record(rec: Record, canonical: Optional[bytes] = None) -> bytes:
    """``u8 kind | u32 length | canonical bytes | 32-byte hash`` (``canonical``: the
    record's canonical bytes if the caller has them already)."""
    cb = rec.canonical_bytes() if canonical is None else canonical
    return bytes([_KIND[rec.kind]]) + struct.pack("<I", len(cb)) + cb + bytes.fromhex(rec.hash)


def _int_field(r: Reader) -> int:
    flag = r.u8()
    if flag != 0:
        raise FormatError(f"{r.what}: malformed integer field")
    return r.i64()


def _lp(r: Reader) -> bytes:
    n = r.u64()
    return r.take(n)


def _opt_lp(r: Reader) -> Optional[bytes]:
    flag = r.u8()
    if flag == 0:
        return None
    if flag != 1:
        raise FormatError(f"{r.what}: malformed optional field")
    return _lp(r)


def _text(b: bytes, what: str) -> str:
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        raise FormatError(f"{what} is not valid UTF-8") from None


def _rtext(b: bytes, what: str) -> str:
    """A record's text field: UTF-8 with lone surrogates passed through, as the record
    encodings write keys and sources."""
    try:
        return b.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        raise FormatError(f"{what} is not valid UTF-8") from None


def _split_keys(kb: bytes, klen: np.ndarray, what: str) -> List[str]:
    """Keys from their concatenated UTF-8 bytes and byte lengths."""
    ends = np.cumsum(klen).tolist()
    starts = [0] + ends[:-1]
    if kb.isascii():  # byte offsets are character offsets: one decode, then slices
        text = kb.decode("ascii")
        return [text[a:b] for a, b in zip(starts, ends)]
    return [_rtext(kb[a:b], what) for a, b in zip(starts, ends)]


def _prev(b: Optional[bytes]) -> Optional[str]:
    if b is None:
        return None
    s = _text(b, "prev_hash")
    if len(s) != 64:
        raise FormatError("prev_hash must be 64 hex characters")
    return s


def _decode_delta(r: Reader) -> Delta:
    if r.take(len(_DELTA_TAG)) != _DELTA_TAG:
        raise FormatError(f"{r.what}: bad delta tag")
    dtype = _int_field(r)
    did = _rtext(_lp(r), "delta id")
    key = _rtext(_lp(r), "delta key")
    value = _signals_from_bytes(_lp(r), "delta value")
    ts = _int_field(r)
    source = _rtext(_lp(r), "delta source")
    sb = _lp(r)
    if len(sb) != 2:
        raise FormatError("delta strength must be 2 bytes")
    strength = _signal(sb[0], sb[1], "delta strength")
    flag = r.u8()
    obs = None
    if flag == 1:
        obs = _int_field(r)
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


def _decode_batch(r: Reader) -> DeltaBatch:
    if r.take(len(_BATCH_TAG)) != _BATCH_TAG:
        raise FormatError(f"{r.what}: bad batch tag")
    bid = _rtext(_lp(r), "batch id")
    source = _rtext(_lp(r), "batch source")
    ts = _int_field(r)
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


def _decode_op(r: Reader) -> OpRecord:
    if r.take(len(_OP_TAG)) != _OP_TAG:
        raise FormatError(f"{r.what}: bad operation tag")
    op = _rtext(_lp(r), "operation name")
    ts = _int_field(r)
    args = decode_value(_lp(r))
    if not isinstance(args, dict):
        raise FormatError("operation arguments must be a mapping")
    prev = _prev(_opt_lp(r))
    return OpRecord(op, args, ts, prev)


def decode_record(r: Reader, rehash: bool = True) -> Record:
    """One record written by :func:`encode_record`. With ``rehash`` its SHA-256 is
    recomputed and checked against the stored hash."""
    kind = r.u8()
    n = r.u32()
    body = r.take(n)
    stored = r.take(32).hex()
    sub = Reader(body, what=f"{r.what} record")
    if kind == 0:
        rec: Record = _decode_delta(sub)
    elif kind == 1:
        rec = _decode_batch(sub)
    elif kind == 2:
        rec = _decode_op(sub)
    else:
        raise FormatError(f"unknown record kind {kind}")
    if sub.left():
        raise FormatError("trailing bytes in a record")
    if rehash and rec.compute_hash() != stored:
        raise FormatError("record hash does not match its content")
    rec._hash = stored
    return rec


# ----------------------------------------------------------------------------- v2
_M64 = (1 << 64) - 1
_WIDTHS = ((1, np.uint8), (2, np.uint16), (4, np.uint32), (8, np.uint64))
_WIDTH_DTYPE = dict(_WIDTHS)


def _section(tag: bytes, parts: List[Any], checksum: Optional[int] = None) -> List[Any]:
    """A section as a list of byte-like parts (header first): no payload is copied twice.
    ``checksum``: the payload's xxh3_64, when the caller already has it."""
    n = 0
    h = xxhash.xxh3_64() if checksum is None else None
    for p in parts:
        if h is not None:
            h.update(p)
        n += memoryview(p).nbytes
    return [tag + struct.pack("<IQQ", 0, n, h.intdigest() if h is not None else checksum)] + parts


def pack_ints(col: np.ndarray) -> List[bytes]:
    """The packed encoding of an integer column (any integer dtype; its length is known
    from context): ``u8 mode`` then 0 constant ``u64 v`` · 1 arithmetic ``u64 start,
    u64 step`` · 2 offset ``u64 base, u8 width, n x width-byte (v - base)``. Values are
    64-bit patterns; arithmetic wraps modulo 2^64."""
    if col.shape[0] == 0 or col.strides[0] == 0:  # empty, or a broadcast constant
        return [struct.pack("<BQ", 0, int(col[0]) & _M64 if col.shape[0] else 0)]
    lo, hi, arith, step = _kc.plan_int_column(col)
    if arith:
        if step == 0:
            return [struct.pack("<BQ", 0, int(lo) & _M64)]
        return [struct.pack("<BQQ", 1, int(lo) & _M64, int(step) & _M64)]
    mn, mx = int(lo), int(hi)
    span = mx - mn
    width, dt = next(w for w in _WIDTHS if span < 1 << (8 * w[0]))
    if col.dtype.kind == "u":  # no negative differences, no overflow
        d = col - col.dtype.type(mn)
    else:
        d = (col.astype(np.int64, copy=False) - np.int64(mn)).view(np.uint64)
    return [struct.pack("<BQB", 2, mn & _M64, width), d.astype(dt, copy=False).tobytes()]


def unpack_ints(r: Reader, n: int, signed: bool = True) -> np.ndarray:
    """Inverse of :func:`pack_ints`: ``n`` values as int64 (``signed``) or uint64."""
    mode = r.u8()
    if mode == 0:
        out = np.full(n, r.u64(), np.uint64)
    elif mode == 1:
        start, step = r.u64(), r.u64()
        out = np.arange(n, dtype=np.uint64)
        out *= np.uint64(step)
        out += np.uint64(start)
    elif mode == 2:
        base = r.u64()
        width = r.u8()
        dt = _WIDTH_DTYPE.get(width)
        if dt is None:
            raise FormatError(f"{r.what}: bad integer column width {width}")
        out = np.frombuffer(r.take(n * width), dt).astype(np.uint64)
        out += np.uint64(base)
    else:
        raise FormatError(f"{r.what}: unknown integer column mode {mode}")
    return out.view(np.int64) if signed else out


def _meta(t) -> bytes:
    """The META section: counters and configuration as compact JSON (UTF-8, sorted keys;
    ``custom`` as hex). ``rule``/``thermal_config``/``policy`` appear only where they differ
    from the genesis record's. JSON because the C parser reads it ~10x faster than the
    canonical value encoding, and META is not hashed."""
    m = {"name": t.name, "id": t.id, "semantics": t.semantics, "created_at": t.created_at, "last_consolidation": t.last_consolidation,
         "total_deltas": t.total_deltas, "total_consolidations": t.total_consolidations,
         "custom": None if t.custom is None else bytes(t.custom).hex(), "head_hash": t.head_hash,
         "records": len(t._chain), "state_digest": t.state_digest()}
    genesis = t._chain.records[0].args
    for name, cfg in (("rule", t.rule), ("thermal_config", t.thermal_config), ("policy", t.policy)):
        d = cfg.to_dict()
        if d != genesis.get(name):  # changed since genesis (configure): store the current one
            m[name] = d
    return json.dumps(m, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def _read_meta(b: bytes) -> Dict[str, Any]:
    try:
        meta = json.loads(b.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise FormatError("META section is not valid JSON") from None
    if not isinstance(meta, dict):
        raise FormatError("META section is not a mapping")
    c = meta.get("custom")
    if c is not None:
        try:
            meta["custom"] = bytes.fromhex(c)
        except (TypeError, ValueError):
            raise FormatError("META custom is not hex") from None
    for name, lo, hi in (("created_at", -2 ** 63, 2 ** 63), ("last_consolidation", -2 ** 63, 2 ** 63),
                         ("total_deltas", 0, 2 ** 64), ("total_consolidations", 0, 2 ** 64)):
        v = meta.get(name)
        if type(v) is not int or not lo <= v < hi:
            raise FormatError(f"META {name} must be an integer in [{lo}, {hi})")
    for name in ("rule", "thermal_config", "policy"):
        if name in meta and not isinstance(meta[name], dict):
            raise FormatError(f"META {name} must be a mapping")
    if not isinstance(meta.get("head_hash"), str) or not isinstance(meta.get("state_digest"), str):
        raise FormatError("META head_hash and state_digest must be hex strings")
    return meta


def _lp_bytes(b: bytes) -> bytes:
    return struct.pack("<Q", len(b)) + b


def _opt_bytes(b: Optional[bytes]) -> bytes:
    return b"\x00" if b is None else b"\x01" + _lp_bytes(b)


def _value_ref(s, view: np.ndarray) -> List[Any]:
    """``u8 0, u64 arena offset`` for a value held in the arena, else ``u8 1, u64 n, 2n bytes``."""
    o = s.offset_of(view)
    if o >= 0 or view.shape[0] == 0:
        return [struct.pack("<BQ", 0, max(o, 0))]
    return [struct.pack("<BQ", 1, view.shape[0]), np.ascontiguousarray(view).tobytes()]


#: operation arguments this long or longer are stored zlib-compressed when that at least halves
#: them; a ratio over _MAX_RATIO is never written (so a reader can bound what it inflates)
_ZLIB_FROM = 128
_MAX_RATIO = 16


@functools.lru_cache(maxsize=256)
def _pack_args(ab: bytes) -> Tuple[bytes, bytes]:
    """``u8 0 | lp(args)`` or ``u8 1 | lp(zlib(args))`` (memoised: a capsule saved again
    compresses its genesis configuration once)."""
    if len(ab) >= _ZLIB_FROM:
        c = zlib.compress(ab, 6)
        if 2 * len(c) <= len(ab) and len(c) * _MAX_RATIO >= len(ab):
            return b"\x01", _lp_bytes(c)
    return b"\x00", _lp_bytes(ab)


def _unpack_args(r: Reader) -> bytes:
    how = r.u8()
    b = _lp(r)
    if how == 0:
        return b
    if how != 1:
        raise FormatError(f"{r.what}: unknown argument encoding {how}")
    d = zlib.decompressobj()
    try:
        out = d.decompress(b, _MAX_RATIO * len(b) + 1)
    except zlib.error:
        raise FormatError(f"{r.what}: corrupt compressed arguments") from None
    if not d.eof or d.unused_data or len(out) > _MAX_RATIO * len(b):
        raise FormatError(f"{r.what}: compressed arguments are malformed or inflate too far")
    return out


def _encode_record_v2(s, rec: Record) -> List[Any]:
    kind = rec.kind
    out: List[Any] = [bytes([_KIND[kind]]), bytes.fromhex(rec.hash)]
    if kind == "delta":
        kid = s.kid_of(rec.key)
        if kid is None:
            raise ThermogramError(f"delta record {rec.id} names a key the capsule's table lacks")
        out += [_lp_bytes(str(rec.id).encode()),
                struct.pack("<BQqQ", int(rec.delta_type), kid, int(rec.timestamp),
                            rec.value.shape[0])]
        out += _value_ref(s, rec.value)
        obs = rec.observation_count
        out += [_lp_bytes(rec.source.encode("utf-8", "surrogatepass")),
                bytes([rec.strength.polarity & 0xFF, rec.strength.magnitude]),
                b"\x00" if obs is None else b"\x01" + struct.pack("<Q", int(obs) & _M64),
                _opt_bytes(rec.custom)]
    elif kind == "batch":
        n = len(rec)
        if rec._kids is not None and rec._ktab is s.keys:
            kids = rec._kids
        else:  # bound to another table (or not bound): look the keys up, never add them here
            kids = np.array([s.keys.get(k) for k in rec.keys], dtype=object)
            if any(k is None for k in kids):
                raise ThermogramError(f"batch record {rec.id} names a key the capsule's table lacks")
            kids = kids.astype(np.int64)
        out += [_lp_bytes(str(rec.id).encode()), _lp_bytes(rec.source.encode("utf-8", "surrogatepass")),
                struct.pack("<qQ", int(rec.timestamp), n)]
        out += pack_ints(rec.types)
        out += pack_ints(kids)
        out += pack_ints(np.diff(rec.offsets))
        out += _value_ref(s, rec.values)
        st = rec.strengths
        out += pack_ints(st["polarity"])
        out += pack_ints(st["magnitude"])
        out += pack_ints(rec.timestamps)
    else:
        out += [_lp_bytes(rec.op.encode()), struct.pack("<q", int(rec.timestamp)), *_pack_args(rec.args_bytes())]
    return out


def encode_v2(t, extensions: Optional[Dict[str, Any]] = None) -> bytes:
    """The capsule as ``.thermo`` v2 bytes: key table, value arena (every value once,
    shared by entries and records), entry columns and the full record history."""
    with t._lock:
        return b"".join(encode_v2_parts(t, extensions))


def encode_v2_parts(t, extensions: Optional[Dict[str, Any]] = None) -> List[Any]:
    """:func:`encode_v2` as a list of byte-like parts, in order, without joining them: the
    value arena is a view of the capsule's memory (valid while the capsule is not changed;
    :func:`save` writes the parts under the capsule's lock)."""
    with t._lock:
        s = t._store
        meta = _meta(t)
        keys = s.keys
        nk = len(keys)
        kparts = [struct.pack("<Q", nk)] + pack_ints(keys.lengths()) + [bytes(keys.blob)]
        vals = s.vals[: s.vend].view(np.uint8)
        rows = np.flatnonzero(s.live() != FREE)
        n = int(rows.shape[0])
        dense = n == s.nrows
        col = (lambda c: c[:n]) if dense else (lambda c: c[rows])  # noqa: E731
        eparts: List[Any] = [struct.pack("<Q", n)]
        for c in (s.layer, s.kid, s.pol, s.mag, s.count, s.ts, s.voff, s.vlen):
            eparts += pack_ints(col(c))
        rparts: List[Any] = [struct.pack("<Q", len(t._chain))]
        for rec in t._chain.records:
            rparts += _encode_record_v2(s, rec)
        sections = [_section(b"META", [meta]), _section(b"KEYS", kparts),
                    _section(b"VALS", [memoryview(vals)], s.vhash.intdigest()),
                    _section(b"ENTR", eparts), _section(b"RECS", rparts)]
        ext = dict(getattr(t, "extensions", None) or {})
        if extensions:
            ext.update(extensions)
        if ext:
            sections.append(_section(b"EXTN", [encode_value(ext)]))
        header = MAGIC + struct.pack("<HHII", 2, 0, len(sections), 0)
        return [header] + [p for sec in sections for p in sec]


_REQUIRED_V2 = (b"META", b"KEYS", b"VALS", b"ENTR", b"RECS")


def _sections(data: bytes, states: Optional[Dict[bytes, Any]] = None) -> Dict[bytes, Tuple[int, int]]:
    """Section tag -> (start, end) of its payload, every checksum checked. Tags present in
    ``states`` get their xxh3 state stored there (to keep hashing appended bytes)."""
    r = Reader(data, what=".thermo v2")
    if r.take(4) != MAGIC:
        raise FormatError("not a .thermo file (bad magic)")
    version = r.u16()
    if version != 2:
        raise FormatError(f"unsupported .thermo version {version}")
    flags = r.u16()
    nsec = r.u32()
    reserved = r.u32()
    if flags != 0 or reserved != 0:
        raise FormatError(f"unknown header flags {flags:#x}/{reserved:#x}")
    if nsec > 64:
        raise FormatError(f"implausible section count {nsec}")
    out: Dict[bytes, Tuple[int, int]] = {}
    mv = memoryview(data)
    for _ in range(nsec):
        tag = r.take(4)
        sflags = r.u32()
        length = r.u64()
        checksum = r.u64()
        if length > r.left():
            raise FormatError(f"section {tag!r} claims {length} bytes, {r.left()} left")
        start = r.pos
        r.pos += length
        if sflags != 0:
            raise FormatError(f"unknown flags on section {tag!r}")
        if states is not None and tag in states:
            h = xxhash.xxh3_64()
            h.update(mv[start:start + length])
            states[tag] = h
            got = h.intdigest()
        else:
            got = xxhash.xxh3_64_intdigest(mv[start:start + length])
        if got != checksum:
            raise FormatError(f"section {tag!r} checksum mismatch (corrupt file)")
        if tag in out:
            raise FormatError(f"duplicate section {tag!r}")
        out[tag] = (start, start + length)
    if r.left():
        raise FormatError(f"{r.left()} trailing bytes after the last section")
    for need in _REQUIRED_V2:
        if need not in out:
            raise FormatError(f"missing section {need.decode()}")
    return out


class _Budget:
    """Rows a file may make the decoder allocate: proportional to its size, so a small
    hostile file cannot claim billions of rows through constant-encoded columns."""

    def __init__(self, nbytes: int):
        self.left = 65_536 + 32 * nbytes

    def take(self, n: int, what: str) -> int:
        if n > self.left:
            raise FormatError(f"{what}: {n} rows is implausible for a file of this size")
        self.left -= n
        return n


def _decode_keys(data: bytes, start: int, end: int, budget: _Budget) -> KeyTable:
    r = Reader(data, start, end, "KEYS section")
    n = r.u64()
    if n > r.left():  # every key has at least one byte
        raise FormatError(f"KEYS section claims {n} keys, more than its bytes")
    lens = unpack_ints(r, n)
    total = int(lens.sum()) if n else 0
    if n and (int(lens.min()) < 1 or int(lens.max()) > MAX_KEY_BYTES_ON_LOAD):
        raise FormatError("KEYS section: a key is empty or over-long")
    if total != r.left():
        raise FormatError(f"KEYS section: key lengths sum to {total}, {r.left()} bytes follow")
    blob = data[r.pos:end]
    try:
        blob.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        raise FormatError("KEYS section: keys are not valid UTF-8") from None
    if n:
        starts = np.zeros(n, np.int64)
        np.cumsum(lens[:-1], out=starts[1:])
        first = np.frombuffer(blob, np.uint8)[starts]
        if ((first & 0xC0) == 0x80).any():
            raise FormatError("KEYS section: a key starts inside a UTF-8 character")
    table = KeyTable(n)
    table.add_blob(blob, lens)
    if len(table) != n:
        raise FormatError("KEYS section: a key appears twice")
    return table


def _decode_vals(data: bytes, start: int, end: int) -> np.ndarray:
    if (end - start) % 2:
        raise FormatError("VALS section: odd length (signals are 2 bytes)")
    raw = np.frombuffer(data, np.uint8, end - start, start)
    bad = int(_kc.check_polarity(raw))
    if bad >= 0:
        raise FormatError(f"VALS section: signal {bad} has an invalid polarity")
    # no copy: the arena starts as a read-only view of the file's bytes (it is append-only,
    # and its first append moves it to a new buffer)
    return raw.view(SIGNAL)


def _decode_entries_v2(data: bytes, start: int, end: int, budget: _Budget, nkeys: int, nsig: int):
    r = Reader(data, start, end, "ENTR section")
    n = budget.take(r.u64(), "ENTR section")
    if n > 4 * nkeys:
        raise FormatError("ENTR section: more entries than keys x layers")
    layer = unpack_ints(r, n)
    kid = unpack_ints(r, n)
    pol = unpack_ints(r, n)
    mag = unpack_ints(r, n)
    count = unpack_ints(r, n, signed=False)
    ts = unpack_ints(r, n)
    voff = unpack_ints(r, n)
    vlen = unpack_ints(r, n)
    if r.left():
        raise FormatError("ENTR section: trailing bytes")
    if n:
        if int(layer.min()) < 0 or int(layer.max()) > 3 or int(kid.min()) < 0 or int(kid.max()) >= nkeys:
            raise FormatError("ENTR section: layer or key id out of range")
        if int(pol.min()) < -1 or int(pol.max()) > 1 or int(mag.min()) < 0 or int(mag.max()) > 255:
            raise FormatError("ENTR section: strength out of range")
        if int(voff.min()) < 0 or int(vlen.min()) < 0 or int(voff.max()) > nsig or int(vlen.max()) > nsig \
                or bool((vlen > nsig - voff).any()):  # each term <= nsig: no overflow
            raise FormatError("ENTR section: value outside the VALS section")
    return layer, kid, pol, mag, count, ts, voff, vlen


def _value_at(r: Reader, arena: np.ndarray, n: int, what: str) -> Tuple[np.ndarray, int]:
    """A record's value: ``(read-only arena view, offset)`` or an inline copy and -1."""
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


def _decode_records_v2(data: bytes, start: int, end: int, budget: _Budget, keys: KeyTable,
                       arena: np.ndarray) -> Tuple[List[Record], List[int]]:
    """Records (hash taken from the file, ``prev_hash`` = the previous record's hash) and
    the arena offset of each delta/batch record's values (-1 inline, None for operations)."""
    r = Reader(data, start, end, "RECS section")
    count = r.u64()
    if count * 34 > r.left():
        raise FormatError(f"RECS section claims {count} records, too many for its size")
    recs: List[Record] = []
    offs: List[Optional[int]] = []
    prev: Optional[str] = None
    nk = len(keys)
    for i in range(count):
        kind = r.u8()
        h = r.take(32).hex()
        what = f"record {i}"
        if kind == 0:
            did = _rtext(_lp(r), "delta id")
            dtype, kid, ts, nv = struct.unpack("<BQqQ", r.take(25))
            if kid >= nk or dtype > 3:
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
                rec: Record = Delta(dtype, keys[kid], value, source=source, strength=strength, timestamp=ts,
                                    id=did, observation_count=obs, custom=custom)
            except ValidationError as e:
                raise FormatError(f"invalid delta record: {e}") from None
            rec.value = value
        elif kind == 1:
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
        elif kind == 2:
            op = _rtext(_lp(r), "operation name")
            ts = r.i64()
            ab = _unpack_args(r)
            args = decode_value(ab)
            if not isinstance(args, dict):
                raise FormatError("operation arguments must be a mapping")
            rec, o = OpRecord(op, args, ts, None), None
            rec._abytes = ab
        else:
            raise FormatError(f"{what}: unknown record kind {kind}")
        rec.prev_hash = prev
        rec._hash = h
        prev = h
        recs.append(rec)
        offs.append(o)
    if r.left():
        raise FormatError("RECS section: trailing bytes")
    return recs, offs


def _rebuild_pending(t, offs: Optional[List[Optional[int]]] = None) -> None:
    """Re-apply the deltas recorded since the last consolidation as pending (``offs``: where
    their values already are in the arena)."""
    recs = t._chain.records
    i = len(recs)
    while i > 0 and not (recs[i - 1].kind == "op" and recs[i - 1].op == "consolidate"):
        i -= 1
    for j in range(i, len(recs)):
        rec = recs[j]
        o = None if offs is None or offs[j] is None or offs[j] < 0 else offs[j]
        if rec.kind == "delta":
            t._apply_delta_state(rec, o)
        elif rec.kind == "batch":
            t._apply_batch_state(rec, o)


def decode_v2(data: bytes, *, clock=None, verify: bool = True):
    """A capsule from ``.thermo`` v2 bytes.

    Always checked: every section's xxh3 checksum, every length and count,
    every value's domain. With ``verify`` (default) also every record's SHA-256
    (and so every link) and the state digest; ``verify=False`` trusts them (the
    checksums already catch corruption) and loads faster."""
    from .core import Thermogram
    states: Dict[bytes, Any] = {b"VALS": None}
    secs = _sections(data, states)
    budget = _Budget(len(data))
    meta = _read_meta(data[slice(*secs[b"META"])])
    keys = _decode_keys(data, *secs[b"KEYS"], budget)
    arena = _decode_vals(data, *secs[b"VALS"])
    nsig = int(arena.shape[0])
    cols = _decode_entries_v2(data, *secs[b"ENTR"], budget, len(keys), nsig)
    recs, offs = _decode_records_v2(data, *secs[b"RECS"], budget, keys, arena)
    if not recs:
        raise FormatError("RECS section has no genesis record")
    try:
        t = Thermogram.from_genesis(recs[0], clock=clock, verify=verify)
        chain = t._chain
        if verify:
            for rec in recs[1:]:
                chain.append_verified(rec, rehash=True)
        else:
            chain.records.extend(recs[1:])
            chain.head_hash = recs[-1].hash
        s = t._store
        bad = s.load_snapshot(keys, arena, states[b"VALS"], *cols)
        if bad >= 0:
            raise FormatError(f"ENTR section: entry {bad} repeats a (key, layer) pair")
        ro = s.vals_ro
        for rec, o in zip(recs, offs):
            if o is not None and o >= 0:
                attr = "value" if rec.kind == "delta" else "values"
                n = getattr(rec, attr).shape[0]
                setattr(rec, attr, ro[o:o + n])
                s.track(rec, attr, o, n)
        t._replaying = True
        _rebuild_pending(t, offs)
        t._replaying = False
        if "rule" in meta:
            t._rule = PlasticityRule.from_dict(meta["rule"])
        if "thermal_config" in meta:
            t._thermal_config = ThermalConfig.from_dict(meta["thermal_config"])
        if "policy" in meta:
            t._policy = ConsolidationPolicy.from_dict(meta["policy"])
        t.created_at = int(meta["created_at"])
        t.last_consolidation = int(meta["last_consolidation"])
        t.total_deltas = int(meta["total_deltas"])
        t.total_consolidations = int(meta["total_consolidations"])
        t.custom = meta.get("custom")
    except FormatError:
        raise
    except (ThermogramError, KeyError, TypeError, ValueError, AttributeError, OverflowError) as e:
        raise FormatError(f"inconsistent .thermo v2 content: {e}") from None
    if t.head_hash != meta.get("head_hash"):
        raise FormatError("head hash in META does not match the records")
    t._digest = None
    if verify and t.state_digest() != meta.get("state_digest"):
        raise FormatError("state digest in META does not match the decoded state")
    if b"EXTN" in secs:
        ext = decode_value(data[slice(*secs[b"EXTN"])])
        if not isinstance(ext, dict):
            raise FormatError("EXTN section is not a mapping")
        t.extensions = ext
    return t


# ----------------------------------------------------------------------------- v1 (the reference's)
_TRIGGER_TAGS = {"delta_count": 0, "time_period": 1, "dirty_size": 2, "manual": 3}


def _v1_str(r: Reader, what: str) -> str:
    return _text(r.take(r.u16()), what)


def _v1_signal(r: Reader, what: str) -> Signal:
    b = r.take(2)
    return _signal(b[0], b[1], what)


def _v1_ts(r: Reader) -> int:
    secs = r.i64()
    nanos = r.u32()
    return _ns(secs, nanos)


def _v1_blob(r: Reader, what: str) -> Optional[bytes]:
    flag = r.u8()
    if flag == 1:
        n = r.u32()
        return bytes(r.take(n))
    return None


def _v1_opt_str(r: Reader, what: str) -> Optional[str]:
    return _v1_str(r, what) if r.u8() == 1 else None


def decode_v1(data: bytes, *, semantics: str = "fixed", clock=None):
    """A capsule from the reference's ``.thermo`` v1 bytes (CRC32 and sizes checked,
    pending deltas' SHA-256 chain verified under the reference's rule)."""
    from .core import Thermogram
    if len(data) < 16:
        raise FormatError(".thermo v1: file shorter than its 16-byte header")
    r = Reader(data, what=".thermo v1")
    if r.take(4) != MAGIC:
        raise FormatError("not a .thermo file (bad magic)")
    if r.u16() != 1:
        raise FormatError("not a .thermo v1 file")
    if r.u16() != 0:
        raise FormatError(".thermo v1: unknown header flags")
    total = r.u32()
    crc = r.u32()
    if zlib.crc32(memoryview(data)[16:]) != crc:
        raise FormatError(".thermo v1: CRC32 mismatch (corrupt file)")
    if total != len(data):
        raise FormatError(f".thermo v1: header says {total} bytes, file has {len(data)}")
    name = _v1_str(r, "name")
    tid = _v1_str(r, "id")
    sig = lambda w: _v1_signal(r, w)  # noqa: E731
    decay = [sig("decay rate") for _ in range(4)]
    promo = [sig("promotion threshold") for _ in range(4)]
    demo = [sig("demotion threshold") for _ in range(4)]
    min_obs = [r.u64() for _ in range(4)]
    allow = [r.u8() != 0 for _ in range(4)]
    try:
        cfg = ThermalConfig(decay, promo, demo, min_obs, allow, sig("prune threshold"),
                            sig("crystallization threshold"), r.u8() != 0, sig("warming delta"))
    except ValidationError as e:
        raise FormatError(f"bad thermal config: {e}") from None
    created = _v1_ts(r)
    last = _v1_ts(r)
    total_deltas = r.u32()
    total_cons = r.u32()
    custom = _v1_blob(r, "metadata custom")
    pb = r.u8()
    if pb > 4:
        raise FormatError(f"unknown plasticity policy {pb}")
    rule = PlasticityRule(UpdatePolicy(pb), *[sig("plasticity rule") for _ in range(5)])
    prune = r.u8() != 0
    merge = r.u8() != 0
    triggers = []
    for _ in range(r.u8()):
        tag = r.u8()
        if tag == 0:
            triggers.append(ConsolidationTrigger.delta_count(r.u32()))
        elif tag == 1:
            triggers.append(ConsolidationTrigger.time_period(r.u64()))
        elif tag == 2:
            triggers.append(ConsolidationTrigger.dirty_size(r.u32()))
        elif tag == 3:
            triggers.append(ConsolidationTrigger.manual())
        else:
            raise FormatError(f"unknown trigger type {tag}")
    policy = ConsolidationPolicy(tuple(triggers), prune, merge)
    cols = {k: [] for k in ("keys", "layer", "pol", "mag", "count", "ts", "values", "lengths")}
    buf = np.frombuffer(data, np.uint8)
    for lay in range(4):
        n = r.count(24, "entry")
        ko, kl, vo, vl = (np.zeros(n, np.int64) for _ in range(4))
        pol, mag = np.zeros(n, np.int8), np.zeros(n, np.uint8)
        secs, nanos, cnt = np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64)
        end = int(_kc.scan_v1_entries(buf, r.pos, n, ko, kl, vo, vl, pol, mag, secs, nanos, cnt))
        if end < 0:
            raise FormatError({-1: "entry layer truncated", -2: "invalid polarity in an entry",
                               -3: "invalid timestamp in an entry"}[end])
        keys = [_text(data[a:a + b], "entry key") for a, b in zip(ko.tolist(), kl.tolist())]
        if len(set(keys)) != n:
            raise FormatError("a key appears twice in one layer")
        if n and (secs.max() > 9_223_372_035 or secs.min() < -9_223_372_036):
            raise FormatError("entry timestamp outside the supported range (years 1677-2262)")
        vals = [np.frombuffer(data, SIGNAL, int(b), int(a)) for a, b in zip(vo.tolist(), vl.tolist())]
        cols["keys"] += keys
        cols["layer"].append(np.full(n, lay, np.uint8))
        cols["pol"].append(pol)
        cols["mag"].append(mag)
        cols["count"].append(cnt.astype(np.uint64))
        cols["ts"].append(secs * NS + nanos)
        cols["values"] += vals
        cols["lengths"].append(vl)
        r.pos = end
    n_deltas = r.count(2 + 1 + 2 + 4 + 12 + 2 + 2 + 1 + 1 + 1 + 2, "delta")
    head = _v1_opt_str(r, "head hash")
    deltas: List[Tuple[Delta, Optional[str], str]] = []
    for i in range(n_deltas):
        did = _v1_str(r, "delta id")
        tb = r.u8()
        if tb > 3:
            raise FormatError(f"unknown delta type {tb}")
        key = _v1_str(r, "delta key")
        nv = r.count(2, "signal")
        value = _signals_from_bytes(r.take(2 * nv), "delta value")
        ts = _v1_ts(r)
        source = _v1_str(r, "delta source")
        strength = sig("delta strength")
        obs = r.u32() if r.u8() == 1 else None
        dcustom = _v1_blob(r, "delta custom")
        prev = _v1_opt_str(r, "prev hash")
        h = _v1_str(r, "hash")
        try:
            d = Delta(DeltaType(tb), key, value, source=source, strength=strength, timestamp=ts, id=did,
                      observation_count=obs, custom=dcustom)
        except ValidationError as e:
            raise FormatError(f"delta {i}: {e}") from None
        deltas.append((d, prev, h))
    if r.left():
        raise FormatError(f".thermo v1: {r.left()} trailing bytes")
    # the pending chain, under the reference's own hashing rule
    prev_h: Optional[str] = None
    for i, (d, prev, h) in enumerate(deltas):
        if prev != prev_h:
            raise FormatError(f"pending delta {i} does not link to the previous delta", )
        if reference_delta_hash(d, prev) != h:
            raise FormatError(f"pending delta {i} hash does not match its content")
        prev_h = h
    if head != prev_h:
        raise FormatError("head hash does not match the last pending delta")
    return _assemble_import(Thermogram, name, tid, rule, cfg, policy, semantics, clock, created, last,
                            total_deltas, total_cons, custom, cols, [d for d, _, _ in deltas], "thermo-v1")


def _assemble_import(Thermogram, name, tid, rule, cfg, policy, semantics, clock, created, last,
                     total_deltas, total_cons, custom, cols, pending: List[Delta], source: str):
    genesis = OpRecord("genesis", {"name": name, "id": tid, "rule": rule.to_dict(),
                                   "thermal_config": cfg.to_dict(), "policy": policy.to_dict(),
                                   "semantics": semantics, "format": 1}, created)
    genesis._link(None)
    t = Thermogram.from_genesis(genesis, clock=clock)
    values = np.concatenate(cols["values"]) if cols["values"] else np.zeros(0, SIGNAL)
    cat = lambda k, dt: (np.concatenate(cols[k]).astype(dt) if cols[k] else np.zeros(0, dt))  # noqa: E731
    entries = {"keys": cols["keys"], "layer": cat("layer", np.uint8), "pol": cat("pol", np.int8),
               "mag": cat("mag", np.uint8), "count": cat("count", np.uint64), "ts": cat("ts", np.int64),
               "values": values, "lengths": cat("lengths", np.int64)}
    meta = {"last_consolidation": last, "total_deltas": total_deltas, "total_consolidations": total_cons,
            "custom": custom, "pending": len(pending), "source": source}
    t._replaying = True
    try:
        # timestamped with the file's own last consolidation, so loading is deterministic
        t._run_op("import", {"entries": entries, "metadata": meta}, int(last))
        for d in pending:
            t._commit(d, lambda d=d: t._apply_delta_state(d))
    finally:
        t._replaying = False
    return t


def _pending_deltas(t) -> List[Delta]:
    recs = t._chain.records
    i = len(recs)
    while i > 0 and not (recs[i - 1].kind == "op" and recs[i - 1].op == "consolidate"):
        i -= 1
    out: List[Delta] = []
    for rec in recs[i:]:
        out.extend(rec.deltas())
    return out


def encode_v1(t) -> bytes:
    """The capsule in the reference's ``.thermo`` v1 format (see :func:`_encode_v1`).

    Raises :class:`ValidationError` if a string holds a lone surrogate: v1 strings are
    strict UTF-8 for the Rust crate."""
    try:
        return _encode_v1(t)
    except UnicodeEncodeError as e:
        raise ValidationError(f"a string holds a lone surrogate ({e.object[e.start:e.end]!r}), which "
                              ".thermo v1 (strict UTF-8 for the Rust crate) cannot store") from None


def _encode_v1(t) -> bytes:
    """The capsule in the reference's ``.thermo`` v1 format.

    Entries are written in table order (for a capsule read from a v1 file and
    not changed since, that is the file's order, so the bytes round-trip).
    Pending deltas get the reference's hashes. Counts the format holds as u32
    (update counts, totals) saturate at 2**32 - 1 instead of wrapping.
    """
    u32max = 2 ** 32 - 1
    sat = lambda v: min(int(v), u32max)  # noqa: E731
    out = bytearray()
    w = out.extend

    def s16(text: str, what: str) -> None:
        try:
            b = text.encode("utf-8")
        except UnicodeEncodeError:
            raise ValidationError(f"{what} {text!r} holds a lone surrogate, which .thermo v1 "
                                  "(UTF-8 strings for the Rust crate) cannot store") from None
        if len(b) > 65535:
            raise ValidationError(f"{what} is {len(b)} bytes; .thermo v1 strings hold at most 65535")
        w(struct.pack("<H", len(b)))
        w(b)

    def sg(s: Signal) -> None:
        w(bytes([s.polarity & 0xFF, s.magnitude]))

    def ts(ns: int) -> None:
        secs, nanos = divmod(int(ns), NS)
        w(struct.pack("<qI", secs, nanos))

    with t._lock:
        w(MAGIC + struct.pack("<HHII", 1, 0, 0, 0))
        s16(t.name, "name")
        s16(t.id, "id")
        cfg = t.thermal_config
        for group in (cfg.decay_rates, cfg.promotion_thresholds, cfg.demotion_thresholds):
            for s in group:
                sg(s)
        w(struct.pack("<4Q", *cfg.min_observations))
        w(bytes(int(b) for b in cfg.allow_demotion))
        sg(cfg.prune_threshold)
        sg(cfg.crystallization_threshold)
        w(bytes([int(cfg.allow_warming)]))
        sg(cfg.warming_delta)
        ts(t.created_at)
        ts(t.last_consolidation)
        w(struct.pack("<II", sat(t.total_deltas), sat(t.total_consolidations)))
        if t.custom is None:
            w(b"\x00")
        else:
            w(b"\x01" + struct.pack("<I", len(t.custom)) + t.custom)
        rule = t.rule
        w(bytes([int(rule.policy)]))
        for s in (rule.novelty_threshold, rule.merge_threshold, rule.decay_rate, rule.prune_threshold,
                  rule.learning_rate):
            sg(s)
        pol = t.policy
        w(bytes([int(pol.enable_pruning), int(pol.enable_merging), len(pol.triggers)]))
        for trig in pol.triggers:
            w(bytes([_TRIGGER_TAGS[trig.kind]]))
            if trig.kind == "time_period":
                w(struct.pack("<Q", trig.value))
            elif trig.kind in ("delta_count", "dirty_size"):
                w(struct.pack("<I", sat(trig.value)))
        s = t._store
        for lay in range(4):
            rows = s.rows_in(lay)
            n = len(rows)
            kb = [k.encode("utf-8") for k in s.keys.take(s.kid[rows].tolist())]
            if any(len(b) > 65535 for b in kb):
                raise ValidationError(".thermo v1 keys hold at most 65535 bytes")
            klen = np.fromiter((len(b) for b in kb), np.int64, count=n)
            koff = np.zeros(n, np.int64)
            if n:
                np.cumsum(klen[:-1], out=koff[1:])
            vlen = s.vlen[rows]
            secs, nanos = np.divmod(s.ts[rows], NS)
            size = int(n * 24 + klen.sum() + 2 * vlen.sum())
            chunk = np.zeros(size, np.uint8)
            end = _kc.write_v1_entries(chunk, 0, np.frombuffer(b"".join(kb) or b"\x00", np.uint8), koff, klen,
                                       s.vals.view(np.uint8), s.voff[rows], vlen, s.pol[rows], s.mag[rows],
                                       secs, nanos, np.minimum(s.count[rows], u32max).astype(np.int64))
            assert end == size
            w(struct.pack("<I", n))
            w(chunk.tobytes())
        pending = _pending_deltas(t)
        hashes: List[str] = []
        prev: Optional[str] = None
        for d in pending:
            prev = reference_delta_hash(d, prev)
            hashes.append(prev)
        w(struct.pack("<I", len(pending)))
        if prev is None:
            w(b"\x00")
        else:
            w(b"\x01")
            s16(prev, "head hash")
        prev = None
        for d, h in zip(pending, hashes):
            s16(d.id, "delta id")
            w(bytes([int(d.delta_type)]))
            s16(d.key, "delta key")
            w(struct.pack("<I", len(d.value)))
            w(d.value.tobytes())
            ts(d.timestamp)
            s16(d.source, "delta source")
            sg(d.strength)
            if d.observation_count is None:
                w(b"\x00")
            else:
                w(b"\x01" + struct.pack("<I", sat(d.observation_count)))
            if d.custom is None:
                w(b"\x00")
            else:
                w(b"\x01" + struct.pack("<I", len(d.custom)) + d.custom)
            if prev is None:
                w(b"\x00")
            else:
                w(b"\x01")
                s16(prev, "prev hash")
            s16(h, "hash")
            prev = h
    struct.pack_into("<I", out, 8, len(out))
    struct.pack_into("<I", out, 12, zlib.crc32(memoryview(out)[16:]))
    return bytes(out)


# ----------------------------------------------------------------------------- legacy JSON
def _json_signal(v: Any, what: str) -> Signal:
    try:
        return Signal(v["polarity"], v["magnitude"]) if isinstance(v, dict) else Signal.coerce(v, what)
    except (ValidationError, KeyError, TypeError):
        raise FormatError(f"bad signal in {what}: {v!r}") from None


def decode_legacy_json(data: bytes, *, semantics: str = "fixed", clock=None):
    """A capsule from the reference's serde JSON (``Thermogram`` serialised)."""
    from .core import Thermogram
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise FormatError(f"not a .thermo file or JSON capsule: {e}") from None
    if not isinstance(doc, dict):
        raise FormatError("JSON capsule must be an object")
    try:
        rule = PlasticityRule.from_dict(doc["plasticity_rule"])
        cfg = ThermalConfig.from_dict(doc["thermal_config"])
        policy = ConsolidationPolicy.from_dict(doc["consolidation_policy"])
        meta = doc["metadata"]
        cols = {k: [] for k in ("keys", "layer", "pol", "mag", "count", "ts", "values", "lengths")}
        for lay, field in enumerate(("hot_entries", "warm_entries", "cool_entries", "cold_entries")):
            for key, e in (doc.get(field) or {}).items():
                vals = np.array([_json_signal(x, "value").to_tuple() for x in e["value"]], SIGNAL).reshape(-1)
                st = _json_signal(e["strength"], "strength")
                cols["keys"].append(str(e.get("key", key)))
                cols["layer"].append(np.array([lay], np.uint8))
                cols["pol"].append(np.array([st.polarity], np.int8))
                cols["mag"].append(np.array([st.magnitude], np.uint8))
                cols["count"].append(np.array([int(e["update_count"])], np.uint64))
                cols["ts"].append(np.array([parse_rfc3339(e["updated_at"])], np.int64))
                cols["values"].append(vals)
                cols["lengths"].append(np.array([len(vals)], np.int64))
        pending = []
        chain = doc.get("dirty_chain") or {}
        prev_h = None
        for i, d in enumerate(chain.get("deltas") or []):
            m = d["metadata"]
            delta = Delta(d["delta_type"], d["key"],
                          np.array([_json_signal(x, "value").to_tuple() for x in d["value"]], SIGNAL).reshape(-1),
                          source=m["source"], strength=_json_signal(m["strength"], "strength"),
                          timestamp=parse_rfc3339(m["timestamp"]), id=d["id"],
                          observation_count=m.get("observation_count"),
                          custom=None if m.get("custom") is None else bytes(m["custom"]))
            if d.get("prev_hash") != prev_h or reference_delta_hash(delta, d.get("prev_hash")) != d.get("hash"):
                raise FormatError(f"JSON capsule: pending delta {i} fails chain verification")
            prev_h = d["hash"]
            pending.append(delta)
        if chain.get("head_hash") != prev_h:
            raise FormatError("JSON capsule: head hash does not match the last pending delta")
        custom = meta.get("custom")
        return _assemble_import(Thermogram, str(doc["name"]), str(doc["id"]), rule, cfg, policy, semantics,
                                clock, parse_rfc3339(meta["created_at"]), parse_rfc3339(meta["last_consolidation"]),
                                int(meta["total_deltas"]), int(meta["total_consolidations"]),
                                None if custom is None else bytes(custom), cols, pending, "json")
    except FormatError:
        raise
    except (KeyError, TypeError, ValueError, ThermogramError) as e:
        raise FormatError(f"JSON capsule is malformed: {e!r}") from None


# ----------------------------------------------------------------------------- files
def detect_format(data: bytes) -> str:
    """``"v2"``, ``"v1"`` or ``"json"`` from a file's first bytes."""
    if data[:4] == MAGIC:
        if len(data) < 6:
            raise FormatError("truncated .thermo header")
        version = struct.unpack_from("<H", data, 4)[0]
        if version == 2:
            return "v2"
        if version == 1:
            return "v1"
        raise FormatError(f"unsupported .thermo version {version}")
    if data.lstrip()[:1] == b"{":
        return "json"
    raise FormatError("not a .thermo file (no THRM magic) nor a JSON capsule")


def encode(t, format: str = "v2") -> bytes:
    """Bytes of the capsule in ``format`` (``"v2"`` or ``"v1"``)."""
    if format == "v2":
        return encode_v2(t)
    if format == "v1":
        return encode_v1(t)
    raise ValidationError(f"unknown format {format!r}; expected 'v2' or 'v1'")


def decode(data: bytes, *, semantics: Optional[str] = None, clock=None, verify: bool = True):
    """A capsule from bytes of any supported format (auto-detected)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ValidationError("decode needs bytes")
    data = bytes(data)
    fmt = detect_format(data)
    try:
        if fmt == "v2":
            return decode_v2(data, clock=clock, verify=verify)
        if fmt == "v1":
            return decode_v1(data, semantics=semantics or "fixed", clock=clock)
        return decode_legacy_json(data, semantics=semantics or "fixed", clock=clock)
    except FormatError:
        raise
    except (struct.error, ValueError, KeyError, TypeError, IndexError, OverflowError, MemoryError,
            UnicodeDecodeError, RecursionError) as e:
        raise FormatError(f"malformed {fmt} data: {e!r}") from None


def fsync_dir(path: str) -> None:
    """fsync a folder so a rename in it is durable (no-op where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str, data: Any) -> None:
    """Write ``data`` (bytes, or a list of byte-like parts written in order) to ``path``
    atomically: temp file in the same folder, fsync, ``os.replace``, fsync the folder.
    A crash leaves the old file or the new one."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            if isinstance(data, (list, tuple)):
                for part in data:
                    f.write(part)
            else:
                f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_dir(folder)


def save(t, path, format: str = "v2") -> None:
    """Save atomically in ``format`` (``"v2"`` default, ``"v1"`` for the Rust crate)."""
    if format == "v2":  # stream the parts: the value arena is written from memory, not copied
        with t._lock:
            atomic_write(path, encode_v2_parts(t))
        return
    atomic_write(path, encode(t, format))


def load(path, *, semantics: Optional[str] = None, clock=None, verify: bool = True,
         max_bytes: int = DEFAULT_MAX_BYTES):
    """Load a capsule file of any supported format."""
    size = os.path.getsize(path)
    if size > max_bytes:
        raise FormatError(f"{path}: {size} bytes is over the {max_bytes}-byte limit (max_bytes=)")
    with open(path, "rb") as f:
        data = f.read()
    return decode(data, semantics=semantics, clock=clock, verify=verify)
