"""Colonies: many capsules acting as one memory.

A :class:`ThermogramColony` spreads keys over member capsules
(:class:`~thermogram.core.Thermogram`) by consistent hashing. Each key has a
*locality key* (by default its prefix before the first ``_``, so
``layer3_w_17`` and ``layer3_w_18`` stay together); XXH3-64 of the locality
key falls in exactly one hash range, and each range belongs to one member.
Routing is a binary search over a handful of range starts: O(1) per key and
independent of how many keys the colony holds.

The colony grows and shrinks in :meth:`~ThermogramColony.consolidate`:
members over ``split_threshold`` keys split their hash range in two at the
``balance_target`` quantile of their keys' hashes (the median by default),
members under ``merge_threshold`` merge, and overloaded members hand a hash
range to underloaded ones. Every move is recorded in the chains of both
members (an ``import`` record on the receiving side; a delete batch folded by
a consolidation that neither promotes, demotes nor prunes on the giving side),
so each member can still be replayed and verified on its own.

Members consolidate in parallel: on threads (the kernels release the GIL),
on any ``concurrent.futures`` executor, or on a Dask cluster when given a
``dask.distributed.Client``; the last two ship members as ``.thermo`` bytes
to :func:`consolidate_member`, a pure function, so every path reaches the
same state digests.

A colony is saved as a folder: one ``.thermo`` per member, named by the
SHA-256 of its bytes, plus a ``colony.json`` manifest written atomically last.
A crash at any point of a save leaves the previous manifest and every file it
names, i.e. the previous consistent colony.

Modules
-------
config
    :class:`ColonyConfig` and the result records.
routing
    Locality keys, routing hashes, the hash ring, splitting batches by member.
parallel
    Consolidating members on threads, executors or Dask.
topology
    Splits, merges and rebalancing: moving keys between members.
persist
    Folder save and open, the manifest, the colony's state digest.
display
    HTML display for notebooks.
colony
    The :class:`ThermogramColony` class, orchestrating the above.
distributed
    Members resident on Dask workers (:meth:`ThermogramColony.distributed`).
"""
from __future__ import annotations

from .colony import MemberRef, ThermogramColony  # noqa: F401  (MemberRef: a type alias, kept importable)
from .config import ColonyConfig, ColonyConsolidationResult, ColonyMetadata, ColonyStats
from .parallel import consolidate_member
from .persist import MANIFEST_NAME
from .routing import HASH_SPACE, locality_hash, prefix_locality  # noqa: F401  (HASH_SPACE: kept importable)

__all__ = ["ColonyConfig", "ColonyConsolidationResult", "ColonyStats", "ColonyMetadata",
           "ThermogramColony", "consolidate_member", "prefix_locality", "locality_hash",
           "MANIFEST_NAME"]
