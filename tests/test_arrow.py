"""Arrow/Parquet tables, JSON export, archives."""
import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

import thermogram as tg
from conftest import StepClock, conformance_dir
from thermogram import (SIGNAL, ConsolidationPolicy, Delta, DeltaBatch, Signal, Thermogram, ValidationError,
                        signal_vector, verify_archive)
from thermogram.arrow import ENTRY_SCHEMA


def capsule():
    clock = StepClock()
    t = Thermogram("arrow", policy=ConsolidationPolicy.manual_only(), clock=clock)
    vals = np.zeros((30, 3), SIGNAL)
    vals["polarity"] = 1
    vals["magnitude"] = np.arange(30)[:, None]
    t.apply_batch(DeltaBatch.from_arrays([f"k{i:02d}" for i in range(30)], vals, Signal.positive(200), clock=clock))
    t.consolidate()
    t.insert_entry("cold-one", signal_vector([(-1, 5), (0, 0)]), Signal.positive(250), "cold", update_count=9)
    t.insert_entry("k01", signal_vector([]), Signal.negative(3), "cold", update_count=1)
    t.apply_delta(Delta.update("k00", signal_vector([(1, 77)]), clock=clock))
    return t


def test_to_arrow_schema_and_content():
    t = capsule()
    tab = t.to_arrow()
    assert tab.schema.equals(ENTRY_SCHEMA, check_metadata=False)
    assert tab.num_rows == t.total_entries() == 32
    rows = tab.to_pylist()
    cold = [r for r in rows if r["layer"] == "cold"]
    assert [r["key"] for r in cold] == ["cold-one", "k01"]
    assert cold[0]["value"] == [{"polarity": -1, "magnitude": 5}, {"polarity": 0, "magnitude": 0}]
    assert cold[0]["update_count"] == 9 and cold[1]["strength_polarity"] == -1
    assert tab.schema.metadata[b"thermogram.head_hash"].decode() == t.head_hash


def test_arrow_roundtrip_rebuilds_the_layers():
    t = capsule()
    u = Thermogram.from_arrow(t.to_arrow())
    for lay in tg.ThermalState:
        a = [(e["key"], e["value"].tolist(), e["strength"], e["update_count"], e["updated_at"]) for e in t.entries(lay)]
        b = [(e["key"], e["value"].tolist(), e["strength"], e["update_count"], e["updated_at"]) for e in u.entries(lay)]
        assert a == b
    assert u.rule == t.rule and u.thermal_config == t.thermal_config and u.name == t.name
    assert Thermogram.replay(u.records()).state_digest() == u.state_digest()


def test_from_arrow_rejects_bad_tables():
    t = capsule()
    tab = t.to_arrow()
    with pytest.raises(ValidationError, match="missing"):
        Thermogram.from_arrow(tab.drop(["layer"]))
    bad = tab.set_column(1, "layer", pa.array(["tepid"] * tab.num_rows))
    with pytest.raises(ValidationError):
        Thermogram.from_arrow(bad)
    with pytest.raises(ValidationError):
        Thermogram.from_arrow({"key": []})


def test_parquet_roundtrip_and_query_with_duckdb_pandas_and_datasets(tmp_path):
    t = capsule()
    p = tmp_path / "state.parquet"
    t.to_parquet(p)
    u = Thermogram.read_parquet(p)
    assert u.to_arrow().drop(["updated_at"]).equals(t.to_arrow().drop(["updated_at"]))
    dset = ds.dataset(str(p))
    assert dset.to_table(filter=ds.field("layer") == "cold").num_rows == 2
    import duckdb
    n_hot, max_mag = duckdb.sql(
        f"select count(*), max(strength_magnitude) from read_parquet('{p}') where layer = 'hot'").fetchall()[0]
    assert n_hot == 30 and max_mag == 200
    first = duckdb.sql(f"select value[1].magnitude from read_parquet('{p}') where key = 'k07' "
                       "and layer = 'hot'").fetchall()[0][0]
    assert first == 7
    import pandas as pd
    df = pd.read_parquet(p)
    assert set(df["layer"]) == {"hot", "cold"}


def test_records_and_deltas_tables():
    t = capsule()
    rec = t.records_to_arrow()
    assert rec.num_rows == len(t.records())
    assert rec.column("hash").to_pylist() == [r.hash for r in t.records()]
    assert rec.column("op").to_pylist()[0] == "genesis"
    d = t.deltas_to_arrow()
    assert d.num_rows == 31 and d.column("key").to_pylist()[-1] == "k00"
    assert d.column("value").to_pylist()[-1] == [{"polarity": 1, "magnitude": 77}]


def test_export_to_json_reference_shape():
    ref = conformance_dir() / "thermo" / "mixed20.thermo"
    assert ref.exists(), f"{ref} ships with the repository"
    expected = json.loads((conformance_dir() / "thermo" / "export_mixed20.json").read_text())
    t = Thermogram.load(ref, semantics="reference")
    doc = t.export_to_json()
    assert doc.keys() == expected.keys()
    assert doc["metadata"].keys() == expected["metadata"].keys()
    norm = lambda st: sorted((e["key"], json.dumps(e["value"], sort_keys=True), json.dumps(e["strength"], sort_keys=True),
                              e["update_count"]) for e in st)  # noqa: E731
    assert norm(doc["state"]) == norm(expected["state"])
    assert doc["history"] == expected["history"] == []
    for k in ("total_deltas", "total_consolidations", "total_entries", "thermogram_created_at"):
        assert doc["metadata"][k] == expected["metadata"][k]


def test_export_to_json_fixed_does_not_mutate(tmp_path):
    t = capsule()
    digest = t.state_digest()
    doc = t.export_to_json(tmp_path / "e.json")
    assert t.state_digest() == digest
    assert {e["layer"] for e in doc["state"]} == {"hot", "cold"}
    assert len(doc["history"]) == 31
    assert json.loads((tmp_path / "e.json").read_text()) == doc


def test_archive_export_and_verification(tmp_path):
    t = capsule()
    folder = tmp_path / "arch"
    t.export_archive(folder)
    assert sorted(os.listdir(folder)) == ["deltas.parquet", "manifest.json", "records.parquet", "state.parquet"]
    rep = verify_archive(folder)
    assert rep.ok, rep
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["head_hash"] == t.head_hash and manifest["state_digest"] == t.state_digest()
    with pytest.raises(ValidationError):
        t.export_archive(folder)


@pytest.mark.parametrize("attack", ["change", "delete", "add"])
def test_archive_detects_changed_missing_extra(tmp_path, attack):
    t = capsule()
    folder = tmp_path / "arch"
    t.export_archive(folder)
    target = folder / "state.parquet"
    if attack == "change":
        os.chmod(target, 0o644)
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 1
        target.write_bytes(bytes(data))
    elif attack == "delete":
        os.chmod(folder, 0o755)
        target.unlink()
    else:
        (folder / "sneaky.parquet").write_bytes(b"x")
    rep = verify_archive(folder)
    assert not rep.ok
    assert {"change": rep.changed, "delete": rep.missing, "add": rep.extra}[attack]
