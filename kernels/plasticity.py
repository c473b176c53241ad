"""Plasticity update kernels: how an observed strength folds into a current one.

Policy codes (``UpdatePolicy`` values): 0 STDP, 1 Replace, 2 EMA,
3 Bayesian, 4 WTA. Arithmetic is float32 exactly as the reference does it,
so results are bit-identical.
"""
from __future__ import annotations

import numpy as np

from ._jit import kernel
from .signal import magnitude_f32, sat_u8

STDP = 0
REPLACE = 1
EMA = 2
BAYESIAN = 3
WTA = 4

SECONDS_PER_DAY = np.float32(86400.0)


@kernel
def apply_update_scalar(policy, decay_mag, lr_mag, cur_pol, cur_mag, new_pol, new_mag, dt_seconds):
    """Fold ``new`` into ``cur``; returns ``(polarity, magnitude)``.

    ``dt_seconds`` is a float64 time since the current strength was set; it
    is cast to float32 (so 1e39 becomes inf) as in the reference.
    """
    cur_f = magnitude_f32(cur_mag)
    new_f = magnitude_f32(new_mag)
    decay_f = magnitude_f32(decay_mag)
    lr_f = magnitude_f32(lr_mag)
    dt = np.float32(dt_seconds)
    one = np.float32(1.0)
    if policy == STDP:
        decayed = cur_f * (one - decay_f * dt / SECONDS_PER_DAY)
        r = decayed + lr_f * new_f
        if r < np.float32(0.0):
            r = np.float32(0.0)
        elif r > one:
            r = one
    elif policy == REPLACE:
        r = new_f
    elif policy == EMA:
        r = lr_f * new_f + (one - lr_f) * cur_f
    elif policy == BAYESIAN:
        total = cur_f + new_f
        if total > np.float32(0.0):
            r = (cur_f * cur_f + new_f * new_f) / total
        else:
            r = np.float32(0.0)
    else:  # WTA
        r = cur_f if cur_f > new_f else new_f
    pol = np.int8(new_pol) if new_f >= cur_f else np.int8(cur_pol)
    return pol, sat_u8(r * np.float32(255.0))


@kernel
def apply_update_vec(policy, decay_mag, lr_mag, cur_pol, cur_mag, new_pol, new_mag, dt_seconds,
                     out_pol, out_mag):
    """Vectorised :func:`apply_update_scalar` over equal-length arrays."""
    for i in range(cur_pol.shape[0]):
        p, m = apply_update_scalar(policy, decay_mag, lr_mag, cur_pol[i], cur_mag[i],
                                   new_pol[i], new_mag[i], dt_seconds[i])
        out_pol[i] = p
        out_mag[i] = m


@kernel
def below_threshold_mask(mag, threshold, out):
    """``out[i] = mag[i] < threshold`` (prune test)."""
    for i in range(mag.shape[0]):
        out[i] = mag[i] < threshold
