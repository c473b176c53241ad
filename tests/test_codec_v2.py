""".thermo v2: packed integer columns, save/load identity, working on after a load,
hostile files (each section re-checksummed so the check under test is the one that
fires) and file size."""
import json
import struct
import tracemalloc
import zlib

import numpy as np
import pytest
import xxhash
from hypothesis import HealthCheck, example, given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from thermogram import (SIGNAL, ConsolidationPolicy, Delta, DeltaBatch, Signal, ThermalConfig, ThermalState,
                        Thermogram, ValidationError, PlasticityRule, signal_vector)
from thermogram.io import Reader, decode_v2, encode_v2, pack_ints, unpack_ints
from thermogram.io.packing import _Budget, _pack_args, _unpack_args
from thermogram.errors import FormatError

NOW = 10 ** 18
M64 = (1 << 64) - 1


def clock():
    return NOW


def capsule(name="v2", **kw):
    kw.setdefault("policy", ConsolidationPolicy.manual_only())
    return Thermogram(name, clock=clock, **kw)


# ============================================================================ file surgery
def split(data):
    """``[[tag, payload], ...]`` of a v2 file (trusting its framing)."""
    assert data[:4] == b"THRM" and struct.unpack_from("<H", data, 4)[0] == 2
    nsec = struct.unpack_from("<I", data, 8)[0]
    pos, out = 16, []
    for _ in range(nsec):
        tag = bytes(data[pos:pos + 4])
        flags, length, checksum = struct.unpack_from("<IQQ", data, pos + 4)
        assert flags == 0
        pos += 24
        payload = bytes(data[pos:pos + length])
        assert xxhash.xxh3_64_intdigest(payload) == checksum
        out.append([tag, payload])
        pos += length
    assert pos == len(data)
    return out


def join(sections):
    """A v2 file from ``[[tag, payload], ...]``, every checksum correct."""
    out = [b"THRM" + struct.pack("<HHII", 2, 0, len(sections), 0)]
    for tag, payload in sections:
        out.append(tag + struct.pack("<IQQ", 0, len(payload), xxhash.xxh3_64_intdigest(payload)) + payload)
    return b"".join(out)


def payload(data, tag):
    return dict((t, p) for t, p in split(data))[tag]


def with_section(data, tag, new):
    secs = split(data)
    assert any(t == tag for t, _ in secs)
    return join([[t, new if t == tag else p] for t, p in secs])


def with_meta(data, **kw):
    meta = json.loads(payload(data, b"META"))
    meta.update(kw)
    return with_section(data, b"META", json.dumps(meta).encode())


def u64(v):
    return struct.pack("<Q", v & M64)


def lp(b):
    return u64(len(b)) + b


def const(v):
    """Packed column, mode 0."""
    return b"\x00" + u64(v)


def col64(values):
    """Packed column, mode 2 with base 0 and 8-byte offsets: a valid, if wasteful, encoding."""
    return b"\x02" + u64(0) + b"\x08" + b"".join(u64(int(v)) for v in values)


def read_keys(data):
    r = Reader(payload(data, b"KEYS"))
    n = r.u64()
    lens = unpack_ints(r, n).tolist()
    blob = r.take(r.left())
    out, pos = [], 0
    for n_ in lens:
        out.append(blob[pos:pos + n_])
        pos += n_
    return out


def keys_payload(keys):
    return u64(len(keys)) + col64([len(k) for k in keys]) + b"".join(keys)


def read_entries(data):
    r = Reader(payload(data, b"ENTR"))
    n = r.u64()
    cols = [unpack_ints(r, n, signed=(i != 4)).tolist() for i in range(8)]
    assert r.left() == 0
    return n, cols


def entries_payload(cols, n=None):
    n = len(cols[0]) if n is None else n
    return u64(n) + b"".join(c if isinstance(c, bytes) else col64(c) for c in cols)


def delta_record(h, did, dtype, kid, ts, nv, ref, source=b"", strength=(1, 255), obs=None, custom=None):
    """A delta record, written field by field from the format's description."""
    out = bytes([0]) + h + lp(did) + struct.pack("<BQqQ", dtype, kid & M64, ts, nv & M64)
    if ref[0] == 0:
        out += struct.pack("<BQ", 0, ref[1] & M64)
    elif ref[0] == 1:
        out += struct.pack("<BQ", 1, nv & M64) + ref[1]
    else:  # an unknown value reference kind
        out += bytes([ref[0]]) + u64(0)
    out += lp(source) + bytes([strength[0] & 0xFF, strength[1]])
    out += b"\x00" if obs is None else b"\x01" + u64(obs)
    out += b"\x00" if custom is None else b"\x01" + lp(custom)
    return out


def batch_record(h, bid, source, ts, n, types, kids, lens, ref, pol, mag, tss):
    cols = [c if isinstance(c, bytes) else col64(c) for c in (types, kids, lens)]
    tail = [c if isinstance(c, bytes) else col64(c) for c in (pol, mag, tss)]
    return (bytes([1]) + h + lp(bid) + lp(source) + struct.pack("<qQ", ts, n & M64) + b"".join(cols)
            + struct.pack("<BQ", 0, ref & M64) + b"".join(tail))


def op_record(h, op, ts, how, blob):
    return bytes([2]) + h + lp(op) + struct.pack("<q", ts) + bytes([how]) + lp(blob)


def record_bytes(t):
    """Each record's bytes in the RECS section (the section is u64 count + these, in order)."""
    from thermogram.io.records import _encode_record_v2
    return [b"".join(bytes(memoryview(p)) for p in _encode_record_v2(t._store, r)) for r in t.records()]


def recs_payload(parts, count=None):
    return u64(len(parts) if count is None else count) + b"".join(parts)


def kw_id(kw):
    return ",".join(f"{k}={v if not isinstance(v, bytes) else v.hex()}" for k, v in kw.items())[:60]


def must_reject(data, match=None, peak_limit=None):
    """FormatError (and nothing else) under both verify modes, without a large allocation."""
    limit = peak_limit if peak_limit is not None else 48 * len(data) + 4_000_000
    for verify in (True, False):
        tracemalloc.start()
        try:
            with pytest.raises(FormatError, match=match):
                Thermogram.from_bytes(data, verify=verify)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < limit, f"verify={verify}: peak {peak} bytes"


def same_capsule(u, t, keys=None):
    assert u.state_digest() == t.state_digest()
    assert u.head_hash == t.head_hash
    assert [r.hash for r in u.records()] == [r.hash for r in t.records()]
    assert [r.kind for r in u.records()] == [r.kind for r in t.records()]
    assert u.name == t.name and u.id == t.id and u.semantics == t.semantics
    assert u.rule == t.rule and u.thermal_config == t.thermal_config and u.policy == t.policy
    assert u.custom == t.custom and u.pending_count == t.pending_count
    assert u.created_at == t.created_at and u.last_consolidation == t.last_consolidation
    assert u.total_deltas == t.total_deltas and u.total_consolidations == t.total_consolidations
    assert sorted(u.keys()) == sorted(t.keys())
    for k in set(t.keys()) | set(keys or ()):
        a, b = t.read(k), u.read(k)
        assert (a is None) == (b is None), k
        if a is not None:
            assert a.tolist() == b.tolist(), k
    for lay in ThermalState:
        ex = [(e["key"], e["value"].tolist(), e["strength"], e["update_count"], e["updated_at"]) for e in t.entries(lay)]
        got = [(e["key"], e["value"].tolist(), e["strength"], e["update_count"], e["updated_at"]) for e in u.entries(lay)]
        assert sorted(got) == sorted(ex), lay


# ============================================================================ 1. packed integer columns
DTYPES = [np.int8, np.uint8, np.int32, np.int64, np.uint64]


def expected_encoding(col):
    """``(mode, width, size)`` the packed encoding must have, from the format's rules
    (independent of the encoder; width 0 where the mode has none)."""
    vals = [int(v) for v in col.tolist()]
    n = len(vals)
    if n == 0:
        return 0, 0, 9
    pats = [v & M64 for v in vals]
    diffs = {(b - a) & M64 for a, b in zip(pats, pats[1:])}
    if len(diffs) <= 1:
        return (0, 0, 9) if not diffs or diffs == {0} else (1, 0, 17)
    span = max(vals) - min(vals)
    width = next(w for w in (1, 2, 4, 8) if span < 1 << (8 * w))
    return 2, width, 10 + n * width


def roundtrip(col):
    parts = pack_ints(col)
    blob = b"".join(bytes(memoryview(p)) for p in parts)
    r = Reader(blob + b"tail")
    out = unpack_ints(r, col.shape[0], signed=col.dtype != np.uint64)
    assert r.left() == 4, "the decoder must consume exactly the encoded bytes"
    assert out.dtype == (np.uint64 if col.dtype == np.uint64 else np.int64)
    assert out.tolist() == col.tolist()
    return blob


def arith(dtype, start, step, n):
    vals = [(start + i * step) & M64 for i in range(n)]
    return np.array(vals, np.uint64).astype(dtype)  # wraps into the dtype as a C cast would


@st.composite
def int_columns(draw):
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    kind = draw(st.sampled_from(["random", "constant", "arith", "narrow"]))
    n = draw(st.integers(0, 70))
    info = np.iinfo(dtype)
    if kind == "random":
        col = draw(hnp.arrays(dtype, n))
    elif kind == "constant":
        col = np.full(n, draw(st.integers(info.min, info.max)), dtype)
    elif kind == "arith":
        col = arith(dtype, draw(st.integers(0, M64)), draw(st.integers(0, M64)), n)
    else:  # small spread around an arbitrary base: exercises every offset width
        base = draw(st.integers(info.min, info.max))
        spread = draw(st.sampled_from([1, 200, 60_000, 4_000_000_000, M64]))
        vals = draw(st.lists(st.integers(0, spread), min_size=n, max_size=n))
        col = np.array([min(max(base + v, info.min), info.max) for v in vals], dtype)
    if draw(st.booleans()) and n > 1:
        col = np.repeat(col, 2)[::2]  # a strided (non-contiguous) view with the same values
        assert not col.flags.c_contiguous
    return col


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(int_columns())
@example(np.zeros(0, np.int8))
@example(np.array([7], np.uint64))
@example(np.array([M64], np.uint64))
@example(np.array([-128, 127], np.int8))
@example(np.array([2 ** 63 - 1, -2 ** 63], np.int64))
@example(arith(np.uint64, M64 - 2, 1, 8))  # wraps past 2**64
@example(arith(np.int64, 10, -3, 9))  # negative step
@example(arith(np.uint64, 5, M64, 9))  # "negative" step on unsigned values, wrapping below 0
@example(arith(np.int64, 2 ** 63 - 2, 1, 5))  # through int64's overflow
@example(np.array([0, M64, 0], np.uint64))
@example(np.array([-2 ** 63, 2 ** 63 - 1, 0], np.int64))  # span 2**64 - 1: width 8
@example(np.array([0, 255, 3], np.uint8))
@example(np.array([0, 256, 3], np.int32))
@example(np.array([0, 65_536, 3], np.int64))
def test_property_pack_ints_roundtrip_and_mode(col):
    blob = roundtrip(col)
    mode, width, size = expected_encoding(col)
    assert (blob[0], len(blob)) == (mode, size)
    if mode == 2:
        assert blob[9] == width
        assert struct.unpack_from("<Q", blob, 1)[0] == min(col.tolist()) & M64  # the base is the minimum


@pytest.mark.parametrize("value,dtype", [(-5, np.int64), (M64, np.uint64), (200, np.uint8), (-1, np.int8)])
def test_pack_ints_broadcast_constant(value, dtype):
    col = np.broadcast_to(np.array(value, dtype), (1000,))
    assert col.strides == (0,)
    blob = roundtrip(col)
    assert len(blob) == 9 and blob[0] == 0


def test_pack_ints_modes_and_minimal_width():
    assert len(roundtrip(np.full(10_000, 3, np.int64))) == 9
    assert len(roundtrip(np.arange(10_000, dtype=np.int64) * 7 - 5)) == 17
    for width, hi in ((1, 255), (2, 256), (2, 65_535), (4, 65_536), (4, 2 ** 32 - 1), (8, 2 ** 32)):
        col = np.array([hi, 0, 1, hi], np.int64)  # not arithmetic
        blob = roundtrip(col)
        assert blob[0] == 2 and blob[9] == width and len(blob) == 10 + 4 * width
        # the base is the minimum, so the same spread far from zero needs the same width
        far = col - 2 ** 62
        assert roundtrip(far)[9] == width


def test_unpack_ints_rejects_bad_columns():
    for blob in (b"\x02" + u64(0) + b"\x03" + b"\x00" * 12,  # width 3
                 b"\x02" + u64(0) + b"\x00",  # width 0
                 b"\x07" + u64(0) + u64(0),  # mode 7
                 b"\x02" + u64(0) + b"\x08" + b"\x00" * 31,  # 4 rows of 8 bytes need 32
                 b"\x01" + u64(0),  # arithmetic without its step
                 b"\x00"):  # constant without its value
        with pytest.raises(FormatError):
            unpack_ints(Reader(blob), 4)


def test_budget_bounds_rows_by_file_size():
    b = _Budget(1000)
    b.take(65_536 + 32 * 1000 - 1, "x")
    b.take(1, "x")
    with pytest.raises(FormatError):
        b.take(1, "x")


def test_compressed_arguments_roundtrip():
    rng = np.random.default_rng(3)
    modes = set()
    for ab in (b"", b"x" * 127, b"ab" * 400, bytes(rng.integers(0, 4, 5000, dtype=np.uint8)),
               b"\x00" * 100_000, rng.bytes(3000)):
        parts = _pack_args(ab)
        blob = b"".join(parts)
        assert blob[0] in (0, 1)
        modes.add(blob[0])
        r = Reader(blob)
        assert _unpack_args(r) == ab and r.left() == 0
        if blob[0] == 1:  # compressed only when it pays, and never beyond the ratio a reader accepts
            assert 2 * (len(blob) - 9) <= len(ab) <= 16 * (len(blob) - 9)
    assert modes == {0, 1}


# ============================================================================ 2. save/load identity
def sv(*pairs):
    return signal_vector(list(pairs))


def build_pending_mix(consolidated):
    t = capsule("mix")
    keys = [f"k{i}" for i in range(8)]
    rng = np.random.default_rng(7)
    vals = np.empty((8, 5), SIGNAL)
    vals["polarity"] = rng.integers(-1, 2, (8, 5))
    vals["magnitude"] = rng.integers(0, 256, (8, 5))
    t.apply_batch(DeltaBatch.from_arrays(keys, vals, Signal.positive(180), "create", clock=clock, source="init"))
    t.consolidate()
    # pending: one batch with every delta type, then single deltas
    types = np.array([1, 3, 2, 0, 1, 3], np.uint8)
    bkeys = ["k0", "k1", "k2", "new-a", "k0", "new-a"]
    values = [sv((1, 1), (-1, 2)), sv((1, 9)), sv(), sv((0, 0), (1, 200)), sv((-1, 40)), sv((1, 3))]
    st_ = np.zeros(6, SIGNAL)
    st_["polarity"] = [1, -1, 1, 1, 1, 1]
    st_["magnitude"] = [10, 20, 255, 30, 40, 50]
    t.apply_batch(DeltaBatch.from_arrays(bkeys, values, st_, types, clock=clock, source="batch"))
    t.apply_delta(Delta.merge("k3", sv((1, 77)), "m", Signal.positive(33), clock=clock))
    t.apply_delta(Delta.delete("k4", clock=clock))
    t.apply_delta(Delta.create("empty", sv(), "e", clock=clock, observation_count=2 ** 64 - 1, custom=b"\x00c"))
    t.apply_delta(Delta.update("k5", sv((-1, 255)), "u", Signal.negative(12), clock=clock))
    t.write("k6", sv((1, 1)))
    t.delete("k7")
    if consolidated:
        t.consolidate()
    return t, keys + ["new-a", "empty"]


def build_layers():
    t = capsule("layers", thermal_config=ThermalConfig.fast_learner())
    t.insert_entry("hot-only", sv((1, 4)), Signal.positive(250), "hot", update_count=3)
    t.insert_entry("warm-one", sv((1, 5), (1, 6)), Signal.positive(90), "warm", update_count=7, updated_at=NOW - 5)
    t.insert_entry("cool-one", sv((-1, 5)), Signal.negative(60), "cool", update_count=2 ** 64 - 1)
    t.insert_entry("cold-one", sv(), Signal.positive(255), "cold", update_count=2 ** 40, updated_at=-7)
    t.insert_entry("multi", sv((1, 1)), Signal.positive(200), "hot")
    t.insert_entry("multi", sv((1, 2)), Signal.positive(120), "cold")
    for i in range(20):
        t.write(f"w{i}", sv((1, i)), Signal.positive(100 + i))
    t.consolidate()
    for _ in range(3):
        t.reinforce("w3", Signal.positive(200))
        t.apply_decay()
        t.run_thermal_transitions()
        t.consolidate()
    t.crystallize()
    t.weaken("w4", Signal.positive(5))
    t.configure(rule=PlasticityRule.conservative())
    t.write("after", sv((1, 1)))
    return t, ["hot-only", "warm-one", "cool-one", "cold-one", "multi"] + [f"w{i}" for i in range(20)]


def build_unicode():
    t = capsule("ünï ☃")
    keys = ["ключ", "鍵🔑", "tab\tnew\nline", "nul\x00byte", "a\U0010ffff", "\ue000", "é", "e\u0301", "x" * 300]
    t.apply_batch(DeltaBatch.from_arrays(keys, [sv((1, i)) for i in range(len(keys))], clock=clock))
    t.consolidate()
    t.apply_batch(DeltaBatch.from_arrays(["a\U0010ffff", "鍵🔑"], [sv((1, 99)), sv()], clock=clock))
    t.set_custom(b"\x00\xffcustom")
    t.write("ключ", sv((-1, 1)))
    return t, keys


def build_empty():
    return capsule("empty"), ["nothing"]


def build_custom_cleared():
    t = capsule("c")
    t.set_custom(b"abc")
    t.write("a", sv((1, 1)))
    t.consolidate()
    t.set_custom(None)
    return t, ["a"]


BUILDERS = {"pending": lambda: build_pending_mix(False), "consolidated": lambda: build_pending_mix(True),
            "layers": build_layers, "unicode": build_unicode, "empty": build_empty,
            "custom_cleared": build_custom_cleared}


@pytest.mark.parametrize("verify", [True, False])
@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_save_load_is_identity(name, verify):
    t, keys = BUILDERS[name]()
    data = t.to_bytes("v2")
    u = Thermogram.from_bytes(data, verify=verify, clock=clock)
    same_capsule(u, t, keys)
    assert u.to_bytes("v2") == data
    assert Thermogram.from_bytes(data, verify=not verify).to_bytes("v2") == data


def test_layers_capsule_really_spans_layers():
    t, _ = build_layers()
    u = Thermogram.from_bytes(t.to_bytes("v2"))
    counts = u.layer_counts()
    assert sum(1 for v in counts.values() if v) >= 3, counts
    assert u.entry("multi", "cold")["value"].tolist() == [(1, 2)]
    found = [e for lay in ThermalState for e in u.entries(lay) if e["key"] == "cool-one"]
    assert [e["update_count"] for e in found] == [2 ** 64 - 1]
    assert u.entry("cold-one", "cold")["updated_at"] == -7
    assert u.rule == PlasticityRule.conservative()


def test_lone_surrogate_keys_are_rejected_everywhere():
    with pytest.raises(ValidationError):
        capsule().write("a\ud800", sv())
    with pytest.raises(ValidationError, match="surrogate"):
        DeltaBatch.from_arrays(["ok", "a\ud800"], [sv(), sv()], clock=clock)
    with pytest.raises(ValidationError, match="surrogate"):
        DeltaBatch.from_arrays(["\udfff"], [sv()], clock=clock)


def test_unicode_keys_round_trip():
    t, _ = build_unicode()
    u = Thermogram.from_bytes(t.to_bytes("v2"))
    assert u.read("a\U0010ffff").tolist() == [(1, 99)]
    assert u.read("\ue000").tolist() == [(1, 5)]
    assert u.read("é").tolist() == [(1, 6)] and u.read("e\u0301").tolist() == [(1, 7)]


def test_lone_surrogate_source_roundtrips():
    t = capsule()
    t.write("a", sv((1, 1)), source="s\ud800")
    t.apply_batch(DeltaBatch.from_arrays(["b"], [sv((1, 2))], source="\udc00b", clock=clock))
    data = t.to_bytes("v2")
    for verify in (True, False):
        u = Thermogram.from_bytes(data, verify=verify)
        same_capsule(u, t)
        assert u.to_bytes("v2") == data


def test_extensions_roundtrip():
    t, keys = build_pending_mix(False)
    ext = {"snn": {"weights": np.arange(6, dtype=np.float32).reshape(2, 3), "tick": 7},
           "note": "ünï", "blob": b"\x00\x01", "nested": [1, -2, [3.5, None]]}
    data = encode_v2(t, extensions=ext)
    assert t.extensions == {}  # writing them does not attach them
    for verify in (True, False):
        u = decode_v2(data, verify=verify)
        same_capsule(u, t, keys)
        assert u.extensions["snn"]["tick"] == 7 and u.extensions["note"] == "ünï"
        assert u.extensions["blob"] == b"\x00\x01"
        assert np.array_equal(u.extensions["snn"]["weights"], ext["snn"]["weights"])
        assert u.extensions["snn"]["weights"].dtype == np.float32
        assert encode_v2(u) == data
    assert b"EXTN" not in [tag for tag, _ in split(t.to_bytes("v2"))]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["w", "b", "d", "m", "c", "e"]), st.integers(0, 5),
                          st.integers(0, 255)), max_size=20))
def test_property_roundtrip_after_random_operations(ops):
    t = capsule()
    for i, (op, k, m) in enumerate(ops):
        key = f"k{k}"
        if op == "w":
            t.write(key, sv(*[(1, m)] * (k % 3)), Signal.positive(m))
        elif op == "b":
            t.apply_batch(DeltaBatch.from_arrays([key, f"k{(k + 1) % 6}", key], [sv((1, m)), sv(), sv((-1, m))],
                                                 clock=clock))
        elif op == "d" and t.read(key) is not None:
            t.delete(key)
        elif op == "m":
            t.apply_delta(Delta.merge(key, sv((-1, m)), "", Signal.positive(m), clock=clock))
        elif op == "c":
            t.consolidate()
        elif op == "e":
            t.insert_entry(key, sv((1, m)), Signal.positive(m), k % 4)
    data = t.to_bytes("v2")
    for verify in (True, False):
        u = Thermogram.from_bytes(data, verify=verify)
        same_capsule(u, t, [f"k{i}" for i in range(6)])
        assert u.to_bytes("v2") == data


# ============================================================================ 3. working on after a load
def more_changes(c):
    """The same changes, with fixed ids, for any capsule built by build_pending_mix."""
    c.apply_batch(DeltaBatch.from_arrays(["k0", "fresh", "k1", "k3"], [sv((1, 1)), sv((-1, 2), (1, 3)), sv((1, 4)), sv()],
                                         Signal.positive(99), np.array([1, 0, 3, 2], np.uint8), clock=clock, id="b-after"))
    c.apply_delta(Delta.update("k5", sv((1, 250)), "s", Signal.positive(1), id="d-after", timestamp=NOW))
    c.consolidate()
    c.apply_batch(DeltaBatch.from_arrays(["fresh", "k6"], [sv((1, 8)) for _ in range(2)], clock=clock, id="b-after-2"))
    c.apply_delta(Delta.merge("fresh", sv((1, 1)), "s", Signal.positive(7), id="d-after-2", timestamp=NOW))


@pytest.mark.parametrize("verify", [True, False])
@pytest.mark.parametrize("consolidated", [False, True])
def test_changes_after_load(consolidated, verify):
    t, keys = build_pending_mix(consolidated)
    data = t.to_bytes("v2")
    u = Thermogram.from_bytes(data, verify=verify, clock=clock)
    assert not u._store.vals.flags.writeable  # the arena starts as a view of the file's bytes
    held = {k: u.read(k) for k in keys}
    seen = {k: None if v is None else v.tolist() for k, v in held.items()}
    more_changes(u)
    more_changes(t)
    for k, v in held.items():  # what earlier reads returned is unchanged
        assert (v is None and seen[k] is None) or v.tolist() == seen[k]
    same_capsule(u, t, keys + ["fresh"])
    assert u.verify()
    assert Thermogram.replay(u.records()).state_digest() == u.state_digest()
    u.consolidate()
    t.consolidate()
    same_capsule(u, t, keys + ["fresh"])
    again = u.to_bytes("v2")
    w = Thermogram.from_bytes(again)
    same_capsule(w, t, keys + ["fresh"])
    assert w.to_bytes("v2") == again


def test_loaded_capsule_does_not_share_the_callers_buffer():
    t, keys = build_pending_mix(False)
    buf = bytearray(t.to_bytes("v2"))
    u = Thermogram.from_bytes(buf)
    before = {k: (None if u.read(k) is None else u.read(k).tolist()) for k in keys}
    buf[:] = bytes(len(buf))
    assert u.state_digest() == t.state_digest()
    assert {k: (None if u.read(k) is None else u.read(k).tolist()) for k in keys} == before
    u.write("k0", sv((1, 1)))
    u.consolidate()
    assert u.verify()


def test_values_read_after_load_are_read_only():
    t, _ = build_pending_mix(True)
    u = Thermogram.from_bytes(t.to_bytes("v2"))
    v = u.read("k0")
    with pytest.raises(ValueError):
        v["magnitude"][0] = 1
    assert u.state_digest() == t.state_digest()


# ============================================================================ 4. hostile files
DELTA_VALUE = sv((1, 201), (-1, 202), (1, 203))


def base():
    """Genesis, a 3-row batch, a consolidation, then one pending delta (the last record)."""
    t = capsule("base")
    t.apply_batch(DeltaBatch.from_arrays(["k0", "k1", "k2"], [sv((1, 5), (0, 0)), sv((-1, 3)), sv()],
                                         Signal.positive(200), "create", source="src", clock=clock, id="batch-1"))
    t.consolidate()
    t.apply_delta(Delta.update("k1", DELTA_VALUE, "src", Signal.positive(77), id="delta-1", timestamp=NOW))
    return t


BASE = base()
BASE_DATA = BASE.to_bytes("v2")
BASE_RECS = record_bytes(BASE)
assert recs_payload(BASE_RECS) == payload(BASE_DATA, b"RECS")
assert [r.kind for r in BASE.records()] == ["op", "batch", "op", "delta"]
KID = {k.decode(): i for i, k in enumerate(read_keys(BASE_DATA))}
VALUE_OFF = payload(BASE_DATA, b"VALS").index(DELTA_VALUE.tobytes()) // 2


def loads_like_base(data):
    for verify in (True, False):
        u = Thermogram.from_bytes(data, verify=verify)
        assert u.state_digest() == BASE.state_digest() and u.head_hash == BASE.head_hash


def with_records(parts, count=None, data=BASE_DATA):
    return with_section(data, b"RECS", recs_payload(parts, count))


def test_surgery_helpers_reproduce_the_file():
    assert join(split(BASE_DATA)) == BASE_DATA
    loads_like_base(BASE_DATA)
    assert sorted(KID) == ["k0", "k1", "k2"]


# ---------------------------------------------------------------- VALS
def test_vals_odd_length():
    must_reject(with_section(BASE_DATA, b"VALS", payload(BASE_DATA, b"VALS") + b"\x00"))


@pytest.mark.parametrize("byte", [2, 3, 127, 128, 254])
def test_vals_bad_polarity(byte):
    vals = bytearray(payload(BASE_DATA, b"VALS"))
    assert len(vals) >= 4
    for i in (0, len(vals) - 2):  # first and last signal
        v = bytearray(vals)
        v[i] = byte
        must_reject(with_section(BASE_DATA, b"VALS", bytes(v)))


def test_vals_valid_polarities_are_accepted():
    # a signal appended after everything that is referenced changes nothing
    for pol in (0, 1, 255):
        data = with_section(BASE_DATA, b"VALS", payload(BASE_DATA, b"VALS") + bytes([pol, 9]))
        loads_like_base(data)


# ---------------------------------------------------------------- KEYS
def test_keys_control_reencoding_loads():
    loads_like_base(with_section(BASE_DATA, b"KEYS", keys_payload(read_keys(BASE_DATA))))


@pytest.mark.parametrize("keys", [
    [b"k0", b"k1", b"k1"],  # duplicate (fits 3 ids)
    [b"k0", b"k1", b"k2", b"k0"],  # duplicate of a key in use, in an id nothing uses
    [b"k0", b"k1", b"\xff\xfe"],  # invalid UTF-8
    [b"k0", b"k1", b"\xc3"],  # truncated character
    [b"k0", b"k1", b"\xed\xa0"],  # truncated surrogate
    [b"k0", b"k1", b"\xc0\xaf"],  # overlong encoding
])
def test_keys_bad_content(keys):
    must_reject(with_section(BASE_DATA, b"KEYS", keys_payload(keys)))


def test_keys_starting_inside_a_character():
    # "é" is c3 a9: the blob as a whole is valid UTF-8, but a key starts at a9
    must_reject(with_section(BASE_DATA, b"KEYS", u64(4) + col64([2, 2, 1, 1]) + b"k0k1\xc3\xa9"))
    # a 4-byte character split 3 + 1
    must_reject(with_section(BASE_DATA, b"KEYS", u64(4) + col64([2, 2, 3, 1]) + b"k0k1" + "🔑".encode()))


def test_keys_zero_length_key():
    # one empty key is a valid key (the reference crate accepts it; tests/test_interop.py);
    # two are a repeated key
    must_reject(with_section(BASE_DATA, b"KEYS", u64(5) + col64([2, 2, 2, 0, 0]) + b"k0k1k2"))
    # an empty key that shifts the key ids is a consistent forgery: the state digest catches it
    shifted = with_section(BASE_DATA, b"KEYS", u64(4) + col64([0, 2, 2, 2]) + b"k0k1k2")
    with pytest.raises(FormatError):
        Thermogram.from_bytes(shifted, verify=True)


def test_keys_lengths_disagree_with_bytes():
    for lens, blob in (([2, 2, 2], b"k0k1k2x"), ([2, 2, 2], b"k0k1k"), ([2, 2, 3], b"k0k1k2"),
                       ([2, 2, 2 - 2 ** 64 + 2 ** 63], b"k0k1k2")):
        must_reject(with_section(BASE_DATA, b"KEYS", u64(3) + col64(lens) + blob))
    must_reject(with_section(BASE_DATA, b"KEYS", u64(10 ** 12) + const(1) + b"k0k1k2"))
    must_reject(with_section(BASE_DATA, b"KEYS", u64(2) + col64([2, 2]) + b"k0k1"))  # a key id the file uses is gone


# ---------------------------------------------------------------- ENTR
def entr_variant(**changes):
    n, cols = read_entries(BASE_DATA)
    names = ["layer", "kid", "pol", "mag", "count", "ts", "voff", "vlen"]
    cols = [list(c) for c in cols]
    for name, (row, value) in changes.items():
        cols[names.index(name)][row] = value
    return with_section(BASE_DATA, b"ENTR", entries_payload(cols))


def test_entr_control_reencoding_loads():
    loads_like_base(entr_variant())


def test_entr_claims_a_trillion_rows():
    consts = b"".join(const(v) for v in (0, 0, 1, 200, 1, NOW, 0, 0))
    must_reject(with_section(BASE_DATA, b"ENTR", u64(10 ** 12) + consts), peak_limit=2_000_000)
    must_reject(with_section(BASE_DATA, b"ENTR", u64(3_000_000) + consts), peak_limit=2_000_000)


@pytest.mark.parametrize("change", [
    {"kid": (0, 3)}, {"kid": (1, -1)}, {"kid": (0, 2 ** 31)}, {"kid": (0, 2 ** 32)},
    {"layer": (0, 4)}, {"layer": (2, 255)}, {"layer": (0, -1)},
    {"pol": (0, 2)}, {"pol": (0, -2)}, {"mag": (0, 256)}, {"mag": (0, -1)},
    {"voff": (0, -1)}, {"vlen": (0, -1)}, {"vlen": (2, 2 ** 31)},
    {"vlen": (0, 10 ** 6)}, {"voff": (0, 10 ** 6)},
], ids=kw_id)
def test_entr_bad_values(change):
    must_reject(entr_variant(**change))


def test_entr_value_beyond_vals_by_one():
    nsig = len(payload(BASE_DATA, b"VALS")) // 2
    n, cols = read_entries(BASE_DATA)
    row = 0
    assert cols[7][row] > 0
    must_reject(entr_variant(voff=(row, nsig - cols[7][row] + 1)))
    empty = cols[7].index(0)  # an empty value at the very end of VALS is fine
    loads_like_base(entr_variant(voff=(empty, nsig)))


def test_entr_value_offset_wrapping_past_int64():
    # voff + vlen overflows int64 to a negative number: the bound check must still fire
    n, cols = read_entries(BASE_DATA)
    assert cols[7][0] >= 1
    must_reject(entr_variant(voff=(0, 2 ** 63 - 1)))


def test_entr_repeated_key_layer_pair():
    n, cols = read_entries(BASE_DATA)
    assert cols[0][0] == cols[0][1]
    must_reject(entr_variant(kid=(1, cols[1][0])))
    # the same key in two layers is fine
    Thermogram.from_bytes(entr_variant(kid=(1, cols[1][0]), layer=(1, 3)), verify=False)


def test_entr_more_rows_than_keys_times_layers():
    n, cols = read_entries(BASE_DATA)
    rows = 13  # 3 keys x 4 layers = 12
    big = [[c[0]] * rows for c in cols]
    must_reject(with_section(BASE_DATA, b"ENTR", entries_payload(big)))


def test_entr_bad_packed_columns():
    n, cols = read_entries(BASE_DATA)
    tail = b"".join(col64(c) for c in cols[1:])
    for first in (b"\x02" + u64(0) + b"\x03" + b"\x00" * (3 * n),  # width 3
                  b"\x07" + u64(0) + u64(0),  # mode 7
                  b"\x02" + u64(0) + b"\x01" + b"\x00" * (n - 1)):  # data one byte short
        must_reject(with_section(BASE_DATA, b"ENTR", u64(n) + first + tail))
    must_reject(with_section(BASE_DATA, b"ENTR", entries_payload(cols) + b"\x00"))  # trailing byte


# ---------------------------------------------------------------- RECS: the pending delta record
def delta_variant(**kw):
    f = dict(h=bytes.fromhex(BASE.records()[3].hash), did=b"delta-1", dtype=1, kid=KID["k1"], ts=NOW, nv=3,
             ref=(0, VALUE_OFF), source=b"src", strength=(1, 77), obs=None, custom=None)
    f.update(kw)
    return with_records(BASE_RECS[:3] + [delta_record(**f)])


def test_delta_record_layout_matches_the_writer():
    assert delta_variant() == BASE_DATA
    loads_like_base(delta_variant(ref=(1, DELTA_VALUE.tobytes())))  # an inline value means the same


@pytest.mark.parametrize("kw", [
    {"kid": 3}, {"kid": 2 ** 32}, {"kid": M64},
    {"dtype": 4}, {"dtype": 255},
    {"ref": (0, 10 ** 9)}, {"ref": (0, M64)}, {"ref": (0, M64 - 1)}, {"nv": M64},
    {"ref": (2, b"")},
    {"strength": (2, 1)}, {"strength": (128, 1)},
    {"ref": (1, bytes([2, 1]) + DELTA_VALUE.tobytes()[2:])},  # inline value with a bad polarity
    {"did": b"\xff"}, {"source": b"\xc3"},
], ids=kw_id)
def test_delta_record_hostile_fields(kw):
    must_reject(delta_variant(**kw))


def test_delta_record_value_offset_past_vals_by_one():
    nsig = len(payload(BASE_DATA, b"VALS")) // 2
    must_reject(delta_variant(ref=(0, nsig - 2)))


def test_delta_record_malformed_flags():
    good = BASE_RECS[3]
    assert good[-2:] == b"\x00\x00"  # no observation count, no custom bytes
    for tail in (b"\x02", b"\x00\x02", b"\x00\x01" + u64(10 ** 9)):  # observation flag, custom flag, custom length
        rec = good[:-2] + tail
        must_reject(with_records(BASE_RECS[:3] + [rec]))


def test_recs_unknown_kind_and_framing():
    for kind in (3, 4, 255):
        must_reject(with_records(BASE_RECS[:3] + [bytes([kind]) + BASE_RECS[3][1:]]))
    must_reject(with_records(BASE_RECS, count=5))  # one record missing
    must_reject(with_records(BASE_RECS, count=3))  # a whole record of trailing bytes
    must_reject(with_records(BASE_RECS[:3] + [BASE_RECS[3] + b"\x00"]))  # one trailing byte
    must_reject(with_records(BASE_RECS[:3] + [BASE_RECS[3][:-1]]))  # one byte short
    must_reject(with_records(BASE_RECS, count=10 ** 12), peak_limit=2_000_000)
    must_reject(with_records([], count=0))  # no genesis


# ---------------------------------------------------------------- RECS: the batch record
def batch_variant(**kw):
    rec = BASE.records()[1]
    f = dict(h=bytes.fromhex(rec.hash), bid=b"batch-1", source=b"src", ts=NOW, n=3,
             types=[0, 0, 0], kids=[KID["k0"], KID["k1"], KID["k2"]], lens=[2, 1, 0],
             ref=payload(BASE_DATA, b"VALS").index(sv((1, 5), (0, 0)).tobytes()) // 2,
             pol=[1, 1, 1], mag=[200, 200, 200], tss=[NOW] * 3)
    f.update(kw)
    return with_records([BASE_RECS[0], batch_record(**f)] + BASE_RECS[2:])


def test_batch_record_control_loads():
    loads_like_base(batch_variant())


@pytest.mark.parametrize("n", [10 ** 12, 3_000_000, 2 ** 63, M64])
def test_batch_record_claims_many_rows(n):
    data = batch_variant(n=n, types=const(1), kids=const(0), lens=const(0), pol=const(1), mag=const(1), tss=const(NOW))
    must_reject(data, peak_limit=2_000_000)


@pytest.mark.parametrize("kw", [
    {"kids": [0, 1, 3]}, {"kids": [0, 1, -1]},
    {"types": [0, 0, 4]}, {"types": [0, 0, 256]}, {"types": [0, 0, 257]}, {"types": [0, 0, -1]},
    {"lens": [2, 1, -1]}, {"lens": [2, 1, 10 ** 6]},
    {"pol": [1, 1, 2]}, {"pol": [1, 1, -2]}, {"mag": [200, 200, 256]}, {"mag": [200, 200, -1]},
    {"ref": 10 ** 6}, {"ref": M64},
    {"n": 4}, {"n": 2},
], ids=kw_id)
def test_batch_record_hostile_fields(kw):
    must_reject(batch_variant(**kw))


def test_batch_record_value_lengths_wrapping_past_2_to_64():
    # each length is a valid int64 but their sum wraps to the 3 signals the batch really has
    lens = [2 ** 63 - 1, 2 ** 63 - 1, 5]
    assert sum(lens) & M64 == 3
    must_reject(batch_variant(lens=lens))


# ---------------------------------------------------------------- RECS: operation arguments
def op_variant(how, blob):
    rec = BASE.records()[2]
    assert rec.op == "consolidate"
    return with_records(BASE_RECS[:2] + [op_record(bytes.fromhex(rec.hash), b"consolidate", rec.timestamp, how, blob)]
                        + BASE_RECS[3:])


def test_op_record_control_loads():
    ab = BASE.records()[2].args_bytes()
    loads_like_base(op_variant(0, ab))
    loads_like_base(op_variant(1, zlib.compress(ab)))  # compressed arguments are read too


def test_op_record_zlib_bomb():
    bomb = zlib.compress(b"\x00" * 10 ** 7, 9)
    assert len(bomb) * 16 < 10 ** 7
    must_reject(op_variant(1, bomb), peak_limit=48 * len(bomb) + 2_000_000)


def test_op_record_bad_compressed_arguments():
    ab = BASE.records()[2].args_bytes()
    good = zlib.compress(ab)
    for blob in (b"not zlib at all", good[:-3], good + b"junk", b""):
        must_reject(op_variant(1, blob))
    must_reject(op_variant(2, ab))  # unknown argument encoding
    must_reject(op_variant(0, ab[:-1]))  # truncated canonical value
    must_reject(op_variant(0, b""))


# ---------------------------------------------------------------- META and framing
@pytest.mark.parametrize("kw", [
    {"policy": [1]}, {"rule": [1]}, {"thermal_config": "x"}, {"policy": {"triggers": 5}},
    {"custom": 5}, {"custom": "zz"}, {"created_at": "abc"}, {"total_deltas": None},
    {"last_consolidation": 2 ** 70}, {"total_deltas": -1},
    {"head_hash": "0" * 64},
], ids=kw_id)
def test_meta_hostile_fields(kw):
    must_reject(with_meta(BASE_DATA, **kw))


def test_meta_not_a_mapping():
    for meta in (b"[]", b"nul", b"\xff", b'"x"', b""):
        must_reject(with_section(BASE_DATA, b"META", meta))


def test_framing():
    secs = split(BASE_DATA)
    must_reject(join(secs[:-1]))  # RECS missing
    must_reject(join(secs + [secs[0]]))  # META twice
    must_reject(BASE_DATA + b"\x00")
    must_reject(BASE_DATA[:16] + BASE_DATA[16:20] + b"\x01" + BASE_DATA[21:])  # section flags
    for hdr_off, val in ((6, 1), (12, 1), (8, 65)):  # header flags, reserved, section count
        b = bytearray(BASE_DATA)
        b[hdr_off] = val
        must_reject(bytes(b))
    b = bytearray(BASE_DATA)
    b[40] ^= 1  # payload byte of META with a stale checksum
    must_reject(bytes(b))


def test_unknown_sections_are_tolerated_and_extn_checked():
    secs = split(BASE_DATA)
    loads_like_base(join(secs + [[b"ZZZZ", b"future"]]))
    must_reject(join(secs + [[b"EXTN", b"\xff"]]))
    from thermogram.canonical import encode_value
    must_reject(join(secs + [[b"EXTN", encode_value([1, 2])]]))


# ---------------------------------------------------------------- bit flips
def small_capsule():
    t = capsule("f")
    t.apply_batch(DeltaBatch.from_arrays(["a", "b"], [sv((1, 1), (-1, 2)), sv()], Signal.positive(9), "create",
                                         clock=clock, id="b1"))
    t.consolidate()
    t.apply_delta(Delta.update("a", sv((1, 3)), "", Signal.positive(5), id="d1", timestamp=NOW))
    return t


def test_every_bit_flip_is_rejected_or_harmless():
    t = small_capsule()
    data = t.to_bytes("v2")
    assert 900 <= len(data) <= 1600, len(data)
    digest, head = t.state_digest(), t.head_hash
    secs = split(data)

    def check(blob, verify, strict):
        try:
            u = Thermogram.from_bytes(blob, verify=verify)
        except FormatError:
            return
        digest_now = u.state_digest()  # must not raise either
        u.to_bytes("v2")
        if strict:
            assert digest_now == digest and u.head_hash == head

    for i in range(len(data)):  # raw flips: the checksums see them all
        for bit in range(8):
            b = bytearray(data)
            b[i] ^= 1 << bit
            check(bytes(b), True, True)
            check(bytes(b), False, True)
    for si, (tag, p) in enumerate(secs):  # flips behind a correct checksum
        for i in range(len(p)):
            for bit in range(8):
                q = bytearray(p)
                q[i] ^= 1 << bit
                blob = join([[tg, bytes(q) if j == si else pp] for j, (tg, pp) in enumerate(secs)])
                check(blob, True, True)
                check(blob, False, False)


# ============================================================================ 5. size
def test_file_size_per_entry():
    n = 1000
    rng = np.random.default_rng(11)
    vals = np.empty((n, 64), SIGNAL)
    vals["polarity"] = rng.integers(-1, 2, (n, 64))
    vals["magnitude"] = rng.integers(0, 256, (n, 64))
    t = capsule("size")
    t.apply_batch(DeltaBatch.from_arrays([f"key-{i:05d}" for i in range(n)], vals, clock=clock))
    t.consolidate()
    v2, v1 = t.to_bytes("v2"), t.to_bytes("v1")
    assert len(v2) / n <= 159.9, len(v2) / n
    assert len(v2) < len(v1)
    u = Thermogram.from_bytes(v2)
    assert u.state_digest() == t.state_digest()
    assert u.read("key-00500").tolist() == vals[500].tolist()
