"""Twins of ``kernels/thermal.py`` over dict layers.

``layers`` is a list of four dicts (hot, warm, cool, cold), each
``key -> {"value", "strength": (pol, mag), "count", "ts"}``; a key has at most
one entry per layer, as the kernels' ``slot[kid, layer]`` table allows.
"""
from __future__ import annotations

import numpy as np

from .signal import mag_f32, merge_30_70, sat_u8, scaled

F = np.float32
HOT, WARM, COOL, COLD = 0, 1, 2, 3
U64_MAX = 2**64 - 1


def sat_add_u64(a: int, b: int) -> int:
    """Saturating uint64 addition."""
    return min(int(a) + int(b), U64_MAX)


def decay(layers, retention) -> None:
    """Every entry's strength scaled by its layer's retention (``1 - rate / 255``)."""
    for lay in range(4):
        for e in layers[lay].values():
            e["strength"] = scaled(e["strength"], retention[lay])


def _fold_into(x, e) -> None:
    """Entry ``e`` arrives where ``x`` already is: 30/70 merge, value, time and counts from ``e``."""
    x["strength"] = merge_30_70(x["strength"], e["strength"])
    x["value"] = e["value"]
    x["ts"] = e["ts"]
    x["count"] = sat_add_u64(x["count"], e["count"])


def move_or_merge(layers, key, frm, to) -> bool:
    """Move ``key``'s entry from ``frm`` to ``to``, folding it into a copy there; True if merged."""
    e = layers[frm].pop(key)
    x = layers[to].get(key)
    if x is None:
        layers[to][key] = e
        return False
    _fold_into(x, e)
    return True


def promote(layers, frm, to, threshold, min_obs) -> int:
    """Entries of ``frm`` with magnitude >= threshold and count >= min_obs move to ``to``."""
    keys = [k for k, e in layers[frm].items() if e["strength"][1] >= threshold and e["count"] >= min_obs]
    for k in keys:
        move_or_merge(layers, k, frm, to)
    return len(keys)


def demote(layers, frm, to, threshold, now) -> int:
    """Entries of ``frm`` weaker than threshold move to ``to``: strength x0.95 (floor +1/1), ts = now;
    an existing copy there keeps its value and count, takes the larger strength, ts = now."""
    keys = [k for k, e in layers[frm].items() if e["strength"][1] < threshold]
    for k in keys:
        e = layers[frm].pop(k)
        s = scaled(e["strength"], 0.95)
        if s[1] == 0:
            s = (1, 1)
        e["strength"] = s
        e["ts"] = now
        x = layers[to].get(k)
        if x is None:
            layers[to][k] = e
        else:
            if s[1] > x["strength"][1]:
                x["strength"] = s
            x["ts"] = now
    return len(keys)


def prune(layers, threshold, only_layer=-1) -> int:
    """Drop entries weaker than ``threshold`` (in ``only_layer``, or every layer when < 0)."""
    n = 0
    for lay in range(4):
        if only_layer >= 0 and lay != only_layer:
            continue
        for k in [k for k, e in layers[lay].items() if e["strength"][1] < threshold]:
            del layers[lay][k]
            n += 1
    return n


def transitions(layers, promo_thr, min_obs, demo_thr, allow_demote, prune_thr, now) -> list:
    """Promote hot->warm->cool->cold, demote cold->cool->warm->hot where allowed, prune all.

    Returns ``[promoted x3, demoted x3 (from cold, cool, warm), pruned]``.
    """
    out = [promote(layers, frm, frm + 1, promo_thr[frm], min_obs[frm]) for frm in range(3)]
    for frm in (3, 2, 1):
        out.append(demote(layers, frm, frm - 1, demo_thr[frm], now) if allow_demote[frm] else 0)
    return out + [prune(layers, prune_thr)]


def crystallize(layers, threshold, min_obs) -> tuple:
    """Strong, well-observed hot entries go straight to cold; returns (crystallized, merged)."""
    c = m = 0
    for k in [k for k, e in layers[HOT].items() if e["strength"][1] >= threshold and e["count"] >= min_obs]:
        if move_or_merge(layers, k, HOT, COLD):
            m += 1
        else:
            c += 1
    return c, m


def warm(layers, key, warming_mag, now) -> bool:
    """Bring ``key``'s cold copy to hot (replacing a hot copy), paying the warming cost."""
    if key not in layers[COLD]:
        return False
    e = layers[COLD].pop(key)
    keep = F(1) - mag_f32(warming_mag) * F(0.1)
    m = max(1, sat_u8(F(e["strength"][1]) * keep))
    e["strength"] = (e["strength"][0], m)
    e["ts"] = now
    layers[HOT][key] = e
    return True


def hottest(layers, key):
    """``key``'s entry in the hottest layer that holds it, or None."""
    for lay in range(4):
        if key in layers[lay]:
            return layers[lay][key]
    return None


def layer_counts(layers) -> list:
    """Entries per layer."""
    return [len(lay) for lay in layers]


# ----------------------------------------------------------------- the same over table rows
# Twins that work on the columnar table itself (``tests/kernels/_table.py`` layout), so
# that row identities and the order of the free stack can be compared too.

def _row_due(t, r, promo_thr, min_obs, demo_thr, allow_demote, prune_thr) -> bool:
    """Whether some step of :func:`transitions_rows` would act on row ``r`` as it is now."""
    lay, m = int(t["layer"][r]), int(t["mag"][r])
    if lay > 3:
        return False
    if lay < 3 and m >= promo_thr[lay] and int(t["count"][r]) >= min_obs[lay]:
        return True
    if lay > 0 and allow_demote[lay] and m < demo_thr[lay]:
        return True
    return m < prune_thr


def due_rows(t, promo_thr, min_obs, demo_thr, allow_demote, prune_thr) -> list:
    """The rows some step of :func:`transitions_rows` would act on now, ascending."""
    return [r for r in range(t["nrows"]) if _row_due(t, r, promo_thr, min_obs, demo_thr, allow_demote, prune_thr)]


def _free(t, r) -> None:
    t["slot"][int(t["kid"][r]), int(t["layer"][r])] = -1
    t["layer"][r] = 255
    t["free_stack"][t["n_free"]] = r
    t["n_free"] += 1


def transitions_rows(t, promo_thr, min_obs, demo_thr, allow_demote, prune_thr, now) -> list:
    """:func:`transitions` on the table ``t`` in place, the plain way: for each step, a scan
    of every row in row order; freed rows pushed on the free stack as they go.

    Returns ``[promoted x3, demoted x3 (from cold, cool, warm), pruned]``.
    """
    n = t["nrows"]
    out = []
    for frm in range(3):
        to, c = frm + 1, 0
        for r in range(n):
            if t["layer"][r] == frm and t["mag"][r] >= promo_thr[frm] and int(t["count"][r]) >= min_obs[frm]:
                c += 1
                k = int(t["kid"][r])
                e = int(t["slot"][k, to])
                if e < 0:
                    t["slot"][k, frm], t["slot"][k, to], t["layer"][r] = -1, r, to
                    continue
                t["pol"][e], t["mag"][e] = merge_30_70((int(t["pol"][e]), int(t["mag"][e])),
                                                       (int(t["pol"][r]), int(t["mag"][r])))
                t["voff"][e], t["vlen"][e], t["ts"][e] = t["voff"][r], t["vlen"][r], t["ts"][r]
                t["count"][e] = sat_add_u64(int(t["count"][e]), int(t["count"][r]))
                _free(t, r)
        out.append(c)
    for frm in (3, 2, 1):
        to, c = frm - 1, 0
        for r in range(n):
            if allow_demote[frm] and t["layer"][r] == frm and t["mag"][r] < demo_thr[frm]:
                c += 1
                s = scaled((int(t["pol"][r]), int(t["mag"][r])), 0.95)
                if s[1] == 0:
                    s = (1, 1)
                k = int(t["kid"][r])
                e = int(t["slot"][k, to])
                if e < 0:
                    t["slot"][k, frm], t["slot"][k, to], t["layer"][r] = -1, r, to
                    (t["pol"][r], t["mag"][r]), t["ts"][r] = s, now
                    continue
                if s[1] > t["mag"][e]:
                    t["pol"][e], t["mag"][e] = s
                t["ts"][e] = now
                _free(t, r)
        out.append(c)
    c = 0
    for r in range(n):
        if t["layer"][r] < 4 and t["mag"][r] < prune_thr:
            _free(t, r)
            c += 1
    return out + [c]
