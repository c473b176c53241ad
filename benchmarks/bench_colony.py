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
