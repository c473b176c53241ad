"""What a single call cannot go below in this interpreter, measured on this machine.

Issue 16's single-call targets are ratios to the crate. This prints the fixed costs that
any Python implementation of those calls pays, so that a ratio can be read against them
(all ``timeit`` loops of >= 20 ms, median and minimum of 15 repeats, in ns):

- a method call that reads one dict entry (what ``Thermogram.read`` does for a key read
  before), and the same read as a plain function (no cheaper on CPython 3.11);
- one linked delta's canonical bytes and their SHA-256 (a chain record must be hashed);
- numba's dispatch of ``consolidate_pending``'s argument list to a kernel that does
  nothing, and the kernel itself on 10 pending deltas (the fixed cost of a consolidation's
  one kernel call);
- a whole ``apply_delta`` on a warm capsule.

Pass a ``live_K.md`` written by ``../shared/peer/compare.sh`` to print the crate's rows
of the same run beside them.

Usage: python tools/floors.py [live_K.md]
"""
from __future__ import annotations

import hashlib
import os
import statistics
import sys
import time
import timeit

import numpy as np
from numba import njit

from thermogram import ConsolidationPolicy, Delta, Signal, Thermogram, signal_vector
from thermogram import store as _store

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]  # benchmarks/ and compare_reference


def ns(stmt, g, repeat=15, min_time=0.02):
    t = timeit.Timer(stmt, globals=g)
    number = 1
    while t.timeit(number) < min_time:
        number *= 4
    r = [x / number * 1e9 for x in t.repeat(repeat, number)]
    return statistics.median(r), min(r)


class _Holder:
    def __init__(self):
        self.d = {"k": 1}

    def get(self, key):
        try:
            return self.d[key]
        except KeyError:
            return None


def _plain(d):
    def get(key):
        try:
            return d[key]
        except KeyError:
            return None
    return get


def per_call(fn, arg_tuples):
    """(median, min) ns of ``fn(*a)`` over ``arg_tuples``, one call per tuple (for calls
    that change their arguments, so each needs its own)."""
    fn(*arg_tuples[0])
    times = []
    clock = time.perf_counter_ns
    for a in arg_tuples[1:]:
        t0 = clock()
        fn(*a)
        times.append(clock() - t0)
    return statistics.median(times), min(times)


def _noop_kernel(n_args):
    """A kernel of ``n_args`` parameters that does nothing (compiled here, not cached)."""
    names = ", ".join(f"a{i}" for i in range(n_args))
    scope = {}
    exec(f"def noop({names}):\n    return 0\n", scope)
    return njit(cache=False)(scope["noop"])


def captured_consolidate_args(n=10):
    """The arguments of the kernel call of ``consolidate()`` on ``n`` pending updates."""
    from benchmarks.bench_core import Consolidate
    kf = _store._kf
    seen = []

    class Spy:
        def __getattr__(self, name):
            return getattr(kf, name)

        @staticmethod
        def consolidate_pending(*a):
            seen.append(tuple(x.copy() if isinstance(x, np.ndarray) else x for x in a))
            return kf.consolidate_pending(*a)

    _store._kf = Spy()
    try:
        o = Consolidate()
        o.setup(n)
        o.t.consolidate()
    finally:
        _store._kf = kf
    return seen[-1]


def main(argv):
    rows = []
    h = _Holder()
    rows.append(("method call reading one dict entry", ns("f('k')", {"f": h.get})))
    rows.append(("plain function reading one dict entry", ns("f('k')", {"f": _plain(h.d)})))

    v = signal_vector([(1, 100)])
    t = Thermogram("floors", policy=ConsolidationPolicy.manual_only())
    d = Delta.update("new_key", v, "source", Signal.positive(128), prev_hash=t.head_hash)
    rows.append(("canonical bytes of one linked update", ns("d.canonical_bytes()", {"d": d})))
    cb = d.canonical_bytes()
    rows.append(("SHA-256 hexdigest of them", ns("h(cb).hexdigest()", {"h": hashlib.sha256, "cb": cb})))

    args = captured_consolidate_args(10)
    noop = _noop_kernel(len(args))
    noop(*args)
    rows.append((f"numba dispatch of consolidate_pending's {len(args)} arguments to a no-op kernel",
                 ns("f(*a)", {"f": noop, "a": args})))
    rows.append(("consolidate_pending kernel, 10 pending (each call on fresh copies: cold caches)",
                 per_call(_store._kf.consolidate_pending,
                          [tuple(x.copy() if isinstance(x, np.ndarray) else x for x in args)
                           for _ in range(2000)])))

    vals = signal_vector([(1, 10)] * 8)
    cap = Thermogram("floors", policy=ConsolidationPolicy.manual_only())
    deltas = iter([Delta.update(f"k{i % 1000}", vals, "s") for i in range(400_000)])
    rows.append(("apply_delta, warm capsule (1,000 keys)",
                 ns("f(next(it))", {"f": cap.apply_delta, "it": deltas, "next": next}, repeat=7, min_time=0.05)))


    print(f"{'what':<88} {'median':>9} {'min':>9}")
    for label, (med, lo) in rows:
        print(f"{label:<88} {med:>9,.0f} {lo:>9,.0f}")
    if len(argv) > 1:
        from compare_reference import parse_reference
        ref = parse_reference(argv[1])
        print("\nthe crate, same run (ns):")
        for key in (("delta_append/manual_policy", 10), ("delta_append/manual_policy", 1000),
                    ("consolidate", 10), ("consolidate", 100),
                    ("x/read_fixed_key/hot@100000 (key_50000)", 100000)):
            if key in ref:
                print(f"  {key[0]} n={key[1]}: {ref[key]:,.1f}")


if __name__ == "__main__":
    main(sys.argv)
