"""Files and format dispatch: detect, encode and decode any supported format, and
write files atomically (temp file, fsync, rename, fsync the folder)."""
from __future__ import annotations

import os
import struct
import tempfile
from typing import Any, Optional

from ..errors import FormatError, ValidationError
from .legacy_json import decode_legacy_json
from .reader import MAGIC
from .thermo_v1 import decode_v1, encode_v1
from .thermo_v2 import decode_v2, encode_v2, encode_v2_parts

__all__ = ["detect_format", "encode", "decode", "fsync_dir", "atomic_write", "save", "load", "DEFAULT_MAX_BYTES"]

DEFAULT_MAX_BYTES = 16 * 2 ** 30
"""Largest file :func:`load` reads unless told otherwise (16 GiB)."""


def detect_format(data: bytes) -> str:
    """``"v2"``, ``"v1"`` or ``"json"`` from a file's first bytes."""
    if data[:4] == MAGIC:
        if len(data) < 6:
            raise FormatError("truncated .thermo header")
        version = struct.unpack_from("<H", data, 4)[0]
        if version == 2:
            return "v2"
        if version == 1:
            return "v1"
        raise FormatError(f"unsupported .thermo version {version}")
    if data.lstrip()[:1] == b"{":
        return "json"
    raise FormatError("not a .thermo file (no THRM magic) nor a JSON capsule")


def encode(t, format: str = "v2") -> bytes:
    """Bytes of the capsule in ``format`` (``"v2"`` or ``"v1"``)."""
    if format == "v2":
        return encode_v2(t)
    if format == "v1":
        return encode_v1(t)
    raise ValidationError(f"unknown format {format!r}; expected 'v2' or 'v1'")


def decode(data: bytes, *, semantics: Optional[str] = None, clock=None, verify: bool = True):
    """A capsule from bytes of any supported format (auto-detected)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ValidationError("decode needs bytes")
    data = bytes(data)
    fmt = detect_format(data)
    try:
        if fmt == "v2":
            return decode_v2(data, clock=clock, verify=verify)
        if fmt == "v1":
            return decode_v1(data, semantics=semantics or "fixed", clock=clock)
        return decode_legacy_json(data, semantics=semantics or "fixed", clock=clock)
    except FormatError:
        raise
    except (struct.error, ValueError, KeyError, TypeError, IndexError, OverflowError, MemoryError,
            UnicodeDecodeError, RecursionError) as e:
        raise FormatError(f"malformed {fmt} data: {e!r}") from None


def fsync_dir(path: str) -> None:
    """fsync a folder so a rename in it is durable (no-op where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str, data: Any) -> None:
    """Write ``data`` (bytes, or a list of byte-like parts written in order) to ``path``
    atomically: temp file in the same folder, fsync, ``os.replace``, fsync the folder.
    A crash leaves the old file or the new one."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            if isinstance(data, (list, tuple)):
                for part in data:
                    f.write(part)
            else:
                f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_dir(folder)


def save(t, path, format: str = "v2") -> None:
    """Save atomically in ``format`` (``"v2"`` default, ``"v1"`` for the Rust crate)."""
    if format == "v2":  # stream the parts: the value arena is written from memory, not copied
        from ..core import capsule_parts
        with capsule_parts(t):
            atomic_write(path, encode_v2_parts(t))
        return
    atomic_write(path, encode(t, format))


def load(path, *, semantics: Optional[str] = None, clock=None, verify: bool = True,
         max_bytes: int = DEFAULT_MAX_BYTES):
    """Load a capsule file of any supported format."""
    size = os.path.getsize(path)
    if size > max_bytes:
        raise FormatError(f"{path}: {size} bytes is over the {max_bytes}-byte limit (max_bytes=)")
    with open(path, "rb") as f:
        data = f.read()
    return decode(data, semantics=semantics, clock=clock, verify=verify)
