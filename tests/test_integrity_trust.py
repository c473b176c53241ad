"""What a signed (or verified) capsule binds: the attacks of the integrity issue, one test each.

The attacker here can rewrite any byte of a file and recompute every checksum and META's
digests (as ``save()`` does), but does not hold the signing key.
"""
import json
import struct

import numpy as np
import pytest
import xxhash

from conftest import StepClock
from thermogram import ChainError, ConsolidationPolicy, FormatError, Signal, ThermalState, Thermogram, signal_vector
from thermogram.chain import OpRecord
from thermogram.core import capsule_parts
from thermogram.trust import load_trusted, state_binding

KEY = b"integrity-secret-of-32-bytes-000"
OTHER = b"some-other-secret-of-32-bytes-00"


def capsule():
    t = Thermogram("signed", policy=ConsolidationPolicy.manual_only(), clock=StepClock())
    for i in range(4):
        t.write(f"k{i}", signal_vector([(1, 10 + i), (1, 20 + i)]), Signal.positive(100 + i))
    t.consolidate()
    return t


# ------------------------------------------------------------------ v2 section surgery (the attacker's tools)
def split(data):
    n = struct.unpack_from("<I", data, 8)[0]
    pos, out = 16, []
    for _ in range(n):
        tag, _fl, length, _ck = struct.unpack_from("<4sIQQ", data, pos)
        pos += 24
        out.append((tag, data[pos:pos + length]))
        pos += length
    return out


def join(secs):
    body = b"".join(tag + struct.pack("<IQQ", 0, len(p), xxhash.xxh3_64_intdigest(p)) + p for tag, p in secs)
    return b"THRM" + struct.pack("<HHII", 2, 0, len(secs), 0) + body


def with_meta(data, **kw):
    secs = split(data)
    out = []
    for tag, p in secs:
        if tag == b"META":
            m = json.loads(p)
            m.update(kw)
            p = json.dumps(m, sort_keys=True).encode()
        out.append((tag, p))
    return join(out)


def rewritten_entries(t, mutate):
    """``t``'s bytes after changing its entry table in place (records untouched), with every
    checksum and META's state digest recomputed, as save() writes them."""
    u = Thermogram.from_bytes(t.to_bytes())
    with capsule_parts(u) as parts:
        mutate(parts.store)
        u._digest = None  # the attacker recomputes META's digest over the rewritten table
    return u.to_bytes()


def strongest(store):
    n = store.nrows
    store.mag[:n] = 255


def swap_values(store):
    store.voff[0], store.voff[1] = int(store.voff[1]), int(store.voff[0])
    store.vlen[0], store.vlen[1] = int(store.vlen[1]), int(store.vlen[0])


# ------------------------------------------------------------------ attacks
@pytest.mark.parametrize("mutate", [strongest, swap_values], ids=["strength-255", "swapped-values"])
def test_rewritten_entry_table_is_refused_by_a_trusted_load(tmp_path, mutate):
    t = capsule()
    t.sign_head(KEY)
    p = tmp_path / "c.thermo"
    t.save(p)
    assert Thermogram.load(p, trusted_keys=[KEY]).state_digest() == t.state_digest()
    bad = rewritten_entries(t, mutate)
    (tmp_path / "bad.thermo").write_bytes(bad)
    u = Thermogram.load(tmp_path / "bad.thermo")  # checksums and META agree: a plain load reads it...
    assert u.state_digest() != t.state_digest()
    with pytest.raises(ChainError, match="does not match"):  # ...but it is not what the records make
        u.verify()
    with pytest.raises(ChainError):
        Thermogram.load(tmp_path / "bad.thermo", trusted_keys=[KEY])


def test_rewritten_entry_table_of_an_unsigned_file_fails_verify():
    t = capsule()
    u = Thermogram.from_bytes(rewritten_entries(t, strongest))
    with pytest.raises(ChainError):
        u.verify()


def test_rewritten_meta_config_is_refused(tmp_path):
    t = capsule()
    t.sign_head(KEY)
    cfg = t.thermal_config.to_dict()
    cfg["prune_threshold"] = [1, 255]  # one transition pass would delete every key
    bad = with_meta(t.to_bytes(), thermal_config=cfg)
    with pytest.raises(FormatError, match="thermal_config"):
        Thermogram.from_bytes(bad)
    with pytest.raises(FormatError, match="thermal_config"):
        Thermogram.from_bytes(bad, verify=False)


def test_meta_config_that_matches_the_records_loads():
    from thermogram import ThermalConfig
    t = capsule()
    t.configure(thermal_config=ThermalConfig.fast_learner() if hasattr(ThermalConfig, "fast_learner")
                else ThermalConfig.default())
    u = Thermogram.from_bytes(t.to_bytes())
    assert u.thermal_config.to_dict() == t.thermal_config.to_dict()
    assert u.verify()


def test_stripped_newer_signature_leaves_an_unsigned_tail():
    t = capsule()
    t.sign_head(KEY)
    first_size = len(t.records()) - 1
    t.write("k0", signal_vector([(1, 99)]))
    t.sign_head(KEY)
    rep = t.verify_trust([KEY], require_signed=True)
    assert rep.unsigned_records == [] and rep.state_bound_by == "signature"
    # the attacker strips the newer signature and rewrites what it covered
    recs = [r.copy() for r in t.records()[:-1]]
    recs[-1].value = signal_vector([(-1, 255)])
    prev = recs[first_size].hash
    for r in recs[first_size + 1:]:
        r.prev_hash = prev
        r._hash = r.compute_hash()
        prev = r.hash
    forged = Thermogram.replay(recs)
    rep = forged.verify_trust([KEY])  # the older signature still holds...
    assert rep.signed_size == first_size
    assert rep.unsigned_records == [len(recs) - 1]  # ...and the rewritten record is reported
    with pytest.raises(ChainError, match="not signed"):
        forged.verify_trust([KEY], require_signed=True)
    with pytest.raises(ChainError, match="not signed"):
        forged.verify([KEY], require_signed=True)


def test_appended_unsigned_records_are_reported_and_refused(tmp_path):
    p = tmp_path / "j.thermo"
    with Thermogram.open(p, create=True, policy=ConsolidationPolicy.manual_only()) as t:
        t.write("a", signal_vector([(1, 1)]))
        t.sign_head(KEY)
        t.write("b", signal_vector([(1, 2)]))  # appended to the journal after the signature
        t.reinforce("a", Signal.positive(5))
    with Thermogram.open(p, readonly=True) as u:
        rep = u.verify(trusted_keys=[KEY])
        assert len(rep.unsigned_records) == 1  # the write; reinforce of a pending-only key is a no-op
        with pytest.raises(ChainError, match="not signed"):
            u.verify(trusted_keys=[KEY], require_signed=True)
    with Thermogram.open(p) as w:
        w.checkpoint()
    u, rep = load_trusted(p, [KEY])
    assert rep.unsigned_records and rep.state_bound_by == "replay"
    with pytest.raises(ChainError, match="not signed"):
        load_trusted(p, [KEY], require_signed=True)


def test_signature_commits_to_the_state():
    t = capsule()
    t.sign_head(KEY)
    sig = t.records()[-1]
    assert sig.args["state"] == state_binding(t)
    rep = t.verify_trust([KEY])
    assert rep.state_bound_by == "signature" and rep.signatures[0].state == state_binding(t)


@pytest.mark.parametrize("field,value", [("key_id", ["a"]), ("signature", 5), ("root", np.zeros(32, np.uint8)),
                                         ("size", "3"), ("head", 7), ("state", 12), ("state", "zz" * 32)])
def test_malformed_sign_head_fields_are_chain_errors(field, value):
    t = capsule()
    t.sign_head(KEY)
    good = t.records()[-1]
    args = dict(good.args)
    args[field] = value
    forged = OpRecord("sign_head", args, good.timestamp + 1)
    forged._link(t.head_hash)
    with capsule_parts(t) as parts:
        parts.chain.push_linked(forged)
    for keys in ([KEY], [OTHER]):
        with pytest.raises(ChainError, match="malformed sign_head"):
            t.verify_trust(keys)
    with pytest.raises(ChainError):
        Thermogram.replay(t.records())


def test_an_untrusted_signature_does_not_bind_anything():
    t = capsule()
    t.sign_head(OTHER)
    with pytest.raises(ChainError, match="no head"):
        t.verify_trust([KEY])


def test_verify_replays_and_accepts_every_kind_of_capsule(tmp_path):
    t = capsule()
    t.insert_entry("cold", signal_vector([(1, 3)]), Signal.positive(250), ThermalState.COLD)
    t.warm("cold")
    t.reinforce("k1", Signal.positive(3))
    t.weaken("k2", Signal.positive(3))
    t.apply_decay()
    t.run_thermal_transitions()
    t.set_custom(b"c")
    t.write("pending", signal_vector([(1, 1)]))
    t.sign_head(KEY)
    assert t.verify() is True
    u = Thermogram.from_bytes(t.to_bytes())
    assert u.verify() and u.verify_trust([KEY]).state_bound_by == "signature"
