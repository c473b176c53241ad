"""Signed heads: anchoring the chain so that a consistent rewrite is detectable.

A plain hash chain shows tampering only if its head is kept somewhere an
attacker cannot rewrite. :meth:`Thermogram.sign_head` appends a ``sign_head``
record carrying a signature (HMAC-SHA256 with a shared secret, or Ed25519
via the ``cryptography`` package) over the capsule id, the number of records
signed, the head hash and the Merkle root of those records. The signature
travels with the capsule (``.thermo`` v2, the journal). :func:`verify_trust`
accepts a capsule only if a trusted key signed a prefix of exactly these
records, and reports which key signed what.

A head signature made by this version also commits to the capsule's *bound state digest*
(:func:`state_binding`: the :meth:`~thermogram.Thermogram.state_digest` of entries, pending
deltas, counters and custom metadata, plus the configuration). What a trusted load proves is
listed in ``engineering/2026-12-01-integrity.md``: the records are a prefix-extension of what a
trusted key signed, and the loaded state is either the state that key signed or the state
the records replay to; records after the newest trusted signature (the *unsigned tail*) are
reported, and refused with ``require_signed=True``.
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, List, Optional, Sequence, Tuple

from .canonical import encode_value, lp, u64
from .errors import ChainError, ValidationError
from .merkle import MerkleTree

if TYPE_CHECKING:  # pragma: no cover
    from .core import Thermogram

__all__ = ["SignedHead", "TrustReport", "key_id", "sign_message", "verify_trust", "head_message",
           "state_binding", "check_state_against_records", "load_trusted"]

_TAG = b"thermogram:signed-head:v1\x00"
_TAG_STATE = b"thermogram:signed-head:v2\x00"
_BIND_TAG = b"thermogram:bound-state:v1\x00"


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


def head_message(capsule_id: str, size: int, head: str, root: bytes, state: Optional[str] = None) -> bytes:
    """The exact bytes a head signature covers (``state``: the bound state digest, hex, that
    signatures made by this version commit to; None for the older form without it)."""
    body = lp(capsule_id.encode()) + u64(size) + bytes.fromhex(head) + root
    if state is None:
        return _TAG + body
    return _TAG_STATE + body + bytes.fromhex(state)


def state_binding(t: "Thermogram") -> str:
    """The bound state digest (hex SHA-256) of ``t``: its :meth:`~thermogram.Thermogram.state_digest`
    (entries, pending deltas, counters, custom metadata) together with its configuration
    (name, id, semantics, rule, thermal config, consolidation policy). Two capsules with the
    same bound digest behave the same under every later operation. Call it where no other
    thread changes ``t`` (the capsule's own methods hold its lock)."""
    cfg = {"name": t.name, "id": t.id, "semantics": t.semantics, "rule": t.rule.to_dict(),
           "thermal_config": t.thermal_config.to_dict(), "policy": t.policy.to_dict()}
    h = hashlib.sha256(_BIND_TAG)
    h.update(bytes.fromhex(t.state_digest()))
    h.update(encode_value(cfg))
    return h.hexdigest()


def check_state_against_records(t: "Thermogram", rehash: bool = True) -> str:
    """Replay ``t``'s records into a new capsule and raise :class:`ChainError` unless the
    replayed capsule's bound state digest (:func:`state_binding`) equals ``t``'s: the entry
    table, pending deltas, counters and configuration that were loaded are what the records
    make. Returns the digest. ``rehash=False``: the caller has just checked every record's
    hash (:meth:`~thermogram.chain.Chain.verify`), so the replay checks the links only."""
    from .core import Thermogram, replay_capsule
    recs = t.chain.records
    replayed = replay_capsule(Thermogram, recs, clock=t.clock, rehash=rehash)
    want = state_binding(replayed)
    got = state_binding(t)
    if want != got:
        raise ChainError("the stored state (entries, pending deltas, counters or configuration) "
                         "does not match what the records replay to", index=len(recs))
    return got


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
    """One signature found in the chain (``state``: the bound state digest it commits to,
    None for a signature in the older form)."""

    record_index: int
    key_id: str
    algorithm: str
    size: int
    head: str
    trusted: bool
    valid: bool
    state: Optional[str] = None


@dataclass
class TrustReport:
    """What :func:`verify_trust` found.

    Attributes
    ----------
    signatures : list of SignedHead
        Every ``sign_head`` record, trusted or not.
    signed_size : int
        Records covered by the newest trusted signature.
    total_records : int
    unsigned_records : list of int
        Indices of the records after the newest trusted signature that change something
        (every record of the unsigned tail but other ``sign_head`` records).
    state_bound_by : str
        ``"signature"`` (the state equals the one a trusted signature commits to),
        ``"replay"`` (it equals what the records replay to) or ``""`` (not checked).
    """

    signatures: List[SignedHead] = field(default_factory=list)
    signed_size: int = 0
    total_records: int = 0
    unsigned_records: List[int] = field(default_factory=list)
    state_bound_by: str = ""

    @property
    def unsigned_tail(self) -> int:
        """Records after the newest trusted signature (signature records included)."""
        return self.total_records - self.signed_size


def _parse_sign_args(i: int, a: Any) -> Tuple[str, str, int, str, bytes, bytes, Optional[str]]:
    """The fields of a ``sign_head`` record at index ``i``, each type-checked
    (:class:`ChainError` naming the record and field otherwise)."""
    def bad(what: str) -> ChainError:
        return ChainError(f"record {i}: malformed sign_head record ({what})", index=i)
    if not isinstance(a, dict):
        raise bad("arguments are not a mapping")
    kid, alg, size, head = a.get("key_id"), a.get("alg"), a.get("size"), a.get("head")
    root, sig, state = a.get("root"), a.get("signature"), a.get("state")
    if type(kid) is not str or not kid:
        raise bad("key_id is not a str")
    if type(alg) is not str:
        raise bad("alg is not a str")
    if type(size) is not int or not 0 < size <= i:
        raise bad(f"size is not a record count in 1..{i}")
    if type(head) is not str or len(head) != 64:
        raise bad("head is not a 64-character hex digest")
    try:
        bytes.fromhex(head)
        if state is not None:
            if type(state) is not str or len(state) != 64:
                raise ValueError
            bytes.fromhex(state)
    except ValueError:
        raise bad("head or state is not a hex digest") from None
    if type(root) is not bytes or len(root) != 32:
        raise bad("root is not 32 bytes")
    if type(sig) is not bytes or not sig:
        raise bad("signature is not bytes")
    return kid, alg, size, head, root, sig, state


def verify_trust(t: "Thermogram", trusted_keys: Sequence[Any], *, require_signed: bool = False,
                 bind_state: bool = True) -> TrustReport:
    """Verify the chain, its signed heads against ``trusted_keys``, and (``bind_state``)
    that the capsule's state is the one those records stand for.

    The state is accepted when its bound digest (:func:`state_binding`) equals the digest
    the newest trusted signature commits to and only signature records follow it, or else
    when it equals the digest of replaying the records (:func:`check_state_against_records`).

    Raises
    ------
    ValidationError
        ``trusted_keys`` is empty or holds something that is not a key.
    ChainError
        The chain is broken; a signature by a trusted key does not match these records (a
        rewrite) or is malformed; no trusted key signed anything; the stored state is not
        what the records (or the signature) say; or ``require_signed`` and records that
        change something follow the newest trusted signature (the message counts them).
    """
    t.chain.verify()
    trusted = {key_id(k): k for k in trusted_keys}
    if not trusted:
        raise ValidationError("trusted_keys is empty")
    recs = t.chain.records
    tree = MerkleTree([bytes.fromhex(r.hash) for r in recs])
    rep = TrustReport(total_records=len(recs))
    newest: Optional[SignedHead] = None
    for i, r in enumerate(recs):
        if r.kind != "op" or r.op != "sign_head":
            continue
        kid, alg, size, head, root, sig, state = _parse_sign_args(i, r.args)
        valid = False
        if kid in trusted:
            want_root = tree.root(size)
            matches = recs[size - 1].hash == head and root == want_root
            msg = head_message(t.id, size, head, want_root, state)
            valid = matches and _check(trusted[kid], msg, sig)
            if not valid:
                raise ChainError(f"record {i}: the head signed by {kid} does not match these records "
                                 "(history rewritten, or a forged signature)", index=i)
        sh = SignedHead(i, kid, alg, size, head, kid in trusted, valid, state)
        rep.signatures.append(sh)
        if valid and size >= rep.signed_size:
            rep.signed_size = size
            newest = sh
    if newest is None:
        raise ChainError("no head of this capsule is signed by a trusted key")
    rep.unsigned_records = [j for j in range(rep.signed_size, len(recs))
                            if not (recs[j].kind == "op" and recs[j].op == "sign_head")]
    if require_signed and rep.unsigned_records:
        raise ChainError(f"{len(rep.unsigned_records)} record(s) after the newest trusted signature "
                         f"(record {newest.record_index}) are not signed (require_signed=True)",
                         index=rep.unsigned_records[0])
    if bind_state:
        if newest.state is not None and not rep.unsigned_records and state_binding(t) == newest.state:
            rep.state_bound_by = "signature"
        else:
            check_state_against_records(t, rehash=False)  # t.chain.verify() checked every hash
            rep.state_bound_by = "replay"
    return rep


def load_trusted(path: Any, trusted_keys: Sequence[Any], *, require_signed: bool = False,
                 **kwargs: Any) -> Tuple["Thermogram", TrustReport]:
    """:meth:`Thermogram.load` a file and accept it only as :func:`verify_trust` does;
    returns the capsule and the :class:`TrustReport` (its ``unsigned_records`` are the
    unsigned tail). ``kwargs`` go to :meth:`~thermogram.Thermogram.load`."""
    from .core import Thermogram
    t = Thermogram.load(path, **kwargs)
    return t, t.verify_trust(trusted_keys, require_signed=require_signed)
