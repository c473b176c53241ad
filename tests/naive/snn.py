"""Plain numpy/Python versions of the SNN kernels (the oracle for tests/kernels/test_snn.py).

Written straight from the rules, one stage per function, float32 throughout.
Sums over the input run in input order (``np.add.accumulate`` is strictly
sequential), as the reference crate sums. Prototypes are ``(N, D)`` rows here,
synapses a dict ``{(i, j): weight}``.
"""
import numpy as np

F = np.float32
ONE = F(1.0)
ZERO = F(0.0)


def seq_sum(v):
    """Sequential float32 sum, left to right, starting from +0.0 (as the reference)."""
    v = np.concatenate(([ZERO], np.asarray(v, dtype=F).ravel()))
    return F(np.add.accumulate(v, dtype=F)[-1])


def cosine_activations(x, protos):
    """ReLU(cosine(x, prototype)) per neuron; 0 where a norm is 0."""
    x = np.asarray(x, F)
    ni = seq_sum(x * x)
    out = np.zeros(len(protos), F)
    for r, p in enumerate(protos):
        dot = seq_sum(x * p)
        npn = seq_sum(p * p)
        if ni > 0 and npn > 0:
            a = dot / (np.sqrt(ni) * np.sqrt(npn))
            out[r] = a if a > 0 else ZERO
    return out


def competition(act, strength):
    """Stable descending ranks; rank r scaled by 1 - (r / N) * strength."""
    act = np.array(act, F)
    n = len(act)
    order = sorted(range(n), key=lambda i: -float(act[i]))
    for rank, i in enumerate(order):
        if act[i] > 0:
            act[i] = act[i] * (ONE - (F(rank) / F(n)) * F(strength))
    return act


def spread(act, synapses, gate):
    """act[j] += gate * sum over synapses i->j of act[i] * w (i in order, then slot)."""
    act = np.array(act, F)
    sp = np.zeros(len(act), F)
    for (i, j), w in synapses.items():  # dict order: by source, then slot
        sp[j] = sp[j] + act[i] * w
    return act + sp * F(gate)


def spikes(act, threshold):
    return [i for i, a in enumerate(act) if a > F(threshold)]


def confidence(a, b):
    c = min(F(a), F(b))
    return ZERO if not c > 0 else min(c, ONE)


def stdp(synapses, spiking, act, lr):
    """Continuous: +lr (clipped to [0, 1]) on every synapse between spiking neurons.
    Returns {(i, j): confidence} for the weights that changed."""
    s = set(spiking)
    changed = {}
    for (i, j), w in list(synapses.items()):
        if i in s and j in s and i != j:
            new = min(max(w + F(lr), ZERO), ONE)
            if new != w:
                synapses[(i, j)] = new
                changed[(i, j)] = confidence(act[i], act[j])
    return changed


def ternary_transition(cur, dt):
    if dt > 0:
        return min(cur + 1, 1)
    if dt < 0:
        return max(cur - 1, -1)
    return 0 if cur == -1 else cur


def stdp_ternary(synapses, tern, spiking, act, last_spike, now_ms):
    """Ternary: transitions by previous spike times, then stamp now_ms."""
    s = set(spiking)
    changed = {}
    for (i, j) in list(tern):
        if i in s and j in s and i != j:
            cur = tern[(i, j)]
            new = ternary_transition(cur, last_spike[i] - last_spike[j])
            if new != cur:
                tern[(i, j)] = new
                synapses[(i, j)] = F(abs(new))
                changed[(i, j)] = confidence(act[i], act[j])
    for i in spiking:
        last_spike[i] = now_ms
    return changed


def homeostasis(synapses, rates, target, rate):
    for (i, j), w in synapses.items():
        g = ONE + (F(target) - rates[i]) * F(rate)
        synapses[(i, j)] = min(max(w * g, ZERO), ONE)


def decay(synapses, d):
    changed = {}
    for key, w in synapses.items():
        v = w * (ONE - F(d))
        if v < F(0.01):
            if w != 0:
                changed[key] = ZERO
            v = ZERO
        synapses[key] = v
    return changed


def decay_ternary(synapses, tern, d):
    changed = {}
    if F(d) > F(0.5):
        for key, t in tern.items():
            if t != 0:
                tern[key] = 0
                synapses[key] = ZERO
                changed[key] = ZERO
    return changed


def traces(tr, act, trace_decay):
    return tr * (ONE - F(trace_decay)) + act


def rates(r, spiking):
    s = np.zeros(len(r), F)
    s[list(spiking)] = ONE
    return r * (ONE - F(0.1)) + s * F(0.1)


def learn_prototypes(protos, x, act, spiking, lr):
    """Spiking neurons (or else the most active positive one) move toward x.
    Returns {neuron: confidence}."""
    winners = list(spiking)
    if not winners:
        best = int(np.argmax(act)) if len(act) else -1
        if best >= 0 and act[best] > 0:
            winners = [best]
    changed = {}
    for r in winners:
        protos[r] = protos[r] + F(lr) * (np.asarray(x, F) - protos[r])
        changed[r] = confidence(act[r], ONE)
    return changed


class NaiveSNN:
    """The whole tick, from an EmbeddedSNN's state dict, with dicts and loops."""

    def __init__(self, state):
        c = state["config"]
        self.cfg = {k: (float(v) if isinstance(v, np.ndarray) else v) for k, v in c.items()}
        self.protos = np.array(state["prototypes"], F)
        n = self.protos.shape[0]
        idx = state["indices"]
        self.syn = {}
        self.tern = {}
        for i in range(n):
            for s in range(idx.shape[1]):
                key = (i, int(idx[i, s]))
                self.syn[key] = F(state["weights"][i, s])
                self.tern[key] = int(state["ternary_weights"][i, s])
        self.traces = np.array(state["traces"], F)
        self.rates = np.array(state["firing_rates"], F)
        self.last_act = np.array(state["last_activations"], F)
        self.last_spike = [int(v) for v in state["last_spike_ms"]]
        self.tick = int(state["tick"])

    def step(self, x, nm):
        """One tick; nm = (dopamine, serotonin, norepinephrine, acetylcholine).
        Returns ({(i, j): conf}, {r: conf}) of what changed."""
        c = self.cfg
        da, ser, ne, ach = (F(v) for v in nm)
        self.tick += 1
        x = np.asarray(x, F)
        act = cosine_activations(x, self.protos)
        act = competition(act, F(c["competition_strength"]) * ne)
        act = spread(act, self.syn, ach)
        spk = spikes(act, c["spike_threshold"])
        if c["use_ternary"]:
            wch = stdp_ternary(self.syn, self.tern, spk, act, self.last_spike, self.tick * 100)
        else:
            wch = stdp(self.syn, spk, act, F(c["stdp_lr"]) * da)
            for i in spk:
                self.last_spike[i] = self.tick * 100
        if self.tick % 100 == 0:
            homeostasis(self.syn, self.rates, c["homeostasis_target"], F(0.01) * ser)
        if self.tick % 10 == 0:
            d = F(c["decay_rate"]) * (ONE - ser)
            wch.update(decay_ternary(self.syn, self.tern, d) if c["use_ternary"]
                       else decay(self.syn, d))
        self.traces = traces(self.traces, act, c["trace_decay"])
        self.rates = rates(self.rates, spk)
        self.last_act = act
        pch = {}
        if c["prototype_lr"] > 0:
            pch = learn_prototypes(self.protos, x, act, spk, c["prototype_lr"])
        return wch, pch


# ----------------------------------------------------------------------------- helpers

def f32_sqrt(v) -> np.float32:
    """Correctly rounded float32 square root."""
    return F(np.sqrt(F(v)))


pair_confidence = confidence


def scan_rows(X, lo_bits, hi_bits):
    """(first flat index of a NaN or infinity or -1, rows whose non-zero max |x| has bits outside
    [lo_bits, hi_bits] among the finite rows, the bits of every row's max |x|)."""
    X = np.asarray(X, F)
    bad, nscale, maxabs = -1, 0, []
    for t, row in enumerate(X):
        bits = [int(v) & 0x7FFFFFFF for v in row.view(np.uint32)]
        m = max(bits, default=0)
        maxabs.append(m)
        if not np.isfinite(row).all():
            if bad < 0:
                bad = t * X.shape[1] + int(np.flatnonzero(~np.isfinite(row))[0])
        elif m != 0 and not lo_bits <= m <= hi_bits:
            nscale += 1
    return bad, nscale, maxabs


def ring_indices(n, k):
    """Each neuron's ``k`` successors on a ring."""
    return [[(i + s + 1) % n for s in range(k)] for i in range(n)]


def scaled_rows(protos, rows):
    """Prototype rows divided by their max |component| (zeros stay zeros)."""
    out = []
    for r in rows:
        p = np.asarray(protos[r], F)
        m = max((F(abs(v)) for v in p), default=F(0))
        out.append(p / m if m > 0 else np.zeros(len(p), F))
    return np.array(out, F).reshape(len(rows), np.asarray(protos).shape[1] if len(protos) else 0)


def move_prototype(p, x, lr):
    """``p + lr * (x - p)`` and its norm (squares summed in order)."""
    p = np.asarray(p, F)
    q = np.array([F(a + F(lr) * F(b - a)) for a, b in zip(p, np.asarray(x, F))], F)
    return q, f32_sqrt(seq_sum(q * q))


def record_changes(changes):
    """Items in order of first change, each with the confidence of its last change."""
    out = {}
    for item, conf in changes:
        out[item] = conf
    return list(out), out
