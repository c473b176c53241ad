"""Kernels of the embedded spiking network (:mod:`thermogram.snn`).

One tick turns an input vector into spikes and weight changes in the
reference crate's order:

1. :func:`input_dots` and :func:`cosine_activation`:
   cosine similarity of the input with every prototype, ReLU.
2. :func:`lateral_competition`: rank-based suppression (winner-take-most).
3. :func:`spread_activation`: activation flows along the associative weights.
4. :func:`detect_spikes`: activation above the threshold.
5. :func:`stdp_continuous` / :func:`stdp_ternary`: co-spiking pairs.
6. :func:`homeostasis` every 100 ticks.
7. :func:`decay_continuous` / :func:`decay_ternary` every 10 ticks.
8. :func:`update_traces`, :func:`update_rates`.
9. :func:`learn_prototypes` (only with a positive prototype learning rate).

:func:`run_ticks` runs any number of ticks in one call and collects every
synapse and prototype that changed (see :func:`mark_changed`).

Layout. Prototypes are stored transposed, ``PT[j, r]`` = component ``j`` of
prototype ``r`` (shape ``(input_dim, num_neurons)``, C order), so that a dot
product runs across neurons in SIMD lanes while each neuron's sum is still
taken strictly in input order. Every sum here is a plain sequential float32
sum, as in the reference, so results do not depend on vector width or on how
many inputs are processed together. No kernel uses ``fastmath``. The dot
products, nearly all of a tick's arithmetic, run in
:mod:`thermogram.kernels._lanes`: 16 neurons per vector register, the running
sums kept in registers for the whole input (:func:`input_dots`).
:class:`~thermogram.snn.EmbeddedSNN` pads ``PT`` with zero columns to a
multiple of 16 neurons and aligns it to 64 bytes, so every lane vector is one
aligned cache line; kernels that read prototypes by neuron get the
``(input_dim, num_neurons)`` view.

Associative weights are dense ``(num_neurons, k)`` arrays: ``idx[i, s]`` is the
target of synapse ``s`` of neuron ``i``, ``w[i, s]`` its float32 weight and
``tern[i, s]`` its ternary weight (int8 in {-1, 0, +1}).

Why this module is one piece (~800 lines): these are the stages of one tick, and :func:`tick_dynamics`
and :func:`run_ticks` inline them (numba compiles a caller with its callees, from one
module's globals); each stage is short and has its own naive twin in ``tests/naive/snn.py``.
"""
from __future__ import annotations

import numpy as np

from ._jit import kernel
from ._lanes import LANES, WIDE_VECTORS, dot_block

F_ZERO = np.float32(0.0)
F_ONE = np.float32(1.0)
RATE_ALPHA = np.float32(0.1)
"""Weight of the newest tick in the firing-rate moving average."""
RATE_KEEP = np.float32(F_ONE - RATE_ALPHA)
HOMEOSTASIS_GAIN = np.float32(0.01)
"""Homeostasis rate per unit of serotonin."""
PRUNE_BELOW = np.float32(0.01)
"""Continuous weights that decay below this are set to 0."""
TERNARY_DECAY_ABOVE = np.float32(0.5)
"""Ternary weights decay to zero only when the effective decay exceeds this."""
INIT_WEIGHT = np.float32(0.1)
INIT_SPAN = np.float32(0.1)
"""Prototype components start uniform in ``[-INIT_SPAN / 2, INIT_SPAN / 2)``."""
HALF = np.float32(0.5)

TICK_MS = 100
"""Simulated milliseconds per tick (spike times)."""
HOMEOSTASIS_EVERY = 100
DECAY_EVERY = 10
NEVER = -1
"""Spike time of a neuron that has not spiked yet."""

ABS_MASK = np.uint32(0x7FFFFFFF)
LOW32 = np.int64(0xFFFFFFFF)
EXP_MASK = np.uint32(0x7F800000)

INSERTION_SORT_MAX = 24
COUNT_RANKS_MAX = 256
"""Up to this many positive activations, ranks are counted rather than sorted."""
BLOCK_TICKS = 64
"""Ticks whose input dot products are computed together when prototypes are fixed."""


# ---------------------------------------------------------------------------
# input checks
# ---------------------------------------------------------------------------

@kernel
def scan_rows(bits, lo, hi, maxabs):
    """Validate and measure the rows of a float32 matrix seen as ``uint32`` bits.

    ``maxabs[t]`` receives the bits of ``max |X[t]|`` (for non-negative
    floats, integer order is float order). Returns ``(bad, nscale)``:
    ``bad`` is the flat index of the first NaN or infinity (or -1) and
    ``nscale`` the number of non-zero rows whose max-abs bits fall outside
    ``[lo, hi]``.
    """
    t_rows, d = bits.shape
    bad = -1
    nscale = 0
    for t in range(t_rows):
        row = bits[t]
        m = np.uint32(0)
        for j in range(d):
            v = np.uint32(row[j] & ABS_MASK)
            if v > m:
                m = v
        maxabs[t] = m
        if m >= EXP_MASK:
            if bad < 0:
                for j in range(d):
                    if np.uint32(row[j] & ABS_MASK) >= EXP_MASK:
                        bad = t * d + j
                        break
        elif m != 0 and (m < lo or m > hi):
            nscale += 1
    return bad, nscale


# ---------------------------------------------------------------------------
# 1. activation
# ---------------------------------------------------------------------------

@kernel
def f32_sqrt(v):
    """float32 square root (``np.sqrt`` of a float32 scalar is float64 in compiled
    code; a correctly rounded float64 root rounds to the correctly rounded
    float32 root)."""
    return np.float32(np.sqrt(v))


@kernel
def proto_norms(PT, out):
    """``out[r] = sqrt(sum_j PT[j, r] ** 2)``, the sum taken in order of ``j``
    in float32 (as the reference computes it on every tick)."""
    d, n = PT.shape
    for r in range(n):
        out[r] = F_ZERO
    for j in range(d):
        p = PT[j]
        for r in range(n):
            out[r] = out[r] + p[r] * p[r]
    for r in range(n):
        out[r] = f32_sqrt(out[r])


_D1 = tuple(dot_block(1, v) for v in range(1, 9))
_D3 = tuple(dot_block(3, v) for v in range(1, 8))
_D1_1, _D1_2, _D1_3, _D1_4, _D1_5, _D1_6, _D1_7, _D1_8 = _D1
_D3_1, _D3_2, _D3_3, _D3_4, _D3_5, _D3_6, _D3_7 = _D3


@kernel
def lane_dots(X, t, T, PT, r0, V, out, ob, ni, want_ni):
    """One compiled dot block of :mod:`thermogram.kernels._lanes`: ``T`` (1 or 3) inputs
    ``X[t:t + T]`` against the ``16 * V`` neurons from column ``r0`` of ``PT``, into
    ``out[ob:ob + T, r0:r0 + 16 V]`` (and ``ni[ob:ob + T]`` when ``want_ni``). ``V`` is
    1..8 for one input, 1..7 for three; every sum in order of ``j`` from +0.0."""
    if not ((T == 1 and 1 <= V <= 8) or (T == 3 and 1 <= V <= 7)):
        raise ValueError("lane_dots: T must be 1 (V in 1..8) or 3 (V in 1..7)")
    if T == 3:
        if V == 7:
            _D3_7(X, t, PT, r0, out, ob, ni, want_ni)
        elif V == 6:
            _D3_6(X, t, PT, r0, out, ob, ni, want_ni)
        elif V == 5:
            _D3_5(X, t, PT, r0, out, ob, ni, want_ni)
        elif V == 4:
            _D3_4(X, t, PT, r0, out, ob, ni, want_ni)
        elif V == 3:
            _D3_3(X, t, PT, r0, out, ob, ni, want_ni)
        elif V == 2:
            _D3_2(X, t, PT, r0, out, ob, ni, want_ni)
        else:
            _D3_1(X, t, PT, r0, out, ob, ni, want_ni)
    elif V == 8:
        _D1_8(X, t, PT, r0, out, ob, ni, want_ni)
    elif V == 7:
        _D1_7(X, t, PT, r0, out, ob, ni, want_ni)
    elif V == 6:
        _D1_6(X, t, PT, r0, out, ob, ni, want_ni)
    elif V == 5:
        _D1_5(X, t, PT, r0, out, ob, ni, want_ni)
    elif V == 4:
        _D1_4(X, t, PT, r0, out, ob, ni, want_ni)
    elif V == 3:
        _D1_3(X, t, PT, r0, out, ob, ni, want_ni)
    elif V == 2:
        _D1_2(X, t, PT, r0, out, ob, ni, want_ni)
    else:
        _D1_1(X, t, PT, r0, out, ob, ni, want_ni)


@kernel
def tail_dots(X, t, T, PT, r0, out, ob, ni, want_ni):
    """``out[ob + q, r] = sum_j X[t + q, j] * PT[j, r]`` for the columns ``r >= r0``
    (fewer than 16: those not in a full lane vector) and ``q < T``; with ``want_ni``
    also ``ni[ob + q] = sum_j X[t + q, j] ** 2``. Sums in order of ``j`` from +0.0."""
    d, m = PT.shape
    for q in range(T):
        o = out[ob + q]
        x = X[t + q]
        for r in range(r0, m):
            o[r] = F_ZERO
        s = F_ZERO
        for j in range(d):
            xv = x[j]
            p = PT[j]
            for r in range(r0, m):
                o[r] = o[r] + xv * p[r]
            s = s + xv * xv
        if want_ni:
            ni[ob + q] = s


@kernel
def input_dots(X, t, nt, PT, out, ob, ni, wide):
    """Dot products of the inputs ``X[t:t + nt]`` with every prototype, and their squared norms.

    ``out[ob + q, r] = sum_j X[t + q, j] * PT[j, r]`` and ``ni[ob + q] = sum_j X[t + q, j] ** 2``
    for ``q < nt``, each sum a plain float32 sum in order of ``j`` (bit for bit the loop
    ``s = s + x[j] * p[j]``), whatever the grouping: neurons 16 at a time in SIMD lanes
    (:func:`lane_dots`), the last columns that fill no lane vector by :func:`tail_dots`.
    The grouping follows the register file (``wide``: :data:`~._lanes.WIDE_VECTORS`):
    with 32 512-bit registers, three inputs at a time while three are left and up to 7
    (3 inputs) or 8 (1 input) lane vectors per block; with 16 registers, one input and up
    to 6 lane vectors, so the running sums stay in registers. ``X``, ``PT`` and ``out`` are
    C-contiguous float32; ``out.shape[1] >= PT.shape[1]``. The kernel is fastest when
    ``PT.shape[1]`` is a multiple of 16 (zero columns as padding) and ``PT`` starts on a
    64-byte boundary (each lane vector one cache line).
    """
    nv = PT.shape[1] // LANES
    q = 0
    while q < nt:
        T = 3 if (wide and nt - q >= 3) else 1
        vmax = (7 if T == 3 else 8) if wide else 6
        v0 = 0
        while v0 < nv:
            V = min(vmax, nv - v0)
            lane_dots(X, t + q, T, PT, v0 * LANES, V, out, ob + q, ni, v0 == 0)
            v0 += V
        if nv * LANES < PT.shape[1] or nv == 0:
            tail_dots(X, t + q, T, PT, nv * LANES, out, ob + q, ni, nv == 0)
        q += T


@kernel
def cosine_activation(dots, ni, pnorm, out):
    """``out[r] = max(0, dots[r] / (sqrt(ni) * pnorm[r]))``; 0 where either norm is 0.

    ``pnorm`` holds the prototype norms of :func:`proto_norms`.
    """
    n = dots.shape[0]
    sx = f32_sqrt(ni)
    for r in range(n):
        a = F_ZERO
        pn = pnorm[r]
        if ni > F_ZERO and pn > F_ZERO:
            a = dots[r] / (sx * pn)
            if not a > F_ZERO:
                a = F_ZERO
        out[r] = a


# ---------------------------------------------------------------------------
# 2. competition
# ---------------------------------------------------------------------------

@kernel
def sort_desc(act, order, tmp, m):
    """Sort the neuron indices ``order[0:m]`` by ``act`` descending, stable.

    Insertion sort for short lists, bottom-up merge sort (``tmp`` as buffer)
    otherwise; ties keep their incoming order.
    """
    if m <= INSERTION_SORT_MAX:
        for a in range(1, m):
            i = order[a]
            v = act[i]
            p = a
            while p > 0 and act[order[p - 1]] < v:
                order[p] = order[p - 1]
                p -= 1
            order[p] = i
        return
    width = 1
    src = order
    dst = tmp
    in_tmp = False
    while width < m:
        lo = 0
        while lo < m:
            mid = min(lo + width, m)
            hi = min(lo + 2 * width, m)
            a = lo
            b = mid
            k = lo
            while a < mid and b < hi:
                if act[src[a]] >= act[src[b]]:
                    dst[k] = src[a]
                    a += 1
                else:
                    dst[k] = src[b]
                    b += 1
                k += 1
            while a < mid:
                dst[k] = src[a]
                a += 1
                k += 1
            while b < hi:
                dst[k] = src[b]
                b += 1
                k += 1
            lo = hi
        src, dst = dst, src
        in_tmp = not in_tmp
        width *= 2
    if in_tmp:
        for a in range(m):
            order[a] = tmp[a]


@kernel
def lateral_competition(act, strength, order, ranks, keys):
    """Winner-take-most: the neuron of rank ``r`` (0 = most active) is scaled by
    ``1 - (r / N) * strength``, in place.

    Ranks are those of a stable descending sort (ties: lower index first).
    Only positive activations are ranked: after the ReLU every other
    activation is 0 and stays 0 whatever its rank. Up to
    :data:`COUNT_RANKS_MAX` positive activations, each rank is counted
    directly: with ``key = float bits << 32 | (2**32 - 1 - index)`` (the bits
    of a positive float order like the float), the rank of ``a`` is the
    number of keys above ``a``'s, a branch-free vectorised count. Above
    that, :func:`sort_desc`. ``order``, ``ranks`` and ``keys`` (int64,
    ``len(keys) >= N + 7``) are scratch. Returns the number of positive
    activations.
    """
    n = act.shape[0]
    bits = act.view(np.uint32)
    m = 0
    for i in range(n):
        if act[i] > F_ZERO:
            order[m] = i
            m += 1
    if m <= COUNT_RANKS_MAX:
        for a in range(m):
            i = order[a]
            keys[a] = (np.int64(bits[i]) << 32) | (LOW32 - i)
        mp = (m + 7) // 8 * 8
        for a in range(m, mp):
            keys[a] = 0  # below every key of a positive activation
        for a in range(m):
            ka = keys[a]
            c = 0
            for b in range(mp):
                c += keys[b] > ka
            ranks[a] = c
    else:
        sort_desc(act, order, ranks, m)
        for a in range(m):
            ranks[a] = a
    nf = np.float32(n)
    for a in range(m):
        i = order[a]
        supp = (np.float32(ranks[a]) / nf) * strength
        act[i] = act[i] * (F_ONE - supp)
    return m


# ---------------------------------------------------------------------------
# 3-4. spreading and spikes
# ---------------------------------------------------------------------------

@kernel
def spread_activation(act, idx, w, gate, spread):
    """``act[j] += gate * sum_{i, s: idx[i, s] = j} act[i] * w[i, s]`` (sources
    read before any target changes), in place; ``spread`` is scratch."""
    n, k = idx.shape
    for j in range(n):
        spread[j] = F_ZERO
    for i in range(n):
        a = act[i]
        if a == F_ZERO:
            continue  # adds only zeros (weights are >= 0): skipping changes no bit
        for s in range(k):
            j = idx[i, s]
            spread[j] = spread[j] + a * w[i, s]
    for j in range(n):
        act[j] = act[j] + spread[j] * gate


@kernel
def detect_spikes(act, threshold, mask, spk):
    """``mask[i] = act[i] > threshold``; the spiking indices go to ``spk`` in
    increasing order; returns how many."""
    n = act.shape[0]
    c = 0
    for i in range(n):
        if act[i] > threshold:
            mask[i] = 1
            spk[c] = i
            c += 1
        else:
            mask[i] = 0
    return c


# ---------------------------------------------------------------------------
# change collection
# ---------------------------------------------------------------------------

@kernel
def mark_changed(flat, conf, mark, conf_out, changed, count):
    """Record that item ``flat`` changed with confidence ``conf``.

    ``changed[0:count]`` lists changed items in order of first change;
    ``mark`` flags listed items; ``conf_out`` keeps the last confidence.
    Returns the new count.
    """
    if mark[flat] == 0:
        mark[flat] = 1
        changed[count] = flat
        count += 1
    conf_out[flat] = conf
    return count


@kernel
def clear_marks(mark, changed, count):
    """Reset ``mark`` for the listed items (so it is all zero again)."""
    for a in range(count):
        mark[changed[a]] = 0


@kernel
def pair_confidence(a, b):
    """Evidence of a co-spike: the smaller activation, clipped to [0, 1]."""
    c = min(a, b)
    if not c > F_ZERO:
        return F_ZERO
    if c > F_ONE:
        return F_ONE
    return c


# ---------------------------------------------------------------------------
# 5. STDP
# ---------------------------------------------------------------------------

@kernel
def stdp_continuous(spk, nspk, mask, act, idx, w, lr, wmark, wconf, wlist, nw):
    """Every synapse ``i -> j`` between two spiking neurons (``i != j``) gets
    ``w = clip(w + lr, 0, 1)``. Synapses whose weight changed are marked with
    their :func:`pair_confidence`. Returns the new change count."""
    k = idx.shape[1]
    for a in range(nspk):
        i = spk[a]
        for s in range(k):
            j = idx[i, s]
            if j == i or mask[j] == 0:
                continue
            old = w[i, s]
            new = min(max(old + lr, F_ZERO), F_ONE)
            if new != old:
                w[i, s] = new
                nw = mark_changed(i * k + s, pair_confidence(act[i], act[j]),
                                  wmark, wconf, wlist, nw)
    return nw


@kernel
def ternary_step(cur, dt):
    """Ternary STDP transition for a co-spiking pair whose previous spikes
    differ by ``dt`` = t_pre - t_post: strengthen (-1 -> 0 -> +1) when
    ``dt > 0``, weaken (+1 -> 0 -> -1) when ``dt < 0``, and when
    simultaneous only -1 -> 0."""
    if dt > 0:
        return np.int8(min(cur + 1, 1))
    if dt < 0:
        return np.int8(max(cur - 1, -1))
    if cur == -1:
        return np.int8(0)
    return np.int8(cur)


@kernel
def stdp_ternary(spk, nspk, mask, act, idx, w, tern, last_spike, now_ms,
                 wmark, wconf, wlist, nw):
    """Ternary STDP on every synapse between two spiking neurons.

    Timing compares the neurons' *previous* spike times (:data:`NEVER` for
    none), read before this tick stamps ``now_ms`` on every spiking neuron.
    A changed ternary weight also sets ``w = |tern|``. Returns the new
    change count.
    """
    k = idx.shape[1]
    for a in range(nspk):
        i = spk[a]
        for s in range(k):
            j = idx[i, s]
            if j == i or mask[j] == 0:
                continue
            cur = tern[i, s]
            new = ternary_step(cur, last_spike[i] - last_spike[j])
            if new != cur:
                tern[i, s] = new
                w[i, s] = np.float32(abs(new))
                nw = mark_changed(i * k + s, pair_confidence(act[i], act[j]),
                                  wmark, wconf, wlist, nw)
    for a in range(nspk):
        last_spike[spk[a]] = now_ms
    return nw


@kernel
def stamp_spikes(spk, nspk, last_spike, now_ms):
    """``last_spike[i] = now_ms`` for every spiking neuron."""
    for a in range(nspk):
        last_spike[spk[a]] = now_ms


# ---------------------------------------------------------------------------
# 6-7. homeostasis and decay
# ---------------------------------------------------------------------------

@kernel
def homeostasis(w, rates, target, rate):
    """Scale neuron ``i``'s outgoing weights by ``1 + (target - rates[i]) * rate``,
    clipped to [0, 1]."""
    n, k = w.shape
    for i in range(n):
        g = F_ONE + (target - rates[i]) * rate
        for s in range(k):
            v = w[i, s] * g
            w[i, s] = min(max(v, F_ZERO), F_ONE)


@kernel
def decay_continuous(w, decay, wmark, wconf, wlist, nw):
    """``w *= 1 - decay``; weights that fall below :data:`PRUNE_BELOW` become 0.
    A weight pruned from a non-zero value is marked (confidence 0)."""
    n, k = w.shape
    keep = F_ONE - decay
    for i in range(n):
        for s in range(k):
            old = w[i, s]
            v = old * keep
            if v < PRUNE_BELOW:
                v = F_ZERO
                if old != F_ZERO:
                    nw = mark_changed(i * k + s, F_ZERO, wmark, wconf, wlist, nw)
            w[i, s] = v
    return nw


@kernel
def decay_ternary(w, tern, decay, wmark, wconf, wlist, nw):
    """When ``decay`` exceeds :data:`TERNARY_DECAY_ABOVE`, every non-zero ternary
    weight returns to 0 (``w`` too) and is marked (confidence 0)."""
    if not decay > TERNARY_DECAY_ABOVE:
        return nw
    n, k = w.shape
    for i in range(n):
        for s in range(k):
            if tern[i, s] != 0:
                tern[i, s] = 0
                w[i, s] = F_ZERO
                nw = mark_changed(i * k + s, F_ZERO, wmark, wconf, wlist, nw)
    return nw


# ---------------------------------------------------------------------------
# 8. traces and rates
# ---------------------------------------------------------------------------

@kernel
def update_traces(traces, act, trace_decay):
    """``traces = traces * (1 - trace_decay) + act``."""
    keep = F_ONE - trace_decay
    for i in range(traces.shape[0]):
        traces[i] = traces[i] * keep + act[i]


@kernel
def update_rates(rates, mask):
    """Firing-rate EMA: ``rates = rates * 0.9 + spiked * 0.1``."""
    for i in range(rates.shape[0]):
        s = F_ONE if mask[i] != 0 else F_ZERO
        rates[i] = rates[i] * RATE_KEEP + s * RATE_ALPHA


# ---------------------------------------------------------------------------
# 9. prototypes
# ---------------------------------------------------------------------------

@kernel
def move_prototype(PT, r, x, lr):
    """``PT[:, r] += lr * (x - PT[:, r])``; returns the new norm (squares
    summed in order, as :func:`proto_norms`)."""
    d = PT.shape[0]
    pn = F_ZERO
    for j in range(d):
        p = PT[j, r]
        p = p + lr * (x[j] - p)
        PT[j, r] = p
        pn = pn + p * p
    return f32_sqrt(pn)


@kernel
def learn_prototypes(x, PT, pnorm, act, spk, nspk, lr, pmark, pconf, plist, npc):
    """Competitive learning: the winners move toward the input ``x``.

    Winners are the spiking neurons; when none spikes, the most active
    neuron (lowest index on ties) if its activation is positive. Each
    winner is marked with its activation clipped to [0, 1]. Returns the new
    change count.
    """
    if nspk > 0:
        for a in range(nspk):
            r = spk[a]
            pnorm[r] = move_prototype(PT, r, x, lr)
            npc = mark_changed(r, pair_confidence(act[r], F_ONE), pmark, pconf, plist, npc)
        return npc
    n = act.shape[0]
    best = -1
    bv = F_ZERO
    for r in range(n):
        if act[r] > bv:
            bv = act[r]
            best = r
    if best >= 0:
        pnorm[best] = move_prototype(PT, best, x, lr)
        npc = mark_changed(best, pair_confidence(bv, F_ONE), pmark, pconf, plist, npc)
    return npc


# ---------------------------------------------------------------------------
# the tick
# ---------------------------------------------------------------------------

@kernel
def tick_dynamics(x, dots, ni, PT, pnorm, idx, w, tern, traces, rates, last_act, last_spike,
                  tick, params, ternary, act, order, ranks, keys, spread, mask, spk,
                  wmark, wconf, wlist, nw, pmark, pconf, plist, npc):
    """Tick number ``tick`` (already counted) from its raw dot products ``dots``
    and squared input norm ``ni`` on: cosine activation through stage 9. ``params`` is laid out as
    :data:`PARAMS`. Returns the new change counts ``(nw, npc)``."""
    cosine_activation(dots, ni, pnorm, act)
    lateral_competition(act, params[P_COMPETITION], order, ranks, keys)
    spread_activation(act, idx, w, params[P_GATE], spread)
    nspk = detect_spikes(act, params[P_THRESHOLD], mask, spk)
    if ternary:
        nw = stdp_ternary(spk, nspk, mask, act, idx, w, tern, last_spike, tick * TICK_MS,
                          wmark, wconf, wlist, nw)
    else:
        nw = stdp_continuous(spk, nspk, mask, act, idx, w, params[P_LR], wmark, wconf, wlist, nw)
        stamp_spikes(spk, nspk, last_spike, tick * TICK_MS)
    if tick % HOMEOSTASIS_EVERY == 0:
        homeostasis(w, rates, params[P_TARGET], params[P_HOMEO_RATE])
    if tick % DECAY_EVERY == 0:
        if ternary:
            nw = decay_ternary(w, tern, params[P_DECAY], wmark, wconf, wlist, nw)
        else:
            nw = decay_continuous(w, params[P_DECAY], wmark, wconf, wlist, nw)
    update_traces(traces, act, params[P_TRACE_DECAY])
    update_rates(rates, mask)
    for i in range(act.shape[0]):
        last_act[i] = act[i]
    if params[P_PROTO_LR] > F_ZERO:
        npc = learn_prototypes(x, PT, pnorm, act, spk, nspk, params[P_PROTO_LR],
                               pmark, pconf, plist, npc)
    return nw, npc


P_COMPETITION = 0
P_GATE = 1
P_THRESHOLD = 2
P_LR = 3
P_TARGET = 4
P_HOMEO_RATE = 5
P_DECAY = 6
P_TRACE_DECAY = 7
P_PROTO_LR = 8
PARAMS = ("competition", "gate", "threshold", "lr", "target", "homeo_rate", "decay",
          "trace_decay", "proto_lr")
"""Layout of the float32 ``params`` vector of :func:`run_ticks`: competition
strength x norepinephrine, acetylcholine gate, spike threshold, STDP rate x
dopamine, homeostasis target, 0.01 x serotonin, decay rate x (1 - serotonin),
trace decay, prototype learning rate."""


S_TRACES = 0
S_RATES = 1
S_LAST_ACT = 2
S_PNORM = 3
"""Rows of the float32 neuron-state matrix ``nstate`` (4, N) of :func:`run_ticks`:
eligibility traces, firing rates, last activations, prototype norms."""
W_ACT = 0
W_SPREAD = 1
W_PCONF = 2
"""Rows of the float32 workspace ``fws`` (3, N): activations, spread,
confidence of each changed prototype."""
I_ORDER = 0
I_RANKS = 1
I_KEYS = 2
I_SPK = 3
I_PLIST = 4
"""Rows of the int64 workspace ``iws`` (5, N + 8): competition order, ranks and
keys, spiking neurons, changed prototypes."""
B_MASK = 0
B_PMARK = 1
"""Rows of the uint8 workspace ``bws`` (2, N): spike mask, changed-prototype marks."""


@kernel
def run_ticks(X, PT, idx, w, tern, nstate, last_spike, tick0, params, ternary,
              dots, ni, fws, iws, bws, wmark, wconf, wlist):
    """Run one tick per row of ``X`` (shape ``(T, input_dim)``), starting after
    tick number ``tick0``.

    ``nstate``, ``fws``, ``iws`` and ``bws`` hold several per-neuron arrays as
    rows (see :data:`S_TRACES`, :data:`W_ACT`, :data:`I_ORDER`,
    :data:`B_MASK`). Changed synapses (flat index ``i * k + s``) are listed
    in ``wlist``, changed prototypes in ``iws[I_PLIST]`` (order of first
    change), with the confidence of their last change in ``wconf`` /
    ``fws[W_PCONF]``; returns the counts ``(nw, npc)``. ``wmark`` and
    ``bws[B_PMARK]`` must be all zero on entry and are all zero again on
    return.

    ``PT`` may carry zero columns beyond the ``N = nstate.shape[1]`` neurons
    (padding to a multiple of 16 for :func:`input_dots`); ``dots`` is
    ``(block, PT.shape[1])``. With fixed prototypes (``params[P_PROTO_LR] == 0``)
    the dot products of up to ``block`` ticks are computed together;
    otherwise tick by tick after the previous tick's prototype update. Both
    give the same bits.
    """
    traces = nstate[S_TRACES]
    rates = nstate[S_RATES]
    last_act = nstate[S_LAST_ACT]
    pnorm = nstate[S_PNORM]
    act = fws[W_ACT]
    spread = fws[W_SPREAD]
    pconf = fws[W_PCONF]
    order = iws[I_ORDER]
    ranks = iws[I_RANKS]
    keys = iws[I_KEYS]
    spk = iws[I_SPK]
    plist = iws[I_PLIST]
    mask = bws[B_MASK]
    pmark = bws[B_PMARK]
    n = nstate.shape[1]
    t_rows = X.shape[0]
    nw = 0
    npc = 0
    fixed = not params[P_PROTO_LR] > F_ZERO
    block = dots.shape[0]
    t = 0
    while t < t_rows:
        nb = min(block, t_rows - t) if fixed else 1
        input_dots(X, t, nb, PT, dots, 0, ni, WIDE_VECTORS)
        for b in range(nb):
            tick = tick0 + t + b + 1
            nw, npc = tick_dynamics(X[t + b], dots[b, :n], ni[b], PT, pnorm, idx, w, tern, traces,
                                    rates, last_act, last_spike, tick, params, ternary, act,
                                    order, ranks, keys, spread, mask, spk, wmark, wconf, wlist,
                                    nw, pmark, pconf, plist, npc)
        t += nb
    clear_marks(wmark, wlist, nw)
    clear_marks(pmark, plist, npc)
    return nw, npc


@kernel
def workspace_sizes(n, k, npad):
    """Lengths of the float32, int64 and uint8 workspace buffers of :func:`workspace`
    for ``n`` neurons, ``k`` synapses each and prototypes padded to ``npad`` columns."""
    return (BLOCK_TICKS * npad + BLOCK_TICKS + 3 * n + n * k,
            5 * (n + 8) + n * k,
            2 * n + n * k)


@kernel
def workspace(fbuf, ibuf, bbuf, n, k, npad):
    """The scratch arrays of :func:`run_ticks` as views of three flat buffers (sizes from
    :func:`workspace_sizes`), so a one-tick call passes 3 arrays instead of 8:
    ``(dots (BLOCK_TICKS, npad), ni (BLOCK_TICKS,), fws (3, n), wconf (n * k,),
    iws (5, n + 8), wlist (n * k,), bws (2, n), wmark (n * k,))``."""
    a = BLOCK_TICKS * npad
    b = a + BLOCK_TICKS
    c = b + 3 * n
    dots = fbuf[:a].reshape((BLOCK_TICKS, npad))
    ni = fbuf[a:b]
    fws = fbuf[b:c].reshape((3, n))
    wconf = fbuf[c:c + n * k]
    e = 5 * (n + 8)
    iws = ibuf[:e].reshape((5, n + 8))
    wlist = ibuf[e:e + n * k]
    bws = bbuf[:2 * n].reshape((2, n))
    wmark = bbuf[2 * n:2 * n + n * k]
    return dots, ni, fws, wconf, iws, wlist, bws, wmark


@kernel
def run_row(x, lo, hi, PT, idx, w, tern, nstate, last_spike, tick0, params, ternary,
            fbuf, ibuf, bbuf):
    """One tick on the 1-D input ``x`` in one call: :func:`scan_rows`, then :func:`run_ticks`
    (its scratch arrays from :func:`workspace`; few arguments, since each costs time
    on every call from Python).

    Returns ``(ran, nw, npc)``. When ``x`` holds NaN or infinity, or needs scaling
    (its max-abs bits outside ``[lo, hi]``), nothing runs: ``ran`` is False and the
    caller takes the general path. The other arguments are those of :func:`run_ticks`.
    """
    X = x.reshape((1, x.shape[0]))
    maxabs = np.empty(1, np.uint32)
    bad, nscale = scan_rows(X.view(np.uint32), lo, hi, maxabs)
    if bad >= 0 or nscale > 0:
        return False, 0, 0
    dots, ni, fws, wconf, iws, wlist, bws, wmark = workspace(fbuf, ibuf, bbuf, nstate.shape[1],
                                                            idx.shape[1], PT.shape[1])
    nw, npc = run_ticks(X, PT, idx, w, tern, nstate, last_spike, tick0, params, ternary,
                        dots, ni, fws, iws, bws, wmark, wconf, wlist)
    return True, nw, npc


# ---------------------------------------------------------------------------
# set-up and output helpers
# ---------------------------------------------------------------------------

@kernel
def ring_indices(n, k, idx):
    """``idx[i, s] = (i + s + 1) % n``: each neuron's ``k`` successors on a ring."""
    for i in range(n):
        for s in range(k):
            idx[i, s] = (i + s + 1) % n


@kernel
def scaled_columns(PT, cols, out):
    """``out[a] = PT[:, cols[a]] / max |PT[:, cols[a]]|`` (all zeros for a zero
    column): prototypes scaled into [-1, 1] for signal encoding."""
    d = PT.shape[0]
    for a in range(cols.shape[0]):
        r = cols[a]
        m = F_ZERO
        for j in range(d):
            v = abs(PT[j, r])
            if v > m:
                m = v
        if m > F_ZERO:
            for j in range(d):
                out[a, j] = PT[j, r] / m
        else:
            for j in range(d):
                out[a, j] = F_ZERO
