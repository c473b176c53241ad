"""Durability under real faults: fail-stop on I/O errors, validation before the journal
write, corruption versus torn tails, recovery, stale temp files, and a sweep that fails
the N-th file operation of every durable operation (EIO, ENOSPC, short writes).

``THERMOGRAM_FAULT_SWEEP`` caps how many fault positions are tried per operation and
fault kind (default 64: every position of these small operations).
"""
import errno
import os
import shutil

import numpy as np
import pytest

from conftest import StepClock
from thermogram import ConsolidationPolicy, DeltaBatch, FormatError, Signal, Thermogram, signal_vector
from thermogram.cli import main as cli_main
from thermogram.errors import DurabilityError, ReadOnlyError, ValidationError
from thermogram.io import files
from thermogram.journal import HEADER, read_journal, scan_journal

SWEEP = int(os.environ.get("THERMOGRAM_FAULT_SWEEP", "64"))
FAULTS = ("eio", "enospc", "short")


class FaultyOps(files.FileOps):
    """Real file operations, except that call number ``fail_at`` (1-based) fails:
    ``eio``/``enospc`` raise; ``short`` writes half of the bytes and fails the next write
    with ENOSPC (a disk filling up; other calls fail with EIO). ``fail_at=None`` counts."""

    COUNTED = ("open", "write", "fsync", "truncate", "replace", "unlink", "fsync_dir", "read_file")

    def __init__(self, fail_at=None, kind="eio"):
        self.fail_at, self.kind, self.calls, self.fired = fail_at, kind, 0, False
        self._full = False

    def _tick(self, name):
        self.calls += 1
        if self.fail_at is not None and self.calls == self.fail_at:
            self.fired = True
            if self.kind == "short" and name == "write":
                self._full = True
                return "short"
            raise OSError(errno.ENOSPC if self.kind == "enospc" else errno.EIO, f"injected fault in {name}")
        if name == "write" and self._full:
            raise OSError(errno.ENOSPC, "injected: disk full")
        return None

    def open(self, path, flags, mode=0o644):
        self._tick("open")
        return super().open(path, flags, mode)

    def write(self, fd, data):
        if self._tick("write") == "short":
            return super().write(fd, data[:max(1, len(data) // 2)])
        return super().write(fd, data)

    def fsync(self, fd):
        self._tick("fsync")
        super().fsync(fd)

    def truncate(self, fd, size):
        self._tick("truncate")
        super().truncate(fd, size)

    def replace(self, src, dst):
        self._tick("replace")
        super().replace(src, dst)

    def unlink(self, path):
        self._tick("unlink")
        super().unlink(path)

    def fsync_dir(self, path):
        self._tick("fsync_dir")
        super().fsync_dir(path)

    def read_file(self, path):
        self._tick("read_file")
        return super().read_file(path)


def v(*pairs):
    return signal_vector(list(pairs))


def make(path, **kw):
    kw.setdefault("policy", ConsolidationPolicy.manual_only())
    kw.setdefault("clock", StepClock())
    return Thermogram.open(path, create=True, **kw)


def digest_of(path):
    with Thermogram.open(path, readonly=True) as t:
        return t.state_digest(), t.head_hash


# ---------------------------------------------------------------- the five failures
def test_bitflip_mid_journal_is_corruption_not_a_torn_tail(tmp_path):
    p = tmp_path / "c.thermo"
    with make(p) as t:
        for i in range(10):
            t.write(f"k{i}", v((1, i + 1)))
    j = str(p) + ".journal"
    _, recs, good, size = read_journal(j)
    offs = scan_journal(open(j, "rb").read()).offsets
    assert len(recs) == 10 and good == size
    before = open(j, "rb").read()
    damaged = bytearray(before)
    damaged[offs[1] + 20] ^= 0x01  # one bit in frame 2's payload
    open(j, "wb").write(bytes(damaged))
    for readonly in (False, True):
        with pytest.raises(FormatError) as e:
            Thermogram.open(p, readonly=readonly)
        assert j in str(e.value) and f"byte {offs[1]}" in str(e.value)
    assert open(j, "rb").read() == bytes(damaged)  # nothing was cut or deleted

    report = Thermogram.recover(p)
    assert report.records_kept == 1 and report.verified_bytes == offs[1]
    assert report.first_bad_offset == offs[1] and report.frames_quarantined == 8
    assert report.quarantine == j + ".quarantine"
    assert open(report.quarantine, "rb").read() == bytes(damaged[offs[1]:])
    with Thermogram.open(p) as u:
        assert u.keys() == ["k0"] and u.verify()
        u.write("new", v((1, 1)))
    # a second recovery finds nothing wrong and never overwrites the first quarantine file
    again = Thermogram.recover(p)
    assert again.quarantined_bytes == 0 and again.records_kept == 2
    assert open(j + ".quarantine", "rb").read() == bytes(damaged[offs[1]:])


def test_recover_quarantines_under_a_new_name_and_cli(tmp_path, capsys):
    p = tmp_path / "c.thermo"
    with make(p) as t:
        for i in range(4):
            t.write(f"k{i}", v((1, i + 1)))
    j = str(p) + ".journal"
    open(j + ".quarantine", "wb").write(b"earlier")
    data = bytearray(open(j, "rb").read())
    offs = scan_journal(bytes(data)).offsets
    data[offs[2] + 3] ^= 0x80  # the length field of frame 3: claims to run past the end
    open(j, "wb").write(bytes(data))
    with pytest.raises(FormatError):
        Thermogram.open(p)
    assert cli_main(["recover", str(p)]) == 0
    out = capsys.readouterr().out
    assert f"stopped at byte {offs[2]}" in out and "2 journal records" in out
    assert open(j + ".quarantine", "rb").read() == b"earlier"
    assert open(j + ".quarantine.1", "rb").read() == bytes(data[offs[2]:])
    with Thermogram.open(p) as u:
        assert u.keys() == ["k0", "k1"]


def test_recover_refuses_a_damaged_snapshot_and_touches_nothing(tmp_path):
    p = tmp_path / "c.thermo"
    with make(p) as t:
        t.write("a", v((1, 1)))
    raw = bytearray(open(p, "rb").read())
    raw[len(raw) // 2] ^= 0xFF
    open(p, "wb").write(bytes(raw))
    jbefore = open(str(p) + ".journal", "rb").read()
    with pytest.raises(FormatError):
        Thermogram.recover(p)
    assert open(p, "rb").read() == bytes(raw) and open(str(p) + ".journal", "rb").read() == jbefore
    assert not os.path.exists(str(p) + ".journal.quarantine")


@pytest.mark.parametrize("policy", ["always", "batch"])
@pytest.mark.parametrize("kind", ["enospc", "short", "eio"])
def test_failed_write_poisons_the_writer_and_loses_nothing_acknowledged(tmp_path, policy, kind):
    p = tmp_path / "c.thermo"
    t = make(p, fsync=policy, batch_size=2)
    for i in range(4):
        t.write(f"k{i}", v((1, i + 1)))
    acked = t.state_digest()
    ops = FaultyOps(fail_at=1, kind=kind)
    with files.use_ops(ops), pytest.raises(DurabilityError):
        t.write("x1", v((1, 9)))
        t.write("x2", v((1, 9)))  # batch: the second one flushes
    assert ops.fired
    for _ in range(8):  # every later mutation fails, reads keep working
        with pytest.raises(DurabilityError):
            t.write("later", v((1, 1)))
    with pytest.raises(DurabilityError):
        t.checkpoint()
    assert t.read("k3").tolist() == [(1, 4)] and "later" not in t
    t.close()
    with pytest.raises(ReadOnlyError):
        t.write("after-close", v((1, 1)))
    with Thermogram.open(p) as u:
        d = u.state_digest()
        u.verify()
    if policy == "always":
        assert d == t.state_digest() == acked
    else:  # the first buffered record was acknowledged but never synced: rolled back with the failed one
        assert d == acked and "x1" in t


def test_failed_fsync_keeps_the_capsule_openable(tmp_path):
    p = tmp_path / "c.thermo"
    t = make(p)
    t.write("a", v((1, 1)))
    acked = (t.state_digest(), t.head_hash)
    with files.use_ops(FaultyOps(fail_at=2, kind="eio")), pytest.raises(DurabilityError):
        t.write("b", v((1, 2)))  # write ok, fsync fails
    assert "b" not in t and (t.state_digest(), t.head_hash) == acked
    t.close()
    with Thermogram.open(p) as u:  # no "record does not continue the capsule"
        assert (u.state_digest(), u.head_hash) == acked
        u.write("c", v((1, 3)))
    with Thermogram.open(p) as u:
        assert u.keys() == ["a", "c"]


@pytest.mark.parametrize("bad", [2 ** 70, -(2 ** 63) - 1, 1.5, True, "now"])
def test_bad_clock_is_rejected_before_anything_is_journaled(tmp_path, bad):
    p = tmp_path / "c.thermo"
    good = StepClock()
    t = make(p, clock=good)
    t.write("a", v((1, 1)))
    t.write("b", v((1, 2)))
    before = (t.state_digest(), t.head_hash, os.path.getsize(str(p) + ".journal"), t.pending_count)
    t.clock = lambda: bad
    for call in (t.apply_decay, t.consolidate, t.run_thermal_transitions, t.crystallize,
                 lambda: t.insert_entry("z", v((1, 1)), Signal.positive(9)), t.should_consolidate, t.now):
        with pytest.raises(ValidationError):
            call()
    with pytest.raises((ValidationError, ValueError)):
        t.write("c", v((1, 3)))  # a float clock used to raise after the commit
    assert (t.state_digest(), t.head_hash, os.path.getsize(str(p) + ".journal"), t.pending_count) == before
    t.clock = good
    t.save(tmp_path / "copy.thermo")  # no struct.error
    t.checkpoint()
    t.write("c", v((1, 3)))
    t.close()
    with Thermogram.open(p) as u:
        assert u.keys() == ["a", "b", "c"] and u.state_digest() == t.state_digest()


def test_clock_range_edges_are_accepted(tmp_path):
    for edge in (-(2 ** 63), 2 ** 63 - 1):
        t = Thermogram("e", clock=lambda: edge, policy=ConsolidationPolicy.manual_only())
        t.apply_decay()
        assert Thermogram.from_bytes(t.to_bytes()).state_digest() == t.state_digest()


def test_failing_auto_consolidation_leaves_no_trace_on_disk(tmp_path):
    from thermogram.consolidation import ConsolidationTrigger
    p = tmp_path / "c.thermo"
    policy = ConsolidationPolicy((ConsolidationTrigger.delta_count(3),))
    with make(p, policy=policy) as t:
        t.write("a", v((1, 1)))
        t.write("b", v((1, 2)))
        assert t.pending_count == 2
    t = Thermogram.open(p, clock=StepClock())
    acked = t.state_digest()
    # fail the consolidate record's write (call 3: the delta's write + fsync succeed)
    with files.use_ops(FaultyOps(fail_at=3, kind="eio")), pytest.raises(DurabilityError):
        t.write("trigger", v((1, 1)))
    t.close()
    with Thermogram.open(p) as u:
        assert u.state_digest() == acked and "trigger" not in u and u.pending_count == 2
    with Thermogram.open(p) as u:  # and without a fault it consolidates as the policy says
        u.write("trigger", v((1, 1)))
        assert u.pending_count == 0


# ---------------------------------------------------------------- stale temps
def test_open_removes_only_its_own_stale_temp_files(tmp_path):
    p = tmp_path / "c.thermo"
    with make(p) as t:
        t.write("a", v((1, 1)))
    own = [".c.thermo.ab1_x9z0.tmp", ".c.thermo.journal.0123abcd.tmp"]
    foreign = [".c.thermo.ABCDEFGH.tmp", ".c.thermo.abc.tmp", ".d.thermo.abcdefgh.tmp", "c.thermo.abcdefgh.tmp",
               ".c.thermo.abcdefgh.tmp.keep"]
    for name in own + foreign:
        (tmp_path / name).write_bytes(b"partial")
    with Thermogram.open(p, readonly=True):
        pass
    assert all((tmp_path / n).exists() for n in own)  # readers never delete
    with Thermogram.open(p) as u:
        assert u.keys() == ["a"]
    assert not any((tmp_path / n).exists() for n in own)
    assert all((tmp_path / n).exists() for n in foreign)


# ---------------------------------------------------------------- fault sweep
def _setup(tmp, policy="always", batch_size=3):
    p = os.path.join(tmp, "c.thermo")
    with make(p, fsync=policy, batch_size=batch_size) as t:
        for i in range(3):
            t.write(f"k{i}", v((1, i + 1)))
        t.consolidate()
        t.write("p0", v((1, 5)))
    return p


def _op_open(p):
    j = p + ".journal"
    with open(j, "ab") as f:
        f.write(b"\x05\x00\x00")  # a torn tail to cut
    open(os.path.join(os.path.dirname(p), ".c.thermo.deadbeef.tmp"), "wb").write(b"x")
    return None


def _scenarios():
    """name -> (fsync policy, preparation run without faults, the operation under faults)."""
    def nothing(t):
        pass

    def append(policy, n):
        def run(t):
            for i in range(n):
                t.write(f"n{i}", v((1, i + 7)))
        return policy, nothing, run

    def batch(t):
        vals = np.linspace(-1, 1, 12, dtype=np.float32).reshape(6, 2)
        t.apply_batch(DeltaBatch.from_arrays([f"b{i}" for i in range(6)], vals, Signal.positive(99),
                                             timestamps=7))

    def pre(t):
        t.write("pre", v((1, 3)))

    def save(t):
        t.save(os.path.join(os.path.dirname(t.path), "copy.thermo"))

    return {
        "append-always": append("always", 1),
        "append-batch": append("batch", 3),
        "append-never": append("never", 3),
        "batch-append": ("always", nothing, batch),
        "consolidate": ("always", nothing, lambda t: t.consolidate()),
        "checkpoint": ("always", pre, lambda t: t.checkpoint()),
        "checkpoint-batch": ("batch", pre, lambda t: t.checkpoint()),
        "save": ("always", pre, save),
    }


SCENARIOS = _scenarios()


def _positions(total):
    if total <= SWEEP:
        return list(range(1, total + 1))
    return sorted(set(np.linspace(1, total, SWEEP).round().astype(int).tolist()))


def _run_capsule_op(tmp, name, fail_at, kind):
    policy, prep, fn = SCENARIOS[name]
    p = _setup(tmp, policy)
    t = Thermogram.open(p, fsync=policy, batch_size=3, clock=StepClock(start=10 ** 12))
    n_durable = len(t.records())
    prep(t)
    acked = (t.state_digest(), t.head_hash)
    acked_records = t.records()
    ops = FaultyOps(fail_at, kind)
    raised = None
    with files.use_ops(ops):
        try:
            fn(t)
        except DurabilityError as e:
            raised = e
    after = (t.state_digest(), t.head_hash)
    t.close()
    with Thermogram.open(p) as u:  # the capsule always reopens
        got = (u.state_digest(), u.head_hash)
        assert u.verify()
    if raised is None:
        assert got == after, (name, fail_at, kind)
    elif policy == "always":  # exactly the acknowledged records
        assert got == acked, (name, fail_at, kind, raised)
    else:  # "batch"/"never": the acknowledged records up to at least the last sync before the call
        hashes = [r.hash for r in acked_records]
        assert got[1] in hashes[n_durable - 1:], (name, fail_at, kind, raised)
        k = hashes.index(got[1]) + 1
        assert Thermogram.replay(acked_records[:k]).state_digest() == got[0]
    if name == "save":
        copy = os.path.join(tmp, "copy.thermo")
        if raised is None:
            assert Thermogram.load(copy).state_digest() == after[0]
        else:  # the old file (none) or, when only the folder's fsync failed, the complete new one
            assert not os.path.exists(copy) or Thermogram.load(copy).state_digest() == after[0]
    leftovers = [f for f in os.listdir(tmp) if f.endswith(".tmp")]
    return ops, raised, leftovers


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_fault_sweep_capsule_operations(tmp_path, name):
    os.makedirs(tmp_path / "count")
    counter = _run_capsule_op(str(tmp_path / "count"), name, None, "eio")[0]
    assert counter.calls > 0
    failures = 0
    for kind in FAULTS:
        for n in _positions(counter.calls):
            tmp = str(tmp_path / f"{kind}-{n}")
            os.makedirs(tmp)
            ops, raised, _ = _run_capsule_op(tmp, name, n, kind)
            assert ops.fired
            failures += raised is not None
            shutil.rmtree(tmp)
    assert failures > 0  # the faults were really hit


def _run_open(tmp, fail_at, kind):
    p = _setup(tmp)
    expected = digest_of(p)
    _op_open(p)
    ops = FaultyOps(fail_at, kind)
    with files.use_ops(ops):
        try:
            Thermogram.open(p).close()
            raised = None
        except DurabilityError as e:
            raised = e
    with Thermogram.open(p) as u:
        assert (u.state_digest(), u.head_hash) == expected
        u.write("after", v((1, 1)))
    return ops, raised


def _run_recover(tmp, fail_at, kind):
    p = _setup(tmp)
    j = p + ".journal"
    data = bytearray(open(j, "rb").read())
    offs = scan_journal(bytes(data)).offsets
    data[offs[1] + 15] ^= 0x10
    open(j, "wb").write(bytes(data))
    ops = FaultyOps(fail_at, kind)
    with files.use_ops(ops):
        try:
            Thermogram.recover(p)
            raised = None
        except DurabilityError as e:
            raised = e
    if raised is not None:
        cur = open(j, "rb").read()
        assert cur == bytes(data) or cur == bytes(data[:offs[1]])  # never cut before the copy is durable
        if cur != bytes(data):
            assert open(j + ".quarantine", "rb").read() == bytes(data[offs[1]:])
        Thermogram.recover(p)
    with Thermogram.open(p) as u:
        assert len(u.records()) == 1 + 1  # genesis + the first journal record (the snapshot holds genesis)
    qs = sorted(f for f in os.listdir(tmp) if ".quarantine" in f)
    assert any(open(os.path.join(tmp, q), "rb").read() == bytes(data[offs[1]:]) for q in qs)
    return ops, raised


@pytest.mark.parametrize("which", ["open", "recover"])
def test_fault_sweep_open_and_recover(tmp_path, which):
    run = _run_open if which == "open" else _run_recover
    os.makedirs(tmp_path / "count")
    counter = run(str(tmp_path / "count"), None, "eio")[0]
    failures = 0
    for kind in FAULTS:
        for n in _positions(counter.calls):
            tmp = str(tmp_path / f"{kind}-{n}")
            os.makedirs(tmp)
            ops, raised = run(tmp, n, kind)
            failures += raised is not None
            shutil.rmtree(tmp)
    assert failures > 0


def test_fault_sweep_colony_save(tmp_path):
    from thermogram.colony import ThermogramColony
    from thermogram import PlasticityRule
    from thermogram.colony import ColonyConfig

    def build():
        c = ThermogramColony("c", "Colony", PlasticityRule.stdp_like(), ColonyConfig(), clock=StepClock(),
                             policy=ConsolidationPolicy.manual_only())
        for i in range(6):
            c.write(f"g{i}", v((1, i + 1)))
        return c

    def run(tmp, fail_at, kind):
        folder = os.path.join(tmp, "col")
        c = build()
        c.save(folder)
        good = c.state_digest()
        c.write("extra", v((1, 9)))
        c.consolidate()
        ops = FaultyOps(fail_at, kind)
        with files.use_ops(ops):
            try:
                c.save(folder)
                raised = None
            except OSError as e:
                assert isinstance(e, DurabilityError), repr(e)
                raised = e
        got = ThermogramColony.open(folder).state_digest()
        assert got == (good if raised is not None else c.state_digest()) or (
            raised is not None and got == c.state_digest())  # failed after the manifest's rename
        return ops, raised

    os.makedirs(tmp_path / "count")
    counter = run(str(tmp_path / "count"), None, "eio")[0]
    failures = 0
    for kind in FAULTS:
        for n in _positions(counter.calls):
            tmp = str(tmp_path / f"{kind}-{n}")
            os.makedirs(tmp)
            failures += run(tmp, n, kind)[1] is not None
            shutil.rmtree(tmp)
    assert failures > 0
