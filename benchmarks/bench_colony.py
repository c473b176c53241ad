"""asv suites for colonies: routing 1,000,000 keys, consolidating a 16-member colony of
1,000,000 entries serially, on threads and on a Dask LocalCluster, and splitting a member.

* ``RouteSuite`` times routing the same 1,000,000 keys (16 members, keys in
  shuffled order) four ways, next to a plain dict lookup of those keys
  (``time_dict_lookup``). Divide by 1,000,000 for the per-key cost.
  ``RouteHotSuite`` does the same for a cache-resident working set (10,000
  keys, each looked up 100 times).
* ``ConsolidateSuite`` (``number = 1``: setup rebuilds the colony before every
  timed call) holds 1,000,000 consolidated entries (62,500 per member, 8 signals
  each) plus 1,000,000 pending updates of the same keys; the timed call folds
  them all. The ``dask`` variant starts a LocalCluster of 2 worker processes
  (1 thread each) in setup, so only the consolidation is timed.
* ``SplitSuite`` times splitting one member of 100,000 keys (50,000 move).
"""
from __future__ import annotations

from thermogram.colony import ThermogramColony

from .common import COLONY_MEMBERS as MEMBERS
from .common import COLONY_N as N
from .common import _MEMO as _memo
from .common import big_colony, colony_keys as keys


class RouteSuite:
    """Route 1,000,000 keys in a 16-member colony (per key: time / 1e6)."""

    timeout = 300

    def setup(self):
        self.keys = keys(shuffled=True)
        if "route" not in _memo:
            plain = {k: i % MEMBERS for i, k in enumerate(keys())}
            cold = ThermogramColony("r", "r", members=MEMBERS, route_cache=0)
            warm = ThermogramColony("r", "r", members=MEMBERS, route_cache=N)
            for k in self.keys:
                warm.route(k)
            _memo["route"] = plain, cold, warm
        self.plain, self.cold, self.warm = _memo["route"]
        self.cold.route_many(self.keys[:10])

    def time_dict_lookup(self):
        """Baseline: a plain dict lookup per key."""
        d = self.plain
        [d[k] for k in self.keys]

    def time_route_many(self):
        """Vectorised: one hashing kernel, one range-assignment kernel."""
        self.cold.route_many(self.keys)

    def time_route_per_key(self):
        """``route(k)`` per key, no cache: XXH3 of the locality key and a bisect."""
        r = self.cold.route
        [r(k) for k in self.keys]

    def time_route_per_key_cached(self):
        """``route(k)`` per key, every key already in the route cache."""
        r = self.warm.route
        [r(k) for k in self.keys]


class RouteHotSuite:
    """Route a hot working set: 10,000 keys looked up 100 times each (per key: time / 1e6)."""

    timeout = 120

    def setup(self):
        base = [f"g{i // 64}_w{i}" for i in range(10_000)]
        self.keys = base * 100
        self.plain = {k: i % MEMBERS for i, k in enumerate(base)}
        self.cold = ThermogramColony("r", "r", members=MEMBERS, route_cache=0)
        self.warm = ThermogramColony("r", "r", members=MEMBERS)
        for k in base:
            self.warm.route(k)
        self.cold.route_many(base[:10])

    def time_dict_lookup(self):
        d = self.plain
        [d[k] for k in self.keys]

    # Docstrings of timed methods are set after them: asv versions a benchmark by the hash
    # of its method's source, so results stay comparable with those of earlier commits.
    time_dict_lookup.__doc__ = "Baseline: a plain dict lookup per key."

    def time_route_many(self):
        self.cold.route_many(self.keys)

    time_route_many.__doc__ = "Vectorised: one hashing kernel, one range-assignment kernel."

    def time_route_per_key(self):
        r = self.cold.route
        [r(k) for k in self.keys]

    time_route_per_key.__doc__ = "``route(k)`` per key, no cache."

    def time_route_per_key_cached(self):
        r = self.warm.route
        [r(k) for k in self.keys]

    time_route_per_key_cached.__doc__ = "``route(k)`` per key, every key already in the route cache."


class ConsolidateSuite:
    """Consolidate a 16-member colony of 1,000,000 entries with 1,000,000 pending updates."""

    params = ["serial", "threads", "dask"]
    param_names = ["executor"]
    number = 1
    repeat = (1, 3, 120.0)
    timeout = 900

    def setup(self, executor):
        self.cluster = self.client = None
        ex = executor
        if executor == "dask":
            try:
                from distributed import Client, LocalCluster
            except ImportError:  # optional extra thermogram[distributed]: skipped without it
                raise NotImplementedError("dask.distributed is not installed") from None
            self.cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                        dashboard_address=None)
            self.client = Client(self.cluster)
            ex = self.client
        self.executor = ex
        self.colony = big_colony()

    def teardown(self, executor):
        if self.client is not None:
            self.client.close()
            self.cluster.close()

    def time_consolidate(self, executor):
        self.colony.consolidate(executor=self.executor)

    time_consolidate.__doc__ = "Fold the 1,000,000 pending updates on the chosen executor."


class SplitSuite:
    """Split one member of 100,000 keys: 50,000 keys move, recorded in both chains."""

    number = 1
    repeat = (1, 5, 60.0)
    timeout = 300

    def setup(self):
        self.colony = big_colony(members=1, n=100_000, pending=False)
        self.colony.config = self.colony.config.replace(max_members=2)

    def time_split(self):
        self.colony.split(0)

    time_split.__doc__ = "Split member 0 into two members."


# ----------------------------------------------------------------------------- distributed members
# Members resident on Dask workers (ThermogramColony.distributed): ingest of routed batches,
# a consolidation round, a read round trip, against the in-process colony. Each suite starts a
# LocalCluster of 2 worker processes (1 thread each) in setup; skipped without dask.distributed.
# THERMOGRAM_BENCH_DIST_N sets the deltas ingested and the entries consolidated (default 1,000,000).

DIST_N = int(__import__("os").environ.get("THERMOGRAM_BENCH_DIST_N", N))
DIST_BATCH = 10_000


def _dist_cluster():
    try:
        from distributed import Client, LocalCluster
    except ImportError:  # optional extra thermogram[distributed]: skipped without it
        raise NotImplementedError("dask.distributed is not installed") from None
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    return cluster, Client(cluster)


def _dist_batches(n=DIST_N):
    """``n`` routed update deltas (keys in shuffled order, 8 signals) in batches of 10,000."""
    from thermogram import DeltaBatch, Signal

    from .common import COLONY_T0, colony_values

    def build():
        ks, vals = keys(n, shuffled=True), colony_values(n)
        return [DeltaBatch.from_arrays(ks[i:i + DIST_BATCH], vals[i:i + DIST_BATCH], Signal.positive(200),
                                       "update", clock=lambda: COLONY_T0, id=f"ingest-{i}")
                for i in range(0, n, DIST_BATCH)]
    return _memo.setdefault(("dist-batches", n), build())


def _dist_colony(kind, client=None):
    """A 16-member colony: in process, or resident on the cluster (``fsync`` from ``kind``)."""
    import tempfile

    from thermogram import ConsolidationPolicy
    from thermogram.colony.distributed import fixed_topology_config

    from .common import StepClock
    kw = dict(members=MEMBERS, clock=StepClock(), policy=ConsolidationPolicy.manual_only())
    if kind in ("in-process", "serial"):
        return ThermogramColony("bench", "bench", config=fixed_topology_config(MEMBERS), executor="serial",
                                **kw), None
    folder = tempfile.mkdtemp(prefix="thermogram-dist-")
    fsync = "never" if kind.endswith("fsync-never") else "always"
    return ThermogramColony.distributed(client, folder, "bench", "bench", fsync=fsync, **kw), folder


class _DistSuite:
    number = 1
    repeat = (1, 3, 120.0)
    timeout = 1800

    def _start(self, kind):
        self.cluster = self.client = self.folder = None
        if kind not in ("in-process", "serial"):
            self.cluster, self.client = _dist_cluster()
        self.colony, self.folder = _dist_colony(kind, self.client)

    def teardown(self, kind):
        import shutil
        if self.client is not None:
            self.colony.close()
            self.client.close()
            self.cluster.close()
        if self.folder:
            shutil.rmtree(self.folder, ignore_errors=True)


class DistributedIngestSuite(_DistSuite):
    """Ingest ``DIST_N`` routed deltas via ``apply_batch`` in batches of 10,000 (16 members)."""

    params = ["in-process", "cluster", "cluster-fsync-never"]
    param_names = ["colony"]

    def setup(self, kind):
        self.batches = _dist_batches()
        self._start(kind)

    def time_ingest(self, kind):
        for b in self.batches:
            self.colony.apply_batch(b)

    time_ingest.__doc__ = "Route and apply every batch (on the cluster: one message per member per batch)."

    def track_wire_bytes_per_delta(self, kind):
        from thermogram.colony import routing
        b = self.batches[0]
        parts = routing.split_batch(b, self.colony.route_many(b.keys), self.colony.member_ids)
        return sum(len(sub.canonical_bytes()) for _, sub in parts) / len(b)

    track_wire_bytes_per_delta.unit = "bytes"
    track_wire_bytes_per_delta.__doc__ = "Payload bytes sent per delta (the sub-batches' record bytes)."


class DistributedConsolidateSuite(_DistSuite):
    """One consolidation round of 16 members holding ``DIST_N`` entries and ``DIST_N`` pending updates."""

    params = ["serial", "cluster"]
    param_names = ["colony"]

    def setup(self, kind):
        from thermogram import DeltaBatch, Signal

        from .common import COLONY_T0, colony_values
        self._start(kind)
        ks = keys(DIST_N)
        self.colony.apply_batch(DeltaBatch.from_arrays(ks, colony_values(DIST_N), Signal.positive(200),
                                                       "update", clock=lambda: COLONY_T0))
        self.colony.consolidate()
        self.colony.apply_batch(DeltaBatch.from_arrays(ks, colony_values(DIST_N, seed=1), Signal.positive(220),
                                                       "update", clock=lambda: COLONY_T0 + 1))

    def time_consolidate(self, kind):
        self.colony.consolidate()

    time_consolidate.__doc__ = "Fold every pending update; on the cluster each member runs in place."


class DistributedReadSuite(_DistSuite):
    """100 single-key reads of a 16-member colony of 10,000 keys (per read: time / 100)."""

    params = ["in-process", "cluster"]
    param_names = ["colony"]
    number = 5

    def setup(self, kind):
        self._start(kind)
        self.colony.apply_batch(_dist_batches(DIST_BATCH)[0])
        self.keys = list(_dist_batches(DIST_BATCH)[0].keys[:100])

    def time_read(self, kind):
        r = self.colony.read
        for k in self.keys:
            r(k)

    time_read.__doc__ = "One round trip to the owning member per read."
