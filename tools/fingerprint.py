#!/usr/bin/env python
"""Deterministic behaviour fingerprint of the thermogram public API.

Prints one line per scenario, ``name <sha256>``; the hash covers everything the
scenario observed (digests, head hashes, file/IPC bytes, Merkle roots, reprs of
results, error class names). Run it on two trees and diff the output: a
restructuring that changes no behaviour prints identical lines.

Determinism: every clock is an injected integer clock, every random input comes
from fixed seeds, record ids are given explicitly where the API takes one and the
library's id generator is re-seeded at the start of every scenario (ids made
inside ``write``/``delete``/the SNN). No wall time is read.

Only public names are used, and module paths that may move are looked up
defensively, so the same script runs before and after the restructuring.

Usage: python tools/fingerprint.py [-v] [--dump FILE]
    -v           also print a few plain values per scenario to stderr
    --dump FILE  write every hashed item (scenario, label, item hash, short repr) to FILE;
                 diff two dumps to see which item of a scenario differs
"""
from __future__ import annotations

import hashlib
import importlib
import json
import os
import random
import shutil
import struct
import sys
import tempfile
import traceback

import numpy as np

import thermogram as tg

VERBOSE = "-v" in sys.argv
DUMP = open(sys.argv[sys.argv.index("--dump") + 1], "w") if "--dump" in sys.argv else None
CONF = os.environ.get("THERMOGRAM_CONFORMANCE_DIR",
                      os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "conformance"))
T0 = 1_700_000_000_000_000_000
HOUR = 3_600_000_000_000
HMAC_KEY = b"fingerprint-hmac-secret-32-bytes"
ED25519_RAW = bytes(range(32))


# ----------------------------------------------------------------------------- helpers
def first_attr(names):
    """The first importable ``module:attr`` (or module) among ``names``."""
    for n in names:
        mod, _, attr = n.partition(":")
        try:
            m = importlib.import_module(mod)
        except ImportError:
            continue
        if not attr:
            return m
        if hasattr(m, attr):
            return getattr(m, attr)
    raise ImportError(f"none of {names} found")


def reseed_ids(seed):
    """Re-seed the library's record-id generator (ids of deltas made by write/delete/SNN)."""
    new_id = first_attr(["thermogram.delta:new_id", "thermogram.chain:new_id"])
    reseed = new_id.__globals__.get("reseed_ids")
    if reseed is not None:  # also drops ids drawn ahead
        reseed(seed)
        return
    rng = new_id.__globals__.get("_rng")
    if rng is None or not hasattr(rng, "seed"):
        print("warning: id generator not found; ids made inside the library are random", file=sys.stderr)
        return
    rng.seed(seed)


class Clock:
    """Integer ns clock: ``step`` per call, plus explicit jumps."""

    def __init__(self, start=T0, step=1_000_000):
        self.now = start
        self.step = step

    def __call__(self):
        self.now += self.step
        return self.now

    def jump(self, ns):
        self.now += int(ns)


class Fp:
    """A running SHA-256 over labelled, type-tagged values."""

    def __init__(self, name):
        self.name = name
        self.h = hashlib.sha256(name.encode() + b"\x00")
        self.n = 0

    def add(self, label, obj):
        self.n += 1
        c = canon(obj)
        self.h.update(label.encode() + b"\x00" + c + b"\x01")
        if DUMP is not None:
            DUMP.write(f"{self.name} {label} {hashlib.sha256(c).hexdigest()[:16]} {short(obj)!r}\n")
        if VERBOSE and self.n <= 6:
            print(f"  [{self.name}] {label}: {short(obj)}", file=sys.stderr)

    def hexdigest(self):
        return self.h.hexdigest()


def short(obj):
    s = repr(obj)
    return s if len(s) < 100 else s[:97] + "..."


def canon(obj) -> bytes:
    """Stable bytes for a value: arrays by dtype/shape/bytes, containers recursively, else repr."""
    if obj is None:
        return b"N"
    if isinstance(obj, (bytes, bytearray, memoryview)):
        b = bytes(obj)
        return b"B" + struct.pack("<Q", len(b)) + b
    if isinstance(obj, str):
        b = obj.encode()
        return b"S" + struct.pack("<Q", len(b)) + b
    if isinstance(obj, bool):
        return b"T" if obj else b"F"
    if isinstance(obj, (int, np.integer)):
        return b"I" + str(int(obj)).encode()
    if isinstance(obj, (float, np.floating)):
        return b"R" + np.float64(obj).tobytes()
    if isinstance(obj, np.ndarray):
        a = np.ascontiguousarray(obj)
        return b"A" + a.dtype.str.encode() + repr(a.dtype.descr).encode() + repr(a.shape).encode() + a.tobytes()
    if isinstance(obj, (list, tuple)):
        return b"L" + struct.pack("<Q", len(obj)) + b"".join(canon(x) for x in obj)
    if isinstance(obj, dict):
        items = sorted(obj.items(), key=lambda kv: repr(kv[0]))
        return b"D" + struct.pack("<Q", len(items)) + b"".join(canon(k) + canon(v) for k, v in items)
    return b"P" + repr(obj).encode()


def err(e):
    return f"ERR {type(e).__name__}"


def attempt(fp, label, fn, *a, **kw):
    """Call ``fn``; hash its repr'd result, or the error class (message goes to the messages scenario)."""
    try:
        r = fn(*a, **kw)
    except (tg.ThermogramError, ValueError, TypeError, KeyError, IndexError) as e:
        fp.add(label, err(e))
        MESSAGES.add(f"{fp.name}:{label}", f"{type(e).__name__}: {e}")
        return e
    fp.add(label, r if isinstance(r, (bytes, np.ndarray, str, int, float, bool, type(None), list, tuple, dict))
           else repr(r))
    return r


MESSAGES = Fp("error_messages")


def capsule_summary(fp, t, label="final", v1=True):
    """Everything observable about a capsule's state."""
    fp.add(f"{label}.digest", t.state_digest())
    fp.add(f"{label}.head", t.head_hash)
    fp.add(f"{label}.nrec", len(t.records()))
    fp.add(f"{label}.merkle", t.merkle_root())
    fp.add(f"{label}.layers", t.layer_counts())
    fp.add(f"{label}.keys", t.keys())
    fp.add(f"{label}.pending", t.pending_count)
    for lay in ("hot", "warm", "cool", "cold"):
        fp.add(f"{label}.entries.{lay}",
               [(e["key"], e["value"], repr(e["strength"]), e["update_count"], e["updated_at"])
                for e in t.entries(lay)])
    fp.add(f"{label}.v2", t.to_bytes("v2"))
    if v1:
        attempt(fp, f"{label}.v1", t.to_bytes, "v1")
    fp.add(f"{label}.verify", t.verify())


def rand_value(rng, n=None):
    n = int(rng.choice([0, 1, 3, 8])) if n is None else n
    v = np.empty(n, tg.SIGNAL)
    v["polarity"] = rng.integers(-1, 2, n)
    v["magnitude"] = rng.integers(0, 256, n)
    return v


def rand_signal(rng, positive=False):
    p = 1 if positive else int(rng.integers(-1, 2))
    return tg.Signal(p, int(rng.integers(0, 256)))


# ----------------------------------------------------------------------------- long random capsule run
RULES = [tg.PlasticityRule.stdp_like, tg.PlasticityRule.conservative, tg.PlasticityRule.aggressive,
         tg.PlasticityRule.replace_only, tg.PlasticityRule.bayesian]
THERMALS = [tg.ThermalConfig.default, tg.ThermalConfig.fast_learner, tg.ThermalConfig.organic]


def random_run(semantics, seed, n_ops=1600):
    """A capsule driven by a seeded random sequence of every operation; returns (capsule, clock)."""
    fp = Fp(f"capsule_{semantics}")
    reseed_ids(seed)
    rng = np.random.default_rng(seed)
    clock = Clock()
    if semantics == "reference":
        policy = tg.ConsolidationPolicy((tg.ConsolidationTrigger.delta_count(40),
                                         tg.ConsolidationTrigger.time_period(48)))
    else:
        policy = tg.ConsolidationPolicy.manual_only()
    t = tg.Thermogram(f"fp-{semantics}", tg.PlasticityRule.stdp_like(), thermal_config=tg.ThermalConfig.fast_learner(),
                      policy=policy, clock=clock, semantics=semantics, id=f"capsule-{semantics}")
    keys = [f"k{i:03d}" for i in range(70)] + ["ключ", "a/b:c", "x" * 40]
    ops = ["create", "update", "merge", "delete", "delta_linked", "delta_fork", "batch", "batch_list",
           "write", "write_float", "delete_api", "consolidate", "apply_decay", "transitions", "crystallize",
           "reinforce", "weaken", "warm", "warm_matching", "prune_hot", "insert_entry", "set_custom",
           "configure", "sign_head", "jump", "read"]
    weights = np.array([8, 8, 4, 3, 2, 1, 4, 2, 6, 2, 2, 2, 2, 2, 1, 3, 3, 3, 1, 1, 3, 1, 1, 1, 2, 4], float)
    weights /= weights.sum()
    for i in range(n_ops):
        op = ops[int(rng.choice(len(ops), p=weights))]
        key = keys[int(rng.integers(len(keys)))]
        lab = f"{i}:{op}"
        if op in ("create", "update", "merge", "delete"):
            val = None if op == "delete" else rand_value(rng)
            d = tg.Delta(op, key, val, source=f"s{i % 5}", strength=None if op == "delete" else rand_signal(rng),
                         timestamp=clock(), id=f"d-{semantics}-{i}",
                         observation_count=int(rng.integers(0, 4)) if rng.random() < 0.3 else None,
                         custom=bytes([i % 256]) if rng.random() < 0.2 else None)
            attempt(fp, lab, t.apply_delta, d)
        elif op == "delta_linked":
            d = tg.Delta.update(key, rand_value(rng), "linked", rand_signal(rng), prev_hash=t.head_hash,
                                id=f"dl-{i}", clock=clock)
            attempt(fp, lab, t.apply_delta, d)
        elif op == "delta_fork":
            d = tg.Delta.update(key, rand_value(rng), "fork", prev_hash="00" * 32, id=f"df-{i}", clock=clock)
            attempt(fp, lab, t.apply_delta, d)
        elif op == "batch":
            n = int(rng.integers(1, 12))
            ks = [keys[j] for j in rng.integers(0, len(keys), n)]
            dim = int(rng.choice([1, 3, 8]))
            if rng.random() < 0.5:
                vals = rng.uniform(-1, 1, (n, dim)).astype(np.float32)
            else:
                vals = np.stack([rand_value(rng, dim) for _ in range(n)])
            types = rng.integers(0, 4, n).astype(np.uint8) if rng.random() < 0.6 else "update"
            st = np.empty(n, tg.SIGNAL)
            st["polarity"] = 1
            st["magnitude"] = rng.integers(0, 256, n)
            ts = np.array([clock() for _ in range(n)], np.int64) if rng.random() < 0.5 else None
            b = attempt(fp, lab + ".build", tg.DeltaBatch.from_arrays, ks, vals, st, types, ts,
                        source="batch", clock=clock, id=f"b-{semantics}-{i}")
            if isinstance(b, tg.DeltaBatch):
                attempt(fp, lab, t.apply_batch, b)
        elif op == "batch_list":
            ds = [tg.Delta.update(keys[j], rand_value(rng, 3), "bl", rand_signal(rng, True), id=f"bl-{i}-{j}",
                                  clock=clock) for j in rng.integers(0, len(keys), 3)]
            attempt(fp, lab, t.apply_batch, ds)
        elif op == "write":
            attempt(fp, lab, lambda: t.write(key, rand_value(rng), rand_signal(rng, True), source="w").hash)
        elif op == "write_float":
            attempt(fp, lab, lambda: t.write(key, rng.uniform(-1, 1, 3).astype(np.float32)).hash)
        elif op == "delete_api":
            attempt(fp, lab, lambda: t.delete(key).hash)
        elif op == "consolidate":
            attempt(fp, lab, t.consolidate)
        elif op == "apply_decay":
            attempt(fp, lab, t.apply_decay)
        elif op == "transitions":
            attempt(fp, lab, t.run_thermal_transitions)
        elif op == "crystallize":
            attempt(fp, lab, t.crystallize)
        elif op == "reinforce":
            attempt(fp, lab, t.reinforce, key, rand_signal(rng, True))
        elif op == "weaken":
            attempt(fp, lab, t.weaken, key, rand_signal(rng, True))
        elif op == "warm":
            attempt(fp, lab, t.warm, key)
        elif op == "warm_matching":
            m = int(rng.integers(2, 5))
            attempt(fp, lab, t.warm_matching, lambda k, e: (len(k) + int(e["update_count"])) % m == 0)
        elif op == "prune_hot":
            attempt(fp, lab, t.prune_hot)
        elif op == "insert_entry":
            layer = ["hot", "warm", "cool", "cold"][int(rng.integers(4))]
            attempt(fp, lab, t.insert_entry, key, rand_value(rng), rand_signal(rng), layer,
                    update_count=int(rng.integers(0, 9)),
                    updated_at=None if rng.random() < 0.5 else int(clock.now - rng.integers(0, 100 * HOUR)))
        elif op == "set_custom":
            attempt(fp, lab, t.set_custom, None if rng.random() < 0.3 else bytes(rng.integers(0, 256, 5).tolist()))
        elif op == "configure":
            kw = {}
            if rng.random() < 0.6:
                kw["rule"] = RULES[int(rng.integers(len(RULES)))]()
            if rng.random() < 0.6:
                kw["thermal_config"] = THERMALS[int(rng.integers(len(THERMALS)))]()
            if rng.random() < 0.3:
                kw["policy"] = policy
            attempt(fp, lab, t.configure, **kw)
        elif op == "sign_head":
            attempt(fp, lab, t.sign_head, HMAC_KEY)
        elif op == "jump":
            clock.jump(int(rng.choice([HOUR, 6 * HOUR, 30 * HOUR, 200 * HOUR])))
            fp.add(lab, clock.now)
        elif op == "read":
            r = t.read_with_state(key)
            fp.add(lab, None if r is None else (r[0], repr(r[1]), repr(r[2])))
            fp.add(lab + ".contains", key in t)
        if i % 50 == 49:
            fp.add(f"{i}:digest", t.state_digest())
            fp.add(f"{i}:head", t.head_hash)
    fp.add("history", [(d.id, int(d.delta_type), d.hash) for d in t.history(keys[0])])
    attempt(fp, "verify_trust", t.verify_trust, [HMAC_KEY])
    n = len(t.records())
    fp.add("proof_incl", t.prove_inclusion(n // 2))
    fp.add("proof_cons", t.prove_consistency(n // 3))
    fp.add("stats", repr(t.stats()))
    capsule_summary(fp, t)
    return fp, t, clock


def scenario_capsules():
    out = []
    caps = {}
    for sem, seed in (("fixed", 101), ("reference", 202)):
        fp, t, clock = random_run(sem, seed)
        out.append(fp)
        caps[sem] = (t, clock)
        # replay of its records
        rp = Fp(f"replay_{sem}")
        u = tg.Thermogram.replay(t.records(), clock=Clock(T0 * 2))
        rp.add("same_digest", u.state_digest() == t.state_digest())
        rp.add("same_head", u.head_hash == t.head_hash)
        capsule_summary(rp, u)
        out.append(rp)
        # save/load round trips
        sl = Fp(f"saveload_{sem}")
        reseed_ids(7)
        d = tempfile.mkdtemp(prefix="fp-")
        try:
            for fmt in ("v2", "v1"):
                p = os.path.join(d, f"c-{fmt}.thermo")
                r = attempt(sl, f"save.{fmt}", t.save, p, fmt)
                if isinstance(r, Exception):
                    continue
                with open(p, "rb") as f:
                    sl.add(f"file.{fmt}", f.read())
                u = tg.Thermogram.load(p, semantics=sem if fmt == "v1" else None, clock=Clock())
                capsule_summary(sl, u, f"load.{fmt}")
                w = tg.Thermogram.from_bytes(t.to_bytes(fmt), semantics=sem if fmt == "v1" else None, clock=Clock())
                sl.add(f"from_bytes.{fmt}", (w.state_digest(), w.head_hash))
            sl.add("names", sorted(os.listdir(d)))
        finally:
            shutil.rmtree(d)
        out.append(sl)
    return out, caps


# ----------------------------------------------------------------------------- file-backed capsule
def scenario_open():
    fp = Fp("open_journal")
    reseed_ids(11)
    rng = np.random.default_rng(11)
    d = tempfile.mkdtemp(prefix="fp-")
    try:
        p = os.path.join(d, "c.thermo")
        clock = Clock()
        with tg.Thermogram.open(p, create=True, clock=clock, policy=tg.ConsolidationPolicy.manual_only(),
                                id="open-1", thermal_config=tg.ThermalConfig.organic()) as t:
            for i in range(60):
                t.write(f"k{i % 25}", rand_value(rng, 4), rand_signal(rng, True))
            t.consolidate()
            t.apply_decay()
            t.checkpoint()
            fp.add("segments1", [os.path.basename(s) for s in t.journal_segments()])
            for i in range(30):
                t.apply_delta(tg.Delta.merge(f"k{i}", rand_value(rng, 4), "m", rand_signal(rng, True),
                                             id=f"om-{i}", clock=clock))
            t.run_thermal_transitions()
            t.sign_head(HMAC_KEY)
            t.insert_entry("cold1", rand_value(rng, 4), tg.Signal.positive(240), "cold")
            t.write("late", rand_value(rng, 2))
            fp.add("path_is_set", t.path == p)
            capsule_summary(fp, t, "live")
            digest, head = t.state_digest(), t.head_hash
        for name in sorted(os.listdir(d)):
            if name.endswith(".lock"):
                continue
            with open(os.path.join(d, name), "rb") as f:
                fp.add(f"file:{name}", f.read())
        with tg.Thermogram.open(p, clock=Clock(T0 * 3)) as u:
            fp.add("reopen_same", (u.state_digest() == digest, u.head_hash == head))
            capsule_summary(fp, u, "reopen")
            u.write("after", rand_value(rng, 2))
            u.checkpoint()
            fp.add("segments2", [os.path.basename(s) for s in u.journal_segments()])
            fp.add("deleted", u.delete_archived_segments())
            capsule_summary(fp, u, "after")
        with tg.Thermogram.open(p, readonly=True) as r:
            fp.add("readonly", (r.state_digest(), r.head_hash))
    finally:
        shutil.rmtree(d)
    return [fp]


# ----------------------------------------------------------------------------- conformance
def cload(name):
    with open(os.path.join(CONF, name)) as f:
        return json.load(f)


def f32(bits):
    return np.frombuffer(struct.pack("<I", int(bits, 16)), dtype=np.float32)[0]


def sig(d):
    return tg.Signal(d["polarity"], d["magnitude"]) if isinstance(d, dict) else tg.Signal(d[0], d[1])


def ts_ns(t):
    return t["secs"] * 1_000_000_000 + t["nanos"]


def vec(values):
    return tg.signal_vector([(v["polarity"], v["magnitude"]) for v in values])


def entries_of(t):
    return {lay: [(e["key"], e["value"], repr(e["strength"]), e["update_count"], e["updated_at"])
                  for e in t.entries(lay)] for lay in ("hot", "warm", "cool", "cold")}


def place(t, initial):
    for layer, entries in initial.items():
        for e in entries:
            t.insert_entry(e["key"], vec(e["value"]), sig(e["strength"]), layer,
                           update_count=e["update_count"], updated_at=ts_ns(e["updated_at"]))


def scenario_conformance():
    reseed_ids(61)
    out = []
    # signals
    fp = Fp("conformance_signals")
    s = cload("signals.json")
    cases = s["from_signed"]["cases"]
    fp.add("from_signed", [tg.Signal.from_signed(f32(b)).to_tuple() for b, _, _ in cases])
    fp.add("from_signed_ok", all(tg.Signal.from_signed(f32(b)).to_tuple() == (p, m) for b, _, (p, m) in cases))
    x = np.array([f32(b) for b, _, _ in cases if np.isfinite(f32(b))], np.float32)
    fp.add("signals_from_floats", tg.signals_from_floats(x))
    fp.add("signals_to_floats", tg.signals_to_floats(tg.signals_from_floats(x)))
    fp.add("magnitude_f32", [np.float32(tg.Signal(1, m).magnitude_f32()) for m in range(len(s["magnitude_f32"]["cases"]))])
    for op in ("decayed", "scale"):
        res = []
        for case in s[op]["cases"]:
            factor = f32(case.get("retention_bits") or case.get("factor_bits"))
            for row in case["rows"]:
                p = row["polarity"]
                got = [getattr(tg.Signal(p, m), op)(factor).to_tuple() for m in range(len(row["results_by_magnitude"]))]
                res.append(got)
                fp.add(f"{op}_ok", got == [tuple(e) for e in row["results_by_magnitude"]])
        fp.add(op, res)
    fp.add("add", [tg.Signal(pa, ma).add(tg.Signal(pb, mb)).to_tuple() for pa, ma, pb, mb, _, _ in s["add"]["cases"]])
    fp.add("merge", [tg.Signal(pa, ma).scale(0.3).add(tg.Signal(pb, mb).scale(0.7)).to_tuple()
                     for pa, ma, pb, mb, _, _ in s["merge_30_70"]["cases"]])
    out.append(fp)
    # plasticity
    fp = Fp("conformance_plasticity")
    for r in cload("plasticity.json")["rules"]:
        rule = tg.PlasticityRule.from_dict(r["rule"])
        fp.add(f"{r['name']}.rule", repr(rule))
        fp.add(f"{r['name']}.to_dict", rule.to_dict())
        cur = np.array([sig(c["current"]).to_tuple() for c in r["cases"]], dtype=tg.SIGNAL)
        new = np.array([sig(c["new"]).to_tuple() for c in r["cases"]], dtype=tg.SIGNAL)
        dts = np.array([c["time_delta_seconds"] for c in r["cases"]], dtype=np.float64)
        fp.add(f"{r['name']}.array", rule.apply_update_array(cur, new, dts))
        fp.add(f"{r['name']}.scalar", [rule.apply_update(sig(c["current"]), sig(c["new"]),
                                                         c["time_delta_seconds"]).to_tuple() for c in r["cases"]])
        fp.add(f"{r['name']}.prune", rule.should_prune_array(cur))
    out.append(fp)
    # thermal
    fp = Fp("conformance_thermal")
    for si, sc in enumerate(cload("thermal.json")["scenarios"]):
        cfg = tg.ThermalConfig.from_dict(sc["thermal_config"])
        for semantics in ("fixed", "reference"):
            clock = Clock(start=4_000_000_000_000_000_000)
            t = tg.Thermogram("thermal", thermal_config=cfg, policy=tg.ConsolidationPolicy.manual_only(),
                              clock=clock, semantics=semantics, id=f"thermal-{si}-{semantics}")
            place(t, sc["initial"])
            for i, step in enumerate(sc["steps"]):
                a, op = step["args"], step["op"]
                if op in ("reinforce", "weaken"):
                    ret = getattr(t, op)(a["key"], sig(a["amount"]))
                elif op == "warm":
                    ret = t.warm(a["key"])
                else:
                    ret = getattr(t, op)()
                fp.add(f"{si}.{semantics}.{i}.{op}", repr(ret))
                fp.add(f"{si}.{semantics}.{i}.layers", entries_of(t))
            fp.add(f"{si}.{semantics}.verify", t.verify())
            fp.add(f"{si}.{semantics}.digest", (t.state_digest(), t.head_hash, t.merkle_root()))
            fp.add(f"{si}.{semantics}.replay", tg.Thermogram.replay(t.records()).state_digest())
    out.append(fp)
    # consolidation
    fp = Fp("conformance_consolidation")
    for si, sc in enumerate(cload("consolidation.json")["scenarios"]):
        clock = Clock(start=4_000_000_000_000_000_000)
        t = tg.Thermogram("cons", tg.PlasticityRule.from_dict(sc["rule"]),
                          thermal_config=tg.ThermalConfig.from_dict(sc["thermal_config"]),
                          policy=tg.ConsolidationPolicy.from_dict(sc["consolidation_policy"]), clock=clock,
                          semantics="reference", id=f"cons-{si}")
        place(t, sc["initial"])
        for bi, batch in enumerate(sc["batches"]):
            for d in batch["deltas"]:
                t.apply_delta(tg.Delta(d["delta_type"], d["key"], vec(d["value"]), source=d["source"],
                                       strength=sig(d["strength"]), timestamp=ts_ns(d["timestamp"]), id=d["id"],
                                       observation_count=d["observation_count"],
                                       custom=None if d["custom"] is None else bytes(d["custom"])))
            for key in sorted(batch["reads_before_consolidation"]):
                r = t.read_with_state(key)
                fp.add(f"{si}.{bi}.before.{key}", None if r is None else (r[0], repr(r[1]), repr(r[2])))
            fp.add(f"{si}.{bi}.result", repr(t.consolidate()))
            fp.add(f"{si}.{bi}.layers", entries_of(t))
            fp.add(f"{si}.{bi}.meta", (t.total_consolidations, t.total_deltas))
            for key in sorted(batch["reads_after_consolidation"]):
                fp.add(f"{si}.{bi}.after.{key}", t.read(key))
        fp.add(f"{si}.verify", t.verify())
        fp.add(f"{si}.digest", (t.state_digest(), t.head_hash, t.to_bytes("v2")))
        attempt(fp, f"{si}.v1", t.to_bytes, "v1")
        fp.add(f"{si}.replay", tg.Thermogram.replay(t.records()).state_digest())
    out.append(fp)
    # reference .thermo v1 files
    fp = Fp("conformance_thermo_files")
    tdir = os.path.join(CONF, "thermo")
    for name in sorted(f for f in os.listdir(tdir) if f.endswith(".thermo")):
        reseed_ids(hash_seed(name))
        path = os.path.join(tdir, name)
        t = tg.Thermogram.load(path, semantics="reference", clock=Clock())
        capsule_summary(fp, t, name)
        fp.add(f"{name}.export", json.dumps(t.export_to_json(), sort_keys=True, default=repr))
        with open(path, "rb") as f:
            data = f.read()
        u = tg.Thermogram.from_bytes(data, semantics="reference", clock=Clock())
        fp.add(f"{name}.from_bytes", (u.state_digest(), u.head_hash))
        attempt(fp, f"{name}.load_fixed", lambda: tg.Thermogram.load(path, clock=Clock()).state_digest())
        c = tg.Thermogram.load(path, semantics="reference", clock=Clock())
        attempt(fp, f"{name}.consolidate", c.consolidate)
        fp.add(f"{name}.after_consolidate", (c.state_digest(), c.to_bytes("v2")))
    out.append(fp)
    return out


def hash_seed(s):
    return int.from_bytes(hashlib.sha256(s.encode()).digest()[:4], "little")


# ----------------------------------------------------------------------------- SNN
def scenario_snn():
    fp = Fp("snn")
    SNN = first_attr(["thermogram:EmbeddedSNN", "thermogram.snn:EmbeddedSNN"])
    NM = first_attr(["thermogram:NeuromodState", "thermogram.neuromod:NeuromodState"])
    configs = [dict(spike_threshold=0.2), dict(spike_threshold=0.2, prototype_lr=0.2),
               dict(spike_threshold=0.2, use_ternary=True)]
    total = 0
    for ci, cfg in enumerate(configs):
        reseed_ids(21 + ci)
        rng = np.random.default_rng(21 + ci)
        clock = Clock()
        snn = SNN(num_neurons=24, input_dim=32, top_k=6, seed=5 + ci, clock=clock, **cfg)
        t = tg.Thermogram("snn", policy=tg.ConsolidationPolicy.manual_only(), clock=clock, id=f"snn-capsule-{ci}")
        nm = NM()
        centre = rng.standard_normal(32).astype(np.float32)

        def add_batch(label, b):
            nonlocal total
            b.id = f"snn-{ci}-{label}"
            total += len(b)
            fp.add(f"{ci}.{label}.batch", (list(b.keys), b.types, b.values, b.offsets, b.strengths, b.timestamps,
                                           b.timestamp, b.source))
            t.apply_batch(b)

        add_batch("ones", snn.process(np.ones(32, np.float32)))
        for i in range(60):
            kind = i % 5
            x = {0: centre, 1: centre, 2: rng.standard_normal(32), 3: np.zeros(32), 4: centre}[kind]
            x = (x + 0.3 * rng.standard_normal(32)).astype(np.float32) if kind != 3 else x.astype(np.float32)
            if i % 10 == 5:
                nm.reward(0.3)
            if i % 10 == 8:
                nm.stress(0.2)
                nm.decay(0.1)
            add_batch(str(i), snn.process(x, nm if i % 3 == 0 else None))
            if i % 8 == 7:
                fp.add(f"{ci}.{i}.consolidate", repr(t.consolidate()))
        X = (centre + 0.3 * rng.standard_normal((37, 32))).astype(np.float32)
        add_batch("process_batch", snn.process_batch(X))
        t.consolidate()
        fp.add(f"{ci}.weights", np.array(snn.weights))
        fp.add(f"{ci}.ternary", np.array(snn.ternary_weights))
        fp.add(f"{ci}.prototypes", np.array(snn.prototypes))
        fp.add(f"{ci}.traces", np.array(snn.traces))
        fp.add(f"{ci}.rates", np.array(snn.firing_rates))
        fp.add(f"{ci}.last_spike", np.array(snn.last_spike_ms))
        fp.add(f"{ci}.last_act", np.array(snn.last_activations))
        fp.add(f"{ci}.indices", np.array(snn.indices))
        fp.add(f"{ci}.quantized", snn.quantized_weights())
        fp.add(f"{ci}.tick", snn.tick)
        fp.add(f"{ci}.neuromod", repr(snn.neuromod))
        again = SNN.restore(snn.state(), clock=Clock(clock.now))
        fp.add(f"{ci}.restore_same", np.array_equal(np.array(again.weights), np.array(snn.weights)))
        b1, b2 = snn.process(X[0]), again.process(X[0])
        fp.add(f"{ci}.restore_next", (list(b1.keys) == list(b2.keys), b1.values.tobytes() == b2.values.tobytes(),
                                     b1.strengths.tobytes() == b2.strengths.tobytes()))
        capsule_summary(fp, t, f"{ci}.final")
    fp.add("total_deltas", total)
    if total == 0:
        print("warning: the SNN scenario produced no deltas", file=sys.stderr)
    return [fp]


# ----------------------------------------------------------------------------- ternary
def scenario_ternary():
    fp = Fp("ternary")
    reseed_ids(31)
    TL = first_attr(["thermogram:TernaryLayer", "thermogram.ternary:TernaryLayer"])
    PT = first_attr(["thermogram:PackedTernary", "thermogram.ternary:PackedTernary"])
    TW = first_attr(["thermogram:TernaryWeight", "thermogram.ternary:TernaryWeight"])
    rng = np.random.default_rng(31)
    for rows, cols in ((1, 1), (7, 13), (64, 100), (33, 257)):
        W = rng.normal(0, 1, (rows, cols)).astype(np.float32)
        layer = TL.from_f32_matrix(W)
        fp.add(f"{rows}x{cols}.packed", np.array(layer.packed))
        fp.add(f"{rows}x{cols}.scales", np.array(layer.scales))
        fp.add(f"{rows}x{cols}.array", layer.to_array())
        x = rng.normal(0, 1, cols).astype(np.float32)
        fp.add(f"{rows}x{cols}.forward", layer.forward(x))
        X = rng.normal(0, 1, (5, cols)).astype(np.float32)
        fp.add(f"{rows}x{cols}.forward_batch", layer.forward_batch(X))
        fp.add(f"{rows}x{cols}.arrays", layer.to_arrays())
        fp.add(f"{rows}x{cols}.mem", layer.memory_bytes())
        ints = rng.integers(-1, 2, (rows, cols)).astype(np.int8)
        l2 = TL.from_weights(ints)
        fp.add(f"{rows}x{cols}.from_weights", (np.array(l2.packed), np.array(l2.scales), l2.forward(x)))
        l2.set_weight(0, 0, TW(1))
        fp.add(f"{rows}x{cols}.set", (repr(l2.get_weight(0, 0)), np.array(l2.packed)))
    for n in (0, 1, 5, 64, 1001):
        w = rng.normal(0, 1, n).astype(np.float32)
        p = PT.from_f32(w, 0.5)
        fp.add(f"packed{n}.bytes", p.bytes())
        fp.add(f"packed{n}.array", p.to_array())
        fp.add(f"packed{n}.float", p.to_float())
        fp.add(f"packed{n}.stats", (p.len(), p.count_active(), p.sparsity(), p.memory_bytes()))
        fp.add(f"packed{n}.thr", PT.compute_adaptive_threshold(w))
        pa = PT.from_f32_adaptive(w)
        fp.add(f"packed{n}.adaptive", pa.bytes())
        fp.add(f"packed{n}.dot", pa.dot(rng.normal(0, 1, n).astype(np.float32)))
        if n:
            pa.strengthen(0)
            pa.weaken(n - 1)
            fp.add(f"packed{n}.mut", (pa.bytes(), repr(pa.get(0))))
        rt = PT.from_bytes(p.bytes(), n)
        fp.add(f"packed{n}.rt", rt.to_array())
    fp.add("weights", [(repr(w), w.to_f32(), repr(w.strengthen()), repr(w.weaken()), repr(w.flip()),
                        repr(w.to_signal())) for w in TW])
    return [fp]


# ----------------------------------------------------------------------------- colony
def delta_fields(d):
    """A delta's fields without its hash/prev_hash (they chain onto unreproducible colony records)."""
    return (d.id, int(d.delta_type), d.key, d.value, d.timestamp, d.source, repr(d.strength))


def member_records(c):
    """Each member's records without hashes and without the time of the delete batches that
    split/merge/rebalance write: those batches take their record timestamp from the wall
    clock (no clock is passed to DeltaBatch.from_arrays in the colony's key removal), so
    member head hashes, member files and colony.json are not reproducible at 7c31d31."""
    out = []
    for m in c.members:
        recs = []
        for r in m.records():
            wall = r.kind == "batch" and str(getattr(r, "source", "")).startswith("colony-")
            ks = r.keys() if callable(r.keys) else r.keys
            recs.append((r.kind, getattr(r, "op", None), None if wall else r.timestamp, list(ks),
                         getattr(r, "source", None), getattr(r, "id", None)))
        out.append((m.id, recs))
    return out


def scenario_colony():
    fp = Fp("colony")
    reseed_ids(41)
    Colony = first_attr(["thermogram:ThermogramColony", "thermogram.colony:ThermogramColony"])
    CConfig = first_attr(["thermogram:ColonyConfig", "thermogram.colony:ColonyConfig"])
    rng = np.random.default_rng(41)

    def build(executor):
        reseed_ids(42)
        c = Colony("fp", "Fingerprint colony", tg.PlasticityRule.stdp_like(),
                   CConfig(split_threshold=120, merge_threshold=15, max_members=8), members=3,
                   clock=Clock(), policy=tg.ConsolidationPolicy.manual_only(), executor=executor)
        keys = [f"g{i // 3}_k{i}" for i in range(420)]
        vals = np.random.default_rng(1).uniform(-1, 1, (len(keys), 3)).astype(np.float32)
        c.apply_batch(tg.DeltaBatch.from_arrays(keys, vals, tg.Signal.MAX_POSITIVE, "update",
                                                clock=lambda: T0, id="fill-0"))
        return c

    results = {}
    for ex in ("serial", "threads"):
        c = build(ex)
        r1 = c.consolidate(executor=ex)
        keys = [f"g{i // 3}_k{i}" for i in range(0, 420, 7)]
        c.apply_batch(tg.DeltaBatch.from_arrays(keys, np.full((len(keys), 3), 0.25, np.float32),
                                                tg.Signal.positive(90), "merge", clock=lambda: T0 + HOUR,
                                                id="fill-1"))
        r2 = c.consolidate(executor=ex)
        results[ex] = (repr(r1), repr(r2), c.state_digest(), c.member_digests(), member_records(c))
    fp.add("executors_agree", results["serial"] == results["threads"])
    fp.add("serial", results["serial"])
    fp.add("threads", results["threads"])

    c = build("serial")
    c.consolidate()
    fp.add("ranges0", c.ranges())
    for i in range(30):
        key = f"g{int(rng.integers(140))}_k{int(rng.integers(420))}"
        attempt(fp, f"write{i}", lambda: delta_fields(c.write(key, rng.uniform(-1, 1, 3).astype(np.float32),
                                                              tg.Signal.positive(int(rng.integers(1, 256))))))
    attempt(fp, "delete", lambda: delta_fields(c.delete("g0_k0")))
    attempt(fp, "reinforce", c.reinforce, "g1_k3", tg.Signal.positive(20))
    attempt(fp, "weaken", c.weaken, "g1_k4", tg.Signal.positive(20))
    c.apply_decay()
    attempt(fp, "split", c.split, 0)
    fp.add("ranges1", c.ranges())
    attempt(fp, "merge", c.merge, 0, 1)
    fp.add("ranges2", c.ranges())
    attempt(fp, "rebalance", c.rebalance)
    fp.add("ranges3", c.ranges())
    fp.add("consolidate_serial", repr(c.consolidate(executor="serial")))
    fp.add("consolidate_threads", repr(c.consolidate(executor="threads")))
    fp.add("route", [c.route(k) for k in ("g0_k1", "g50_k150", "zzz")])
    fp.add("route_many", c.route_many([f"g{i}_k{i}" for i in range(50)]))
    fp.add("key_hashes", c.key_hashes(["a", "b", "g3_k9"]))
    fp.add("keys", c.keys())
    fp.add("counts", c.member_key_counts())
    fp.add("total", c.total_entries())
    fp.add("read", c.read("g2_k6"))
    c.neuromod.reward(0.2)
    fp.add("sync", c.sync_neuromod())
    fp.add("stats", repr(c.stats()))
    fp.add("digest", c.state_digest())
    fp.add("member_digests", c.member_digests())
    fp.add("records", member_records(c))
    fp.add("member_entries", [entries_of(m) for m in c.members])
    d = tempfile.mkdtemp(prefix="fp-")
    try:
        folder = os.path.join(d, "col")
        c.save(folder)
        names = sorted(os.listdir(folder))
        # member file names carry a content hash (of records with wall-clock times): count them only
        fp.add("files", sorted("member-*" + os.path.splitext(n)[1] if n.startswith("member-") else n
                               for n in names))
        o = Colony.open(folder, clock=Clock(T0 * 2), policy=tg.ConsolidationPolicy.manual_only())
        fp.add("open_same", (o.state_digest() == c.state_digest(), o.member_digests() == c.member_digests(),
                             o.ranges() == c.ranges()))
        o.write("g1_k3", np.array([0.5, 0.5, 0.5], np.float32))
        o.consolidate()
        o.save()
        fp.add("reopen", Colony.open(folder).state_digest() == o.state_digest())
        fp.add("after_digest", o.state_digest())
    finally:
        shutil.rmtree(d)
    return [fp]


# ----------------------------------------------------------------------------- distillation
def scenario_distillation():
    fp = Fp("distillation")
    reseed_ids(51)
    dist = first_attr(["thermogram.distillation"])
    Batch = getattr(dist, "SemanticBatch", None) or getattr(dist, "DeltaBatch")
    SD, Src = dist.SemanticDelta, dist.DeltaSource
    Snap, Cfg = dist.ThermogramSnapshot, dist.DistillationConfig
    rng = np.random.default_rng(51)
    clock = Clock()
    t = tg.Thermogram("d", policy=tg.ConsolidationPolicy.manual_only(), clock=clock, id="dist")
    for i in range(20):
        t.apply_delta(tg.Delta.create(f"e{i}", rand_value(rng, 16), "d", id=f"de-{i}", clock=clock))
    t.consolidate()
    before = Snap.from_memory(t, "before", timestamp=T0, with_entries=True)
    for i in range(0, 20, 2):
        t.apply_delta(tg.Delta.update(f"e{i}", rand_value(rng, 16), "d", id=f"du-{i}", clock=clock))
    t.consolidate()
    after = Snap.from_memory(t, "after", timestamp=T0 + HOUR)
    fp.add("centroids", (before.centroid, after.centroid, before.entry_count))
    deltas = []
    for i, cfg in enumerate([Cfg(), Cfg.default().replace(min_share_magnitude=0.0, min_share_strength=0.0)]):
        d = dist.distill_learning(before, after, f"concept{i}", "task", cfg, id=f"sd-{i}", timestamp=T0 + 2 * HOUR)
        fp.add(f"distill{i}", None if d is None else d.to_dict())
        if d is not None:
            deltas.append(d)
    for i in range(6):
        deltas.append(SD(f"c{i}", rng.normal(0, 0.3, 16).astype(np.float32), float(rng.uniform(0, 1)),
                         [Src.self_learning("x"), Src.skill_box("s"), Src.migration("1.0"),
                          Src.document_ingestion("doc"), Src.peer_learning("peer", T0)][i % 5],
                         id=f"sem-{i}", timestamp=T0 + i * HOUR, tags=("t", str(i))))
    fp.add("deltas", [d.to_dict() for d in deltas])
    fp.add("magnitudes", [d.magnitude() for d in deltas])
    fp.add("scaled", [d.scaled(0.5).to_dict() for d in deltas])
    b = Batch("inst-1", deltas, id="batch-1", created=T0 + 10 * HOUR)
    fp.add("batch_magnitudes", b.magnitudes())
    fp.add("signing_bytes", b.signing_bytes())
    b.sign(ED25519_RAW)
    fp.add("signature", (b.signature, b.signer))
    ipc = b.to_ipc_bytes()
    fp.add("ipc", ipc)
    back = Batch.from_ipc_bytes(ipc)
    fp.add("ipc_roundtrip", (back.to_dict() == b.to_dict(), back.signature == b.signature))
    fp.add("arrow", arrow_ipc(b.to_arrow()))
    fp.add("batch_dict", b.to_dict())
    fp.add("significant", len(b.filter_significant(0.5)))
    fp.add("recent", len(b.filter_recent(3600 * 5, now=T0 + 10 * HOUR)))
    ing = b.ingest(Cfg(), now=T0 + 11 * HOUR)
    fp.add("ingest", [d.to_dict() for d in ing])
    emb = rng.normal(0, 1, 16).astype(np.float32)
    fp.add("apply", [dist.apply_delta_to_embedding(emb, d, 0.7) for d in deltas])
    fp.add("cosine", [dist.cosine_similarity(emb, d.embedding_delta) for d in deltas])
    fp.add("cfg", Cfg().to_dict())
    return [fp]


# ----------------------------------------------------------------------------- module-level functions
def io_fn(name):
    """A persistence function: ``thermogram.io`` (after) or ``thermogram.codec`` (before)."""
    subs = ["", ".records", ".reader", ".thermo_v2", ".thermo_v1", ".legacy_json", ".timetext", ".files", ".packing"]
    return first_attr([f"thermogram.io{m}:{name}" for m in subs] + [f"thermogram.codec:{name}"])


def scenario_modules(caps):
    fp = Fp("module_functions")
    reseed_ids(81)
    t = caps["fixed"][0]
    tr = caps["reference"][0]
    enc2, dec2 = io_fn("encode_v2"), io_fn("decode_v2")
    enc1, dec1 = io_fn("encode_v1"), io_fn("decode_v1")
    fp.add("encode_v2", enc2(t))
    fp.add("encode_v2_same_as_to_bytes", enc2(t) == t.to_bytes("v2"))
    u = dec2(enc2(t), clock=Clock())
    fp.add("decode_v2", (u.state_digest(), u.head_hash))
    fp.add("encode", io_fn("encode")(tr, "v1") == tr.to_bytes("v1"))
    b1 = attempt(fp, "encode_v1", enc1, tr)
    if isinstance(b1, bytes):
        w = dec1(b1, semantics="reference", clock=Clock())
        fp.add("decode_v1", (w.state_digest(), w.head_hash, w.to_bytes("v2")))
        fp.add("detect_v1", io_fn("detect_format")(b1))
    fp.add("detect_v2", io_fn("detect_format")(t.to_bytes("v2")))
    rfc, parse = io_fn("rfc3339"), io_fn("parse_rfc3339")
    stamps = [0, 1, 999_999_999, T0, T0 + 123_456_789, 4_102_444_800_000_000_000, -1_000_000_001]
    for x in stamps:
        attempt(fp, f"rfc3339:{x}", rfc, x)
    for x in ["2024-12-25T00:43:20.123456789+00:00", "2024-12-25T00:44:20.5Z", "1970-01-01T00:00:00Z",
              "2024-02-30T00:00:00Z", "nonsense"]:
        attempt(fp, f"parse_rfc3339:{x}", parse, x)
    d = tg.Delta.update("jk", tg.signal_vector([(1, 5)]), "src", tg.Signal.positive(9),
                        timestamp=1_700_000_000_123_000_000, id="legacy-1")
    h = io_fn("reference_delta_hash")(d, None)
    fp.add("reference_delta_hash", h)
    enc_rec, dec_rec, Reader = io_fn("encode_record"), io_fn("decode_record"), io_fn("Reader")
    recs = t.records()
    blobs = [enc_rec(r) for r in recs[:200]]
    fp.add("encode_record", blobs)
    back = [dec_rec(Reader(b)) for b in blobs]
    fp.add("decode_record", [(r.kind, r.hash, r.prev_hash) for r in back])
    # legacy JSON (as tests/test_codec.py builds it)
    sv = lambda v: [{"polarity": int(p), "magnitude": int(m)} for p, m in v.tolist()]  # noqa: E731
    doc = {"id": "abc", "name": "from-json",
           "plasticity_rule": {**tr.rule.to_dict(), **{k: {"polarity": 1, "magnitude": v[1]}
                                                       for k, v in tr.rule.to_dict().items() if k != "policy"}},
           "thermal_config": tr.thermal_config.to_dict(),
           "consolidation_policy": {"triggers": [{"DeltaCount": 1000}, {"TimePeriod": {"hours": 24}}, "Manual"],
                                    "enable_pruning": True, "enable_merging": True},
           "metadata": {"created_at": "2024-12-25T00:43:20.123456789+00:00",
                        "last_consolidation": "2024-12-25T00:44:20.5Z", "total_deltas": 3,
                        "total_consolidations": 1, "custom": [1, 2]}}
    for lay, field in enumerate(("hot_entries", "warm_entries", "cool_entries", "cold_entries")):
        doc[field] = {e["key"]: {"key": e["key"], "value": sv(e["value"]),
                                 "strength": {"polarity": e["strength"].polarity, "magnitude": e["strength"].magnitude},
                                 "updated_at": rfc(e["updated_at"]), "update_count": e["update_count"]}
                      for e in tr.entries(lay)}
    doc["dirty_chain"] = {"deltas": [{"id": d.id, "delta_type": "Update", "key": "jk", "value": sv(d.value),
                                      "metadata": {"timestamp": rfc(d.timestamp), "source": "src",
                                                   "strength": {"polarity": 1, "magnitude": 9},
                                                   "observation_count": None, "custom": None},
                                      "prev_hash": None, "hash": h}], "head_hash": h}
    data = json.dumps(doc).encode()
    fp.add("detect_json", io_fn("detect_format")(data))
    for sem in ("fixed", "reference"):
        reseed_ids(82)
        j = tg.Thermogram.from_bytes(data, semantics=sem, clock=Clock())
        capsule_summary(fp, j, f"legacy_json.{sem}")
        reseed_ids(82)
        j2 = io_fn("decode_legacy_json")(data, semantics=sem, clock=Clock())
        fp.add(f"decode_legacy_json.{sem}", (j2.state_digest(), j2.head_hash))
    # canonical encoding, Merkle helpers, trust
    canonical = first_attr(["thermogram.canonical"])
    vals = [None, True, 0, -1, 2 ** 63 - 1, 1.5, "s", b"b", [1, "x"], {"a": [1, 2], "b": {"c": None}},
            np.arange(5, dtype=np.int32), np.float32(0.25)]
    encs = [canonical.encode_value(v) for v in vals]
    fp.add("encode_value", encs)
    fp.add("decode_value", [repr(canonical.decode_value(e)) for e in encs])
    merkle = first_attr(["thermogram.merkle"])
    leaves = [bytes.fromhex(r.hash) for r in recs[:37]]
    fp.add("merkle_root", merkle.root(leaves))
    fp.add("merkle_incl", [merkle.inclusion_proof(leaves, i) for i in (0, 5, 36)])
    fp.add("merkle_cons", [merkle.consistency_proof(leaves, k) for k in (1, 7, 36)])
    fp.add("merkle_leaf", (merkle.leaf_hash(b"x"), merkle.node_hash(b"a" * 32, b"b" * 32), merkle.EMPTY_ROOT))
    tree = merkle.MerkleTree(leaves)
    fp.add("merkle_tree", (tree.root(-1), tree.root(10)))
    trust = first_attr(["thermogram.trust"])
    fp.add("key_id", trust.key_id(HMAC_KEY))
    fp.add("head_message", trust.head_message("cid", 3, "ab" * 32, b"r" * 32))
    fp.add("sign_message", trust.sign_message(HMAC_KEY, b"message"))
    return [fp]


# ----------------------------------------------------------------------------- arrow
def arrow_ipc(table):
    import pyarrow as pa
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    return sink.getvalue().to_pybytes()


def scenario_arrow(caps):
    out = []
    for sem, (t, _) in caps.items():
        fp = Fp(f"arrow_{sem}")
        reseed_ids(71)
        tab = t.to_arrow()
        fp.add("entries", arrow_ipc(tab))
        fp.add("records", arrow_ipc(t.records_to_arrow()))
        fp.add("deltas", arrow_ipc(t.deltas_to_arrow()))
        u = tg.Thermogram.from_arrow(tab, clock=Clock())
        fp.add("from_arrow", entries_of(u))
        fp.add("from_arrow_bytes", arrow_ipc(u.to_arrow()))
        out.append(fp)
    return out


# ----------------------------------------------------------------------------- main
def main():
    lines = []
    errors = 0

    def run(name, fn, *a):
        nonlocal errors
        try:
            res = fn(*a)
        except Exception:
            errors += 1
            traceback.print_exc()
            lines.append(f"{name} ERROR")
            return None
        return res

    caps = {}
    res = run("capsules", scenario_capsules)
    if res is not None:
        fps, caps = res
        lines.extend(f"{f.name} {f.hexdigest()}" for f in fps)
    for name, fn, args in (("open_journal", scenario_open, ()), ("conformance", scenario_conformance, ()),
                           ("snn", scenario_snn, ()), ("ternary", scenario_ternary, ()),
                           ("colony", scenario_colony, ()), ("distillation", scenario_distillation, ()),
                           ("arrow", scenario_arrow, (caps,)), ("modules", scenario_modules, (caps,))):
        fps = run(name, fn, *args)
        if fps is not None:
            lines.extend(f"{f.name} {f.hexdigest()}" for f in fps)
    lines.append(f"{MESSAGES.name} {MESSAGES.hexdigest()}")
    print("\n".join(lines))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
