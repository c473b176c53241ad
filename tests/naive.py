"""Plain, readable reference versions of every kernel (the oracle for kernel tests).

Scalars are (polarity, magnitude) tuples; math is numpy float32 like the
kernels, but written straight from the rules, with dicts instead of columns.
"""
import numpy as np

F = np.float32


def sat_u8(x):
    x = F(x)
    if np.isnan(x) or x <= 0:
        return 0
    if x >= 255:
        return 255
    return int(np.floor(x))


def mag_f32(m):
    return F(m) / F(255)


def from_signed(x):
    x = F(x)
    p = 1 if x > F(0.01) else (-1 if x < F(-0.01) else 0)
    a = F(1.0) if (np.isnan(x) or abs(x) >= 1) else F(abs(x))
    return (p, sat_u8(a * F(255)))


def scaled(s, factor):
    m = sat_u8(F(s[1]) * F(factor))
    return (s[0], m) if m else (0, 0)


def add(a, b):
    return from_signed(F(a[0]) * mag_f32(a[1]) + F(b[0]) * mag_f32(b[1]))


def merge_30_70(old, new):
    return add(scaled(old, 0.3), scaled(new, 0.7))


def apply_update(policy, decay_mag, lr_mag, cur, new, dt):
    c, n, d, lr = mag_f32(cur[1]), mag_f32(new[1]), mag_f32(decay_mag), mag_f32(lr_mag)
    dt = F(dt) if abs(dt) < 3.4e38 else F(np.inf if dt > 0 else -np.inf)
    with np.errstate(all="ignore"):
        if policy == 0:
            r = c * (F(1) - d * dt / F(86400)) + lr * n
            r = r if np.isnan(r) else min(max(r, F(0)), F(1))
        elif policy == 1:
            r = n
        elif policy == 2:
            r = lr * n + (F(1) - lr) * c
        elif policy == 3:
            r = (c * c + n * n) / (c + n) if c + n > 0 else F(0)
        else:
            r = max(c, n)
        mag = sat_u8(F(r) * F(255))
    return (new[0] if n >= c else cur[0], mag)


def whole_seconds(delta_ns):
    """Whole seconds, truncated toward zero."""
    q = abs(delta_ns) // 10**9
    return q if delta_ns >= 0 else -q


class NaiveCapsule:
    """Layers as dicts ``key -> dict(value, strength, count, ts)``; pending as a list."""

    def __init__(self, cfg, rule, fixed=True):
        self.cfg = cfg
        self.rule = rule
        self.fixed = fixed
        self.layers = [{}, {}, {}, {}]
        self.pending = []

    # transitions ---------------------------------------------------------
    def decay(self):
        for lay in range(4):
            ret = F(1) - mag_f32(self.cfg.decay_rates[lay].magnitude)
            for e in self.layers[lay].values():
                e["strength"] = scaled(e["strength"], ret)

    def _promote(self, frm, to):
        thr = self.cfg.promotion_thresholds[frm].magnitude
        mo = self.cfg.min_observations[frm]
        keys = [k for k, e in self.layers[frm].items() if e["strength"][1] >= thr and e["count"] >= mo]
        for k in keys:
            e = self.layers[frm].pop(k)
            x = self.layers[to].get(k)
            if x is None:
                self.layers[to][k] = e
            else:
                x["strength"] = merge_30_70(x["strength"], e["strength"])
                x["value"] = e["value"]
                x["ts"] = e["ts"]
                x["count"] = min(x["count"] + e["count"], 2**64 - 1)
        return len(keys)

    def _demote(self, frm, to, now):
        thr = self.cfg.demotion_thresholds[frm].magnitude
        keys = [k for k, e in self.layers[frm].items() if e["strength"][1] < thr]
        for k in keys:
            e = self.layers[frm].pop(k)
            s = scaled(e["strength"], 0.95)
            if s[1] == 0:
                s = (1, 1)
            e["strength"] = s
            e["ts"] = now
            x = self.layers[to].get(k)
            if x is None:
                self.layers[to][k] = e
            else:
                if s[1] > x["strength"][1]:
                    x["strength"] = s
                x["ts"] = now
        return len(keys)

    def transitions(self, now):
        out = [self._promote(0, 1), self._promote(1, 2), self._promote(2, 3)]
        for frm in (3, 2, 1):
            out.append(self._demote(frm, frm - 1, now) if self.cfg.allow_demotion[frm] else 0)
        thr = self.cfg.prune_threshold.magnitude
        pruned = 0
        for lay in range(4):
            for k in [k for k, e in self.layers[lay].items() if e["strength"][1] < thr]:
                del self.layers[lay][k]
                pruned += 1
        return out + [pruned]

    def prune_hot(self, thr=None):
        thr = self.cfg.prune_threshold.magnitude if thr is None else thr
        keys = [k for k, e in self.layers[0].items() if e["strength"][1] < thr]
        for k in keys:
            del self.layers[0][k]
        return len(keys)

    def crystallize(self):
        thr = self.cfg.crystallization_threshold.magnitude
        mo = self.cfg.min_observations[0]
        c = m = 0
        for k in [k for k, e in self.layers[0].items() if e["strength"][1] >= thr and e["count"] >= mo]:
            e = self.layers[0].pop(k)
            x = self.layers[3].get(k)
            if x is None:
                self.layers[3][k] = e
                c += 1
            else:
                x["strength"] = merge_30_70(x["strength"], e["strength"])
                x["value"] = e["value"]
                x["ts"] = e["ts"]
                x["count"] = min(x["count"] + e["count"], 2**64 - 1)
                m += 1
        return c, m

    def warm(self, key, now):
        if not self.cfg.allow_warming or key not in self.layers[3]:
            return False
        e = self.layers[3].pop(key)
        cost = mag_f32(self.cfg.warming_delta.magnitude) * F(0.1)
        m = max(1, sat_u8(F(e["strength"][1]) * (F(1) - cost)))
        e["strength"] = (e["strength"][0], m)
        e["ts"] = now
        self.layers[0][key] = e
        return True

    def first(self, key):
        for lay in range(4):
            if key in self.layers[lay]:
                return self.layers[lay][key]
        return None

    def reinforce(self, key, amount, now):
        e = self.first(key)
        if e is None:
            return False
        e["strength"] = add(e["strength"], amount)
        e["count"] = min(e["count"] + 1, 2**64 - 1)
        e["ts"] = now
        return True

    def weaken(self, key, amount, now):
        e = self.first(key)
        if e is None:
            return False
        m = max(0, e["strength"][1] - amount[1])
        e["strength"] = (0, 0) if m == 0 else (e["strength"][0], m)
        e["ts"] = now
        return True

    # deltas ----------------------------------------------------------------
    def apply(self, dtype, key, value, strength, ts):
        self.pending.append((dtype, key, list(value), strength, ts))

    def read(self, key):
        for dtype, k, value, strength, ts in reversed(self.pending):
            if k == key:
                if dtype == 2:
                    return None
                if dtype == 3 and self.fixed:
                    break  # value kept: resolved below
                return value
        else:
            e = self.first(key)
            return None if e is None else e["value"]
        # fixed merge: value is whatever the key held before the merge(s)
        return self._value_before_merges(key)

    def _value_before_merges(self, key):
        state = None
        found = False
        for dtype, k, value, strength, ts in self.pending:
            if k != key:
                continue
            if dtype == 2:
                state, found = None, True
            elif dtype == 3:
                if not found:
                    e = self.first(key)
                    state, found = (None if e is None else e["value"]), True
                if state is None:
                    state = value
            else:
                state, found = value, True
        return state

    def consolidate(self, now, prune=True):
        hot = self.layers[0]
        merged = 0
        for dtype, key, value, strength, ts in self.pending:
            if dtype in (0, 1):
                e = hot.get(key)
                if e is not None:
                    dt = whole_seconds(ts - e["ts"])
                    e["strength"] = apply_update(int(self.rule.policy), self.rule.decay_rate.magnitude,
                                                 self.rule.learning_rate.magnitude, e["strength"], strength, dt)
                    e["value"] = value
                    e["ts"] = ts
                    e["count"] += 1
                else:
                    hot[key] = {"value": value, "strength": strength, "count": 1, "ts": ts}
            elif dtype == 2:
                if self.fixed:
                    for lay in self.layers:
                        lay.pop(key, None)
                else:
                    hot.pop(key, None)
            else:
                e = hot.get(key)
                if e is not None:
                    dt = whole_seconds(ts - e["ts"])
                    e["strength"] = apply_update(int(self.rule.policy), self.rule.decay_rate.magnitude,
                                                 self.rule.learning_rate.magnitude, e["strength"], strength, dt)
                    e["ts"] = ts
                    e["count"] += 1
                    merged += 1
                elif self.fixed:
                    c = next((self.layers[l][key] for l in (1, 2, 3) if key in self.layers[l]), None)
                    if c is not None:
                        dt = whole_seconds(ts - c["ts"])
                        s = apply_update(int(self.rule.policy), self.rule.decay_rate.magnitude,
                                         self.rule.learning_rate.magnitude, c["strength"], strength, dt)
                        hot[key] = {"value": list(c["value"]), "strength": s, "count": c["count"] + 1, "ts": ts}
                        merged += 1
                    else:
                        hot[key] = {"value": value, "strength": strength, "count": 1, "ts": ts}
        self.pending = []
        if prune:
            self.prune_hot(self.rule.prune_threshold.magnitude)
        if self.fixed:
            self.transitions(now)
        else:
            self.crystallize()
        return merged

    def snapshot(self):
        return [{k: (tuple(map(tuple, e["value"])), tuple(e["strength"]), e["count"], e["ts"])
                 for k, e in lay.items()} for lay in self.layers]


# ---------------------------------------------------------------------------- codec and key kernels
def plan_int_column(values, signed=True):
    """(lo, hi, arithmetic, step) as kernels.codec.plan_int_column defines them, on Python ints:
    differences wrap as int64; lo/hi are first/last when arithmetic, else min/max."""
    def wrap64(x):
        x &= (1 << 64) - 1
        return x - (1 << 64) if x >= 1 << 63 else x
    if not values:
        return 0, 0, True, 0
    step = wrap64(values[1] - values[0]) if len(values) > 1 else 0
    arith = all(wrap64(b - a) == step for a, b in zip(values, values[1:]))
    if arith:
        return values[0], values[-1], True, step
    return min(values), max(values), False, step


def first_bad_polarity(raw):
    """Index of the first 2-byte signal whose polarity byte is not 0, 1 or 255, or -1."""
    for i in range(len(raw) // 2):
        if raw[2 * i] not in (0, 1, 255):
            return i
    return -1


def load_slots(layer, kid, nkeys):
    """(slot table as a dict, first bad row or -1), as kernels.codec.load_slots fills it."""
    slots = {}
    for r, (lay, k) in enumerate(zip(layer, kid)):
        if lay > 3 or k < 0 or k >= nkeys or (k, lay) in slots:
            return slots, r
        slots[(k, lay)] = r
    return slots, -1
