"""Where the time of one SNN tick goes: the crate's ``snn_tick`` workload at 100 neurons x 2048.

Times ``process``, its kernel call, the dot products alone, the call overhead and the empty
``DeltaBatch`` of a tick without changes (median of 9 repeats, loops >= 50 ms; on a shared
machine compare figures from the same run only).

Usage: python tools/profile_snn.py [neurons]
"""
from __future__ import annotations

import os
import statistics
import sys
import timeit

import numpy as np

from thermogram.kernels import snn as k
from thermogram.neuromod import NeuromodState
from thermogram.snn import EmbeddedSNN, EmbeddedSNNConfig


def median_ns(f, min_time: float = 0.05, repeat: int = 9) -> float:
    t = timeit.Timer(f)
    number = 1
    while t.timeit(number) < min_time:
        number *= 2 if number < 8 else 4
    return statistics.median(t.repeat(repeat, number)) / number * 1e9


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    n = int(argv[0]) if argv else 100
    s = EmbeddedSNN(EmbeddedSNNConfig(num_neurons=n))
    x = np.full(2048, 0.5, np.float32)
    nm = NeuromodState.baseline()
    X1, X64 = x.reshape(1, -1), np.full((64, 2048), 0.5, np.float32)
    s.process(x, nm)
    s.process_batch(X64, nm)
    p = s._params_for(nm)

    def ticks(X):
        return k.run_ticks(X, s._PTpad, s._idx, s._w, s._tern, s._nstate, s._last_spike, s._tick, p,
                           False, s._dots, s._ni, s._fws, s._iws, s._bws, s._wmark, s._wconf, s._wlist)

    def row():
        return k.run_row(x, s._lo_bits, s._hi_bits, s._PTpad, s._idx, s._w, s._tern, s._nstate,
                         s._last_spike, s._tick, p, False, s._fbuf, s._ibuf, s._bbuf)

    rows = {
        "process": median_ns(lambda: s.process(x, nm)),
        "run_row (one call: scan + tick)": median_ns(row),
        "run_ticks, 1 row": median_ns(lambda: ticks(X1)),
        "run_ticks, 64 rows, per tick": median_ns(lambda: ticks(X64)) / 64,
        "input_dots, 1 input": median_ns(lambda: k.input_dots(X1, 0, 1, s._PTpad, s._dots, 0, s._ni, k.WIDE_VECTORS)),
        "input_dots, 63 inputs, per input":
            median_ns(lambda: k.input_dots(X64, 0, 63, s._PTpad, s._dots, 0, s._ni, k.WIDE_VECTORS)) / 63,
        "run_ticks, 0 rows (call overhead, 18 arguments)": median_ns(lambda: ticks(X64[:0])),
        "empty DeltaBatch": median_ns(lambda: s._empty_batch(0)),
        "process_batch of 64 rows, per tick": median_ns(lambda: s.process_batch(X64, nm)) / 64,
    }
    print(f"# {n} neurons x 2048, load average {os.getloadavg()[0]:.2f}")
    print("| step | ns |\n|---|---|")
    for name, v in rows.items():
        print(f"| {name} | {v:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
