"""File-backed capsules: a snapshot plus a durable, append-only journal.

Files beside the snapshot ``NAME.thermo``:

* ``NAME.thermo.journal`` — the current segment: a 40-byte header
  (``"THRJ"``, u16 version 1, u16 flags 0, the 32-byte head hash of the
  snapshot it continues) and then one frame per record:
  ``u32 length | u64 xxh3_64(payload) | payload`` (payload as in
  :func:`thermogram.io.encode_record`).
* ``NAME.thermo.journal.000001``, ``...000002`` — archived segments, kept
  until the user deletes them (:meth:`JournalFile.delete_archived`).
* ``NAME.thermo.lock`` — held (``flock``) by the one writer.

Every record is in the journal before the call that made it returns
(fsync policy ``"always"``; ``"batch"`` fsyncs every ``batch_size`` records
and on checkpoint/close; ``"never"`` leaves it to the OS). Opening replays
the journal after the snapshot and cuts a torn tail.
"""
from __future__ import annotations

import errno
import os
import re
import struct
from typing import TYPE_CHECKING, List, Optional, Tuple

import xxhash

from .io import Reader, atomic_write, decode_record, encode_record, encode_v2_parts, fsync_dir, load
from .errors import ChainError, FormatError, LockedError, ThermogramError

if TYPE_CHECKING:  # pragma: no cover
    from .core import Thermogram

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None

__all__ = ["JournalFile", "open_capsule", "read_journal", "FSYNC_POLICIES"]

HEADER = struct.Struct("<4sHH32s")
FRAME = struct.Struct("<IQ")
JMAGIC = b"THRJ"
FSYNC_POLICIES = ("always", "batch", "never")
MAX_FRAME = 1 << 31


def _journal_path(path: str) -> str:
    return path + ".journal"


def _lock_path(path: str) -> str:
    return path + ".lock"


def read_journal(jpath: str) -> Tuple[bytes, list, int, int]:
    """``(base head, records, end of the last good frame, file size)`` of a segment.

    Reading stops at the first frame that is incomplete or fails its checksum
    (a torn tail); records themselves are fully checked.
    """
    with open(jpath, "rb") as f:
        data = f.read()
    if len(data) < HEADER.size:
        raise FormatError(f"{jpath}: journal header truncated")
    magic, version, flags, base = HEADER.unpack_from(data, 0)
    if magic != JMAGIC or version != 1 or flags != 0:
        raise FormatError(f"{jpath}: not a thermogram journal segment")
    pos = HEADER.size
    good = pos
    recs = []
    n = len(data)
    while pos + FRAME.size <= n:
        length, checksum = FRAME.unpack_from(data, pos)
        start = pos + FRAME.size
        if length > n - start or length > MAX_FRAME:
            break
        payload = data[start:start + length]
        if xxhash.xxh3_64_intdigest(payload) != checksum:
            break
        try:
            rec = decode_record(Reader(payload, what="journal"))
        except FormatError:
            break
        recs.append(rec)
        pos = start + length
        good = pos
    return base, recs, good, n


class JournalFile:
    """The writer's side of a journal segment (see the module docs)."""

    def __init__(self, path: str, base_head: str, fsync: str = "always", batch_size: int = 1024,
                 create: bool = False):
        if fsync not in FSYNC_POLICIES:
            raise ThermogramError(f"fsync must be one of {FSYNC_POLICIES}, got {fsync!r}")
        self.path = path
        self.jpath = _journal_path(path)
        self.fsync = fsync
        self.batch_size = max(1, int(batch_size))
        self._unsynced = 0
        self._buf = bytearray()
        if create or not os.path.exists(self.jpath):
            self._create(base_head)
        self._fd = os.open(self.jpath, os.O_WRONLY | os.O_APPEND)

    def _create(self, base_head: str) -> None:
        atomic_write(self.jpath, HEADER.pack(JMAGIC, 1, 0, bytes.fromhex(base_head)))

    def append(self, rec, canonical: Optional[bytes] = None) -> None:
        """Write one record frame.

        ``"always"``: written and fsynced before return. ``"batch"``: buffered,
        written and fsynced every ``batch_size`` records (a crash loses at most the
        unsynced tail, which opening then cuts). ``"never"``: buffered the same way,
        written without fsync.
        """
        payload = encode_record(rec, canonical)
        frame = FRAME.pack(len(payload), xxhash.xxh3_64_intdigest(payload)) + payload
        if self.fsync == "always":
            self._write(frame)
            os.fsync(self._fd)
            return
        self._buf += frame
        self._unsynced += 1
        if self._unsynced >= self.batch_size:
            self.sync()

    def _write(self, data) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]

    def sync(self) -> None:
        """Write what is buffered and fsync it (``"never"``: write only)."""
        if self._fd is not None:
            if self._buf:
                self._write(self._buf)
                self._buf = bytearray()
            if self.fsync != "never":
                os.fsync(self._fd)
        self._unsynced = 0

    def archived(self) -> List[str]:
        """Archived segment paths, oldest first."""
        folder = os.path.dirname(os.path.abspath(self.jpath)) or "."
        base = os.path.basename(self.jpath)
        pat = re.compile(re.escape(base) + r"\.(\d{6})$")
        return sorted(os.path.join(folder, f) for f in os.listdir(folder) if pat.match(f))

    def rotate(self, base_head: str) -> str:
        """Archive the current segment and start a new one after ``base_head``; returns the archive path."""
        self.sync()
        os.close(self._fd)
        self._fd = None
        existing = self.archived()
        seq = int(existing[-1].rsplit(".", 1)[1]) + 1 if existing else 1
        target = f"{self.jpath}.{seq:06d}"
        os.replace(self.jpath, target)
        fsync_dir(os.path.dirname(os.path.abspath(self.jpath)))
        self._create(base_head)
        self._fd = os.open(self.jpath, os.O_WRONLY | os.O_APPEND)
        return target

    def delete_archived(self) -> int:
        """Delete archived segments (only when asked); returns how many."""
        paths = self.archived()
        for p in paths:
            os.unlink(p)
        return len(paths)

    def close(self) -> None:
        """Write and sync what is buffered (see :meth:`sync`), then close the file; a no-op when closed."""
        if self._fd is not None:
            try:
                self.sync()
            finally:
                os.close(self._fd)
                self._fd = None


class _Lock:
    def __init__(self, path: str):
        self.path = _lock_path(path)
        self.fd: Optional[int] = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is not None:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                os.close(self.fd)
                self.fd = None
                if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise LockedError(f"{path} is open for writing by another process "
                                      f"(lock {self.path}); open it with readonly=True to read") from None
                raise

    def release(self) -> None:
        if self.fd is not None:
            if fcntl is not None:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def _replay_journal(t: "Thermogram", base: bytes, recs: list) -> int:
    """Apply journal records the snapshot does not hold yet; returns how many were applied."""
    head = t.head_hash
    start = 0
    if base.hex() != head:
        # the snapshot was written after this segment began (a crash between the
        # snapshot and the rotation): skip what the snapshot already holds
        known = {r.hash for r in t.chain.records}
        if base.hex() not in known:
            raise FormatError("journal segment does not continue this snapshot")
        while start < len(recs) and recs[start].hash in known:
            start += 1
    from .core import replay_records
    try:
        replay_records(t, recs[start:])
    except ChainError as e:
        raise FormatError(f"journal record does not continue the capsule: {e}") from None
    return len(recs) - start


def open_capsule(cls, path, *, create: bool = False, readonly: bool = False, fsync: str = "always",
                 batch_size: int = 1024, clock=None, **kwargs) -> "Thermogram":
    """See :meth:`Thermogram.open`."""
    path = os.fspath(path)
    if fsync not in FSYNC_POLICIES:
        raise ThermogramError(f"fsync must be one of {FSYNC_POLICIES}, got {fsync!r}")
    lock = None if readonly else _Lock(path)
    try:
        jpath = _journal_path(path)
        if not os.path.exists(path):
            if not create or readonly:
                raise ThermogramError(f"{path} does not exist (pass create=True to make it)")
            name = kwargs.pop("name", None) or os.path.splitext(os.path.basename(path))[0]
            t = cls(name, clock=clock, **kwargs)
            atomic_write(path, encode_v2_parts(t))
            if os.path.exists(jpath):
                os.replace(jpath, jpath + ".orphan")
            journal = JournalFile(path, t.head_hash, fsync, batch_size, create=True)
        else:
            if kwargs and not create:
                raise ThermogramError(f"{path} exists: its configuration comes from the file "
                                      f"(unexpected {sorted(kwargs)}; they apply only with create=True)")
            t = load(path, clock=clock)
            journal = None
            if os.path.exists(jpath):
                base, recs, good, size = read_journal(jpath)
                _replay_journal(t, base, recs)
                if good < size and not readonly:
                    with open(jpath, "r+b") as f:  # cut the torn tail
                        f.truncate(good)
                        f.flush()
                        os.fsync(f.fileno())
                if not readonly:
                    journal = JournalFile(path, t.head_hash, fsync, batch_size)
            elif not readonly:
                journal = JournalFile(path, t.head_hash, fsync, batch_size, create=True)
        from .core import attach_files
        attach_files(t, path, journal, lock, readonly)
        return t
    except BaseException:
        if lock is not None:
            lock.release()
        raise
