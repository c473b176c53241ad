"""Consolidating members in parallel.

On threads (the kernels release the GIL) members consolidate in place. On any
other ``concurrent.futures`` executor, or on a Dask cluster when given a
``dask.distributed.Client``, members travel as ``.thermo`` bytes to
:func:`consolidate_member`, a pure function, and come back as new capsules;
every path reaches the same state digests. Dask is never imported here: a
client is recognised by its type's module and duck-typed methods.
"""
from __future__ import annotations

import os
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any, Callable, List, Optional, Sequence, Tuple

from ..core import Thermogram
from ..delta import Clock
from ..errors import FormatError, ValidationError

__all__ = ["consolidate_member"]

Counts = Tuple[int, int, int, int]
"""``(promoted, demoted, pruned, deltas_processed)`` of one member's consolidation."""


class _FixedClock:
    """A clock that always reads ``now`` (picklable, for workers)."""

    __slots__ = ("now",)

    def __init__(self, now: int):
        self.now = int(now)

    def __call__(self) -> int:
        return self.now


def _consolidate_report(data: bytes, now_ns: int) -> Tuple[bytes, Counts]:
    t = Thermogram.from_bytes(data, clock=_FixedClock(now_ns), verify=False)
    r = t.consolidate()
    return t.to_bytes(), (r.promoted, r.demoted, r.entries_pruned + r.transition_pruned, r.deltas_processed)


def consolidate_member(data: bytes, now_ns: int) -> bytes:
    """Consolidate one capsule given as ``.thermo`` bytes, at the fixed time ``now_ns``.

    A pure function (the same bytes and time give the same bytes back), run
    on Dask workers or other processes by :meth:`ThermogramColony.consolidate`.

    Parameters
    ----------
    data : bytes
        The capsule, as :meth:`Thermogram.to_bytes` writes it.
    now_ns : int
        The time every record of the consolidation carries.

    Returns
    -------
    bytes
        The consolidated capsule.
    """
    return _consolidate_report(data, now_ns)[0]


def _is_dask_client(obj: Any) -> bool:
    """Whether ``obj`` looks like a ``distributed.Client`` (without importing distributed)."""
    mod = type(obj).__module__ or ""
    return mod.startswith("distributed") and hasattr(obj, "scatter") and hasattr(obj, "gather")


def consolidate_here(m: Thermogram) -> Counts:
    """Consolidate one member in place."""
    r = m.consolidate()
    return r.promoted, r.demoted, r.entries_pruned + r.transition_pruned, r.deltas_processed


def consolidate_members(members: Sequence[Thermogram], now: int, executor: Any, *,
                        max_workers: Optional[int], member_clock: Clock, verify_remote: bool,
                        install: Callable[[int, Thermogram], None]) -> List[Counts]:
    """Consolidate ``members`` by ``executor``; returns each member's counts.

    Parameters
    ----------
    members : sequence of Thermogram
        The members to consolidate.
    now : int
        The time of the colony operation (carried by remote consolidations).
    executor : "threads", "serial", Executor or dask.distributed.Client
        ``"serial"`` and ``"threads"`` (and a ``ThreadPoolExecutor``) consolidate
        in place; others receive members as bytes.
    max_workers : int, optional
        Threads for ``"threads"`` (default: members, at most the CPU count).
    member_clock : callable
        Clock of the capsules rebuilt from remote bytes.
    verify_remote : bool
        Re-hash every record of the capsules coming back.
    install : callable
        ``install(k, capsule)`` puts the capsule rebuilt for ``members[k]`` in
        its place; called once per member, in order, as each one is checked.

    Raises
    ------
    ValidationError
        ``executor`` is none of the accepted kinds.
    FormatError
        A capsule came back with another id.
    """
    if not members:
        return []
    ex = executor
    if isinstance(ex, str):
        if ex not in ("serial", "threads"):
            raise ValidationError(f"executor must be 'threads', 'serial', an Executor or a Dask client, "
                                  f"got {ex!r}")
        if ex == "serial" or len(members) == 1:
            return [consolidate_here(m) for m in members]
        workers = max_workers or min(len(members), os.cpu_count() or 1)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(consolidate_here, members))
    if isinstance(ex, ThreadPoolExecutor):
        return list(ex.map(consolidate_here, members))
    datas = [m.to_bytes() for m in members]
    if _is_dask_client(ex):
        remote = ex.scatter(datas)
        futs = ex.map(_consolidate_report, remote, [now] * len(datas), pure=False)
        out = ex.gather(futs)
    elif isinstance(ex, Executor):
        out = [f.result() for f in [ex.submit(_consolidate_report, d, now) for d in datas]]
    else:
        raise ValidationError("executor must be 'threads', 'serial', an Executor or a Dask client, "
                              f"got {type(ex).__name__}")
    counts = []
    for k, (old, (data, c)) in enumerate(zip(members, out)):
        new = Thermogram.from_bytes(data, clock=member_clock, verify=verify_remote)
        if new.id != old.id:
            raise FormatError(f"member {old.id!r} came back as {new.id!r}")
        new.limits = old.limits
        install(k, new)
        counts.append(tuple(c))
    return counts
