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


_EMPTY_DICT = bytes([_DICT]) + _U64.pack(0)


def encode_value(v: Any) -> bytes:
    """Deterministic encoding of None, bool, int, float (IEEE double), str, bytes,
    list/tuple, dict (str keys, sorted) and numpy arrays (dtype descr, shape, raw
    bytes; 0-d arrays keep their shape)."""
    t = type(v)
    if t is dict and not v:  # most operations' arguments
        return _EMPTY_DICT
    if t is int:
        return bytes([_INT]) + lp(str(v).encode())
    if t is str:
        return bytes([_STR]) + lp(v.encode("utf-8", "surrogatepass"))
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


_unpack_u64 = _U64.unpack_from


def _lp_at(b: bytes, i: int) -> "tuple[bytes, int]":
    """The length-prefixed bytes at ``i`` and the position after them."""
    if i + 8 > len(b):
        raise FormatError(f"truncated value: need 8 bytes at offset {i}, have {len(b) - i}")
    n = _unpack_u64(b, i)[0]
    i += 8
    if n > len(b) - i:
        raise FormatError(f"truncated value: need {n} bytes at offset {i}, have {len(b) - i}")
    return b[i:i + n], i + n


def _decode(b: bytes, i: int, depth: int) -> "tuple[Any, int]":
    """The value at ``i`` and the position after it (position-based: no reader object)."""
    if depth > 64:
        raise FormatError("value nested too deeply")
    if i >= len(b):
        raise FormatError(f"truncated value: need 1 byte at offset {i}, have 0")
    tag = b[i]
    i += 1
    if tag == _STR:
        raw, i = _lp_at(b, i)
        try:
            return raw.decode("utf-8", "surrogatepass"), i
        except UnicodeDecodeError:
            raise FormatError("bad utf-8 string") from None
    if tag == _INT:
        raw, i = _lp_at(b, i)
        try:
            return int(raw.decode("ascii")), i
        except ValueError:
            raise FormatError("bad integer encoding") from None
    if tag == _DICT or tag == _LIST:
        if i + 8 > len(b):
            raise FormatError("truncated container length")
        n = _unpack_u64(b, i)[0]
        i += 8
        if n > len(b) - i:
            raise FormatError(("dict" if tag == _DICT else "list") + " length exceeds the data")
        if tag == _LIST:
            out_l = []
            for _ in range(n):
                v, i = _decode(b, i, depth + 1)
                out_l.append(v)
            return out_l, i
        out = {}
        for _ in range(n):
            k, i = _lp_at(b, i)
            out[k.decode("utf-8", "replace")], i = _decode(b, i, depth + 1)
        return out, i
    if tag == _NONE:
        return None, i
    if tag == _FALSE:
        return False, i
    if tag == _TRUE:
        return True, i
    if tag == _BYTES:
        return _lp_at(b, i)
    if tag == _FLOAT:
        if i + 8 > len(b):
            raise FormatError("truncated float")
        return struct.unpack_from("<d", b, i)[0], i + 8
    if tag == _ARRAY:
        import ast
        raw, i = _lp_at(b, i)
        try:
            descr = ast.literal_eval(raw.decode("ascii"))
            dt = np.dtype(descr if isinstance(descr, str) else [tuple(x) for x in descr])
        except Exception:
            raise FormatError("bad array dtype") from None
        if i + 8 > len(b):
            raise FormatError("truncated array rank")
        nd = _unpack_u64(b, i)[0]
        i += 8
        if nd > 8:
            raise FormatError("array has too many dimensions")
        if i + 8 * nd > len(b):
            raise FormatError("truncated array shape")
        shape = struct.unpack_from(f"<{nd}Q", b, i)
        i += 8 * nd
        raw, i = _lp_at(b, i)
        count = 1
        for sz in shape:
            count *= sz
        if dt.itemsize == 0 or count * dt.itemsize != len(raw):
            raise FormatError("array byte length does not match its shape")
        return np.frombuffer(raw, dtype=dt).reshape(shape).copy(), i
    raise FormatError(f"unknown value tag {tag}")


_records = None


def record_layouts():
    """:mod:`thermogram.io.records`, where every chain record's byte layout is defined.

    Imported on first use and kept: that module imports the record classes, whose
    ``canonical_bytes`` call this to encode themselves (so neither imports the other
    at import time)."""
    global _records
    if _records is None:
        from .io import records
        _records = records
    return _records


def decode_value(b: bytes) -> Any:
    """Inverse of :func:`encode_value`; raises :class:`FormatError` on bad input."""
    b = bytes(b)
    v, i = _decode(b, 0, 0)
    if i != len(b):
        raise FormatError("trailing bytes after value")
    return v
