import subprocess
import sys

import pytest

from thermogram.cli import main
from thermogram.demo import run_demo


DEMO_SMALL = ["--ticks", "200", "--neurons", "16", "--dim", "64", "--concepts", "4"]


def test_demo_runs_verifies_and_replays(capsys, tmp_path):
    assert main(["demo", *DEMO_SMALL, "--seed", "1", "--out", str(tmp_path), "--no-plot"]) == 0
    out = capsys.readouterr().out
    assert "verified         yes" in out and "replay           matches" in out


def test_demo_is_deterministic(tmp_path):
    kw = dict(ticks=200, neurons=16, dim=64, concepts=4, progress=False, plot=False)
    a = run_demo(seed=3, folder=tmp_path / "a", **kw)
    b = run_demo(seed=3, folder=tmp_path / "b", **kw)
    assert a.digest == b.digest and a.head_hash == b.head_hash
    assert a.history == b.history
    assert run_demo(seed=4, folder=tmp_path / "c", **kw).digest != a.digest


def test_important_concepts_end_up_colder_than_noise(tmp_path):
    r = run_demo(ticks=600, neurons=16, dim=256, concepts=4, seed=2, folder=tmp_path, progress=False,
                 plot=False)
    last = r.history[-1]
    assert last["cold"] + last["cool"] > 0 and last["hot"] > 0
    t = Thermogram.load(r.capsule_path)
    colder = set(t.keys_for_state("cool")) | set(t.keys_for_state("cold"))
    assert {f"proto_{o}" for o in r.owners.tolist()} <= colder  # each concept's prototype
    assert any(k.startswith("proto_") and k not in colder for k in t.keys_for_state("hot"))  # noise


def test_bad_flag_is_a_clean_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["demo", "--ticks", "-3"])
    assert e.value.code == 2
    assert "positive" in capsys.readouterr().err


def test_console_script_entry_point():
    out = subprocess.run([sys.executable, "-m", "thermogram.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("thermogram ")


# ---------------------------------------------------------------- inspection commands
import json  # noqa: E402
import os  # noqa: E402

from conftest import conformance_dir  # noqa: E402
from thermogram import Signal, Thermogram, signal_vector  # noqa: E402

MIXED = conformance_dir() / "thermo" / "mixed20.thermo"


@pytest.fixture
def capsule_file(tmp_path):
    t = Thermogram("cli")
    for i in range(5):
        t.write(f"k{i}", signal_vector([(1, i)]), Signal.positive(150))
    t.consolidate()
    p = tmp_path / "c.thermo"
    t.save(p)
    return p


@pytest.mark.parametrize("source", ["v2", "v1"])
def test_inspect_both_versions(capsys, capsule_file, source):
    path = str(capsule_file) if source == "v2" else str(MIXED)
    assert main(["inspect", path]) == 0
    out = capsys.readouterr().out
    assert f".thermo {source}" in out and "hot" in out and "head" in out
    assert main(["inspect", path, "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["format"] == source and set(d["layers"]) == {"hot", "warm", "cool", "cold"}


def test_verify_ok_and_fail(capsys, capsule_file, tmp_path):
    assert main(["verify", str(capsule_file)]) == 0
    assert capsys.readouterr().out.startswith("OK")
    data = bytearray(capsule_file.read_bytes())
    data[len(data) // 2] ^= 1
    bad = tmp_path / "bad.thermo"
    bad.write_bytes(bytes(data))
    assert main(["verify", str(bad)]) == 1
    assert capsys.readouterr().out.startswith("FAIL")


def test_verify_names_the_failing_record(capsys, tmp_path):
    from thermogram.io import encode_v2
    t = Thermogram("x")
    for i in range(4):
        t.write(f"k{i}", signal_vector([(1, i)]))
    t.records()[2].timestamp += 1  # tampered in memory, then written with a consistent file checksum
    t.records()[2]._hash = t.records()[2].compute_hash()
    p = tmp_path / "t.thermo"
    p.write_bytes(encode_v2(t))
    assert main(["verify", str(p)]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "record 3" in out


def test_export_convert_replay(capsys, capsule_file, tmp_path):
    for fmt, out in (("json", "e.json"), ("parquet", "e.parquet"), ("archive", "arch")):
        assert main(["export", str(capsule_file), "--to", fmt, str(tmp_path / out)]) == 0
    assert json.loads((tmp_path / "e.json").read_text())["name"] == "cli"
    assert os.path.exists(tmp_path / "arch" / "manifest.json")
    assert main(["convert", str(MIXED), "--to", "v1", str(tmp_path / "back.thermo")]) == 0
    assert (tmp_path / "back.thermo").read_bytes() == MIXED.read_bytes()
    assert main(["convert", str(MIXED), "--to", "v2", str(tmp_path / "m2.thermo")]) == 0
    assert main(["replay", str(tmp_path / "m2.thermo")]) == 0
    assert "matches" in capsys.readouterr().out


def test_errors_are_one_line_and_nonzero(capsys, tmp_path):
    assert main(["inspect", str(tmp_path / "missing.thermo")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("thermogram: error:") and "Traceback" not in err
    (tmp_path / "junk.thermo").write_bytes(b"not a capsule")
    assert main(["inspect", str(tmp_path / "junk.thermo")]) == 1
    with pytest.raises(Exception):
        main(["--debug", "inspect", str(tmp_path / "junk.thermo")])


@pytest.mark.parametrize("cmd", ["demo", "inspect", "verify", "export", "convert", "replay"])
def test_every_command_has_help(capsys, cmd):
    with pytest.raises(SystemExit) as e:
        main([cmd, "--help"])
    assert e.value.code == 0 and "usage" in capsys.readouterr().out
