"""``verify()`` hashes each record once (:meth:`Chain.verify`) and then replays with links
checked only; these tests show that nothing it used to catch slips through that split, and
that the key table's remembered pairs stay right. (A state the records do not make is
caught by the replay itself: tests/test_integrity_trust.py and test_integrity_replay.py.)"""
import pytest

from test_integrity_trust import KEY, capsule as settled_capsule
from thermogram import ChainError, Signal, Thermogram, signal_vector
from thermogram.core import capsule_parts, replay_capsule
from thermogram.keytable import KeyTable


def capsule():
    """Four consolidated entries (tests/test_integrity_trust.py) and one pending update."""
    t = settled_capsule()
    t.write("k1", signal_vector([(-1, 7)]), Signal.positive(90))
    return t


def _delta_index(t):
    return next(i for i, r in enumerate(t.records()) if r.kind == "delta")


def _stale(t, i, **change):
    """Replace record ``i`` with a copy whose content differs but whose stored hash is the old one."""
    with capsule_parts(t) as parts:
        rec = parts.chain.records[i].copy()
        for name, value in change.items():
            setattr(rec, name, value)
        parts.chain.records[i] = rec


@pytest.mark.parametrize("trusted", [False, True])
def test_verify_catches_content_that_no_longer_matches_its_hash(trusted):
    t = capsule()
    if trusted:
        t.sign_head(KEY)
    i = _delta_index(t)
    assert t.verify() if not trusted else t.verify(trusted_keys=[KEY])
    _stale(t, i, strength=Signal.positive(3))
    with pytest.raises(ChainError) as ei:
        t.verify(trusted_keys=[KEY]) if trusted else t.verify()
    assert ei.value.index == i


def test_verify_catches_a_rehashed_record_by_the_next_link():
    t = capsule()
    i = _delta_index(t)
    with capsule_parts(t) as parts:
        rec = parts.chain.records[i].copy()
        rec.strength = Signal.positive(3)
        rec.hash = rec.compute_hash()  # consistent on its own, but the next record links to the old hash
        parts.chain.records[i] = rec
    with pytest.raises(ChainError) as ei:
        t.verify()
    assert ei.value.index == i + 1


def test_replay_without_rehash_still_checks_links_and_with_rehash_checks_hashes():
    t = capsule()
    recs = t.records()
    i = _delta_index(t)
    stale = recs[i].copy()
    stale.strength = Signal.positive(3)
    bad = recs[:i] + [stale] + recs[i + 1:]
    with pytest.raises(ChainError) as ei:
        replay_capsule(Thermogram, bad)
    assert ei.value.index == i
    with pytest.raises(ChainError) as ei:
        Thermogram.replay(bad)
    assert ei.value.index == i
    unlinked = recs[:i] + recs[i + 1:]
    with pytest.raises(ChainError, match="does not link") as ei:
        replay_capsule(Thermogram, unlinked, rehash=False)
    assert ei.value.index == i
    assert replay_capsule(Thermogram, recs, rehash=False).state_digest() == t.state_digest()


def test_add_remembers_the_pair_it_found_or_made():
    t = KeyTable(capacity=4)
    assert t.add("a") == 0 and t.recent == {"a": 0}
    t.recent.clear()
    assert t.add("a") == 0 and t.recent == {"a": 0}  # found by a probe, then remembered
    for i in range(1, KeyTable.RECENT + 5):
        assert t.add(f"k{i}") == i
    assert len(t.recent) <= KeyTable.RECENT
    for i in range(1, KeyTable.RECENT + 5):  # every id still right after ``recent`` started over
        assert t.get(f"k{i}") == i and t.add(f"k{i}") == i
    assert len(t) == KeyTable.RECENT + 5
    c = t.copy()
    assert c.recent == {} and c.add("a") == 0 and c.add("new") == len(t)
    assert t.get("new") is None
