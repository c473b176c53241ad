"""Signal arithmetic kernels.

A signal is a pair (polarity int8 in {-1, 0, 1}, magnitude uint8). All
arithmetic is IEEE float32, truncated to uint8 the way Rust's ``as u8``
does: NaN -> 0, saturating at 0 and 255. These are the rules of the
reference's ``ternary-signal`` crate, checked bit for bit against the
conformance vectors.
"""
from __future__ import annotations

import numpy as np

from ._jit import kernel

F255 = np.float32(255.0)
POLARITY_EPS = np.float32(0.01)


@kernel
def sat_u8(x):
    """Rust ``f32 as u8``: NaN -> 0, clamp to [0, 255], truncate toward zero."""
    if not (x > np.float32(0.0)):  # NaN and non-positive
        return np.uint8(0)
    if x >= F255:
        return np.uint8(255)
    return np.uint8(int(x))


@kernel
def magnitude_f32(mag):
    """Magnitude as a float32 in [0, 1]: ``m / 255``."""
    return np.float32(mag) / F255


@kernel
def signed_f32(pol, mag):
    """Signed float32 value ``polarity * magnitude / 255``."""
    return np.float32(pol) * (np.float32(mag) / F255)


@kernel
def from_signed_scalar(x):
    """Signal from a signed float32 (returns ``(polarity, magnitude)``).

    Polarity is +1 above 0.01, -1 below -0.01, else 0; magnitude is
    ``min(|x|, 1) * 255`` truncated (``min`` ignores NaN, so NaN -> 255).
    """
    x = np.float32(x)
    if x > POLARITY_EPS:
        pol = np.int8(1)
    elif x < -POLARITY_EPS:
        pol = np.int8(-1)
    else:
        pol = np.int8(0)
    a = np.float32(abs(x))
    if not (a < np.float32(1.0)):  # also NaN: Rust's f32::min returns the non-NaN side
        a = np.float32(1.0)
    return pol, sat_u8(a * F255)


@kernel
def scaled_scalar(pol, mag, factor):
    """``Signal.scale`` / ``Signal.decayed``: magnitude * factor, truncated.

    A result of magnitude 0 has polarity 0.
    """
    m = sat_u8(np.float32(mag) * np.float32(factor))
    if m == 0:
        return np.int8(0), np.uint8(0)
    return np.int8(pol), m


@kernel
def add_scalar(pa, ma, pb, mb):
    """``Signal.add``: sum of signed values, back through ``from_signed``."""
    return from_signed_scalar(signed_f32(pa, ma) + signed_f32(pb, mb))


@kernel
def merge_30_70_scalar(pa, ma, pb, mb):
    """Promotion merge: ``a.scale(0.3).add(b.scale(0.7))``."""
    p1, m1 = scaled_scalar(pa, ma, np.float32(0.3))
    p2, m2 = scaled_scalar(pb, mb, np.float32(0.7))
    return add_scalar(p1, m1, p2, m2)


# Packed signals: one uint16 per signal, the polarity byte low and the magnitude byte high
# (a SIGNAL array viewed as uint16 on a little-endian machine; see thermogram.signal.packed).
# Loops over them read and write one array each way and use selects only, so they vectorise.
LOW_BYTE = np.uint16(0xFF)
HIGH_SHIFT = np.uint16(8)


@kernel(inline=True)
def sat_u8_select(x):
    """:func:`sat_u8` with selects only (NaN and non-positive -> 0, >= 255 -> 255, else
    truncated), as a uint16."""
    zero = np.float32(0.0)
    x = x if x > zero else zero
    x = x if x < F255 else F255
    return np.uint16(np.int32(x))


@kernel
def from_signed_packed(x, out):
    """:func:`from_signed_scalar` of each float32 of ``x``, as packed signals into ``out``."""
    one = np.float32(1.0)
    for i in range(x.shape[0]):
        v = np.float32(x[i])
        p = np.uint16(0)
        p = LOW_BYTE if v < -POLARITY_EPS else p  # int8 -1
        p = np.uint16(1) if v > POLARITY_EPS else p
        a = np.float32(abs(v))
        a = a if a < one else one  # also NaN -> 1, as from_signed_scalar
        out[i] = (sat_u8_select(a * F255) << HIGH_SHIFT) | p


@kernel
def to_signed_packed(v, out):
    """:func:`signed_f32` of each packed signal of ``v`` into float32 ``out``."""
    for i in range(v.shape[0]):
        s = v[i]
        out[i] = signed_f32(np.int8(s & LOW_BYTE), np.uint8(s >> HIGH_SHIFT))


@kernel
def scaled_vec(pol, mag, factor, out_pol, out_mag):
    """Vector ``scale``/``decayed`` by one float32 factor."""
    f = np.float32(factor)
    for i in range(pol.shape[0]):
        p, m = scaled_scalar(pol[i], mag[i], f)
        out_pol[i] = p
        out_mag[i] = m


@kernel
def add_vec(pa, ma, pb, mb, out_pol, out_mag):
    """Element-wise ``Signal.add`` of two signal vectors."""
    for i in range(pa.shape[0]):
        p, m = add_scalar(pa[i], ma[i], pb[i], mb[i])
        out_pol[i] = p
        out_mag[i] = m
