"""Columnar entry tables (the layout of ``kernels/thermal.py``) built from and read back
into the dict layers of :mod:`naive.thermal`, plus hypothesis strategies for them."""
from __future__ import annotations

from typing import Any, Dict, List

import numpy as np
from hypothesis import strategies as st

FREE = 255
U64_MAX = 2**64 - 1

strengths = st.tuples(st.sampled_from([-1, 0, 1]), st.integers(0, 255))
counts = st.one_of(st.integers(0, 6), st.just(U64_MAX - 1), st.just(U64_MAX))
entries = st.fixed_dictionaries({
    "value": st.tuples(st.integers(0, 1000), st.integers(0, 8)),  # (voff, vlen) into a value arena
    "strength": strengths,
    "count": counts,
    "ts": st.integers(-(10**12), 10**12),
})


@st.composite
def dict_layers(draw, max_keys: int = 6) -> List[Dict[int, dict]]:
    """Four dict layers over key ids ``0..max_keys-1``, each key in any subset of layers."""
    layers: List[Dict[int, dict]] = [{}, {}, {}, {}]
    for k in range(draw(st.integers(0, max_keys))):
        for lay in range(4):
            if draw(st.integers(0, 2)) == 0:
                layers[lay][k] = draw(entries)
    return layers


def to_table(layers, nkeys: int, rng: np.random.Generator, spare: int = 0, free: int = 2) -> Dict[str, Any]:
    """The columns holding ``layers`` in shuffled rows, ``free`` freed rows on the free
    stack among them, and ``spare`` never-used rows after ``nrows``."""
    items = [(lay, k, e) for lay in range(4) for k, e in layers[lay].items()] + [None] * free
    order = rng.permutation(len(items))
    nrows = len(items)
    cap = nrows + spare
    t = {
        "layer": np.full(cap, FREE, np.uint8), "kid": np.zeros(cap, np.int32),
        "pol": np.zeros(cap, np.int8), "mag": np.zeros(cap, np.uint8),
        "count": np.zeros(cap, np.uint64), "ts": np.zeros(cap, np.int64),
        "voff": np.zeros(cap, np.int64), "vlen": np.zeros(cap, np.int32),
        "slot": np.full((max(nkeys, 1), 4), -1, np.int32), "free_stack": np.zeros(cap, np.int64),
        "nrows": nrows, "n_free": 0,
    }
    for r, i in enumerate(order):
        it = items[i]
        if it is None:
            t["free_stack"][t["n_free"]] = r
            t["n_free"] += 1
            continue
        lay, k, e = it
        t["layer"][r], t["kid"][r] = lay, k
        t["pol"][r], t["mag"][r] = e["strength"]
        t["count"][r], t["ts"][r] = e["count"], e["ts"]
        t["voff"][r], t["vlen"][r] = e["value"]
        t["slot"][k, lay] = r
    return t


def from_table(t) -> List[Dict[int, dict]]:
    """The dict layers a table holds, after checking that slots, rows and the free stack agree."""
    layers: List[Dict[int, dict]] = [{}, {}, {}, {}]
    nrows = t["nrows"]
    assert not (t["layer"][nrows:] != FREE).any()
    for r in range(nrows):
        lay = int(t["layer"][r])
        if lay == FREE:
            continue
        k = int(t["kid"][r])
        assert lay < 4 and int(t["slot"][k, lay]) == r
        assert k not in layers[lay]
        assert int(t["pol"][r]) in (-1, 0, 1)
        layers[lay][k] = {"value": (int(t["voff"][r]), int(t["vlen"][r])),
                          "strength": (int(t["pol"][r]), int(t["mag"][r])),
                          "count": int(t["count"][r]), "ts": int(t["ts"][r])}
    live = sum(len(lay) for lay in layers)
    assert int((t["slot"] >= 0).sum()) == live
    stack = t["free_stack"][: t["n_free"]].tolist()
    assert sorted(stack) == [r for r in range(nrows) if t["layer"][r] == FREE]
    return layers


def cols(t, *names):
    """The named columns, in order (for a kernel call)."""
    return [t[n] for n in names]
