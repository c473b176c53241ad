"""Plain, readable reference versions of every ternary kernel (the oracle for tests/kernels/test_ternary.py).

Written straight from the reference crate's rules, one weight at a time,
with Python lists and numpy float32 scalars. Weights are the ints -1, 0, 1.
"""
import numpy as np

F = np.float32

ZERO, POS, NEG = 0b00, 0b01, 0b10


# ----------------------------------------------------------------------------- codes and packing

def to_2bit(w):
    return {0: ZERO, 1: POS, -1: NEG}[int(w)]


def from_2bit(bits):
    bits &= 0b11
    if bits == POS:
        return 1
    if bits == NEG:
        return -1
    return 0  # 00, and the reserved 11


def pack(weights):
    """bytes, weight i at bits 2*(i % 4) of byte i // 4."""
    data = bytearray((len(weights) + 3) // 4)
    for i, w in enumerate(weights):
        data[i // 4] |= to_2bit(w) << (2 * (i % 4))
    return bytes(data)


def get(data, n, i):
    if i >= n:
        return 0
    return from_2bit(data[i // 4] >> (2 * (i % 4)))


def unpack(data, n):
    return [get(data, n, i) for i in range(n)]


def canonical(data, n):
    """The bytes the reference would produce for the weights it reads from ``data``."""
    return pack(unpack(data, n))


def count_active(data, n):
    return sum(1 for w in unpack(data, n) if w != 0)


# ----------------------------------------------------------------------------- quantization

def quantize_one(value, threshold):
    v, t = F(value), F(threshold)
    if v >= t:
        return 1
    if v <= -t:
        return -1
    return 0


def quantize(values, threshold):
    return [quantize_one(v, threshold) for v in values]


def adaptive_threshold(values):
    total = F(0.0)
    count = 0
    for v in values:
        a = F(abs(F(v)))
        if a > F(1e-6):
            total = F(total + a)
            count += 1
    if count:
        return F(total / F(count))
    return F(0.5)


def layer_from_f32_matrix(matrix):
    """(list of packed row bytes, list of float32 scales), as the reference builds a layer."""
    rows, scales = [], []
    for row in matrix:
        row = [F(v) for v in row]
        max_abs = F(0.0)
        for v in row:
            max_abs = max(max_abs, F(abs(v)))
        scale = max_abs if max_abs > F(1e-6) else F(1.0)
        normalized = [F(v / scale) for v in row]
        rows.append(pack(quantize(normalized, adaptive_threshold(normalized))))
        scales.append(scale)
    return rows, scales


# ----------------------------------------------------------------------------- products

def dot(data, n, x):
    """Left to right in float32: + for +1 weights, - for -1 weights, skip zeros."""
    s = F(0.0)
    for i in range(n):
        w = get(data, n, i)
        if w == 1:
            s = F(s + F(x[i]))
        elif w == -1:
            s = F(s - F(x[i]))
    return s


def layer_forward_reference(rows, cols, scales, x):
    """The reference's forward: each row's left-to-right dot times its scale."""
    return np.array([F(dot(r, cols, x) * F(s)) for r, s in zip(rows, scales)], dtype=F)


def _signed(w_bits_pos, w_bits_neg, v):
    """``(v if +bit else 0) - (v if -bit else 0)`` in float32."""
    return F((v if w_bits_pos else F(0.0)) - (v if w_bits_neg else F(0.0)))


def layer_forward_blocked(rows, cols, scales, x, lanes=32):
    """The kernel's documented order: byte j adds ``(c0 + c1) + (c2 + c3)`` to
    lane ``j % lanes``, lanes are summed 0..lanes-1, then times the scale."""
    out = []
    xs = [F(v) for v in x] + [F(0.0)] * 3
    for r, s in zip(rows, scales):
        acc = [F(0.0)] * lanes
        for j, b in enumerate(r):
            c = [_signed(b >> (2 * k) & 1, b >> (2 * k + 1) & 1, xs[4 * j + k]) for k in range(4)]
            acc[j % lanes] = F(acc[j % lanes] + F(F(c[0] + c[1]) + F(c[2] + c[3])))
        t = F(0.0)
        for a in acc:
            t = F(t + a)
        out.append(F(t * F(s)))
    return np.array(out, dtype=F)


# ----------------------------------------------------------------------------- transitions

def strengthen(w):
    return {-1: 0, 0: 1, 1: 1}[w]


def weaken(w):
    return {1: 0, 0: -1, -1: -1}[w]


def flip(w):
    return {1: -1, -1: 1, 0: 0}[w]


def move_toward(current, target):
    table = {
        (1, 1): current, (0, 0): current, (-1, -1): current,
        (0, 1): strengthen(current), (-1, 1): strengthen(current),
        (0, -1): weaken(current), (1, -1): weaken(current),
        (1, 0): weaken(current),
        (-1, 0): strengthen(current),
    }
    return table[(current, target)]


def decay_toward_zero(w):
    return {1: 0, -1: 0, 0: 0}[w]


def apply_ternary_update(policy, lr_mag, current, observed, confidence):
    """policy: 0 STDP, 1 Replace, 2 EMA, 3 Bayesian, 4 WTA; confidence compared in float32."""
    conf = F(confidence)
    if policy == 0:
        if current == observed:
            return strengthen(current) if conf > F(0.7) else current
        if conf > F(0.5):
            return move_toward(current, observed)
        return decay_toward_zero(current)
    if policy == 1:
        return observed if conf > F(0.5) else current
    if policy == 2:
        if current == observed:
            return current
        return observed if conf > F(lr_mag) / F(255.0) else current
    if policy == 3:
        if conf > F(0.7):
            return observed
        if conf > F(0.3):
            return decay_toward_zero(current)
        return current
    if policy == 4:
        return observed if conf > F(0.5) else current
    raise ValueError(policy)


def apply_ternary_stdp(current, pre_fired, post_fired, dt_ms):
    if pre_fired and post_fired:
        if dt_ms > 0:
            return strengthen(current)
        if dt_ms < 0:
            return weaken(current)
        return 0 if current == -1 else current
    return current


def majority_vote(weights):
    pos = sum(1 for w in weights if w == 1)
    neg = sum(1 for w in weights if w == -1)
    if pos > neg:
        return 1
    if neg > pos:
        return -1
    return 0


def should_prune(w):
    return w == 0
