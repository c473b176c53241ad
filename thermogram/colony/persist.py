"""Saving and opening colonies, and the colony's state digest.

A colony is saved as a folder: one ``.thermo`` per member, named by the
SHA-256 of its bytes, plus a ``colony.json`` manifest written atomically last.
A crash at any point of a save leaves the previous manifest and every file it
names, i.e. the previous consistent colony. Files no manifest names are
deleted only after the new manifest is in place.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from ..canonical import lp, u64
from ..io import files as _files
from ..io.files import atomic_write, fsync_dir, read_file
from ..consolidation import ConsolidationPolicy
from ..core import Thermogram
from ..delta import Clock
from ..errors import FormatError, ValidationError
from ..limits import Limits
from ..neuromod import NeuromodState, NeuromodSyncConfig
from ..plasticity import PlasticityRule
from .config import ColonyConfig, ColonyMetadata
from .routing import is_partition

__all__ = ["MANIFEST_NAME"]

MANIFEST_NAME = "colony.json"
"""File name of a saved colony's manifest."""
_MANIFEST_FORMAT = "thermogram-colony"
_MANIFEST_VERSION = 1
_MEMBER_FILE = re.compile(r"^member-[0-9a-f]{32}\.thermo$")


# ----------------------------------------------------------------------------- digest
def colony_digest(colony_id: str, bounds: Sequence[int], owners: Sequence[int],
                  members: Sequence[Thermogram], neuro: Sequence[NeuromodState],
                  central: NeuromodState) -> str:
    """SHA-256 (hex) over a colony's logical state: the hash ranges and their
    members, every member's state digest, and the central and per-member
    neuromodulator levels."""
    h = hashlib.sha256(b"thermogram:colony:v1\x00")
    h.update(lp(colony_id.encode("utf-8", "surrogatepass")))
    h.update(u64(len(bounds)))
    for b, o in zip(bounds, owners):
        h.update(u64(b) + lp(members[o].id.encode("utf-8", "surrogatepass")))
    h.update(u64(len(members)))
    for m, nm in zip(members, neuro):
        h.update(lp(m.id.encode("utf-8", "surrogatepass")) + bytes.fromhex(m.state_digest()))
        h.update(nm.as_array().tobytes())
    h.update(central.as_array().tobytes())
    return h.hexdigest()


# ----------------------------------------------------------------------------- saving
def manifest(*, colony_id: str, name: str, metadata: ColonyMetadata, next_member: int,
             config: ColonyConfig, rule: PlasticityRule, policy: ConsolidationPolicy,
             custom_locality: bool, bounds: Sequence[int], owners: Sequence[int],
             members: Sequence[Thermogram], files: Sequence[Tuple[str, str]],
             neuro: Sequence[NeuromodState], sync: Sequence[NeuromodSyncConfig],
             central: NeuromodState, default_sync: NeuromodSyncConfig) -> Dict[str, Any]:
    """The manifest document of a colony whose members were saved as ``files``
    (``(file name, sha256)`` per member, in member order)."""
    md = metadata
    return {
        "format": _MANIFEST_FORMAT, "version": _MANIFEST_VERSION,
        "id": colony_id, "name": name,
        "metadata": {"created": md.created, "modified": md.modified, "total_entries": md.total_entries,
                     "split_count": md.split_count, "merge_count": md.merge_count},
        "next_member": next_member,
        "config": config.to_dict(), "rule": rule.to_dict(), "policy": policy.to_dict(),
        "locality": "custom" if custom_locality else "prefix",
        "ranges": [[b, members[o].id] for b, o in zip(bounds, owners)],
        "neuromod": central.to_dict(),
        "default_sync": default_sync.to_dict(),
        "members": [{"id": m.id, "file": f, "sha256": sha, "state_digest": m.state_digest(),
                     "neuromod": nm.to_dict(), "sync": sc.to_dict()}
                    for m, (f, sha), nm, sc in zip(members, files, neuro, sync)],
    }


def manifest_bytes(doc: Dict[str, Any]) -> bytes:
    """The manifest as written: ``doc`` plus the SHA-256 of its canonical JSON."""
    body = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    doc = dict(doc, checksum=hashlib.sha256(body.encode()).hexdigest())
    return json.dumps(doc, sort_keys=True, indent=1).encode()


def _file_has(path: str, sha: str) -> bool:
    """Whether ``path`` exists with exactly the content of SHA-256 ``sha``."""
    try:
        return hashlib.sha256(read_file(path)).hexdigest() == sha
    except OSError:
        return False


LOCK_NAME = ".colony.lock"
"""The lock file of a colony folder: saves hold it exclusively, opens shared."""


@contextmanager
def folder_lock(folder: str, shared: bool = False) -> Iterator[None]:
    """Hold the colony folder's lock (``flock`` on ``FOLDER/.colony.lock``), waiting for it:
    exclusive while a save writes member files, the manifest and deletes what no manifest
    names; shared while an open reads them. Two processes saving one folder then take
    turns, and an open never sees a save half done. A no-op where ``fcntl`` is missing."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    try:
        fd = os.open(os.path.join(folder, LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o666)
    except PermissionError:
        if not shared:
            raise
        yield  # a read-only folder: nobody can be saving into it
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def save_folder(folder: str, members: Sequence[Thermogram],
                make_manifest: Callable[[List[Tuple[str, str]]], Dict[str, Any]]) -> str:
    """Save members as ``member-<sha256>.thermo`` (atomically, skipped when that
    file already exists), then the manifest ``make_manifest(files)`` (atomically,
    last), then delete member and temporary files no manifest names.
    Returns the absolute folder."""
    folder = os.path.abspath(os.fspath(folder))
    os.makedirs(folder, exist_ok=True)
    with folder_lock(folder):
        return _save_locked(folder, members, make_manifest)


def _save_locked(folder: str, members: Sequence[Thermogram],
                 make_manifest: Callable[[List[Tuple[str, str]]], Dict[str, Any]]) -> str:
    files = []
    for m in members:
        data = m.to_bytes()
        sha = hashlib.sha256(data).hexdigest()
        fname = f"member-{sha[:32]}.thermo"
        path = os.path.join(folder, fname)
        if not _file_has(path, sha):
            atomic_write(path, data)
        files.append((fname, sha))
    atomic_write(os.path.join(folder, MANIFEST_NAME), manifest_bytes(make_manifest(files)))
    keep = {f for f, _ in files}
    removed = False
    for f in os.listdir(folder):
        stale_member = _MEMBER_FILE.match(f) and f not in keep
        stale_tmp = f.startswith((".member-", "." + MANIFEST_NAME + ".")) and f.endswith(".tmp")
        if stale_member or stale_tmp:
            try:
                _files.ops.unlink(os.path.join(folder, f))
                removed = True
            except OSError:
                pass
    if removed:
        fsync_dir(folder)
    return folder


# ----------------------------------------------------------------------------- opening
def read_manifest(folder: str) -> Dict[str, Any]:
    """Read and check a folder's manifest (JSON, format, version, checksum).

    Raises
    ------
    FormatError
        The manifest is missing, not JSON, not a colony manifest, of another
        version, or its checksum does not match.
    """
    mpath = os.path.join(folder, MANIFEST_NAME)
    try:
        raw = read_file(mpath)
    except FileNotFoundError:
        raise FormatError(f"{folder} holds no colony ({MANIFEST_NAME} is missing)") from None
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise FormatError(f"{MANIFEST_NAME} is not valid JSON: {e}") from None
    if not isinstance(doc, dict) or doc.get("format") != _MANIFEST_FORMAT:
        raise FormatError(f"{MANIFEST_NAME} is not a thermogram colony manifest")
    if doc.get("version") != _MANIFEST_VERSION:
        raise FormatError(f"unsupported colony manifest version {doc.get('version')!r}")
    body = {k: v for k, v in doc.items() if k != "checksum"}
    expect = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    if doc.get("checksum") != expect:
        raise FormatError(f"{MANIFEST_NAME} checksum mismatch (corrupt or edited manifest)")
    return doc


def _sync_from_dict(d: Dict[str, Any], clock: Optional[Clock]) -> NeuromodSyncConfig:
    return NeuromodSyncConfig(bool(d["enabled"]), float(d["sync_rate"]), int(d["sync_interval_ms"]), clock)


class Restored(NamedTuple):
    """A colony's state as read back from a saved folder."""

    config: ColonyConfig
    rule: PlasticityRule
    policy: ConsolidationPolicy
    metadata: ColonyMetadata
    next_member: int
    central: NeuromodState
    default_sync: NeuromodSyncConfig
    members: List[Thermogram]
    neuro: List[NeuromodState]
    sync: List[NeuromodSyncConfig]
    bounds: List[int]
    owners: List[int]


def restore(doc: Dict[str, Any], folder: str, *, colony_id: str, name: str, verify: bool,
            clock: Clock, member_clock: Clock, limits: Limits) -> Restored:
    """Rebuild a colony's state from a checked manifest (see :func:`read_manifest`).

    Checks each member file's SHA-256, each member's id and state digest,
    (``verify``) every record hash, and that the ranges partition the hash space.

    Raises
    ------
    FormatError
        A member file is missing or differs from the manifest, or the manifest
        is malformed.
    """
    try:
        config = ColonyConfig.from_dict(doc["config"])
        rule = PlasticityRule.from_dict(doc["rule"])
        policy = ConsolidationPolicy.from_dict(doc["policy"])
        md = doc["metadata"]
        metadata = ColonyMetadata(colony_id, name, int(md["created"]), int(md["modified"]),
                                  int(md["total_entries"]), int(md["split_count"]), int(md["merge_count"]))
        next_member = int(doc["next_member"])
        central = NeuromodState.from_dict(doc["neuromod"])
        default_sync = _sync_from_dict(doc["default_sync"], clock)
        members: List[Thermogram] = []
        neuro: List[NeuromodState] = []
        sync: List[NeuromodSyncConfig] = []
        for e in doc["members"]:
            path = os.path.join(folder, os.path.basename(str(e["file"])))
            try:
                data = read_file(path)
            except FileNotFoundError:
                raise FormatError(f"member file {e['file']} named by the manifest is missing") from None
            if hashlib.sha256(data).hexdigest() != e["sha256"]:
                raise FormatError(f"member file {e['file']} does not match its SHA-256 in the manifest")
            m = Thermogram.from_bytes(data, clock=member_clock, verify=verify)
            if m.id != e["id"]:
                raise FormatError(f"member file {e['file']} holds {m.id!r}, the manifest says {e['id']!r}")
            if m.state_digest() != e["state_digest"]:
                raise FormatError(f"member {m.id!r}: state digest differs from the manifest")
            m.limits = limits
            members.append(m)
            neuro.append(NeuromodState.from_dict(e["neuromod"]))
            sync.append(_sync_from_dict(e["sync"], clock))
        pos = {m.id: i for i, m in enumerate(members)}
        bounds = [int(b) for b, _ in doc["ranges"]]
        owners = [pos[mid] for _, mid in doc["ranges"]]
    except (KeyError, TypeError, ValueError) as e:
        if isinstance(e, ValidationError):
            raise FormatError(f"colony manifest: {e}") from None
        raise FormatError(f"colony manifest is malformed: {e!r}") from None
    if not is_partition(bounds, owners, len(members)):
        raise FormatError("colony manifest: hash ranges are not a partition among the members")
    return Restored(config, rule, policy, metadata, next_member, central, default_sync,
                    members, neuro, sync, bounds, owners)


def check_routes(members: Sequence[Thermogram], route_many: Callable[[List[str]], np.ndarray]) -> None:
    """Raise :class:`FormatError` unless every key routes to the member holding it."""
    for i, m in enumerate(members):
        ks = m.keys()
        if ks and not bool((route_many(ks) == i).all()):
            raise FormatError(f"member {m.id!r} holds keys that route elsewhere "
                              "(wrong locality function, or a corrupt manifest)")
