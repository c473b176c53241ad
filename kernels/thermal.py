"""Thermal-layer kernels over the columnar entry table.

The table (see ``thermogram.store``) is a set of parallel columns, one row
per (key, layer) entry: ``layer`` (0 hot, 1 warm, 2 cool, 3 cold, 255 free),
``kid`` (key id), ``pol``/``mag`` (strength), ``count`` (update count),
``ts`` (updated_at, ns), ``voff``/``vlen`` (value slice in the values buffer),
and ``slot[kid, layer]`` -> row or -1. Kernels change these in place and
push freed rows on ``free_stack``; they return the new free-stack size.
"""
from __future__ import annotations

import numpy as np

from ._jit import kernel
from .signal import merge_30_70_scalar, sat_u8, scaled_scalar, magnitude_f32

FREE = 255
HOT, WARM, COOL, COLD = 0, 1, 2, 3
U64_MAX = np.uint64(0xFFFFFFFFFFFFFFFF)


@kernel
def sat_add_u64(a, b):
    """Saturating uint64 addition (update counts never wrap)."""
    s = np.uint64(a) + np.uint64(b)
    if s < np.uint64(a):
        return U64_MAX
    return s


@kernel(inline=True)
def free_row(r, layer, kid, slot, free_stack, n_free):
    """Release row ``r``: clear its slot, mark it free, push it; returns new n_free."""
    slot[kid[r], layer[r]] = -1
    layer[r] = FREE
    free_stack[n_free] = r
    return n_free + 1


@kernel(inline=True)
def _layer_select(lay, v0, v1, v2, v3, other):
    """``v0``..``v3`` for layers hot..cold, ``other`` for any other layer byte. Independent
    selects, not a chain of conditionals: a chain compiles to branches on some CPUs
    (mispredicted on mixed layers) where selects keep the loops vectorised."""
    v = other
    v = v3 if lay == 3 else v
    v = v2 if lay == 2 else v
    v = v1 if lay == 1 else v
    return v0 if lay == 0 else v


@kernel(inline=True)
def _layer_pick(lay, v0, v1, v2, v3, other):
    """:func:`_layer_select` for uint8 values, as the OR of each value masked by its layer's
    0/1 flag (each product is truncated back to uint8, so the loop runs on byte lanes). For
    uint8 bounds some compilers (LLVM for Zen 4) fold even the select chain into a jump table
    on the layer byte: an indirect branch per row (~6 ns, mispredicted on mixed layers) and
    no vectorising. Masks leave nothing to fold: ~0.06 ns a row there."""
    return (np.uint8(np.uint8(lay == 0) * v0) | np.uint8(np.uint8(lay == 1) * v1)
            | np.uint8(np.uint8(lay == 2) * v2) | np.uint8(np.uint8(lay == 3) * v3)
            | np.uint8(np.uint8(lay > 3) * other))


@kernel
def decay_all(layer, pol, mag, retention):
    """Per-layer decay: ``mag = trunc(mag * retention[layer])`` (float32); 0 -> polarity 0.

    Same result as :func:`scaled_scalar` for retentions in [0, 1] (always the case:
    ``1 - rate/255``), written without branches so the loop vectorises.
    """
    r0, r1, r2, r3 = retention[0], retention[1], retention[2], retention[3]
    for r in range(layer.shape[0]):
        lay = layer[r]
        f = _layer_select(lay, r0, r1, r2, r3, np.float32(1.0))
        m = np.uint8(np.int32(np.float32(mag[r]) * f))
        mag[r] = m
        pol[r] = pol[r] * np.int8((m != 0) | (lay > 3))


@kernel(inline=True)
def promote_into(r, e, pol, mag, count, ts, voff, vlen):
    """Fold row ``r`` into existing row ``e`` (30% old + 70% new; value, time from r)."""
    p, m = merge_30_70_scalar(pol[e], mag[e], pol[r], mag[r])
    pol[e] = p
    mag[e] = m
    voff[e] = voff[r]
    vlen[e] = vlen[r]
    ts[e] = ts[r]
    count[e] = sat_add_u64(count[e], count[r])


@kernel
def move_or_merge(r, frm, to, layer, kid, pol, mag, count, ts, voff, vlen, slot, free_stack, n_free):
    """Move row ``r`` from layer ``frm`` to ``to``; if the key already has a copy
    there, fold ``r`` into it (:func:`promote_into`) and free ``r``.

    Returns ``(merged?, n_free)``.
    """
    k = kid[r]
    e = slot[k, to]
    if e < 0:
        slot[k, frm] = -1
        layer[r] = to
        slot[k, to] = r
        return False, n_free
    promote_into(r, e, pol, mag, count, ts, voff, vlen)
    return True, free_row(r, layer, kid, slot, free_stack, n_free)


@kernel
def sort_tail(a, start, end):
    """Sort ``a[start:end]`` in place (ascending) unless it already is."""
    for i in range(start + 1, end):
        if a[i] < a[i - 1]:
            a[start:end] = np.sort(a[start:end])
            return


@kernel
def prune_below(threshold, only_layer, layer, kid, mag, slot, free_stack, n_free):
    """Free rows whose ``mag < threshold``; ``only_layer`` < 0 means every layer.

    Returns ``(number pruned, n_free)``. A branch-free pass flags each block of 64 rows
    holding one to prune (it vectorises); only flagged blocks are walked row by row.
    """
    pruned = 0
    n = layer.shape[0]
    nblk = n // 64
    anyl = only_layer < 0
    ol = np.uint8(only_layer & 255)
    for b in range(nblk + 1):
        base = b * 64
        end = min(base + 64, n)
        if b < nblk:
            acc = np.uint8(0)
            for i in range(64):
                lay = layer[base + i]
                acc |= np.uint8((lay < 4) & (anyl | (lay == ol)) & (mag[base + i] < threshold))
            if acc == 0:
                continue
        for r in range(base, end):
            lay = layer[r]
            if lay < 4 and (only_layer < 0 or lay == only_layer) and mag[r] < threshold:
                n_free = free_row(r, layer, kid, slot, free_stack, n_free)
                pruned += 1
    return pruned, n_free

@kernel
def transition_limits(promo_thr, min_obs, demo_thr, allow_demote, prune_thr):
    """Per layer (hot..cold), the bounds outside which a row takes part in a transition step:
    ``(lo, hi, obs)``, int32, int32, uint64. A row of layer ``l`` can move or be pruned in
    :func:`run_transitions` only if ``mag < lo[l]`` (demotion where allowed, or pruning) or
    ``mag >= hi[l] and count >= obs[l]`` (promotion; ``hi = 256`` for cold: never)."""
    lo = np.empty(4, np.int32)
    hi = np.empty(4, np.int32)
    obs = np.empty(4, np.uint64)
    for lay in range(4):
        d = np.int32(prune_thr)
        if lay > 0 and allow_demote[lay] and np.int32(demo_thr[lay]) > d:
            d = np.int32(demo_thr[lay])
        lo[lay] = d
        hi[lay] = np.int32(promo_thr[lay]) if lay < 3 else np.int32(256)
        obs[lay] = min_obs[lay]
    return lo, hi, obs


@kernel(inline=True)
def _due(r, layer, mag, count, lo, hi, obs):
    """Whether row ``r`` is live and outside its layer's :func:`transition_limits`."""
    lay = layer[r]
    i = lay & 3
    m = np.int32(mag[r])
    return (lay < 4) & ((m < lo[i]) | ((m >= hi[i]) & (count[r] >= obs[i])))


@kernel
def _block_flags(layer, mag, lo0, lo1, lo2, lo3, hi0, hi1, hi2, out):
    """``out[b]`` != 0 where rows ``64b .. 64b+63`` hold one with a magnitude outside its
    layer's bounds (see :func:`transition_candidates`). Selects only: it vectorises."""
    zero = np.uint8(0)
    for b in range(out.shape[0]):
        base = b * 64
        acc = zero
        for i in range(64):
            lay = layer[base + i]
            m = mag[base + i]
            t = _layer_pick(lay, lo0, lo1, lo2, lo3, zero)
            up = ((lay == 0) & (m >= hi0)) | ((lay == 1) & (m >= hi1)) | ((lay == 2) & (m >= hi2))
            acc |= np.uint8(m < t) | np.uint8(up)
        out[b] = acc


@kernel
def due_rows(promo_thr, min_obs, demo_thr, allow_demote, prune_thr, layer, mag, count):
    """The live rows outside their layer's :func:`transition_limits`, ascending: the rows
    some step of :func:`run_transitions` acts on in the table as it is.

    One pass over the magnitudes (vectorised), then work on the rows it flags.
    """
    lo, hi, obs = transition_limits(promo_thr, min_obs, demo_thr, allow_demote, prune_thr)
    n = layer.shape[0]
    # Thresholds as uint8 scalars (cold's hi of 256 is "never"), so the loops over every
    # row read two uint8 columns with selects only and vectorise. They test the magnitude
    # bounds only (a superset of the due rows); counts are checked for the rows they flag.
    lo0, lo1, lo2, lo3 = np.uint8(lo[0]), np.uint8(lo[1]), np.uint8(lo[2]), np.uint8(lo[3])
    hi0, hi1, hi2 = np.uint8(hi[0]), np.uint8(hi[1]), np.uint8(hi[2])
    zero = np.uint8(0)
    one = np.uint8(1)
    rows = np.empty(n, np.int64)
    nc = 0
    # one flag per 64 rows; where few are set (a settled table), only the rows of those
    # blocks (and of the last, partial block) are looked at
    nblk = n // 64
    blocks = np.empty(nblk, np.uint8)
    _block_flags(layer, mag, lo0, lo1, lo2, lo3, hi0, hi1, hi2, blocks)
    nset = 0
    for b in range(nblk):
        nset += np.int64(blocks[b] != zero)
    if nset * 4 <= nblk:
        for b in range(nblk + 1):
            if b < nblk and blocks[b] == zero:
                continue
            base = b * 64
            for r in range(base, min(base + 64, n)):
                rows[nc] = r
                nc += np.int64(_due(r, layer, mag, count, lo, hi, obs))
        return rows[:nc]
    # many due rows: a flag for every row, then two branch-free passes
    flags = np.empty(n, np.uint8)
    o0, o1, o2 = obs[0], obs[1], obs[2]
    for r in range(n):
        lay = layer[r]
        m = mag[r]
        t = _layer_pick(lay, lo0, lo1, lo2, lo3, zero)
        up = ((lay == 0) & (m >= hi0)) | ((lay == 1) & (m >= hi1)) | ((lay == 2) & (m >= hi2))
        flags[r] = np.uint8(m < t) | (np.uint8(up) << one)
    for r in range(n):
        f = flags[r]
        lay = layer[r]
        o = o2
        o = o1 if lay == 1 else o
        o = o0 if lay == 0 else o
        flags[r] = (f & one) | ((f >> one) & np.uint8(count[r] >= o))
    for r in range(n):
        rows[nc] = r
        nc += np.int64(flags[r])
    return rows[:nc]


@kernel
def cascade_keys(due, promo_thr, min_obs, demo_thr, allow_demote, prune_thr, now, layer, kid, pol,
                 mag, count, ts, voff, vlen, slot, free_stack, n_free, out):
    """The steps of :func:`run_transitions` for the keys of the rows ``due`` (in any
    order, repeats allowed), one key at a time, each key once.

    Every step acts on one row per key at most (a key has one row per layer) and only on
    rows of that key, so running all seven steps for one key, then the next, changes the
    same rows in the same way as running each step over every row. What differs is the
    order in which freed rows are found; they are pushed on ``free_stack`` grouped by
    step and ascending within a step, as the step-by-step scans push them.
    ``out`` (7, zeroed by the caller) is incremented; returns the new n_free.
    """
    nd = due.shape[0]
    freed = np.empty(4 * nd, np.int64)  # at most four rows per key
    step = np.empty(4 * nd, np.uint8)
    nf = 0
    done = np.zeros((slot.shape[0] + 63) // 64, np.uint64)
    for i in range(nd):
        k = kid[due[i]]
        word = k >> 6
        bit = np.uint64(1) << np.uint64(k & 63)
        if done[word] & bit:
            continue
        done[word] |= bit
        for frm in range(3):  # promotions: move_or_merge
            r = slot[k, frm]
            if r >= 0 and mag[r] >= promo_thr[frm] and count[r] >= min_obs[frm]:
                out[frm] += 1
                to = frm + 1
                e = slot[k, to]
                slot[k, frm] = -1
                if e < 0:
                    layer[r] = to
                    slot[k, to] = r
                else:  # r folds into e and is freed
                    promote_into(r, e, pol, mag, count, ts, voff, vlen)
                    layer[r] = FREE
                    freed[nf] = r
                    step[nf] = frm
                    nf += 1
        for j in range(3):  # demotions: cold->cool, cool->warm, warm->hot
            frm = 3 - j
            if not allow_demote[frm]:
                continue
            r = slot[k, frm]
            if r >= 0 and mag[r] < demo_thr[frm]:
                out[3 + j] += 1
                to = frm - 1
                p, m = scaled_scalar(pol[r], mag[r], np.float32(0.95))
                if m == 0:
                    p = np.int8(1)
                    m = np.uint8(1)
                e = slot[k, to]
                slot[k, frm] = -1
                if e < 0:
                    layer[r] = to
                    slot[k, to] = r
                    pol[r] = p
                    mag[r] = m
                    ts[r] = now
                else:
                    if m > mag[e]:
                        pol[e] = p
                        mag[e] = m
                    ts[e] = now
                    layer[r] = FREE
                    freed[nf] = r
                    step[nf] = 3 + j
                    nf += 1
        for lay in range(4):  # pruning
            r = slot[k, lay]
            if r >= 0 and mag[r] < prune_thr:
                out[6] += 1
                slot[k, lay] = -1
                layer[r] = FREE
                freed[nf] = r
                step[nf] = 6
                nf += 1
    # the freed rows, grouped by step (a counting sort), ascending within each step
    start = np.zeros(8, np.int64)
    for i in range(nf):
        start[step[i] + 1] += 1
    start[0] = n_free
    for s in range(1, 8):
        start[s] += start[s - 1]
    pos = start.copy()
    for i in range(nf):
        s = step[i]
        free_stack[pos[s]] = freed[i]
        pos[s] += 1
    for s in range(7):
        sort_tail(free_stack, start[s], start[s + 1])
    return n_free + nf


@kernel
def run_transitions(promo_thr, min_obs, demo_thr, allow_demote, prune_thr, now,
                    layer, kid, pol, mag, count, ts, voff, vlen, slot, free_stack, n_free, out):
    """The four-temperature step: promote hot->warm->cool->cold, demote
    cold->cool->warm->hot (where allowed), then prune every layer.

    Same result as six scans of every row in row order and a pruning scan (freed rows
    pushed on ``free_stack`` in that order), but only the keys with a :func:`due_rows`
    row are visited (:func:`cascade_keys`): a key with none is left unchanged by every
    step. ``out`` receives ``[promoted x3, demoted x3 (cold, cool, warm), pruned]``.
    Returns the new n_free.
    """
    for i in range(7):
        out[i] = 0
    due = due_rows(promo_thr, min_obs, demo_thr, allow_demote, prune_thr, layer, mag, count)
    return cascade_keys(due, promo_thr, min_obs, demo_thr, allow_demote, prune_thr, now, layer, kid,
                        pol, mag, count, ts, voff, vlen, slot, free_stack, n_free, out)


@kernel
def due_among(cands, promo_thr, min_obs, demo_thr, allow_demote, prune_thr, layer, mag, count):
    """The rows of ``cands`` (any order; repeats and rows past the table allowed) that are
    live and outside their layer's :func:`transition_limits`, in the order given.

    Where every due row of the table is in ``cands``, these are :func:`due_rows`'s rows
    (perhaps repeated, in another order: :func:`cascade_keys` gives the same result for
    any order and visits a key once), found at the cost of the candidates alone.
    """
    lo, hi, obs = transition_limits(promo_thr, min_obs, demo_thr, allow_demote, prune_thr)
    n = layer.shape[0]
    out = np.empty(cands.shape[0], np.int64)
    m = 0
    for i in range(cands.shape[0]):
        r = cands[i]
        if r < 0 or r >= n:
            continue
        out[m] = r
        m += np.int64(_due(r, layer, mag, count, lo, hi, obs))
    return out[:m]


@kernel
def keys_of_rows(rows, kid):
    """``kid[rows]`` as int64 (read before the rows are moved or freed)."""
    ks = np.empty(rows.shape[0], np.int64)
    for i in range(rows.shape[0]):
        ks[i] = kid[rows[i]]
    return ks


@kernel
def live_rows_of(ks, slot):
    """Every live row (any layer) of the keys ``ks`` (repeats allowed: each key once)."""
    out = np.empty(4 * ks.shape[0], np.int64)
    done = np.zeros((slot.shape[0] + 63) // 64, np.uint64)
    m = 0
    for i in range(ks.shape[0]):
        k = ks[i]
        if k < 0 or k >= slot.shape[0]:
            continue
        word = k >> 6
        bit = np.uint64(1) << np.uint64(k & 63)
        if done[word] & bit:
            continue
        done[word] |= bit
        for lay in range(4):
            r = slot[k, lay]
            if r >= 0:
                out[m] = r
                m += 1
    return out[:m]


@kernel
def run_transitions_tracked(cands, full, max_changed, promo_thr, min_obs, demo_thr, allow_demote, prune_thr,
                            now, layer, kid, pol, mag, count, ts, voff, vlen, slot, free_stack, n_free, out):
    """:func:`run_transitions`, with the due rows looked for among ``cands`` only unless
    ``full``, and the rows it may have changed returned.

    The caller keeps the invariant that makes the two searches equal: every due row of the
    table is in ``cands`` (the rows written since the last run under the same thresholds,
    and the rows that run changed). Returns ``(n_free, changed, keys, complete)``: ``keys``
    are the keys the run visited (repeats possible), the only ones whose rows it can have
    written, and ``changed`` the live rows of those keys that are still due (only a strange
    config leaves any: they are the next run's candidates). Past ``max_changed`` due rows
    or changed rows, neither list is built (a list that long would not be kept: scanning
    every row is cheaper than visiting that many scattered ones) and ``complete`` is False.
    """
    for i in range(7):
        out[i] = 0
    if full:
        due = due_rows(promo_thr, min_obs, demo_thr, allow_demote, prune_thr, layer, mag, count)
    else:
        due = due_among(cands, promo_thr, min_obs, demo_thr, allow_demote, prune_thr, layer, mag, count)
    none = np.empty(0, np.int64)
    if due.shape[0] > max_changed:
        n_free = cascade_keys(due, promo_thr, min_obs, demo_thr, allow_demote, prune_thr, now, layer, kid,
                              pol, mag, count, ts, voff, vlen, slot, free_stack, n_free, out)
        return n_free, none, none, False
    ks = keys_of_rows(due, kid)
    n_free = cascade_keys(due, promo_thr, min_obs, demo_thr, allow_demote, prune_thr, now, layer, kid,
                          pol, mag, count, ts, voff, vlen, slot, free_stack, n_free, out)
    # of the rows the run wrote, only those still due stay candidates (none, with sane
    # thresholds): a row's due-ness depends on its own columns alone
    changed = due_among(live_rows_of(ks, slot), promo_thr, min_obs, demo_thr, allow_demote, prune_thr,
                        layer, mag, count)
    if changed.shape[0] > max_changed:
        return n_free, none, none, False
    return n_free, changed, ks, True


@kernel
def crystallize_hot(threshold, min_obs, layer, kid, pol, mag, count, ts, voff, vlen, slot,
                    free_stack, n_free):
    """Hot rows with ``mag >= threshold`` and ``count >= min_obs`` go straight to cold
    (merged 30/70 into an existing cold copy).

    Returns ``(crystallized, merged, n_free)``.
    """
    crystallized = 0
    merged = 0
    for r in range(layer.shape[0]):
        if layer[r] == HOT and mag[r] >= threshold and count[r] >= min_obs:
            was_merged, n_free = move_or_merge(r, HOT, COLD, layer, kid, pol, mag, count, ts, voff, vlen,
                                               slot, free_stack, n_free)
            if was_merged:
                merged += 1
            else:
                crystallized += 1
    return crystallized, merged, n_free


@kernel
def warm_kids(kids, warming_mag, now, layer, kid, pol, mag, ts, slot, free_stack, n_free):
    """Bring the cold copy of each key in ``kids`` to hot, paying the warming cost:
    ``mag = max(1, trunc(mag * (1 - warming/255 * 0.1)))``, polarity kept,
    ``ts = now``. A hot copy already there is replaced.

    Returns ``(number warmed, n_free)``.
    """
    cost = magnitude_f32(warming_mag) * np.float32(0.1)
    keep = np.float32(1.0) - cost
    warmed = 0
    for i in range(kids.shape[0]):
        k = kids[i]
        r = slot[k, COLD]
        if r < 0:
            continue
        m = sat_u8(np.float32(mag[r]) * keep)
        if m < 1:
            m = np.uint8(1)
        mag[r] = m
        ts[r] = now
        h = slot[k, HOT]
        if h >= 0:
            n_free = free_row(h, layer, kid, slot, free_stack, n_free)
        slot[k, COLD] = -1
        layer[r] = HOT
        slot[k, HOT] = r
        warmed += 1
    return warmed, n_free


@kernel
def layer_counts(layer, out):
    """``out[l]`` = number of rows in layer ``l`` (0..3). Branch-free: it vectorises."""
    c0 = c1 = c2 = c3 = np.int64(0)
    for r in range(layer.shape[0]):
        lay = layer[r]
        c0 += np.int64(lay == 0)
        c1 += np.int64(lay == 1)
        c2 += np.int64(lay == 2)
        c3 += np.int64(lay == 3)
    out[0], out[1], out[2], out[3] = c0, c1, c2, c3

@kernel(inline=True)
def _store_hottest(k, slot, voff, vlen, outv):
    """``outv[k]`` = ``(voff, vlen)`` of key ``k``'s hottest copy (or ``(-1, -1)``); the
    first live slot is picked with selects, not branches."""
    s0, s1, s2, s3 = slot[k, 0], slot[k, 1], slot[k, 2], slot[k, 3]
    r = s3
    r = s2 if s2 >= 0 else r
    r = s1 if s1 >= 0 else r
    r = s0 if s0 >= 0 else r
    if r >= 0:
        outv[k, 0] = voff[r]
        outv[k, 1] = vlen[r]
    else:
        outv[k, 0] = -1
        outv[k, 1] = -1


@kernel
def hottest_of_keys(ks, slot, voff, vlen, outv):
    """:func:`hottest_rows` for the keys ``ks`` only (repeats allowed)."""
    for i in range(ks.shape[0]):
        _store_hottest(ks[i], slot, voff, vlen, outv)


@kernel
def hottest_rows(slot, voff, vlen, outv):
    """``outv[k]`` = ``(voff, vlen)`` of key ``k``'s hottest copy (or ``(-1, -1)``)."""
    for k in range(slot.shape[0]):
        _store_hottest(k, slot, voff, vlen, outv)
