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
    if type(v) is dict and not v:  # most operations' arguments
        return _EMPTY_DICT
    out: list = []
    _encode_into(v, out)
    return b"".join(out)


_B_NONE, _B_FALSE, _B_TRUE, _B_INT, _B_STR, _B_BYTES, _B_LIST, _B_DICT, _B_ARRAY, _B_FLOAT = (
    bytes([t]) for t in range(10))
_pack_u64 = _U64.pack
_pack_f64 = struct.Struct("<d").pack


def _encode_into(v: Any, out: list) -> None:
    """Append the parts of ``encode_value(v)`` to ``out`` (joined once by the caller).

    The exact built-in types come first, tested with ``type(v) is``; everything else
    (bool, numpy scalars, subclasses, arrays) takes the ``isinstance`` chain after them.
    Either way the bytes are those of the layout in the module docs (a configuration's
    dict of dicts and lists encodes in a quarter of the time one call per value took)."""
    t = type(v)
    if t is str:
        b = v.encode("utf-8", "surrogatepass")
        out += (_B_STR, _pack_u64(len(b)), b)
    elif t is int:
        b = str(v).encode()
        out += (_B_INT, _pack_u64(len(b)), b)
    elif t is list or t is tuple:
        out += (_B_LIST, _pack_u64(len(v)))
        for x in v:
            _encode_into(x, out)
    elif t is dict:
        _encode_dict(v, out)
    elif v is None:
        out.append(_B_NONE)
    elif v is True or v is False:
        out.append(_B_TRUE if v else _B_FALSE)
    elif isinstance(v, (int, np.integer)):
        _encode_into(int(v), out)
    elif isinstance(v, (float, np.floating)):
        out += (_B_FLOAT, _pack_f64(float(v)))
    elif isinstance(v, str):
        b = v.encode("utf-8", "surrogatepass")
        out += (_B_STR, _pack_u64(len(b)), b)
    elif isinstance(v, (bytes, bytearray, memoryview)):
        b = bytes(v)
        out += (_B_BYTES, _pack_u64(len(b)), b)
    elif isinstance(v, (list, tuple)):
        _encode_into(list(v), out)
    elif isinstance(v, dict):
        _encode_dict(v, out)
    elif isinstance(v, np.ndarray):
        a = v if v.flags.c_contiguous else v.copy(order="C")
        descr = repr(a.dtype.descr if a.dtype.fields else a.dtype.str).encode()
        raw = a.tobytes()
        out += (_B_ARRAY, _pack_u64(len(descr)), descr, _pack_u64(a.ndim))
        out += [_pack_u64(n) for n in a.shape]
        out += (_pack_u64(len(raw)), raw)
    else:
        raise TypeError(f"cannot canonically encode {type(v).__name__}")


def _encode_dict(v: dict, out: list) -> None:
    """A dict's parts: tag, count, then each (key, value) in sorted key order."""
    items = sorted(v.items())
    out += (_B_DICT, _pack_u64(len(items)))
    for k, x in items:
        kb = k.encode()
        out += (_pack_u64(len(kb)), kb)
        _encode_into(x, out)


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
