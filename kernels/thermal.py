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


@kernel
def decay_all(layer, pol, mag, retention):
    """Per-layer decay: ``mag = trunc(mag * retention[layer])`` (float32); 0 -> polarity 0.

    Same result as :func:`scaled_scalar` for retentions in [0, 1] (always the case:
    ``1 - rate/255``), written without branches so the loop vectorises.
    """
    r0, r1, r2, r3 = retention[0], retention[1], retention[2], retention[3]
    one = np.float32(1.0)
    for r in range(layer.shape[0]):
        lay = layer[r]
        f = r0 if lay == 0 else (r1 if lay == 1 else (r2 if lay == 2 else (r3 if lay == 3 else one)))
        m = np.uint8(np.int32(np.float32(mag[r]) * f))
        mag[r] = m
        pol[r] = pol[r] if (m != 0 or lay > 3) else np.int8(0)


@kernel
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
def promote_layer(frm, to, threshold, min_obs, layer, kid, pol, mag, count, ts, voff, vlen,
                  slot, free_stack, n_free):
    """Move every row of layer ``frm`` with ``mag >= threshold`` and ``count >= min_obs``
    to layer ``to``, merging into an existing copy there.

    Returns ``(number promoted, n_free)``.
    """
    moved = 0
    for r in range(layer.shape[0]):
        if layer[r] == frm and mag[r] >= threshold and count[r] >= min_obs:
            _, n_free = move_or_merge(r, frm, to, layer, kid, pol, mag, count, ts, voff, vlen, slot,
                                      free_stack, n_free)
            moved += 1
    return moved, n_free


@kernel
def demote_layer(frm, to, threshold, now, layer, kid, pol, mag, count, ts, slot,
                 free_stack, n_free):
    """Move every row of layer ``frm`` with ``mag < threshold`` to layer ``to``.

    Strength is scaled by 0.95 (floor: +1 magnitude 1) and ``ts`` set to
    ``now``. An existing copy in ``to`` keeps its value and count, takes the
    demoted strength if it is larger, and ``ts = now``.
    Returns ``(number demoted, n_free)``.
    """
    moved = 0
    for r in range(layer.shape[0]):
        if layer[r] == frm and mag[r] < threshold:
            p, m = scaled_scalar(pol[r], mag[r], np.float32(0.95))
            if m == 0:
                p = np.int8(1)
                m = np.uint8(1)
            k = kid[r]
            e = slot[k, to]
            if e < 0:
                slot[k, frm] = -1
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
                n_free = free_row(r, layer, kid, slot, free_stack, n_free)
            moved += 1
    return moved, n_free


@kernel
def prune_below(threshold, only_layer, layer, kid, mag, slot, free_stack, n_free):
    """Free rows whose ``mag < threshold``; ``only_layer`` < 0 means every layer.

    Returns ``(number pruned, n_free)``.
    """
    pruned = 0
    for r in range(layer.shape[0]):
        lay = layer[r]
        if lay < 4 and (only_layer < 0 or lay == only_layer) and mag[r] < threshold:
            n_free = free_row(r, layer, kid, slot, free_stack, n_free)
            pruned += 1
    return pruned, n_free


@kernel
def run_transitions(promo_thr, min_obs, demo_thr, allow_demote, prune_thr, now,
                    layer, kid, pol, mag, count, ts, voff, vlen, slot, free_stack, n_free, out):
    """The four-temperature step: promote hot->warm->cool->cold, demote
    cold->cool->warm->hot (where allowed), then prune every layer.

    ``out`` receives ``[promoted x3, demoted x3 (cold, cool, warm), pruned]``.
    Returns the new n_free.
    """
    for frm in range(3):
        c, n_free = promote_layer(frm, frm + 1, promo_thr[frm], min_obs[frm], layer, kid, pol, mag,
                                  count, ts, voff, vlen, slot, free_stack, n_free)
        out[frm] = c
    j = 3
    for frm in range(3, 0, -1):
        if allow_demote[frm]:
            c, n_free = demote_layer(frm, frm - 1, demo_thr[frm], now, layer, kid, pol, mag, count,
                                     ts, slot, free_stack, n_free)
            out[j] = c
        j += 1
    c, n_free = prune_below(prune_thr, -1, layer, kid, mag, slot, free_stack, n_free)
    out[6] = c
    return n_free


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
    """``out[l]`` = number of rows in layer ``l`` (0..3)."""
    for i in range(4):
        out[i] = 0
    for r in range(layer.shape[0]):
        lay = layer[r]
        if lay < 4:
            out[lay] += 1


@kernel
def hottest_rows(slot, voff, vlen, outv):
    """``outv[k]`` = ``(voff, vlen)`` of key ``k``'s hottest copy (or ``(-1, -1)``)."""
    for k in range(slot.shape[0]):
        r = -1
        for lay in range(4):
            if slot[k, lay] >= 0:
                r = slot[k, lay]
                break
        if r >= 0:
            outv[k, 0] = voff[r]
            outv[k, 1] = vlen[r]
        else:
            outv[k, 0] = -1
            outv[k, 1] = -1
