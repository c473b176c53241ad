"""Kernels for colonies and distillation: key routing and float32 embedding math.

Routing hashes the locality part of many keys at once with XXH3-64 (seed 0,
the default secret), bit-identical to ``xxhash.xxh3_64_intdigest``, and
assigns each hash to the hash range that contains it. Keys arrive as one
UTF-8 buffer with NUL separators (the caller checks that no key holds a NUL).
Inputs longer than 240 bytes use XXH3's long-input path; this file does not
implement it: such keys are reported back and hashed by the caller.

The embedding kernels sum strictly left to right in float32 (no
``fastmath``), as the reference does, so magnitudes and cosines are
bit-identical to it.
"""
from __future__ import annotations

import numpy as np

from ._jit import kernel

__all__ = ["SECRET", "MAX_INLINE", "xxh3_64", "locality_hashes", "assign_ranges",
           "sum_squares_f32", "dot_f32", "cosine_f32", "row_magnitudes_f32"]

MAX_INLINE = 240
"""Longest input (bytes) hashed here; longer ones are left to the caller."""

# The first 136 bytes of XXH3's default secret: all that inputs of up to
# 240 bytes touch.
SECRET = np.array([
    0xb8, 0xfe, 0x6c, 0x39, 0x23, 0xa4, 0x4b, 0xbe, 0x7c, 0x01, 0x81, 0x2c, 0xf7, 0x21, 0xad, 0x1c,
    0xde, 0xd4, 0x6d, 0xe9, 0x83, 0x90, 0x97, 0xdb, 0x72, 0x40, 0xa4, 0xa4, 0xb7, 0xb3, 0x67, 0x1f,
    0xcb, 0x79, 0xe6, 0x4e, 0xcc, 0xc0, 0xe5, 0x78, 0x82, 0x5a, 0xd0, 0x7d, 0xcc, 0xff, 0x72, 0x21,
    0xb8, 0x08, 0x46, 0x74, 0xf7, 0x43, 0x24, 0x8e, 0xe0, 0x35, 0x90, 0xe6, 0x81, 0x3a, 0x26, 0x4c,
    0x3c, 0x28, 0x52, 0xbb, 0x91, 0xc3, 0x00, 0xcb, 0x88, 0xd0, 0x65, 0x8b, 0x1b, 0x53, 0x2e, 0xa3,
    0x71, 0x64, 0x48, 0x97, 0xa2, 0x0d, 0xf9, 0x4e, 0x38, 0x19, 0xef, 0x46, 0xa9, 0xde, 0xac, 0xd8,
    0xa8, 0xfa, 0x76, 0x3f, 0xe3, 0x9c, 0x34, 0x3f, 0xf9, 0xdc, 0xbb, 0xc7, 0xc7, 0x0b, 0x4f, 0x1d,
    0x8a, 0x51, 0xe0, 0x4b, 0xcd, 0xb4, 0x59, 0x31, 0xc8, 0x9f, 0x7e, 0xc9, 0xd9, 0x78, 0x73, 0x64,
    0xea, 0xc5, 0xac, 0x83, 0x34, 0xd3, 0xeb, 0xc3,
], dtype=np.uint8)
SECRET.flags.writeable = False

_P64_1 = np.uint64(0x9E3779B185EBCA87)
_P64_2 = np.uint64(0xC2B2AE3D27D4EB4F)
_P64_3 = np.uint64(0x165667B19E3779F9)
_MX1 = np.uint64(0x165667919E3779F9)
_MX2 = np.uint64(0x9FB21C651E98DF25)
_M32 = np.uint64(0xFFFFFFFF)
_U = np.uint64


@kernel(inline=True)
def _rd32(b, i):
    """Little-endian u32 at ``b[i:i+4]``, as uint64."""
    return (_U(b[i]) | (_U(b[i + 1]) << _U(8)) | (_U(b[i + 2]) << _U(16))
            | (_U(b[i + 3]) << _U(24)))


@kernel(inline=True)
def _rd64(b, i):
    """Little-endian u64 at ``b[i:i+8]``."""
    return _rd32(b, i) | (_rd32(b, i + 4) << _U(32))


@kernel(inline=True)
def _rotl(x, r):
    """``x`` (uint64) rotated left by ``r`` bits, ``0 < r < 64``."""
    return (x << _U(r)) | (x >> _U(64 - r))


@kernel(inline=True)
def _bswap64(x):
    """``x`` (uint64) with its byte order reversed."""
    out = _U(0)
    for k in range(8):
        out = (out << _U(8)) | ((x >> _U(8 * k)) & _U(0xFF))
    return out


@kernel(inline=True)
def _mul_fold(a, b):
    """Low 64 bits XOR high 64 bits of the 128-bit product ``a * b``."""
    a_lo = a & _M32
    a_hi = a >> _U(32)
    b_lo = b & _M32
    b_hi = b >> _U(32)
    ll = a_lo * b_lo
    hl = a_hi * b_lo
    lh = a_lo * b_hi
    hh = a_hi * b_hi
    cross = (ll >> _U(32)) + (hl & _M32) + lh
    upper = (hl >> _U(32)) + (cross >> _U(32)) + hh
    lower = (cross << _U(32)) | (ll & _M32)
    return lower ^ upper


@kernel(inline=True)
def _avalanche(h):
    """XXH3's final mix: ``h ^= h >> 37; h *= 0x165667919E3779F9; h ^= h >> 32``."""
    h = h ^ (h >> _U(37))
    h = h * _MX1
    return h ^ (h >> _U(32))


@kernel(inline=True)
def _avalanche64(h):
    """XXH64's final mix (shifts 33, 29, 32 with primes 2 and 3), as XXH3 uses it for 0-3 byte inputs."""
    h = h ^ (h >> _U(33))
    h = h * _P64_2
    h = h ^ (h >> _U(29))
    h = h * _P64_3
    return h ^ (h >> _U(32))


@kernel(inline=True)
def _mix16(b, i, sec, s):
    """XXH3's 16-byte mix: the two u64 at ``b[i:i+16]`` XOR the secret at ``sec[s:s+16]``,
    multiplied to 128 bits and folded (see :func:`_mul_fold`)."""
    return _mul_fold(_rd64(b, i) ^ _rd64(sec, s), _rd64(b, i + 8) ^ _rd64(sec, s + 8))


@kernel(inline=True)
def _xxh3(b, start, n, sec):
    """XXH3-64 (seed 0) of ``b[start:start+n]`` for ``n <= 240`` (the 0, 1-3, 4-8, 9-16, 17-128
    and 129-240 byte paths); ``sec`` is :data:`SECRET`. The body of :func:`xxh3_64`."""
    ln = _U(n)
    if n == 0:
        return _avalanche64(_rd64(sec, 56) ^ _rd64(sec, 64))
    if n <= 3:
        c1 = _U(b[start])
        c2 = _U(b[start + (n >> 1)])
        c3 = _U(b[start + n - 1])
        combined = (c1 << _U(16)) | (c2 << _U(24)) | c3 | (ln << _U(8))
        flip = _rd32(sec, 0) ^ _rd32(sec, 4)
        return _avalanche64(combined ^ flip)
    if n <= 8:
        lo = _rd32(b, start)
        hi = _rd32(b, start + n - 4)
        flip = _rd64(sec, 8) ^ _rd64(sec, 16)
        h = (hi + (lo << _U(32))) ^ flip
        h = h ^ (_rotl(h, 49) ^ _rotl(h, 24))
        h = h * _MX2
        h = h ^ ((h >> _U(35)) + ln)
        h = h * _MX2
        return h ^ (h >> _U(28))
    if n <= 16:
        lo = _rd64(b, start) ^ (_rd64(sec, 24) ^ _rd64(sec, 32))
        hi = _rd64(b, start + n - 8) ^ (_rd64(sec, 40) ^ _rd64(sec, 48))
        acc = ln + _bswap64(lo) + hi + _mul_fold(lo, hi)
        return _avalanche(acc)
    acc = ln * _P64_1
    if n <= 128:
        if n > 32:
            if n > 64:
                if n > 96:
                    acc += _mix16(b, start + 48, sec, 96)
                    acc += _mix16(b, start + n - 64, sec, 112)
                acc += _mix16(b, start + 32, sec, 64)
                acc += _mix16(b, start + n - 48, sec, 80)
            acc += _mix16(b, start + 16, sec, 32)
            acc += _mix16(b, start + n - 32, sec, 48)
        acc += _mix16(b, start, sec, 0)
        acc += _mix16(b, start + n - 16, sec, 16)
        return _avalanche(acc)
    for r in range(8):
        acc += _mix16(b, start + 16 * r, sec, 16 * r)
    acc = _avalanche(acc)
    for r in range(8, n // 16):
        acc += _mix16(b, start + 16 * r, sec, 16 * (r - 8) + 3)
    acc += _mix16(b, start + n - 16, sec, 119)
    return _avalanche(acc)


@kernel
def xxh3_64(b, start, n, sec):
    """XXH3-64 (seed 0) of ``b[start:start+n]`` for ``n <= 240``; ``sec`` is :data:`SECRET`."""
    return _xxh3(b, start, n, sec)


@kernel
def locality_hashes(buf, n_keys, cut, sec, out, long_idx):
    """Hash the locality part of each of ``n_keys`` NUL-separated keys in ``buf``.

    The locality part of a key is the bytes before its first ``cut`` byte
    (the whole key when ``cut < 0`` or the key has none). ``out[i]`` receives
    the XXH3-64 of key ``i``'s part. Parts longer than :data:`MAX_INLINE`
    bytes are not hashed: their indices go to ``long_idx`` (``out`` is 0
    there). Returns how many such keys there were.
    """
    pos = 0
    n_long = 0
    end = buf.shape[0]
    for i in range(n_keys):
        j = pos
        loc_end = -1
        while j < end and buf[j] != 0:
            if loc_end < 0 and buf[j] == cut:
                loc_end = j
            j += 1
        if loc_end < 0:
            loc_end = j
        m = loc_end - pos
        if m > MAX_INLINE:
            out[i] = _U(0)
            long_idx[n_long] = i
            n_long += 1
        else:
            out[i] = _xxh3(buf, pos, m, sec)
        pos = j + 1
    return n_long


@kernel
def assign_ranges(hashes, bounds, owners, out):
    """``out[i] = owners[r]`` where range ``r`` (sorted starts ``bounds``,
    ``bounds[0] == 0``) holds ``hashes[i]``."""
    nb = bounds.shape[0]
    for i in range(hashes.shape[0]):
        h = hashes[i]
        lo = 0
        hi = nb
        while hi - lo > 1:  # bounds[lo] <= h < bounds[hi]
            mid = (lo + hi) >> 1
            if bounds[mid] <= h:
                lo = mid
            else:
                hi = mid
        out[i] = owners[lo]


# ----------------------------------------------------------------- float32 embedding math
@kernel
def sum_squares_f32(x):
    """``sum(x[i] * x[i])`` accumulated left to right in float32 from +0.0."""
    acc = np.float32(0.0)
    for i in range(x.shape[0]):
        acc += x[i] * x[i]
    return acc


@kernel
def dot_f32(a, b):
    """``sum(a[i] * b[i])`` accumulated left to right in float32 from +0.0."""
    acc = np.float32(0.0)
    for i in range(a.shape[0]):
        acc += a[i] * b[i]
    return acc


@kernel
def cosine_f32(a, b):
    """Cosine of two equal-length float32 vectors as the reference computes it:
    three left-to-right sums, 0 when either norm is 0."""
    d = dot_f32(a, b)
    ma = np.sqrt(sum_squares_f32(a))
    mb = np.sqrt(sum_squares_f32(b))
    if ma == np.float32(0.0) or mb == np.float32(0.0):
        return np.float32(0.0)
    return d / (ma * mb)


@kernel
def row_magnitudes_f32(flat, offsets, out):
    """Euclidean norm of each ragged row ``flat[offsets[i]:offsets[i+1]]`` (float32)."""
    for i in range(out.shape[0]):
        acc = np.float32(0.0)
        for j in range(offsets[i], offsets[i + 1]):
            acc += flat[j] * flat[j]
        out[i] = np.sqrt(acc)
