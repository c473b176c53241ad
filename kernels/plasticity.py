"""Plasticity update kernels: how an observed strength folds into a current one.

Policy codes (``UpdatePolicy`` values): 0 STDP, 1 Replace, 2 EMA,
3 Bayesian, 4 WTA. Arithmetic is float32 exactly as the reference does it,
so results are bit-identical.
"""
from __future__ import annotations

import numpy as np

from ._jit import kernel
from .signal import F255, HIGH_SHIFT, LOW_BYTE, magnitude_f32, sat_u8, sat_u8_select

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


@kernel(inline=True)
def _packed_mag_f32(s):
    """:func:`magnitude_f32` of a packed signal (polarity byte low, magnitude byte high)."""
    return np.float32(s >> HIGH_SHIFT) / F255


@kernel(inline=True)
def _packed_result(r, cur_f, new_f, c, w):
    """The packed signal :func:`apply_update_scalar` returns for rule value ``r``: magnitude
    ``sat_u8(r * 255)`` (:func:`sat_u8_select`), and the polarity byte of ``w`` if
    ``new_f >= cur_f``, else of ``c``."""
    low = (w & LOW_BYTE) if new_f >= cur_f else (c & LOW_BYTE)
    return (sat_u8_select(r * F255) << HIGH_SHIFT) | low


@kernel(inline=True)
def _stdp_value(cur_f, new_f, decay_f, lr_f, dt):
    """The STDP-like rule value of :func:`apply_update_scalar`, clamped to [0, 1] (NaN stays)."""
    one = np.float32(1.0)
    zero = np.float32(0.0)
    r = cur_f * (one - decay_f * dt / SECONDS_PER_DAY) + lr_f * new_f
    r = zero if r < zero else r
    return one if r > one else r


@kernel(ieee_division=True)
def apply_update_packed(policy, decay_mag, lr_mag, cur, new, dt_seconds, out):
    """:func:`apply_update_scalar` over arrays of packed signals, bit for bit.

    ``cur``, ``new``, ``out``: uint16, one signal each, polarity byte in the low byte and
    magnitude in the high byte (a SIGNAL array viewed as uint16 on a little-endian machine).
    ``dt_seconds``: float64, one per element or a single value for all. One loop per policy,
    with selects only, so each vectorises (the Bayesian division by ``cur + new`` is taken
    even where that is 0 and its result discarded, hence ``ieee_division``).
    """
    decay_f = magnitude_f32(decay_mag)
    lr_f = magnitude_f32(lr_mag)
    one = np.float32(1.0)
    zero = np.float32(0.0)
    n = cur.shape[0]
    if policy == STDP and dt_seconds.shape[0] == 1:
        dt = np.float32(dt_seconds[0])
        for i in range(n):
            c, w = cur[i], new[i]
            cf, nf = _packed_mag_f32(c), _packed_mag_f32(w)
            out[i] = _packed_result(_stdp_value(cf, nf, decay_f, lr_f, dt), cf, nf, c, w)
    elif policy == STDP:
        for i in range(n):
            c, w = cur[i], new[i]
            cf, nf = _packed_mag_f32(c), _packed_mag_f32(w)
            out[i] = _packed_result(_stdp_value(cf, nf, decay_f, lr_f, np.float32(dt_seconds[i])), cf, nf, c, w)
    elif policy == REPLACE:
        for i in range(n):
            c, w = cur[i], new[i]
            cf, nf = _packed_mag_f32(c), _packed_mag_f32(w)
            out[i] = _packed_result(nf, cf, nf, c, w)
    elif policy == EMA:
        for i in range(n):
            c, w = cur[i], new[i]
            cf, nf = _packed_mag_f32(c), _packed_mag_f32(w)
            out[i] = _packed_result(lr_f * nf + (one - lr_f) * cf, cf, nf, c, w)
    elif policy == BAYESIAN:
        for i in range(n):
            c, w = cur[i], new[i]
            cf, nf = _packed_mag_f32(c), _packed_mag_f32(w)
            total = cf + nf
            q = (cf * cf + nf * nf) / total
            out[i] = _packed_result(q if total > zero else zero, cf, nf, c, w)
    else:  # WTA
        for i in range(n):
            c, w = cur[i], new[i]
            cf, nf = _packed_mag_f32(c), _packed_mag_f32(w)
            out[i] = _packed_result(cf if cf > nf else nf, cf, nf, c, w)


@kernel
def below_threshold_mask(mag, threshold, out):
    """``out[i] = mag[i] < threshold`` (prune test)."""
    for i in range(mag.shape[0]):
        out[i] = mag[i] < threshold
