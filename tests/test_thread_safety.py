"""Every public method of Thermogram, from 8 threads at once, under faulthandler.

The public methods are found by introspection, so a new one must be added to ``CALLS``
(how to call it) or ``NOT_STRESSED`` (why not) before this test passes. Each must take the
capsule's lock or be listed, with its reason, in ``thermogram.core.LOCK_FREE_SAFE``.
Afterwards the capsule verifies (chain and state against a replay), replays to the same
digest, and (file-backed) reopens to the same digest.

``THERMOGRAM_THREAD_SECONDS`` sets how long the threads run (default 2 s a round).
"""
import faulthandler
import inspect
import os
import random
import threading
import time

import numpy as np
import pytest

from thermogram import (ConsolidationPolicy, Delta, DeltaBatch, Signal, ThermalState, Thermogram,
                        ThermogramError, signal_vector)
from thermogram.core import LOCK_FREE_SAFE
from thermogram.keytable import KeyTable

SECONDS = float(os.environ.get("THERMOGRAM_THREAD_SECONDS", "2"))
THREADS = 8
KEYS = [f"k{i}" for i in range(24)]
SECRET = b"thread-secret-of-32-bytes-000000"


def _sv(rng):
    return signal_vector([(1, rng.randrange(1, 256))] * rng.randrange(1, 4))


def _batch(rng):
    ks = [rng.choice(KEYS) for _ in range(rng.randrange(1, 6))]
    return DeltaBatch.from_arrays(ks, [_sv(rng) for _ in ks], Signal.positive(rng.randrange(256)), "update",
                                  timestamps=rng.randrange(1, 10 ** 9))


CALLS = {
    "__contains__": lambda t, r, tmp: rng_key(r) in t,
    "__len__": lambda t, r, tmp: len(t),
    "__repr__": lambda t, r, tmp: repr(t),
    "_repr_html_": lambda t, r, tmp: t._repr_html_(),
    "apply_batch": lambda t, r, tmp: t.apply_batch(_batch(r)),
    "apply_decay": lambda t, r, tmp: t.apply_decay(),
    "apply_delta": lambda t, r, tmp: t.apply_delta(Delta.merge(rng_key(r), _sv(r), "m", Signal.positive(90))),
    "cold_keys": lambda t, r, tmp: t.cold_keys(),
    "configure": lambda t, r, tmp: t.configure(policy=ConsolidationPolicy.manual_only()),
    "consolidate": lambda t, r, tmp: t.consolidate(),
    "cool_keys": lambda t, r, tmp: t.cool_keys(),
    "crystallize": lambda t, r, tmp: t.crystallize(),
    "delete": lambda t, r, tmp: t.delete(rng_key(r)),
    "deltas_to_arrow": lambda t, r, tmp: t.deltas_to_arrow(),
    "dirty_size": lambda t, r, tmp: t.dirty_size(),
    "entries": lambda t, r, tmp: t.entries(r.randrange(4)),
    "entry": lambda t, r, tmp: t.entry(rng_key(r), r.randrange(4)),
    "export_to_json": lambda t, r, tmp: t.export_to_json(consolidate=False),
    "history": lambda t, r, tmp: t.history(rng_key(r)),
    "hot_keys": lambda t, r, tmp: t.hot_keys(),
    "insert_entry": lambda t, r, tmp: t.insert_entry(rng_key(r), _sv(r), Signal.positive(r.randrange(256)),
                                                     r.randrange(4), update_count=r.randrange(10)),
    "keys": lambda t, r, tmp: t.keys(),
    "keys_for_state": lambda t, r, tmp: t.keys_for_state(r.randrange(4)),
    "layer_counts": lambda t, r, tmp: t.layer_counts(),
    "merkle_root": lambda t, r, tmp: t.merkle_root(),
    "now": lambda t, r, tmp: t.now(),
    "prove_consistency": lambda t, r, tmp: t.prove_consistency(1),
    "prove_inclusion": lambda t, r, tmp: t.prove_inclusion(0),
    "prune_hot": lambda t, r, tmp: t.prune_hot(),
    "read": lambda t, r, tmp: t.read(rng_key(r)),
    "read_with_state": lambda t, r, tmp: t.read_with_state(rng_key(r)),
    "read_with_strength": lambda t, r, tmp: t.read_with_strength(rng_key(r)),
    "records": lambda t, r, tmp: t.records(),
    "records_to_arrow": lambda t, r, tmp: t.records_to_arrow(),
    "reinforce": lambda t, r, tmp: t.reinforce(rng_key(r), Signal.positive(r.randrange(40))),
    "run_thermal_transitions": lambda t, r, tmp: t.run_thermal_transitions(),
    "set_custom": lambda t, r, tmp: t.set_custom(bytes([r.randrange(256)])),
    "should_consolidate": lambda t, r, tmp: t.should_consolidate(),
    "sign_head": lambda t, r, tmp: t.sign_head(SECRET),
    "state_digest": lambda t, r, tmp: t.state_digest(),
    "stats": lambda t, r, tmp: t.stats(),
    "strengths": lambda t, r, tmp: t.strengths(r.randrange(4)),
    "to_arrow": lambda t, r, tmp: t.to_arrow(),
    "to_bytes": lambda t, r, tmp: t.to_bytes(),
    "total_entries": lambda t, r, tmp: t.total_entries(),
    "verify": lambda t, r, tmp: t.verify(),
    "verify_trust": lambda t, r, tmp: t.verify_trust([SECRET]),
    "warm": lambda t, r, tmp: t.warm(rng_key(r)),
    "warm_keys": lambda t, r, tmp: t.warm_keys(),
    "warm_matching": lambda t, r, tmp: t.warm_matching(lambda k, e: k.endswith("1")),
    "weaken": lambda t, r, tmp: t.weaken(rng_key(r), Signal.positive(r.randrange(40))),
    "write": lambda t, r, tmp: t.write(rng_key(r), _sv(r), Signal.positive(r.randrange(256))),
    "save": lambda t, r, tmp: t.save(os.path.join(tmp, f"s{r.randrange(3)}.thermo")),
    "to_parquet": lambda t, r, tmp: t.to_parquet(os.path.join(tmp, f"p{r.randrange(3)}.parquet")),
    "export_archive": lambda t, r, tmp: t.export_archive(os.path.join(tmp, f"a{r.randrange(10 ** 9)}")),
    "journal_segments": lambda t, r, tmp: t.journal_segments(),
    "read_f32": lambda t, r, tmp: t.read_f32(rng_key(r)),
    "to_pandas": lambda t, r, tmp: t.to_pandas(),
    "__iter__": lambda t, r, tmp: list(iter(t)),
}

NOT_STRESSED = {
    "__enter__": "context manager: returns the capsule",
    "__exit__": "closes the capsule (ends the run)",
    "close": "ends the run; checked after it",
    "checkpoint": "file-backed only; run in the file-backed round",
    "delete_archived_segments": "deletes files: run in the file-backed round",
    # constructors and pure functions: no shared capsule
    "from_arrow": "constructor", "from_bytes": "constructor", "from_genesis": "constructor",
    "load": "constructor", "open": "constructor", "read_parquet": "constructor", "recover": "constructor",
    "replay": "constructor", "verify_inclusion": "pure function", "verify_consistency": "pure function",
}

#: expensive calls run this much less often than cheap ones
RARE = {"to_pandas", "verify", "verify_trust", "export_archive", "to_parquet", "save", "export_to_json",
        "deltas_to_arrow", "records_to_arrow", "to_bytes", "sign_head", "merkle_root", "prove_consistency", "prove_inclusion",
        "checkpoint", "configure"}


def rng_key(r):
    return r.choice(KEYS)


def public_methods():
    out = {}
    for name, v in inspect.getmembers(Thermogram):
        if name.startswith("_") and name not in ("__contains__", "__len__", "__repr__", "__enter__",
                                                 "__exit__", "__iter__", "_repr_html_"):
            continue
        raw = inspect.getattr_static(Thermogram, name)
        if isinstance(raw, property) or not callable(v):
            continue
        out[name] = raw
    return out


def _takes_lock(raw):
    f = raw.__func__ if isinstance(raw, (staticmethod, classmethod)) else raw
    if hasattr(f, "__wrapped__"):
        return True
    src = inspect.getsource(f)
    # ``with self._lock:``, or the explicit form the hot read path uses (half the cost):
    # ``lk = self._lock`` / ``lk.acquire()`` / ``try: ... finally: lk.release()``
    explicit = ("lk = self._lock" in src and "lk.acquire()" in src and "finally:" in src
                and "lk.release()" in src)
    return "with self._lock" in src or explicit


def test_every_public_method_is_covered_and_locked_or_documented():
    methods = public_methods()
    missing = sorted(set(methods) - set(CALLS) - set(NOT_STRESSED))
    assert not missing, f"add these public methods to CALLS or NOT_STRESSED: {missing}"
    unlocked = sorted(n for n, raw in methods.items() if not _takes_lock(raw) and n not in LOCK_FREE_SAFE)
    assert not unlocked, f"public methods that neither take the lock nor are in LOCK_FREE_SAFE: {unlocked}"
    stale = sorted(set(LOCK_FREE_SAFE) - set(methods))
    assert not stale, f"LOCK_FREE_SAFE names methods that do not exist: {stale}"


def _seed(t):
    rng = random.Random(0)
    for k in KEYS:
        t.write(k, _sv(rng), Signal.positive(200))
    t.consolidate()
    t.insert_entry("cold1", signal_vector([(1, 5)]), Signal.positive(250), ThermalState.COLD)
    t.sign_head(SECRET)


def _run(t, tmp, extra=()):
    names = [n for n in CALLS if n not in RARE] * 8 + [n for n in CALLS if n in RARE] + list(extra)
    calls = dict(CALLS)
    calls.update({"checkpoint": lambda t, r, tmp: t.checkpoint(),
                  "delete_archived_segments": lambda t, r, tmp: t.delete_archived_segments()})
    errors = []
    stop = time.monotonic() + SECONDS
    counts = {}

    def worker(seed):
        rng = random.Random(seed)
        while time.monotonic() < stop:
            name = rng.choice(names)
            try:
                calls[name](t, rng, tmp)
            except ThermogramError:
                pass  # refused inputs (a delete of a missing key...) are fine; the state stays sound
            except Exception as e:  # anything else is a bug
                errors.append((name, repr(e)))
                return
            counts[name] = counts.get(name, 0) + 1

    faulthandler.enable()
    faulthandler.dump_traceback_later(SECONDS + 120, exit=True)
    try:
        threads = [threading.Thread(target=worker, args=(s,)) for s in range(THREADS)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    finally:
        faulthandler.cancel_dump_traceback_later()
    assert not errors, errors[:10]
    assert len(counts) >= len(set(names)) // 2  # most kinds of call really ran
    return counts


def _check(t):
    assert t.verify()
    assert Thermogram.replay(t.records()).state_digest() == t.state_digest()
    assert t.verify_trust([SECRET]).signed_size > 0


def test_eight_threads_every_public_method_in_memory(tmp_path):
    t = Thermogram("threads", policy=ConsolidationPolicy.manual_only())
    _seed(t)
    _run(t, str(tmp_path))
    _check(t)
    u = Thermogram.from_bytes(t.to_bytes())
    assert u.state_digest() == t.state_digest() and u.verify()


def test_eight_threads_every_public_method_file_backed(tmp_path):
    p = str(tmp_path / "c.thermo")
    t = Thermogram.open(p, create=True, fsync="never", policy=ConsolidationPolicy.manual_only())
    _seed(t)
    _run(t, str(tmp_path), extra=("checkpoint", "delete_archived_segments"))
    _check(t)
    digest = t.state_digest()
    t.close()
    with Thermogram.open(p) as u:
        assert u.state_digest() == digest
        _check(u)


def _failing_blob_growth(monkeypatch):
    """Make growing a key table's blob fail (as an out-of-memory would), until undone."""
    def fail(self, data):
        raise MemoryError("injected: the key blob cannot grow")
    monkeypatch.setattr(KeyTable, "_extend_blob", fail)


def test_a_failed_key_registration_leaves_no_stale_ids(monkeypatch):
    kt = KeyTable()
    kt.add_many(["a", "b"])
    with monkeypatch.context() as m:
        _failing_blob_growth(m)
        with pytest.raises(MemoryError):
            kt.add_many(["c", "d", "a"])
        with pytest.raises(MemoryError):
            kt.add("e")
    assert len(kt) == 2 and kt.get("c") is None and kt.get("d") is None and kt.get("e") is None
    assert (kt.tab < 2).all()  # no id past the keys
    assert kt.add_many(["c", "a", "d"]).tolist() == [2, 0, 3]
    assert list(kt) == ["a", "b", "c", "d"]


def test_a_failed_registration_inside_a_capsule_changes_nothing(monkeypatch):
    t = Thermogram("fail", policy=ConsolidationPolicy.manual_only())
    t.write("a", signal_vector([(1, 1)]))
    before = (t.state_digest(), t.head_hash, len(t.records()))
    with monkeypatch.context() as m:
        _failing_blob_growth(m)
        with pytest.raises(MemoryError):
            t.apply_batch(DeltaBatch.from_arrays(["new1", "new2"], [signal_vector([(1, 2)])] * 2, timestamps=5))
    assert (t.state_digest(), t.head_hash, len(t.records())) == before
    assert t.verify()
    t.apply_batch(DeltaBatch.from_arrays(["new1", "new2"], [signal_vector([(1, 2)])] * 2, timestamps=5))
    assert t.verify() and t.read("new2").tolist() == [(1, 2)]
