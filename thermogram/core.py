"""The capsule: :class:`Thermogram`.

Plain orchestration over three parts: the columnar :class:`~thermogram.store.EntryStore`
(four thermal layers), the :class:`~thermogram.pending.PendingLog` (deltas
not yet consolidated) and the :class:`~thermogram.chain.HashChain` (every
record since creation). Every public mutation validates first, then commits one
record: linked to the head, written to the journal when file-backed, applied to
the state through the store's kernel-owning methods, appended to the chain.
Operations are looked up in :data:`OPERATIONS`, live and in replay alike, so
:meth:`Thermogram.replay` redoes the records and reaches the same
:meth:`~Thermogram.state_digest`.

Why this module is one piece (~1,650 lines): it is the one public class users meet, and each
method is a few lines of validation and orchestration; splitting the class across
files would only scatter its docstrings. The array work is in ``store``/``pending``
(which own the kernels), the record format in ``io.records``, files in ``io``.
The end of this module is the *persistence seam* (:func:`capsule_parts`,
:func:`restore_capsule`, :func:`replay_records`, ...): the only functions through
which codecs, the journal, Arrow import and colonies read a capsule's internals or
build one, so nothing outside this module touches a private attribute of a capsule.
"""
from __future__ import annotations

import hashlib
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from .canonical import i64, lp, u64
from .chain import HashChain, OpRecord, Record
from .consolidation import ConsolidationPolicy, ConsolidationResult
from .delta import Clock, Delta, DeltaBatch, DeltaType, new_id, validate_key
from .delta import _DELETE, _MERGE  # members as globals (cheap on CPython 3.11; see delta.py)
from .errors import (ChainError, DurabilityError, FormatError, KeyMissingError, ReadOnlyError, ReplayError,
                     ThermogramError, ValidationError)
from .limits import Limits
from ._memory import TRIM_AFTER_ROWS, release_free_memory
from .pending import PendingLog
from .plasticity import PlasticityRule
from .results import CrystallizationResult, ThermogramStats, TransitionResult
from .signal import SIGNAL, Signal, as_signal_vector
from .store import EntryStore
from .thermal import ThermalConfig, ThermalState

__all__ = ["Thermogram", "SEMANTICS", "OPERATIONS"]

SEMANTICS = ("fixed", "reference")


def _default_clock() -> int:
    return time.time_ns()


def _locked(fn):
    # acquire/release with try/finally: about half the cost of ``with lock:`` per call
    def wrapper(self, *a, **kw):
        lk = self._lock
        lk.acquire()
        try:
            return fn(self, *a, **kw)
        finally:
            lk.release()
    wrapper.__name__ = fn.__name__
    wrapper.__qualname__ = fn.__qualname__
    wrapper.__doc__ = fn.__doc__
    wrapper.__wrapped__ = fn
    return wrapper


class Thermogram:
    """A plastic memory capsule.

    Parameters
    ----------
    name : str
        Human-readable name.
    rule : PlasticityRule, optional
        How observations fold into strengths (default ``PlasticityRule.stdp_like()``).
    thermal_config : ThermalConfig, optional
        Layer thresholds and decay (default ``ThermalConfig.default()``).
    policy : ConsolidationPolicy, optional
        When to consolidate on its own (default ``ConsolidationPolicy.default()``:
        1000 pending deltas or 24 hours by ``clock``).
    clock : callable, optional
        Returns integer ns since the epoch (UTC); inject one for tests and
        simulations. Only record timestamps carry time into the state.
    semantics : {"fixed", "reference"}
        ``"reference"`` folds deltas exactly as thermogram-rs 1.0 does
        (merge on a missing key dropped, delete only from hot, consolidate
        ends with :meth:`crystallize`); ``"fixed"`` (default) is DESIGN.md's.
    id : str, optional
        The capsule id (default: a new UUID).
    limits : Limits, optional
        Input caps (key bytes, value length, pending deltas, clock skew).

    Attributes
    ----------
    clock : callable
        The clock in use.
    limits : Limits
        Input caps; not part of the state.
    created_at, last_consolidation : int
        Nanoseconds since the epoch (UTC).
    total_deltas, total_consolidations : int
        Lifetime counters.
    custom : bytes or None
        The custom metadata blob (:meth:`set_custom`).
    extensions : dict
        Extra state saved with the capsule in ``.thermo`` v2 (e.g. an SNN's ``state()``).

    Raises
    ------
    ValidationError
        An argument has the wrong type or is out of its domain (the message says which
        and what was expected).

    See Also
    --------
    Thermogram.open : a file-backed capsule with a durable journal.
    Thermogram.load, Thermogram.save : ``.thermo`` files (ours, v2, and the reference's v1).

    Examples
    --------
    >>> from thermogram import Thermogram, Delta, Signal, ThermalState
    >>> t = Thermogram("demo", clock=lambda: 1_700_000_000_000_000_000)
    >>> record = t.apply_delta(Delta.create("k", [Signal.positive(200), Signal.negative(10)]))
    >>> record.prev_hash == t.records()[0].hash == t.records()[1].prev_hash
    True
    >>> t.read("k")["magnitude"].tolist()
    [200, 10]
    >>> t.pending_count
    1
    >>> result = t.consolidate()
    >>> (result.deltas_processed, t.pending_count, t.layer_counts()["hot"])
    (1, 0, 1)
    >>> t.reinforce("k", Signal.positive(50))
    True
    >>> t.read_with_state("k")[2] is ThermalState.HOT
    True
    >>> Thermogram.replay(t.records()).state_digest() == t.state_digest()
    True
    >>> t.read("missing") is None
    True
    """

    def __init__(self, name: str = "thermogram", rule: Optional[PlasticityRule] = None, *,
                 thermal_config: Optional[ThermalConfig] = None,
                 policy: Optional[ConsolidationPolicy] = None, clock: Optional[Clock] = None,
                 semantics: str = "fixed", id: Optional[str] = None,
                 limits: Optional[Limits] = None, _genesis: Optional[OpRecord] = None,
                 _rehash_genesis: bool = True):
        if not isinstance(name, str):
            raise ValidationError(f"name must be a str, got {type(name).__name__}")
        rule = PlasticityRule.stdp_like() if rule is None else rule
        thermal_config = ThermalConfig.default() if thermal_config is None else thermal_config
        policy = ConsolidationPolicy.default() if policy is None else policy
        if not isinstance(rule, PlasticityRule):
            raise ValidationError(f"rule must be a PlasticityRule, got {type(rule).__name__}")
        if not isinstance(thermal_config, ThermalConfig):
            raise ValidationError(f"thermal_config must be a ThermalConfig, got {type(thermal_config).__name__}")
        if not isinstance(policy, ConsolidationPolicy):
            raise ValidationError(f"policy must be a ConsolidationPolicy, got {type(policy).__name__}")
        if semantics not in SEMANTICS:
            raise ValidationError(f"semantics must be 'fixed' or 'reference', got {semantics!r}")
        if clock is not None and not callable(clock):
            raise ValidationError("clock must be a callable returning integer nanoseconds")
        if limits is not None and not isinstance(limits, Limits):
            raise ValidationError(f"limits must be a Limits, got {type(limits).__name__}")
        self.limits: Limits = Limits() if limits is None else limits
        """Input caps (see :class:`~thermogram.limits.Limits`); not part of the state."""
        self._name = name
        self._id = new_id() if id is None else str(id)
        self._rule = rule
        self._thermal_config = thermal_config
        self._policy = policy
        self._semantics = semantics
        self._fixed = semantics == "fixed"  # the semantics never change after construction
        self.clock: Clock = clock if clock is not None else _default_clock
        self._lock = threading.RLock()
        self._store = EntryStore()
        self._pending = PendingLog(self._store)
        self._read_cache = self._store.rc  # read's lock-free path (never replaced)
        self._chain = HashChain()
        self.total_deltas = 0
        self.total_consolidations = 0
        self._replaying = False
        self._digest: Optional[str] = None
        self._journal = None  # set by thermogram.journal for file-backed capsules
        self._lock_handle = None
        self._path: Optional[str] = None
        self._readonly = False
        self.custom: Optional[bytes] = None
        self.extensions: Dict[str, Any] = {}
        """Extra state saved with the capsule in ``.thermo`` v2 (e.g. an SNN's ``state()``)."""
        if _genesis is None:
            now = self._now()
            self.created_at = now
            self.last_consolidation = now
            self._chain.append(OpRecord("genesis", self._genesis_args(), now))
        else:
            self.created_at = int(_genesis.timestamp)
            self.last_consolidation = self.created_at
            self._chain.append_verified(_genesis, rehash=_rehash_genesis)

    # ------------------------------------------------------------------ configuration
    name = property(lambda self: self._name, doc="Capsule name (set at creation).")
    id = property(lambda self: self._id, doc="Capsule id (a UUID string unless given).")
    rule = property(lambda self: self._rule, doc="The :class:`PlasticityRule` (change with :meth:`configure`).")
    thermal_config = property(lambda self: self._thermal_config,
                              doc="The :class:`ThermalConfig` (change with :meth:`configure`).")
    policy = property(lambda self: self._policy,
                      doc="The :class:`ConsolidationPolicy` (change with :meth:`configure`).")
    semantics = property(lambda self: self._semantics, doc='``"fixed"`` or ``"reference"``.')

    def _op_configure(self, args: Dict[str, Any], now: int) -> None:
        if "rule" in args:
            self._rule = PlasticityRule.from_dict(args["rule"])
        if "thermal_config" in args:
            self._thermal_config = ThermalConfig.from_dict(args["thermal_config"])
        if "policy" in args:
            self._policy = ConsolidationPolicy.from_dict(args["policy"])

    @_locked
    def configure(self, *, rule: Optional[PlasticityRule] = None,
                  thermal_config: Optional[ThermalConfig] = None,
                  policy: Optional[ConsolidationPolicy] = None) -> None:
        """Change the rule, thermal config or consolidation policy (one record)."""
        args: Dict[str, Any] = {}
        for name, val, cls in (("rule", rule, PlasticityRule), ("thermal_config", thermal_config, ThermalConfig),
                               ("policy", policy, ConsolidationPolicy)):
            if val is not None:
                if not isinstance(val, cls):
                    raise ValidationError(f"{name} must be a {cls.__name__}, got {type(val).__name__}")
                args[name] = val.to_dict()
        if args:
            self._run_op("configure", args, self._now())

    # ------------------------------------------------------------------ helpers
    def now(self) -> int:
        """The capsule clock's current time (integer ns since the epoch, UTC).

        Timestamps are stored as int64 nanoseconds, so the clock must return an integer in
        ``-2**63 .. 2**63 - 1`` (1677-09-21T00:12:43Z .. 2262-04-11T23:47:16Z).

        Raises
        ------
        ValidationError
            The clock returned something other than an integer, or one outside that range.
        """
        return self._now()

    def _now(self) -> int:
        t = self.clock()
        if type(t) is int and -(2 ** 63) <= t < 2 ** 63:
            return t
        if not isinstance(t, (int, np.integer)) or isinstance(t, bool):
            raise ValidationError(f"clock must return integer nanoseconds, got {t!r}")
        t = int(t)
        if not -(2 ** 63) <= t < 2 ** 63:
            raise ValidationError(f"clock returned {t}: outside the int64 nanosecond range the formats store "
                                  "(1677-09-21 .. 2262-04-11); is it in the wrong unit?")
        return t

    def _genesis_args(self) -> Dict[str, Any]:
        return {"name": self.name, "id": self.id, "rule": self.rule.to_dict(),
                "thermal_config": self.thermal_config.to_dict(), "policy": self.policy.to_dict(),
                "semantics": self.semantics, "format": 1}

    def _commit(self, rec: Record, apply: Callable[[], Any]) -> Any:
        """Link ``rec`` to the head, make it durable (journal, if file-backed),
        apply it to the state, then append it to the chain.

        Everything that can reject the record runs before the journal write (for a delta
        or batch outside replay this includes reading the clock that the automatic
        consolidation check then uses); after it, only :class:`DurabilityError` is raised.
        """
        self._digest = None
        if self._readonly:
            if getattr(self, "_closed", False):
                raise ReadOnlyError(f"{self._path} is closed; open it again to write")
            raise ReadOnlyError(f"{self._path} was opened read-only")
        j = self._journal
        if j is not None:
            j.check()  # a poisoned writer raises its DurabilityError
        self._chain.check_link(rec)
        if not self._replaying and rec.kind != "op":
            self._commit_now = self._now()
            self._call_start = None if j is None else j.durable_size
        cb = rec._link(self._chain.head_hash)
        if j is not None:
            j.append(rec, cb)
        try:
            result = apply()
            self._chain.push_linked(rec)
        except BaseException as e:
            if j is None:
                raise
            err = DurabilityError(f"{self._path}: record {len(self._chain)} was journaled but could not be "
                                  f"applied ({e!r}); close the capsule and open it again")
            raise j.poison(err) from e
        return result

    def _run_op(self, op: str, args: Dict[str, Any], now: int) -> Any:
        """Run operation ``op`` (a name in :data:`OPERATIONS`) as one record."""
        fn = OPERATIONS[op]
        return self._commit(OpRecord(op, args, now), lambda: fn(self, args, now))

    @staticmethod
    def _coerce_amount(amount: Any) -> Signal:
        return Signal.coerce(amount, "amount")

    # ------------------------------------------------------------------ reads
    def _lookup(self, key: str) -> Optional[Tuple[np.ndarray, Signal, ThermalState]]:
        """``(value, strength, layer)`` of what :meth:`read` finds; a pending change is ``HOT``."""
        if self._pending.n:
            found, value, strength = self._pending.lookup(key)
            if found:
                return None if value is None else (value, strength, ThermalState.HOT)
        hit = self._store.lookup(key)
        return None if hit is None else (hit[0], hit[1], ThermalState(hit[2]))

    def read(self, key: str) -> Optional[np.ndarray]:
        """The key's current value (pending changes first, then the hottest layer), or None.

        Returns a read-only SIGNAL vector: values are never overwritten in place,
        so it stays what it was when read (copy it to modify it).

        A key read before, and unchanged since, is answered from the read cache without
        taking the capsule lock (see ``EntryStore.rc``; it holds str keys only, so only a
        str, or an object Python's dict takes for an equal str, is answered there).
        """
        try:
            return self._read_cache[key]
        except (KeyError, TypeError):  # not read since it last changed; or unhashable
            pass
        if type(key) is not str:
            validate_key(key, allow_empty=True)
        lk = self._lock
        lk.acquire()
        try:
            p = self._pending
            i = p.overlay.get(key) if p.n else None
            v = self._store.read(key) if i is None else p.value_at(i, key)
            self._store.remember(key, v)
            return v
        finally:
            lk.release()

    @_locked
    def read_with_strength(self, key: str) -> Optional[Tuple[np.ndarray, Signal]]:
        """``(value, strength)`` or None."""
        validate_key(key, allow_empty=True)
        hit = self._lookup(key)
        return None if hit is None else (hit[0], hit[1])

    @_locked
    def read_with_state(self, key: str) -> Optional[Tuple[np.ndarray, Signal, ThermalState]]:
        """``(value, strength, layer)`` or None; a pending change reports ``HOT``."""
        validate_key(key, allow_empty=True)
        return self._lookup(key)

    @_locked
    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._lookup(key) is not None

    @_locked
    def keys(self) -> List[str]:
        """Every key that :meth:`read` finds, sorted.

        With ``semantics="reference"`` it lists what the reference crate's ``keys()`` does:
        every key held in a layer plus every key named by a pending delta that is not a
        Delete, so a key whose newest pending delta deletes it is still listed (while
        :meth:`read` returns None for it, in the crate too)."""
        s = self._store
        out = set(s.keys.take(s.live_kids().tolist()))
        p = self._pending
        if not self._fixed:
            if p.n:
                c = p.columns()
                kids = np.unique(c.kid[c.type != int(DeltaType.DELETE)])
                out.update(s.keys.take(kids.tolist()))
            return sorted(out)
        live, gone = p.live_and_deleted()
        out.difference_update(gone)
        out.update(live)
        return sorted(out)

    @_locked
    def keys_for_state(self, state: Any) -> List[str]:
        """Keys held (consolidated) in one layer, sorted."""
        lay = ThermalState.parse(state)
        return sorted(self._store.keys_in(int(lay)))

    def hot_keys(self) -> List[str]:
        """Keys held (consolidated) in the hot layer, sorted (pending deltas are not included)."""
        return self.keys_for_state(ThermalState.HOT)

    def warm_keys(self) -> List[str]:
        """Keys held (consolidated) in the warm layer, sorted (pending deltas are not included)."""
        return self.keys_for_state(ThermalState.WARM)

    def cool_keys(self) -> List[str]:
        """Keys held (consolidated) in the cool layer, sorted (pending deltas are not included)."""
        return self.keys_for_state(ThermalState.COOL)

    def cold_keys(self) -> List[str]:
        """Keys held (consolidated) in the cold layer, sorted (pending deltas are not included)."""
        return self.keys_for_state(ThermalState.COLD)

    @_locked
    def entries(self, state: Any) -> List[Dict[str, Any]]:
        """The consolidated entries of one layer, sorted by key, as dicts
        (``key, value, strength, update_count, updated_at, layer``)."""
        lay = ThermalState.parse(state)
        return list(self._store.iter_entries(int(lay)))

    @_locked
    def entry(self, key: str, state: Any) -> Optional[Dict[str, Any]]:
        """The key's consolidated entry in one layer, or None."""
        validate_key(key, allow_empty=True)
        lay = int(ThermalState.parse(state))
        kid = self._store.keys.get(key)
        if kid is None:
            return None
        r = self._store.row(kid, lay)
        return None if r < 0 else self._store.entry(r)

    @_locked
    def history(self, key: str) -> List[Delta]:
        """Every delta on ``key`` since creation, oldest first (batches expanded)."""
        validate_key(key, allow_empty=True)
        return self._chain.history(key)

    @_locked
    def records(self) -> List[Record]:
        """Every record since creation (genesis first), in chain order."""
        return list(self._chain.records)

    @property
    def chain(self) -> HashChain:
        """The capsule's hash chain (read it; mutate the capsule through its methods)."""
        return self._chain

    @property
    def head_hash(self) -> str:
        """Hash of the newest record."""
        return self._chain.head_hash  # type: ignore[return-value]

    @property
    def pending_count(self) -> int:
        """Deltas applied since the last consolidation."""
        return self._pending.n

    def verify(self, trusted_keys: Optional[Sequence[Any]] = None, *, require_signed: bool = False) -> Any:
        """Verify the whole chain and that the stored state is what the records make.

        Checks every record's hash and link, then replays the records into a new capsule
        and compares bound state digests (entries, pending deltas, counters, custom data
        and configuration; :func:`~thermogram.trust.state_binding`), so an entry table or
        configuration rewritten in a file is caught. With ``trusted_keys`` it does what
        :meth:`verify_trust` does instead (a state signed by a trusted key is accepted
        without a replay) and returns its :class:`~thermogram.trust.TrustReport`, whose
        ``unsigned_records`` are the records after the newest trusted signature;
        ``require_signed=True`` refuses any.

        Returns
        -------
        True, or a TrustReport (truthy) when ``trusted_keys`` is given.

        Raises
        ------
        ChainError
            At the first bad record (``.index``), or when the state does not match.
        """
        from .trust import check_state_against_records
        with self._lock:
            if trusted_keys is not None:
                return self.verify_trust(trusted_keys, require_signed=require_signed)
            self._chain.verify()
            check_state_against_records(self, rehash=False)  # every hash was just checked
            return True

    # ------------------------------------------------------------------ deltas
    def _check_delete(self, key: str) -> None:
        if self._fixed and self._lookup(key) is None:
            raise KeyMissingError(f"cannot delete {key!r}: the capsule does not hold it")

    def _apply_delta_state(self, d: Delta, voff: Optional[int] = None) -> None:
        keeps = self._fixed and d.delta_type == _MERGE
        kid = self._store.kid_for(d.key)
        self._pending.append_delta(kid, d, keeps, voff)
        self.total_deltas += 1

    @_locked
    def apply_delta(self, delta: Delta) -> Delta:
        """Apply one delta: it is linked to the head, recorded, and pending until
        the next consolidation (which may run now if the policy says so).

        The capsule keeps a copy: ``delta`` itself is never changed (its ``prev_hash``
        stays as given) nor kept, so changing it afterwards changes nothing here.

        Returns
        -------
        Delta
            The record as appended to the chain (linked: ``prev_hash`` and ``hash`` set).

        Raises
        ------
        ValidationError
            ``delta`` is not a :class:`Delta`, or one of its fields was set to something
            malformed after construction.
        ReplayError
            A delta with this ``id`` is already in the chain (each delta applies once,
            so a retried send is refused instead of counted twice).
        ForkError
            ``delta.prev_hash`` is set and is not the head.
        KeyMissingError
            A delete of a key the capsule does not hold (``semantics="fixed"``).
        """
        if not isinstance(delta, Delta):
            raise ValidationError(f"apply_delta needs a Delta, got {type(delta).__name__} "
                                  "(use apply_batch for a DeltaBatch)")
        rec = _own_delta(delta)
        key = rec.key
        if type(key) is not str or not key or not key.isascii():  # else valid under either semantics
            validate_key(key, allow_empty=self.semantics != "fixed")
        # the limit checks, each called only when its cheap test says it may fail
        lim = self.limits
        if len(key) * 4 > lim.max_key_bytes:
            lim.check_key(key)
        if rec.value.shape[0] > lim.max_value_len:
            lim.check_value(len(rec.value))
        if self._pending.n + 1 > lim.max_pending:
            lim.check_pending(self._pending.n, 1)
        if lim.max_clock_skew_ns is not None:
            lim.check_timestamp(rec.timestamp, self._now())
        if self._chain.index_of_id(rec.id) is not None:
            self._check_new_id(rec.id)
        if rec.prev_hash is not None:
            self._chain.check_link(rec)
        if rec.delta_type == _DELETE:
            self._check_delete(key)
        self._commit(rec, partial(self._apply_delta_state, rec))
        self._maybe_consolidate()
        return rec

    def _check_new_id(self, rid: str) -> None:
        """Raise :class:`ReplayError` if a delta or batch with id ``rid`` is in the chain."""
        at = self._chain.index_of_id(rid)
        if at is not None:
            raise ReplayError(f"a delta with id {rid!r} is already in the chain (record {at}); "
                              "each delta applies once", index=at)

    def _apply_batch_state(self, b: DeltaBatch, voff: Optional[int] = None) -> None:
        klen, joined = b._key_blob()
        kids = self._store.kids_for_blob(joined, np.frombuffer(klen, np.uint64).astype(np.int64))
        keeps = (b.types == int(DeltaType.MERGE)) if self._fixed and len(b) else None
        self._pending.append_batch(kids, b, keeps, voff)
        b.bind_keys(self._store.keys, kids)
        self.total_deltas += len(b)

    def _check_batch_deletes(self, b: DeltaBatch) -> None:
        dels = np.flatnonzero(b.types == int(DeltaType.DELETE))
        if not len(dels):
            return
        exists: Dict[str, bool] = {}
        for i, k in enumerate(b.keys):
            t = int(b.types[i])
            if t == int(DeltaType.DELETE):
                ok = exists.get(k)
                if ok is None:
                    ok = self._lookup(k) is not None
                if not ok:
                    raise KeyMissingError(f"batch row {i}: cannot delete {k!r}: the capsule does not hold it")
                exists[k] = False
            else:
                exists[k] = True

    @_locked
    def apply_batch(self, batch: Union[DeltaBatch, Sequence[Delta]]) -> None:
        """Apply many deltas as one record (columnar; the fast path).

        ``batch`` is a :class:`DeltaBatch` or a sequence of :class:`Delta`.
        All-or-nothing: if any row is invalid, nothing changes. The capsule keeps a copy
        (writable columns copied); ``batch`` itself is not changed. A batch whose ``id``
        is already in the chain is a :class:`ReplayError`.
        """
        batch = _own_batch(DeltaBatch.coerce(batch, self.clock))
        self._preflight_batch(batch)
        self._commit(batch, lambda: self._apply_batch_state(batch))
        self._maybe_consolidate()

    def _preflight_batch(self, batch: DeltaBatch) -> None:
        """Raise what :meth:`apply_batch` would raise for ``batch`` (limits, a replayed id, a
        fork, deletes of missing keys), changing nothing."""
        lim = self.limits
        ks = batch.keys
        if ks:
            longest = max(ks, key=len)
            if len(longest) * 4 > lim.max_key_bytes:
                for k in ks:
                    lim.check_key(k)
            lim.check_value(int(np.diff(batch.offsets).max()), "a batch value")
            if lim.max_clock_skew_ns is not None:
                lim.check_timestamp(int(batch.timestamps.max()), self._now())
        lim.check_pending(self._pending.n, len(batch))
        self._check_new_id(batch.id)
        self._chain.check_link(batch)
        if self._fixed:
            self._check_batch_deletes(batch)

    @_locked
    def write(self, key: str, value: Any, strength: Any = None, *, source: str = "") -> Delta:
        """Convenience: apply an Update delta (Create if the key is new); returns the
        linked record."""
        kind = DeltaType.UPDATE if self._lookup(validate_key(key, allow_empty=not self._fixed)) is not None \
            else DeltaType.CREATE
        d = Delta(kind, key, value, source=source, strength=strength, clock=self.clock)
        return self.apply_delta(d)

    @_locked
    def delete(self, key: str, *, source: str = "") -> Delta:
        """Convenience: apply a Delete delta; returns the linked record."""
        d = Delta.delete(key, source, clock=self.clock)
        return self.apply_delta(d)

    # ------------------------------------------------------------------ consolidation
    @_locked
    def dirty_size(self) -> int:
        """Estimated bytes of pending deltas (the reference's estimate)."""
        return self._pending.dirty_bytes

    @_locked
    def should_consolidate(self) -> bool:
        """Whether the policy's triggers fire now (time by ``clock``)."""
        return self._should_consolidate_at(self._now())

    def _should_consolidate_at(self, now: int) -> bool:
        return self.policy.should_consolidate(self._pending.n, now - self.last_consolidation,
                                              self._pending.dirty_bytes)

    def _maybe_consolidate(self) -> None:
        """Consolidate if the policy says so, after a delta or batch was committed.

        Uses the time :meth:`_commit` read (and validated) before the delta was journaled,
        so nothing here raises but :class:`DurabilityError`; if the consolidation's record
        cannot be made durable, the journal is cut back to before the delta too, so the
        failed call leaves no trace on disk.
        """
        if self._replaying:
            return
        now = getattr(self, "_commit_now", None)
        self._commit_now = None
        if now is None:
            now = self._now()
        pol = self.policy
        if pol is not getattr(self, "_auto_policy", None):  # recomputed when the policy changes
            self._auto_policy = pol
            self._auto_triggers = any(t.kind != "manual" for t in pol.triggers)
        if not self._auto_triggers or not self._should_consolidate_at(now):
            return
        try:
            self._consolidate_at(now)
        except DurabilityError:
            start = getattr(self, "_call_start", None)
            if self._journal is not None and start is not None:
                self._journal.rollback_to(start)
            raise

    def _op_consolidate(self, args: Dict[str, Any], now: int) -> ConsolidationResult:
        p = self._pending
        res = ConsolidationResult(deltas_processed=p.n, timestamp=now)
        r = self.rule
        tc = self.thermal_config
        prune = r.prune_threshold.magnitude if self.policy.enable_pruning else None
        c = self._store.consolidate(p.columns(), int(r.policy), r.decay_rate.magnitude,
                                    r.learning_rate.magnitude, self._fixed, prune,
                                    tc.transition_arrays() + (tc.prune_threshold.magnitude,),
                                    self._fixed, now)
        res.entries_merged, res.entries_created, res.entries_deleted = c.fold
        if prune is not None:
            res.entries_pruned = c.pruned
        res.entries_after = c.hot
        p.clear()
        self.last_consolidation = now
        self.total_consolidations += 1
        if self._fixed:
            tr = c.transitions
            res.promoted, res.demoted, res.transition_pruned = sum(tr.promoted), sum(tr.demoted), tr.pruned
        else:
            cr = self._op_crystallize({}, now)
            res.crystallized = cr.crystallized
            res.entries_merged += cr.crystallized
        return res

    @_locked
    def consolidate(self) -> ConsolidationResult:
        """Fold pending deltas into hot with the plasticity rule, prune (if the
        policy enables it), then run the thermal transitions
        (``semantics="reference"``: then :meth:`crystallize`, as the reference).

        The chain is kept: the consolidation is one more record.
        """
        return self._consolidate_at(self._now())

    def _consolidate_at(self, now: int) -> ConsolidationResult:
        big = self._pending.n >= TRIM_AFTER_ROWS
        res = self._run_op("consolidate", {}, now)
        if big:  # the fold's temporaries are freed now: give their pages back to the OS
            release_free_memory()
        return res

    # ------------------------------------------------------------------ layer operations
    def _op_apply_decay(self, args: Dict[str, Any], now: int) -> None:
        self._store.decay(self.thermal_config.retention_array())

    @_locked
    def apply_decay(self) -> None:
        """Decay every entry's strength by its layer's rate (``mag *= 1 - rate/255``)."""
        now = self._now()
        self._run_op("apply_decay", {}, now)

    def _op_run_thermal_transitions(self, args: Dict[str, Any], now: int) -> TransitionResult:
        tc = self.thermal_config
        promotion, min_observations, demotion, allow_demotion = tc.transition_arrays()
        c = self._store.transitions(promotion, min_observations, demotion, allow_demotion,
                                    tc.prune_threshold.magnitude, now)
        return TransitionResult(c.promoted, c.demoted, c.pruned)

    @_locked
    def run_thermal_transitions(self) -> TransitionResult:
        """Promote strong, well-observed entries colder (hot->warm->cool->cold),
        demote weak ones hotter where the config allows, then prune every layer.

        An entry may move several layers in one call, as in the reference.
        """
        now = self._now()
        res = self._run_op("run_thermal_transitions", {}, now)
        return res

    def _op_crystallize(self, args: Dict[str, Any], now: int) -> CrystallizationResult:
        tc = self.thermal_config
        c, m = self._store.crystallize(tc.crystallization_threshold.magnitude, tc.min_observations[0])
        return CrystallizationResult(c, m)

    @_locked
    def crystallize(self) -> CrystallizationResult:
        """Move hot entries at or above ``crystallization_threshold`` with enough
        observations straight to cold (the reference's legacy step)."""
        now = self._now()
        res = self._run_op("crystallize", {}, now)
        return res

    def _op_prune_hot(self, args: Dict[str, Any], now: int) -> int:
        return self._store.prune(self.thermal_config.prune_threshold.magnitude, 0)

    @_locked
    def prune_hot(self) -> int:
        """Drop hot entries weaker than the thermal ``prune_threshold``; returns the count."""
        now = self._now()
        if not self._store.count_below(self.thermal_config.prune_threshold.magnitude, 0):
            return 0
        return self._run_op("prune_hot", {}, now)

    def _op_warm(self, args: Dict[str, Any], now: int) -> int:
        s = self._store
        kids = np.array([s.keys.get(k) for k in args["keys"]], dtype=np.int64)
        return s.warm(kids, self.thermal_config.warming_delta.magnitude, now)

    @_locked
    def warm(self, key: str) -> bool:
        """Bring a cold entry back to hot for re-learning (costs ``warming_delta/255 * 10%``
        of its strength, floor 1). False if warming is disabled or the key is not cold."""
        validate_key(key, allow_empty=not self._fixed)
        if not self.thermal_config.allow_warming or self._store.cold_kid(key) is None:
            return False
        now = self._now()
        self._run_op("warm", {"keys": [key]}, now)
        return True

    @_locked
    def warm_matching(self, predicate: Callable[[str, Dict[str, Any]], bool]) -> int:
        """Warm every cold entry for which ``predicate(key, entry)`` is true
        (``entry`` as in :meth:`entries`); one record for all. Returns the count."""
        if not callable(predicate):
            raise ValidationError("predicate must be callable as predicate(key, entry)")
        if not self.thermal_config.allow_warming:
            return 0
        keys = [e["key"] for e in self._store.iter_entries(3) if predicate(e["key"], e)]
        if not keys:
            return 0
        now = self._now()
        n = self._run_op("warm", {"keys": keys}, now)
        return n

    def _op_reinforce(self, args: Dict[str, Any], now: int) -> None:
        p, m = args["amount"]
        self._store.reinforce(self._store.hottest_row(args["key"]), Signal.from_checked(p, m), now)

    @_locked
    def reinforce(self, key: str, amount: Any) -> bool:
        """Add ``amount`` to the strength of the key's hottest consolidated entry
        (count + 1). False if no layer holds the key."""
        return self._adjust_strength("reinforce", key, amount)

    def _adjust_strength(self, op: str, key: str, amount: Any) -> bool:
        """Run ``reinforce``/``weaken`` on the key's hottest entry; False if there is none."""
        validate_key(key, allow_empty=not self._fixed)
        a = self._coerce_amount(amount)
        if self._store.hottest_row(key) < 0:
            return False
        self._run_op(op, {"key": key, "amount": [a.polarity, a.magnitude]}, self._now())
        return True

    def _op_weaken(self, args: Dict[str, Any], now: int) -> None:
        self._store.weaken(self._store.hottest_row(args["key"]), int(args["amount"][1]), now)

    @_locked
    def weaken(self, key: str, amount: Any) -> bool:
        """Subtract ``amount``'s magnitude from the hottest entry's strength
        (saturating; 0 becomes ``Signal.ZERO``). False if no layer holds the key."""
        return self._adjust_strength("weaken", key, amount)

    def _op_insert_entry(self, args: Dict[str, Any], now: int) -> None:
        # the value is appended to the arena once: the record's ``value`` becomes a read-only
        # view of that copy (as a delta's does) and the entry points at the same signals, so
        # .thermo v2 stores it once (the record refers to it by offset; its hash is unchanged,
        # the bytes being the same)
        s = self._store
        kid = s.kid_for(args["key"])
        p, m = args["strength"]
        v = args["value"]
        o = s.offset_of(v)
        if o < 0:
            o = s.adopt(args, "value", v)
        s.put(kid, int(args["layer"]), args["value"], p, m, int(args["update_count"]),
              int(args["updated_at"]), voff=o)

    @_locked
    def insert_entry(self, key: str, value: Any, strength: Any, state: Any = ThermalState.HOT, *,
                     update_count: int = 0, updated_at: Optional[int] = None) -> None:
        """Place a consolidated entry directly in a layer (import, tests, migration).

        Replaces the key's entry in that layer if there is one. Recorded like
        every other change. The empty key is accepted only with ``semantics="reference"``.
        """
        validate_key(key, allow_empty=not self._fixed)
        self.limits.check_key(key)
        v = as_signal_vector(value)
        self.limits.check_value(len(v))
        st = Signal.coerce(strength, "strength")
        lay = ThermalState.parse(state)
        if not isinstance(update_count, (int, np.integer)) or isinstance(update_count, bool) \
                or not 0 <= int(update_count) < 2 ** 64:
            raise ValidationError(f"update_count must be an integer in 0..2**64-1, got {update_count!r}")
        now = self._now()
        ua = now if updated_at is None else updated_at
        if not isinstance(ua, (int, np.integer)) or isinstance(ua, bool) or not -(2 ** 63) <= int(ua) < 2 ** 63:
            raise ValidationError(f"updated_at must be int64 nanoseconds, got {updated_at!r}")
        args = {"key": key, "value": np.array(v), "strength": [st.polarity, st.magnitude],
                "layer": int(lay), "update_count": int(update_count), "updated_at": int(ua)}
        self._run_op("insert_entry", args, now)

    def _op_set_custom(self, args: Dict[str, Any], now: int) -> None:
        self.custom = args["custom"]

    @_locked
    def set_custom(self, data: Optional[bytes]) -> None:
        """Set the capsule's custom metadata blob (the reference's ``metadata.custom``)."""
        if data is not None and not isinstance(data, (bytes, bytearray)):
            raise ValidationError(f"custom metadata must be bytes or None, got {type(data).__name__}")
        self._run_op("set_custom", {"custom": None if data is None else bytes(data)}, self._now())

    def _op_import(self, args: Dict[str, Any], now: int) -> None:
        """Bulk-load entries and counters (opening a file written elsewhere)."""
        e = args["entries"]
        self._store.bulk_load(e["keys"], e["layer"], e["pol"], e["mag"], e["count"], e["ts"],
                              e["values"], e["lengths"])
        m = args["metadata"]
        self.last_consolidation = int(m["last_consolidation"])
        self.total_deltas = int(m["total_deltas"]) - int(m.get("pending", 0))
        self.total_consolidations = int(m["total_consolidations"])
        self.custom = m.get("custom")

    # ------------------------------------------------------------------ trust
    def _merkle(self):
        from .merkle import MerkleTree
        return MerkleTree([bytes.fromhex(r.hash) for r in self._chain.records])

    def merkle_root(self, size: Optional[int] = None) -> bytes:
        """RFC 9162 Merkle root over the record hashes (of the first ``size`` records)."""
        with self._lock:
            return self._merkle().root(-1 if size is None else int(size))

    def prove_inclusion(self, index: int, size: Optional[int] = None) -> List[bytes]:
        """Audit path showing record ``index`` is in the log of ``size`` records."""
        with self._lock:
            return self._merkle().inclusion(int(index), -1 if size is None else int(size))

    def prove_consistency(self, old_size: int, size: Optional[int] = None) -> List[bytes]:
        """Proof that the first ``old_size`` records are a prefix of the current log."""
        with self._lock:
            return self._merkle().consistency(int(old_size), -1 if size is None else int(size))

    @staticmethod
    def verify_inclusion(record_hash: str, index: int, size: int, proof: Sequence[bytes], root: bytes) -> bool:
        """Check an inclusion proof for a record hash (hex) against a Merkle root."""
        from .merkle import verify_inclusion
        return verify_inclusion(bytes.fromhex(record_hash), index, size, proof, root)

    @staticmethod
    def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes,
                           proof: Sequence[bytes]) -> bool:
        """Check that a log of ``new_size`` records extends one of ``old_size``."""
        from .merkle import verify_consistency
        return verify_consistency(old_size, new_size, old_root, new_root, proof)

    def _op_sign_head(self, args: Dict[str, Any], now: int) -> None:
        """Signatures change no state; they live in the chain."""

    @_locked
    def sign_head(self, key: Any) -> str:
        """Sign the current head, the Merkle root of every record so far and the bound
        state digest (:func:`~thermogram.trust.state_binding`) with ``key``: HMAC secret
        bytes, or a ``cryptography`` Ed25519 private key. The signature is stored as a
        record. Returns the key id."""
        from .trust import head_message, key_id, sign_message, state_binding
        size = len(self._chain)
        root = self.merkle_root()
        state = state_binding(self)
        alg, sig = sign_message(key, head_message(self.id, size, self.head_hash, root, state))
        kid = key_id(key)
        self._run_op("sign_head", {"alg": alg, "key_id": kid, "size": size, "head": self.head_hash,
                                   "root": root, "signature": sig, "state": state}, self._now())
        return kid

    def verify_trust(self, trusted_keys: Sequence[Any], *, require_signed: bool = False):
        """Verify the chain, that a trusted key signed these records, and that the state is
        the one they stand for (signed, or replayed); returns a
        :class:`~thermogram.trust.TrustReport` (which key signed what, and the unsigned
        tail). Raises :class:`ChainError` on a rewrite, a malformed or missing trusted
        signature, a state that does not match, or (``require_signed``) an unsigned tail."""
        from .trust import verify_trust
        with self._lock:
            return verify_trust(self, trusted_keys, require_signed=require_signed)

    # ------------------------------------------------------------------ replay
    @classmethod
    def from_genesis(cls, genesis: OpRecord, *, clock: Optional[Clock] = None,
                     verify: bool = True) -> "Thermogram":
        """An empty capsule with the configuration a genesis record carries
        (``verify=False``: trust the record's stored hash)."""
        if not isinstance(genesis, OpRecord) or genesis.op != "genesis":
            raise ChainError("the first record must be the capsule's genesis record", index=0)
        a = genesis.args
        try:
            return cls(a["name"], PlasticityRule.from_dict(a["rule"]),
                       thermal_config=ThermalConfig.from_dict(a["thermal_config"]),
                       policy=ConsolidationPolicy.from_dict(a["policy"]), clock=clock,
                       semantics=a["semantics"], id=a["id"], _genesis=genesis.copy(),
                       _rehash_genesis=verify)
        except ChainError:
            raise
        except (ThermogramError, KeyError, IndexError, TypeError, ValueError, AttributeError,
                OverflowError) as e:
            raise ChainError(f"genesis record is malformed: {e}", index=0) from None

    def _replay_record(self, rec: Record, rehash: bool = True) -> None:
        """Check ``rec`` (hash, link, and that its arguments fit the state it meets: see
        :mod:`thermogram.opcheck`), then append it and apply it. Raises :class:`ChainError`
        (with the record's index) before changing anything when it does not check out.
        ``rehash=False``: the hash was checked just before, by the caller; only the link is."""
        from .opcheck import check_delta_record, check_op_args
        self._digest = None
        if not isinstance(rec, (Delta, DeltaBatch, OpRecord)):
            raise ChainError(f"record {len(self._chain)} is not a chain record", index=len(self._chain))
        rec = rec.copy()
        i = len(self._chain)
        self._chain.check_verified(rec, rehash)
        if rec.kind == "op":
            fn = OPERATIONS.get(rec.op) if type(rec.op) is str else None
            check_op_args(self._store, self._thermal_config, self._fixed, self._lookup, i,
                          self._chain.head_hash, rec.op, rec.args, rec.timestamp)
        else:
            check_delta_record(self._fixed, self._lookup, i, rec)
        self._chain.push_linked(rec)
        try:
            if rec.kind == "delta":
                self._apply_delta_state(rec)
            elif rec.kind == "batch":
                self._apply_batch_state(rec)
            else:
                fn(self, rec.args, rec.timestamp)
        except ChainError:
            raise
        except (ThermogramError, KeyError, IndexError, TypeError, ValueError, OverflowError,
                AttributeError) as e:  # a safety net behind the checks: the capsule is discarded
            raise ChainError(f"record {i} cannot be replayed: {e!r}", index=i) from None

    @classmethod
    def replay(cls, records: Iterable[Record], *, clock: Optional[Clock] = None) -> "Thermogram":
        """Rebuild a capsule from its records (genesis first).

        Every record's hash and link is checked on the way; the result has
        the same :meth:`state_digest` and :attr:`head_hash` as the original.
        """
        return replay_capsule(cls, records, clock=clock)

    # ------------------------------------------------------------------ files
    @classmethod
    def open(cls, path: Any, *, create: bool = False, readonly: bool = False, fsync: str = "always",
             batch_size: int = 1024, clock: Optional[Clock] = None, **kwargs: Any) -> "Thermogram":
        """A file-backed capsule: snapshot ``path`` plus a durable journal beside it.

        Every record is appended to ``path + ".journal"`` before the call that
        made it returns (``fsync``: ``"always"`` default, ``"batch"`` every
        ``batch_size`` records, ``"never"``). :meth:`checkpoint` writes a new
        snapshot and starts a new journal segment (old ones are archived, not
        deleted). Opening replays the journal and cuts a torn tail. One writer
        at a time (a lock file; a second gets :class:`LockedError`); any number
        of ``readonly=True`` readers. With ``create=True`` a missing file is
        created from ``kwargs`` (``name``, ``rule``, ``thermal_config``, ...).
        Use as a context manager or call :meth:`close`.
        """
        from .journal import open_capsule
        return open_capsule(cls, path, create=create, readonly=readonly, fsync=fsync,
                            batch_size=batch_size, clock=clock, **kwargs)

    @property
    def path(self) -> Optional[str]:
        """The snapshot path of a file-backed capsule, else None."""
        return self._path

    @_locked
    def checkpoint(self) -> None:
        """Write a new snapshot atomically and start a new journal segment
        (the old one is archived beside it, not deleted).

        Raises
        ------
        DurabilityError
            A write, fsync or rename failed (or the writer had already failed): the
            writer is poisoned; the files still open to the records acknowledged so far.
        """
        if self._path is None or self._journal is None:
            raise ThermogramError("checkpoint() needs a capsule opened with Thermogram.open() for writing")
        self._journal.checkpoint(self)

    @_locked
    def journal_segments(self) -> List[str]:
        """Archived journal segments of a file-backed capsule, oldest first."""
        return [] if self._journal is None else self._journal.archived()

    @_locked
    def delete_archived_segments(self) -> int:
        """Delete archived journal segments (history before the last checkpoint
        then lives only in the snapshot). Returns how many were deleted."""
        return 0 if self._journal is None else self._journal.delete_archived()

    def close(self) -> None:
        """Flush and fsync the journal and release the writer's lock (file-backed capsules).

        The lock is released and the capsule becomes read-only even when the final flush
        fails (then :class:`DurabilityError` is raised). A writer poisoned by an earlier
        I/O error closes without writing anything more.
        """
        with self._lock:
            try:
                if self._journal is not None:
                    self._journal.close()
            finally:
                self._journal = None
                if self._lock_handle is not None:
                    self._lock_handle.release()
                    self._lock_handle = None
                if self._path is not None:
                    self._closed = not self._readonly
                    self._readonly = True

    def __enter__(self) -> "Thermogram":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def save(self, path: Any, format: str = "v2") -> None:
        """Save atomically (temp file, fsync, rename, fsync folder).

        ``format="v2"`` (default) keeps everything: state, configuration, the whole
        record history, extensions. ``format="v1"`` writes the reference crate's
        format (state and pending deltas only) so thermogram-rs can read it.

        Allowed on a writer poisoned by an I/O error (to rescue the state elsewhere).

        Raises
        ------
        DurabilityError
            A write, fsync or rename failed: ``path`` keeps its old content (or does not
            exist); a file-backed capsule's writer is poisoned.
        """
        from .io import save
        try:
            save(self, path, format)
        except DurabilityError:
            raise
        except OSError as e:
            err = DurabilityError(f"saving {path} failed: {e}")
            err.errno = e.errno
            j = self._journal
            raise (err if j is None else j.poison(err)) from e

    @classmethod
    def load(cls, path: Any, *, semantics: Optional[str] = None, clock: Optional[Clock] = None,
             verify: bool = True, max_bytes: Optional[int] = None,
             trusted_keys: Optional[Sequence[Any]] = None, require_signed: bool = False,
             journal: bool = True) -> "Thermogram":
        """Load a ``.thermo`` v2, the reference's ``.thermo`` v1, or its legacy JSON
        (detected from the bytes). Corrupt or hostile input raises :class:`FormatError`.

        A file-backed capsule's journal beside the snapshot (``PATH.journal``) is replayed
        too (``journal=True``, default), so the capsule holds every acknowledged record, as a
        read-only :meth:`open` would; ``journal=False`` loads the snapshot alone. The loaded
        capsule is in memory: it is not bound to the files.

        ``semantics`` applies to v1/JSON files (v2 files carry their own). With
        ``trusted_keys`` the loaded state must be one a trusted key signed, or the state
        its records replay to (see :meth:`verify`); ``require_signed=True`` also refuses
        records after the newest trusted signature (:func:`thermogram.trust.load_trusted`
        returns the capsule with its :class:`~thermogram.trust.TrustReport`).

        Raises
        ------
        FormatError
            The bytes are corrupt, hostile, or of an unknown format.
        ChainError
            With ``trusted_keys``: no trusted signature covers this state, or an unsigned
            tail with ``require_signed=True``.
        """
        from .io import load
        if require_signed and trusted_keys is None:
            raise ValidationError("require_signed=True needs trusted_keys")
        def snapshot() -> "Thermogram":
            return load(path, semantics=semantics, clock=clock, verify=verify or trusted_keys is not None,
                        max_bytes=Limits().max_file_bytes if max_bytes is None else max_bytes)
        if journal and isinstance(path, (str, os.PathLike)):
            # with the journal beside it, as a consistent pair even while a writer checkpoints
            from .journal import load_consistent
            t = load_consistent(os.fspath(path), snapshot)
        else:
            t = snapshot()
        if trusted_keys is not None:
            t.verify(trusted_keys=trusted_keys, require_signed=require_signed)
        return t

    @classmethod
    def recover(cls, path: Any, *, clock: Optional[Clock] = None):
        """Repair a file-backed capsule whose journal is damaged, keeping what verifies.

        Loads the snapshot, replays the journal segment frame by frame while each frame's
        checksum holds and its record continues the capsule, copies every byte after that
        verified prefix to a new ``PATH.journal.quarantine`` file (``.quarantine.1``, ...:
        an existing file is never overwritten) and fsyncs it, and only then cuts the
        segment to the verified prefix. Open the capsule afterwards with :meth:`open`.

        Returns
        -------
        thermogram.journal.RecoveryReport
            Counts and byte offsets: records kept, verified bytes, where verification
            stopped and why, bytes and complete frames quarantined, the quarantine file.

        Raises
        ------
        LockedError
            Another process holds the capsule open for writing.
        FormatError
            The snapshot itself does not verify (nothing is touched).
        DurabilityError
            A file operation failed (the segment is cut only after the quarantine copy
            is durable).
        """
        from .journal import recover_capsule
        return recover_capsule(cls, path, clock=clock)

    # ------------------------------------------------------------------ tables
    @_locked
    def to_arrow(self):
        """Every consolidated entry as a ``pyarrow.Table`` (see :mod:`thermogram.arrow`)."""
        from .arrow import to_arrow
        return to_arrow(self)

    @classmethod
    def from_arrow(cls, table: Any, name: Optional[str] = None, **kwargs: Any) -> "Thermogram":
        """A new capsule holding the entries of an Arrow table written by :meth:`to_arrow`."""
        from .arrow import from_arrow
        return from_arrow(cls, table, name, **kwargs)

    @_locked
    def records_to_arrow(self):
        """The history, one row per record (with each record's bytes)."""
        from .arrow import records_to_arrow
        return records_to_arrow(self)

    @_locked
    def deltas_to_arrow(self):
        """Every delta since creation, one row each (batches expanded)."""
        from .arrow import deltas_to_arrow
        return deltas_to_arrow(self)

    @_locked
    def to_parquet(self, path: Any, **kwargs: Any) -> None:
        """Entries as a Parquet file."""
        from .arrow import to_parquet
        to_parquet(self, path, **kwargs)

    @classmethod
    def read_parquet(cls, path: Any, **kwargs: Any) -> "Thermogram":
        """A capsule from a Parquet file written by :meth:`to_parquet`."""
        from .arrow import read_parquet
        return read_parquet(cls, path, **kwargs)

    @_locked
    def export_to_json(self, path: Any = None, consolidate: Optional[bool] = None) -> Dict[str, Any]:
        """The reference's JSON export shape (see :func:`thermogram.arrow.export_to_json`)."""
        from .arrow import export_to_json
        return export_to_json(self, path, consolidate)

    @_locked
    def export_archive(self, folder: Any) -> str:
        """An immutable archive folder of Parquet files plus a SHA-256 manifest."""
        from .arrow import export_archive
        return export_archive(self, folder)

    @_locked
    def to_bytes(self, format: str = "v2") -> bytes:
        """The capsule encoded as ``.thermo`` bytes."""
        from .io import encode
        return encode(self, format)

    @classmethod
    def from_bytes(cls, data: bytes, *, semantics: Optional[str] = None, clock: Optional[Clock] = None,
                   verify: bool = True) -> "Thermogram":
        """Inverse of :meth:`to_bytes` (any supported format)."""
        from .io import decode
        return decode(data, semantics=semantics, clock=clock, verify=verify)

    # ------------------------------------------------------------------ digest, stats, display
    def state_digest(self) -> str:
        """SHA-256 (hex) over the whole logical state: every layer's entries sorted
        by key, the pending deltas in order, and the lifetime counters.

        Cached until the next change."""
        with self._lock:
            if self._digest is None:
                self._digest = self._compute_digest()
            return self._digest

    def _compute_digest(self) -> str:
        s = self._store
        rows = s.live_rows_sorted()
        kb, klen = s.keys.key_bytes(s.kid[rows])
        h = hashlib.sha256(b"thermogram:state:v2\x00")
        h.update(u64(len(rows)))
        h.update(s.layer[rows].tobytes())
        h.update(klen.astype(np.int64).tobytes())
        h.update(kb)
        h.update(s.vlen[rows].astype(np.int64).tobytes())
        h.update(s.values_of(rows).tobytes())
        h.update(s.pol[rows].tobytes() + s.mag[rows].tobytes() + s.count[rows].tobytes() + s.ts[rows].tobytes())
        p = self._pending
        c = p.columns()
        h.update(u64(p.n))
        h.update(s.keys.framed(c.kid))
        h.update(c.type.tobytes() + c.pol.tobytes() + c.mag.tobytes() + c.ts.tobytes() + c.vlen.tobytes())
        h.update(s.gather(c.voff, c.vlen, np.arange(p.n)).tobytes())
        h.update(u64(self.total_deltas % 2 ** 64) + u64(self.total_consolidations % 2 ** 64)
                 + i64(self.last_consolidation))
        h.update(b"\x00" if self.custom is None else b"\x01" + lp(self.custom))
        return h.hexdigest()

    @_locked
    def layer_counts(self) -> Dict[str, int]:
        """Entries per layer: ``{"hot": .., "warm": .., "cool": .., "cold": ..}``."""
        c = self._store.counts()
        return {st.label: int(c[int(st)]) for st in ThermalState}

    @_locked
    def strengths(self, state: Any) -> np.ndarray:
        """SIGNAL array of the strengths in one layer (row order)."""
        return self._store.strengths(int(ThermalState.parse(state)))

    @_locked
    def stats(self) -> ThermogramStats:
        """Sizes and lifetime counters."""
        c = self._store.counts()
        est = self._store.estimated_bytes()
        return ThermogramStats(
            total_keys=len(self.keys()), hot_entries=int(c[0]), warm_entries=int(c[1]),
            cool_entries=int(c[2]), cold_entries=int(c[3]), dirty_deltas=self._pending.n,
            total_deltas_lifetime=self.total_deltas, total_consolidations=self.total_consolidations,
            records=len(self._chain), created_at=self.created_at,
            last_consolidation=self.last_consolidation,
            estimated_size_bytes=est + self._pending.dirty_bytes)

    @_locked
    def total_entries(self) -> int:
        """Consolidated entries over all layers (a key in two layers counts twice)."""
        return int(self._store.counts().sum())

    def __len__(self) -> int:
        return len(self.keys())

    def __getitem__(self, key: str) -> np.ndarray:
        """``t[key]``: the key's current value, as :meth:`read`; a key it does not find
        raises :class:`KeyMissingError` (a ``KeyError``)."""
        value = self.read(key)
        if value is None:
            raise KeyMissingError(f"no key {key!r}")
        return value

    def __iter__(self) -> Iterator[str]:
        """Iterate over the keys (a snapshot: :meth:`keys` taken when iteration starts)."""
        return iter(self.keys())

    def read_f32(self, key: str) -> Optional[np.ndarray]:
        """The key's current value as signed float32 values (polarity × magnitude / 255,
        see :func:`~thermogram.signals_to_floats`), or None when :meth:`read` finds nothing."""
        from .signal import signals_to_floats
        value = self.read(key)
        return None if value is None else signals_to_floats(value)

    def to_pandas(self, values: str = "float32"):
        """Every consolidated entry as a ``pandas.DataFrame`` with an ordered categorical
        ``layer`` and datetime ``updated_at`` (see :func:`thermogram.arrow.to_pandas`)."""
        from .arrow import to_pandas
        return to_pandas(self, values)

    @_locked
    def __repr__(self) -> str:
        c = self.layer_counts()
        return (f"Thermogram({self.name!r}, hot={c['hot']}, warm={c['warm']}, cool={c['cool']}, "
                f"cold={c['cold']}, pending={self._pending.n}, records={len(self._chain)}, "
                f"head={self.head_hash[:12]}…)")

    @_locked
    def _repr_html_(self) -> str:
        rows = []
        for st in ThermalState:
            mags = self.strengths(st)["magnitude"]
            if len(mags):
                q = np.quantile(mags, [0.0, 0.25, 0.5, 0.75, 1.0]).round(1)
                qs = " / ".join(f"{v:g}" for v in q)
            else:
                qs = "—"
            rows.append(f"<tr><td>{st.label}</td><td style='text-align:right'>{len(mags)}</td>"
                        f"<td>{qs}</td></tr>")
        return (f"<div class='thermogram'><b>Thermogram</b> {self.name!r} "
                f"<small>({self.semantics} semantics, rule {self.rule.policy.reference_name})</small>"
                f"<table><tr><th>layer</th><th>entries</th><th>strength min / q1 / median / q3 / max</th></tr>"
                f"{''.join(rows)}</table>"
                f"pending deltas: {self._pending.n} · records: {len(self._chain)} · "
                f"head <code>{self.head_hash[:16]}</code></div>")


LOCK_FREE_SAFE: Dict[str, str] = {
    "__len__": "calls keys(), which holds the lock",
    "__enter__": "returns the capsule; touches no state",
    "__exit__": "calls close(), which holds the lock",
    "hot_keys": "calls keys_for_state(), which holds the lock",
    "warm_keys": "calls keys_for_state(), which holds the lock",
    "cool_keys": "calls keys_for_state(), which holds the lock",
    "cold_keys": "calls keys_for_state(), which holds the lock",
    "now": "calls the clock; touches no state",
    "read": ("a key read before and unchanged since is one dict lookup (atomic) in the read "
             "cache, which only the lock's holder changes, dropping a key before any change to "
             "its read result is released (EntryStore.rc); any other read holds the lock"),
    "read_f32": "calls read()",
    "to_pandas": "calls thermogram.arrow.to_arrow, which reads under the lock",
    "__iter__": "iterates a snapshot taken by keys(), which holds the lock",
    "save": "thermogram.io.save encodes and writes under the capsule's lock",
    "from_arrow": "builds a new capsule (no shared state)",
    "from_bytes": "builds a new capsule (no shared state)",
    "from_genesis": "builds a new capsule (no shared state)",
    "load": "builds a new capsule (no shared state)",
    "open": "builds a new capsule (no shared state)",
    "read_parquet": "builds a new capsule (no shared state)",
    "recover": "builds a new capsule (no shared state)",
    "replay": "builds a new capsule (no shared state)",
    "verify_inclusion": "a pure function of its arguments",
    "verify_consistency": "a pure function of its arguments",
}
"""Public methods of :class:`Thermogram` that do not take its lock themselves, and why that
is safe. Every other public method holds the lock for its whole run; properties read one
attribute (an atomic read), except :attr:`Thermogram.chain`, whose records a caller reads at
its own risk while other threads write (:meth:`Thermogram.records` copies them under the
lock). ``tests/test_thread_safety.py`` checks this table against the class by introspection."""


OPERATIONS: Dict[str, Callable[[Thermogram, Dict[str, Any], int], Any]] = {
    "configure": Thermogram._op_configure,
    "consolidate": Thermogram._op_consolidate,
    "apply_decay": Thermogram._op_apply_decay,
    "run_thermal_transitions": Thermogram._op_run_thermal_transitions,
    "crystallize": Thermogram._op_crystallize,
    "prune_hot": Thermogram._op_prune_hot,
    "warm": Thermogram._op_warm,
    "reinforce": Thermogram._op_reinforce,
    "weaken": Thermogram._op_weaken,
    "insert_entry": Thermogram._op_insert_entry,
    "set_custom": Thermogram._op_set_custom,
    "import": Thermogram._op_import,
    "sign_head": Thermogram._op_sign_head,
}
"""Every operation record kind, by its ``op`` name: ``fn(capsule, args, timestamp)`` applies it
to the state. Operations run live (:meth:`Thermogram._run_op`) and in replay through this table
only, so an ``op`` name outside it is rejected, never looked up as an attribute."""


def _frozen(a: Any) -> Any:
    """``a`` if it is a read-only array (nobody can change it in place), else a read-only copy."""
    if isinstance(a, np.ndarray) and a.flags.writeable:
        a = a.copy()
        a.flags.writeable = False
    return a


def _own_delta(d: Delta) -> Delta:
    """A copy of ``d`` the capsule can keep: its own fields, a read-only value, and every
    field checked again (the caller may have assigned any of them after construction)."""
    rec = d.copy()
    if not isinstance(rec.delta_type, DeltaType):
        raise ValidationError(f"unknown delta type {rec.delta_type!r}")
    if not isinstance(rec.id, str) or not rec.id:
        raise ValidationError("a delta's id must be a non-empty str")
    v = rec.value
    if not isinstance(v, np.ndarray) or (v.dtype is not SIGNAL and v.dtype != SIGNAL) or v.ndim != 1:
        v = as_signal_vector(v)
    if v.flags.writeable:
        v = _frozen(v)
    rec.value = v
    if not isinstance(rec.strength, Signal):
        rec.strength = Signal.coerce(rec.strength, "strength")
    ts = rec.timestamp
    if not isinstance(ts, int) or isinstance(ts, bool) or not -(2 ** 63) <= ts < 2 ** 63:
        raise ValidationError(f"timestamp must be int64 nanoseconds, got {ts!r}")
    if rec.prev_hash is not None and not isinstance(rec.prev_hash, str):
        raise ValidationError("prev_hash must be a hex str or None")
    rec._hash = None
    return rec


def _own_batch(b: DeltaBatch) -> DeltaBatch:
    """A copy of ``b`` the capsule can keep (writable columns copied and frozen), checked again."""
    rec = b.copy()
    for name in ("types", "values", "offsets", "strengths", "timestamps"):
        setattr(rec, name, _frozen(getattr(rec, name)))
    if not isinstance(rec.id, str) or not rec.id:
        raise ValidationError("a batch's id must be a non-empty str")
    rec._validate()
    rec._hash = None
    return rec


# ---------------------------------------------------------------------- the persistence seam
# The only ways other modules (codecs, the journal, Arrow import, colonies) read a capsule's
# internals or build and patch one. Nothing outside this module touches a private attribute
# of a Thermogram: they call these functions. They are internal (not exported by the package).


@dataclass(frozen=True)
class CapsuleParts:
    """The internal parts of a capsule that encoders and exporters read (under its lock).

    Treat them as read-only: every change goes through the capsule's methods or the
    functions of this seam, so that it is recorded.
    """

    store: EntryStore
    chain: HashChain
    pending: PendingLog


@contextmanager
def capsule_parts(t: Thermogram) -> Iterator[CapsuleParts]:
    """Hold ``t``'s lock and give its parts (see :class:`CapsuleParts`)."""
    with t._lock:
        yield CapsuleParts(t._store, t._chain, t._pending)


@contextmanager
def replay_mode(t: Thermogram) -> Iterator[Thermogram]:
    """Hold ``t``'s lock with automatic consolidation off (records are being restored, not made)."""
    with t._lock:
        was = t._replaying
        t._replaying = True
        try:
            yield t
        finally:
            t._replaying = was


def replay_records(t: Thermogram, records: Iterable[Record]) -> None:
    """Append already-hashed ``records`` to ``t`` (each checked to link to the head), applying
    each to the state exactly as :meth:`Thermogram.replay` does."""
    with replay_mode(t):
        for rec in records:
            t._replay_record(rec)


def commit_delta(t: Thermogram, d: Delta) -> None:
    """Link ``d`` to the head and apply it as pending, without the live checks and without
    automatic consolidation (deltas imported from a file written elsewhere)."""
    with replay_mode(t):
        t._commit(d, lambda: t._apply_delta_state(d))


def record_import(t: Thermogram, entries: Dict[str, Any], metadata: Dict[str, Any],
                  timestamp: Optional[int] = None) -> None:
    """Bulk-load entries (and, from ``metadata``, the lifetime counters) as one ``import``
    record timestamped ``timestamp`` (default: now). ``entries`` holds ``keys`` (list of str),
    ``layer``, ``pol``, ``mag``, ``count``, ``ts`` columns, flat ``values`` and their
    ``lengths``; the caller has checked that no (key, layer) pair repeats or exists."""
    with replay_mode(t):
        t._run_op("import", {"entries": entries, "metadata": metadata},
                  t._now() if timestamp is None else int(timestamp))


def check_batch(t: Thermogram, batch: DeltaBatch) -> None:
    """Raise what :meth:`Thermogram.apply_batch` would raise for ``batch`` (its rows' limits,
    the pending limit, a replayed id, a fork, deletes of keys the capsule does not hold),
    changing nothing: a colony checks every member's part first, so a multi-member batch
    applies everywhere or nowhere."""
    with t._lock:
        if not isinstance(batch, DeltaBatch):
            raise ValidationError(f"check_batch needs a DeltaBatch, got {type(batch).__name__}")
        try:
            batch._validate()
        except (TypeError, AttributeError) as e:
            raise ValidationError(f"malformed batch: {e}") from None
        t._preflight_batch(batch)


def attach_files(t: Thermogram, path: str, journal: Any, lock_handle: Any, readonly: bool) -> None:
    """Make ``t`` file-backed: its snapshot ``path``, the journal every record is appended to
    (None when read-only), and the writer's lock."""
    with t._lock:
        t._journal = journal
        t._lock_handle = lock_handle
        t._path = path
        t._readonly = readonly


def imported_capsule(name: str, id: str, rule: PlasticityRule, thermal_config: ThermalConfig,
                     policy: ConsolidationPolicy, semantics: str, created_at: int,
                     clock: Optional[Clock] = None) -> Thermogram:
    """An empty capsule whose genesis record is timestamped ``created_at`` (a file written
    elsewhere is being imported: its own creation time, so loading is deterministic)."""
    genesis = OpRecord("genesis", {"name": name, "id": id, "rule": rule.to_dict(),
                                   "thermal_config": thermal_config.to_dict(), "policy": policy.to_dict(),
                                   "semantics": semantics, "format": 1}, int(created_at))
    genesis._link(None)
    return Thermogram.from_genesis(genesis, clock=clock)


def pending_since_consolidation(records: Sequence[Record]) -> int:
    """Index of the first record after the newest ``consolidate`` record (0 if there is none):
    the deltas recorded from there on are the pending ones."""
    i = len(records)
    while i > 0 and not (records[i - 1].kind == "op" and records[i - 1].op == "consolidate"):
        i -= 1
    return i


def replay_capsule(cls: Any, records: Iterable[Record], *, clock: Optional[Clock] = None,
                   rehash: bool = True) -> Thermogram:
    """What :meth:`Thermogram.replay` does (a new ``cls`` capsule rebuilt from ``records``,
    each checked); verification calls this directly, not the overridable classmethod.
    ``rehash=False`` checks links but not hashes: for records whose hashes the caller has
    just checked (:meth:`Thermogram.verify` runs :meth:`Chain.verify` first)."""
    it = iter(records)
    try:
        first = next(it)
    except StopIteration:
        raise ChainError("no records to replay", index=0) from None
    if not isinstance(first, OpRecord) or first.prev_hash is not None:
        raise ChainError("the first record must be a genesis record that links to nothing", index=0)
    t = cls.from_genesis(first, clock=clock, verify=rehash)
    t._replaying = True
    try:
        for rec in it:
            t._replay_record(rec, rehash)
    finally:
        t._replaying = False
    return t


def _install_config(t: Thermogram, records: Sequence[Record], config: Dict[str, Any]) -> None:
    """Install the configuration the records make (genesis, then every ``configure`` record)
    on ``t``; ``config`` (a file's own copy, as dicts) must agree with it, else
    :class:`ChainError`: a file's configuration is bound to its hashed records."""
    from .opcheck import config_from_dict
    latest: Dict[str, Any] = {}
    for i, rec in enumerate(records):
        if rec.kind == "op" and rec.op == "configure" and isinstance(rec.args, dict):
            for name in ("rule", "thermal_config", "policy"):
                if name in rec.args:
                    latest[name] = (i, rec.args[name])
    for name, cls, attr in (("rule", PlasticityRule, "_rule"), ("thermal_config", ThermalConfig, "_thermal_config"),
                            ("policy", ConsolidationPolicy, "_policy")):
        if name in latest:
            i, d = latest[name]
            want = config_from_dict(cls, d, f"record {i} (configure) {name}", i)
        else:
            want = getattr(t, attr)
        if name in config:
            got = config_from_dict(cls, config[name], f"the file's {name}", len(records))
            if got.to_dict() != want.to_dict():
                raise ChainError(f"the file's {name} is not the one its records configure "
                                 "(rewritten outside the chain)", index=len(records))
        setattr(t, attr, want)


def restore_capsule(records: Sequence[Record], *, keys: Any, arena: np.ndarray, arena_hash: Any,
                    entry_columns: Sequence[np.ndarray], value_offsets: Sequence[Optional[int]],
                    config: Dict[str, Any], counters: Dict[str, Any], custom: Optional[bytes],
                    clock: Optional[Clock] = None, verify: bool = True) -> Thermogram:
    """A capsule rebuilt from a snapshot: its records (genesis first), its key table, value
    arena (and the arena's running xxh3 state), its entry columns (``layer, kid, pol, mag,
    count, ts, voff, vlen``), and where each record's value sits in the arena
    (``value_offsets[i]`` or None/negative: the record holds its own value).

    The records are appended to the chain (``verify``: each one re-hashed; else their stored
    hashes are trusted, the file's checksums having caught corruption); the pending deltas are
    re-applied from the records after the newest consolidation; ``config`` (``rule``,
    ``thermal_config``, ``policy`` as dicts, each optional) and ``counters`` (``created_at``,
    ``last_consolidation``, ``total_deltas``, ``total_consolidations``) are installed.

    Raises
    ------
    ChainError, ValidationError
        A record does not verify or link, or a configuration does not parse.
    FormatError
        The entry columns are inconsistent (a repeated (key, layer) pair, or a key id or
        layer out of range; the message says which entry).
    """
    if not records:
        raise ChainError("no records to restore", index=0)
    t = Thermogram.from_genesis(records[0], clock=clock, verify=verify)
    chain = t._chain
    if verify:
        for rec in records[1:]:
            chain.append_verified(rec, rehash=True)
    else:
        chain.adopt_trusted(records[1:])
    s = t._store
    bad = s.load_snapshot(keys, arena, arena_hash, *entry_columns)
    if bad >= 0:
        raise FormatError(f"entry columns: entry {bad} repeats a (key, layer) pair or is out of range")
    ro = s.vals_ro
    for rec, o in zip(records, value_offsets):
        if o is not None and o >= 0:
            if rec.kind == "op":  # an operation whose ``value`` argument lives in the arena
                n = rec.args["value"].shape[0]
                rec.args["value"] = ro[o:o + n]
                s.track(rec.args, "value", o, n)
                continue
            attr = "value" if rec.kind == "delta" else "values"
            n = getattr(rec, attr).shape[0]
            setattr(rec, attr, ro[o:o + n])
            s.track(rec, attr, o, n)
    with replay_mode(t):
        for j in range(pending_since_consolidation(records), len(records)):
            rec = records[j]
            o = value_offsets[j]
            o = None if o is None or o < 0 else o
            if rec.kind == "delta":
                t._apply_delta_state(rec, o)
            elif rec.kind == "batch":
                t._apply_batch_state(rec, o)
    _install_config(t, records, config)
    t.created_at = int(counters["created_at"])
    t.last_consolidation = int(counters["last_consolidation"])
    t.total_deltas = int(counters["total_deltas"])
    t.total_consolidations = int(counters["total_consolidations"])
    t.custom = custom
    t._digest = None
    return t
