"""``.thermo`` v2, this library's own format.

Layout (little-endian)::

    header   "THRM" | u16 version=2 | u16 flags=0 | u32 section count | u32 reserved=0
    section  4-byte tag | u32 flags=0 | u64 payload length | u64 xxh3_64(payload) | payload

Sections: ``META`` (counters and changed configuration, JSON), ``KEYS`` (the key
table), ``VALS`` (the value arena: every value once), ``ENTR`` (entry columns
pointing into both), ``RECS`` (every record since creation, referring to keys by
id and values by arena offset; see :mod:`thermogram.io.records`) and optionally
``EXTN`` (extension state, e.g. an SNN, canonical value encoding). Integer columns
are packed (:mod:`thermogram.io.packing`). Every length is checked against the bytes
that remain before anything is allocated; any inconsistency raises
:class:`~thermogram.errors.FormatError`. docs/format.md is the specification.
"""
from __future__ import annotations

import json
import struct
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import xxhash

from ..canonical import decode_value, encode_value
from ..errors import FormatError, ThermogramError
from ..keytable import KeyTable
from ..kernels import codec as _kc
from ..signal import SIGNAL
from ..store import FREE
from .packing import _Budget, pack_ints, unpack_ints
from .reader import MAGIC, MAX_KEY_BYTES_ON_LOAD, Reader
from .records import decode_records_v2, encode_records_v2

__all__ = ["encode_v2", "encode_v2_parts", "decode_v2"]

_REQUIRED_V2 = (b"META", b"KEYS", b"VALS", b"ENTR", b"RECS")


# ----------------------------------------------------------------------------- sections
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


# ----------------------------------------------------------------------------- META
def _meta(t) -> bytes:
    """The META section: counters and configuration as compact JSON (UTF-8, sorted keys;
    ``custom`` as hex). ``rule``/``thermal_config``/``policy`` appear only where they differ
    from the genesis record's. JSON because the C parser reads it ~10x faster than the
    canonical value encoding, and META is not hashed."""
    m = {"name": t.name, "id": t.id, "semantics": t.semantics, "created_at": t.created_at, "last_consolidation": t.last_consolidation,
         "total_deltas": t.total_deltas, "total_consolidations": t.total_consolidations,
         "custom": None if t.custom is None else bytes(t.custom).hex(), "head_hash": t.head_hash,
         "records": len(t.chain), "state_digest": t.state_digest()}
    genesis = t.chain.records[0].args
    for name, cfg in (("rule", t.rule), ("thermal_config", t.thermal_config), ("policy", t.policy)):
        d = cfg.to_dict()
        if d != genesis.get(name):  # changed since genesis (configure): store the current one
            m[name] = d
    return json.dumps(m, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def _read_meta(b: bytes) -> Dict[str, Any]:
    """Inverse of :func:`_meta`, every field's type and range checked."""
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


# ----------------------------------------------------------------------------- KEYS, VALS, ENTR
def _decode_keys(data: bytes, start: int, end: int, budget: _Budget) -> KeyTable:
    """The KEYS section: ``u64 n``, packed key byte lengths, the keys' UTF-8 joined."""
    r = Reader(data, start, end, "KEYS section")
    n = r.u64()
    if n > r.left() + 1:  # keys are distinct: all but at most one (the empty key) have a byte
        raise FormatError(f"KEYS section claims {n} keys, more than its bytes")
    lens = unpack_ints(r, n)
    total = int(lens.sum()) if n else 0
    # the empty key is allowed: the reference crate accepts it (files it wrote keep it)
    if n and (int(lens.min()) < 0 or int(lens.max()) > MAX_KEY_BYTES_ON_LOAD):
        raise FormatError("KEYS section: a key length is negative or over-long")
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
        first = np.frombuffer(blob, np.uint8)[starts[lens > 0]]
        if ((first & 0xC0) == 0x80).any():
            raise FormatError("KEYS section: a key starts inside a UTF-8 character")
    table = KeyTable(n)
    table.add_blob(blob, lens)
    if len(table) != n:
        raise FormatError("KEYS section: a key appears twice")
    return table


def _decode_vals(data: bytes, start: int, end: int) -> np.ndarray:
    """The VALS section: the value arena as a read-only SIGNAL view of ``data``."""
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
    """The ENTR section: ``u64 n`` then eight packed columns, every value range-checked."""
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


# ----------------------------------------------------------------------------- the capsule
def encode_v2(t, extensions: Optional[Dict[str, Any]] = None) -> bytes:
    """The capsule as ``.thermo`` v2 bytes: key table, value arena (every value once,
    shared by entries and records), entry columns and the full record history."""
    from ..core import capsule_parts
    with capsule_parts(t):
        return b"".join(encode_v2_parts(t, extensions))


def encode_v2_parts(t, extensions: Optional[Dict[str, Any]] = None) -> List[Any]:
    """:func:`encode_v2` as a list of byte-like parts, in order, without joining them: the
    value arena is a view of the capsule's memory (valid while the capsule is not changed;
    :func:`~thermogram.io.save` writes the parts under the capsule's lock)."""
    from ..core import capsule_parts
    with capsule_parts(t) as parts:
        s = parts.store
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
        rparts = encode_records_v2(s, parts.chain.records)
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


def decode_v2(data: bytes, *, clock=None, verify: bool = True):
    """A capsule from ``.thermo`` v2 bytes.

    Always checked: every section's xxh3 checksum, every length and count,
    every value's domain. With ``verify`` (default) also every record's SHA-256
    (and so every link) and the state digest; ``verify=False`` trusts them (the
    checksums already catch corruption) and loads faster."""
    from ..core import restore_capsule
    states: Dict[bytes, Any] = {b"VALS": None}
    secs = _sections(data, states)
    budget = _Budget(len(data))
    meta = _read_meta(data[slice(*secs[b"META"])])
    keys = _decode_keys(data, *secs[b"KEYS"], budget)
    arena = _decode_vals(data, *secs[b"VALS"])
    nsig = int(arena.shape[0])
    cols = _decode_entries_v2(data, *secs[b"ENTR"], budget, len(keys), nsig)
    recs, offs = decode_records_v2(data, *secs[b"RECS"], budget, keys, arena)
    if not recs:
        raise FormatError("RECS section has no genesis record")
    config = {name: meta[name] for name in ("rule", "thermal_config", "policy") if name in meta}
    try:
        t = restore_capsule(recs, keys=keys, arena=arena, arena_hash=states[b"VALS"], entry_columns=cols,
                            value_offsets=offs, config=config, counters=meta, custom=meta.get("custom"),
                            clock=clock, verify=verify)
    except FormatError:
        raise
    except (ThermogramError, KeyError, TypeError, ValueError, AttributeError, OverflowError) as e:
        raise FormatError(f"inconsistent .thermo v2 content: {e}") from None
    if t.head_hash != meta.get("head_hash"):
        raise FormatError("head hash in META does not match the records")
    if verify and t.state_digest() != meta.get("state_digest"):
        raise FormatError("state digest in META does not match the decoded state")
    if b"EXTN" in secs:
        ext = decode_value(data[slice(*secs[b"EXTN"])])
        if not isinstance(ext, dict):
            raise FormatError("EXTN section is not a mapping")
        t.extensions = ext
    return t
