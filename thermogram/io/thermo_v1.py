"""The reference crate's ``.thermo`` v1 format and its delta hashing rule.

v1 is CRC32 over everything after a 16-byte header; strings are u16-prefixed UTF-8;
entries come in the crate's HashMap order. It is read fully — pending deltas
included, their SHA-256 chain checked under the reference's own hashing rule
(:func:`reference_delta_hash`) — and written on request so the Rust crate can read
our capsules. docs/format.md describes the layout.
"""
from __future__ import annotations

import hashlib
import struct
import zlib
from typing import List, Optional, Tuple

import numpy as np

from ..consolidation import ConsolidationPolicy, ConsolidationTrigger
from ..delta import Delta, DeltaType
from ..errors import FormatError, ValidationError
from ..kernels import codec as _kc
from ..plasticity import PlasticityRule, UpdatePolicy
from ..signal import SIGNAL, Signal
from ..thermal import ThermalConfig
from .reader import MAGIC, Reader, _signal, _signals_from_bytes, _text
from .timetext import NS, _ns, rfc3339

__all__ = ["encode_v1", "decode_v1", "reference_delta_hash"]


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
    return _assemble_import(name, tid, rule, cfg, policy, semantics, clock, created, last,
                            total_deltas, total_cons, custom, cols, [d for d, _, _ in deltas], "thermo-v1")


def _assemble_import(name, tid, rule, cfg, policy, semantics, clock, created, last,
                     total_deltas, total_cons, custom, cols, pending: List[Delta], source: str):
    """A capsule from an imported file (v1 or legacy JSON): a genesis record, one ``import``
    record holding every entry (columns in ``cols``), then the pending deltas."""
    from ..core import commit_delta, imported_capsule, record_import
    t = imported_capsule(name, tid, rule, cfg, policy, semantics, created, clock)
    values = np.concatenate(cols["values"]) if cols["values"] else np.zeros(0, SIGNAL)
    cat = lambda k, dt: (np.concatenate(cols[k]).astype(dt) if cols[k] else np.zeros(0, dt))  # noqa: E731
    entries = {"keys": cols["keys"], "layer": cat("layer", np.uint8), "pol": cat("pol", np.int8),
               "mag": cat("mag", np.uint8), "count": cat("count", np.uint64), "ts": cat("ts", np.int64),
               "values": values, "lengths": cat("lengths", np.int64)}
    meta = {"last_consolidation": last, "total_deltas": total_deltas, "total_consolidations": total_cons,
            "custom": custom, "pending": len(pending), "source": source}
    # timestamped with the file's own last consolidation, so loading is deterministic
    record_import(t, entries, meta, int(last))
    for d in pending:
        commit_delta(t, d)
    return t


def _pending_deltas(t) -> List[Delta]:
    """Every delta recorded since the last consolidation, batches expanded, in order."""
    from ..core import pending_since_consolidation
    recs = t.chain.records
    i = pending_since_consolidation(recs)
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

    from ..core import capsule_parts
    with capsule_parts(t) as parts:
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
        s = parts.store
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

