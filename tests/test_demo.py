"""``thermogram demo``: activation stream -> SNN -> file-backed capsule -> checks and report."""
import hashlib
import sys

import numpy as np
import pytest

from thermogram import Thermogram
from thermogram.cli import main
from thermogram.demo import ConceptStream, demo_files, run_demo
from thermogram.errors import ThermogramError, ValidationError

SMALL = ["--ticks", "200", "--neurons", "16", "--dim", "64", "--concepts", "4"]
SMALL_KW = dict(ticks=200, neurons=16, dim=64, concepts=4, progress=False)


def test_cli_demo_writes_capsule_and_report_and_passes_every_check(tmp_path, capsys):
    out_dir = tmp_path / "demo"
    assert main(["demo", *SMALL, "--seed", "3", "--out", str(out_dir)]) == 0
    cap = capsys.readouterr()
    out = cap.out
    for line in ("verified         yes", "replay           matches", "reloaded file    matches",
                 "head hash", "state digest", "purity", "ticks/s", "\n  OK\n"):
        assert line in out
    assert str(out_dir / "demo.thermo") in out and str(out_dir / "report.png") in out
    assert cap.err == ""  # the progress bar stays silent when stderr is not a terminal
    assert (out_dir / "demo.thermo").stat().st_size > 0
    assert (out_dir / "demo.thermo.journal").exists()
    png = (out_dir / "report.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    # the snapshot is a capsule like any other, with the network's state inside
    t = Thermogram.load(out_dir / "demo.thermo")
    assert t.verify() and "snn" in t.extensions
    assert main(["verify", str(out_dir / "demo.thermo")]) == 0


def test_summary_table_has_a_row_per_consolidation(tmp_path):
    r = run_demo(ticks=400, neurons=16, dim=64, concepts=4, seed=1, folder=tmp_path, progress=False,
                 plot=False)
    assert [h["tick"] for h in r.history] == [0, 50, 100, 150, 200, 250, 300, 350, 400]
    assert r.history[0] == {"tick": 0, "hot": 0, "warm": 0, "cool": 0, "cold": 0, "records": 1}
    assert all(set(h) == {"tick", "hot", "warm", "cool", "cold", "records"} for h in r.history)
    # records: genesis, 8 batches, 8 x (decay + consolidate); the checkpoint adds none
    assert r.records == 1 + 8 + 16 == r.history[-1]["records"]
    assert r.batches == 8 and r.deltas > 0 and r.outliers > 0


def test_same_seed_same_capsule_byte_for_byte(tmp_path):
    a = run_demo(seed=5, folder=tmp_path / "a", plot=False, **SMALL_KW)
    b = run_demo(seed=5, folder=tmp_path / "b", plot=False, **SMALL_KW)
    assert a.ok and b.ok
    assert a.head_hash == b.head_hash and a.digest == b.digest and a.deltas == b.deltas
    assert a.history == b.history and np.array_equal(a.confusion, b.confusion)
    digest = [hashlib.sha256(p.read_bytes()).hexdigest() for p in (tmp_path / "a" / "demo.thermo",
                                                                   tmp_path / "b" / "demo.thermo")]
    assert digest[0] == digest[1]
    c = run_demo(seed=6, folder=tmp_path / "c", plot=False, **SMALL_KW)
    assert c.digest != a.digest and c.head_hash != a.head_hash


def test_well_separated_concepts_each_get_a_prototype(tmp_path):
    r = run_demo(ticks=400, neurons=16, dim=256, concepts=4, seed=7, folder=tmp_path, progress=False,
                 plot=False)
    assert r.confusion.shape == (4, 16)
    assert r.confusion.sum() == 400 - r.outliers
    assert r.purity >= 0.9
    assert r.distinct_owners == 4 and len(set(r.owners.tolist())) == 4


def test_concept_prototypes_go_colder_than_noise(tmp_path):
    r = run_demo(ticks=600, neurons=16, dim=256, concepts=4, seed=7, folder=tmp_path, progress=False,
                 plot=False)
    t = Thermogram.load(r.capsule_path)
    layer_of = {}
    for depth, st in enumerate(("hot", "warm", "cool", "cold")):
        for k in t.keys_for_state(st):
            layer_of[k] = depth  # coldest layer that holds the key
    owners = {f"proto_{o}" for o in r.owners.tolist()}
    assert all(layer_of.get(k, -1) >= 2 for k in owners)  # cool or cold
    noise = [k for k in layer_of if k.startswith("proto_") and k not in owners]
    assert noise and all(layer_of[k] < min(layer_of[o] for o in owners) for k in noise)


def test_second_run_into_the_same_folder_starts_fresh_and_keeps_other_files(tmp_path, capsys):
    folder = tmp_path / "demo"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    (folder / "demo.thermo.journal.000007").write_bytes(b"left over")  # an old archived segment
    first = run_demo(seed=2, folder=folder, **SMALL_KW)
    assert first.ok and str(folder / "demo.thermo.journal.000007") in first.removed
    assert main(["demo", *SMALL, "--seed", "2", "--out", str(folder), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "replaced" in out and "earlier demo run" in out
    assert (folder / "notes.txt").read_text() == "mine"
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["demo.thermo", "demo.thermo.journal", "demo.thermo.journal.000001",
                     "demo.thermo.lock", "notes.txt", "report.png"]
    again = Thermogram.load(folder / "demo.thermo")
    assert again.head_hash == first.head_hash and again.state_digest() == first.digest


def test_demo_files_lists_only_what_the_demo_writes(tmp_path):
    for name in ("demo.thermo", "demo.thermo.lock", "demo.thermo.journal", "demo.thermo.journal.000003",
                 "report.png", "other.thermo", "demo.thermo.bak", "report.png.txt"):
        (tmp_path / name).write_bytes(b"x")
    got = sorted(p.rsplit("/", 1)[-1] for p in demo_files(str(tmp_path)))
    assert got == ["demo.thermo", "demo.thermo.journal", "demo.thermo.journal.000003", "demo.thermo.lock",
                   "report.png"]
    assert demo_files(str(tmp_path / "missing")) == []


def test_no_plot_writes_no_report(tmp_path, capsys):
    assert main(["demo", *SMALL, "--out", str(tmp_path), "--no-plot", "--no-progress"]) == 0
    assert not (tmp_path / "report.png").exists()
    assert "report.png" not in capsys.readouterr().out


def test_a_failed_check_is_exit_status_1(tmp_path, capsys, monkeypatch):
    real = Thermogram.replay

    def short_replay(records, **kw):  # loses the last record
        return real(list(records)[:-1], **kw)

    monkeypatch.setattr(Thermogram, "replay", staticmethod(short_replay))
    assert main(["demo", *SMALL, "--out", str(tmp_path), "--no-plot"]) == 1
    out = capsys.readouterr().out
    assert "replay           DIFFERS" in out and "FAILED" in out and "verified         yes" in out


def test_missing_matplotlib_is_a_clear_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    with pytest.raises(ThermogramError, match="pip install matplotlib"):
        run_demo(folder=tmp_path, **SMALL_KW)
    assert not (tmp_path / "demo.thermo").exists()  # checked before any work
    assert main(["demo", *SMALL, "--out", str(tmp_path)]) == 1
    assert "matplotlib" in capsys.readouterr().err
    assert run_demo(folder=tmp_path, plot=False, **SMALL_KW).ok  # --no-plot needs no matplotlib


@pytest.mark.parametrize("kw", [dict(ticks=0), dict(neurons=-1), dict(dim=1.5), dict(seed=-1),
                                dict(concepts=True)])
def test_bad_arguments_are_rejected(tmp_path, kw):
    with pytest.raises(ValidationError):
        run_demo(folder=tmp_path, **{**SMALL_KW, **kw})


@pytest.mark.parametrize("flag", ["--ticks", "--neurons", "--dim", "--concepts"])
def test_bad_flags_are_usage_errors(capsys, flag):
    with pytest.raises(SystemExit) as e:
        main(["demo", flag, "0"])
    assert e.value.code == 2 and "positive" in capsys.readouterr().err


def test_concept_stream():
    s = ConceptStream(4, 128, np.random.default_rng(0), warmup=10, outliers=0.1)
    X, labels = s.take(400)
    assert X.shape == (400, 128) and X.dtype == np.float32 and labels.shape == (400,)
    assert set(np.unique(labels).tolist()) <= {-1, 0, 1, 2, 3} and (labels == -1).any()
    norms = np.linalg.norm(X, axis=1)
    assert 0.5 * np.sqrt(128) < np.median(norms) < 2 * np.sqrt(128)  # hidden-state sized
    c = s.centres
    assert np.allclose(np.linalg.norm(c, axis=1), 1, atol=1e-5)
    concept = labels >= 0
    cos = (X[concept] * c[labels[concept]]).sum(axis=1) / norms[concept]
    assert np.median(cos) > 0.5  # samples point at their concept
    # frequencies fall with the concept index (1 / (c + 1))
    counts = np.bincount(labels[concept], minlength=4)
    assert counts[0] > counts[3]
    # same seed, same stream
    X2, l2 = ConceptStream(4, 128, np.random.default_rng(0), warmup=10, outliers=0.1).take(400)
    assert np.array_equal(X, X2) and np.array_equal(labels, l2)


def test_write_report_standalone(tmp_path):
    from thermogram.report import confusion_order, write_report
    conf = np.array([[5, 0, 0, 1], [0, 0, 7, 0]])
    assert confusion_order(conf).tolist() == [0, 3, 2]  # unused neuron 1 left out, grouped by concept
    history = [{"tick": 0, "hot": 0, "warm": 0, "cool": 0, "cold": 0},
               {"tick": 10, "hot": 3, "warm": 1, "cool": 0, "cold": 0}]
    p = write_report(tmp_path / "r.png", history, {"hot": np.array([10, 200]), "warm": np.array([180])}, conf)
    assert open(p, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    # empty inputs still draw
    write_report(tmp_path / "e.png", history[:1], {}, np.zeros((2, 3), int))


def test_a_chain_error_is_a_failed_check_not_a_crash(tmp_path, capsys, monkeypatch):
    from thermogram.errors import ChainError

    def broken(self, trusted_keys=None):
        raise ChainError("record 3 does not link", index=3)

    monkeypatch.setattr(Thermogram, "verify", broken)
    assert main(["demo", *SMALL, "--out", str(tmp_path), "--no-plot"]) == 1
    out = capsys.readouterr().out
    assert "verified         NO" in out and "replay           matches" in out and "FAILED" in out
