"""Twins of ``kernels/plasticity.py``: the five update policies, one signal at a time."""
from __future__ import annotations

import numpy as np

from .signal import mag_f32, sat_u8

F = np.float32

STDP, REPLACE, EMA, BAYESIAN, WTA = range(5)


def apply_update(policy, decay_mag, lr_mag, cur, new, dt) -> tuple:
    """New strength after observing ``new`` ``dt`` seconds after ``cur`` (float32 math).

    0 STDP-like (decay by elapsed days, plus ``lr * new``, clamped), 1 replace,
    2 EMA, 3 Bayesian (``(c² + n²) / (c + n)``), 4 winner-takes-all (max).
    Polarity follows the larger magnitude (``new`` on ties).
    """
    c, n, d, lr = mag_f32(cur[1]), mag_f32(new[1]), mag_f32(decay_mag), mag_f32(lr_mag)
    dt = F(dt) if abs(dt) < 3.4e38 else F(np.inf if dt > 0 else -np.inf)
    with np.errstate(all="ignore"):
        if policy == STDP:
            r = c * (F(1) - d * dt / F(86400)) + lr * n
            r = r if np.isnan(r) else min(max(r, F(0)), F(1))
        elif policy == REPLACE:
            r = n
        elif policy == EMA:
            r = lr * n + (F(1) - lr) * c
        elif policy == BAYESIAN:
            r = (c * c + n * n) / (c + n) if c + n > 0 else F(0)
        else:
            r = max(c, n)
        mag = sat_u8(F(r) * F(255))
    return (new[0] if n >= c else cur[0], mag)


def below_threshold(mags, threshold) -> list:
    """``[m < threshold for m in mags]``."""
    return [m < threshold for m in mags]
