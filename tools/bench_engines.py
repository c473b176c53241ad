"""Dask actors against Ray actors for resident colony members: one workload, both engines.

Each of ``--members`` members is a stateful actor holding a file-backed capsule
(:class:`thermogram.colony.distributed.MemberActor`, unchanged: ``Thermogram.open(path,
fsync=...)`` in its own folder). Keys are routed with the colony's ring
(:mod:`thermogram.colony.routing`) and cut into per-member messages with the Dask
backend's :func:`~thermogram.colony.distributed.encode_parts` (each message is the
sub-batch's canonical record bytes), one message per member per batch on both engines.

Measured per round, in a fresh process per engine and round (engines alternate:
Dask, Ray, Dask, Ray, ...):

* fixed cost: cluster start (``LocalCluster`` + ``Client`` / ``ray.init``), actor
  creation (every actor answered one call), the first small batch (kernel loading
  in each actor process);
* ingest: ``--deltas`` routed update deltas in batches of ``--batch`` (route, encode,
  send, wait for every member's answer, as ``DistributedColony.apply_batch``);
* one consolidation round (every member consolidates in place; four counts come back);
* a read round trip (one key, ``--reads`` times, per read);
* restart: the process holding member 0 is killed with SIGKILL; the time until a
  call to member 0 succeeds again, with the same state digest. Ray: the actor is
  declared with ``max_restarts=-1, max_task_retries=-1``, Ray starts it again and
  its constructor re-opens the capsule from snapshot and journal. Dask: what the
  project does (``DistributedColony._recreate``): the failed call is seen as a lost
  worker and every member of that worker is started again on the live worker with
  the fewest members (constructor re-opens its files);
* the same capsule re-opened in the measuring process after the cluster is gone
  (the reopen cost both engines pay inside their restart time).

Two worker processes on Dask (``n_workers=2, threads_per_worker=1``); Ray is started
with ``num_cpus=2`` and, as Ray does, runs every actor in its own process.

Ray is not a dependency of the project: run this with an interpreter that has both
engines and the project installed, e.g.::

    python -m venv /tmp/rayvenv
    /tmp/rayvenv/bin/pip install ray "dask[distributed]"
    /tmp/rayvenv/bin/pip install -e .
    /tmp/rayvenv/bin/python tools/bench_engines.py                 # 3 rounds each, 1M deltas
    /tmp/rayvenv/bin/python tools/bench_engines.py --deltas 100000 --rounds 1   # quick

``--engines dask`` measures Dask alone (the project's venv is enough for that).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
T0 = 1_700_000_000_000_000_000
"""The colony time of the first call (ns); each later call adds one."""
ENGINES = ("dask", "ray", "dask-grouped")
"""``dask-grouped``: Dask, but the parts of the members of one worker travel as one message
(``MemberActor.apply_parts``, what ``DistributedColony.apply_batch`` sends); not in the default run."""
_MODULE = {"dask": "distributed", "ray": "ray", "dask-grouped": "distributed"}
METRICS: list[tuple[str, str, str]] = [
    # (key, label, unit) in the order of the table
    ("cluster_start_s", "cluster start", "s"),
    ("actor_create_s", "actor creation (all answered)", "s"),
    ("warmup_s", "first batch (kernel load per process)", "s"),
    ("ingest_s", "ingest", "s"),
    ("ingest_rate", "ingest rate", "deltas/s"),
    ("consolidate_s", "consolidation round", "ms"),
    ("read_ms", "read round trip (one key)", "ms"),
    ("restart_s", "restart: kill -> first good call to member 0", "s"),
    ("restart_all_s", "restart: kill -> every lost member answers", "s"),
    ("members_lost", "members lost with the killed process", ""),
    ("reopen_s", "reopen of member 0 in process (common part)", "s"),
    ("processes", "processes (cluster, after ingest)", ""),
    ("rss_mb", "resident memory of those (after ingest)", "MB"),
]


# ----------------------------------------------------------------------------- one round
def _workload(deltas: int, batch: int, members: int) -> tuple[list[Any], Any, list[str], float]:
    """The batches (keys ``g{i // 64}_w{i}`` shuffled, 8 float values), the ring and
    the member ids; plus the seconds routing and encoding every batch takes here."""
    import numpy as np

    from thermogram import DeltaBatch, Signal
    from thermogram.colony import routing
    from thermogram.colony.distributed import encode_parts

    rng = np.random.default_rng(0)
    order = rng.permutation(deltas)
    keys = [f"g{i // 64}_w{i}" for i in order]
    vals = rng.uniform(-1, 1, (deltas, 8)).astype(np.float32)
    batches = [DeltaBatch.from_arrays(keys[i:i + batch], vals[i:i + batch], Signal.positive(200), "update",
                                      clock=lambda: T0, id=f"ingest-{i}") for i in range(0, deltas, batch)]
    bounds, owners = routing.ring_arrays(*routing.even_ring(members))
    ids = [f"bench-m{n}" for n in range(members)]
    t = time.perf_counter()
    for b in batches:
        encode_parts(b, routing.assign(routing.key_hashes(b.keys, None), bounds, owners), ids)
    return batches, (bounds, owners), ids, time.perf_counter() - t


def _spec(mid: str, members: int) -> dict[str, Any]:
    from thermogram import ConsolidationPolicy, PlasticityRule
    from thermogram.colony.distributed import fixed_topology_config
    return {"name": mid, "id": mid, "rule": PlasticityRule.stdp_like(),
            "thermal_config": fixed_topology_config(members).thermal_config,
            "policy": ConsolidationPolicy.manual_only(), "limits": None}


def _cluster_footprint(pid: int) -> tuple[int, float]:
    """Processes below ``pid`` and their resident memory (MB); (0, 0) without psutil."""
    try:
        import psutil
    except ImportError:
        return 0, 0.0
    procs = psutil.Process(pid).children(recursive=True)
    rss = 0
    for p in procs:
        try:
            rss += p.memory_info().rss
        except psutil.Error:
            pass
    return len(procs), rss / 1e6


class _Dask:
    """Members as Dask actors, placed round-robin on the workers (as the project does)."""

    name = "dask"

    def start(self, workers: int) -> None:
        from distributed import Client, LocalCluster
        self.cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                    dashboard_address=None)
        self.client = Client(self.cluster)
        self.client.wait_for_workers(workers)

    def _workers(self) -> list[str]:
        return sorted(self.client.scheduler_info()["workers"])

    def create(self, paths: Sequence[str], specs: Sequence[dict[str, Any]], fsync: str) -> None:
        from thermogram.colony.distributed import MemberActor
        ws = self._workers()
        self.where = [ws[i % len(ws)] for i in range(len(paths))]
        self.args = [(p, s, fsync) for p, s in zip(paths, specs)]
        futs = [self.client.submit(MemberActor, p, s, fsync, T0, actor=True, workers=[w],
                                   allow_other_workers=False) for (p, s, fsync), w in zip(self.args, self.where)]
        self.futures = futs
        self.actors = [f.result() for f in futs]

    def call(self, i: int, method: str, *args: Any) -> Any:
        return getattr(self.actors[i], method)(*args)

    def wait(self, futs: Sequence[Any], timeout: float = 120.0) -> list[Any]:
        return [f.result(timeout=timeout) for f in futs]

    def restart(self, victim: int, pid: int) -> tuple[float, float, int]:
        """Kill the worker of member ``victim``; re-create its members as the project does."""
        from thermogram.colony.distributed import MemberActor, _is_lost
        old = self.where[victim]
        lost = [i for i, w in enumerate(self.where) if w == old]
        os.kill(pid, signal.SIGKILL)
        t0 = time.perf_counter()
        try:  # the call that finds the worker gone
            self.actors[victim].info().result(timeout=60)
            raise RuntimeError("member 0 answered after its worker was killed")
        except Exception as e:
            if not _is_lost(e):
                raise
        first = 0.0
        for n, i in enumerate([victim] + [j for j in lost if j != victim]):
            live = [w for w in self._workers() if w != old]
            load = {w: sum(1 for j, x in enumerate(self.where) if x == w and j not in lost) for w in live}
            target = min(live, key=lambda w: (load[w], w))
            p, s, fsync = self.args[i]
            self.futures[i].release()
            fut = self.client.submit(MemberActor, p, dict(s, must_exist=True), fsync, T0, actor=True,
                                     workers=[target], allow_other_workers=False)
            self.futures[i], self.actors[i], self.where[i] = fut, fut.result(timeout=60), target
            self.actors[i].info().result(timeout=60)
            if n == 0:
                first = time.perf_counter() - t0
        return first, time.perf_counter() - t0, len(lost)

    def stop(self) -> None:
        for a in self.actors:
            try:
                a.close().result(timeout=30)
            except Exception:  # noqa: BLE001, S110 - a member already gone
                pass
        self.client.close()
        self.cluster.close()


class _Ray:
    """Members as Ray actors (one process each), restarted by Ray (``max_restarts``)."""

    name = "ray"

    def start(self, workers: int) -> None:
        import logging

        import ray
        self.ray = ray
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR,
                 object_store_memory=512 * 1024 * 1024)

    def create(self, paths: Sequence[str], specs: Sequence[dict[str, Any]], fsync: str) -> None:
        from thermogram.colony.distributed import MemberActor
        cls = self.ray.remote(max_restarts=-1, max_task_retries=-1)(MemberActor)
        self.actors = [cls.remote(p, s, fsync, T0) for p, s in zip(paths, specs)]
        self.ray.get([a.info.remote() for a in self.actors])

    def call(self, i: int, method: str, *args: Any) -> Any:
        return getattr(self.actors[i], method).remote(*args)

    def wait(self, futs: Sequence[Any], timeout: float = 120.0) -> list[Any]:
        return self.ray.get(list(futs), timeout=timeout)

    def restart(self, victim: int, pid: int) -> tuple[float, float, int]:
        """Kill member ``victim``'s actor process; Ray starts the actor again."""
        os.kill(pid, signal.SIGKILL)
        t0 = time.perf_counter()
        self.ray.get(self.actors[victim].info.remote(), timeout=120)
        t = time.perf_counter() - t0
        return t, t, 1

    def stop(self) -> None:
        try:
            self.ray.get([a.close.remote() for a in self.actors], timeout=30)
        except Exception:  # noqa: BLE001, S110 - a member already gone
            pass
        self.ray.shutdown()


def run_round(engine: str, args: argparse.Namespace) -> dict[str, Any]:
    """One engine, one round, in this process: the metrics of :data:`METRICS`."""
    from thermogram import DeltaBatch, Signal, Thermogram
    from thermogram.colony import routing
    from thermogram.colony.distributed import encode_parts

    batches, (bounds, owners), ids, encode_s = _workload(args.deltas, args.batch, args.members)
    folder = tempfile.mkdtemp(prefix=f"bench-engines-{engine}-")
    paths = []
    for mid in ids:  # each member in its own folder
        os.makedirs(os.path.join(folder, mid))
        paths.append(os.path.join(folder, mid, f"{mid}.thermo"))
    eng = _Ray() if engine == "ray" else _Dask()
    out: dict[str, Any] = {"engine": engine, "encode_s": encode_s}
    now = T0

    def send(b: DeltaBatch, t: int) -> None:
        idx = routing.assign(routing.key_hashes(b.keys, None), bounds, owners)
        parts = encode_parts(b, idx, ids)
        if engine != "dask-grouped":  # one message per member
            eng.wait([eng.call(i, "apply_batch", data, t) for i, data, _, _ in parts])
            return
        by_worker: dict[str, list[tuple[int, bytes]]] = {}
        for i, data, _, _ in parts:  # one message per worker, as DistributedColony.apply_batch
            by_worker.setdefault(eng.where[i], []).append((i, data))
        answers = eng.wait([eng.call(g[0][0], "apply_parts", [(ids[i], d) for i, d in g], t)
                            for g in by_worker.values()])
        if any(status != "ok" for a in answers for status, _ in a):
            raise RuntimeError(f"apply_parts: {answers}")

    try:
        t = time.perf_counter()
        eng.start(args.workers)
        out["cluster_start_s"] = time.perf_counter() - t
        t = time.perf_counter()
        eng.create(paths, [_spec(m, args.members) for m in ids], args.fsync)
        out["actor_create_s"] = time.perf_counter() - t

        import numpy as np
        warm = DeltaBatch.from_arrays([f"warm{i}_k" for i in range(256)], np.zeros((256, 8), np.float32),
                                      Signal.positive(200), "update", clock=lambda: T0, id="warmup")
        t = time.perf_counter()
        now += 1
        send(warm, now)
        out["warmup_s"] = time.perf_counter() - t

        t = time.perf_counter()
        for b in batches:
            now += 1
            send(b, now)
        out["ingest_s"] = time.perf_counter() - t
        out["ingest_rate"] = args.deltas / out["ingest_s"]
        out["processes"], out["rss_mb"] = _cluster_footprint(os.getpid())

        now += 1
        t = time.perf_counter()
        res = eng.wait([eng.call(i, "consolidate", now) for i in range(len(ids))])
        out["consolidate_s"] = (time.perf_counter() - t) * 1e3
        out["consolidated_deltas"] = int(sum(r[3] for r in res))

        key = batches[0].keys[0]
        owner = routing.route_key(key, None, [int(x) for x in bounds], [int(x) for x in owners])
        got = eng.wait([eng.call(owner, "read", key, now)])[0]
        if got is None:
            raise RuntimeError(f"{key!r} not found on member {owner}")
        t = time.perf_counter()
        for _ in range(args.reads):
            eng.wait([eng.call(owner, "read", key, now)])
        out["read_ms"] = (time.perf_counter() - t) / args.reads * 1e3

        before = eng.wait([eng.call(i, "info") for i in range(len(ids))])
        out["restart_s"], out["restart_all_s"], out["members_lost"] = eng.restart(0, before[0]["pid"])
        after = eng.wait([eng.call(i, "info") for i in range(len(ids))])
        out["digests_equal_after_restart"] = [a["digest"] for a in after] == [b["digest"] for b in before]
        out["restarted_pid_changed"] = after[0]["pid"] != before[0]["pid"] and bool(after[0]["recovered"])
    finally:
        try:
            eng.stop()
        except Exception as e:  # noqa: BLE001 - report the round's own error, not the teardown's
            print(f"teardown: {e!r}", file=sys.stderr)
    try:
        t = time.perf_counter()
        Thermogram.open(paths[0], fsync=args.fsync).close()
        out["reopen_s"] = time.perf_counter() - t
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return out


# ----------------------------------------------------------------------------- driver
def _missing(engine: str) -> bool:
    return importlib.util.find_spec(_MODULE[engine]) is None


def _fmt(v: float, unit: str) -> str:
    if unit == "deltas/s":
        return f"{v:,.0f}"
    if unit in ("", "MB"):
        return f"{v:,.0f}"
    return f"{v:.3f}" if v < 10 else f"{v:.2f}"


def table(results: dict[str, list[dict[str, Any]]]) -> str:
    """The markdown table: min / median / max of each metric per engine."""
    engines = [e for e in ENGINES if results.get(e)]
    head = "| metric | " + " | ".join(f"{e} min / median / max" for e in engines) + " |"
    lines = [head, "|---|" + "---|" * len(engines)]
    for key, label, unit in METRICS:
        cells = []
        for e in engines:
            xs = [r[key] for r in results[e] if key in r]
            if not xs:
                cells.append("–")
                continue
            cells.append(" / ".join(_fmt(x, unit) for x in (min(xs), statistics.median(xs), max(xs))))
        lines.append(f"| {label}{f' ({unit})' if unit else ''} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] = ()) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Ray is imported only when it is measured; a missing engine is named.")
    p.add_argument("--engines", default="dask,ray", help="comma-separated, of: dask, ray, dask-grouped (default dask,ray)")
    p.add_argument("--rounds", type=int, default=3, help="rounds per engine, alternating (default 3)")
    p.add_argument("--members", type=int, default=4, help="members, one actor each (default 4)")
    p.add_argument("--deltas", type=int, default=1_000_000, help="deltas ingested (default 1,000,000)")
    p.add_argument("--batch", type=int, default=10_000, help="rows per batch (default 10,000)")
    p.add_argument("--reads", type=int, default=200, help="single-key reads timed (default 200)")
    p.add_argument("--workers", type=int, default=2, help="worker processes / Ray CPUs (default 2)")
    p.add_argument("--fsync", choices=("always", "never"), default="always", help="journal policy (default always)")
    p.add_argument("--json", metavar="PATH", help="also write every round's numbers to PATH")
    p.add_argument("--one", choices=ENGINES, help=argparse.SUPPRESS)  # one round in this process
    args = p.parse_args(list(argv) or None)

    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    bad = [e for e in engines if e not in ENGINES]
    if bad:
        p.error(f"unknown engine {bad[0]!r}; choose from {', '.join(ENGINES)}")
    missing = [e for e in engines if _missing(e)]
    if missing:
        print("not installed in this interpreter (" + sys.executable + "): "
              + ", ".join(f"{e} (module {_MODULE[e]!r})" for e in missing)
              + ". Ray is no dependency of thermogram: install the engines in a separate environment "
              "(see this script's docstring), or measure the others with --engines.", file=sys.stderr)
        return 2

    if args.one:
        print("RESULT " + json.dumps(run_round(args.one, args)), flush=True)
        return 0

    passthrough = [f"--{k}={getattr(args, k)}" for k in ("members", "deltas", "batch", "reads", "workers", "fsync")]
    results: dict[str, list[dict[str, Any]]] = {e: [] for e in engines}
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for r in range(args.rounds):
        for e in engines:
            cmd = [sys.executable, os.path.abspath(__file__), "--one", e] + passthrough
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=1800, check=False)
            line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
            if proc.returncode != 0 or not line:
                print(f"round {r + 1} {e}: failed (exit {proc.returncode})\n{proc.stderr[-3000:]}", file=sys.stderr)
                return 1
            res = json.loads(line[-1][7:])
            results[e].append(res)
            print(f"round {r + 1} {e}: ingest {res['ingest_s']:.2f} s, consolidate {res['consolidate_s']:.0f} ms, "
                  f"read {res['read_ms']:.2f} ms, restart {res['restart_s']:.2f} s "
                  f"(digests equal: {res['digests_equal_after_restart']}), start {res['cluster_start_s']:.2f} s "
                  f"+ actors {res['actor_create_s']:.2f} s", flush=True)
    print()
    print(f"{args.members} members, {args.deltas:,} deltas in batches of {args.batch:,}, {args.workers} workers, "
          f"fsync={args.fsync}, {args.rounds} rounds each; routing+encoding alone: "
          + ", ".join(f"{statistics.median(x['encode_s'] for x in results[e]):.2f} s ({e} rounds)" for e in engines))
    print(table(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "results": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
