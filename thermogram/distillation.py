"""Distillation: independent instances share what they learned as semantic deltas.

An instance does not send its weights. It sends the *idea*: how an embedding
of a concept moved while it learned (:class:`SemanticDelta`), with a strength
and where the learning came from (:class:`DeltaSource`). A peer folds it into
its own embeddings, scaled down (:func:`apply_delta_to_embedding`,
:meth:`SemanticBatch.ingest`), so instances end up with a loose shared
understanding rather than identical copies.

Types and rules follow the reference crate (``distill_learning``,
``is_significant``, ``cosine_similarity``, ...); sums run left to right in
float32 as the reference's do, so results match it bit for bit.

Beyond the reference, a :class:`SemanticBatch` travels as Arrow IPC bytes
(:meth:`SemanticBatch.to_ipc_bytes`) and can be signed with an Ed25519 key
(:meth:`SemanticBatch.sign`, :meth:`SemanticBatch.verify`; needs the optional
``cryptography`` package). A batch that is unsigned, tampered with or signed
by another key is rejected wherever a public key is required.

Note: this module's :class:`SemanticBatch` (a batch of semantic deltas between
instances) is distinct from ``thermogram.DeltaBatch`` (columnar capsule deltas
inside one capsule).

Why this module is one piece (~800 lines): the semantic delta, its source, the snapshot it is
distilled from and the signed batch that carries it between instances are one wire
format; keeping them together keeps that format readable in one place.
"""
from __future__ import annotations

import hashlib
import html
import time
from dataclasses import dataclass, replace as _dc_replace
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from .canonical import encode_value
from .delta import Clock, new_id
from .errors import FormatError, SignatureError, ThermogramError, ValidationError
from .kernels import colony as _k

__all__ = ["DeltaSource", "SemanticDelta", "DistillationConfig", "ThermogramSnapshot", "SemanticBatch",
           "SignatureError", "distill_learning", "apply_delta_to_embedding", "cosine_similarity",
           "SIGNIFICANT_STRENGTH"]

_F = np.float32
SIGNIFICANT_STRENGTH = 0.30000001192092896
"""The strength :meth:`SemanticDelta.is_significant` requires (the reference's 0.3, as float32)."""
_NS = 1_000_000_000
_SIGN_TAG = b"thermogram:distillation-batch:v1\x00"
_ARROW_TAG = b"thermogram.distillation"


# ----------------------------------------------------------------------------- validation helpers
def _now(timestamp: Any, clock: Optional[Clock]) -> int:
    if timestamp is None:
        t = clock() if clock is not None else time.time_ns()
    else:
        t = timestamp
    if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or not -(2 ** 63) <= int(t) < 2 ** 63:
        raise ValidationError(f"timestamps are int64 nanoseconds since the epoch, got {t!r}")
    return int(t)


def _real(v: Any, name: str) -> float:
    """A finite real number as the Python float of its float32 value."""
    if isinstance(v, np.ndarray) and v.size == 1 and v.ndim <= 1:
        v = v.reshape(())[()]
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise ValidationError(f"{name} must be a real number, got {type(v).__name__}")
    with np.errstate(over="ignore"):
        f = _F(v)
    if not np.isfinite(f):
        raise ValidationError(f"{name} must be finite (and within float32 range), got {v!r}")
    return float(f)


def _vec(v: Any, name: str) -> np.ndarray:
    """A read-only, finite, 1-D float32 copy."""
    try:
        with np.errstate(over="ignore"):
            a = np.array(v, dtype=np.float32)
    except (TypeError, ValueError):
        raise ValidationError(f"{name} must be a 1-D sequence of real numbers") from None
    if a.ndim != 1:
        raise ValidationError(f"{name} must be 1-D, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValidationError(f"{name} holds NaN or infinity (or values beyond float32 range)")
    a.flags.writeable = False
    return a


def _text(v: Any, name: str) -> str:
    if not isinstance(v, str):
        raise ValidationError(f"{name} must be a str, got {type(v).__name__}")
    return v


# ----------------------------------------------------------------------------- sources
@dataclass(frozen=True)
class DeltaSource:
    """Where a semantic delta came from (the reference's five variants).

    Build with :meth:`self_learning`, :meth:`peer_learning`, :meth:`migration`,
    :meth:`skill_box` or :meth:`document_ingestion`. ``kind`` names the
    variant, ``detail`` holds its one text field (task context, instance id,
    version, skill id or document id), ``shared_at`` (int ns) is set for peer
    learning only. The variant's own field names read as properties.

    >>> DeltaSource.skill_box("rust-types").skill_id
    'rust-types'
    """

    kind: str
    detail: str
    shared_at: Optional[int] = None

    KINDS = ("self_learning", "peer_learning", "migration", "skill_box", "document_ingestion")
    _FIELDS = {"self_learning": "task_context", "peer_learning": "instance_id", "migration": "version",
               "skill_box": "skill_id", "document_ingestion": "document_id"}
    _REF = {"self_learning": "SelfLearning", "peer_learning": "PeerLearning", "migration": "Migration",
            "skill_box": "SkillBox", "document_ingestion": "DocumentIngestion"}

    def __post_init__(self):
        if self.kind not in self.KINDS:
            raise ValidationError(f"unknown delta source {self.kind!r}; expected one of {self.KINDS}")
        _text(self.detail, self._FIELDS[self.kind])
        if self.kind == "peer_learning":
            object.__setattr__(self, "shared_at", _now(self.shared_at, None))
        elif self.shared_at is not None:
            raise ValidationError("shared_at belongs to peer_learning sources only")

    @classmethod
    def self_learning(cls, task_context: str) -> "DeltaSource":
        """Learned from the instance's own experience on ``task_context``."""
        return cls("self_learning", task_context)

    @classmethod
    def peer_learning(cls, instance_id: str, shared_at: Optional[int] = None, *,
                      clock: Optional[Clock] = None) -> "DeltaSource":
        """Received from instance ``instance_id``, shared at ``shared_at`` (ns; default now)."""
        return cls("peer_learning", instance_id, _now(shared_at, clock))

    @classmethod
    def migration(cls, version: str) -> "DeltaSource":
        """Part of a migration capsule of ``version``."""
        return cls("migration", version)

    @classmethod
    def skill_box(cls, skill_id: str) -> "DeltaSource":
        """A skill box baseline."""
        return cls("skill_box", skill_id)

    @classmethod
    def document_ingestion(cls, document_id: str) -> "DeltaSource":
        """Seeded from a document (or engram) ``document_id``."""
        return cls("document_ingestion", document_id)

    def _field(self, kind: str) -> Optional[str]:
        return self.detail if self.kind == kind else None

    task_context = property(lambda self: self._field("self_learning"),
                            doc="The task context of a self-learning source; None for other kinds.")
    instance_id = property(lambda self: self._field("peer_learning"),
                           doc="The sending instance's id of a peer-learning source; None for other kinds.")
    version = property(lambda self: self._field("migration"),
                       doc="The version of a migration source; None for other kinds.")
    skill_id = property(lambda self: self._field("skill_box"),
                        doc="The skill id of a skill-box source; None for other kinds.")
    document_id = property(lambda self: self._field("document_ingestion"),
                           doc="The document id of a document-ingestion source; None for other kinds.")

    def to_dict(self) -> Dict[str, Any]:
        """The reference's externally tagged shape, e.g. ``{"SelfLearning": {"task_context": "..."}}``
        (``shared_at`` as int ns)."""
        inner: Dict[str, Any] = {self._FIELDS[self.kind]: self.detail}
        if self.kind == "peer_learning":
            inner["shared_at"] = self.shared_at
        return {self._REF[self.kind]: inner}

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "DeltaSource":
        """Inverse of :meth:`to_dict`."""
        if not isinstance(d, dict) or len(d) != 1:
            raise ValidationError("a delta source is a one-key mapping such as {'SelfLearning': {...}}")
        (tag, inner), = d.items()
        kind = {v: k for k, v in cls._REF.items()}.get(tag)
        if kind is None or not isinstance(inner, dict) or cls._FIELDS[kind] not in inner:
            raise ValidationError(f"unknown or malformed delta source {tag!r}")
        return cls(kind, inner[cls._FIELDS[kind]], inner.get("shared_at") if kind == "peer_learning" else None)

    def __repr__(self) -> str:
        extra = f", shared_at={self.shared_at}" if self.kind == "peer_learning" else ""
        return f"DeltaSource.{self.kind}({self.detail!r}{extra})"


# ----------------------------------------------------------------------------- semantic deltas
class SemanticDelta:
    """How understanding of one concept moved: an embedding shift with a strength.

    Parameters
    ----------
    concept_anchor : str
        What the delta is about.
    embedding_delta : array_like of float
        The shift (float32; typically 384-d).
    strength : float
        Confidence (float32).
    source : DeltaSource
        Where it came from.
    id : str, optional
        Default: a random UUID4.
    timestamp : int, optional
        ns since the epoch (default: ``clock()`` or now).
    tags : sequence of str
        Categories.

    Examples
    --------
    >>> d = SemanticDelta("test", [3.0, 4.0], 0.5, DeltaSource.self_learning("t"))
    >>> d.magnitude()
    5.0
    >>> d.is_significant(1.0)
    True
    """

    __slots__ = ("id", "concept_anchor", "embedding_delta", "strength", "source", "timestamp", "tags")

    def __init__(self, concept_anchor: str, embedding_delta: Any, strength: float, source: DeltaSource, *,
                 id: Optional[str] = None, timestamp: Optional[int] = None, clock: Optional[Clock] = None,
                 tags: Iterable[str] = ()):
        self.concept_anchor = _text(concept_anchor, "concept_anchor")
        self.embedding_delta = _vec(embedding_delta, "embedding_delta")
        self.strength = _real(strength, "strength")
        if not isinstance(source, DeltaSource):
            raise ValidationError(f"source must be a DeltaSource, got {type(source).__name__}")
        self.source = source
        self.id = new_id() if id is None else _text(id, "id")
        self.timestamp = _now(timestamp, clock)
        self.tags = tuple(_text(t, "tag") for t in ([tags] if isinstance(tags, str) else tags))

    @classmethod
    def new(cls, concept_anchor: str, embedding_delta: Any, strength: float, source: DeltaSource,
            **kw: Any) -> "SemanticDelta":
        """Same as the constructor (the reference's name)."""
        return cls(concept_anchor, embedding_delta, strength, source, **kw)

    def _copy(self, **changes: Any) -> "SemanticDelta":
        d = object.__new__(SemanticDelta)
        for s in SemanticDelta.__slots__:
            object.__setattr__(d, s, changes.get(s, getattr(self, s)))
        return d

    def with_tags(self, tags: Iterable[str]) -> "SemanticDelta":
        """A copy carrying ``tags``."""
        return self._copy(tags=tuple(_text(t, "tag") for t in ([tags] if isinstance(tags, str) else tags)))

    def magnitude(self) -> float:
        """Euclidean norm of the shift (float32, summed left to right)."""
        return float(np.sqrt(_F(_k.sum_squares_f32(self.embedding_delta))))

    def is_significant(self, threshold: float) -> bool:
        """``magnitude() >= threshold`` and ``strength >= 0.3`` (float32 comparisons)."""
        return bool(_F(self.magnitude()) >= _F(_real(threshold, "threshold")) and _F(self.strength) >= _F(0.3))

    def scaled(self, factor: float) -> "SemanticDelta":
        """A copy with the shift and the strength multiplied by ``factor`` (float32)."""
        f = _F(_real(factor, "factor"))
        e = self.embedding_delta * f
        e.flags.writeable = False
        return self._copy(embedding_delta=e, strength=float(_F(self.strength) * f))

    def to_dict(self) -> Dict[str, Any]:
        """Plain, JSON-ready dict: ``embedding_delta`` as a list of floats, ``source`` as
        :meth:`DeltaSource.to_dict`, ``timestamp`` as int ns, ``tags`` as a list."""
        return {"id": self.id, "concept_anchor": self.concept_anchor,
                "embedding_delta": self.embedding_delta.tolist(), "strength": self.strength,
                "source": self.source.to_dict(), "timestamp": self.timestamp, "tags": list(self.tags)}

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "SemanticDelta":
        """Inverse of :meth:`to_dict` (``tags`` may be missing); raises :class:`ValidationError`
        when a field is missing or malformed."""
        try:
            return cls(d["concept_anchor"], d["embedding_delta"], d["strength"],
                       DeltaSource.from_dict(d["source"]), id=d["id"], timestamp=d["timestamp"],
                       tags=d.get("tags", ()))
        except (KeyError, TypeError) as e:
            raise ValidationError(f"malformed semantic delta: {e!r}") from None

    def _canonical(self) -> Dict[str, Any]:
        return {"id": self.id, "concept_anchor": self.concept_anchor, "embedding_delta": self.embedding_delta,
                "strength": self.strength, "source": self.source.to_dict(), "timestamp": self.timestamp,
                "tags": list(self.tags)}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SemanticDelta):
            return NotImplemented
        return (self.id == other.id and self.concept_anchor == other.concept_anchor
                and self.embedding_delta.tobytes() == other.embedding_delta.tobytes()
                and self.strength == other.strength and self.source == other.source
                and self.timestamp == other.timestamp and self.tags == other.tags)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (f"SemanticDelta({self.concept_anchor!r}, dim={len(self.embedding_delta)}, "
                f"magnitude={self.magnitude():.4g}, strength={self.strength:.4g}, source={self.source!r})")


# ----------------------------------------------------------------------------- configuration
@dataclass(frozen=True)
class DistillationConfig:
    """What to share and how to take in what peers share (the reference's defaults).

    Parameters
    ----------
    min_share_magnitude : float
        Smallest shift worth sharing (default 0.05).
    min_share_strength : float
        Smallest strength worth sharing (default 0.3).
    max_delta_age_secs : int
        Older deltas are not accepted (default one week).
    peer_ingestion_scale : float
        Peers' deltas are scaled by this on ingestion (default 0.5).
    auto_share : bool
        Whether learned deltas are shared automatically (default False; the
        transport is the application's).
    """

    min_share_magnitude: float = 0.05
    min_share_strength: float = 0.3
    max_delta_age_secs: int = 86_400 * 7
    peer_ingestion_scale: float = 0.5
    auto_share: bool = False

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731
        set_("min_share_magnitude", _real(self.min_share_magnitude, "min_share_magnitude"))
        set_("min_share_strength", _real(self.min_share_strength, "min_share_strength"))
        set_("peer_ingestion_scale", _real(self.peer_ingestion_scale, "peer_ingestion_scale"))
        a = self.max_delta_age_secs
        if isinstance(a, bool) or not isinstance(a, (int, np.integer)) or not 0 <= int(a) < 2 ** 63 // _NS:
            raise ValidationError(f"max_delta_age_secs must be a non-negative integer, got {a!r}")
        set_("max_delta_age_secs", int(a))
        if not isinstance(self.auto_share, (bool, np.bool_)):
            raise ValidationError("auto_share must be a bool")
        set_("auto_share", bool(self.auto_share))

    @classmethod
    def default(cls) -> "DistillationConfig":
        """The reference's defaults (same as ``DistillationConfig()``)."""
        return cls()

    def replace(self, **changes: Any) -> "DistillationConfig":
        """A copy with the given fields changed (validated like the constructor)."""
        return _dc_replace(self, **changes)

    def to_dict(self) -> Dict[str, Any]:
        """The fields as a plain, JSON-ready dict."""
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "DistillationConfig":
        """Inverse of :meth:`to_dict`; missing fields take their defaults, unknown keys are ignored."""
        return cls(**{k: d[k] for k in ("min_share_magnitude", "min_share_strength", "max_delta_age_secs",
                                        "peer_ingestion_scale", "auto_share") if k in d})


# ----------------------------------------------------------------------------- snapshots
class ThermogramSnapshot:
    """An instance's embedding state at one time, to compare before and after learning.

    Parameters
    ----------
    id : str
    centroid : array_like of float
        Average embedding (float32).
    entry_count : int
        Entries at snapshot time.
    timestamp : int, optional
        ns (default ``clock()`` or now).
    entry_embeddings : sequence of (str, array_like)
        Optional per-entry embeddings.
    """

    __slots__ = ("id", "centroid", "entry_count", "timestamp", "entry_embeddings")

    def __init__(self, id: str, centroid: Any, entry_count: int, *, timestamp: Optional[int] = None,
                 clock: Optional[Clock] = None, entry_embeddings: Sequence[Tuple[str, Any]] = ()):
        self.id = _text(id, "id")
        self.centroid = _vec(centroid, "centroid")
        if isinstance(entry_count, bool) or not isinstance(entry_count, (int, np.integer)) or entry_count < 0:
            raise ValidationError(f"entry_count must be a non-negative integer, got {entry_count!r}")
        self.entry_count = int(entry_count)
        self.timestamp = _now(timestamp, clock)
        self.entry_embeddings = [(_text(k, "entry key"), _vec(e, f"embedding of {k!r}")) for k, e in entry_embeddings]

    @classmethod
    def from_centroid(cls, id: str, centroid: Any, entry_count: int, **kw: Any) -> "ThermogramSnapshot":
        """A snapshot from a centroid (the reference's constructor)."""
        return cls(id, centroid, entry_count, **kw)

    def with_entries(self, entries: Sequence[Tuple[str, Any]]) -> "ThermogramSnapshot":
        """A copy with per-entry embeddings."""
        return ThermogramSnapshot(self.id, self.centroid, self.entry_count, timestamp=self.timestamp,
                                  entry_embeddings=entries)

    @classmethod
    def from_memory(cls, memory: Any, id: str, *, keys: Optional[Sequence[str]] = None,
                    with_entries: bool = False, timestamp: Optional[int] = None,
                    clock: Optional[Clock] = None) -> "ThermogramSnapshot":
        """Snapshot a :class:`~thermogram.Thermogram` or a
        :class:`~thermogram.colony.ThermogramColony`: the centroid is the mean
        of the entries' values as floats (summed in float64, stored as float32).

        ``keys`` restricts it to some keys; every value must have the same length.
        """
        from .signal import signals_to_floats
        ks = list(memory.keys()) if keys is None else list(keys)
        rows = []
        for k in ks:
            v = memory.read(k)
            if v is None:
                raise ValidationError(f"{k!r} is not held")
            rows.append(signals_to_floats(v))
        if not rows:
            raise ValidationError("nothing to snapshot: no entries")
        dims = {len(r) for r in rows}
        if len(dims) != 1:
            raise ValidationError(f"entries have different lengths {sorted(dims)}: pass keys= of one kind")
        m = np.stack(rows).astype(np.float64)
        centroid = (m.sum(axis=0) / len(rows)).astype(np.float32)
        entries = list(zip(ks, rows)) if with_entries else ()
        return cls(id, centroid, len(rows), timestamp=timestamp, clock=clock, entry_embeddings=entries)

    def __repr__(self) -> str:
        return (f"ThermogramSnapshot({self.id!r}, dim={len(self.centroid)}, entries={self.entry_count}, "
                f"timestamp={self.timestamp})")


# ----------------------------------------------------------------------------- the rules
def distill_learning(before: ThermogramSnapshot, after: ThermogramSnapshot, concept_anchor: str,
                     task_context: str, config: Optional[DistillationConfig] = None, *,
                     id: Optional[str] = None, timestamp: Optional[int] = None,
                     clock: Optional[Clock] = None) -> Optional[SemanticDelta]:
    """A shareable delta from two snapshots, or None when not worth sharing.

    The shift is ``after.centroid - before.centroid``; None when the lengths
    differ, when its magnitude is below ``min_share_magnitude``, or when the
    strength ``min(magnitude * after.entry_count / max(before.entry_count, 1), 1)``
    is below ``min_share_strength``. The source is self learning on ``task_context``.
    """
    cfg = DistillationConfig() if config is None else config
    if not isinstance(before, ThermogramSnapshot) or not isinstance(after, ThermogramSnapshot):
        raise ValidationError("distill_learning needs two ThermogramSnapshot objects")
    if before.centroid.shape != after.centroid.shape:
        return None
    shift = after.centroid - before.centroid
    mag = np.sqrt(_F(_k.sum_squares_f32(shift)))
    if mag < _F(cfg.min_share_magnitude):
        return None
    ratio = _F(after.entry_count) / _F(max(before.entry_count, 1))
    strength = min(_F(mag * ratio), _F(1.0))
    if strength < _F(cfg.min_share_strength):
        return None
    return SemanticDelta(concept_anchor, shift, float(strength), DeltaSource.self_learning(task_context),
                         id=id, timestamp=timestamp, clock=clock)


def apply_delta_to_embedding(embedding: Any, delta: SemanticDelta, scale: float) -> np.ndarray:
    """``embedding + delta.embedding_delta * scale * delta.strength`` (float32);
    the embedding unchanged (a copy) when the lengths differ."""
    e = np.array(embedding, dtype=np.float32)
    if e.ndim != 1:
        raise ValidationError(f"embedding must be 1-D, got shape {e.shape}")
    if not isinstance(delta, SemanticDelta):
        raise ValidationError(f"delta must be a SemanticDelta, got {type(delta).__name__}")
    if e.shape != delta.embedding_delta.shape:
        return e
    return e + (delta.embedding_delta * _F(_real(scale, "scale"))) * _F(delta.strength)


def cosine_similarity(a: Any, b: Any) -> float:
    """Cosine similarity in float32 as the reference computes it; 0.0 when the
    lengths differ, a vector is empty, or a norm is 0."""
    x = np.ascontiguousarray(a, dtype=np.float32)
    y = np.ascontiguousarray(b, dtype=np.float32)
    if x.ndim != 1 or y.ndim != 1:
        raise ValidationError("cosine_similarity needs 1-D vectors")
    if x.shape != y.shape or not x.shape[0]:
        return 0.0
    return float(_k.cosine_f32(x, y))


# ----------------------------------------------------------------------------- batches
def _ed25519():
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:  # pragma: no cover - optional dependency
        raise ThermogramError("signing delta batches needs the 'cryptography' package "
                              "(pip install 'thermogram[crypto]')") from None
    return ed25519


def _private_key(key: Any):
    ed = _ed25519()
    if isinstance(key, ed.Ed25519PrivateKey):
        return key
    if isinstance(key, (bytes, bytearray)) and len(key) == 32:
        return ed.Ed25519PrivateKey.from_private_bytes(bytes(key))
    raise ValidationError("sign() needs an Ed25519 private key (cryptography) or its 32 raw bytes")


def _public_key(key: Any):
    ed = _ed25519()
    if isinstance(key, ed.Ed25519PublicKey):
        return key
    if isinstance(key, ed.Ed25519PrivateKey):
        return key.public_key()
    if isinstance(key, (bytes, bytearray)) and len(key) == 32:
        return ed.Ed25519PublicKey.from_public_bytes(bytes(key))
    raise ValidationError("verify() needs an Ed25519 public key (cryptography) or its 32 raw bytes")


def _key_id(pub: Any) -> str:
    from cryptography.hazmat.primitives import serialization
    raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + hashlib.sha256(raw).hexdigest()[:16]


class SemanticBatch:
    """Semantic deltas sent from one instance to its peers.

    Not to be confused with ``thermogram.DeltaBatch``, the columnar batch of
    capsule deltas.

    Parameters
    ----------
    source_instance : str
        The sending instance.
    deltas : sequence of SemanticDelta
    id : str, optional
        Default: a random UUID4.
    created : int, optional
        ns (default ``clock()`` or now).
    signature : bytes, optional
        Set by :meth:`sign` (or :meth:`with_signature`).

    Examples
    --------
    >>> src = DeltaSource.self_learning("types")
    >>> b = SemanticBatch("instance-1", [SemanticDelta("ts", [0.1, 0.2], 0.8, src)])
    >>> (len(b), b.source_instance, b.signature is None)
    (1, 'instance-1', True)
    >>> SemanticBatch.from_ipc_bytes(b.to_ipc_bytes()) == b
    True
    """

    __slots__ = ("id", "source_instance", "deltas", "created", "signature", "signer")

    def __init__(self, source_instance: str, deltas: Iterable[SemanticDelta] = (), *, id: Optional[str] = None,
                 created: Optional[int] = None, clock: Optional[Clock] = None,
                 signature: Optional[bytes] = None, signer: Optional[str] = None):
        self.source_instance = _text(source_instance, "source_instance")
        self.deltas: List[SemanticDelta] = list(deltas)
        for d in self.deltas:
            if not isinstance(d, SemanticDelta):
                raise ValidationError(f"a SemanticBatch holds SemanticDelta objects, got {type(d).__name__}")
        self.id = new_id() if id is None else _text(id, "id")
        self.created = _now(created, clock)
        if signature is not None and not isinstance(signature, (bytes, bytearray)):
            raise ValidationError("signature must be bytes or None")
        self.signature = None if signature is None else bytes(signature)
        self.signer = signer

    @classmethod
    def new(cls, source_instance: str, deltas: Iterable[SemanticDelta], **kw: Any) -> "SemanticBatch":
        """Same as the constructor (the reference's name)."""
        return cls(source_instance, deltas, **kw)

    def _copy(self, deltas: Optional[List[SemanticDelta]] = None, keep_signature: bool = False) -> "SemanticBatch":
        return SemanticBatch(self.source_instance, self.deltas if deltas is None else deltas, id=self.id,
                          created=self.created, signature=self.signature if keep_signature else None,
                          signer=self.signer if keep_signature else None)

    def __len__(self) -> int:
        return len(self.deltas)

    def __iter__(self) -> Iterator[SemanticDelta]:
        return iter(self.deltas)

    def __getitem__(self, i: int) -> SemanticDelta:
        return self.deltas[i]

    def with_signature(self, signature: bytes) -> "SemanticBatch":
        """A copy carrying ``signature`` (bytes) as is; :meth:`verify` decides whether it is valid."""
        b = self._copy()
        if not isinstance(signature, (bytes, bytearray)):
            raise ValidationError("signature must be bytes")
        b.signature = bytes(signature)
        return b

    def magnitudes(self) -> np.ndarray:
        """Magnitude of every delta (float32), in one kernel call."""
        n = len(self.deltas)
        lens = np.fromiter((len(d.embedding_delta) for d in self.deltas), np.int64, n)
        offs = np.zeros(n + 1, np.int64)
        np.cumsum(lens, out=offs[1:])
        flat = (np.concatenate([d.embedding_delta for d in self.deltas]) if n
                else np.zeros(0, np.float32))
        out = np.empty(n, np.float32)
        _k.row_magnitudes_f32(flat, offs, out)
        return out

    def filter_significant(self, threshold: float) -> "SemanticBatch":
        """The deltas with ``is_significant(threshold)``; same id and creation time,
        no signature (filtering invalidates it)."""
        t = _F(_real(threshold, "threshold"))
        mags = self.magnitudes()
        keep = [d for d, m in zip(self.deltas, mags) if m >= t and _F(d.strength) >= _F(0.3)]
        return self._copy(keep)

    def filter_recent(self, max_age_secs: int, *, now: Optional[int] = None,
                      clock: Optional[Clock] = None) -> "SemanticBatch":
        """The deltas at most ``max_age_secs`` old at ``now`` (default ``clock()`` or
        the current time; deltas stamped after ``now`` are kept); no signature."""
        if isinstance(max_age_secs, bool) or not isinstance(max_age_secs, (int, np.integer)) or max_age_secs < 0:
            raise ValidationError(f"max_age_secs must be a non-negative integer, got {max_age_secs!r}")
        t = _now(now, clock)
        limit = int(max_age_secs) * _NS
        return self._copy([d for d in self.deltas if t - d.timestamp <= limit])

    def ingest(self, config: Optional[DistillationConfig] = None, *, public_key: Any = None,
               now: Optional[int] = None, clock: Optional[Clock] = None) -> List[SemanticDelta]:
        """What a peer takes in from this batch.

        With ``public_key`` the batch must carry a valid signature by it
        (:class:`SignatureError` otherwise). Then deltas older than
        ``max_delta_age_secs``, or below ``min_share_magnitude`` /
        ``min_share_strength``, are dropped; the rest are scaled by
        ``peer_ingestion_scale`` and marked as peer learning from
        :attr:`source_instance`, shared at :attr:`created`.
        """
        cfg = DistillationConfig() if config is None else config
        if public_key is not None:
            self.verify(public_key)
        recent = self.filter_recent(cfg.max_delta_age_secs, now=now, clock=clock)
        mags = recent.magnitudes()
        src = DeltaSource.peer_learning(self.source_instance, self.created)
        out = []
        for d, m in zip(recent.deltas, mags):
            if m >= _F(cfg.min_share_magnitude) and _F(d.strength) >= _F(cfg.min_share_strength):
                out.append(d.scaled(cfg.peer_ingestion_scale)._copy(source=src))
        return out

    # ---------------------------------------------------------------- signing
    def signing_bytes(self) -> bytes:
        """The exact bytes a signature covers: a domain tag and the SHA-256 of a
        canonical encoding of the id, source instance, creation time and every
        field of every delta."""
        doc = {"id": self.id, "source_instance": self.source_instance, "created": self.created,
               "deltas": [d._canonical() for d in self.deltas]}
        return _SIGN_TAG + hashlib.sha256(encode_value(doc)).digest()

    def sign(self, private_key: Any) -> "SemanticBatch":
        """Sign with an Ed25519 private key (cryptography's, or its 32 raw bytes);
        sets :attr:`signature` and :attr:`signer` (the key id) and returns the batch."""
        k = _private_key(private_key)
        self.signature = k.sign(self.signing_bytes())
        self.signer = _key_id(k.public_key())
        return self

    def verify(self, public_key: Any) -> bool:
        """True when a valid signature by ``public_key`` covers exactly this
        content; raises :class:`SignatureError` when the batch is unsigned, was
        changed after signing, or was signed by another key."""
        pub = _public_key(public_key)
        if self.signature is None:
            raise SignatureError(f"delta batch {self.id} is not signed")
        try:
            pub.verify(self.signature, self.signing_bytes())
        except Exception:  # cryptography raises InvalidSignature
            raise SignatureError(f"delta batch {self.id}: the signature does not match its content "
                                 f"and key {_key_id(pub)}") from None
        return True

    def is_signed_by(self, public_key: Any) -> bool:
        """Like :meth:`verify`, but False instead of raising."""
        try:
            return self.verify(public_key)
        except SignatureError:
            return False

    # ---------------------------------------------------------------- Arrow
    def to_arrow(self):
        """A ``pyarrow.Table``, one row per delta; batch fields and the signature
        live in the schema metadata."""
        import pyarrow as pa
        n = len(self.deltas)
        lens = np.fromiter((len(d.embedding_delta) for d in self.deltas), np.int32, n)
        offs = np.zeros(n + 1, np.int32)
        np.cumsum(lens, out=offs[1:])
        flat = np.concatenate([d.embedding_delta for d in self.deltas]) if n else np.zeros(0, np.float32)
        emb = pa.ListArray.from_arrays(pa.array(offs), pa.array(flat, pa.float32()))
        cols = {
            "id": pa.array([d.id for d in self.deltas], pa.string()),
            "concept_anchor": pa.array([d.concept_anchor for d in self.deltas], pa.string()),
            "embedding_delta": emb,
            "strength": pa.array(np.array([d.strength for d in self.deltas], np.float32), pa.float32()),
            "source_kind": pa.array([d.source.kind for d in self.deltas], pa.string()),
            "source_detail": pa.array([d.source.detail for d in self.deltas], pa.string()),
            "source_shared_at": pa.array([d.source.shared_at for d in self.deltas], pa.int64()),
            "timestamp": pa.array([d.timestamp for d in self.deltas], pa.int64()),
            "tags": pa.array([list(d.tags) for d in self.deltas], pa.list_(pa.string())),
        }
        meta = {_ARROW_TAG: b"1", b"id": self.id.encode(), b"source_instance": self.source_instance.encode(),
                b"created": str(self.created).encode(),
                b"signature": b"" if self.signature is None else self.signature.hex().encode(),
                b"signer": (self.signer or "").encode()}
        return pa.table(cols).replace_schema_metadata(meta)

    @classmethod
    def from_arrow(cls, table: Any, *, public_key: Any = None) -> "SemanticBatch":
        """Inverse of :meth:`to_arrow`; with ``public_key`` the signature must verify."""
        import pyarrow as pa
        if not isinstance(table, pa.Table):
            raise ValidationError(f"from_arrow needs a pyarrow.Table, got {type(table).__name__}")
        meta = table.schema.metadata or {}
        if meta.get(_ARROW_TAG) != b"1":
            raise FormatError("not a thermogram distillation batch (schema metadata missing)")
        try:
            cols = {name: table.column(name) for name in ("id", "concept_anchor", "embedding_delta", "strength",
                                                        "source_kind", "source_detail", "source_shared_at",
                                                        "timestamp", "tags")}
            ids = cols["id"].to_pylist()
            anchors = cols["concept_anchor"].to_pylist()
            emb = cols["embedding_delta"].combine_chunks()
            if not pa.types.is_list(emb.type) or emb.type.value_type != pa.float32():
                raise FormatError("embedding_delta must be list<float32>")
            offs = np.asarray(emb.offsets, dtype=np.int64)
            flat = np.asarray(emb.values.to_numpy(zero_copy_only=False), dtype=np.float32)
            strengths = cols["strength"].to_pylist()
            kinds = cols["source_kind"].to_pylist()
            details = cols["source_detail"].to_pylist()
            shared = cols["source_shared_at"].to_pylist()
            stamps = cols["timestamp"].to_pylist()
            tags = cols["tags"].to_pylist()
            deltas = []
            for i in range(table.num_rows):
                if emb[i].as_py() is None:
                    raise FormatError(f"row {i}: embedding_delta is null")
                src = DeltaSource(kinds[i], details[i], shared[i])
                deltas.append(SemanticDelta(anchors[i], flat[offs[i]:offs[i + 1]], strengths[i], src, id=ids[i],
                                            timestamp=stamps[i], tags=tags[i] or ()))
            sig = meta.get(b"signature", b"")
            batch = cls(meta[b"source_instance"].decode(), deltas, id=meta[b"id"].decode(),
                        created=int(meta[b"created"].decode()),
                        signature=bytes.fromhex(sig.decode()) if sig else None,
                        signer=meta.get(b"signer", b"").decode() or None)
        except FormatError:
            raise
        except (KeyError, ValueError, TypeError, UnicodeDecodeError, IndexError, pa.ArrowException) as e:
            raise FormatError(f"malformed distillation batch table: {e}") from None
        if public_key is not None:
            batch.verify(public_key)
        return batch

    def to_ipc_bytes(self) -> bytes:
        """The batch as Arrow IPC stream bytes (schema metadata carries the signature)."""
        import pyarrow as pa
        table = self.to_arrow()
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as w:
            w.write_table(table)
        return sink.getvalue().to_pybytes()

    @classmethod
    def from_ipc_bytes(cls, data: bytes, *, public_key: Any = None) -> "SemanticBatch":
        """Inverse of :meth:`to_ipc_bytes`. With ``public_key`` an unsigned,
        tampered or foreign-signed batch raises :class:`SignatureError`;
        malformed bytes raise :class:`FormatError`."""
        import pyarrow as pa
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise ValidationError(f"from_ipc_bytes needs bytes, got {type(data).__name__}")
        try:
            table = pa.ipc.open_stream(pa.py_buffer(bytes(data))).read_all()
        except (pa.ArrowException, ValueError, OSError) as e:
            raise FormatError(f"not Arrow IPC stream bytes: {e}") from None
        return cls.from_arrow(table, public_key=public_key)

    # ---------------------------------------------------------------- misc
    def to_dict(self) -> Dict[str, Any]:
        """Plain, JSON-ready dict: batch fields, every delta as :meth:`SemanticDelta.to_dict`,
        and the signature as hex (or None). The signer is not included."""
        return {"id": self.id, "source_instance": self.source_instance, "created": self.created,
                "deltas": [d.to_dict() for d in self.deltas],
                "signature": None if self.signature is None else self.signature.hex()}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SemanticBatch):
            return NotImplemented
        return (self.id == other.id and self.source_instance == other.source_instance
                and self.created == other.created and self.deltas == other.deltas
                and self.signature == other.signature)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        sig = "unsigned" if self.signature is None else f"signed by {self.signer or '?'}"
        return f"SemanticBatch(source_instance={self.source_instance!r}, deltas={len(self)}, {sig})"

    def _repr_html_(self) -> str:
        esc = html.escape
        mags = self.magnitudes()
        rows = "".join(f"<tr><td>{esc(d.concept_anchor)}</td><td>{len(d.embedding_delta)}</td>"
                       f"<td>{m:.4g}</td><td>{d.strength:.3g}</td><td>{esc(d.source.kind)}</td></tr>"
                       for d, m in zip(self.deltas[:20], mags[:20]))
        more = f"<tr><td colspan=5>… {len(self) - 20} more</td></tr>" if len(self) > 20 else ""
        sig = "unsigned" if self.signature is None else f"signed by {esc(self.signer or '?')}"
        return (f"<div><b>distillation.SemanticBatch</b> from {esc(self.source_instance)!s}, {len(self)} deltas, {sig}"
                "<table><tr><th>concept</th><th>dim</th><th>magnitude</th><th>strength</th><th>source</th></tr>"
                f"{rows}{more}</table></div>")
