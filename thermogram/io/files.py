"""Files and format dispatch: detect, encode and decode any supported format, and
write files atomically (temp file, fsync, rename, fsync the folder).

Every durability-relevant file system call of the package (open, write, fsync,
rename, truncate, unlink, reading a whole file) goes through :data:`ops`, a
:class:`FileOps`. Tests replace it (:func:`use_ops`) to inject faults (EIO, ENOSPC,
short writes) or to record the sequence of calls for power-loss simulation.
"""
from __future__ import annotations

import errno
import os
import re
import secrets
import struct
from contextlib import contextmanager
from typing import Any, Iterator, Optional

from ..errors import FormatError, ValidationError
from .legacy_json import decode_legacy_json
from .reader import MAGIC
from .thermo_v1 import decode_v1, encode_v1
from .thermo_v2 import decode_v2, encode_v2, encode_v2_parts

__all__ = ["detect_format", "encode", "decode", "fsync_dir", "atomic_write", "save", "load", "DEFAULT_MAX_BYTES",
           "FileOps", "ops", "use_ops", "write_all", "read_file", "temp_name_pattern", "remove_stale_temps"]

DEFAULT_MAX_BYTES = 16 * 2 ** 30
"""Largest file :func:`load` reads unless told otherwise (16 GiB)."""

_TEMP_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789_"


class FileOps:
    """The file system calls thermogram makes, one method each (plain :mod:`os` here).

    A subclass can fail, shorten or record any of them; install it with :func:`use_ops`.
    ``write`` may write fewer bytes than given (callers loop, see :func:`write_all`).
    """

    def open(self, path: str, flags: int, mode: int = 0o666) -> int:
        """``os.open`` (new files get ``mode`` less the umask, as with :func:`open`)."""
        return os.open(path, flags, mode)

    def write(self, fd: int, data: Any) -> int:
        """``os.write``: bytes written (possibly fewer than ``len(data)``)."""
        return os.write(fd, data)

    def fsync(self, fd: int) -> None:
        """``os.fsync``."""
        os.fsync(fd)

    def close(self, fd: int) -> None:
        """``os.close``."""
        os.close(fd)

    def truncate(self, fd: int, size: int) -> None:
        """``os.ftruncate``."""
        os.ftruncate(fd, size)

    def replace(self, src: str, dst: str) -> None:
        """``os.replace`` (an atomic rename within a folder)."""
        os.replace(src, dst)

    def unlink(self, path: str) -> None:
        """``os.unlink``."""
        os.unlink(path)

    def fsync_dir(self, path: str) -> None:
        """fsync a folder so the renames, creations and deletions in it are durable.

        A no-op where folders cannot be opened (not POSIX) or the file system does not
        support it (``EINVAL``, ``ENOTSUP``); any other failure raises.
        """
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            if os.name == "posix":
                raise
            return
        try:
            os.fsync(fd)
        except OSError as e:
            if e.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
                raise
        finally:
            os.close(fd)

    def read_file(self, path: str) -> bytes:
        """The whole content of ``path``."""
        with open(path, "rb") as f:
            return f.read()


ops: FileOps = FileOps()
"""The :class:`FileOps` every file operation of the package goes through."""


@contextmanager
def use_ops(replacement: FileOps) -> Iterator[FileOps]:
    """Route the package's file operations through ``replacement`` inside the block."""
    global ops
    previous = ops
    ops = replacement
    try:
        yield replacement
    finally:
        ops = previous


def write_all(fd: int, data: Any) -> None:
    """Write all of ``data`` to ``fd`` (looping over short writes); a write that makes
    no progress raises ``OSError(ENOSPC)``."""
    view = memoryview(data).cast("B")
    while view:
        written = ops.write(fd, view)
        if written <= 0:
            raise OSError(errno.ENOSPC, "write made no progress")
        view = view[written:]


def read_file(path: str) -> bytes:
    """The whole content of ``path`` (through :data:`ops`)."""
    return ops.read_file(os.fspath(path))


def temp_name_pattern(path: str) -> "re.Pattern[str]":
    """The names :func:`atomic_write` gives its temporary files for ``path`` (in its folder)."""
    return re.compile(r"\." + re.escape(os.path.basename(path)) + r"\.[" + _TEMP_ALPHABET + r"]{8}\.tmp\Z")


def remove_stale_temps(path: str) -> int:
    """Delete temporary files :func:`atomic_write` left for ``path`` (a write that was
    killed before its rename); only names it could have created. Returns how many.
    The caller must hold the lock that serialises writes to ``path``."""
    folder = os.path.dirname(os.path.abspath(path))
    pat = temp_name_pattern(path)
    removed = 0
    for name in os.listdir(folder):
        if pat.match(name):
            ops.unlink(os.path.join(folder, name))
            removed += 1
    if removed:
        ops.fsync_dir(folder)
    return removed


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
    """fsync a folder so a rename in it is durable (see :meth:`FileOps.fsync_dir`)."""
    ops.fsync_dir(path)


def atomic_write(path: str, data: Any) -> None:
    """Write ``data`` (bytes, or a list of byte-like parts written in order) to ``path``
    atomically: temp file ``.NAME.XXXXXXXX.tmp`` in the same folder, fsync, rename,
    fsync the folder. A crash leaves the old file or the new one; a failure raises
    ``OSError`` and leaves the old file (the temp file is removed when possible)."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    prefix = os.path.join(folder, "." + os.path.basename(path) + ".")
    while True:
        tmp = prefix + "".join(secrets.choice(_TEMP_ALPHABET) for _ in range(8)) + ".tmp"
        try:
            fd = ops.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
            break
        except FileExistsError:
            continue
    try:
        try:
            for part in (data if isinstance(data, (list, tuple)) else (data,)):
                if len(part):
                    write_all(fd, part)
            ops.fsync(fd)
        finally:
            ops.close(fd)
        ops.replace(tmp, path)
    except BaseException:
        try:
            ops.unlink(tmp)
        except OSError:
            pass
        raise
    ops.fsync_dir(folder)


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
    data = read_file(path)
    return decode(data, semantics=semantics, clock=clock, verify=verify)
