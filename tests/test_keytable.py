"""The compact key table and the shared value arena."""
import numpy as np
from hypothesis import given, settings, strategies as st

from thermogram import DeltaBatch, Signal, Thermogram, ConsolidationPolicy
from thermogram.keytable import KeyTable

keys_st = st.text(min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(keys_st.map(lambda k: [k]), st.lists(keys_st, max_size=40)), max_size=30))
def test_key_table_matches_dict_model(ops):
    """Single adds and bulk adds, mixed, give the ids a dict in first-seen order gives."""
    t = KeyTable(capacity=1)
    model = {}
    for group in ops:
        if len(group) == 1 and len(ops) % 2:
            got = [t.add(group[0])]
        else:
            got = t.add_many(group).tolist()
        want = [model.setdefault(k, len(model)) for k in group]
        assert got == want
        assert len(t) == len(model)
    for k, i in model.items():
        assert t.get(k) == i and k in t and t[i] == k
    assert list(t) == list(model)
    assert t.get("\x00never") is None
    kids = np.arange(len(model))[::-1]
    joined, lens = t.key_bytes(kids)
    names = list(model)[::-1]
    assert joined == b"".join(n.encode("utf-8", "surrogatepass") for n in names)
    assert lens.tolist() == [len(n.encode("utf-8", "surrogatepass")) for n in names]
    c = t.copy()
    c.add("\x00fresh")
    assert len(c) == len(t) + 1 and t.get("\x00fresh") is None


def test_surrogate_keys_round_trip():
    t = KeyTable()
    k = "a\ud800b"
    assert t.add(k) == 0 and t.get(k) == 0 and t[0] == k
    assert t.add_many(["x", k]).tolist() == [1, 0]


def _capsule():
    return Thermogram("arena", clock=lambda: 10**18, policy=ConsolidationPolicy.manual_only())


def test_entries_and_records_share_one_copy_of_each_value():
    t = _capsule()
    vals = np.random.default_rng(1).integers(0, 256, (50, 16)).astype(np.float32) / 255
    t.apply_batch(DeltaBatch.from_arrays([f"k{i}" for i in range(50)], vals, Signal.positive(200), "create"))
    t.consolidate()
    rec = next(r for r in t.records() if r.kind == "batch")
    for i in (0, 17, 49):
        assert np.shares_memory(t.read(f"k{i}"), rec.value(i))
    assert rec.keys == tuple(f"k{i}" for i in range(50))
    assert rec.verify_hash()


def test_arena_growth_moves_record_views():
    t = _capsule()
    first = DeltaBatch.from_arrays(["a", "b"], np.zeros((2, 4), np.float32), None, "create")
    t.apply_batch(first)
    first = t.records()[-1]  # the capsule's own copy of the batch (the caller's is never bound)
    before = first.values
    big = DeltaBatch.from_arrays([f"x{i}" for i in range(500)], np.ones((500, 64), np.float32), None, "create")
    t.apply_batch(big)  # forces the arena to grow
    assert first.values is not before
    assert np.shares_memory(first.values, t._store.vals)
    assert np.array_equal(first.values, before)
    t.consolidate()
    assert t.verify() and t.read("a").shape == (4,)
    assert Thermogram.replay(t.records()).state_digest() == t.state_digest()


@settings(max_examples=80, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=6, alphabet=st.sampled_from(["a", "b", "\x00", "é", "\ud800", "z", "\U0001f600"])),
                min_size=0, max_size=60))
def test_argsort_orders_like_sorted_str(keys):
    """Bytewise order of the UTF-8 keys is the code point order of the str keys."""
    t = KeyTable()
    kids = t.add_many(keys)
    order = t.argsort(kids)
    got = [keys[i] for i in order]
    assert got == sorted(keys)
    assert sorted(order.tolist()) == list(range(len(keys)))
    # stable: equal keys keep their positions' order
    for a, b in zip(order, order[1:]):
        if keys[a] == keys[b]:
            assert a < b
    framed = t.framed(kids)
    import struct
    want = b"".join(struct.pack("<Q", len(k.encode("utf-8", "surrogatepass"))) + k.encode("utf-8", "surrogatepass")
                    for k in keys)
    assert framed == want


def test_applied_batches_and_key_tables_pickle():
    import pickle
    t = _capsule()
    b = DeltaBatch.from_arrays(["x", "y"], np.zeros((2, 3), np.float32), None, "create")
    t.apply_batch(b)
    assert b._ktab is None  # the caller's batch is not changed...
    b = t.records()[-1]
    assert b._ktab is t._store.keys  # ...the capsule's copy is bound: keys held as ids
    c = pickle.loads(pickle.dumps(b))
    assert c._ktab is None and c.keys == ("x", "y") and c.hash == b.hash and c.verify_hash()
    assert np.array_equal(c.values, b.values)
    k = pickle.loads(pickle.dumps(t._store.keys))
    assert list(k) == ["x", "y"] and k.get("y") == 1


def test_keys_register_while_a_view_of_the_blob_is_alive():
    """A live buffer view of the blob (kept, say, by a traceback) must not make registration
    fail: the blob is then replaced by a grown copy."""
    import numpy as np

    from thermogram.keytable import KeyTable
    t = KeyTable()
    t.add("first")
    view = np.frombuffer(t.blob, np.uint8)  # an export of the bytearray
    assert t.add("second") == 1
    assert t.add_many(["third", "first", "fourth"]).tolist() == [2, 0, 3]
    assert bytes(view) == b"first"  # the old bytes are intact for the view's holder
    assert [t[i] for i in range(4)] == ["first", "second", "third", "fourth"]
    assert t.get("fourth") == 3 and t.get("second") == 1
