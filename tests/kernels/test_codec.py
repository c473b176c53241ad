"""``kernels/codec.py`` against :mod:`naive.codec`."""
import numpy as np
from hypothesis import given, strategies as st

from naive import codec as nc
from thermogram.kernels import codec as kcodec

_INT_DTYPES = [np.int8, np.uint8, np.int32, np.int64, np.uint64]

v1_entries = st.lists(st.tuples(
    st.binary(max_size=6),                                                        # key bytes
    st.lists(st.tuples(st.sampled_from([0, 1, 255]), st.integers(0, 255)), max_size=4),  # value
    st.sampled_from([-1, 0, 1]), st.integers(0, 255),                             # strength
    st.integers(-(2**63), 2**63 - 1), st.integers(0, 10**9 - 1), st.integers(0, 2**32 - 1)),
    max_size=5)


def _scan(buf: bytes, pos: int, count: int):
    n = count
    ko, kl, vo, vl = (np.zeros(n, np.int64) for _ in range(4))
    pol, mag = np.zeros(n, np.int8), np.zeros(n, np.uint8)
    secs, nanos, cnt = np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64)
    arr = np.frombuffer(buf, np.uint8) if buf else np.zeros(0, np.uint8)
    end = int(kcodec.scan_v1_entries(arr, pos, n, ko, kl, vo, vl, pol, mag, secs, nanos, cnt))
    rows = list(zip(*(a.tolist() for a in (ko, kl, vo, vl, pol, mag, secs, nanos, cnt))))
    return end, rows


@given(v1_entries, st.binary(max_size=3))
def test_write_and_scan_v1_entries_match_naive(entries, prefix):
    entries = [(k, bytes(b for s in v for b in s), p, m, s, ns, c) for k, v, p, m, s, ns, c in entries]
    want = nc.write_v1_entries(entries)
    keys = b"".join(e[0] for e in entries)
    vals = b"".join(e[1] for e in entries)
    klen = np.array([len(e[0]) for e in entries], np.int64)
    vlen = np.array([len(e[1]) // 2 for e in entries], np.int64)
    koff = np.concatenate(([0], np.cumsum(klen)[:-1])).astype(np.int64)
    voff = np.concatenate(([0], np.cumsum(vlen)[:-1])).astype(np.int64)
    out = np.zeros(len(prefix) + len(want), np.uint8)
    end = kcodec.write_v1_entries(out, len(prefix), np.frombuffer(keys or b"\x00", np.uint8), koff, klen,
                                  np.frombuffer(vals or b"\x00", np.uint8), voff, vlen,
                                  np.array([e[2] for e in entries], np.int8),
                                  np.array([e[3] for e in entries], np.uint8),
                                  np.array([e[4] for e in entries], np.int64),
                                  np.array([e[5] for e in entries], np.int64),
                                  np.array([e[6] for e in entries], np.int64))
    assert end == len(out) and out[len(prefix):].tobytes() == want
    buf = prefix + want
    assert _scan(buf, len(prefix), len(entries)) == nc.scan_v1_entries(buf, len(prefix), len(entries))


@given(st.binary(max_size=60), st.integers(0, 4))
def test_scan_v1_entries_on_any_bytes_matches_naive(buf, count):
    end, rows = _scan(buf, 0, count)
    want_end, want_rows = nc.scan_v1_entries(buf, 0, count)
    assert end == want_end
    if end >= 0:
        assert rows == want_rows


@given(st.sampled_from(_INT_DTYPES), st.data())
def test_plan_int_column_matches_naive(dtype, data):
    info = np.iinfo(dtype)
    kind = data.draw(st.sampled_from(["random", "constant", "arithmetic"]))
    n = data.draw(st.integers(0, 12))
    if kind == "random":
        vals = data.draw(st.lists(st.integers(int(info.min), int(info.max)), min_size=n, max_size=n))
    elif kind == "constant":
        vals = [data.draw(st.integers(int(info.min), int(info.max)))] * n
    else:
        start = data.draw(st.integers(int(info.min), int(info.max)))
        step = data.draw(st.integers(-3, 3))
        vals = [start + i * step for i in range(n)]
        vals = [v for v in vals if info.min <= v <= info.max]
    col = np.array(vals, dtype=dtype)
    with np.errstate(over="ignore"):  # int64 differences wrap by design (seen without the JIT)
        lo, hi, arith, step = kcodec.plan_int_column(col)
    want = nc.plan_int_column([int(v) for v in col])
    assert (int(lo), int(hi), bool(arith), int(step)) == want


@given(st.binary(max_size=40))
def test_check_polarity_matches_naive(raw):
    raw = raw[: len(raw) // 2 * 2]
    arr = np.frombuffer(raw, np.uint8) if raw else np.zeros(0, np.uint8)
    assert kcodec.check_polarity(arr) == nc.first_bad_polarity(raw)


@given(st.lists(st.tuples(st.integers(0, 5), st.integers(-1, 6)), max_size=20))
def test_load_slots_matches_naive(rows):
    layer = np.array([r[0] for r in rows], np.int64)
    kid = np.array([r[1] for r in rows], np.int64)
    slot = np.full((6, 4), -1, np.int32)
    bad = kcodec.load_slots(layer, kid, 6, slot)
    want_slots, want_bad = nc.load_slots(layer.tolist(), kid.tolist(), 6)
    assert bad == want_bad
    got = {(k, lay): int(slot[k, lay]) for k in range(6) for lay in range(4) if slot[k, lay] >= 0}
    assert got == want_slots


@given(st.lists(st.binary(min_size=1, max_size=5), max_size=15), st.data())
def test_gather_values_matches_naive(keys, data):
    blob = np.frombuffer(b"".join(keys), np.uint8) if keys else np.zeros(0, np.uint8)
    off = np.zeros(len(keys) + 1, np.int64)
    np.cumsum([len(k) for k in keys], out=off[1:])
    ids = np.array(data.draw(st.lists(st.integers(0, max(len(keys) - 1, 0)), max_size=10)) if keys else [],
                   dtype=np.int64)
    out = np.empty(int(sum(len(keys[i]) for i in ids)), np.uint8)
    assert kcodec.gather_values(off[:-1], np.diff(off), ids, blob, out) == len(out)
    assert out.tolist() == nc.gather_values(off[:-1].tolist(), np.diff(off).tolist(), ids.tolist(), blob.tolist())
