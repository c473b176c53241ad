"""Bad input raises a ThermogramError and changes nothing (the inputs of the integrity issue)."""
import json

import numpy as np
import pytest

from conftest import StepClock
from thermogram import (ConsolidationPolicy, DeltaBatch, FormatError, LimitError, ReplayError, Thermogram,
                        ThermogramError, ValidationError, signal_vector)
from thermogram.colony import ThermogramColony
from thermogram.ternary import PackedTernary


# ------------------------------------------------------------------ colony.apply_batch: all or nothing
def _colony(**kw):
    return ThermogramColony("c", "c", members=4, clock=StepClock(), policy=ConsolidationPolicy.manual_only(), **kw)


def _member_state(c):
    return [(m.state_digest(), m.head_hash, len(m.records())) for m in c.members]


def _keys_on_two_members(c, n=40):
    keys = [f"key{i}" for i in range(n)]
    owners = {c.route(k) for k in keys}
    assert len(owners) >= 2
    return keys


def test_multi_member_batch_over_one_members_pending_limit_changes_nothing():
    from thermogram import Limits
    keys = [f"key{i}" for i in range(40)]
    probe = _colony()
    counts = np.bincount([probe.route(k) for k in keys], minlength=4)
    assert (counts > 0).sum() >= 2 and counts.max() > counts[counts > 0].min()
    c = _colony(limits=Limits(max_pending=int(counts.max()) - 1))  # only the largest part is too big
    before = _member_state(c)
    with pytest.raises(LimitError):
        c.apply_batch(DeltaBatch.from_arrays(keys, [signal_vector([(1, 1)])] * len(keys), timestamps=2))
    assert _member_state(c) == before


@pytest.mark.parametrize("bad", ["long-key", "long-value", "replayed-id"])
def test_multi_member_batch_is_all_or_nothing(bad):
    from thermogram import Limits
    c = _colony(limits=Limits(max_key_bytes=64, max_value_len=8))
    keys = _keys_on_two_members(c)
    vals = [signal_vector([(1, 1)])] * len(keys)
    c.apply_batch(DeltaBatch.from_arrays(keys[:4], vals[:4], timestamps=1, id="first"))
    before = _member_state(c)
    if bad == "long-key":
        keys = keys[:-1] + ["x" * 200]  # the last row's member refuses it
    elif bad == "long-value":
        vals = vals[:-1] + [signal_vector([(1, 1)] * 9)]
    bid = "first" if bad == "replayed-id" else "second"
    with pytest.raises(ThermogramError) as ei:
        c.apply_batch(DeltaBatch.from_arrays(keys, vals, timestamps=2, id=bid))
    if bad in ("long-key", "long-value"):
        assert isinstance(ei.value, LimitError)
    assert _member_state(c) == before  # no member changed


def test_replayed_single_member_batch_is_refused():
    c = _colony()
    b = DeltaBatch.from_arrays(["a"], [signal_vector([(1, 1)])], timestamps=1, id="once")
    c.apply_batch(b)
    with pytest.raises(ReplayError):
        c.apply_batch(b)


# ------------------------------------------------------------------ DeltaBatch integer inputs
def test_uint64_timestamp_past_int64_is_refused():
    with pytest.raises(ValidationError, match="timestamps"):
        DeltaBatch.from_arrays(["a"], [signal_vector([(1, 1)])], timestamps=np.array([2 ** 63], np.uint64))
    b = DeltaBatch.from_arrays(["a"], [signal_vector([(1, 1)])], timestamps=np.array([2 ** 63 - 1], np.uint64))
    assert int(b.timestamps[0]) == 2 ** 63 - 1


@pytest.mark.parametrize("n", [1, 2, 3])
def test_float_offsets_are_refused_not_read_as_values(n):
    flat = signal_vector([(1, 1)] * (2 * n))
    offs = np.arange(n + 1, dtype=np.float64) * 2
    with pytest.raises(ValidationError, match="offsets"):
        DeltaBatch.from_arrays([f"k{i}" for i in range(n)], (flat, offs), timestamps=1)


def test_uint64_offsets_past_int64_are_refused():
    flat = signal_vector([(1, 1)] * 2)
    with pytest.raises(ValidationError):
        DeltaBatch.from_arrays(["a"], (flat, np.array([0, 2 ** 63], np.uint64)), timestamps=1)


def test_two_rows_given_as_a_tuple_of_vectors_still_work():
    b = DeltaBatch.from_arrays(["a", "b"], (signal_vector([(1, 1)]), np.array([0.5, 1.0, -1.0])), timestamps=1)
    assert b.value(1).tolist() == [(1, 127), (1, 255), (-1, 255)]


# ------------------------------------------------------------------ sizes, JSON, colony.save
@pytest.mark.parametrize("n", [2 ** 62, 2 ** 63 - 1])
def test_packed_ternary_zeros_huge_is_a_limit_error(n):
    with pytest.raises(LimitError):
        PackedTernary.zeros(n)


def test_packed_ternary_from_bytes_huge_length_is_a_limit_error():
    with pytest.raises(ValidationError):
        PackedTernary.from_bytes(b"\x00", 2 ** 62)


def _legacy_doc():
    t = Thermogram("j", clock=StepClock())
    return {"id": "abc", "name": "from-json", "plasticity_rule": t.rule.to_dict(),
            "thermal_config": t.thermal_config.to_dict(),
            "consolidation_policy": {"triggers": ["Manual"], "enable_pruning": True, "enable_merging": True},
            "metadata": {"created_at": "2024-12-25T00:43:20Z", "last_consolidation": "2024-12-25T00:44:20Z",
                         "total_deltas": 0, "total_consolidations": 0, "custom": None},
            "hot_entries": {}, "warm_entries": {}, "cool_entries": {}, "cold_entries": {},
            "dirty_chain": {"deltas": [], "head_hash": None}}


def test_legacy_json_loads():
    assert Thermogram.from_bytes(json.dumps(_legacy_doc()).encode()).name == "from-json"


@pytest.mark.parametrize("meta", [True, 5, "x", [], None])
def test_legacy_json_with_non_object_metadata_is_a_format_error(meta):
    doc = _legacy_doc()
    doc["metadata"] = meta
    with pytest.raises(FormatError):
        Thermogram.from_bytes(json.dumps(doc).encode())


@pytest.mark.parametrize("field,value", [("total_deltas", 2 ** 70), ("total_deltas", "x"), ("custom", 5),
                                         ("created_at", 5)])
def test_legacy_json_with_bad_metadata_fields_is_a_format_error(field, value):
    doc = _legacy_doc()
    doc["metadata"][field] = value
    with pytest.raises(FormatError):
        Thermogram.from_bytes(json.dumps(doc).encode())


def test_colony_save_onto_an_existing_file_is_a_thermogram_error(tmp_path):
    c = _colony()
    c.write("a", signal_vector([(1, 1)]))
    f = tmp_path / "plain-file"
    f.write_bytes(b"not a folder")
    with pytest.raises(ThermogramError, match="not a folder"):
        c.save(f)
    assert f.read_bytes() == b"not a folder"
    with pytest.raises(ThermogramError):
        c.save(f / "below")
