"""Distillation: the reference's rules (bit-exact float32), Arrow IPC transport and Ed25519 signing."""
import math

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import StepClock
from thermogram import ConsolidationPolicy, Thermogram, ThermogramError, ValidationError
from thermogram.distillation import (DeltaSource, DistillationConfig, SemanticBatch, SemanticDelta,
                                     SignatureError, ThermogramSnapshot, apply_delta_to_embedding,
                                     cosine_similarity, distill_learning)
from thermogram.errors import FormatError
from thermogram.kernels import colony as kc

F = np.float32
T0 = 1_700_000_000_000_000_000
DAY = 86_400 * 10 ** 9


def src(ctx="test"):
    return DeltaSource.self_learning(ctx)


# ------------------------------------------------------------------ naive twins (left-to-right float32)
def naive_sum_squares(x):
    acc = F(0.0)
    for v in np.asarray(x, np.float32):
        acc = F(acc + F(v * v))
    return acc


def naive_cosine(a, b):
    a = np.asarray(a, np.float32)
    b = np.asarray(b, np.float32)
    if len(a) != len(b) or not len(a):
        return F(0.0)
    dot = F(0.0)
    for x, y in zip(a, b):
        dot = F(dot + F(x * y))
    ma, mb = np.sqrt(naive_sum_squares(a)), np.sqrt(naive_sum_squares(b))
    if ma == 0 or mb == 0:
        return F(0.0)
    return F(dot / F(ma * mb))


floats = st.floats(-1e3, 1e3, allow_nan=False, width=32)


@given(st.lists(floats, max_size=40))
def test_sum_squares_kernel_matches_naive(xs):
    x = np.array(xs, np.float32)
    assert F(kc.sum_squares_f32(x)).tobytes() == naive_sum_squares(x).tobytes()


@given(st.integers(0, 24).flatmap(lambda n: st.tuples(st.lists(floats, min_size=n, max_size=n),
                                                     st.lists(floats, min_size=n, max_size=n))))
def test_cosine_matches_naive_bit_for_bit(ab):
    a, b = ab
    assert np.float32(cosine_similarity(a, b)).tobytes() == naive_cosine(a, b).tobytes()


@given(st.lists(st.lists(floats, max_size=9), max_size=12))
def test_row_magnitudes_kernel(rows):
    b = SemanticBatch("i", [SemanticDelta("c", r, 0.5, src(), timestamp=T0) for r in rows], created=T0)
    got = b.magnitudes()
    assert [float(g) for g in got] == [float(np.sqrt(naive_sum_squares(r))) for r in rows]
    assert [d.magnitude() for d in b] == [float(g) for g in got]


# ------------------------------------------------------------------ the reference's tests
def test_semantic_delta_creation():
    d = SemanticDelta("rust_types", [0.1, -0.2, 0.3], 0.8, src("learning types"))
    assert d.concept_anchor == "rust_types"
    assert d.strength == float(F(0.8))
    assert d.embedding_delta.dtype == np.float32 and d.tags == ()
    assert len(d.id) == 36 and d.source.task_context == "learning types"


def test_delta_magnitude():
    assert abs(SemanticDelta("t", [3.0, 4.0], 0.5, src()).magnitude() - 5.0) < 1e-3


def test_distill_learning():
    before = ThermogramSnapshot.from_centroid("snap1", [0.0, 0.0, 0.0], 10)
    after = ThermogramSnapshot.from_centroid("snap2", [0.2, 0.2, 0.2], 20)
    d = distill_learning(before, after, "test_concept", "learning test", DistillationConfig())
    assert d is not None and d.concept_anchor == "test_concept"
    mag = np.sqrt(naive_sum_squares(np.array([0.2] * 3, np.float32)))
    assert d.strength == float(min(F(mag * F(2.0)), F(1.0)))
    assert d.source == DeltaSource.self_learning("learning test")


def test_distill_insignificant():
    before = ThermogramSnapshot.from_centroid("snap1", [0.0, 0.0, 0.0], 10)
    after = ThermogramSnapshot.from_centroid("snap2", [0.001, 0.001, 0.001], 10)
    assert distill_learning(before, after, "c", "t", DistillationConfig()) is None


def test_distill_rules():
    b = ThermogramSnapshot.from_centroid("a", [0.0, 0.0], 10)
    # magnitude 0.1 passes 0.05, but strength 0.1 * 10/10 < 0.3
    assert distill_learning(b, ThermogramSnapshot("b", [0.1, 0.0], 10), "c", "t") is None
    # more entries raise the strength: 0.1 * 40/10 = 0.4
    d = distill_learning(b, ThermogramSnapshot("b", [0.1, 0.0], 40), "c", "t")
    assert d is not None and abs(d.strength - 0.4) < 1e-6
    # capped at 1, zero entries before counts as one
    d = distill_learning(ThermogramSnapshot("a", [0.0], 0), ThermogramSnapshot("b", [2.0], 5), "c", "t")
    assert d.strength == 1.0
    # dimension mismatch: nothing
    assert distill_learning(b, ThermogramSnapshot("b", [1.0, 1.0, 1.0], 10), "c", "t") is None
    # a custom config
    cfg = DistillationConfig(min_share_magnitude=0.5)
    assert distill_learning(b, ThermogramSnapshot("b", [0.3, 0.0], 40), "c", "t", cfg) is None


def test_cosine_similarity():
    assert abs(cosine_similarity([1.0, 0.0, 0.0], [1.0, 0.0, 0.0]) - 1.0) < 1e-3
    assert abs(cosine_similarity([1.0, 0.0, 0.0], [0.0, 1.0, 0.0])) < 1e-3
    assert abs(cosine_similarity([1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]) + 1.0) < 1e-3
    assert cosine_similarity([], []) == 0.0
    assert cosine_similarity([1.0, 2.0], [1.0]) == 0.0
    assert cosine_similarity([0.0, 0.0], [1.0, 1.0]) == 0.0


def test_apply_delta():
    d = SemanticDelta("t", [0.1, 0.2, 0.3], 1.0, src())
    r = apply_delta_to_embedding([1.0, 2.0, 3.0], d, 1.0)
    assert np.allclose(r, [1.1, 2.2, 3.3], atol=1e-3) and r.dtype == np.float32
    d = SemanticDelta("t", [0.1, 0.2, 0.3], 0.7, src())
    exact = (np.array([1.0, 2.0, 3.0], np.float32)
             + (d.embedding_delta * F(0.5)) * F(d.strength))
    assert apply_delta_to_embedding([1.0, 2.0, 3.0], d, 0.5).tobytes() == exact.tobytes()
    # length mismatch: the embedding comes back unchanged
    assert apply_delta_to_embedding([1.0, 2.0], d, 1.0).tolist() == [1.0, 2.0]


def test_semantic_batch():
    b = SemanticBatch("instance-1", [SemanticDelta("test", [0.1, 0.2], 0.8, src())])
    assert len(b.deltas) == 1 and b.source_instance == "instance-1"


# ------------------------------------------------------------------ deltas, sources, config
def test_significance_and_scaling():
    d = SemanticDelta("c", [0.3, 0.4], 0.3, src(), timestamp=T0, tags=["a"])
    assert d.is_significant(0.5) and not d.is_significant(0.6)
    assert not SemanticDelta("c", [0.3, 0.4], 0.29, src()).is_significant(0.1)
    s = d.scaled(0.5)
    assert s.id == d.id and s.timestamp == d.timestamp and s.tags == ("a",) and s.source == d.source
    assert s.embedding_delta.tobytes() == (d.embedding_delta * F(0.5)).tobytes()
    assert s.strength == float(F(d.strength) * F(0.5))
    assert d.with_tags(["x", "y"]).tags == ("x", "y") and d.tags == ("a",)
    with pytest.raises(ValueError):
        d.embedding_delta[0] = 1.0  # read-only


@pytest.mark.parametrize("bad", [[np.nan], [np.inf], [[1.0]], "abc", [1e39]])
def test_semantic_delta_rejects_bad_embeddings(bad):
    with pytest.raises(ValidationError):
        SemanticDelta("c", bad, 0.5, src())


def test_semantic_delta_validation():
    with pytest.raises(ValidationError):
        SemanticDelta(3, [1.0], 0.5, src())
    with pytest.raises(ValidationError):
        SemanticDelta("c", [1.0], float("nan"), src())
    with pytest.raises(ValidationError):
        SemanticDelta("c", [1.0], 0.5, "self")
    with pytest.raises(ValidationError):
        SemanticDelta("c", [1.0], 0.5, src(), timestamp=1.5)
    clock = StepClock()
    assert SemanticDelta("c", [1.0], 0.5, src(), clock=clock).timestamp == clock.last


def test_delta_sources():
    cases = [(DeltaSource.self_learning("t"), "task_context"), (DeltaSource.peer_learning("i-2", 5), "instance_id"),
             (DeltaSource.migration("v2"), "version"), (DeltaSource.skill_box("s"), "skill_id"),
             (DeltaSource.document_ingestion("doc"), "document_id")]
    for s, fieldname in cases:
        assert getattr(s, fieldname) == s.detail
        assert DeltaSource.from_dict(s.to_dict()) == s
        assert s.kind in DeltaSource.KINDS
    assert DeltaSource.peer_learning("i-2", 5).to_dict() == {"PeerLearning": {"instance_id": "i-2", "shared_at": 5}}
    assert DeltaSource.self_learning("t").to_dict() == {"SelfLearning": {"task_context": "t"}}
    assert DeltaSource.migration("v").task_context is None
    with pytest.raises(ValidationError):
        DeltaSource("nope", "x")
    with pytest.raises(ValidationError):
        DeltaSource("migration", "x", shared_at=3)
    with pytest.raises(ValidationError):
        DeltaSource.from_dict({"Unknown": {}})


def test_distillation_config():
    c = DistillationConfig()
    assert (c.min_share_magnitude, c.min_share_strength, c.max_delta_age_secs, c.peer_ingestion_scale,
            c.auto_share) == (float(F(0.05)), float(F(0.3)), 604_800, 0.5, False)
    assert DistillationConfig.from_dict(c.to_dict()) == c
    assert c.replace(auto_share=True).auto_share
    with pytest.raises(ValidationError):
        DistillationConfig(max_delta_age_secs=-1)
    with pytest.raises(ValidationError):
        DistillationConfig(peer_ingestion_scale=float("inf"))


def test_snapshot_from_memory():
    t = Thermogram("t", policy=ConsolidationPolicy.manual_only(), clock=StepClock())
    t.write("a", np.array([1.0, 0.0]))
    t.write("b", np.array([0.0, -1.0]))
    snap = ThermogramSnapshot.from_memory(t, "s1", with_entries=True, timestamp=T0)
    assert snap.entry_count == 2 and snap.centroid.tolist() == [0.5, -0.5]
    assert [k for k, _ in snap.entry_embeddings] == ["a", "b"]
    t.write("c", np.array([1.0]))
    with pytest.raises(ValidationError):
        ThermogramSnapshot.from_memory(t, "s2")
    assert ThermogramSnapshot.from_memory(t, "s3", keys=["a"]).centroid.tolist() == [1.0, 0.0]


# ------------------------------------------------------------------ batches
def batch(n=5, created=T0, dim=4, seed=0):
    rng = np.random.default_rng(seed)
    ds = [SemanticDelta(f"c{i}", rng.normal(size=dim).astype(np.float32) * (i / n), 0.2 + 0.15 * i,
                        DeltaSource.document_ingestion(f"doc{i}"), id=f"d{i}", timestamp=created - i * DAY,
                        tags=["t", str(i)]) for i in range(n)]
    return SemanticBatch("instance-a", ds, id="batch-1", created=created)


def test_filter_significant_and_age():
    b = batch(6)
    sig = b.filter_significant(0.3)
    assert [d.id for d in sig] == [d.id for d in b if d.is_significant(0.3)]
    assert sig.id == b.id and sig.created == b.created
    recent = b.filter_recent(2 * 86_400, now=T0)
    assert [d.id for d in recent] == ["d0", "d1", "d2"]
    assert [d.id for d in b.filter_recent(0, now=T0 - DAY)] == ["d0", "d1"]  # later stamps are kept
    with pytest.raises(ValidationError):
        b.filter_recent(-1)


def test_filtering_drops_the_signature():
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    key = Ed25519PrivateKey.generate()
    b = batch().sign(key)
    assert b.filter_significant(0.0).signature is None
    assert b.filter_recent(10 ** 6, now=T0).signature is None


def test_ingest():
    b = batch(6)
    cfg = DistillationConfig(max_delta_age_secs=4 * 86_400)
    got = b.ingest(cfg, now=T0)
    expect = [d for d in b.filter_recent(4 * 86_400, now=T0)
              if d.magnitude() >= cfg.min_share_magnitude and d.strength >= cfg.min_share_strength]
    assert [d.id for d in got] == [d.id for d in expect] and got
    for g, e in zip(got, expect):
        assert g.embedding_delta.tobytes() == (e.embedding_delta * F(0.5)).tobytes()
        assert g.source == DeltaSource.peer_learning("instance-a", b.created)


def test_arrow_ipc_roundtrip():
    b = batch(7)
    b.deltas.append(SemanticDelta("empty", [], 0.5, DeltaSource.peer_learning("x", 3), id="e", timestamp=1))
    data = b.to_ipc_bytes()
    back = SemanticBatch.from_ipc_bytes(data)
    assert back == b
    assert back[7].embedding_delta.shape == (0,) and back[7].source.shared_at == 3
    t = b.to_arrow()
    assert t.num_rows == 8 and t.schema.field("embedding_delta").type == pa.list_(pa.float32())
    assert SemanticBatch.from_arrow(t) == b
    assert SemanticBatch.from_ipc_bytes(SemanticBatch("i", [], id="x", created=1).to_ipc_bytes()).deltas == []


@pytest.mark.parametrize("data", [b"", b"garbage", b"\xff" * 64])
def test_ipc_garbage_is_a_format_error(data):
    with pytest.raises(FormatError):
        SemanticBatch.from_ipc_bytes(data)


def test_foreign_arrow_table_is_rejected():
    with pytest.raises(FormatError):
        SemanticBatch.from_arrow(pa.table({"a": [1]}))


# ------------------------------------------------------------------ signing
@pytest.fixture(scope="module")
def keys():
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    return Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()


def test_sign_and_verify(keys):
    k, other = keys
    b = batch().sign(k)
    assert b.verify(k.public_key()) and b.signer.startswith("ed25519:")
    assert b.is_signed_by(k.public_key()) and not b.is_signed_by(other.public_key())
    with pytest.raises(SignatureError):
        b.verify(other.public_key())
    back = SemanticBatch.from_ipc_bytes(b.to_ipc_bytes(), public_key=k.public_key())
    assert back == b and back.signer == b.signer
    # raw 32-byte keys work too
    from cryptography.hazmat.primitives import serialization
    raw_pub = k.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert b.verify(raw_pub)
    raw_priv = k.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                               serialization.NoEncryption())
    assert batch().sign(raw_priv).signature == b.signature  # Ed25519 is deterministic


def test_unsigned_batch_rejected_when_a_key_is_required(keys):
    k, _ = keys
    data = batch().to_ipc_bytes()
    assert SemanticBatch.from_ipc_bytes(data).signature is None
    with pytest.raises(SignatureError):
        SemanticBatch.from_ipc_bytes(data, public_key=k.public_key())
    with pytest.raises(SignatureError):
        batch().ingest(public_key=k.public_key(), now=T0)


@pytest.mark.parametrize("field", ["value", "strength", "anchor", "tags", "timestamp", "drop", "instance",
                                   "created", "source"])
def test_tampered_batch_is_rejected(keys, field):
    k, _ = keys
    t = batch().sign(k).to_arrow()
    meta = t.schema.metadata
    cols = {n: t.column(n).to_pylist() for n in t.column_names}
    if field == "value":
        cols["embedding_delta"][2][1] += 1e-3
    elif field == "strength":
        cols["strength"][0] = 0.99
    elif field == "anchor":
        cols["concept_anchor"][1] = "evil"
    elif field == "tags":
        cols["tags"][3] = ["t"]
    elif field == "timestamp":
        cols["timestamp"][0] += 1
    elif field == "source":
        cols["source_detail"][0] = "other-doc"
    elif field == "drop":
        cols = {n: v[:-1] for n, v in cols.items()}
    schema = t.schema
    tampered = pa.table({n: pa.array(v, schema.field(n).type) for n, v in cols.items()}).replace_schema_metadata(meta)
    if field == "instance":
        tampered = tampered.replace_schema_metadata({**meta, b"source_instance": b"mallory"})
    elif field == "created":
        tampered = tampered.replace_schema_metadata({**meta, b"created": str(T0 + 1).encode()})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, tampered.schema) as w:
        w.write_table(tampered)
    data = sink.getvalue().to_pybytes()
    assert SemanticBatch.from_ipc_bytes(data).signature is not None  # still decodes without a key
    with pytest.raises(SignatureError):
        SemanticBatch.from_ipc_bytes(data, public_key=k.public_key())


def test_changed_after_signing_is_rejected(keys):
    k, _ = keys
    b = batch().sign(k)
    b.deltas.pop()
    with pytest.raises(SignatureError):
        b.verify(k.public_key())
    b2 = batch().sign(k).with_signature(b"\x00" * 64)
    with pytest.raises(SignatureError):
        b2.verify(k.public_key())


def test_signing_needs_ed25519_keys():
    with pytest.raises(ValidationError):
        batch().sign(b"short secret")
    with pytest.raises(ValidationError):
        batch().verify("not a key")
    assert issubclass(SignatureError, ThermogramError)


def test_reprs():
    b = batch(25)
    assert "unsigned" in repr(b) and "25" in repr(b)
    assert "more" in b._repr_html_()
    assert "SemanticDelta" in repr(b[0]) and "document_ingestion" in repr(b[0].source)
    assert math.isfinite(b[1].magnitude())
