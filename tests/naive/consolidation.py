"""Twins of ``kernels/consolidation.py``: folding pending deltas into dict layers
(see :mod:`naive.thermal` for the layout)."""
from __future__ import annotations

from .plasticity import apply_update
from .thermal import sat_add_u64

CREATE, UPDATE, DELETE, MERGE = 0, 1, 2, 3


def whole_seconds(delta_ns: int) -> int:
    """Whole seconds, truncated toward zero."""
    q = abs(delta_ns) // 10**9
    return q if delta_ns >= 0 else -q


def plan_fold(pending, layers) -> int:
    """Upper bound on new rows: one per delete, plus one per distinct key with no hot entry."""
    rows = 0
    seen = set()
    for dtype, key, *_ in pending:
        if dtype == DELETE:
            rows += 1
        elif key not in seen and key not in layers[0]:
            rows += 1
            seen.add(key)
    return rows


def fold_pending(layers, pending, policy, decay_mag, lr_mag, fixed) -> list:
    """Fold ``pending`` (``(type, key, value, strength, ts)`` tuples, in order) into hot.

    Returns ``[merged, created, deleted, updated]``.
    """
    hot = layers[0]
    stats = [0, 0, 0, 0]

    def rule(e, strength, ts):
        return apply_update(policy, decay_mag, lr_mag, e["strength"], strength, whole_seconds(ts - e["ts"]))

    for dtype, key, value, strength, ts in pending:
        e = hot.get(key)
        if dtype in (CREATE, UPDATE):
            if e is not None:
                e["strength"] = rule(e, strength, ts)
                e["value"] = value
                e["ts"] = ts
                e["count"] = sat_add_u64(e["count"], 1)
                stats[3] += 1
            else:
                hot[key] = {"value": value, "strength": strength, "count": 1, "ts": ts}
                stats[1] += 1
        elif dtype == DELETE:
            for lay in (layers if fixed else [hot]):
                if lay.pop(key, None) is not None:
                    stats[2] += 1
        else:  # MERGE
            if e is not None:
                e["strength"] = rule(e, strength, ts)
                e["ts"] = ts
                e["count"] = sat_add_u64(e["count"], 1)
                stats[0] += 1
            elif fixed:
                c = next((layers[lay][key] for lay in (1, 2, 3) if key in layers[lay]), None)
                if c is not None:
                    hot[key] = {"value": c["value"], "strength": rule(c, strength, ts),
                                "count": sat_add_u64(c["count"], 1), "ts": ts}
                    stats[0] += 1
                else:
                    hot[key] = {"value": value, "strength": strength, "count": 1, "ts": ts}
                    stats[1] += 1
    return stats
