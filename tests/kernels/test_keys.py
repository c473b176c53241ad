"""``kernels/keys.py`` against :mod:`naive.keys` (``zlib.crc32``, dicts, ``sorted``)."""
import numpy as np
from hypothesis import given, strategies as st

from naive import keys as nk
from thermogram.kernels import keys as kk



def arena(keys):
    blob = np.frombuffer(b"".join(keys), np.uint8) if any(keys) else np.zeros(0, np.uint8)
    off = np.zeros(len(keys) + 1, np.int64)
    np.cumsum([len(k) for k in keys], out=off[1:])
    return blob, off


@given(st.binary(max_size=300))
def test_crc32_matches_zlib(b):
    a = np.frombuffer(b, np.uint8) if b else np.zeros(0, np.uint8)
    assert int(kk.crc32(a, 0, len(b), kk.CRC_TABLE)) == nk.crc32(b)


@given(st.lists(st.binary(max_size=12), max_size=12, unique=True), st.integers(0, 3))
def test_rebuild_table_probes_like_naive(keys, extra):
    blob, off = arena(keys)
    size = 1 << (max(len(keys), 1) * 2 - 1).bit_length() << extra
    tab = np.full(size, -1, np.int32)
    kk.rebuild_table(blob, off, len(keys), tab, kk.CRC_TABLE)
    assert tab.tolist() == nk.probe_table(keys, size)


@given(st.lists(st.binary(max_size=8), max_size=10, unique=True), st.lists(st.binary(max_size=8), max_size=20))
def test_find_or_add_matches_dict(known, queries):
    blob, off = arena(known)
    qblob, qoff = arena(queries)
    size = 1 << (2 * (len(known) + len(queries)) + 1).bit_length()
    tab = np.full(size, -1, np.int32)
    kk.rebuild_table(blob, off, len(known), tab, kk.CRC_TABLE)
    kids = np.full(len(queries), -1, np.int64)
    first = np.full(len(queries), -1, np.int64)
    m = kk.find_or_add(qblob, qoff, blob, off, len(known), tab, kk.CRC_TABLE, kids, first)
    want_ids, want_first = nk.find_or_add(queries, known)
    assert kids.tolist() == want_ids
    assert first[:m].tolist() == want_first
    # every key, old and new, is now in the table where probing finds it
    all_keys = list(known) + [queries[q] for q in want_first]
    assert sorted(v for v in tab.tolist() if v >= 0) == list(range(len(all_keys)))


@given(st.lists(st.binary(max_size=20), max_size=15), st.data())
def test_prefixes_argsort_and_frames_match_naive(keys, data):
    blob, off = arena(keys)
    kids = np.array(data.draw(st.permutations(range(len(keys)))), np.int64)
    sub = [keys[k] for k in kids]
    pre = np.zeros(len(kids), np.uint64)
    kk.key_prefixes(blob, off, kids, pre)
    assert [int(v) for v in pre] == [nk.key_prefix(k) for k in sub]
    assert kk.argsort_keys(blob, off, kids).tolist() == nk.argsort_keys(sub)
    idx = np.argsort(pre, kind="mergesort")
    kk.sort_ties(blob, off, kids, pre, idx)
    assert idx.tolist() == nk.argsort_keys(sub)
    want = nk.frame_keys(sub)
    out = np.zeros(len(want), np.uint8)
    assert kk.frame_keys(blob, off, kids, out) == len(want)
    assert out.tobytes() == want


def test_argsort_keys_long_shared_prefixes():
    """Runs of keys that tie on several 8-byte chunks and differ only in length."""
    keys = [b"a" * 17, b"a" * 16, b"a" * 16 + b"\x00", b"a" * 8, b"a" * 24 + b"b", b"a" * 24, b""]
    blob, off = arena(keys)
    kids = np.arange(len(keys), dtype=np.int64)
    assert kk.argsort_keys(blob, off, kids).tolist() == nk.argsort_keys(keys)
