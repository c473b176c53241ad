"""Twins of ``kernels/signal.py``: scalars are ``(polarity, magnitude)`` tuples."""
from __future__ import annotations

import numpy as np

F = np.float32


def sat_u8(x) -> int:
    """Rust ``f32 as u8``: NaN -> 0, clamp to [0, 255], truncate toward zero."""
    x = F(x)
    if np.isnan(x) or x <= 0:
        return 0
    if x >= 255:
        return 255
    return int(np.floor(x))


def mag_f32(m) -> np.float32:
    """Magnitude as a float32 in [0, 1]."""
    return F(m) / F(255)


def signed_f32(p, m) -> np.float32:
    """``polarity * magnitude / 255`` in float32."""
    return F(p) * mag_f32(m)


def from_signed(x) -> tuple:
    """Signal of a signed float: polarity by a 0.01 dead band, magnitude ``|x| * 255`` clamped."""
    x = F(x)
    p = 1 if x > F(0.01) else (-1 if x < F(-0.01) else 0)
    a = F(1.0) if (np.isnan(x) or abs(x) >= 1) else F(abs(x))
    return (p, sat_u8(a * F(255)))


def scaled(s, factor) -> tuple:
    """Magnitude times ``factor`` (float32, truncated); magnitude 0 -> ``(0, 0)``."""
    m = sat_u8(F(s[1]) * F(factor))
    return (s[0], m) if m else (0, 0)


def add(a, b) -> tuple:
    """Sum of the two signed values, back to a signal."""
    return from_signed(signed_f32(a[0], a[1]) + signed_f32(b[0], b[1]))


def merge_30_70(old, new) -> tuple:
    """30% of ``old`` plus 70% of ``new``."""
    return add(scaled(old, 0.3), scaled(new, 0.7))
