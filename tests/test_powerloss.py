"""Power-loss simulation (in the style of ALICE / CrashMonkey).

The file operations of a run of capsule operations are recorded through
:mod:`thermogram.io.files`. A crash state keeps everything that was fsynced
(file contents by ``fsync``, folder entries by ``fsync_dir``) plus any prefix of each
file's unsynced writes (the last one possibly torn) and any subset of the folder's
unsynced creations, renames and deletions. Every state must open for writing and hold
every record acknowledged before the crash: all of them under ``fsync="always"``,
all up to the last sync under ``"batch"``.

``THERMOGRAM_POWERLOSS_STATES`` sets how many states are checked per policy (default 1200).
"""
import itertools
import os
import random
import shutil

import numpy as np

from conftest import StepClock
from thermogram import ConsolidationPolicy, DeltaBatch, Signal, Thermogram, signal_vector
from thermogram.io import files

STATES = int(os.environ.get("THERMOGRAM_POWERLOSS_STATES", "1200"))


class RecordingOps(files.FileOps):
    """Performs the real operations and logs the ones that change what is on disk."""

    def __init__(self, folder):
        self.folder = os.path.abspath(folder)
        self.log = []
        self.fds = {}

    def _name(self, path):
        path = os.path.abspath(path)
        assert os.path.dirname(path) == self.folder, path
        return os.path.basename(path)

    def open(self, path, flags, mode=0o644):
        fd = super().open(path, flags, mode)
        if os.path.isdir(path):
            return fd
        self.fds[fd] = self._name(path)
        self.log.append(("open", fd, self._name(path), bool(flags & os.O_APPEND), bool(flags & os.O_CREAT)))
        return fd

    def write(self, fd, data):
        n = super().write(fd, data)
        self.log.append(("write", fd, bytes(data[:n])))
        return n

    def fsync(self, fd):
        super().fsync(fd)
        if fd in self.fds:
            self.log.append(("fsync", fd))

    def truncate(self, fd, size):
        super().truncate(fd, size)
        self.log.append(("truncate", fd, size))

    def close(self, fd):
        super().close(fd)
        self.fds.pop(fd, None)
        self.log.append(("close", fd))

    def replace(self, src, dst):
        super().replace(src, dst)
        self.log.append(("rename", self._name(src), self._name(dst)))

    def unlink(self, path):
        super().unlink(path)
        self.log.append(("unlink", self._name(path)))

    def fsync_dir(self, path):
        super().fsync_dir(path)
        self.log.append(("fsync_dir",))

    def ack(self, head):
        self.log.append(("ack", head))


class Model:
    """Durable and pending state of one folder, rebuilt from a log prefix."""

    def __init__(self, initial):
        self.inodes = {}  # id -> [durable bytes, pending ops]
        self.durable_dir, self.pending_dir = {}, []
        self.dir = {}  # the logical (page cache) view
        for name, data in initial.items():
            i = len(self.inodes)
            self.inodes[i] = [data, []]
            self.durable_dir[name] = self.dir[name] = i
        self.fd_inode, self.fd_pos, self.fd_append = {}, {}, {}
        self.acked = None

    @staticmethod
    def content(base, ops):
        b = bytearray(base)
        for op in ops:
            if op[0] == "w":
                off, data = op[1], op[2]
                if len(b) < off:
                    b.extend(bytes(off - len(b)))
                b[off:off + len(data)] = data
            else:
                del b[op[1]:]
        return bytes(b)

    def logical(self, i):
        d, ops = self.inodes[i]
        return self.content(d, ops)

    def apply(self, ev):
        kind = ev[0]
        if kind == "open":
            _, fd, name, append, create = ev
            if name not in self.dir:
                assert create
                i = len(self.inodes)
                self.inodes[i] = [b"", []]
                self.dir[name] = i
                self.pending_dir.append(("link", name, i))
            self.fd_inode[fd], self.fd_pos[fd], self.fd_append[fd] = self.dir[name], 0, append
        elif kind == "write":
            _, fd, data = ev
            i = self.fd_inode[fd]
            off = len(self.logical(i)) if self.fd_append[fd] else self.fd_pos[fd]
            self.inodes[i][1].append(("w", off, data))
            self.fd_pos[fd] = off + len(data)
        elif kind == "truncate":
            self.inodes[self.fd_inode[ev[1]]][1].append(("t", ev[2]))
        elif kind == "fsync":
            i = self.fd_inode[ev[1]]
            self.inodes[i] = [self.logical(i), []]
        elif kind == "close":
            self.fd_inode.pop(ev[1], None)
        elif kind == "rename":
            _, src, dst = ev
            self.dir[dst] = self.dir.pop(src)
            self.pending_dir.append(("rename", src, dst))
        elif kind == "unlink":
            self.dir.pop(ev[1])
            self.pending_dir.append(("unlink", ev[1]))
        elif kind == "fsync_dir":
            self.durable_dir, self.pending_dir = dict(self.dir), []
        elif kind == "ack":
            self.acked = ev[1]

    def crash_states(self, rng, limit):
        """Up to ``limit`` random crash states: {name: bytes}."""
        pend = [(i, ops) for i, (d, ops) in self.inodes.items() if ops]
        n = len(self.pending_dir)
        subsets = (list(itertools.product((0, 1), repeat=n)) if n <= 4
                   else [tuple([1] * k + [0] * (n - k)) for k in range(n + 1)])
        out = []
        for _ in range(limit):
            keep_dir = rng.choice(subsets)
            d = dict(self.durable_dir)
            for keep, op in zip(keep_dir, self.pending_dir):
                if not keep:
                    continue
                if op[0] == "link":
                    d[op[1]] = op[2]
                elif op[0] == "rename":
                    if op[1] in d:
                        d[op[2]] = d.pop(op[1])
                else:
                    d.pop(op[1], None)
            contents = {}
            for i, ops in pend:
                k = rng.randint(0, len(ops))
                chosen = list(ops[:k])
                if k < len(ops) and ops[k][0] == "w" and rng.random() < 0.5:  # a torn write
                    w = ops[k]
                    chosen.append(("w", w[1], w[2][:rng.randint(0, len(w[2]))]))
                contents[i] = self.content(self.inodes[i][0], chosen)
            out.append({name: contents.get(i, self.inodes[i][0]) for name, i in d.items()})
        return out


def _workload(t, rec, policy):
    """The capsule operations under test; ``rec.ack`` marks what is acknowledged durable."""
    def ack():
        rec.ack(t.head_hash)
    synced = policy == "always"
    for i in range(4):
        t.write(f"k{i}", signal_vector([(1, i + 1), (-1, 3)]))
        if synced:
            ack()
    vals = np.linspace(-1, 1, 8, dtype=np.float32).reshape(4, 2)
    t.apply_batch(DeltaBatch.from_arrays([f"b{i}" for i in range(4)], vals, Signal.positive(90), timestamps=5))
    if synced:
        ack()
    t.checkpoint()
    ack()
    t.consolidate()
    if synced:
        ack()
    t.write("k9", signal_vector([(1, 200)]))
    if synced:
        ack()
    t.save(os.path.join(os.path.dirname(t.path), "copy.thermo"))
    t.checkpoint()
    ack()
    t.apply_decay()
    t.write("last", signal_vector([(-1, 50)]))
    if synced:
        ack()
    t.close()
    ack()


def _run(tmp_path, policy):
    work = tmp_path / "work"
    work.mkdir()
    p = str(work / "c.thermo")
    with Thermogram.open(p, create=True, clock=StepClock(), policy=ConsolidationPolicy.manual_only(),
                         fsync=policy, batch_size=3) as t:
        t.write("seed", signal_vector([(1, 1)]))
    initial = {n: open(work / n, "rb").read() for n in os.listdir(work) if not n.endswith(".lock")}
    rec = RecordingOps(work)
    with files.use_ops(rec):
        t = Thermogram.open(p, clock=StepClock(start=1_800_000_000_000_000_000), fsync=policy, batch_size=3)
        first_head = t.head_hash
        _workload(t, rec, policy)
    hashes = [r.hash for r in t.records()]
    final_digest = t.state_digest()

    rng = random.Random(1234)
    points = len(rec.log) + 1
    per_point = max(1, STATES // points)
    check = tmp_path / "check"
    checked = lost = unopenable = 0
    for e in range(points):
        m = Model(initial)
        for ev in rec.log[:e]:
            m.apply(ev)
        need = hashes.index(m.acked if m.acked is not None else first_head)
        for state in m.crash_states(rng, per_point):
            if check.exists():
                shutil.rmtree(check)
            check.mkdir()
            for name, data in state.items():
                (check / name).write_bytes(data)
            try:
                u = Thermogram.open(str(check / "c.thermo"))
            except Exception as exc:  # noqa: BLE001 - counted and reported below
                unopenable += 1
                print("unopenable at event", e, rec.log[e - 1][0] if e else None, repr(exc))
                continue
            with u:
                got = hashes.index(u.head_hash) if u.head_hash in hashes else -1
                if got < need or len(u.records()) != got + 1:
                    lost += 1
                    print("lost at event", e, "need", need, "got", got)
                u.write("after-crash", signal_vector([(1, 1)]))  # and it keeps working
            checked += 1
    assert unopenable == 0 and lost == 0, (unopenable, lost)
    assert checked >= min(STATES, points) // 2
    with Thermogram.open(p) as u:
        assert u.state_digest() == final_digest
    return checked, points


def test_power_loss_states_always(tmp_path):
    checked, points = _run(tmp_path, "always")
    print(f"always: {checked} crash states at {points} crash points, 0 lost, 0 unopenable")


def test_power_loss_states_batch(tmp_path):
    checked, points = _run(tmp_path, "batch")
    print(f"batch: {checked} crash states at {points} crash points, 0 lost, 0 unopenable")
