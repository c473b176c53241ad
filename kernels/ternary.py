"""Ternary weight kernels: 2-bit packing, add/subtract-only products, transitions.

A ternary weight is an int8 in {-1, 0, +1}. Packed storage holds four
weights per byte, weight ``i`` in bits ``2*(i % 4)`` and ``2*(i % 4) + 1``
of byte ``i // 4``, with the codes ``00`` = 0, ``01`` = +1, ``10`` = -1.
The code ``11`` is reserved and reads as 0, as in the reference crate.

Kernels that take packed bytes assume *canonical* bytes: no ``11`` code and
zero bits after the last weight. Every constructor of the Python API
produces canonical bytes, and :func:`canonicalize` repairs foreign ones.

No kernel multiplies an input by a weight. Products of a packed row with a
float vector are sums and differences of the inputs; the only
multiplication is by the per-row scale of a layer, after the sum.

Why this module is one piece (~570 lines): every kernel here reads or writes the same 2-bit code
(:func:`code_of`/:func:`weight_of`, inlined), and the forward kernels share the plane and
pair-table helpers; each kernel is short and has a naive twin in ``tests/naive/ternary.py``.
"""
from __future__ import annotations

import numpy as np

from ._jit import kernel
from .signal import magnitude_f32

CODE_ZERO = 0
CODE_POS = 1
CODE_NEG = 2

MIN_WEIGHT = np.float32(1e-6)
DEFAULT_THRESHOLD = np.float32(0.5)
F_ZERO = np.float32(0.0)
F_ONE = np.float32(1.0)
CONF_HIGH = np.float32(0.7)
CONF_MID = np.float32(0.5)
CONF_LOW = np.float32(0.3)

POLICY_STDP = 0
POLICY_REPLACE = 1
POLICY_EMA = 2
POLICY_BAYESIAN = 3
POLICY_WTA = 4

LANES = 32
"""Partial sums per row in :func:`layer_forward` (byte ``j`` feeds lane ``j % 32``)."""

U0 = np.uint8(0)
B0, B1, B2, B3, B4, B5, B6, B7 = (np.uint8(1 << k) for k in range(8))

ROW_BLOCK = 32
"""Rows that share one pass over the pair tables in :func:`layer_forward_batch`."""


# ---------------------------------------------------------------------------
# codes
# ---------------------------------------------------------------------------

@kernel
def code_of(w):
    """2-bit code of one weight: +1 -> 0b01, -1 -> 0b10, anything else -> 0b00."""
    if w == 1:
        return np.uint8(CODE_POS)
    if w == -1:
        return np.uint8(CODE_NEG)
    return np.uint8(CODE_ZERO)


@kernel
def weight_of(code):
    """Weight of a 2-bit code (only the two low bits are read; 0b11 -> 0)."""
    c = np.int32(code)
    return np.int8((c & 1) - ((c >> 1) & 1))


@kernel
def count_invalid(weights):
    """Number of int8 values that are not -1, 0 or +1."""
    bad = 0
    for i in range(weights.shape[0]):
        bad += np.uint8(np.int32(weights[i]) + 1) > 2
    return bad


# ---------------------------------------------------------------------------
# packing
# ---------------------------------------------------------------------------

@kernel
def pack_ternary(weights, out):
    """Pack int8 weights into ``out`` (``ceil(n / 4)`` bytes, fully overwritten)."""
    n = weights.shape[0]
    full = n // 4
    for j in range(full):
        i = 4 * j
        out[j] = (code_of(weights[i]) | (code_of(weights[i + 1]) << 2)
                  | (code_of(weights[i + 2]) << 4) | (code_of(weights[i + 3]) << 6))
    rem = n - 4 * full
    if rem > 0:
        b = np.uint8(0)
        for k in range(rem):
            b |= code_of(weights[4 * full + k]) << (2 * k)
        out[full] = b


@kernel
def unpack_ternary(packed, n, out):
    """Unpack the first ``n`` weights of ``packed`` into int8 ``out``."""
    full = n // 4
    for j in range(full):
        b = np.int32(packed[j])
        i = 4 * j
        out[i] = np.int8((b & 1) - ((b >> 1) & 1))
        out[i + 1] = np.int8(((b >> 2) & 1) - ((b >> 3) & 1))
        out[i + 2] = np.int8(((b >> 4) & 1) - ((b >> 5) & 1))
        out[i + 3] = np.int8(((b >> 6) & 1) - ((b >> 7) & 1))
    for i in range(4 * full, n):
        out[i] = weight_of(packed[full] >> (2 * (i - 4 * full)))


@kernel
def unpack_ternary_f32(packed, n, out):
    """Unpack the first ``n`` weights of ``packed`` as float32 -1.0 / 0.0 / +1.0."""
    for i in range(n):
        out[i] = np.float32(weight_of(packed[i >> 2] >> (2 * (i & 3))))


@kernel
def quantize_pack(values, threshold, out):
    """Quantize float32 ``values`` with ``threshold`` and pack them into ``out``.

    ``v >= threshold`` -> +1, ``v <= -threshold`` -> -1, else 0 (NaN -> 0).
    """
    t = np.float32(threshold)
    nt = -t
    n = values.shape[0]
    full = n // 4
    for j in range(full):
        b = np.uint8(0)
        for k in range(4):
            v = values[4 * j + k]
            if v >= t:
                b |= np.uint8(CODE_POS) << (2 * k)
            elif v <= nt:
                b |= np.uint8(CODE_NEG) << (2 * k)
        out[j] = b
    rem = n - 4 * full
    if rem > 0:
        b = np.uint8(0)
        for k in range(rem):
            v = values[4 * full + k]
            if v >= t:
                b |= np.uint8(CODE_POS) << (2 * k)
            elif v <= nt:
                b |= np.uint8(CODE_NEG) << (2 * k)
        out[full] = b


@kernel
def adaptive_threshold(values):
    """Mean of ``|v|`` over the values with ``|v| > 1e-6``; 0.5 when there are none.

    The sum runs left to right in float32 and is divided by the count as
    float32, exactly as the reference does.
    """
    s = F_ZERO
    count = 0
    for i in range(values.shape[0]):
        a = np.float32(abs(values[i]))
        if a > MIN_WEIGHT:
            s += a
            count += 1
    if count > 0:
        return s / np.float32(count)
    return DEFAULT_THRESHOLD


@kernel
def quantize_rows(weights, work, out_packed, out_scales):
    """Quantize each row of a float32 matrix the way the reference builds a layer.

    Per row: ``scale = max|w|`` (1.0 when it is not above 1e-6), the row is
    divided by ``scale`` into ``work``, thresholded at the adaptive threshold
    of the divided row, and packed into ``out_packed[row]``.
    """
    rows = weights.shape[0]
    cols = weights.shape[1]
    for r in range(rows):
        m = F_ZERO
        for c in range(cols):
            a = np.float32(abs(weights[r, c]))
            if a > m:
                m = a
        scale = m if m > MIN_WEIGHT else F_ONE
        out_scales[r] = scale
        for c in range(cols):
            work[c] = weights[r, c] / scale
        quantize_pack(work, adaptive_threshold(work), out_packed[r])


@kernel
def count_active(packed, n):
    """Number of non-zero weights among the first ``n``."""
    full = n // 4
    total = 0
    for j in range(full):
        b = np.int32(packed[j])
        a = (b ^ (b >> 1)) & 0x55
        total += (a & 1) + ((a >> 2) & 1) + ((a >> 4) & 1) + ((a >> 6) & 1)
    for i in range(4 * full, n):
        if weight_of(packed[full] >> (2 * (i - 4 * full))) != 0:
            total += 1
    return total


@kernel
def canonicalize(packed, n):
    """Rewrite reserved ``11`` codes and bits after weight ``n`` as ``00``, in place.

    Returns the number of 2-bit codes that were changed.
    """
    nbytes = packed.shape[0]
    changed = 0
    for j in range(nbytes):
        b = np.int32(packed[j])
        valid = n - 4 * j  # codes of this byte that hold weights
        keep = 0
        for k in range(4):
            c = (b >> (2 * k)) & 3
            if k < valid and c != 3:
                keep |= c << (2 * k)
            elif c != 0:
                changed += 1
        packed[j] = np.uint8(keep)
    return changed


# ---------------------------------------------------------------------------
# products
# ---------------------------------------------------------------------------

@kernel
def dot_packed(packed, n, x):
    """Sum of ``x[i]`` over +1 weights minus ``x[i]`` over -1 weights.

    Left to right in float32: bit for bit the reference's ``dot``.
    """
    s = F_ZERO
    for i in range(n):
        c = (packed[i >> 2] >> (2 * (i & 3))) & 3
        if c == CODE_POS:
            s += x[i]
        elif c == CODE_NEG:
            s -= x[i]
    return s


@kernel
def _planes(x, cols, nb):
    """``x`` split into four planes: ``planes[k, j] = x[4*j + k]`` (zero past ``cols``)."""
    planes = np.zeros((4, nb), np.float32)
    for c in range(cols):
        planes[c & 3, c >> 2] = x[c]
    return planes


@kernel
def _byte_sum(b, x0, x1, x2, x3, j):
    """``(c0 + c1) + (c2 + c3)`` for packed byte ``b`` at byte position ``j``.

    ``ck`` is ``(xk[j] if the +1 bit is set else 0) - (xk[j] if the -1 bit
    is set else 0)``: an input, its negation, or zero. The bit tests stay in
    uint8 so the compiler can test 16 or more bytes per instruction.
    """
    z = F_ZERO
    # the four inputs are loaded first, unconditionally: a load inside the conditional
    # expression vectorises as a masked load, which is microcoded and slow on some CPUs
    # (AVX2 without AVX-512: ~7x slower); selects of loaded values are plain blends
    v0, v1, v2, v3 = x0[j], x1[j], x2[j], x3[j]
    return (((v0 if np.uint8(b & B0) != U0 else z) - (v0 if np.uint8(b & B1) != U0 else z))
            + ((v1 if np.uint8(b & B2) != U0 else z) - (v1 if np.uint8(b & B3) != U0 else z))) \
        + (((v2 if np.uint8(b & B4) != U0 else z) - (v2 if np.uint8(b & B5) != U0 else z))
           + ((v3 if np.uint8(b & B6) != U0 else z) - (v3 if np.uint8(b & B7) != U0 else z)))


@kernel
def layer_forward(packed, cols, x, scales, out):
    """``out[r] = scales[r] * sum_c w[r, c] x[c]`` for a packed row-major layer.

    ``packed`` has shape ``(rows, ceil(cols / 4))``. Each row is summed in a
    fixed order that does not depend on the machine: byte ``j`` contributes
    ``(c0 + c1) + (c2 + c3)`` (see :func:`_byte_sum`) to lane ``j % LANES``,
    the lanes are summed from 0 up, and the sum is multiplied by the row's
    scale. The lanes let the compiler use SIMD without ``fastmath``; the
    result agrees with the reference's left-to-right sum to float32
    rounding (:func:`dot_packed` gives that sum exactly).
    """
    rows = packed.shape[0]
    nb = packed.shape[1]
    planes = _planes(x, cols, nb)
    x0 = planes[0]
    x1 = planes[1]
    x2 = planes[2]
    x3 = planes[3]
    acc = np.zeros(LANES, np.float32)
    nfull = (nb // LANES) * LANES
    for r in range(rows):
        row = packed[r]
        acc[:] = F_ZERO
        for j0 in range(0, nfull, LANES):
            for l in range(LANES):
                j = j0 + l
                acc[l] += _byte_sum(row[j], x0, x1, x2, x3, j)
        for j in range(nfull, nb):
            acc[j - nfull] += _byte_sum(row[j], x0, x1, x2, x3, j)
        t = F_ZERO
        for l in range(LANES):
            t += acc[l]
        out[r] = t * scales[r]


@kernel
def pair_tables(x_chunk, cols, nb):
    """Signed pair sums of a batch chunk, for :func:`layer_forward_batch`.

    ``x_chunk`` is ``(n, cols)``. Returns ``t`` of shape ``(nb, 2, 16, n)``:
    ``t[j, h, q, i]`` is ``c_lo + c_hi`` for input ``i``, where the nibble
    ``q`` holds the codes of columns ``4*j + 2*h`` (low two bits) and
    ``4*j + 2*h + 1`` (high two bits), and a code gives ``+x``, ``-x`` or 0
    with the same expression as :func:`layer_forward`.
    """
    n = x_chunk.shape[0]
    z = F_ZERO
    xt = np.zeros((4 * nb, n), np.float32)
    for i in range(n):
        for c in range(cols):
            xt[c, i] = x_chunk[i, c]
    t = np.empty((nb, 2, 16, n), np.float32)
    for j in range(nb):
        for h in range(2):
            xa = xt[4 * j + 2 * h]
            xb = xt[4 * j + 2 * h + 1]
            for q in range(16):
                tq = t[j, h, q]
                for i in range(n):
                    va = xa[i]
                    vb = xb[i]
                    tq[i] = (((va if (q & 1) != 0 else z) - (va if (q & 2) != 0 else z))
                             + ((vb if (q & 4) != 0 else z) - (vb if (q & 8) != 0 else z)))
    return t


@kernel
def layer_forward_batch(packed, cols, x, scales, chunk, out):
    """``out[i] = layer_forward(x[i])`` for every row ``i`` of ``x``, bit for bit.

    ``x`` is ``(batch, cols)``, ``out`` is ``(batch, rows)``. The batch is
    processed in chunks of ``chunk`` inputs: for each chunk the signed sums
    of every column pair are tabulated (:func:`pair_tables`), so each packed
    byte costs two table reads and two additions per input, shared decode
    and no multiplications. Rows are processed in blocks that reuse the
    tables while they are in cache; lanes and their order are those of
    :func:`layer_forward`, hence the results are identical.
    """
    rows = packed.shape[0]
    nb = packed.shape[1]
    batch = x.shape[0]
    z = F_ZERO
    for c0 in range(0, batch, chunk):
        n = min(chunk, batch - c0)
        t = pair_tables(x[c0:c0 + n], cols, nb)
        lane = np.zeros((ROW_BLOCK, n), np.float32)
        tot = np.zeros((ROW_BLOCK, n), np.float32)
        for r0 in range(0, rows, ROW_BLOCK):
            rb = min(ROW_BLOCK, rows - r0)
            tot[:] = z
            for l in range(LANES):
                lane[:] = z
                for j in range(l, nb, LANES):
                    tj = t[j]
                    for rr in range(rb):
                        b = np.int32(packed[r0 + rr, j])
                        lo = tj[0, b & 15]
                        hi = tj[1, b >> 4]
                        a = lane[rr]
                        for i in range(n):
                            a[i] += lo[i] + hi[i]
                for rr in range(rb):
                    a = lane[rr]
                    s = tot[rr]
                    for i in range(n):
                        s[i] += a[i]
            for rr in range(rb):
                s = tot[rr]
                sc = scales[r0 + rr]
                for i in range(n):
                    out[c0 + i, r0 + rr] = s[i] * sc


# ---------------------------------------------------------------------------
# transitions (weights as int8 in {-1, 0, 1})
# ---------------------------------------------------------------------------

@kernel
def strengthen(w):
    """One step up: -1 -> 0 -> +1, +1 stays."""
    if w < 1:
        return np.int8(w + 1)
    return np.int8(1)


@kernel
def weaken(w):
    """One step down: +1 -> 0 -> -1, -1 stays."""
    if w > -1:
        return np.int8(w - 1)
    return np.int8(-1)


@kernel
def flip(w):
    """Sign swap: +1 <-> -1, 0 stays."""
    return np.int8(-w)


@kernel
def move_toward(current, target):
    """One step from ``current`` toward ``target`` (no move when equal)."""
    if target > current:
        return strengthen(current)
    if target < current:
        return weaken(current)
    return np.int8(current)


@kernel
def decay_toward_zero(w):
    """The reference's decay: every weight becomes 0."""
    return np.int8(0)


@kernel
def ternary_update(policy, lr_mag, current, observed, confidence):
    """New weight after observing ``observed`` with float32 ``confidence``.

    ``policy``: 0 STDP, 1 Replace, 2 EMA, 3 Bayesian, 4 WTA (other values
    leave ``current``). ``lr_mag`` is the learning-rate magnitude 0-255; EMA
    compares ``confidence`` with ``lr_mag / 255`` in float32.
    """
    conf = np.float32(confidence)
    if policy == POLICY_STDP:
        if current == observed:
            if conf > CONF_HIGH:
                return strengthen(current)
            return np.int8(current)
        if conf > CONF_MID:
            return move_toward(current, observed)
        return decay_toward_zero(current)
    if policy == POLICY_REPLACE or policy == POLICY_WTA:
        if conf > CONF_MID:
            return np.int8(observed)
        return np.int8(current)
    if policy == POLICY_EMA:
        if current != observed and conf > magnitude_f32(np.uint8(lr_mag)):
            return np.int8(observed)
        return np.int8(current)
    if policy == POLICY_BAYESIAN:
        if conf > CONF_HIGH:
            return np.int8(observed)
        if conf > CONF_LOW:
            return decay_toward_zero(current)
        return np.int8(current)
    return np.int8(current)


@kernel
def ternary_stdp(current, pre_fired, post_fired, dt_ms):
    """Spike-timing transition: both fired and ``dt > 0`` strengthens,
    ``dt < 0`` weakens, ``dt == 0`` lifts -1 to 0; otherwise no change."""
    if pre_fired and post_fired:
        if dt_ms > 0:
            return strengthen(current)
        if dt_ms < 0:
            return weaken(current)
        if current == -1:
            return np.int8(0)
    return np.int8(current)


@kernel
def majority_vote(weights):
    """+1 if more +1 than -1 votes, -1 if more -1, else 0."""
    pos = 0
    neg = 0
    for i in range(weights.shape[0]):
        w = weights[i]
        if w == 1:
            pos += 1
        elif w == -1:
            neg += 1
    if pos > neg:
        return np.int8(1)
    if neg > pos:
        return np.int8(-1)
    return np.int8(0)


# vectorised versions -------------------------------------------------------

@kernel
def strengthen_vec(w, out):
    """Element-wise :func:`strengthen`."""
    for i in range(w.shape[0]):
        out[i] = strengthen(w[i])


@kernel
def weaken_vec(w, out):
    """Element-wise :func:`weaken`."""
    for i in range(w.shape[0]):
        out[i] = weaken(w[i])


@kernel
def flip_vec(w, out):
    """Element-wise :func:`flip`."""
    for i in range(w.shape[0]):
        out[i] = flip(w[i])


@kernel
def decay_toward_zero_vec(w, out):
    """Element-wise :func:`decay_toward_zero`."""
    for i in range(w.shape[0]):
        out[i] = decay_toward_zero(w[i])


@kernel
def prune_mask_vec(w, out):
    """``out[i]`` is True where ``w[i]`` is 0 (the prunable weights)."""
    for i in range(w.shape[0]):
        out[i] = w[i] == 0


@kernel
def ternary_update_vec(policy, lr_mag, current, observed, confidence, out):
    """Element-wise :func:`ternary_update` over equal-length arrays."""
    for i in range(current.shape[0]):
        out[i] = ternary_update(policy, lr_mag, current[i], observed[i], confidence[i])


@kernel
def ternary_stdp_vec(current, pre_fired, post_fired, dt_ms, out):
    """Element-wise :func:`ternary_stdp` over equal-length arrays."""
    for i in range(current.shape[0]):
        out[i] = ternary_stdp(current[i], pre_fired[i], post_fired[i], dt_ms[i])


@kernel
def majority_vote_columns(weights, out):
    """:func:`majority_vote` of every column of a ``(voters, n)`` int8 matrix."""
    voters = weights.shape[0]
    n = weights.shape[1]
    pos = np.zeros(n, np.int64)
    neg = np.zeros(n, np.int64)
    for v in range(voters):
        for i in range(n):
            w = weights[v, i]
            if w == 1:
                pos[i] += 1
            elif w == -1:
                neg[i] += 1
    for i in range(n):
        if pos[i] > neg[i]:
            out[i] = 1
        elif neg[i] > pos[i]:
            out[i] = -1
        else:
            out[i] = 0
