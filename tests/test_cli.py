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


# ---------------------------------------------------------------- messages a newcomer meets
def _err(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.startswith("thermogram: error:"), err
    return err


@pytest.mark.parametrize("cmd", [["inspect"], ["verify"], ["replay"], ["export", "--to", "json"]])
def test_a_directory_is_named_as_one(capsys, tmp_path, cmd):
    args = [*cmd, str(tmp_path)] + ([str(tmp_path / "o.json")] if cmd[0] == "export" else [])
    assert main(args) == 1
    err = _err(capsys)
    assert "is a directory, not a capsule file" in err and "Errno" not in err


@pytest.mark.parametrize("fmt", ["json", "parquet"])
def test_export_into_a_directory_names_no_temp_file(capsys, capsule_file, tmp_path, fmt):
    (tmp_path / "outdir").mkdir()
    assert main(["export", str(capsule_file), "--to", fmt, str(tmp_path / "outdir")]) == 1
    err = _err(capsys)
    assert "is a directory; give a file name" in err and ".tmp" not in err
    assert os.listdir(tmp_path / "outdir") == [] and sorted(os.listdir(tmp_path)) == ["c.thermo", "outdir"]


@pytest.mark.parametrize("cmd", [["export", "--to", "json"], ["export", "--to", "parquet"],
                                 ["export", "--to", "archive"], ["convert", "--to", "v2"]])
def test_a_missing_output_folder_is_an_error_not_created(capsys, capsule_file, tmp_path, cmd):
    out = tmp_path / "nonexistent" / "dir" / "out.x"
    assert main([cmd[0], str(capsule_file), *cmd[1:], str(out)]) == 1
    assert "does not exist" in _err(capsys)
    assert not (tmp_path / "nonexistent").exists()


def test_export_archive_refuses_an_existing_folder(capsys, capsule_file, tmp_path):
    (tmp_path / "arch").mkdir()
    assert main(["export", str(capsule_file), "--to", "archive", str(tmp_path / "arch")]) == 1
    assert "exists" in _err(capsys)


def test_json_export_loaded_back_gets_a_clear_message(capsys, capsule_file, tmp_path):
    from thermogram import FormatError
    out = tmp_path / "e.json"
    assert main(["export", str(capsule_file), "--to", "json", str(out)]) == 0
    capsys.readouterr()
    with pytest.raises(FormatError, match="JSON export .* not a capsule"):
        Thermogram.load(out)
    for cmd in ("inspect", "verify", "replay"):
        assert main([cmd, str(out)]) == 1
        cap = capsys.readouterr()
        assert "not a capsule" in cap.out + cap.err and "Traceback" not in cap.err


def test_convert_to_v1_warns_what_is_dropped(capsys, tmp_path):
    t = Thermogram("hist")
    for i in range(6):
        t.write(f"k{i}", signal_vector([(1, i + 1)]), Signal.positive(200))
    t.consolidate()
    t.extensions["note"] = {"a": 1}
    src = tmp_path / "h.thermo"
    t.save(src)
    n = len(t.records())
    assert main(["convert", str(src), "--to", "v1", str(tmp_path / "h1.thermo")]) == 0
    cap = capsys.readouterr()
    assert cap.out.startswith("wrote")
    m = len(Thermogram.load(tmp_path / "h1.thermo").records())
    assert m < n
    assert "warning" in cap.err and f"history ({n} records -> {m})" in cap.err and "'note'" in cap.err
    # a reference file converted to v1 loses nothing and says nothing
    assert main(["convert", str(MIXED), "--to", "v1", str(tmp_path / "m1.thermo")]) == 0
    assert capsys.readouterr().err == ""


def test_inspect_prints_triggers_as_words(capsys, tmp_path):
    from thermogram import ConsolidationPolicy
    p = tmp_path / "m.thermo"
    Thermogram("m", policy=ConsolidationPolicy.manual_only()).save(p)
    assert main(["inspect", str(p)]) == 0
    out = capsys.readouterr().out
    assert "consolidate manual" in out and "[[" not in out
    assert main(["inspect", str(MIXED)]) == 0
    assert "consolidate every 1000 deltas, every 24 h" in capsys.readouterr().out


@pytest.mark.parametrize("cmd", ["demo", "inspect", "verify", "export", "convert", "replay"])
def test_every_command_has_a_description(capsys, cmd):
    with pytest.raises(SystemExit):
        main([cmd, "--help"])
    usage, _, rest = capsys.readouterr().out.partition("\n\n")
    description = rest.split("\n\n")[0]
    assert not description.startswith(("positional", "options")) and len(description) > 40


def test_help_imports_neither_numba_nor_matplotlib():
    """``--help`` answers without importing numba, the network or matplotlib (it starts in 0.1 s)."""
    code = ("import sys; from thermogram.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print('numba' in sys.modules, 'thermogram.snn' in sys.modules, 'matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "False False False"


def test_closed_and_second_open_messages(tmp_path):
    from thermogram import LockedError, ReadOnlyError
    p = str(tmp_path / "j.thermo")
    with Thermogram.open(p, create=True) as t:
        t.write("a", signal_vector([(1, 1)]))
        with pytest.raises(LockedError, match="already open for writing in this process"):
            Thermogram.open(p)
    with pytest.raises(ReadOnlyError, match="is closed"):
        t.write("b", signal_vector([(1, 2)]))
    r = Thermogram.open(p, readonly=True)
    with pytest.raises(ReadOnlyError, match="opened read-only"):
        r.write("b", signal_vector([(1, 2)]))
    with Thermogram.open(p) as again:  # the lock was given back on close
        again.write("b", signal_vector([(1, 2)]))


def test_second_writer_in_another_process_is_named_so(tmp_path):
    from thermogram import LockedError
    p = str(tmp_path / "j.thermo")
    Thermogram.open(p, create=True).close()
    code = ("import sys, time; from thermogram import Thermogram\n"
            "t = Thermogram.open(sys.argv[1]); print('locked', flush=True); sys.stdin.read()")
    child = subprocess.Popen([sys.executable, "-c", code, p], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
    try:
        assert child.stdout.readline().strip() == "locked"
        with pytest.raises(LockedError, match="another process"):
            Thermogram.open(p)
    finally:
        child.stdin.close()
        child.wait(timeout=60)


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_files_follow_the_umask(tmp_path, mask):
    old = os.umask(mask)
    try:
        t = Thermogram("u")
        t.write("a", signal_vector([(1, 1)]))
        t.save(tmp_path / "s.thermo")
        t.export_to_json(tmp_path / "e.json")
        with Thermogram.open(str(tmp_path / "j.thermo"), create=True) as j:
            j.write("a", signal_vector([(1, 1)]))
    finally:
        os.umask(old)
    for name in ("s.thermo", "e.json", "j.thermo", "j.thermo.journal"):
        assert os.stat(tmp_path / name).st_mode & 0o777 == 0o666 & ~mask, name
