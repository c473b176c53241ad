"""Canonical, length-prefixed, domain-tagged byte encoding used for hashing.

Every field is written with its length (or a fixed width), so two different
records can never encode to the same bytes. ``encode_value`` /
``decode_value`` cover the small set of types that operation arguments use.
"""
from __future__ import annotations

import struct
from typing import Any

import numpy as np

from .errors import FormatError

__all__ = ["lp", "u64", "i64", "encode_value", "decode_value"]

_U64 = struct.Struct("<Q")
_I64 = struct.Struct("<q")


def u64(n: int) -> bytes:
    """``n`` as 8 bytes, unsigned little-endian (``struct`` raises if out of range)."""
    return _U64.pack(n)


def i64(n: int) -> bytes:
    """``n`` as 8 bytes, signed (two's complement) little-endian (``struct`` raises if out of range)."""
    return _I64.pack(n)


def lp(b: bytes) -> bytes:
    """Length-prefixed bytes (u64 little-endian length)."""
    return _U64.pack(len(b)) + b


def opt_lp(b: "bytes | None") -> bytes:
    """Optional length-prefixed bytes: flag byte 0 (absent) or 1 + ``lp(b)``."""
    return b"\x00" if b is None else b"\x01" + lp(b)


# tags of encode_value
_NONE, _FALSE, _TRUE, _INT, _STR, _BYTES, _LIST, _DICT, _ARRAY, _FLOAT = range(10)


def encode_value(v: Any) -> bytes:
    """Deterministic encoding of None, bool, int, float (IEEE double), str, bytes,
    list/tuple, dict (str keys, sorted) and numpy arrays (dtype descr, shape, raw
    bytes; 0-d arrays keep their shape)."""
    if v is None:
        return bytes([_NONE])
    if v is True or v is False:
        return bytes([_TRUE if v else _FALSE])
    if isinstance(v, (int, np.integer)):
        iv = int(v)
        return bytes([_INT]) + lp(str(iv).encode())
    if isinstance(v, (float, np.floating)):
        return bytes([_FLOAT]) + struct.pack("<d", float(v))
    if isinstance(v, str):
        return bytes([_STR]) + lp(v.encode("utf-8", "surrogatepass"))
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes([_BYTES]) + lp(bytes(v))
    if isinstance(v, (list, tuple)):
        return bytes([_LIST]) + u64(len(v)) + b"".join(encode_value(x) for x in v)
    if isinstance(v, dict):
        items = sorted(v.items())
        return bytes([_DICT]) + u64(len(items)) + b"".join(
            lp(k.encode()) + encode_value(x) for k, x in items)
    if isinstance(v, np.ndarray):
        a = v if v.flags.c_contiguous else v.copy(order="C")
        descr = repr(a.dtype.descr if a.dtype.fields else a.dtype.str).encode()
        return (bytes([_ARRAY]) + lp(descr) + u64(a.ndim) + b"".join(u64(s) for s in a.shape)
                + lp(a.tobytes()))
    raise TypeError(f"cannot canonically encode {type(v).__name__}")


class _Reader:
    __slots__ = ("b", "i")

    def __init__(self, b: bytes):
        self.b = b
        self.i = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.i + n > len(self.b):
            raise FormatError(f"truncated value: need {n} bytes at offset {self.i}, have {len(self.b) - self.i}")
        out = self.b[self.i:self.i + n]
        self.i += n
        return out

    def u64(self) -> int:
        return _U64.unpack(self.take(8))[0]

    def lp(self) -> bytes:
        return self.take(self.u64())


def _decode(r: _Reader, depth: int) -> Any:
    if depth > 64:
        raise FormatError("value nested too deeply")
    tag = r.take(1)[0]
    if tag == _NONE:
        return None
    if tag == _FALSE:
        return False
    if tag == _TRUE:
        return True
    if tag == _INT:
        try:
            return int(r.lp().decode("ascii"))
        except ValueError:
            raise FormatError("bad integer encoding") from None
    if tag == _STR:
        try:
            return r.lp().decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            raise FormatError("bad utf-8 string") from None
    if tag == _BYTES:
        return r.lp()
    if tag == _LIST:
        n = r.u64()
        if n > len(r.b) - r.i:
            raise FormatError("list length exceeds the data")
        return [_decode(r, depth + 1) for _ in range(n)]
    if tag == _DICT:
        n = r.u64()
        if n > len(r.b) - r.i:
            raise FormatError("dict length exceeds the data")
        out = {}
        for _ in range(n):
            k = r.lp().decode("utf-8", "replace")
            out[k] = _decode(r, depth + 1)
        return out
    if tag == _FLOAT:
        return struct.unpack("<d", r.take(8))[0]
    if tag == _ARRAY:
        import ast
        try:
            descr = ast.literal_eval(r.lp().decode("ascii"))
            dt = np.dtype(descr if isinstance(descr, str) else [tuple(x) for x in descr])
        except Exception:
            raise FormatError("bad array dtype") from None
        nd = r.u64()
        if nd > 8:
            raise FormatError("array has too many dimensions")
        shape = tuple(r.u64() for _ in range(nd))
        raw = r.lp()
        count = 1
        for s in shape:
            count *= s
        if dt.itemsize == 0 or count * dt.itemsize != len(raw):
            raise FormatError("array byte length does not match its shape")
        return np.frombuffer(raw, dtype=dt).reshape(shape).copy()
    raise FormatError(f"unknown value tag {tag}")


def decode_value(b: bytes) -> Any:
    """Inverse of :func:`encode_value`; raises :class:`FormatError` on bad input."""
    r = _Reader(bytes(b))
    v = _decode(r, 0)
    if r.i != len(r.b):
        raise FormatError("trailing bytes after value")
    return v
