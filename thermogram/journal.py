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
* ``NAME.thermo.journal.quarantine`` (``.quarantine.1``, ...) — bytes that
  :func:`recover_capsule` could not verify, moved aside, never deleted.

Fsync policies (what a returned call promises):

* ``"always"``: the record's frame is written and fsynced before the call returns.
  After a crash or power loss, every acknowledged record is there.
* ``"batch"``: records are buffered in memory and written + fsynced every
  ``batch_size`` records, on :meth:`JournalFile.sync`, checkpoint and close. A crash
  or power loss loses at most the records since the last fsync (fewer than
  ``batch_size``) and never anything before it.
* ``"never"``: buffered the same way and written every ``batch_size`` records without
  fsync; the snapshot (checkpoint) is still fsynced. A process crash loses at most the
  buffered records; a power loss may lose any record since the last checkpoint, and
  may leave a journal that only :func:`recover_capsule` opens.

I/O errors are fail-stop: a failed write, fsync, rename or truncate raises
:class:`~thermogram.errors.DurabilityError`, the record of the failing call is not
applied, the writer tries once to cut the file back to its last durable frame, and
every later append raises until the capsule is closed and opened again.

Opening replays the journal after the snapshot. A genuinely incomplete last frame
(a torn write) is cut. A bad frame followed by bytes that parse as frames is
corruption: opening raises :class:`~thermogram.errors.FormatError` naming the segment
and the byte offset and changes nothing; :func:`recover_capsule` moves the
unverifiable bytes to a quarantine file.

Why this module is one piece (~740 lines): the journal file, its scan, the writer lock,
opening and recovery all follow one framing and one fail-stop rule; split, each part would
need the others' invariants restated.
"""
from __future__ import annotations

import errno
import os
import re
import struct
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, List, Optional, Tuple

import numpy as np
import xxhash
from xxhash import xxh3_64_intdigest

from .io import Reader, decode_record, encode_record, encode_v2_parts, load
from .io import files
from .errors import ChainError, DurabilityError, FormatError, LockedError, ThermogramError, ValidationError

if TYPE_CHECKING:  # pragma: no cover
    from .core import Thermogram

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None

__all__ = ["JournalFile", "open_capsule", "recover_capsule", "read_journal", "scan_journal", "JournalScan",
           "RecoveryReport", "FSYNC_POLICIES", "load_consistent"]

HEADER = struct.Struct("<4sHH32s")
FRAME = struct.Struct("<IQ")
_pack_frame = FRAME.pack  # bound once: append runs it for every record
JMAGIC = b"THRJ"
FSYNC_POLICIES = ("always", "batch", "never")
MAX_FRAME = 1 << 31


def _journal_path(path: str) -> str:
    return path + ".journal"


def _lock_path(path: str) -> str:
    return path + ".lock"


@dataclass
class JournalScan:
    """What :func:`scan_journal` found in a segment.

    Attributes
    ----------
    base : bytes
        The head hash of the snapshot the segment continues.
    records : list
        The decoded records of the good frames, in order.
    offsets : list of int
        Byte offset of each record's frame.
    good : int
        End of the last good frame.
    size : int
        Size of the segment.
    corrupt_at : int or None
        When a bad frame is followed by bytes that parse as a frame (corruption, not a
        torn tail): the offset of the bad frame (== ``good``); else None.
    next_frame_at : int or None
        Offset of the first frame-like bytes after the bad one (when ``corrupt_at``).
    reason : str
        Why the frame at ``good`` is bad ("" when the segment is clean).
    """

    base: bytes
    records: list
    offsets: List[int]
    good: int
    size: int
    corrupt_at: Optional[int] = None
    next_frame_at: Optional[int] = None
    reason: str = ""


def _next_frame(data: bytes, start: int) -> Optional[int]:
    """Offset of the first position at or after ``start`` where a complete frame with a
    matching checksum begins, else None."""
    n = len(data)
    if n - start < FRAME.size + 1:
        return None
    b = np.frombuffer(data, np.uint8, count=n - start, offset=start).astype(np.uint64)
    m = len(b) - 3
    lengths = b[:m] | (b[1:m + 1] << 8) | (b[2:m + 2] << 16) | (b[3:m + 3] << 24)
    room = (n - start - FRAME.size) - np.arange(m, dtype=np.int64)
    cand = np.flatnonzero((lengths > 0) & (lengths.astype(np.int64) <= room))
    for i in cand.tolist():
        q = start + i
        length, checksum = FRAME.unpack_from(data, q)
        if xxhash.xxh3_64_intdigest(data[q + FRAME.size:q + FRAME.size + length]) == checksum:
            return q
    return None


def scan_journal(data: bytes, what: str = "journal") -> JournalScan:
    """Parse a segment's bytes (see :class:`JournalScan`).

    Raises
    ------
    FormatError
        The header is truncated or not a journal segment header.
    """
    if len(data) < HEADER.size:
        raise FormatError(f"{what}: journal header truncated")
    magic, version, flags, base = HEADER.unpack_from(data, 0)
    if magic != JMAGIC or version != 1 or flags != 0:
        raise FormatError(f"{what}: not a thermogram journal segment")
    pos = HEADER.size
    recs: list = []
    offsets: List[int] = []
    n = len(data)
    reason = ""
    decoded_bad = False
    while pos < n:
        if pos + FRAME.size > n:
            reason = "incomplete frame header"
            break
        length, checksum = FRAME.unpack_from(data, pos)
        start = pos + FRAME.size
        if length > n - start or length > MAX_FRAME:
            reason = f"frame length {length} runs past the end"
            break
        payload = data[start:start + length]
        if xxhash.xxh3_64_intdigest(payload) != checksum:
            reason = "frame checksum mismatch"
            break
        try:
            rec = decode_record(Reader(payload, what="journal"))
        except FormatError as e:  # the checksum matched: these bytes were written like this
            reason = f"frame does not decode ({e})"
            decoded_bad = True
            break
        recs.append(rec)
        offsets.append(pos)
        pos = start + length
    scan = JournalScan(base, recs, offsets, pos, n, reason=reason)
    if pos < n:
        nxt = pos if decoded_bad else _next_frame(data, pos + 1)
        if nxt is not None:
            scan.corrupt_at, scan.next_frame_at = pos, nxt
    return scan


def read_journal(jpath: str) -> Tuple[bytes, list, int, int]:
    """``(base head, records, end of the last good frame, file size)`` of a segment.

    Reading stops at the first frame that is incomplete, fails its checksum or does
    not decode; :func:`scan_journal` says whether more frames follow it.
    """
    s = scan_journal(files.read_file(jpath), jpath)
    return s.base, s.records, s.good, s.size


def _io_error(what: str, e: OSError) -> DurabilityError:
    err = DurabilityError(f"{what} failed: {e}")
    err.errno = e.errno
    return err


class JournalFile:
    """The writer's side of a journal segment (see the module docs).

    Attributes
    ----------
    failed : DurabilityError or None
        Set once a file operation failed; from then on every append, sync, rotate
        and checkpoint raises it (the writer is poisoned until reopened).
    """

    def __init__(self, path: str, base_head: str, fsync: str = "always", batch_size: int = 1024,
                 create: bool = False):
        if fsync not in FSYNC_POLICIES:
            raise ThermogramError(f"fsync must be one of {FSYNC_POLICIES}, got {fsync!r}")
        self.path = path
        self.jpath = _journal_path(path)
        self.fsync = fsync
        self.batch_size = max(1, int(batch_size))
        self.failed: Optional[DurabilityError] = None
        self._unsynced = 0
        self._parts: List[bytes] = []  # frames not yet written: head, payload, head, payload, ...
        self._fd: Optional[int] = None
        try:
            if create or not os.path.exists(self.jpath):
                self._create(base_head)
            self._fd = files.ops.open(self.jpath, os.O_WRONLY | os.O_APPEND)
        except OSError as e:
            raise _io_error(f"opening journal {self.jpath}", e) from e
        self._size = os.fstat(self._fd).st_size  # bytes written
        self._durable = self._size  # end of the last frame the policy lets us call durable

    def _create(self, base_head: str) -> None:
        files.atomic_write(self.jpath, HEADER.pack(JMAGIC, 1, 0, bytes.fromhex(base_head)))

    def check(self) -> None:
        if self.failed is not None:
            raise DurabilityError(f"{self.path}: the writer stopped after an I/O error ({self.failed}); "
                                  "close the capsule and open it again") from self.failed
        if self._fd is None:
            raise DurabilityError(f"{self.path}: the journal is closed")

    def poison(self, err: DurabilityError) -> DurabilityError:
        """Mark the writer failed with ``err`` and try once to cut the segment back to its
        last durable frame (the unacknowledged tail); returns ``err``."""
        if self.failed is None:
            self.failed = err
        self._parts = []
        self._unsynced = 0
        if self._fd is not None and self._size != self._durable:
            try:
                files.ops.truncate(self._fd, self._durable)
                if self.fsync != "never":
                    files.ops.fsync(self._fd)
                self._size = self._durable
            except OSError:
                pass  # the file stays as it is; opening cuts what does not parse
        return err

    def rollback_to(self, size: int) -> None:
        """After a failure: cut the segment back to ``size`` bytes (an earlier durable end,
        e.g. the start of a call that wrote several records); best effort."""
        if self._fd is not None and size < self._durable:
            self._durable = size
            try:
                files.ops.truncate(self._fd, size)
                if self.fsync != "never":
                    files.ops.fsync(self._fd)
                self._size = size
            except OSError:
                pass

    @property
    def durable_size(self) -> int:
        """Segment bytes that hold acknowledged, durable (under the policy) frames."""
        return self._durable

    def append(self, rec, canonical: Optional[bytes] = None) -> None:
        """Write one record frame (see the module docs for what each policy promises).

        Raises
        ------
        ValidationError
            The record cannot be encoded, or its frame would be longer than ``MAX_FRAME``
            bytes, which opening refuses (nothing was written).
        DurabilityError
            A write or fsync failed, or failed before (nothing of this record is acknowledged).
        """
        if self.failed is not None or self._fd is None:
            self.check()
        try:
            payload = encode_record(rec, canonical)
        except (KeyError, struct.error, OverflowError, TypeError, ValueError) as e:
            if isinstance(e, ThermogramError):
                raise
            raise ValidationError(f"record cannot be stored: {e!r}") from None
        n = len(payload)
        if n > MAX_FRAME:  # opening would refuse the frame: refuse the record instead
            raise ValidationError(f"record cannot be stored: its journal frame would hold {n} bytes, "
                                  f"over the {MAX_FRAME}-byte limit")
        head = _pack_frame(n, xxh3_64_intdigest(payload))
        if self.fsync == "always":
            try:
                files.write_all(self._fd, head + payload)
                self._size += FRAME.size + n
                files.ops.fsync(self._fd)
            except OSError as e:
                raise self.poison(_io_error(f"appending to {self.jpath}", e)) from e
            self._durable = self._size
            return
        parts = self._parts  # joined once at sync: cheaper than growing a bytearray per frame
        parts.append(head)
        parts.append(payload)
        self._unsynced = unsynced = self._unsynced + 1
        if unsynced >= self.batch_size:
            self.sync()

    def sync(self) -> None:
        """Write what is buffered and fsync it (``"never"``: write only)."""
        self.check()
        try:
            if self._parts:
                buf = b"".join(self._parts)
                self._parts = []
                self._size += len(buf)  # counted first: a short write leaves bytes to roll back
                files.write_all(self._fd, buf)
            if self.fsync != "never":
                files.ops.fsync(self._fd)
        except OSError as e:
            raise self.poison(_io_error(f"syncing {self.jpath}", e)) from e
        self._durable = self._size
        self._unsynced = 0

    def archived(self) -> List[str]:
        """Archived segment paths, oldest first."""
        folder = os.path.dirname(os.path.abspath(self.jpath)) or "."
        base = os.path.basename(self.jpath)
        pat = re.compile(re.escape(base) + r"\.(\d{6})$")
        return sorted(os.path.join(folder, f) for f in os.listdir(folder) if pat.match(f))

    def checkpoint(self, t: "Thermogram") -> None:
        """Write ``t``'s snapshot atomically, then archive this segment and start a new one.

        Each step is durable before the next (the snapshot's rename is fsynced before the
        segment is archived), so a crash or failure anywhere leaves files that open to the
        same records. A failure poisons the writer and raises :class:`DurabilityError`.
        """
        self.sync()
        try:
            files.atomic_write(self.path, encode_v2_parts(t))
        except OSError as e:
            raise self.poison(_io_error(f"writing snapshot {self.path}", e)) from e
        self.rotate(t.head_hash)

    def rotate(self, base_head: str) -> str:
        """Archive the current segment and start a new one after ``base_head``; returns the archive path."""
        self.sync()
        try:
            files.ops.close(self._fd)
            self._fd = None
            existing = self.archived()
            seq = int(existing[-1].rsplit(".", 1)[1]) + 1 if existing else 1
            target = f"{self.jpath}.{seq:06d}"
            files.ops.replace(self.jpath, target)
            files.fsync_dir(os.path.dirname(os.path.abspath(self.jpath)))
            self._create(base_head)
            self._fd = files.ops.open(self.jpath, os.O_WRONLY | os.O_APPEND)
        except OSError as e:
            raise self.poison(_io_error(f"starting a new segment of {self.jpath}", e)) from e
        self._size = self._durable = HEADER.size
        return target

    def delete_archived(self) -> int:
        """Delete archived segments (only when asked); returns how many."""
        paths = self.archived()
        for p in paths:
            files.ops.unlink(p)
        return len(paths)

    def close(self) -> None:
        """Write and sync what is buffered (see :meth:`sync`), then close the file; a no-op when
        closed. A poisoned writer closes without writing anything more."""
        if self._fd is not None:
            try:
                if self.failed is None:
                    self.sync()
            finally:
                try:
                    files.ops.close(self._fd)
                except OSError:
                    pass
                self._fd = None


#: Lock files held by writers in this process (real paths), to tell a second open in the
#: same process from one in another process.
_HELD: set = set()
_HELD_GUARD = threading.Lock()


class _Lock:
    def __init__(self, path: str):
        self.path = _lock_path(path)
        self._key = os.path.realpath(self.path)
        with _HELD_GUARD:
            if self._key in _HELD:
                self.fd = None
                raise LockedError(f"{path} is already open for writing in this process; close that "
                                  f"capsule first, or open it with readonly=True to read")
            self.fd: Optional[int] = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
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
            _HELD.add(self._key)

    def release(self) -> None:
        if self.fd is not None:
            if fcntl is not None:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None
            with _HELD_GUARD:
                _HELD.discard(self._key)


def _skip_known(t: "Thermogram", base: bytes, recs: list) -> int:
    """How many leading records of a segment the snapshot already holds."""
    if base.hex() == t.head_hash:
        return 0
    # the snapshot was written after this segment began (a crash between the
    # snapshot and the rotation): skip what the snapshot already holds
    known = {r.hash for r in t.chain.records}
    if base.hex() not in known:
        raise FormatError("journal segment does not continue this snapshot")
    start = 0
    while start < len(recs) and recs[start].hash in known:
        start += 1
    return start


def _replay_journal(t: "Thermogram", base: bytes, recs: list) -> int:
    """Apply journal records the snapshot does not hold yet; returns how many were applied."""
    start = _skip_known(t, base, recs)
    from .core import replay_records
    try:
        replay_records(t, recs[start:])
    except ChainError as e:
        raise FormatError(f"journal record does not continue the capsule: {e}") from None
    return len(recs) - start


def _corruption_message(jpath: str, path: str, scan: JournalScan) -> str:
    return (f"{jpath}: corrupt frame at byte {scan.corrupt_at} ({scan.reason}) followed by more "
            f"frames (from byte {scan.next_frame_at}; segment is {scan.size} bytes): this is damage, "
            f"not a torn write, so nothing was cut or deleted. Run `thermogram recover {path}` "
            "(Thermogram.recover) to keep the verified prefix and move the rest to a quarantine file")


def _cut(jpath: str, size: int) -> None:
    fd = files.ops.open(jpath, os.O_WRONLY)
    try:
        files.ops.truncate(fd, size)
        files.ops.fsync(fd)
    finally:
        files.ops.close(fd)


def open_capsule(cls, path, *, create: bool = False, readonly: bool = False, fsync: str = "always",
                 batch_size: int = 1024, clock=None, **kwargs) -> "Thermogram":
    """See :meth:`Thermogram.open`."""
    # one capsule, one name: a symlink resolves to the file it names, so every way of
    # reaching the snapshot shares its lock and journal
    path = os.path.realpath(os.fspath(path))
    if fsync not in FSYNC_POLICIES:
        raise ThermogramError(f"fsync must be one of {FSYNC_POLICIES}, got {fsync!r}")
    lock = None if readonly else _Lock(path)
    try:
        if not readonly:
            _refuse_hard_links(path)
        try:
            if readonly:
                t, journal = _open_readonly(cls, path, clock, kwargs), None
            else:
                t, journal = _open_files(cls, path, create, readonly, fsync, batch_size, clock, kwargs)
        except DurabilityError:
            raise
        except OSError as e:
            raise _io_error(f"opening {path}", e) from e
        from .core import attach_files
        attach_files(t, path, journal, lock, readonly)
        return t
    except BaseException:
        if lock is not None:
            lock.release()
        raise


def _refuse_hard_links(path: str) -> None:
    """A writer needs the snapshot to have exactly one name: a second hard link would get its
    own lock and journal, and its writes would never reach this name (nor this name's reach it)."""
    try:
        links = os.stat(path).st_nlink
    except FileNotFoundError:
        return
    if links > 1:
        raise LockedError(f"{path} has {links} names (hard links): a capsule opened for writing must have "
                          "exactly one, or writes through one name never reach the others; copy it "
                          "instead, or open it with readonly=True")


def _open_readonly(cls, path: str, clock, kwargs: dict) -> "Thermogram":
    """Load the snapshot and replay its journal segment without a lock (:func:`load_consistent`)."""
    if kwargs:
        raise ThermogramError(f"readonly=True opens an existing capsule (unexpected {sorted(kwargs)})")
    if not os.path.exists(path):
        raise ThermogramError(f"{path} does not exist (pass create=True to make it)")
    return load_consistent(path, lambda: load(path, clock=clock))


def load_consistent(path: str, load_snapshot: Callable[[], "Thermogram"]) -> "Thermogram":
    """``load_snapshot()`` (the capsule in snapshot ``path``) with its journal segment replayed,
    as a consistent pair, without a lock and without retrying.

    The segment's bytes are read *before* the snapshot. A writer's checkpoint writes the new
    snapshot (holding every record of the current segment) before it archives that segment
    and starts the next, so the snapshot read afterwards is the one the segment continues or
    a later one, which already holds every record of the segment (those are skipped): the
    result is the state after some record the writer acknowledged, never a mix, and never a
    state older than one the segment's bytes showed. A segment that is absent (none yet, or
    between a checkpoint's archive and its new segment) means the snapshot alone."""
    jpath = _journal_path(path)
    try:
        data = files.read_file(jpath)
    except FileNotFoundError:
        data = None
    t = load_snapshot()
    if data is not None:
        _replay_segment(t, path, jpath, data)
    return t


def _open_files(cls, path: str, create: bool, readonly: bool, fsync: str, batch_size: int, clock,
                kwargs: dict):
    jpath = _journal_path(path)
    if not readonly:
        files.remove_stale_temps(path)
        files.remove_stale_temps(jpath)
    if not os.path.exists(path):
        if not create or readonly:
            raise ThermogramError(f"{path} does not exist (pass create=True to make it)")
        name = kwargs.pop("name", None) or os.path.splitext(os.path.basename(path))[0]
        t = cls(name, clock=clock, **kwargs)
        files.atomic_write(path, encode_v2_parts(t))
        if os.path.exists(jpath):
            files.ops.replace(jpath, jpath + ".orphan")
        return t, JournalFile(path, t.head_hash, fsync, batch_size, create=True)
    if kwargs and not create:
        raise ThermogramError(f"{path} exists: its configuration comes from the file "
                              f"(unexpected {sorted(kwargs)}; they apply only with create=True)")
    t = load(path, clock=clock)
    if not os.path.exists(jpath):
        return t, (None if readonly else JournalFile(path, t.head_hash, fsync, batch_size, create=True))
    scan = _replay_segment(t, path, jpath)
    if readonly:
        return t, None
    if scan.good < scan.size:  # a torn last frame: cut it
        _cut(jpath, scan.good)
    return t, JournalFile(path, t.head_hash, fsync, batch_size)


def _replay_segment(t: "Thermogram", path: str, jpath: str, data: Optional[bytes] = None) -> JournalScan:
    """Apply to ``t`` (loaded from snapshot ``path``) the records of the journal segment
    ``jpath`` (its bytes ``data``, default: read now) that the snapshot does not hold yet;
    changes no file. Corruption (a bad frame followed by more frames) and a record that does
    not continue the capsule raise :class:`FormatError` naming the byte offset."""
    scan = scan_journal(files.read_file(jpath) if data is None else data, jpath)
    if scan.corrupt_at is not None:
        raise FormatError(_corruption_message(jpath, path, scan))
    start = _skip_known(t, scan.base, scan.records)
    from .core import replay_records
    for i in range(start, len(scan.records)):
        try:
            replay_records(t, scan.records[i:i + 1])
        except (ChainError, ValidationError) as e:
            raise FormatError(f"{jpath}: record at byte {scan.offsets[i]} does not continue the capsule "
                              f"({e}); nothing was cut or deleted. Run `thermogram recover {path}` to keep "
                              "the records before it and quarantine the rest") from None
    return scan


# ----------------------------------------------------------------------------- recovery
@dataclass
class RecoveryReport:
    """What :func:`recover_capsule` found and did.

    Attributes
    ----------
    path : str
        The snapshot.
    segment : str
        The journal segment examined.
    records_kept : int
        Journal records in the verified prefix (after the snapshot).
    verified_bytes : int
        Length of the verified prefix of the segment (the segment's new size).
    quarantined_bytes : int
        Bytes moved to ``quarantine`` (0: nothing was wrong).
    first_bad_offset : int or None
        Byte offset in the segment where verification stopped.
    frames_quarantined : int
        Complete, checksummed frames inside the quarantined bytes.
    quarantine : str or None
        The file holding the quarantined bytes (a new name, never an existing file).
    reason : str
        Why verification stopped ("" if it did not).
    """

    path: str
    segment: str
    records_kept: int = 0
    verified_bytes: int = 0
    quarantined_bytes: int = 0
    first_bad_offset: Optional[int] = None
    frames_quarantined: int = 0
    quarantine: Optional[str] = None
    reason: str = ""
    notes: List[str] = field(default_factory=list)

    def lines(self) -> List[str]:
        """A human-readable account, one line per fact."""
        out = [f"snapshot: {self.path}", f"segment: {self.segment}",
               f"verified: {self.records_kept} journal records, {self.verified_bytes} bytes"]
        if self.quarantined_bytes:
            out.append(f"stopped at byte {self.first_bad_offset}: {self.reason}")
            out.append(f"quarantined: {self.quarantined_bytes} bytes ({self.frames_quarantined} complete frames) "
                       f"-> {self.quarantine}")
        else:
            out.append("nothing to quarantine")
        return out + self.notes


def _count_frames(data: bytes, pos: int) -> int:
    n = 0
    while True:
        q = _next_frame(data, pos)
        if q is None:
            return n
        n += 1
        length = FRAME.unpack_from(data, q)[0]
        pos = q + FRAME.size + length


def _quarantine_path(jpath: str) -> str:
    cand = jpath + ".quarantine"
    i = 0
    while os.path.exists(cand):
        i += 1
        cand = f"{jpath}.quarantine.{i}"
    return cand


def recover_capsule(cls, path, *, clock=None) -> RecoveryReport:
    """See :meth:`Thermogram.recover`."""
    path = os.fspath(path)
    jpath = _journal_path(path)
    lock = _Lock(path)
    try:
        try:
            return _recover(cls, path, jpath, clock)
        except (DurabilityError, FormatError):
            raise
        except OSError as e:
            raise _io_error(f"recovering {path}", e) from e
    finally:
        lock.release()


def _recover(cls, path: str, jpath: str, clock) -> RecoveryReport:
    report = RecoveryReport(path, jpath)
    t = load(path, clock=clock)  # a damaged snapshot raises FormatError: nothing is touched
    files.remove_stale_temps(path)
    files.remove_stale_temps(jpath)
    if not os.path.exists(jpath):
        report.notes.append("no journal segment: the snapshot is the whole capsule")
        return report
    data = files.read_file(jpath)
    try:
        scan = scan_journal(data, jpath)
    except FormatError as e:
        scan = None
        report.reason = str(e)
        keep = 0
    if scan is not None:
        from .core import replay_records
        keep = scan.good
        report.reason = scan.reason
        try:
            start = _skip_known(t, scan.base, scan.records)
        except FormatError as e:
            start, keep, report.reason = 0, 0, str(e)
            scan.records = []
        n_ok = start
        for i in range(start, len(scan.records)):
            try:
                replay_records(t, scan.records[i:i + 1])
            except (ChainError, ValidationError) as e:
                keep, report.reason = scan.offsets[i], f"record does not continue the capsule ({e})"
                break
            n_ok += 1
        report.records_kept = n_ok - start
    report.verified_bytes = keep
    if keep < len(data):
        q = _quarantine_path(jpath)
        files.atomic_write(q, data[keep:])  # durable before anything is cut
        report.quarantine = q
        report.quarantined_bytes = len(data) - keep
        report.first_bad_offset = keep
        report.frames_quarantined = _count_frames(data, keep)
        if keep >= HEADER.size:
            _cut(jpath, keep)
        else:  # no usable header: start a fresh segment after the snapshot
            files.atomic_write(jpath, HEADER.pack(JMAGIC, 1, 0, bytes.fromhex(t.head_hash)))
            report.verified_bytes = 0
            report.notes.append("the segment header was unusable: a new empty segment continues the snapshot")
    return report
