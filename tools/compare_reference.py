"""Our timings next to the reference crate's (thermogram-rs 1.0), measured in the same run.

Reads the reference table (the markdown table ``| workload | n | ns/op |``) that the
reference's harness printed on this machine, in this run: ``--reference FILE`` is required.
``../shared/peer/compare.sh`` writes it (``harness bench``, plus ``harness extra`` for the
rows that run this project's own workloads on the crate) and alternates it with this script.
Stored numbers measured on another machine are never a denominator: machines here differ
2-10x from one day to the next. Prints, per workload, reference ns/op, ours, and the
ratio reference / ours (> 1: we are faster; for memory: we use less), then the performance
targets with PASS/FAIL.

Every row with a reference counterpart runs the same workload definition on both sides:
where the crate's ``bench`` row measures something else (reads of rotating keys, an
all-hot capsule for ``apply_decay``, one scalar plasticity call), the row is compared with
the ``harness extra`` row that runs our definition on the crate, or ours is measured on the
crate's definition (the ``..., reference workload`` rows).

Ours come from one of two places:

* default: the newest asv result file under ``.asv/results`` (asv only saves
  results of a ``--python=same`` run when given a commit:
  ``asv run --python=same --bench bench_core --set-commit-hash $(git rev-parse HEAD)``;
  ``--quick`` results are single first calls, flagged with a warning);
* ``--direct``: measured here with plain ``timeit`` on the same workloads as
  the asv suites (the builders are imported from ``benchmarks/common.py`` through
  ``benchmarks/bench_core.py``): the median
  of 9 repeats, each repeat a loop sized to take >= 20 ms (read-only
  operations) or one call on freshly built state (operations that change it).
  The memory figure comes from a fresh subprocess. ``--rounds 3`` repeats the
  whole measurement and keeps each row's best round (``--combine median``: the
  median round), which is what to use on a machine shared with other work.

Examples::

    bash ../shared/peer/compare.sh 3                        # the whole comparison, 3 alternations
    H=$(bash ../shared/peer/build.sh | tail -1)
    { $H bench; $H extra; } > live.md                       # the reference, now, on this machine
    python tools/compare_reference.py --direct --reference live.md
    python tools/compare_reference.py --reference live.md   # latest asv results
"""
from __future__ import annotations

import argparse
import gc
import glob
import json
import os
import re
import statistics
import subprocess
import sys
import timeit

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_RESULTS = os.path.join(ROOT, ".asv", "results")
REPEAT = 9

# ----------------------------------------------------------------------------- reference table


def parse_reference(path):
    """{(workload, n): ns_per_op} from the markdown table(s) the reference harness printed
    (``harness bench``, optionally followed by ``harness extra``), plus its memory and codec
    size notes when present."""
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) != 3 or not line.lstrip().startswith("|"):
                continue
            workload, n, ns = cells
            try:
                out[(workload, int(n.replace(",", "")))] = float(ns.replace(",", ""))
            except ValueError:
                continue  # header and separator rows
    for m in re.finditer(r"hold (\d+) bytes per entry\s+resident\s+\((\d+) at peak\)",
                         open(path, encoding="utf-8").read().replace("\n", " ")):
        out[("memory/resident_bytes_per_entry", 1_000_000)] = float(m.group(1))
        out[("memory/peak_bytes_per_entry", 1_000_000)] = float(m.group(2))
    m = re.search(r"encoded size is ([\d.]+) bytes per entry", open(path, encoding="utf-8").read())
    if m:
        out[("codec/bytes_per_entry", 1)] = float(m.group(1))
    return out


def peer_harness():
    """Path of the reference harness binary that ``../shared/peer/build.sh`` builds
    (``$THERMOGRAM_PEER_HARNESS``, else ``$PEER_DIR`` or ``$TMPDIR/thermogram-peer``), or None."""
    h = os.environ.get("THERMOGRAM_PEER_HARNESS")
    if not h:
        d = os.environ.get("PEER_DIR") or os.path.join(os.environ.get("TMPDIR") or "/tmp", "thermogram-peer")
        h = os.path.join(d, "target", "release", "harness")
    return h if os.path.isfile(h) and os.access(h, os.X_OK) else None


def ensure_extra_rows(path, log=print):
    """Append the harness's ``extra`` table (the project's own workloads run on the crate:
    the ``x/`` rows) to the reference table at ``path`` when it has none.

    ``compare.sh`` writes only ``harness bench`` before calling this script; running ``extra``
    here keeps every row of a round measured back to back with ours, on the same machine.
    Returns whether the file now holds ``x/`` rows."""
    if any(w.startswith("x/") for w, _n in parse_reference(path)):
        return True
    h = peer_harness()
    if h is None:
        log("# warning: no x/ rows in the reference table and no harness found "
            "(set THERMOGRAM_PEER_HARNESS): the rows on the project's own workloads print n/a",
            file=sys.stderr)
        return False
    log(f"# running {h} extra (the project's workloads on the crate)", file=sys.stderr)
    out = subprocess.run([h, "extra"], check=True, capture_output=True, text=True).stdout
    with open(path, "a", encoding="utf-8") as f:
        f.write("\n" + out)
    return True


# ----------------------------------------------------------------------------- what we compare

# (label, reference row or None, asv benchmark, asv params, divisor: asv value / divisor = per op,
#  unit: "ns" for times, "B" for bytes)
CODEC_SIZES = (10, 100, 1000, 10_000, 100_000)

X_CONSOLIDATE = "x/consolidate/python_workload (8 signals, MAX_POSITIVE)"
X_DECAY = "x/apply_decay/spread_capsule (repeated calls)"
X_TRANSITIONS = "x/run_thermal_transitions/python_workload (settled spread + 2,000 movers)"
REF_SUITE = "bench_reference_workloads"
# the asv modules whose benchmarks the rows below name (``Class.method``)
ASV_MODULES = ("bench_core", "bench_persistence", REF_SUITE, "bench_snn")

ROWS = [
    ("delta_create signals=1", None, "DeltaCreate.time_delta_create", (1,), 1, "ns"),
    ("delta_create, reference workload", ("delta_create", 1),
     "DeltaCreateReference.time_delta_create", (), 1, "ns"),
    ("delta_create signals=64", None, "DeltaCreate.time_delta_create", (64,), 1, "ns"),
    ("delta_create+hash signals=1", None, "DeltaCreate.time_delta_create_and_hash", (1,), 1, "ns"),
    ("hash_verify signals=1", ("hash_verify/signals=1", 1), "DeltaHash.time_verify_hash", (1,), 1, "ns"),
    ("hash_verify signals=64", ("hash_verify/signals=64", 64), "DeltaHash.time_verify_hash", (64,), 1, "ns"),
    ("compute_hash signals=1", None, "DeltaHash.time_compute_hash", (1,), 1, "ns"),
    ("compute_hash signals=64", None, "DeltaHash.time_compute_hash", (64,), 1, "ns"),
    ("chain verify, per record (1001)", None, "ChainVerify.time_verify", (1000,), 1001, "ns"),
] + [
    (f"apply_delta pending={n}", None, "ApplyDelta.time_apply_delta",
     (n,), 1, "ns") for n in (10, 100, 1000, 10000)
] + [
    (f"apply_delta pending={n}, reference workload", ("delta_append/manual_policy", n),
     "ApplyDeltaReference.time_apply_delta", (n,), 1, "ns") for n in (10, 100, 1000, 10000)
] + [
    ("apply_delta_stream, per delta (10k)", ("delta_append_stream/manual_policy", 10000),
     "ApplyDeltaStream.time_apply_delta_stream", (), 10000, "ns"),
    ("apply_batch 10k fresh, per delta", None, "ApplyBatch.time_apply_batch", ("fresh",), 10000, "ns"),
    ("apply_batch 10k known keys, per delta", None, "ApplyBatch.time_apply_batch", ("known_keys",),
     10000, "ns"),
    ("DeltaBatch.from_arrays 10k, per delta", None, "BatchFromArrays.time_from_arrays", (), 10000, "ns"),
] + [
    (f"read {kind} @{size}", None, "Read.time_read", (size, kind), 1, "ns")
    for size in (10, 1000, 100_000) for kind in
    ("hot", "cold", "pending", "pending_batch", "behind_pending", "missing")
] + [
    (f"apply_decay {n}", (X_DECAY, n) if n <= 100_000 else None, "ApplyDecay.time_apply_decay",
     (n,), 1, "ns") for n in (1000, 100_000, 1_000_000)
] + [
    (f"apply_decay {n}, reference workload (all hot)", ("apply_decay", n),
     "ApplyDecayAllHot.time_apply_decay", (n,), 1, "ns") for n in (1000, 100_000)
] + [
    ("apply_decay 100000, first call on a fresh capsule", None, "ApplyDecayFresh.time_apply_decay_fresh",
     (100_000,), 1, "ns"),
] + [
    (f"run_thermal_transitions {n}", (X_TRANSITIONS, n) if n == 100_000 else None,
     "ThermalTransitions.time_run_thermal_transitions", (n,), 1, "ns") for n in (100_000, 1_000_000)
] + [
    ("run_thermal_transitions 100000, reference workload", ("run_thermal_transitions", 100_000),
     "TransitionsReference.time_run_thermal_transitions", (100_000,), 1, "ns"),
] + [
    (f"consolidate {n}", (X_CONSOLIDATE, n), "Consolidate.time_consolidate",
     (n,), 1, "ns") for n in (10, 100, 1000, 10000)
] + [
    # vector vs vector: our array kernel per element, the crate's scalar call in a loop over
    # the same 1,000,000 inputs (harness extra)
    (f"plasticity {p}, per element (1M)",
     (f"x/plasticity_apply_update_loop/{p} (per element of 1M)", 1_000_000),
     "Plasticity.time_apply_update_array", (p,), 1_000_000, "ns")
    for p in ("STDP", "Replace", "EMA", "Bayesian", "WTA")
] + [
    # scalar vs scalar: one call on the crate's arguments
    (f"plasticity {p}, scalar call", (f"plasticity_apply_update/{p}", 1),
     "PlasticityScalarReference.time_apply_update_scalar", (p,), 1, "ns")
    for p in ("STDP", "Replace", "EMA", "Bayesian", "WTA")
] + [
    (f"codec encode v2 {n}", ("codec_encode", n) if n <= 10_000 else None, "Codec.time_encode",
     (n, "v2"), 1, "ns") for n in CODEC_SIZES
] + [
    (f"codec decode v2 {n}", ("codec_decode", n) if n <= 10_000 else None, "Codec.time_decode",
     (n, "v2"), 1, "ns") for n in CODEC_SIZES
] + [
    (f"codec decode+verify v2 {n}", None, "Codec.time_decode_verified", (n, "v2"), 1, "ns")
    for n in CODEC_SIZES
] + [
    (f"codec v2 bytes/entry {n}", ("codec/bytes_per_entry", 1), "Codec.track_bytes_per_entry",
     (n, "v2"), 1, "B") for n in CODEC_SIZES
] + [
    ("journal append (fsync batch), per record", None, "JournalAppend.time_append_20k", ("batch",),
     20_000, "ns"),
    # the same 10,000 pre-built deltas onto a capsule in memory and onto a file-backed one:
    # the ratio of the two is the journal's cost (target below)
    ("apply_delta_stream prebuilt in-memory, per delta (10k)", None,
     "ApplyDeltaStreamFile.time_apply_delta_stream", ("memory",), 10_000, "ns"),
    ("apply_delta_stream file-backed fsync=never, per delta (10k)", None,
     "ApplyDeltaStreamFile.time_apply_delta_stream", ("never",), 10_000, "ns"),
] + [
    ("memory 1M x 64, resident bytes/entry", ("memory/resident_bytes_per_entry", 1_000_000),
     "Memory.track_resident_bytes_per_entry", (), 1, "B"),
    ("memory 1M x 64, peak bytes/entry", ("memory/peak_bytes_per_entry", 1_000_000),
     "Memory.peakmem_consolidated_1m_x64", (), 1_000_000, "B"),
]

# Reads: ours read one fixed key; so do the harness extra rows (the same capsules: n hot
# entries key_i, 100 cold entries, 1,000 pending creates pend_i applied one by one). The
# crate's bench rows read rotating keys of another capsule and are not compared.
READ_REF = {
    ("hot", 10): ("x/read_fixed_key/hot@10 (key_5)", 10),
    ("hot", 1000): ("x/read_fixed_key/hot@1000 (key_500)", 1000),
    ("hot", 100_000): ("x/read_fixed_key/hot@100000 (key_50000)", 100000),
    ("cold", 100_000): ("x/read_fixed_key/cold@100000 (cold_0)", 100000),
    ("pending", 100_000): ("x/read_fixed_key/pending@100000 (pend_0, oldest)", 1000),
    ("behind_pending", 100_000): ("x/read_fixed_key/behind_pending@100000 (key_50000)", 1000),
    ("missing", 100_000): ("x/read_fixed_key/missing@100000 (no_such_key)", 1000),
}
ROWS = [
    (lab, READ_REF.get((prm[1], prm[0]), ref) if bench == "Read.time_read" else ref, bench, prm, div, u)
    for lab, ref, bench, prm, div, u in ROWS
]

# The reference measures its linear pending scan at both ends; our overlay is one dict,
# so both of its rows compare against the same measurement.
ALIASES = {"read pending @100000 vs newest key": "read pending @100000"}
ROWS.insert(
    [r[0] for r in ROWS].index("read pending @100000") + 1,
    ("read pending @100000 vs newest key", ("x/read_fixed_key/newest_pending@100000 (pend_999)", 1000),
     "Read.time_read", (100_000, "pending"), 1, "ns"))


# the embedded SNN on the crate's ``snn_tick`` workload (default config with num_neurons=n,
# input 0.5 x 2048, baseline neuromodulators, one network ticked repeatedly): one tick per
# ``process`` call, and ``process_batch`` of 64 identical rows per call / 64 (measure_snn)
SNN_BATCH_ROWS = 64
ROWS += [
    row for n in (10, 50, 100, 200) for row in (
        (f"snn process {n}x2048", ("snn_tick", n), "SNNTick.time_process", (n,), 1, "ns"),
        (f"snn process_batch {n}x2048, per tick", ("snn_tick", n), "SNNTickBatch64.time_process_batch",
         (n,), SNN_BATCH_ROWS, "ns"))
]

TARGETS = [
    # (description, row label, kind, threshold)
    ("Delta.create >= 0.5x", "delta_create, reference workload", "ratio", 0.5),
    ("apply_delta, 10 pending >= 0.3x", "apply_delta pending=10, reference workload", "ratio", 0.3),
    ("apply_delta, 1,000 pending >= 0.3x", "apply_delta pending=1000, reference workload", "ratio", 0.3),
    ("reads <= 350 ns at every size", "read ", "all_below_ns", 350.0),
    ("read hot @100k >= 1x", "read hot @100000", "ratio", 1.0),
    ("read cold @100k >= 1x", "read cold @100000", "ratio", 1.0),
    ("read oldest pending @100k >= 1x", "read pending @100000", "ratio", 1.0),
    ("read behind pending @100k >= 1x", "read behind_pending @100000", "ratio", 1.0),
    ("read missing @100k >= 1x", "read missing @100000", "ratio", 1.0),
    ("consolidate 10 >= 0.2x", "consolidate 10", "ratio", 0.2),
    ("consolidate 100 >= 1x", "consolidate 100", "ratio", 1.0),
    ("run_thermal_transitions 100k >= 20x (ours)", "run_thermal_transitions 100000", "ratio", 20.0),
    ("run_thermal_transitions 100k >= 20x (crate's)", "run_thermal_transitions 100000, reference workload",
     "ratio", 20.0),
    ("apply_decay 100k >= 5x (ours: mixed layers)", "apply_decay 100000", "ratio", 5.0),
    ("apply_decay 100k >= 5x (crate's: all hot)", "apply_decay 100000, reference workload (all hot)",
     "ratio", 5.0),
    ("apply_batch per delta <= 1 us (10k, fresh)", "apply_batch 10k fresh, per delta", "max_ns", 1000.0),
    ("consolidate 10k >= 2x faster", "consolidate 10000", "ratio", 2.0),
    ("memory <= 250 bytes/entry (reference 412)", "memory 1M x 64, resident bytes/entry", "max_ns", 250.0),
    ("codec encode 10k >= 2x faster", "codec encode v2 10000", "ratio", 2.0),
    ("codec decode 10k >= 2x faster", "codec decode v2 10000", "ratio", 2.0),
    ("codec v2 file <= reference size (10k)", "codec v2 bytes/entry 10000", "ratio", 1.0),
    ("codec v2 file <= reference size (100k)", "codec v2 bytes/entry 100000", "ratio", 1.0),
    ("journal batch >= 400,000 records/s", "journal append (fsync batch), per record", "max_ns", 2500.0),
    ("snn process >= 8x", "snn process 100x2048", "ratio", 8.0),
    ("snn process_batch per tick >= 15x", "snn process_batch 100x2048, per tick", "ratio", 15.0),
    # kind "max_x_row": ours on this row <= factor x ours on another row, threshold (row, factor)
    ("file-backed (fsync=never) <= 1.5x in-memory", "apply_delta_stream file-backed fsync=never, per delta (10k)",
     "max_x_row", ("apply_delta_stream prebuilt in-memory, per delta (10k)", 1.5)),
]


# ----------------------------------------------------------------------------- asv results


def latest_asv_results(results_dir, machine=None):
    """Path of the newest result JSON (by mtime) for ``machine`` (default: the machine whose
    newest result is newest)."""
    pattern = os.path.join(results_dir, machine or "*", "*.json")
    files = [p for p in glob.glob(pattern)
             if os.path.basename(p) not in ("machine.json", "benchmarks.json")]
    if not files:
        raise SystemExit(f"no asv result files match {pattern}; run `asv run --python=same "
                         "--bench bench_core --set-commit-hash $(git rev-parse HEAD)` first, "
                         "or use --direct")
    return max(files, key=os.path.getmtime)


def asv_values(path):
    """{(benchmark name without module, params tuple of repr strings): value}."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    cols = data.get("result_columns", ["result", "params"])
    ir, ip = cols.index("result"), cols.index("params")
    irep = cols.index("stats_repeat") if "stats_repeat" in cols else None
    single = []
    out = {}
    for name, row in data.get("results", {}).items():
        module, _, short = name.partition(".")
        if module not in ASV_MODULES:
            continue
        values = row[ir]
        params = row[ip] if len(row) > ip else []
        if values is None:
            continue
        import itertools
        combos = list(itertools.product(*params)) if params else [()]
        for combo, v in zip(combos, values):
            if v is not None and v == v:  # skip failed (None) and NaN
                out[(short, tuple(combo))] = v
        if irep is not None and len(row) > irep and row[irep] and short.split(".")[-1].startswith("time_"):
            single.extend(r for r in row[irep] if r is not None and r <= 1)
    out["__single_sample__"] = len(single)
    return out


def ours_from_asv(path):
    vals = asv_values(path)
    if vals.get("__single_sample__"):
        print(f"# warning: {vals['__single_sample__']} timings in {os.path.basename(path)} are single "
              "samples (asv run --quick?): first calls after setup, not comparable to the reference",
              file=sys.stderr)
    ours = {}
    for label, _ref, bench, params, div, unit in ROWS:
        v = vals.get((bench, tuple(repr(p) for p in params)))
        if v is None:
            continue
        ours[label] = v * 1e9 / div if unit == "ns" else v / div
    return ours


# ----------------------------------------------------------------------------- direct timing


def _import_bench():
    if ROOT not in sys.path:  # the asv suites are the package ``benchmarks`` of the project root
        sys.path.insert(0, ROOT)
    from benchmarks import bench_core  # noqa: E402
    return bench_core


def _import_ref_suite():
    _import_bench()
    from benchmarks import bench_reference_workloads  # noqa: E402
    return bench_reference_workloads


def timed_readonly(stmt, globals_, repeat=REPEAT, min_time=0.02):
    """Median ns per execution of ``stmt`` (timeit; loop sized to >= min_time per repeat)."""
    t = timeit.Timer(stmt, globals=globals_)
    number = 1
    while True:
        if t.timeit(number) >= min_time:
            break
        number *= 2 if number < 8 else 4
    return statistics.median(t.repeat(repeat, number)) / number * 1e9


def timed_stateful(setup, call, repeat=REPEAT, per=1):
    """Median ns of ``call(state)`` over ``repeat`` fresh states from ``setup()``, divided by ``per``."""
    samples = []
    timer = timeit.default_timer
    for _ in range(repeat):
        state = setup()
        gcold = gc.isenabled()
        gc.disable()
        try:
            t0 = timer()
            call(state)
            samples.append(timer() - t0)
        finally:
            if gcold:
                gc.enable()
    return statistics.median(samples) / per * 1e9


def measure_direct(memory=True, log=print):
    bc = _import_bench()
    from thermogram import Delta, DeltaBatch
    ours = {}

    def note(label, v):
        ours[label] = v
        log(f"  {label:<42} {v:>14,.1f}", file=sys.stderr)

    # deltas and hashes
    for s in (1, 64):
        v = bc.signal_vector(s)
        g = {"create": Delta.create, "v": v}
        note(f"delta_create signals={s}", timed_readonly("create('sensor.temperature', v, 'src')", g))
        if s == 1:
            note("delta_create+hash signals=1",
                 timed_readonly("create('sensor.temperature', v, 'src').compute_hash()", g))
        d = Delta.create("sensor.temperature", v, "src")
        note(f"hash_verify signals={s}", timed_readonly("f()", {"f": d.verify_hash}))
        note(f"compute_hash signals={s}", timed_readonly("f()", {"f": d.compute_hash}))
    rw = _import_ref_suite()
    note("delta_create, reference workload",
         timed_readonly("create('test_key', v, 'source')", {"create": Delta.create, "v": rw.one_signal(100)}))
    cv = bc.ChainVerify()
    cv.setup(1000)
    note("chain verify, per record (1001)", timed_readonly("f()", {"f": cv.t.verify}) / 1001)
    for n in (10, 100, 1000, 10000):
        note(f"apply_delta pending={n}, reference workload",
             timed_stateful(lambda n=n: rw.apply_delta_capsule(n), lambda s: s[0].apply_delta(s[1]),
                            repeat=25 if n < 10000 else 9))

    # apply
    for n in (10, 100, 1000, 10000):
        def setup(n=n):
            o = bc.ApplyDelta()
            o.setup(n)
            return o
        note(f"apply_delta pending={n}",
             timed_stateful(setup, lambda o: o.t.apply_delta(o.delta), repeat=25))

    def stream_setup():
        o = bc.ApplyDeltaStream()
        o.setup()
        return o
    note("apply_delta_stream, per delta (10k)",
         timed_stateful(stream_setup, lambda o: o.time_apply_delta_stream(), repeat=5, per=10000))
    for cap, label in (("fresh", "apply_batch 10k fresh, per delta"),
                       ("known_keys", "apply_batch 10k known keys, per delta")):
        def setup(cap=cap):
            o = bc.ApplyBatch()
            o.setup(cap)
            return o
        note(label, timed_stateful(setup, lambda o: o.t.apply_batch(o.batch), per=10000))
    fa = bc.BatchFromArrays()
    fa.setup()
    note("DeltaBatch.from_arrays 10k, per delta",
         timed_readonly("f(k, v, types='update')", {"f": DeltaBatch.from_arrays, "k": fa.keys,
                                                   "v": fa.values}) / 10000)

    # reads
    capsules = {}
    for size in (10, 1000, 100_000):
        for kind in bc.READ_KINDS:
            variant, key = bc.read_target(size, kind)
            t = capsules.get((size, variant))
            if t is None:
                t = capsules[(size, variant)] = bc.read_capsule(size, variant)
            t.read(key)
            note(f"read {kind} @{size}", timed_readonly("read(key)", {"read": t.read, "key": key}))
        capsules.clear()

    # layer maintenance
    bc.spread_capsule(100).apply_decay()
    for n in (1000, 100_000):
        # repeated decays of one capsule, as the reference's criterion loop (the kernel is
        # branch-free: its cost does not depend on the strengths; see bench_core.ApplyDecay)
        t = bc.spread_capsule(n)
        t.apply_decay()
        note(f"apply_decay {n}", timed_readonly("f()", {"f": t.apply_decay}))
        del t
    for n in (1000, 100_000):
        o = rw.ApplyDecayAllHot()
        o.setup(n)
        note(f"apply_decay {n}, reference workload (all hot)", timed_readonly("f()", {"f": o.t.apply_decay}))
        del o
    rw.transitions_capsule(100).run_thermal_transitions()
    note("run_thermal_transitions 100000, reference workload",
         timed_stateful(lambda: rw.transitions_capsule(100_000), lambda t: t.run_thermal_transitions()))
    note("apply_decay 100000, first call on a fresh capsule",
         timed_stateful(lambda: bc.spread_capsule(100_000), lambda t: t.apply_decay()))
    tt = bc.ThermalTransitions()
    note("run_thermal_transitions 100000",
         timed_stateful(lambda: (tt.setup(100_000), tt)[1], lambda o: o.t.run_thermal_transitions()))
    from benchmarks import common
    common._MEMO.clear()

    # consolidation
    for n in (10, 100, 1000, 10000):
        def setup(n=n):
            o = bc.Consolidate()
            o.setup(n)
            return o
        note(f"consolidate {n}", timed_stateful(setup, lambda o: o.t.consolidate(), repeat=15))

    # plasticity
    cur, new = bc.plasticity_inputs(1_000_000)
    for p, make in bc.POLICY_RULES.items():
        rule = make()
        rule.apply_update_array(cur[:10], new[:10], 3600.0)
        note(f"plasticity {p}, per element (1M)",
             timed_readonly("f(c, n, 3600.0)", {"f": rule.apply_update_array, "c": cur, "n": new},
                           min_time=0.05) / 1_000_000)
        from thermogram import Signal
        note(f"plasticity {p}, scalar call",  # the crate's arguments (plasticity_apply_update)
             timed_readonly("f(c, n, 100.0)", {"f": rule.apply_update, "c": Signal.positive(128),
                                              "n": Signal.positive(204)}))
    del cur, new

    # persistence
    from benchmarks import bench_persistence as bp
    from thermogram import Thermogram
    for n in CODEC_SIZES:
        t = bp.consolidated_capsule(n)
        data = t.to_bytes("v2")
        Thermogram.from_bytes(data)
        note(f"codec encode v2 {n}", timed_readonly("f('v2')", {"f": t.to_bytes}))
        note(f"codec decode v2 {n}", timed_readonly("f(d, verify=False)", {"f": Thermogram.from_bytes, "d": data}))
        note(f"codec decode+verify v2 {n}", timed_readonly("f(d)", {"f": Thermogram.from_bytes, "d": data}))
        note(f"codec v2 bytes/entry {n}", len(data) / n)
        del t, data
    samples = []
    for _ in range(5):
        j = bp.JournalAppend()
        j.setup("batch")
        try:
            t0 = timeit.default_timer()
            j.time_append_20k("batch")
            samples.append(timeit.default_timer() - t0)
        finally:
            j.teardown("batch")
    note("journal append (fsync batch), per record", statistics.median(samples) / 20_000 * 1e9)
    measure_journal_stream(note)
    measure_snn(note)

    if memory:
        log("  (memory: building 1,000,000 x 64 in a subprocess...)", file=sys.stderr)
        out = subprocess.run([sys.executable, os.path.abspath(__file__), "--memory-probe"],
                             check=True, capture_output=True, text=True).stdout
        mem = json.loads(out.strip().splitlines()[-1])
        note("memory 1M x 64, resident bytes/entry", mem["resident"])
        note("memory 1M x 64, peak bytes/entry", mem["peak"])
    for alias, label in ALIASES.items():
        if label in ours:
            ours[alias] = ours[label]
    return ours


def measure_journal_stream(note, repeat=7):
    """The two ``apply_delta_stream prebuilt`` rows (bench_persistence.ApplyDeltaStreamFile):
    in memory and file-backed, measured in alternation (a fresh capsule each time), so the
    ratio of their medians is not skewed by the machine's load drifting between them."""
    from benchmarks import bench_persistence as bp
    samples = {"memory": [], "never": []}
    timer = timeit.default_timer
    for _ in range(repeat):
        for where in samples:
            o = bp.ApplyDeltaStreamFile()
            o.setup(where)
            gcold = gc.isenabled()
            gc.disable()
            try:
                t0 = timer()
                o.time_apply_delta_stream(where)
                samples[where].append(timer() - t0)
            finally:
                if gcold:
                    gc.enable()
                o.teardown(where)
    n = bp.ApplyDeltaStreamFile.N
    note("apply_delta_stream prebuilt in-memory, per delta (10k)", statistics.median(samples["memory"]) / n * 1e9)
    note("apply_delta_stream file-backed fsync=never, per delta (10k)",
         statistics.median(samples["never"]) / n * 1e9)


def measure_snn(note):
    """The ``snn process`` rows on the crate's ``snn_tick`` workload (the builders of
    ``benchmarks/common.py``, as the asv classes ``SNNTick`` and ``SNNTickBatch64``): one
    network per size, ``process`` of the input timed repeatedly on it, then ``process_batch``
    of ``SNN_BATCH_ROWS`` copies of the input per call, per tick."""
    from benchmarks import common
    from thermogram.neuromod import NeuromodState
    nm = NeuromodState.baseline()
    for n in common.SNN_NEURONS:
        snn = common.make_snn(n)
        x = common.reference_input()
        X = common.reference_input(SNN_BATCH_ROWS)
        snn.process(x, nm)
        snn.process_batch(X, nm)
        note(f"snn process {n}x2048", timed_readonly("f(x, nm)", {"f": snn.process, "x": x, "nm": nm}))
        note(f"snn process_batch {n}x2048, per tick",
             timed_readonly("f(X, nm)", {"f": snn.process_batch, "X": X, "nm": nm}) / SNN_BATCH_ROWS)


def memory_probe():
    """Run in a fresh process: resident and peak bytes/entry of 1M x 64 (printed as JSON)."""
    import resource
    bc = _import_bench()
    warm = bc.consolidated_capsule(10, bc.MEMORY_SIGNALS)
    del warm
    gc.collect()
    before = bc.resident_bytes()
    t = bc.build_memory_capsule()
    gc.collect()
    after = bc.resident_bytes()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    n = t.total_entries()
    print(json.dumps({"resident": (after - before) / n, "peak": (peak - before) / n,
                      "entries": n, "rss_before": before, "rss_after": after, "peak_rss": peak}))


# ----------------------------------------------------------------------------- report


def fmt(v, unit="ns"):
    if v is None:
        return "n/a"
    return f"{v:,.1f}"


def report(ours, ref, source):
    print(f"# ours: {source}")
    print("# ratio = reference / ours  (> 1: ours faster, or for memory: ours smaller)")
    print()
    head = f"| {'workload':<42} | {'ref n':>7} | {'reference':>14} | {'ours':>14} | {'unit':<4} | {'ratio':>8} |"
    print(head)
    print("|" + "|".join("-" * (len(c)) for c in head.strip("|").split("|")) + "|")
    rows = {}
    for label, refkey, _b, _p, _d, unit in ROWS:
        r = ref.get(refkey) if refkey else None
        o = ours.get(label)
        ratio = (r / o) if (r is not None and o) else None
        rows[label] = (r, o, ratio)
        n = f"{refkey[1]:,}" if refkey else ""
        u = "ns" if unit == "ns" else "B"
        print(f"| {label:<42} | {n:>7} | {fmt(r):>14} | {fmt(o):>14} | {u:<4} | "
              f"{(f'{ratio:,.2f}x' if ratio is not None else '-'):>8} |")
    unmatched = sorted(k for k in ref if k not in {rk for _l, rk, *_ in ROWS if rk})
    if unmatched:
        print()
        print("# reference rows with no counterpart here: "
              + ", ".join(f"{w} n={n}" for w, n in unmatched))

    print()
    print(f"| {'target':<46} | {'measured':>24} | {'result':<6} |")
    print(f"|{'-' * 48}|{'-' * 26}|{'-' * 8}|")
    results = []
    for desc, label, kind, thr in TARGETS:
        if kind == "all_below_ns":
            vals = [(lab, v[1]) for lab, v in rows.items() if lab.startswith(label) and v[1] is not None]
            if not vals:
                meas, ok = "n/a", None
            else:
                worst = max(vals, key=lambda x: x[1])
                meas = f"max {worst[1]:,.0f} ns ({worst[0][5:]})"
                ok = worst[1] < thr
        elif kind == "max_x_row":
            base_label, factor = thr
            o, base = rows.get(label, (None, None, None))[1], rows.get(base_label, (None, None, None))[1]
            meas = "n/a" if not (o and base) else f"{o / base:,.2f}x ({o:,.0f} / {base:,.0f} ns)"
            ok = None if not (o and base) else o <= factor * base
        else:
            r, o, ratio = rows.get(label, (None, None, None))
            if kind == "ratio":
                unit = "B" if "bytes" in label else "ns"
                meas = "n/a" if ratio is None else f"{ratio:,.2f}x ({o:,.0f} {unit})"
                ok = None if ratio is None else ratio >= thr
            else:
                unit = "B" if "bytes" in label else "ns"
                meas = "n/a" if o is None else f"{o:,.1f} {unit}"
                ok = None if o is None else o <= thr
        res = "n/a" if ok is None else ("PASS" if ok else "FAIL")
        results.append((desc, res))
        print(f"| {desc:<46} | {meas:>24} | {res:<6} |")
    return results


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--direct", action="store_true",
                    help="measure here with timeit instead of reading asv results")
    ap.add_argument("--reference", default=None,
                    help="the reference harness's markdown table from this machine and run "
                         "(harness bench, optionally followed by harness extra; compare.sh writes it)")
    ap.add_argument("--results", default=DEFAULT_RESULTS, help="asv results_dir")
    ap.add_argument("--machine", default=None, help="asv machine name (default: newest)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="--direct: measure this many times and combine per row (see --combine)")
    ap.add_argument("--combine", choices=("min", "median"), default="min",
                    help="--direct --rounds N: keep the best round (default; each round is already "
                         "a median of 9, and on a shared machine the best round is the least "
                         "disturbed) or the median of the rounds (as the reference's 3 runs)")
    ap.add_argument("--no-memory", action="store_true",
                    help="--direct: skip the 1,000,000 x 64 memory build")
    ap.add_argument("--json", default=None, help="also write our numbers to this JSON file")
    ap.add_argument("--no-extra", action="store_true",
                    help="do not run the harness's extra rows when the reference table lacks them")
    ap.add_argument("--memory-probe", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.memory_probe:
        memory_probe()
        return 0
    if args.reference is None:
        ap.error("--reference is required: the reference harness's table from this machine and run "
                 "(bash ../shared/peer/compare.sh writes it; stored numbers are not a denominator)")
    if not args.no_extra:
        ensure_extra_rows(args.reference)
    ref = parse_reference(args.reference)
    if args.direct:
        runs = []
        for i in range(max(1, args.rounds)):
            if args.rounds > 1:
                print(f"# round {i + 1}/{args.rounds}", file=sys.stderr)
            runs.append(measure_direct(memory=not args.no_memory and i == 0))
        comb = min if args.combine == "min" else statistics.median
        ours = {k: comb([r[k] for r in runs if k in r]) for k in runs[0]}
        import platform
        source = (f"--direct timeit, median of {REPEAT} repeats"
                  + (f", {args.combine} of {len(runs)} rounds" if len(runs) > 1 else "")
                  + f", python {platform.python_version()}, {platform.machine()}, "
                  f"{os.cpu_count()} cpus, load average {os.getloadavg()[0]:.2f}")
    else:
        path = latest_asv_results(args.results, args.machine)
        ours = ours_from_asv(path)
        source = f"asv results {os.path.relpath(path, ROOT)}"
    results = report(ours, ref, source)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"source": source, "ours": ours, "targets": dict(results)}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
