"""The single-call fast paths return exactly what the general paths return.

Reads keep what they returned per key (views, or None for a missing key); these
tests change the state every way that can make a cached answer stale and read again.
``Delta`` copies short SIGNAL vectors through bytes and ``encode_delta`` has a one-join
path for ordinary fields: both are checked against the general code.
"""
from __future__ import annotations

import numpy as np
import pytest

from thermogram import Delta, DeltaBatch, Signal, Thermogram
from thermogram.consolidation import ConsolidationPolicy
from thermogram.errors import ValidationError
from thermogram.io import records
from thermogram.signal import SIGNAL
from thermogram.thermal import ThermalState


def sv(*pairs):
    v = np.empty(len(pairs), SIGNAL)
    v["polarity"] = [p for p, _ in pairs]
    v["magnitude"] = [m for _, m in pairs]
    return v


def manual():
    return Thermogram("fast", policy=ConsolidationPolicy.manual_only())


def same(a, b):
    if a is None or b is None:
        return a is None and b is None
    return a.tobytes() == b.tobytes()


def test_hot_read_view_follows_every_change():
    t = manual()
    t.write("a", sv((1, 10)))
    t.consolidate()
    assert same(t.read("a"), sv((1, 10)))
    assert same(t.read("a"), sv((1, 10)))  # now from the cache
    t.write("a", sv((1, 20), (-1, 3)))
    assert same(t.read("a"), sv((1, 20), (-1, 3)))  # pending first
    t.consolidate()
    got = t.read("a")
    assert got is not None and len(got) == 2 and not got.flags.writeable
    t.insert_entry("a", sv((0, 7)), Signal.positive(250), ThermalState.COLD)
    assert len(t.read("a")) == 2  # the hot copy is still the hottest
    t.delete("a")
    assert t.read("a") is None
    t.consolidate()
    assert t.read("a") is None


def test_reads_survive_arena_growth():
    t = manual()
    t.write("k0", sv((1, 1)))
    t.consolidate()
    first = t.read("k0")
    for i in range(1, 3000):  # the value arena is reallocated several times
        t.write(f"k{i}", sv((1, i % 256), (-1, 5)))
        if i % 500 == 0:
            t.consolidate()
    assert same(t.read("k0"), sv((1, 1)))
    assert same(first, sv((1, 1)))
    for i in (1, 499, 2999):
        assert same(t.read(f"k{i}"), sv((1, i % 256), (-1, 5)))


def test_pending_row_views_are_dropped_with_the_pending_log():
    t = manual()
    t.write("p", sv((1, 1)))
    assert same(t.read("p"), sv((1, 1)))
    t.consolidate()
    t.write("q", sv((-1, 9)))  # reuses pending row 0
    assert same(t.read("q"), sv((-1, 9)))
    assert same(t.read("p"), sv((1, 1)))


@pytest.mark.parametrize("how", ["apply_delta", "apply_batch", "insert_entry", "load"])
def test_a_key_read_as_missing_appears_once_written(how, tmp_path):
    t = manual()
    t.write("other", sv((1, 2)))
    t.consolidate()
    assert t.read("new") is None
    assert t.read("new") is None  # remembered as missing
    if how == "apply_delta":
        t.apply_delta(Delta.create("new", sv((1, 3)), "s"))
        t.consolidate()
    elif how == "apply_batch":
        t.apply_batch(DeltaBatch.from_deltas([Delta.create("new", sv((1, 3)), "s")]))
        t.consolidate()
    elif how == "insert_entry":
        t.insert_entry("new", sv((1, 3)), Signal.positive(200))
    else:
        src = manual()
        src.write("new", sv((1, 3)))
        src.consolidate()
        src.save(tmp_path / "x.thermo")
        t = Thermogram.load(tmp_path / "x.thermo")
        assert t.read("missing-here") is None
    assert same(t.read("new"), sv((1, 3)))


def test_delta_copies_a_short_value_and_keeps_it_read_only():
    v = sv((1, 5), (0, 0), (-1, 255))
    d = Delta.create("k", v, "s")
    v["magnitude"][0] = 99
    assert d.value.tolist() == [(1, 5), (0, 0), (-1, 255)]
    assert not d.value.flags.writeable
    with pytest.raises(ValueError):
        d.value.flags.writeable = True
    bad = sv((1, 5))
    bad["polarity"][0] = 2
    with pytest.raises(ValidationError, match="polarity"):
        Delta.create("k", bad, "s")
    assert Delta.create("k", sv(), "s").value.shape == (0,)
    assert Delta.create("k", np.concatenate([v] * 200)[::2], "s").value.shape == (300,)


_FIELDS = ("delta_type", "key", "source", "strength", "prev_hash", "observation_count", "custom")


@pytest.mark.parametrize("name", ["create", "update", "delete", "merge"])
@pytest.mark.parametrize("prev", [None, "cd" * 32])
def test_named_constructors_equal_the_class_call(name, prev):
    """create / update / delete / merge fill a bare instance (no keyword call of the class):
    every field, the hash layout and the errors are the constructor's."""
    from thermogram.delta import DeltaType, reseed_ids
    kind = DeltaType[name.upper()]
    value = None if name == "delete" else sv((1, 9), (-1, 3))
    args = ("k", "src") if name == "delete" else ("k", value, "src")
    extra = {} if name == "create" else {"prev_hash": prev}
    reseed_ids(7)
    fast = getattr(Delta, name)(*args, **extra)
    reseed_ids(7)
    slow = Delta(kind, "k", value, source="src", **extra)
    assert type(fast) is Delta
    assert [getattr(fast, f) for f in _FIELDS] == [getattr(slow, f) for f in _FIELDS]
    assert fast.id == slow.id and fast.value.tobytes() == slow.value.tobytes()
    fast.timestamp = slow.timestamp
    assert fast.canonical_bytes() == slow.canonical_bytes() and fast.hash == slow.hash
    bad = [(("k\ud800",) + args[1:], {}), (args[:-1] + (b"src",), {})]
    if name != "delete":
        bad.append((args, {"strength": (3, 1)}))
        bad.append((("k", [float("nan")], "src"), {}))
    for a, kw in bad:
        with pytest.raises(ValidationError):
            getattr(Delta, name)(*a, **kw)
    # more fields go through the class call, as before
    d = getattr(Delta, name)(*args, strength=Signal.negative(3), timestamp=11, id="x", **extra)
    assert (d.strength, d.timestamp, d.id, d.prev_hash) == (Signal.negative(3), 11, "x", prev if extra else None)


def test_named_constructors_of_a_subclass_run_its_constructor():
    class Tagged(Delta):
        __slots__ = ("tag",)

        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            self.tag = "seen"

    for d in (Tagged.create("k", sv((1, 1)), "s"), Tagged.update("k", sv((1, 1)), "s"),
              Tagged.delete("k", "s"), Tagged.merge("k", sv((1, 1)), "s")):
        assert type(d) is Tagged and d.tag == "seen"


class _Key(str):
    """A str subclass: takes encode_delta's general path."""


@pytest.mark.parametrize("prev", [None, "ab" * 32])
@pytest.mark.parametrize("n", [0, 1, 3])
def test_encode_delta_fast_path_equals_general_path(prev, n):
    d = Delta.update("key é", sv(*[(1, i) for i in range(n)]), "src", Signal.negative(7),
                     timestamp=-5, prev_hash=prev, id="id-1")
    args = (d.delta_type, d.id, d.key, d.value, d.timestamp, d.source, d.strength,
            d.observation_count, d.custom, d.prev_hash)
    fast = records.encode_delta(*args)
    slow = records.encode_delta(d.delta_type, _Key(d.id), *args[2:])
    assert fast == slow
    # fields tampered into other types still encode, differently
    assert records.encode_delta(d.delta_type, d.id, d.key, d.value, 1.5, *args[5:]) != fast


def test_ids_drawn_in_blocks_are_the_one_at_a_time_sequence():
    import random

    from thermogram import delta
    delta.reseed_ids(20261201)
    got = [delta.new_id() for _ in range(600)]  # two blocks and a part
    rng = random.Random(20261201)
    want = []
    for _ in range(600):
        h = ((rng.getrandbits(128) & delta._UUID_KEEP) | delta._UUID_SET).to_bytes(16, "big").hex()
        want.append(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")
    assert got == want
    delta.reseed_ids(20261201)  # a re-seed drops the ids drawn ahead
    assert delta.new_id() == want[0]


def test_ids_are_unique_across_threads():
    import threading

    from thermogram.delta import new_id
    out = [[] for _ in range(8)]
    start = threading.Barrier(8)

    def draw(o):
        start.wait()
        o.extend(new_id() for _ in range(3000))

    ths = [threading.Thread(target=draw, args=(o,)) for o in out]
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    ids = [i for o in out for i in o]
    assert len(ids) == 24000 and len(set(ids)) == 24000


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_a_forked_child_does_not_reuse_the_parents_ids_drawn_ahead():
    import os

    from thermogram.delta import new_id
    new_id()  # the parent now holds ids drawn ahead
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.write(w, "".join(new_id() for _ in range(40)).encode())
        finally:
            os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    child = {data[i:i + 36].decode() for i in range(0, len(data), 36)}
    parent = {new_id() for _ in range(40)}
    assert len(child) == 40 and not child & parent
