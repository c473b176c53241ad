"""Naive twin of :func:`thermogram.canonical.encode_value`: one recursive call per value,
each returning its own bytes, in the layout's order of type tests (the oracle for
``tests/test_canonical.py``)."""
import struct

import numpy as np

from thermogram.canonical import _ARRAY, _BYTES, _DICT, _FALSE, _FLOAT, _INT, _LIST, _NONE, _STR, _TRUE


def u64(n):
    return struct.pack("<Q", n)


def lp(b):
    return u64(len(b)) + b


def encode_value(v):
    if v is None:
        return bytes([_NONE])
    if v is True or v is False:
        return bytes([_TRUE if v else _FALSE])
    if isinstance(v, (int, np.integer)):
        return bytes([_INT]) + lp(str(int(v)).encode())
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
        return bytes([_DICT]) + u64(len(items)) + b"".join(lp(k.encode()) + encode_value(x) for k, x in items)
    if isinstance(v, np.ndarray):
        a = v if v.flags.c_contiguous else v.copy(order="C")
        descr = repr(a.dtype.descr if a.dtype.fields else a.dtype.str).encode()
        return (bytes([_ARRAY]) + lp(descr) + u64(a.ndim) + b"".join(u64(s) for s in a.shape)
                + lp(a.tobytes()))
    raise TypeError(f"cannot canonically encode {type(v).__name__}")
