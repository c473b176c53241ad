"""Arrow and Parquet: entries and history as tables, JSON export, immutable archives.

Entry tables have one row per (key, layer) entry::

    key            string
    layer          string            ("hot", "warm", "cool", "cold")
    strength_polarity   int8
    strength_magnitude  uint8
    update_count   uint64
    updated_at     timestamp[ns, tz=UTC]
    value          list<struct<polarity: int8, magnitude: uint8>>

They open directly in pandas (``table.to_pandas()``), polars
(``polars.from_arrow``) and duckdb (``duckdb.sql("select * from tbl")``).
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, List, Optional

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .io import Reader, atomic_write, decode_record, encode_record, rfc3339
from .errors import FormatError, ValidationError
from .signal import SIGNAL
from .thermal import ThermalState

if TYPE_CHECKING:  # pragma: no cover
    from .core import Thermogram

__all__ = ["SIGNAL_TYPE", "ENTRY_SCHEMA", "to_arrow", "from_arrow", "records_to_arrow", "deltas_to_arrow",
           "to_parquet", "read_parquet", "export_to_json", "export_archive", "verify_archive",
           "ArchiveReport", "signals_to_arrow", "signals_from_arrow"]

SIGNAL_TYPE = pa.struct([("polarity", pa.int8()), ("magnitude", pa.uint8())])
LAYERS = ["hot", "warm", "cool", "cold"]
ENTRY_SCHEMA = pa.schema([
    ("key", pa.string()), ("layer", pa.string()), ("strength_polarity", pa.int8()),
    ("strength_magnitude", pa.uint8()), ("update_count", pa.uint64()),
    ("updated_at", pa.timestamp("ns", tz="UTC")), ("value", pa.list_(SIGNAL_TYPE)),
])


def signals_to_arrow(flat: np.ndarray, offsets: np.ndarray) -> pa.ListArray:
    """A ``list<struct<polarity, magnitude>>`` array from a flat SIGNAL buffer and offsets."""
    pol = pa.array(np.ascontiguousarray(flat["polarity"]), pa.int8())
    mag = pa.array(np.ascontiguousarray(flat["magnitude"]), pa.uint8())
    inner = pa.StructArray.from_arrays([pol, mag], fields=list(SIGNAL_TYPE))
    return pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32, copy=False), pa.int32()), inner)


def signals_from_arrow(col: Any):
    """``(flat SIGNAL array, int64 offsets)`` from a list-of-signal column (any chunking)."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    if not pa.types.is_list(col.type) and not pa.types.is_large_list(col.type):
        raise ValidationError(f"value column must be a list of signals, got {col.type}")
    if col.null_count:
        raise ValidationError("value column has nulls")
    offsets = np.asarray(col.offsets, dtype=np.int64)
    values = col.values
    if not pa.types.is_struct(values.type):
        raise ValidationError(f"value items must be struct<polarity, magnitude>, got {values.type}")
    start, end = int(offsets[0]), int(offsets[-1])
    values = values.slice(start, end - start)
    pol = np.asarray(values.field("polarity").cast(pa.int8()), dtype=np.int8)
    mag = np.asarray(values.field("magnitude").cast(pa.uint8()), dtype=np.uint8)
    flat = np.empty(len(pol), SIGNAL)
    flat["polarity"] = pol
    flat["magnitude"] = mag
    if len(pol) and (pol.min() < -1 or pol.max() > 1):
        raise ValidationError("value polarity must be -1, 0 or +1")
    return flat, offsets - start


def to_arrow(t: "Thermogram") -> pa.Table:
    """Every consolidated entry as an Arrow table (:data:`ENTRY_SCHEMA`), rows by (layer, key)."""
    from .core import capsule_parts
    with capsule_parts(t) as parts:
        s = parts.store
        rows = s.live_rows_sorted()
        names = s.keys.take(s.kid[rows].tolist())
        vlen = s.vlen[rows]
        flat = s.values_of(rows)
        offsets = np.zeros(len(rows) + 1, np.int64)
        np.cumsum(vlen, out=offsets[1:])
        layer = pa.DictionaryArray.from_arrays(pa.array(s.layer[rows].astype(np.int8)), pa.array(LAYERS))
        table = pa.Table.from_arrays([
            pa.array(names, pa.string()), layer.cast(pa.string()),
            pa.array(s.pol[rows], pa.int8()), pa.array(s.mag[rows], pa.uint8()),
            pa.array(s.count[rows], pa.uint64()),
            pa.array(s.ts[rows], pa.timestamp("ns", tz="UTC")),
            signals_to_arrow(flat, offsets)], schema=ENTRY_SCHEMA)
        meta = {"thermogram.name": t.name, "thermogram.id": t.id, "thermogram.head_hash": t.head_hash,
                "thermogram.state_digest": t.state_digest(), "thermogram.semantics": t.semantics,
                "thermogram.rule": json.dumps(t.rule.to_dict()),
                "thermogram.thermal_config": json.dumps(t.thermal_config.to_dict()),
                "thermogram.policy": json.dumps(t.policy.to_dict())}
    return table.replace_schema_metadata(meta)


def from_arrow(cls, table: Any, name: Optional[str] = None, **kwargs: Any) -> "Thermogram":
    """A new capsule whose layers hold the entries of ``table`` (one import record).

    Configuration comes from ``kwargs``, else from the table's schema metadata
    (as :func:`to_arrow` writes it), else the defaults.
    """
    from .consolidation import ConsolidationPolicy
    from .plasticity import PlasticityRule
    from .thermal import ThermalConfig
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    if not isinstance(table, pa.Table):
        raise ValidationError(f"from_arrow needs a pyarrow Table or RecordBatch, got {type(table).__name__}")
    missing = [f for f in ENTRY_SCHEMA.names if f not in table.column_names]
    if missing:
        raise ValidationError(f"entry table is missing columns {missing}")
    meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    if "rule" not in kwargs and "thermogram.rule" in meta:
        kwargs["rule"] = PlasticityRule.from_dict(json.loads(meta["thermogram.rule"]))
    if "thermal_config" not in kwargs and "thermogram.thermal_config" in meta:
        kwargs["thermal_config"] = ThermalConfig.from_dict(json.loads(meta["thermogram.thermal_config"]))
    if "policy" not in kwargs and "thermogram.policy" in meta:
        kwargs["policy"] = ConsolidationPolicy.from_dict(json.loads(meta["thermogram.policy"]))
    t = cls(name if name is not None else meta.get("thermogram.name", "thermogram"), **kwargs)
    n = table.num_rows
    keys = table.column("key").to_pylist()
    for k in keys:
        if not isinstance(k, str) or not k:
            raise ValidationError("entry keys must be non-empty strings")
    try:
        layer = np.array([ThermalState.parse(x) for x in table.column("layer").to_pylist()], np.uint8)
    except ValidationError as e:
        raise ValidationError(f"layer column: {e}") from None
    if len(set(zip(keys, layer.tolist()))) != n:
        raise ValidationError("a key appears twice in one layer")
    pol = np.asarray(table.column("strength_polarity").cast(pa.int8()), np.int8)
    if n and (pol.min() < -1 or pol.max() > 1):
        raise ValidationError("strength polarity must be -1, 0 or +1")
    mag = np.asarray(table.column("strength_magnitude").cast(pa.uint8()), np.uint8)
    count = np.asarray(table.column("update_count").cast(pa.uint64()), np.uint64)
    ts = np.asarray(table.column("updated_at").cast(pa.timestamp("ns", tz="UTC")).cast(pa.int64()), np.int64)
    flat, offsets = signals_from_arrow(table.column("value"))
    entries = {"keys": keys, "layer": layer, "pol": pol, "mag": mag, "count": count, "ts": ts,
               "values": flat, "lengths": np.diff(offsets)}
    metadata = {"last_consolidation": t.last_consolidation, "total_deltas": 0, "total_consolidations": 0,
                "custom": None, "pending": 0, "source": "arrow"}
    from .core import record_import
    record_import(t, entries, metadata)
    return t


def records_to_arrow(t: "Thermogram") -> pa.Table:
    """One row per record: index, kind, op (or delta type), key, deltas, timestamp, hashes, and
    ``payload`` (the record's bytes, so an archive can be replayed)."""
    from .core import capsule_parts
    with capsule_parts(t):  # the chain, batches' key ids and the value arena, read under the lock
        idx, kind, op, key, n, ts, h, prev, payload = ([] for _ in range(9))
        for i, r in enumerate(t.chain.records):
            idx.append(i)
            kind.append(r.kind)
            if r.kind == "op":
                op.append(r.op)
                key.append(r.args.get("key") if isinstance(r.args.get("key"), str) else None)
                n.append(0)
            elif r.kind == "delta":
                op.append(r.delta_type.name.lower())
                key.append(r.key)
                n.append(1)
            else:
                op.append("batch")
                key.append(None)
                n.append(len(r))
            ts.append(r.timestamp)
            h.append(r.hash)
            prev.append(r.prev_hash)
            payload.append(encode_record(r))
        return pa.table({"index": pa.array(idx, pa.int64()), "kind": pa.array(kind, pa.string()),
                         "op": pa.array(op, pa.string()), "key": pa.array(key, pa.string()),
                         "deltas": pa.array(n, pa.int64()),
                         "timestamp": pa.array(ts, pa.int64()).cast(pa.timestamp("ns", tz="UTC")),
                         "hash": pa.array(h, pa.string()), "prev_hash": pa.array(prev, pa.string()),
                         "payload": pa.array(payload, pa.binary())})


def deltas_to_arrow(t: "Thermogram") -> pa.Table:
    """One row per delta since creation (batches expanded): record index, id, type, key,
    value, strength, timestamp, source."""
    from .core import capsule_parts
    with capsule_parts(t):  # the chain, batches' key ids and the value arena, read under the lock
        rec_i, ids, types, keys, pols, mags, ts, src = ([] for _ in range(8))
        vals: List[np.ndarray] = []
        for i, r in enumerate(t.chain.records):
            if r.kind == "delta":
                rec_i.append(i)
                ids.append(r.id)
                types.append(r.delta_type.name.lower())
                keys.append(r.key)
                pols.append(r.strength.polarity)
                mags.append(r.strength.magnitude)
                ts.append(r.timestamp)
                src.append(r.source)
                vals.append(r.value)
            elif r.kind == "batch":
                m = len(r)
                rec_i.extend([i] * m)
                ids.extend(f"{r.id}#{j}" for j in range(m))
                types.extend(("create", "update", "delete", "merge")[c] for c in r.types.tolist())
                keys.extend(r.keys)
                pols.extend(r.strengths["polarity"].tolist())
                mags.extend(r.strengths["magnitude"].tolist())
                ts.extend(r.timestamps.tolist())
                src.extend([r.source] * m)
                vals.extend(r.value(j) for j in range(m))
        lens = np.array([len(v) for v in vals], np.int64)
        offsets = np.zeros(len(vals) + 1, np.int64)
        np.cumsum(lens, out=offsets[1:])
        flat = np.concatenate(vals) if vals else np.zeros(0, SIGNAL)
        return pa.table({"record": pa.array(rec_i, pa.int64()), "id": pa.array(ids, pa.string()),
                         "delta_type": pa.array(types, pa.string()), "key": pa.array(keys, pa.string()),
                         "value": signals_to_arrow(flat, offsets),
                         "strength_polarity": pa.array(pols, pa.int8()),
                         "strength_magnitude": pa.array(mags, pa.uint8()),
                         "timestamp": pa.array(ts, pa.int64()).cast(pa.timestamp("ns", tz="UTC")),
                         "source": pa.array(src, pa.string())})


def to_parquet(t: "Thermogram", path: Any, **kwargs: Any) -> None:
    """Entries as a Parquet file (atomically written; ``kwargs`` go to ``pyarrow.parquet``)."""
    sink = pa.BufferOutputStream()
    pq.write_table(to_arrow(t), sink, **kwargs)
    atomic_write(os.fspath(path), sink.getvalue().to_pybytes())


def read_parquet(cls, path: Any, **kwargs: Any) -> "Thermogram":
    """A capsule from an entries Parquet file written by :func:`to_parquet`."""
    try:
        table = pq.read_table(os.fspath(path))
    except (pa.ArrowInvalid, OSError) as e:
        raise FormatError(f"{path}: not a readable Parquet file: {e}") from None
    return from_arrow(cls, table, **kwargs)


def export_to_json(t: "Thermogram", path: Any = None, consolidate: Optional[bool] = None) -> Dict[str, Any]:
    """The reference's ``export_to_json`` shape (``thermogram_id``, ``name``, ``state``,
    ``history``, ``metadata``); written to ``path`` if given.

    With ``semantics="reference"`` (or ``consolidate=True``) it consolidates first and
    lists cold then hot entries, as the reference. Otherwise nothing changes and
    ``state`` lists every layer's entries (each with its ``layer``), and ``history``
    every delta since creation.
    """
    ref = t.semantics == "reference"
    if consolidate if consolidate is not None else ref:
        t.consolidate()
    sig = lambda p, m: {"polarity": int(p), "magnitude": int(m)}  # noqa: E731
    layers = (3, 0) if ref else (0, 1, 2, 3)
    state = []
    for lay in layers:
        for e in t.entries(lay):
            item = {"key": e["key"], "value": [sig(p, m) for p, m in e["value"].tolist()],
                    "strength": sig(*e["strength"]), "update_count": e["update_count"]}
            if not ref:
                item["layer"] = LAYERS[lay]
            state.append(item)
    history = []
    recs = t.chain.records
    start = 0
    if ref:
        start = len(recs)
        while start > 0 and not (recs[start - 1].kind == "op" and recs[start - 1].op == "consolidate"):
            start -= 1
    for r in recs[start:]:
        for d in r.deltas():
            history.append({"timestamp": rfc3339(d.timestamp), "delta_type": d.delta_type.name.capitalize(),
                            "key": d.key, "strength": sig(*d.strength), "hash": d.hash})
    doc = {"thermogram_id": t.id, "name": t.name, "state": state, "history": history,
           "metadata": {"exported_at": rfc3339(t.now()), "thermogram_created_at": rfc3339(t.created_at),
                        "last_consolidation": rfc3339(t.last_consolidation), "total_deltas": t.total_deltas,
                        "total_consolidations": t.total_consolidations, "total_entries": len(state)}}
    if path is not None:
        atomic_write(os.fspath(path), json.dumps(doc, indent=2).encode())
    return doc


# ----------------------------------------------------------------------------- archives
@dataclass
class ArchiveReport:
    """Result of :func:`verify_archive`."""

    ok: bool
    changed: List[str] = field(default_factory=list)
    missing: List[str] = field(default_factory=list)
    extra: List[str] = field(default_factory=list)
    problems: List[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.ok


def _sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def export_archive(t: "Thermogram", folder: Any) -> str:
    """Write an immutable archive folder: ``state.parquet``, ``deltas.parquet``,
    ``records.parquet`` (with every record's bytes) and ``manifest.json`` (SHA-256 of
    every file, chain head, state digest). Files are made read-only. The folder must
    not exist yet. Returns its path."""
    folder = os.fspath(folder)
    if os.path.exists(folder):
        raise ValidationError(f"{folder} exists; an archive is written once into a new folder")
    os.makedirs(folder)
    from .core import capsule_parts
    with capsule_parts(t) as parts:
        tables = {"state.parquet": to_arrow(t), "deltas.parquet": deltas_to_arrow(t),
                  "records.parquet": records_to_arrow(t)}
        head, digest = t.head_hash, t.state_digest()
        name, tid, n = t.name, t.id, len(parts.chain)
    files = {}
    for fname, table in tables.items():
        p = os.path.join(folder, fname)
        pq.write_table(table, p)
        files[fname] = _sha256_file(p)
    manifest = {"format": "thermogram-archive/1", "name": name, "id": tid, "head_hash": head,
                "state_digest": digest, "records": n, "created_at": rfc3339(t.now()), "files": files}
    mp = os.path.join(folder, "manifest.json")
    atomic_write(mp, json.dumps(manifest, indent=2, sort_keys=True).encode())
    for fname in list(files) + ["manifest.json"]:
        os.chmod(os.path.join(folder, fname), stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    return folder


def verify_archive(folder: Any, *, replay: bool = True) -> ArchiveReport:
    """Check an archive: every file's SHA-256 against the manifest, no file missing or
    extra, and (with ``replay``) that the records replay to the manifest's head and
    state digest."""
    from .core import Thermogram
    folder = os.fspath(folder)
    rep = ArchiveReport(ok=False)
    mp = os.path.join(folder, "manifest.json")
    try:
        manifest = json.loads(open(mp, "rb").read())
        files = manifest["files"]
        assert isinstance(files, dict)
    except Exception as e:  # noqa: BLE001 - any unreadable manifest is a failed check
        rep.problems.append(f"manifest.json unreadable: {e}")
        return rep
    present = set(os.listdir(folder)) - {"manifest.json"}
    rep.missing = sorted(set(files) - present)
    rep.extra = sorted(present - set(files))
    for fname in sorted(set(files) & present):
        if _sha256_file(os.path.join(folder, fname)) != files[fname]:
            rep.changed.append(fname)
    if replay and not (rep.missing or rep.changed) and "records.parquet" in files:
        try:
            payloads = pq.read_table(os.path.join(folder, "records.parquet")).column("payload").to_pylist()
            recs = [decode_record(Reader(p, what="archive")) for p in payloads]
            u = Thermogram.replay(recs)
            if u.head_hash != manifest.get("head_hash"):
                rep.problems.append("records do not end at the manifest's head hash")
            if u.state_digest() != manifest.get("state_digest"):
                rep.problems.append("records do not replay to the manifest's state digest")
        except Exception as e:  # noqa: BLE001
            rep.problems.append(f"records do not replay: {e}")
    rep.ok = not (rep.missing or rep.extra or rep.changed or rep.problems)
    return rep


def to_pandas(t: "Thermogram", values: str = "float32"):
    """Every consolidated entry as a ``pandas.DataFrame``, rows by (layer, key).

    Columns as in :func:`to_arrow`, with ``layer`` an ordered categorical (hot < warm <
    cool < cold, so sorting and grouping follow the thermal order, not the alphabet) and
    ``updated_at`` a ``datetime64[ns, UTC]`` column. ``values="float32"`` (default) gives each
    row's ``value`` as a float32 array of signed values (polarity × magnitude / 255, as
    :func:`thermogram.signals_to_floats`); ``values="signals"`` keeps the SIGNAL vectors.
    Needs pandas.
    """
    import pandas as pd
    from .signal import signals_to_floats
    if values not in ("float32", "signals"):
        raise ValidationError(f"values must be 'float32' or 'signals', got {values!r}")
    table = to_arrow(t)
    flat, offsets = signals_from_arrow(table.column("value"))
    df = table.drop_columns(["value"]).to_pandas()
    df["layer"] = pd.Categorical(df["layer"], categories=LAYERS, ordered=True)
    conv = signals_to_floats(flat) if values == "float32" else flat
    df["value"] = pd.Series(np.split(conv, offsets[1:-1]) if len(df) else [], index=df.index, dtype=object)
    return df
