"""Signed heads and Merkle proofs on a capsule: the consistent-rewrite attack is caught."""
import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from conftest import StepClock
from thermogram import ChainError, ConsolidationPolicy, Delta, Signal, Thermogram, signal_vector
from thermogram.trust import key_id

SECRET = b"shared-secret-of-32-bytes-000000"


def capsule():
    clock = StepClock()
    t = Thermogram("trust", policy=ConsolidationPolicy.manual_only(), clock=clock)
    for i in range(6):
        t.write(f"k{i}", signal_vector([(1, 10 + i)]), Signal.positive(100))
    t.consolidate()
    return t


def rewrite(records, index, mutate):
    """What an attacker without the key can do: change a record and re-hash every record after it."""
    recs = [r.copy() for r in records]
    mutate(recs[index])
    prev = None
    for r in recs:
        r.prev_hash = prev
        r._hash = r.compute_hash()
        prev = r.hash
    return recs


@pytest.mark.parametrize("key", [SECRET, Ed25519PrivateKey.generate()], ids=["hmac", "ed25519"])
def test_consistent_rewrite_without_the_key_is_rejected(key, tmp_path):
    t = capsule()
    kid = t.sign_head(key)
    t.write("after", signal_vector([(1, 1)]))
    trusted = [key if isinstance(key, bytes) else key.public_key()]
    rep = t.verify_trust(trusted)
    assert rep.signatures[0].key_id == kid and rep.signed_size == len(t.records()) - 2
    assert rep.unsigned_tail == 2

    def change_value(r):
        r.value = signal_vector([(-1, 255)])
    forged = rewrite(t.records(), 2, change_value)
    u = Thermogram.replay(forged)
    assert u.verify()  # the chain alone is consistent...
    assert u.read("k1").tolist() == [(-1, 255)]
    with pytest.raises(ChainError, match="does not match"):
        u.verify(trusted_keys=trusted)  # ...but the signed head is not
    # dropping the signature does not help either
    stripped = rewrite([r for r in forged if not (r.kind == "op" and r.op == "sign_head")], 0, lambda r: None)
    with pytest.raises(ChainError, match="no head"):
        Thermogram.replay(stripped).verify(trusted_keys=trusted)
    # nor does signing with the attacker's own key
    v = Thermogram.replay(stripped)
    v.sign_head(b"attacker-secret-attacker-secret!")
    with pytest.raises(ChainError, match="no head"):
        v.verify(trusted_keys=trusted)
    # through a file too
    p = tmp_path / "signed.thermo"
    t.save(p)
    assert Thermogram.load(p, trusted_keys=trusted).head_hash == t.head_hash
    u.save(tmp_path / "forged.thermo")
    with pytest.raises(ChainError):
        Thermogram.load(tmp_path / "forged.thermo", trusted_keys=trusted)


def test_signatures_survive_the_journal(tmp_path):
    p = tmp_path / "j.thermo"
    with Thermogram.open(p, create=True) as t:
        t.write("a", signal_vector([(1, 1)]))
        kid = t.sign_head(SECRET)
    with Thermogram.open(p) as u:
        rep = u.verify_trust([SECRET])
        assert [s.key_id for s in rep.signatures] == [kid] == [key_id(SECRET)]


def test_public_key_cannot_sign_and_short_secret_rejected():
    t = capsule()
    with pytest.raises(ValueError):
        t.sign_head(Ed25519PrivateKey.generate().public_key())
    with pytest.raises(ValueError):
        t.sign_head(b"short")


def test_capsule_merkle_proofs():
    t = capsule()
    old_size, old_root = len(t.records()), t.merkle_root()
    t.write("more", signal_vector([(1, 2)]))
    t.apply_decay()
    n, root = len(t.records()), t.merkle_root()
    for i, r in enumerate(t.records()):
        assert Thermogram.verify_inclusion(r.hash, i, n, t.prove_inclusion(i), root)
    assert Thermogram.verify_consistency(old_size, n, old_root, root, t.prove_consistency(old_size))
    forged = Thermogram.replay(rewrite(t.records(), 1, lambda r: setattr(r, "timestamp", r.timestamp + 1)))
    assert not Thermogram.verify_consistency(old_size, n, old_root, forged.merkle_root(),
                                             forged.prove_consistency(old_size))
