"""Two ways to one capsule: symlinks, hard links, and readers racing a writer's checkpoints."""
import os
import subprocess
import sys
import textwrap

import pytest

from thermogram import ConsolidationPolicy, LockedError, Signal, Thermogram, signal_vector

ROUNDS = int(os.environ.get("THERMOGRAM_PROCESS_ROUNDS", "120"))


def _make(path):
    with Thermogram.open(path, create=True, policy=ConsolidationPolicy.manual_only()) as t:
        t.write("seed", signal_vector([(1, 1)]))


def test_a_symlink_reaches_the_same_lock_and_journal(tmp_path):
    real = tmp_path / "real.thermo"
    link = tmp_path / "link.thermo"
    _make(str(real))
    os.symlink(real, link)
    with Thermogram.open(str(link)) as t:
        with pytest.raises(LockedError):
            Thermogram.open(str(real))
        t.write("through-link", signal_vector([(1, 7)]), Signal.positive(50))
        head = t.head_hash
    assert not os.path.exists(str(link) + ".journal")  # nothing beside the link's name
    back = Thermogram.load(str(real))
    assert back.head_hash == head and back.read("through-link")["magnitude"].tolist() == [7]
    with Thermogram.open(str(real)) as t:
        with pytest.raises(LockedError):
            Thermogram.open(str(link))


def test_a_hard_linked_snapshot_is_refused_for_writing(tmp_path):
    real = tmp_path / "real.thermo"
    _make(str(real))
    os.link(real, tmp_path / "alias.thermo")
    for name in ("real.thermo", "alias.thermo"):
        with pytest.raises(LockedError, match="hard links"):
            Thermogram.open(str(tmp_path / name))
    with Thermogram.open(str(real), readonly=True) as r:  # reading is fine
        assert r.read("seed") is not None
    os.unlink(tmp_path / "alias.thermo")
    with Thermogram.open(str(real)) as t:  # one name again: writable
        t.write("after", signal_vector([(1, 2)]))


WRITER = textwrap.dedent("""
    import sys
    from thermogram import Thermogram, signal_vector
    path, rounds = sys.argv[1], int(sys.argv[2])
    with Thermogram.open(path) as t:  # manual consolidation: the file's own policy
        print("ready", flush=True)
        for i in range(rounds):
            t.write(f"k{i % 17}", signal_vector([(1, i % 256)]))
            if i % 3 == 0:
                t.checkpoint()
    print("done", flush=True)
""")


def test_readonly_opens_while_the_writer_checkpoints(tmp_path):
    path = str(tmp_path / "busy.thermo")
    _make(path)
    proc = subprocess.Popen([sys.executable, "-c", WRITER, path, str(ROUNDS)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        opened, last = 0, 0
        while proc.poll() is None or opened == 0:
            with Thermogram.open(path, readonly=True) as r:
                n = len(r.records())
                assert n >= last  # never an older state than one already seen
                last = n
                r.verify()
            opened += 1
        assert proc.wait(timeout=120) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    final = Thermogram.load(path)
    assert len(final.records()) == 2 + ROUNDS  # genesis, seed, then one record per write
    assert final.read(f"k{(ROUNDS - 1) % 17}")["magnitude"].tolist() == [(ROUNDS - 1) % 256]


def test_a_checkpoint_between_reading_the_segment_and_the_snapshot_gives_a_consistent_state(tmp_path):
    """A reader without the lock reads the journal segment, then the snapshot. A checkpoint
    in between (found as intermittent FormatError / FileNotFoundError failures of the test
    above when the reader read them the other way round) must give the state after some
    acknowledged record: here the new snapshot, which holds the segment's records."""
    from thermogram import journal
    path = os.path.realpath(str(tmp_path / "race.thermo"))
    _make(path)
    with Thermogram.open(path) as w:
        w.write("a", signal_vector([(1, 1)]))  # only in the segment when the reader starts

        def snapshot_after_a_checkpoint():
            w.write("b", signal_vector([(1, 2)]))
            w.checkpoint()  # new snapshot (seed, a, b); the segment read before is archived
            w.write("c", signal_vector([(1, 3)]))  # in the new segment, which was not read
            return Thermogram.load(path, journal=False)

        t = journal.load_consistent(path, snapshot_after_a_checkpoint)
        assert [t.read(k)["magnitude"].tolist() for k in ("a", "b")] == [[1], [2]]
        assert t.read("c") is None and t.verify()
        assert len(t.records()) == len(w.records()) - 1  # the state before "c", nothing mixed

        def snapshot_with_no_segment_yet():  # read between a checkpoint's archive and new segment
            return Thermogram.load(path, journal=False)

        os.replace(path + ".journal", path + ".journal.aside")
        t2 = journal.load_consistent(path, snapshot_with_no_segment_yet)
        os.replace(path + ".journal.aside", path + ".journal")
        assert t2.read("b") is not None and t2.read("c") is None and t2.verify()
    final = Thermogram.load(path)
    assert final.read("c")["magnitude"].tolist() == [3]


def test_a_file_naming_one_long_key_many_times_costs_little_to_refuse(tmp_path):
    """One batch repeating one 4 KB key 60,000 times is a ~5 KB file; decoding it would
    materialise 240 MB of keys, so it is refused within the decoder's key budget."""
    import tracemalloc

    from thermogram import DeltaBatch, DeltaType, FormatError
    key = "k" * 4096
    n = 60_000
    t = Thermogram("rep", policy=ConsolidationPolicy.manual_only(), clock=lambda: 1_700_000_000_000_000_000)
    import numpy as np

    from thermogram import SIGNAL
    b = DeltaBatch.from_arrays([key] * n, (np.zeros(0, SIGNAL), np.zeros(n + 1, np.int64)), None,
                               DeltaType.UPDATE, 1)
    t.apply_batch(b)
    data = t.to_bytes()
    assert len(data) < 16 * 1024
    tracemalloc.start()
    with pytest.raises(FormatError, match="budget"):
        Thermogram.from_bytes(data)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 50 * 2 ** 20, f"peak {peak / 2**20:.1f} MiB"


SAVER = textwrap.dedent("""
    import sys
    from thermogram import ColonyConfig, ThermogramColony, signal_vector
    folder, tag, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
    c = ThermogramColony.open(folder)
    for i in range(rounds):
        c.write(f"{tag}{i % 7}", signal_vector([(1, i % 256)]))
        c.save(folder)
    print("done", flush=True)
""")


def test_two_processes_saving_one_colony_folder(tmp_path):
    """Saves take turns under the folder lock: the folder always opens, and every file its
    manifest names is there."""
    from thermogram import ThermogramColony
    folder = str(tmp_path / "colony")
    c = ThermogramColony("shared", "shared")
    c.write("seed", signal_vector([(1, 1)]))
    c.save(folder)
    rounds = max(4, ROUNDS // 10)
    procs = [subprocess.Popen([sys.executable, "-c", SAVER, folder, tag, str(rounds)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for tag in ("a", "b")]
    try:
        opened = 0
        while any(p.poll() is None for p in procs) or opened == 0:
            ThermogramColony.open(folder)  # raises if a named member file is missing
            opened += 1
        for p in procs:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, err[-2000:]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    final = ThermogramColony.open(folder)
    assert final.read("seed") is not None
    assert any(final.read(f"{tag}{(rounds - 1) % 7}") is not None for tag in ("a", "b"))
