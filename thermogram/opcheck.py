"""Checks that a replayed record may be applied to the state it meets.

A record read from a file or a journal carries a correct hash, but a hash only proves
that nobody changed the record after it was hashed: whoever wrote it may have forged it.
Live calls validate their arguments before they make a record; replay (journal tails,
:meth:`Thermogram.replay`, :meth:`Thermogram.verify`) runs the same records through the
functions of this module first, so a record that no live call could have made (a
``reinforce`` of a key no layer holds, a ``warm`` of a key that is not cold, arguments of
the wrong type or out of range) is a :class:`~thermogram.errors.ChainError` naming the
record, and never reaches the store's kernels.

Every check only reads; it changes nothing.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional

import numpy as np

from .delta import _DELETE, Delta, DeltaBatch, DeltaType
from .errors import ChainError, ThermogramError

__all__ = ["check_op_args", "check_delta_record", "config_from_dict", "OP_CHECKS"]

_I64 = (-(2 ** 63), 2 ** 63)
_U64 = (0, 2 ** 64)
# what a malformed value can raise while being parsed; turned into ChainError
_PARSE_ERRORS = (ThermogramError, KeyError, IndexError, TypeError, ValueError, AttributeError,
                 OverflowError, ArithmeticError, RecursionError)


class _Ctx:
    """What a check may read: the capsule's store, thermal config, semantics and lookups."""

    __slots__ = ("store", "thermal_config", "fixed", "lookup", "index", "prev_hash")

    def __init__(self, store: Any, thermal_config: Any, fixed: bool, lookup: Callable[[str], Any],
                 index: int, prev_hash: Optional[str]):
        self.store = store
        self.thermal_config = thermal_config
        self.fixed = fixed
        self.lookup = lookup
        self.index = index
        self.prev_hash = prev_hash


def _fail(ctx: _Ctx, op: str, why: str) -> ChainError:
    return ChainError(f"record {ctx.index} ({op}) cannot be replayed: {why}", index=ctx.index)


def _is_int(v: Any, lo: int, hi: int) -> bool:
    return type(v) is int and lo <= v < hi


def _is_key(v: Any, allow_empty: bool = True) -> bool:
    """A str key encodable as UTF-8. The empty key is a valid key in records: the reference
    crate writes it, and a file it wrote is imported with it under either semantics (only
    *new* writes under ``semantics="fixed"`` refuse it, before any record is made)."""
    if type(v) is not str or (not v and not allow_empty):
        return False
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _is_hex(v: Any, n: int) -> bool:
    if type(v) is not str or len(v) != n:
        return False
    try:
        bytes.fromhex(v)
    except ValueError:
        return False
    return True


def _is_signal_pair(v: Any) -> bool:
    return (isinstance(v, (list, tuple)) and len(v) == 2 and _is_int(v[0], -1, 2)
            and _is_int(v[1], 0, 256))


def _exact_keys(ctx: _Ctx, op: str, args: Dict[str, Any], required: set, optional: set = frozenset()) -> None:
    got = set(args)
    missing = required - got
    extra = got - required - set(optional)
    if missing or extra:
        raise _fail(ctx, op, f"arguments {sorted(got)}; expected {sorted(required)}"
                    + (f" (optionally {sorted(optional)})" if optional else ""))


def config_from_dict(cls: Any, d: Any, what: str, index: int = 0) -> Any:
    """``cls.from_dict(d)`` for a configuration read from a record or a file; anything
    malformed is a :class:`ChainError` naming ``what``."""
    if not isinstance(d, dict):
        raise ChainError(f"{what} must be a mapping, got {type(d).__name__}", index=index)
    try:
        return cls.from_dict(d)
    except _PARSE_ERRORS as e:
        raise ChainError(f"{what} is malformed: {e}", index=index) from None


# ----------------------------------------------------------------------------- per operation
def _no_args(ctx: _Ctx, op: str, args: Dict[str, Any]) -> None:
    _exact_keys(ctx, op, args, set())


def _configure(ctx: _Ctx, op: str, args: Dict[str, Any]) -> None:
    from .consolidation import ConsolidationPolicy
    from .plasticity import PlasticityRule
    from .thermal import ThermalConfig
    _exact_keys(ctx, op, args, set(), {"rule", "thermal_config", "policy"})
    if not args:
        raise _fail(ctx, op, "no configuration to change")
    for name, cls in (("rule", PlasticityRule), ("thermal_config", ThermalConfig),
                      ("policy", ConsolidationPolicy)):
        if name in args:
            config_from_dict(cls, args[name], f"record {ctx.index} (configure) {name}", ctx.index)


def _warm(ctx: _Ctx, op: str, args: Dict[str, Any]) -> None:
    _exact_keys(ctx, op, args, {"keys"})
    keys = args["keys"]
    if not isinstance(keys, list) or not keys:
        raise _fail(ctx, op, "keys must be a non-empty list of str")
    if not ctx.thermal_config.allow_warming:
        raise _fail(ctx, op, "warming is disabled by the thermal config")
    seen = set()
    for k in keys:
        if not _is_key(k):
            raise _fail(ctx, op, f"key {k!r} is not a non-empty UTF-8 str")
        if k in seen:
            raise _fail(ctx, op, f"key {k!r} appears twice")
        seen.add(k)
        if ctx.store.cold_kid(k) is None:
            raise _fail(ctx, op, f"key {k!r} has no cold entry")


def _adjust(ctx: _Ctx, op: str, args: Dict[str, Any]) -> None:
    _exact_keys(ctx, op, args, {"key", "amount"})
    k = args["key"]
    if not _is_key(k):
        raise _fail(ctx, op, f"key {k!r} is not a non-empty UTF-8 str")
    if not _is_signal_pair(args["amount"]):
        raise _fail(ctx, op, f"amount {args['amount']!r} is not a [polarity, magnitude] signal")
    if ctx.store.hottest_row(k) < 0:
        raise _fail(ctx, op, f"no layer holds key {k!r}")


def _insert_entry(ctx: _Ctx, op: str, args: Dict[str, Any]) -> None:
    from .signal import SIGNAL
    _exact_keys(ctx, op, args, {"key", "value", "strength", "layer", "update_count", "updated_at"})
    if not _is_key(args["key"]):
        raise _fail(ctx, op, "key is not a non-empty UTF-8 str")
    v = args["value"]
    if not isinstance(v, np.ndarray) or v.dtype != SIGNAL or v.ndim != 1:
        raise _fail(ctx, op, "value is not a 1-D SIGNAL array")
    if len(v) and (int(v["polarity"].min()) < -1 or int(v["polarity"].max()) > 1):
        raise _fail(ctx, op, "value holds an invalid polarity")
    if not _is_signal_pair(args["strength"]):
        raise _fail(ctx, op, "strength is not a [polarity, magnitude] signal")
    if not _is_int(args["layer"], 0, 4):
        raise _fail(ctx, op, "layer is not 0..3")
    if not _is_int(args["update_count"], *_U64):
        raise _fail(ctx, op, "update_count is not a uint64")
    if not _is_int(args["updated_at"], *_I64):
        raise _fail(ctx, op, "updated_at is not int64 nanoseconds")


def _set_custom(ctx: _Ctx, op: str, args: Dict[str, Any]) -> None:
    _exact_keys(ctx, op, args, {"custom"})
    if args["custom"] is not None and type(args["custom"]) is not bytes:
        raise _fail(ctx, op, "custom is not bytes or None")


def _int_column(ctx: _Ctx, op: str, e: Dict[str, Any], name: str, n: int, lo: int, hi: int) -> None:
    a = e.get(name)
    if not isinstance(a, np.ndarray) or a.dtype.kind not in "iu" or a.shape != (n,):
        raise _fail(ctx, op, f"entries.{name} is not an integer column of {n} rows")
    if n and (int(a.min()) < lo or int(a.max()) >= hi):
        raise _fail(ctx, op, f"entries.{name} is out of [{lo}, {hi})")


def _import(ctx: _Ctx, op: str, args: Dict[str, Any]) -> None:
    from .signal import SIGNAL
    _exact_keys(ctx, op, args, {"entries", "metadata"})
    e, m = args["entries"], args["metadata"]
    if not isinstance(e, dict) or not isinstance(m, dict):
        raise _fail(ctx, op, "entries and metadata must be mappings")
    keys = e.get("keys")
    if not isinstance(keys, list) or not all(_is_key(k) for k in keys):
        raise _fail(ctx, op, "entries.keys is not a list of non-empty UTF-8 str")
    n = len(keys)
    _int_column(ctx, op, e, "layer", n, 0, 4)
    _int_column(ctx, op, e, "pol", n, -1, 2)
    _int_column(ctx, op, e, "mag", n, 0, 256)
    _int_column(ctx, op, e, "count", n, *_U64)
    _int_column(ctx, op, e, "ts", n, *_I64)
    _int_column(ctx, op, e, "lengths", n, 0, 2 ** 62)
    vals = e.get("values")
    if not isinstance(vals, np.ndarray) or vals.dtype != SIGNAL or vals.ndim != 1:
        raise _fail(ctx, op, "entries.values is not a flat SIGNAL array")
    if int(e["lengths"].sum()) != vals.shape[0]:
        raise _fail(ctx, op, "entries.lengths do not sum to the number of values")
    if len(vals) and (int(vals["polarity"].min()) < -1 or int(vals["polarity"].max()) > 1):
        raise _fail(ctx, op, "entries.values hold an invalid polarity")
    pairs = set(zip(keys, e["layer"].tolist()))
    if len(pairs) != n:
        raise _fail(ctx, op, "a (key, layer) pair repeats")
    s = ctx.store
    for k, lay in pairs:
        kid = s.keys.get(k)
        if kid is not None and s.row(kid, lay) >= 0:
            raise _fail(ctx, op, f"key {k!r} already has an entry in layer {lay}")
    for name, lo, hi in (("last_consolidation", *_I64), ("total_deltas", *_U64),
                         ("total_consolidations", *_U64)):
        if not _is_int(m.get(name), lo, hi):
            raise _fail(ctx, op, f"metadata.{name} is not an integer in [{lo}, {hi})")
    pending = m.get("pending", 0)
    if not _is_int(pending, 0, m["total_deltas"] + 1):
        raise _fail(ctx, op, "metadata.pending is not an integer in [0, total_deltas]")
    c = m.get("custom")
    if c is not None and type(c) is not bytes:
        raise _fail(ctx, op, "metadata.custom is not bytes or None")


def _sign_head(ctx: _Ctx, op: str, args: Dict[str, Any]) -> None:
    _exact_keys(ctx, op, args, {"alg", "key_id", "size", "head", "root", "signature"}, {"state"})
    if args["alg"] not in ("hmac-sha256", "ed25519"):
        raise _fail(ctx, op, f"unknown signature algorithm {args['alg']!r}")
    if type(args["key_id"]) is not str or not args["key_id"]:
        raise _fail(ctx, op, "key_id is not a str")
    # whether size/head/root match the records is for verify_trust to judge (it names the
    # signature that does not match); here only their shape is checked
    if not _is_int(args["size"], 1, ctx.index + 1):
        raise _fail(ctx, op, f"size {args['size']!r} is not a record count in 1..{ctx.index}")
    if not _is_hex(args["head"], 64):
        raise _fail(ctx, op, "head is not a 64-character hex digest")
    if type(args["root"]) is not bytes or len(args["root"]) != 32:
        raise _fail(ctx, op, "root is not 32 bytes")
    if type(args["signature"]) is not bytes or not 0 < len(args["signature"]) <= 512:
        raise _fail(ctx, op, "signature is not bytes")
    if "state" in args and not _is_hex(args["state"], 64):
        raise _fail(ctx, op, "state is not a 64-character hex digest")


OP_CHECKS: Dict[str, Callable[[_Ctx, str, Dict[str, Any]], None]] = {
    "configure": _configure,
    "consolidate": _no_args,
    "apply_decay": _no_args,
    "run_thermal_transitions": _no_args,
    "crystallize": _no_args,
    "prune_hot": _no_args,
    "warm": _warm,
    "reinforce": _adjust,
    "weaken": _adjust,
    "insert_entry": _insert_entry,
    "set_custom": _set_custom,
    "import": _import,
    "sign_head": _sign_head,
}
"""The argument check of every operation kind, by ``op`` name (the same names as
:data:`thermogram.core.OPERATIONS`)."""


def check_op_args(store: Any, thermal_config: Any, fixed: bool, lookup: Callable[[str], Any], index: int,
                  prev_hash: Optional[str], op: Any, args: Any, timestamp: Any) -> None:
    """Raise :class:`ChainError` (``index``) unless operation ``op`` with ``args`` at
    ``timestamp`` is one a live call could have recorded on the state given."""
    ctx = _Ctx(store, thermal_config, fixed, lookup, index, prev_hash)
    check = OP_CHECKS.get(op) if type(op) is str else None
    if check is None:
        raise ChainError(f"unknown operation {op!r} in record {index}", index=index)
    if not isinstance(args, dict) or not all(type(k) is str for k in args):
        raise _fail(ctx, op, "arguments are not a mapping of names")
    if not _is_int(timestamp, *_I64):
        raise _fail(ctx, op, "timestamp is not int64 nanoseconds")
    check(ctx, op, args)


def check_delta_record(fixed: bool, lookup: Callable[[str], Any], index: int, rec: Any) -> None:
    """Raise :class:`ChainError` (``index``) unless the delta or batch ``rec`` could have been
    applied live: every field well-formed, and (``fixed`` semantics) every delete names a key
    the state holds at that point."""
    what = f"record {index} ({rec.kind})"
    if isinstance(rec, Delta):
        if not isinstance(rec.delta_type, DeltaType) or not _is_key(rec.key) \
                or not _is_int(rec.timestamp, *_I64):
            raise ChainError(f"{what} is malformed", index=index)
        if fixed and rec.delta_type == _DELETE and lookup(rec.key) is None:
            raise ChainError(f"{what} deletes {rec.key!r}, which the capsule does not hold", index=index)
        return
    if not isinstance(rec, DeltaBatch):
        raise ChainError(f"{what} is not a chain record", index=index)
    try:
        rec._validate()
    except _PARSE_ERRORS as e:
        raise ChainError(f"{what} is malformed: {e}", index=index) from None
    if fixed and len(rec) and bool((rec.types == int(DeltaType.DELETE)).any()):
        exists: Dict[str, bool] = {}
        for i, k in enumerate(rec.keys):
            if int(rec.types[i]) == int(DeltaType.DELETE):
                ok = exists.get(k)
                if ok is None:
                    ok = lookup(k) is not None
                if not ok:
                    raise ChainError(f"{what} row {i} deletes {k!r}, which the capsule does not hold",
                                     index=index)
                exists[k] = False
            else:
                exists[k] = True
