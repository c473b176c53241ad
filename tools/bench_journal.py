"""Journal append cost, split into CPU and fsync wait, and the file-backed / in-memory
ratio of ``apply_delta`` (the workloads of benchmarks/bench_persistence.py).

The "journal append (fsync batch)" row of compare_reference.py is wall time, and on a
shared machine its fsync share swings with other processes' disk traffic; this prints,
per run, the wall time, the time spent inside fsync (timed through a FileOps wrapper)
and the process CPU time, so the two parts can be told apart::

    python tools/bench_journal.py              # 9 runs of each
    python tools/bench_journal.py --runs 15
"""
from __future__ import annotations

import argparse
import gc
import os
import shutil
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


class _TimedFsync:
    """Wraps the installed FileOps; adds up the seconds spent in fsync."""

    def __init__(self, inner):
        self.inner, self.seconds = inner, 0.0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def fsync(self, fd):
        t0 = time.perf_counter()
        try:
            self.inner.fsync(fd)
        finally:
            self.seconds += time.perf_counter() - t0


def _mmm(values):
    return f"min {min(values):7,.0f}  median {statistics.median(values):7,.0f}  max {max(values):7,.0f}"


def journal_append(policy: str, runs: int) -> None:
    from benchmarks import bench_persistence as bp
    from thermogram.io import files
    wall, fs, cpu = [], [], []
    n = 20_000
    for _ in range(runs):
        j = bp.JournalAppend()
        j.setup(policy)
        timed = _TimedFsync(files.ops)
        try:
            with files.use_ops(timed):
                c0, t0 = time.process_time(), time.perf_counter()
                j.time_append_20k(policy)
                wall.append((time.perf_counter() - t0) / n * 1e9)
                cpu.append((time.process_time() - c0) / n * 1e9)
            fs.append(timed.seconds / n * 1e9)
        finally:
            j.teardown(policy)
            shutil.rmtree(j.dir, ignore_errors=True)
    print(f"journal append fsync={policy}, ns/record:")
    print(f"  wall          {_mmm(wall)}")
    print(f"  inside fsync  {_mmm(fs)}")
    print(f"  process CPU   {_mmm(cpu)}")


def stream_ratio(runs: int) -> None:
    from benchmarks import bench_persistence as bp
    samples = {"memory": [], "never": []}
    for _ in range(runs):
        for where in samples:
            o = bp.ApplyDeltaStreamFile()
            o.setup(where)
            gc.disable()
            try:
                t0 = time.perf_counter()
                o.time_apply_delta_stream(where)
                samples[where].append((time.perf_counter() - t0) / o.N * 1e9)
            finally:
                gc.enable()
                o.teardown(where)
    ratios = [f / m for f, m in zip(samples["never"], samples["memory"])]
    print("apply_delta of 10,000 pre-built deltas, ns/delta (in alternation):")
    print(f"  in memory               {_mmm(samples['memory'])}")
    print(f"  file-backed fsync=never {_mmm(samples['never'])}")
    print(f"  ratio per run           min {min(ratios):.2f}  median {statistics.median(ratios):.2f}  "
          f"max {max(ratios):.2f}  (ratio of medians "
          f"{statistics.median(samples['never']) / statistics.median(samples['memory']):.2f})")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=9)
    args = ap.parse_args(argv)
    import thermogram  # noqa: F401  (the installed package first, then the benchmarks beside it)
    if ROOT not in sys.path:
        sys.path.append(ROOT)
    for policy in ("batch", "never"):
        journal_append(policy, args.runs)
    stream_ratio(args.runs)
    print(f"load average {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
