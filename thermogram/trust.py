"""Signed heads: anchoring the chain so that a consistent rewrite is detectable.

A plain hash chain shows tampering only if its head is kept somewhere an
attacker cannot rewrite. :meth:`Thermogram.sign_head` appends a ``sign_head``
record carrying a signature (HMAC-SHA256 with a shared secret, or Ed25519
via the ``cryptography`` package) over the capsule id, the number of records
signed, the head hash and the Merkle root of those records. The signature
travels with the capsule (``.thermo`` v2, the journal). :func:`verify_trust`
accepts a capsule only if a trusted key signed a prefix of exactly these
records, and reports which key signed what.
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, List, Sequence, Tuple

from .canonical import lp, u64
from .errors import ChainError, ValidationError
from .merkle import MerkleTree

if TYPE_CHECKING:  # pragma: no cover
    from .core import Thermogram

__all__ = ["SignedHead", "TrustReport", "key_id", "sign_message", "verify_trust", "head_message"]

_TAG = b"thermogram:signed-head:v1\x00"


def _ed25519():
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519
        return ed25519
    except ImportError:  # pragma: no cover - optional dependency
        return None


def _public_raw(pub: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _classify(key: Any) -> Tuple[str, Any]:
    """``(algorithm, key)`` of a signing or verifying key."""
    if isinstance(key, (bytes, bytearray)):
        if len(key) < 16:
            raise ValidationError("an HMAC secret must be at least 16 bytes")
        return "hmac-sha256", bytes(key)
    ed = _ed25519()
    if ed is not None and isinstance(key, (ed.Ed25519PrivateKey, ed.Ed25519PublicKey)):
        return "ed25519", key
    raise ValidationError("a key is HMAC secret bytes or a cryptography Ed25519 private/public key")


def key_id(key: Any) -> str:
    """A short public identifier of a key (never reveals an HMAC secret)."""
    alg, k = _classify(key)
    if alg == "hmac-sha256":
        return "hmac:" + hashlib.sha256(b"thermogram-hmac-key-id\x00" + k).hexdigest()[:16]
    pub = k.public_key() if hasattr(k, "public_key") else k
    return "ed25519:" + hashlib.sha256(_public_raw(pub)).hexdigest()[:16]


def head_message(capsule_id: str, size: int, head: str, root: bytes) -> bytes:
    """The exact bytes a head signature covers."""
    return _TAG + lp(capsule_id.encode()) + u64(size) + bytes.fromhex(head) + root


def sign_message(key: Any, message: bytes) -> Tuple[str, bytes]:
    """Sign ``message`` with ``key``.

    Parameters
    ----------
    key : bytes or Ed25519PrivateKey
        An HMAC secret (at least 16 bytes) or a ``cryptography`` Ed25519 private key.
    message : bytes
        What to sign, e.g. :func:`head_message` output.

    Returns
    -------
    (str, bytes)
        The algorithm (``"hmac-sha256"`` or ``"ed25519"``) and the signature.

    Raises
    ------
    ValidationError
        For an Ed25519 public key, a short secret, or anything that is not a key.
    """
    alg, k = _classify(key)
    if alg == "hmac-sha256":
        return alg, hmac.new(k, message, hashlib.sha256).digest()
    if not hasattr(k, "sign"):
        raise ValidationError("signing needs an Ed25519 private key, not a public key")
    return alg, k.sign(message)


def _check(key: Any, message: bytes, signature: bytes) -> bool:
    alg, k = _classify(key)
    if alg == "hmac-sha256":
        return hmac.compare_digest(hmac.new(k, message, hashlib.sha256).digest(), signature)
    pub = k.public_key() if hasattr(k, "public_key") else k
    try:
        pub.verify(signature, message)
        return True
    except Exception:  # cryptography raises InvalidSignature
        return False


@dataclass
class SignedHead:
    """One signature found in the chain."""

    record_index: int
    key_id: str
    algorithm: str
    size: int
    head: str
    trusted: bool
    valid: bool


@dataclass
class TrustReport:
    """What :func:`verify_trust` found: every signature, and how many records are signed."""

    signatures: List[SignedHead] = field(default_factory=list)
    signed_size: int = 0
    total_records: int = 0

    @property
    def unsigned_tail(self) -> int:
        """Records after the newest trusted signature."""
        return self.total_records - self.signed_size


def verify_trust(t: "Thermogram", trusted_keys: Sequence[Any]) -> TrustReport:
    """Verify the chain and its signed heads against ``trusted_keys``.

    Raises :class:`ChainError` if the chain is broken, if a signature by a
    trusted key does not match these records (a rewrite), or if no trusted key
    signed anything.
    """
    t.verify()
    trusted = {key_id(k): k for k in trusted_keys}
    if not trusted:
        raise ValidationError("trusted_keys is empty")
    recs = t.chain.records
    tree = MerkleTree([bytes.fromhex(r.hash) for r in recs])
    rep = TrustReport(total_records=len(recs))
    for i, r in enumerate(recs):
        if r.kind != "op" or r.op != "sign_head":
            continue
        a = r.args
        kid, size, head = a.get("key_id"), a.get("size"), a.get("head")
        ok_shape = isinstance(size, int) and 0 < size <= i and isinstance(head, str) and len(head) == 64
        valid = False
        if ok_shape and kid in trusted:
            root = tree.root(size)
            matches = recs[size - 1].hash == head and a.get("root") == root
            msg = head_message(t.id, size, head, root)
            valid = matches and _check(trusted[kid], msg, a.get("signature", b""))
            if not valid:
                raise ChainError(f"record {i}: the head signed by {kid} does not match these records "
                                 "(history rewritten, or a forged signature)", index=i)
            rep.signed_size = max(rep.signed_size, size)
        rep.signatures.append(SignedHead(i, str(kid), str(a.get("alg")), size if ok_shape else -1,
                                         str(head), kid in trusted, valid))
    if rep.signed_size == 0:
        raise ChainError("no head of this capsule is signed by a trusted key")
    return rep
