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
    # records: genesis, 8 chunks x (network batch + token batch + decay), 8 consolidations;
    # the checkpoint adds none
    assert r.records == 1 + 8 * 3 + 8 == r.history[-1]["records"]
    assert r.batches == 16 and r.deltas > r.token_deltas == 400 * 24 and r.outliers > 0
    assert len(r.forgotten) == len(r.history) and r.forget == 1 and r.forget_at == 200


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
    # verify() replays the records too (it compares the replayed state), so it fails as well
    assert "replay           DIFFERS" in out and "FAILED" in out and "reloaded file    matches" in out


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


def test_default_run_fills_four_layers_forgets_and_reports_a_baseline(tmp_path, capsys):
    """The default sizes (as ``thermogram demo`` runs them): over 10,000 entries in four
    layers, concept 1 fading from hot after it leaves the stream, a baseline scored."""
    r = run_demo(folder=tmp_path, progress=False, plot=False)
    assert r.ok
    last = r.history[-1]
    assert r.entries == sum(last[k] for k in ("hot", "warm", "cool", "cold")) >= 10_000
    assert all(last[k] > 0 for k in ("hot", "warm", "cool", "cold"))
    assert r.forget == 1 and r.forget_at == 1200 and r.token_deltas == 2000 * 24
    at = [h["tick"] for h in r.history].index(1250)  # first consolidation after it leaves
    hot = [f["hot"] for f in r.forgotten]
    assert hot[-1] < 0.6 * hot[at]  # its working copies fade and are pruned
    assert hot[at] > hot[at - 1]  # it was still growing before
    # what was consolidated stays: its cool and cold entries are not lost
    assert r.forgotten[-1]["cool"] >= r.forgotten[at]["cool"] > 0
    assert r.baseline_name and 0.5 < r.baseline_purity <= 1.0 and 0.5 < r.purity <= 1.0
    assert r.baseline_confusion.sum() == r.confusion.sum() == 2000 - r.outliers


def test_cli_demo_names_the_forgetting_phase_and_the_baseline(tmp_path, capsys):
    assert main(["demo", *SMALL, "--out", str(tmp_path), "--no-plot", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "concept 1 leaves the stream at tick 100" in out and "<- concept leaves" in out
    assert "baseline         purity" in out and "entries at the end:" in out


def test_one_concept_has_no_forgetting_phase(tmp_path):
    r = run_demo(ticks=100, neurons=4, dim=16, concepts=1, folder=tmp_path, progress=False, plot=False)
    assert r.ok and r.forget == -1 and all(f == {"hot": 0, "warm": 0, "cool": 0, "cold": 0}
                                           for f in r.forgotten)
    with pytest.raises(ValidationError, match="forget"):
        run_demo(folder=tmp_path, forget=4, **SMALL_KW)
    with pytest.raises(ValidationError):
        run_demo(folder=tmp_path, tokens_per_tick=0, **SMALL_KW)


def test_concept_stream_forgets_a_concept():
    s = ConceptStream(4, 32, np.random.default_rng(1), forget=1, forget_at=300)
    _, before = s.take(300)
    _, after = s.take(600)
    assert (before == 1).sum() > 50 and not (after == 1).any()
    # the others take its share, in proportion to their frequencies
    assert np.bincount(after[after >= 0], minlength=4)[0] > np.bincount(before[before >= 0], minlength=4)[0]
    with pytest.raises(ValidationError):
        ConceptStream(1, 8, np.random.default_rng(0), forget=0)


def test_token_ids_drift_and_noise_keys():
    from thermogram.demo import token_ids, token_keys
    rng = np.random.default_rng(0)
    labels = np.array([0, 0, -1, 2])
    ids = token_ids(rng, labels, np.array([0, 4000, 4001, 4002]), 5, 100)
    assert ids.shape == (4, 5)
    assert ids[0].max() < 100 and ids[1].min() >= 1000  # the vocabulary has moved on by 4000 // 4
    keys = token_keys(labels, ids)
    assert len(keys) == 20 and keys[0].startswith("c0/w") and keys[10].startswith("noise/w")
    assert keys[15].startswith("c2/w")


def test_online_kmeans_finds_separated_clusters_and_is_the_fallback(monkeypatch):
    from thermogram.demo import OnlineKMeans, make_baseline, _count_winners
    rng = np.random.default_rng(3)
    s = ConceptStream(3, 64, rng, drift=0.0, mix=0.0, outliers=0.0)
    km = OnlineKMeans(6, 64, np.random.default_rng(0))
    conf = np.zeros((3, 6), np.int64)
    for _ in range(10):
        X, labels = s.take(50)
        km.partial_fit(X)
        _count_winners(X, labels, km.centres, conf)
    assert conf.sum() == 500 and conf.max(axis=0).sum() / conf.sum() > 0.95
    cos = km.centres @ s.centres.T / np.linalg.norm(km.centres, axis=1, keepdims=True)
    on = cos.max(axis=1) > 0.9
    assert set(cos[on].argmax(axis=1).tolist()) == {0, 1, 2}  # every concept has a centroid on it
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.cluster", None)
    b = make_baseline(4, 8, 0)
    assert isinstance(b, OnlineKMeans) and "numpy" in b.name


def test_report_draws_thresholds_and_the_forgetting_panel(tmp_path):
    from matplotlib.figure import Figure
    from thermogram.report import plot_strengths, write_report
    from thermogram.demo import demo_thermal_config
    cfg = demo_thermal_config()
    ax = Figure().subplots()
    plot_strengths(ax, {"hot": np.array([10, 200]), "cold": np.array([250])}, cfg)
    xs = sorted({float(line.get_xdata()[0]) for line in ax.lines})
    # promote at 128/166/217 (hot, warm, cool), demote below 51/77 (warm, cool; cold never demotes),
    # prune below 8
    assert xs == [8.0, 51.0, 77.0, 128.0, 166.0, 217.0]
    history = [{"tick": 0, "hot": 0, "warm": 0, "cool": 0, "cold": 0},
               {"tick": 10, "hot": 3, "warm": 1, "cool": 0, "cold": 0},
               {"tick": 20, "hot": 2, "warm": 1, "cool": 1, "cold": 0}]
    forgotten = [{"hot": 0, "warm": 0, "cool": 0, "cold": 0}, {"hot": 2, "warm": 0, "cool": 0, "cold": 0},
                 {"hot": 1, "warm": 0, "cool": 0, "cold": 0}]
    p = write_report(tmp_path / "r.png", history, {"hot": np.array([10, 200])}, np.eye(2, dtype=int),
                     thermal_config=cfg, forgotten=forgotten, forget=1, forget_at=10,
                     baseline=("numpy k-means", np.eye(2, dtype=int)))
    assert open(p, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_scikit_learn_baseline_is_preferred_when_installed(monkeypatch, tmp_path):
    """With scikit-learn importable, MiniBatchKMeans is used (here a stand-in that records
    its calls: scikit-learn is not a dependency)."""
    import types
    from thermogram.demo import make_baseline

    calls = []

    class FakeMBK:
        def __init__(self, n_clusters, random_state, n_init):
            self.n_clusters = n_clusters
            calls.append(("init", n_clusters, random_state))

        def partial_fit(self, X):
            calls.append(("fit", X.shape[0]))
            self.cluster_centers_ = np.ones((self.n_clusters, X.shape[1]), np.float32)

    cluster = types.ModuleType("sklearn.cluster")
    cluster.MiniBatchKMeans = FakeMBK
    sk = types.ModuleType("sklearn")
    sk.cluster = cluster
    monkeypatch.setitem(sys.modules, "sklearn", sk)
    monkeypatch.setitem(sys.modules, "sklearn.cluster", cluster)
    b = make_baseline(4, 8, 5)
    assert b.name == "scikit-learn MiniBatchKMeans" and calls == [("init", 4, 5)]
    assert b.centres.shape == (4, 8) and not b.centres.any()  # nothing learned yet
    b.partial_fit(np.zeros((3, 8), np.float32))  # fewer rows than clusters: held back
    assert calls[1:] == []
    b.partial_fit(np.zeros((2, 8), np.float32))
    b.partial_fit(np.zeros((6, 8), np.float32))
    assert calls[1:] == [("fit", 5), ("fit", 6)] and b.centres.shape == (4, 8)
    assert "numpy" in make_baseline(4, 8, 5, prefer_sklearn=False).name
    # the run scores it from the first chunk on, also while chunks are held back
    r = run_demo(ticks=60, neurons=16, dim=32, concepts=2, chunk=10, folder=tmp_path, progress=False,
                 plot=False)
    assert r.ok and r.baseline_name == "scikit-learn MiniBatchKMeans"
    assert r.baseline_confusion.sum() == 60 - r.outliers
