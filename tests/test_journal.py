"""File-backed capsules: journal, checkpoints, locks, torn tails, and SIGKILL crash tests."""
import os
import random
import select
import signal
import time

import numpy as np
import pytest

import thermogram as tg
from conftest import StepClock
from thermogram import ConsolidationPolicy, FormatError, LockedError, Signal, Thermogram, signal_vector
from thermogram.errors import ReadOnlyError
from thermogram.journal import read_journal

KILLS = int(os.environ.get("THERMOGRAM_CRASH_KILLS", "50"))


def make(path, **kw):
    return Thermogram.open(path, create=True, policy=ConsolidationPolicy.manual_only(), **kw)


def test_open_write_reopen_is_identity(tmp_path):
    p = tmp_path / "c.thermo"
    with make(p, clock=StepClock()) as t:
        for i in range(20):
            t.write(f"k{i}", signal_vector([(1, i)]))
        t.consolidate()
        t.apply_decay()
        t.write("late", signal_vector([(-1, 9)]))
        digest, head = t.state_digest(), t.head_hash
    with Thermogram.open(p) as u:
        assert u.state_digest() == digest and u.head_hash == head and u.read("late").tolist() == [(-1, 9)]
        u.verify()


def test_second_writer_is_locked_out_readers_are_not(tmp_path):
    p = tmp_path / "c.thermo"
    with make(p) as t:
        t.write("a", signal_vector([(1, 1)]))
        with pytest.raises(LockedError, match="readonly"):
            Thermogram.open(p)
        r = Thermogram.open(p, readonly=True)
        assert r.read("a").tolist() == [(1, 1)]
        with pytest.raises(ReadOnlyError):
            r.write("b", signal_vector([(1, 1)]))
        with pytest.raises(tg.ThermogramError):
            r.checkpoint()
    with Thermogram.open(p) as again:  # lock released by close()
        assert again.read("a") is not None


def test_missing_file_without_create(tmp_path):
    with pytest.raises(tg.ThermogramError, match="create=True"):
        Thermogram.open(tmp_path / "nope.thermo")


@pytest.mark.parametrize("policy", ["always", "batch", "never"])
def test_fsync_policies(tmp_path, policy):
    p = tmp_path / "c.thermo"
    with make(p, fsync=policy, batch_size=3) as t:
        for i in range(10):
            t.write(f"k{i}", signal_vector([(1, i)]))
        digest = t.state_digest()
    with Thermogram.open(p) as u:
        assert u.state_digest() == digest
    with pytest.raises(tg.ThermogramError):
        Thermogram.open(tmp_path / "x.thermo", create=True, fsync="sometimes")


def test_checkpoint_archives_segments(tmp_path):
    p = tmp_path / "c.thermo"
    with make(p) as t:
        for round_ in range(3):
            t.write(f"k{round_}", signal_vector([(1, 1)]))
            t.checkpoint()
        assert [os.path.basename(s) for s in t.journal_segments()] == \
               ["c.thermo.journal.000001", "c.thermo.journal.000002", "c.thermo.journal.000003"]
        n_records = len(t.records())
        assert t.delete_archived_segments() == 3 and t.journal_segments() == []
    with Thermogram.open(p) as u:
        assert len(u.records()) == n_records  # the snapshot keeps the whole history


@pytest.mark.parametrize("damage", ["truncate", "garbage", "bitflip"])
def test_torn_or_damaged_tail_is_cut(tmp_path, damage):
    p = tmp_path / "c.thermo"
    with make(p) as t:
        for i in range(5):
            t.write(f"k{i}", signal_vector([(1, i)]))
        good_digest = t.state_digest()
        t.write("last", signal_vector([(1, 99)]))
    j = str(p) + ".journal"
    size = os.path.getsize(j)
    with open(j, "r+b") as f:
        if damage == "truncate":
            f.truncate(size - 7)
        elif damage == "garbage":
            f.seek(0, 2)
            f.write(os.urandom(1000))
        else:
            f.seek(size - 5)
            b = f.read(1)
            f.seek(size - 5)
            f.write(bytes([b[0] ^ 0x40]))
    with Thermogram.open(p) as u:
        if damage == "garbage":
            assert u.read("last").tolist() == [(1, 99)]
        else:
            assert u.read("last") is None and u.state_digest() == good_digest
        u.verify()
        u.write("after-recovery", signal_vector([(1, 1)]))
    _, recs, good, end = read_journal(j)
    assert good == end  # the tail was cut, then appended cleanly
    with Thermogram.open(p) as v:
        assert v.read("after-recovery") is not None


def test_crash_between_snapshot_and_rotation(tmp_path, monkeypatch):
    p = tmp_path / "c.thermo"
    t = make(p)
    for i in range(5):
        t.write(f"k{i}", signal_vector([(1, i)]))
    digest = t.state_digest()

    def crash(*a, **k):
        raise KeyboardInterrupt("power cut")
    monkeypatch.setattr(t._journal, "rotate", crash)
    with pytest.raises(KeyboardInterrupt):
        t.checkpoint()
    t._journal.close()
    t._lock_handle.release()
    with Thermogram.open(p) as u:  # snapshot is new, journal still the old segment
        assert u.state_digest() == digest and len(u.records()) == len(t.records())
        u.write("more", signal_vector([(1, 1)]))
    with Thermogram.open(p) as v:
        assert v.read("more") is not None and v.verify()


def test_journal_that_belongs_elsewhere_is_rejected(tmp_path):
    a, b = tmp_path / "a.thermo", tmp_path / "b.thermo"
    with make(a) as t:
        t.write("x", signal_vector([(1, 1)]))
    with make(b) as u:
        u.write("y", signal_vector([(1, 1)]))
    os.replace(str(a) + ".journal", str(b) + ".journal")
    with pytest.raises(FormatError):
        Thermogram.open(b)


# ---------------------------------------------------------------- SIGKILL crash tests
def _child(path, mode, wfd):
    """Writer loop in a forked child: report each acknowledged delta on the pipe."""
    try:
        t = Thermogram.open(path, create=True, policy=ConsolidationPolicy.manual_only())
        i = len(t.keys())
        while True:
            key = f"k{i:06d}"
            t.write(key, np.array([(1, i % 256), (-1, 7)], dtype=tg.SIGNAL), Signal.positive(200))
            os.write(wfd, f"{i}\n".encode())
            i += 1
            if mode == "checkpoint" and i % 5 == 0:
                t.checkpoint()
                os.write(wfd, b"c\n")
            elif mode == "save" and i % 3 == 0:
                t.save(path + ".copy")
                os.write(wfd, b"s\n")
            elif mode == "consolidate" and i % 4 == 0:
                t.consolidate()
    except BaseException:
        import traceback
        traceback.print_exc()
        os._exit(1)
    finally:
        os._exit(0)


def _run_kill_cycle(path, mode, rng):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        _child(path, mode, w)
    os.close(w)
    acked = []
    deadline = time.monotonic() + rng.uniform(0.02, 0.3)
    buf = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([r], [], [], 0.01)
        if ready:
            chunk = os.read(r, 65536)
            if not chunk:
                break
            buf += chunk
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        buf += chunk
    os.close(r)
    for line in buf.decode().split("\n")[:-1]:
        if line.isdigit():
            acked.append(int(line))
    return acked


def _warm_kernels(folder):
    """Run every code path the writer uses once in this process, so forked writers
    start with the compiled kernels instead of loading them inside the kill window."""
    p = str(folder / "warm.thermo")
    with Thermogram.open(p, create=True, policy=ConsolidationPolicy.manual_only()) as t:
        t.write("w", np.array([(1, 1)], dtype=tg.SIGNAL))
        t.consolidate()
        t.checkpoint()
        t.save(p + ".copy")
    Thermogram.load(p + ".copy").verify()


@pytest.mark.parametrize("mode", ["plain", "consolidate", "checkpoint", "save"])
def test_sigkill_never_loses_an_acknowledged_delta(tmp_path, mode):
    _warm_kernels(tmp_path)
    path = str(tmp_path / "crash.thermo")
    rng = random.Random(f"crash-{mode}")
    kills = KILLS if mode == "plain" else max(10, KILLS // 3)
    all_acked = set()
    for _ in range(kills):
        all_acked.update(_run_kill_cycle(path, mode, rng))
        with Thermogram.open(path) as t:
            assert t.verify()
            for i in all_acked:
                assert t.read(f"k{i:06d}") is not None, f"acknowledged delta {i} lost"
        if mode == "save" and os.path.exists(path + ".copy"):
            copy = Thermogram.load(path + ".copy")  # old or new, never a mix
            copy.verify()
    assert len(all_acked) >= kills // 2  # the writer made progress between kills


def test_lone_surrogates_in_sources_and_unicode_keys_survive_the_journal(tmp_path):
    """Sources are stored UTF-8 with lone surrogates passed through; reading them back
    strictly would cut the journal there and lose the write."""
    path = str(tmp_path / "s.thermo")
    key, source = "kéy\U0001f511", "src\udc01"
    with Thermogram.open(path, create=True, fsync="always") as t:
        t.apply_delta(tg.Delta.create(key, signal_vector([(1, 9)]), source))
        t.apply_batch(tg.DeltaBatch.from_arrays([key + "b"], [signal_vector([(1, 7)])], source=source))
        digest = t.state_digest()
    with Thermogram.open(path, readonly=True) as r:
        assert r.state_digest() == digest
        assert r.read(key) is not None and r.read(key + "b") is not None
        assert r.history(key)[-1].source == source
    t = Thermogram("v1", policy=ConsolidationPolicy.manual_only())
    t.apply_delta(tg.Delta.create("k", signal_vector([(1, 9)]), source))  # stays pending
    with pytest.raises(tg.ValidationError, match="surrogate"):
        t.to_bytes("v1")


def test_load_and_the_cli_see_the_journal(tmp_path, capsys):
    """A capsule closed without a checkpoint: load() and `thermogram inspect/verify` replay its journal."""
    from thermogram.cli import main
    path = str(tmp_path / "j.thermo")
    clock = StepClock()
    with Thermogram.open(path, create=True, clock=clock, policy=ConsolidationPolicy.manual_only()) as t:
        for i in range(5):
            t.write(f"k{i}", signal_vector([(1, i + 1)]), Signal.positive(100 + i))
        live = t.state_digest()
        head = t.head_hash
    snapshot_only = Thermogram.load(path, journal=False)
    assert snapshot_only.pending_count == 0 and len(snapshot_only.records()) == 1
    loaded = Thermogram.load(path)
    assert loaded.pending_count == 5 and loaded.head_hash == head and loaded.state_digest() == live
    assert loaded.read("k3")["magnitude"].tolist() == [4]
    loaded.write("extra", signal_vector([(1, 9)]))  # an in-memory copy: the files are not bound to it
    assert Thermogram.load(path).head_hash == head
    assert main(["inspect", path]) == 0
    out = capsys.readouterr().out
    assert "pending deltas 5" in out and "records 6" in out
    assert main(["verify", path]) == 0
    assert "6 records verified" in capsys.readouterr().out
