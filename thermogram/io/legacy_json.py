"""The reference's legacy JSON capsule (serde's ``Thermogram``): read only.

Entries of the four layers become one ``import`` record; pending deltas keep the
reference's SHA-256 chain, which is checked before they are applied.
"""
from __future__ import annotations

import json
from typing import Any

import numpy as np

from ..consolidation import ConsolidationPolicy
from ..delta import Delta
from ..errors import FormatError, ThermogramError, ValidationError
from ..plasticity import PlasticityRule
from ..signal import SIGNAL, Signal
from ..thermal import ThermalConfig
from .thermo_v1 import _assemble_import, reference_delta_hash
from .timetext import parse_rfc3339

__all__ = ["decode_legacy_json"]


def _json_signal(v: Any, what: str) -> Signal:
    try:
        return Signal(v["polarity"], v["magnitude"]) if isinstance(v, dict) else Signal.coerce(v, what)
    except (ValidationError, KeyError, TypeError):
        raise FormatError(f"bad signal in {what}: {v!r}") from None


def decode_legacy_json(data: bytes, *, semantics: str = "fixed", clock=None):
    """A capsule from the reference's serde JSON (``Thermogram`` serialised)."""
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise FormatError(f"not a .thermo file or JSON capsule: {e}") from None
    if not isinstance(doc, dict):
        raise FormatError("JSON capsule must be an object")
    if "plasticity_rule" not in doc and {"thermogram_id", "state", "history"} <= doc.keys():
        raise FormatError("this is a JSON export (export_to_json / thermogram export --to json), "
                          "not a capsule: it has no configuration or record hashes to rebuild one "
                          "from; load the .thermo file it was exported from")
    try:
        rule = PlasticityRule.from_dict(doc["plasticity_rule"])
        cfg = ThermalConfig.from_dict(doc["thermal_config"])
        policy = ConsolidationPolicy.from_dict(doc["consolidation_policy"])
        meta = doc["metadata"]
        if not isinstance(meta, dict):
            raise FormatError(f"JSON capsule: metadata must be an object, got {type(meta).__name__}")
        for name in ("total_deltas", "total_consolidations"):
            v = meta.get(name)
            if type(v) is not int or not 0 <= v < 2 ** 64:
                raise FormatError(f"JSON capsule: metadata.{name} must be an integer in [0, 2**64), got {v!r}")
        c = meta.get("custom")
        if c is not None and not (isinstance(c, list) and all(type(x) is int and 0 <= x < 256 for x in c)):
            raise FormatError("JSON capsule: metadata.custom must be null or a list of byte values")
        cols = {k: [] for k in ("keys", "layer", "pol", "mag", "count", "ts", "values", "lengths")}
        for lay, field in enumerate(("hot_entries", "warm_entries", "cool_entries", "cold_entries")):
            for key, e in (doc.get(field) or {}).items():
                vals = np.array([_json_signal(x, "value").to_tuple() for x in e["value"]], SIGNAL).reshape(-1)
                st = _json_signal(e["strength"], "strength")
                cols["keys"].append(str(e.get("key", key)))
                cols["layer"].append(np.array([lay], np.uint8))
                cols["pol"].append(np.array([st.polarity], np.int8))
                cols["mag"].append(np.array([st.magnitude], np.uint8))
                cols["count"].append(np.array([int(e["update_count"])], np.uint64))
                cols["ts"].append(np.array([parse_rfc3339(e["updated_at"])], np.int64))
                cols["values"].append(vals)
                cols["lengths"].append(np.array([len(vals)], np.int64))
        pending = []
        chain = doc.get("dirty_chain") or {}
        prev_h = None
        for i, d in enumerate(chain.get("deltas") or []):
            m = d["metadata"]
            delta = Delta(d["delta_type"], d["key"],
                          np.array([_json_signal(x, "value").to_tuple() for x in d["value"]], SIGNAL).reshape(-1),
                          source=m["source"], strength=_json_signal(m["strength"], "strength"),
                          timestamp=parse_rfc3339(m["timestamp"]), id=d["id"],
                          observation_count=m.get("observation_count"),
                          custom=None if m.get("custom") is None else bytes(m["custom"]))
            if d.get("prev_hash") != prev_h or reference_delta_hash(delta, d.get("prev_hash")) != d.get("hash"):
                raise FormatError(f"JSON capsule: pending delta {i} fails chain verification")
            prev_h = d["hash"]
            pending.append(delta)
        if chain.get("head_hash") != prev_h:
            raise FormatError("JSON capsule: head hash does not match the last pending delta")
        custom = meta.get("custom")
        return _assemble_import(str(doc["name"]), str(doc["id"]), rule, cfg, policy, semantics,
                                clock, parse_rfc3339(meta["created_at"]), parse_rfc3339(meta["last_consolidation"]),
                                int(meta["total_deltas"]), int(meta["total_consolidations"]),
                                None if custom is None else bytes(custom), cols, pending, "json")
    except FormatError:
        raise
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, OverflowError, RecursionError,
            ThermogramError) as e:  # e.g. "metadata": true (no .get) or a count past 2**64
        raise FormatError(f"JSON capsule is malformed: {e!r}") from None

