"""ThermogramColony and EmbeddedSNN from 8 threads: every public method takes the object's
lock or is listed, with its reason, in the module's ``LOCK_FREE_SAFE``; then a bounded stress
run under faulthandler, after which every member verifies and the network's state restores.

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

from thermogram import (DeltaBatch, EmbeddedSNN, EmbeddedSNNConfig, NeuromodState, NeuromodSyncConfig, Signal,
                        ThermogramColony, ThermogramError, signal_vector)
from thermogram.colony import colony as colony_module
from thermogram import snn as snn_module

SECONDS = float(os.environ.get("THERMOGRAM_THREAD_SECONDS", "2"))
THREADS = 8
DUNDERS = ("__contains__", "__len__", "__iter__", "__repr__", "_repr_html_", "__enter__", "__exit__")


def public_methods(cls):
    out = {}
    for name, v in inspect.getmembers(cls):
        if name.startswith("_") and name not in DUNDERS:
            continue
        raw = inspect.getattr_static(cls, name)
        if isinstance(raw, property) or not callable(v):
            continue
        out[name] = raw
    return out


def takes_lock(raw):
    f = raw.__func__ if isinstance(raw, (staticmethod, classmethod)) else raw
    return "self._lock" in inspect.getsource(f)


@pytest.mark.parametrize("cls, module", [(ThermogramColony, colony_module), (EmbeddedSNN, snn_module)],
                         ids=["colony", "snn"])
def test_every_public_method_is_locked_or_documented(cls, module):
    methods = public_methods(cls)
    unlocked = sorted(n for n, raw in methods.items() if not takes_lock(raw) and n not in module.LOCK_FREE_SAFE)
    assert not unlocked, f"{cls.__name__}: methods that neither take the lock nor are in LOCK_FREE_SAFE: {unlocked}"
    stale = sorted(set(module.LOCK_FREE_SAFE) - set(methods))
    assert not stale, f"LOCK_FREE_SAFE names methods that do not exist: {stale}"


def _run_threads(work, seconds=SECONDS):
    errors, stop = [], time.monotonic() + seconds
    faulthandler.enable()

    def loop(seed):
        rng = random.Random(seed)
        while time.monotonic() < stop:
            try:
                work(rng)
            except ThermogramError:
                pass  # a refused call is fine; a crash or another exception is not
            except Exception as e:  # noqa: BLE001 - collected and reported below
                errors.append(repr(e))
                return

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:5]


COLONY_KEYS = [f"g{i % 5}_k{i}" for i in range(60)]


def _colony_call(c, tmp):
    def work(rng):
        k = rng.choice(COLONY_KEYS)
        op = rng.randrange(16)
        if op == 0:
            c.write(k, signal_vector([(1, rng.randrange(1, 256))]), Signal.positive(rng.randrange(256)))
        elif op == 1:
            ks = [rng.choice(COLONY_KEYS) for _ in range(rng.randrange(1, 8))]
            c.apply_batch(DeltaBatch.from_arrays(ks, [signal_vector([(1, 3)])] * len(ks), Signal.positive(120),
                                                 "update", timestamps=rng.randrange(1, 10 ** 9)))
        elif op == 2:
            c.consolidate()
        elif op == 3:
            c.read(k), c.read_with_state(k), c.read_many([k, rng.choice(COLONY_KEYS)]), k in c
        elif op == 4:
            c.keys(), len(c), list(iter(c)), c.stats(), repr(c), c._repr_html_()
        elif op == 5:
            c.route(k), c.route_many(COLONY_KEYS[:9]), c.member_for(k), c.ranges(), c.member_count()
        elif op == 6:
            c.state_digest(), c.member_digests(), c.member_key_counts(), c.total_entries()
        elif op == 7:
            c.reinforce(k, Signal.positive(5)), c.weaken(k, Signal.positive(2))
        elif op == 8:
            c.apply_decay()
        elif op == 9:
            c.delete(k)
        elif op == 10:
            c.sync_neuromod()
            c.set_neuromod_sync(0, NeuromodSyncConfig.default())
            c.member_neuromod(0), c.neuromod_sync(0), c.hash_share(0), c.member(0)
        elif op == 11 and c.member_count() < 4:
            c.split(0)
        elif op == 12 and c.member_count() > 1:
            c.merge(c.member_count() - 1, 0)
        elif op == 13:
            c.rebalance()
        elif op == 14:
            c.save(tmp)
        else:
            c.key_hash(k), c.key_hashes(COLONY_KEYS[:5]), c.read_layer(k, 0), c.read_with_strength(k)
    return work


def test_eight_threads_on_a_colony(tmp_path):
    c = ThermogramColony("threads", "threads")
    for k in COLONY_KEYS[:20]:
        c.write(k, signal_vector([(1, 9)]))
    folder = str(tmp_path / "colony")
    _run_threads(_colony_call(c, folder))
    for i in range(c.member_count()):
        assert c.member(i).verify()
    c.save(folder)
    assert ThermogramColony.open(folder).state_digest() == c.state_digest()


def test_eight_threads_on_one_network():
    cfg = EmbeddedSNNConfig.default().replace(num_neurons=24, input_dim=16)
    snn = EmbeddedSNN(cfg, seed=3, clock=lambda: 1_700_000_000_000_000_000)

    def work(rng):
        x = np.random.default_rng(rng.randrange(2 ** 32)).standard_normal(16).astype(np.float32)
        op = rng.randrange(6)
        if op == 0:
            snn.process(x)
        elif op == 1:
            snn.process_batch(np.stack([x, -x]))
        elif op == 2:
            EmbeddedSNN.restore(snn.state())
        elif op == 3:
            snn.weight(rng.randrange(24), rng.randrange(24)), snn.quantized_weights()
        elif op == 4:
            repr(snn), snn._repr_html_()
        else:
            snn.sync_neuromod(NeuromodState.baseline())

    _run_threads(work)
    back = EmbeddedSNN.restore(snn.state())
    x = np.linspace(-1, 1, 16, dtype=np.float32)
    a, b = snn.process(x), back.process(x)
    assert a.keys == b.keys and np.array_equal(a.values, b.values)
    assert np.isfinite(snn.weights).all()
