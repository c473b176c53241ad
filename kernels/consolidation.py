"""Consolidation kernel: fold pending deltas into the hot layer.

Pending deltas are columns (``p_kid``, ``p_type``, ``p_pol``, ``p_mag``,
``p_ts``, ``p_voff``, ``p_vlen`` into the entry table's value arena). The entry
table is the one described in :mod:`thermal`. The caller guarantees capacity
for new rows as :func:`plan_fold` computes it.
"""
from __future__ import annotations

import numpy as np

from ._jit import kernel
from .plasticity import apply_update_scalar
from .thermal import (free_row, hottest_of_keys, layer_counts, prune_below,
                      run_transitions_tracked, sat_add_u64)

CREATE, UPDATE, DELETE, MERGE = 0, 1, 2, 3
NS = 1_000_000_000


@kernel
def whole_seconds(delta_ns):
    """Whole seconds of a signed ns interval, truncated toward zero (chrono's num_seconds)."""
    if delta_ns >= 0:
        return delta_ns // NS
    return -((-delta_ns) // NS)


@kernel
def plan_fold(p_kid, p_type, slot, seen):
    """Before folding: a safe upper bound on the new rows the fold needs — one per key
    without a hot entry now (rows freed by deletes go on the free stack and are
    reused), plus one per delete. ``seen`` is scratch space (one per key id), left zeroed.
    """
    n = p_kid.shape[0]
    rows = 0
    for i in range(n):
        k = p_kid[i]
        if p_type[i] == DELETE:
            rows += 1
        elif seen[k] == 0 and slot[k, 0] < 0:
            rows += 1
            seen[k] = 1
    for i in range(n):
        seen[p_kid[i]] = 0
    return rows


@kernel(inline=True)
def _alloc(nrows, free_stack, n_free):
    """A row for a new entry: the last freed row if any, else row ``nrows``.

    Returns ``(row, new nrows, new n_free)``; raises IndexError when there is no free row
    and ``nrows`` has reached the table's capacity.
    """
    if n_free == 0 and nrows >= free_stack.shape[0]:
        raise IndexError("entry table too small (capacity planning bug)")
    if n_free > 0:
        n_free -= 1
        return free_stack[n_free], nrows, n_free
    return nrows, nrows + 1, n_free


@kernel(inline=True)
def fold_strength(dst, src_ts, new_pol, new_mag, policy, decay_mag, lr_mag, pol, mag, ts):
    """Strength of row ``dst`` after observing ``(new_pol, new_mag)`` at ``src_ts``
    (elapsed whole seconds since ``ts[dst]``, by the plasticity rule)."""
    dt = np.float64(whole_seconds(src_ts - ts[dst]))
    return apply_update_scalar(policy, decay_mag, lr_mag, pol[dst], mag[dst], new_pol, new_mag, dt)


@kernel
def fold_pending(p_kid, p_type, p_pol, p_mag, p_ts, p_voff, p_vlen,
                 policy, decay_mag, lr_mag, fixed,
                 layer, kid, pol, mag, count, ts, voff, vlen, slot,
                 nrows, free_stack, n_free, stats):
    """Fold every pending delta, in order, into the hot layer.

    Create/Update on an existing hot entry: strength by the rule (time
    since its ``ts`` in whole seconds), value and ts replaced, count + 1;
    else a new hot entry (count 1). Delete: frees the hot entry, or with
    ``fixed`` every layer's. Merge on a hot entry: strength by the rule, value
    kept, count + 1. Merge on a key with no hot entry: dropped, or with
    ``fixed`` a new hot entry — keeping the value of the key's hottest colder
    copy (strength by the rule from it) or, for an unknown key, the delta's.

    Pending values already live in the entry table's value arena (``p_voff``,
    ``p_vlen`` index it), and values are never rewritten, so giving an entry a
    value only points it at those signals: nothing is copied.

    ``stats`` gets ``[merged, created, deleted, updated]``.
    Returns ``(nrows, n_free)``.
    """
    for i in range(p_kid.shape[0]):
        k = p_kid[i]
        t = p_type[i]
        h = slot[k, 0]
        if t == CREATE or t == UPDATE:
            if h >= 0:
                pol[h], mag[h] = fold_strength(h, p_ts[i], p_pol[i], p_mag[i], policy, decay_mag, lr_mag,
                                               pol, mag, ts)
                voff[h] = p_voff[i]
                vlen[h] = p_vlen[i]
                ts[h] = p_ts[i]
                count[h] = sat_add_u64(count[h], 1)
                stats[3] += 1
            else:
                r, nrows, n_free = _alloc(nrows, free_stack, n_free)
                layer[r] = 0
                kid[r] = k
                pol[r] = p_pol[i]
                mag[r] = p_mag[i]
                count[r] = 1
                ts[r] = p_ts[i]
                voff[r] = p_voff[i]
                vlen[r] = p_vlen[i]
                slot[k, 0] = r
                stats[1] += 1
        elif t == DELETE:
            if fixed:
                for lay in range(4):
                    r = slot[k, lay]
                    if r >= 0:
                        n_free = free_row(r, layer, kid, slot, free_stack, n_free)
                        stats[2] += 1
            elif h >= 0:
                n_free = free_row(h, layer, kid, slot, free_stack, n_free)
                stats[2] += 1
        else:  # MERGE
            if h >= 0:
                pol[h], mag[h] = fold_strength(h, p_ts[i], p_pol[i], p_mag[i], policy, decay_mag, lr_mag,
                                               pol, mag, ts)
                ts[h] = p_ts[i]
                count[h] = sat_add_u64(count[h], 1)
                stats[0] += 1
            elif fixed:
                c = -1
                for lay in range(1, 4):
                    if slot[k, lay] >= 0:
                        c = slot[k, lay]
                        break
                r, nrows, n_free = _alloc(nrows, free_stack, n_free)
                layer[r] = 0
                kid[r] = k
                ts[r] = p_ts[i]
                if c >= 0:
                    pol[r], mag[r] = fold_strength(c, p_ts[i], p_pol[i], p_mag[i], policy, decay_mag, lr_mag,
                                                   pol, mag, ts)
                    count[r] = sat_add_u64(count[c], 1)
                    voff[r] = voff[c]
                    vlen[r] = vlen[c]
                    stats[0] += 1
                else:
                    pol[r] = p_pol[i]
                    mag[r] = p_mag[i]
                    count[r] = 1
                    voff[r] = p_voff[i]
                    vlen[r] = p_vlen[i]
                    stats[1] += 1
                slot[k, 0] = r
    return nrows, n_free


@kernel
def consolidate_pending(p_kid, p_type, p_pol, p_mag, p_ts, p_voff, p_vlen,
                        policy, decay_mag, lr_mag, fixed, hot_prune_thr,
                        transitions, promo_thr, min_obs, demo_thr, allow_demote, prune_thr, now,
                        cands, full, track, max_changed,
                        layer, kid, pol, mag, count, ts, voff, vlen, slot, nrows, free_stack, n_free,
                        hotv, update_hotv, stats):
    """A consolidation's work on the table in one call: :func:`fold_pending`, then
    :func:`~thermal.prune_below` of the hot layer (if ``hot_prune_thr`` >= 0), then
    :func:`~thermal.layer_counts`, then (if ``transitions``)
    :func:`~thermal.run_transitions_tracked` — the same calls, in the same order, as
    making them one by one.

    ``cands``: the transition candidates so far; with ``track`` the hot rows of the folded
    keys join them. ``update_hotv``: recompute ``hotv`` (see
    :func:`~thermal.hottest_of_keys`) for every key whose rows were written or freed.
    The caller guarantees room for the fold's new rows (:func:`plan_fold`).

    ``stats`` (int64, 16) receives ``[0:4]`` the fold's ``[merged, created, deleted,
    updated]``, ``[4]`` hot rows pruned, ``[5:9]`` rows per layer after the prune, and
    ``[9:16]`` the transitions' counts. Returns ``(nrows, n_free, changed, complete)``:
    with ``track``, the rows the next transitions run must look at (the candidates and
    folded rows, or after transitions the rows they changed); ``complete`` False: the
    transitions moved too many keys (``max_changed``) to list them, or to refresh
    ``hotv`` key by key.
    """
    for i in range(16):
        stats[i] = 0
    nrows, n_free = fold_pending(p_kid, p_type, p_pol, p_mag, p_ts, p_voff, p_vlen,
                                 policy, decay_mag, lr_mag, fixed,
                                 layer, kid, pol, mag, count, ts, voff, vlen, slot,
                                 nrows, free_stack, n_free, stats[:4])
    n_p = p_kid.shape[0] if track else 0
    hot = np.empty(n_p + cands.shape[0], np.int64)
    m = 0
    if track:
        for i in range(cands.shape[0]):
            hot[m] = cands[i]
            m += 1
        for i in range(n_p):
            r = slot[p_kid[i], 0]
            if r >= 0:
                hot[m] = r
                m += 1
    nf0 = n_free
    if hot_prune_thr >= 0:
        pruned, n_free = prune_below(np.uint8(hot_prune_thr), 0, layer[:nrows], kid, mag[:nrows], slot,
                                     free_stack, n_free)
        stats[4] = pruned
    nf1 = n_free
    layer_counts(layer[:nrows], stats[5:9])
    changed = hot[:m]
    ks = np.empty(0, np.int64)
    complete = True
    if transitions:
        n_free, changed, ks, complete = run_transitions_tracked(
            hot[:m], full, max_changed, promo_thr, min_obs, demo_thr, allow_demote, prune_thr, now,
            layer[:nrows], kid[:nrows], pol[:nrows], mag[:nrows], count[:nrows], ts[:nrows],
            voff[:nrows], vlen[:nrows], slot, free_stack, n_free, stats[9:16])
    if update_hotv:
        hottest_of_keys(p_kid, slot, voff, vlen, hotv)
        pk = np.empty(nf1 - nf0, np.int64)  # the keys of the pruned rows
        for j in range(nf0, nf1):
            pk[j - nf0] = kid[free_stack[j]]
        hottest_of_keys(pk, slot, voff, vlen, hotv)
        hottest_of_keys(ks, slot, voff, vlen, hotv)
    return nrows, n_free, changed, complete
