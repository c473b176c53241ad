import subprocess
import sys

import pytest

from thermogram.cli import main
from thermogram.demo import run_demo


def test_demo_runs_verifies_and_replays(capsys):
    assert main(["demo", "--keys", "40", "--rounds", "4", "--dim", "4", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "chain verified   yes" in out and "replay digest    matches" in out


def test_demo_is_deterministic():
    a = run_demo(keys=30, rounds=3, dim=4, seed=3)
    b = run_demo(keys=30, rounds=3, dim=4, seed=3)
    assert a.digest == b.digest and a.head_hash == b.head_hash
    assert a.layer_history == b.layer_history
    assert run_demo(keys=30, rounds=3, dim=4, seed=4).digest != a.digest


def test_important_concepts_end_up_colder_than_noise():
    r = run_demo(keys=100, rounds=8, dim=4, seed=2)
    last = r.layer_history[-1]
    assert last["cold"] + last["cool"] > 0 and last["hot"] > 0


def test_bad_flag_is_a_clean_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["demo", "--keys", "-3"])
    assert e.value.code == 2
    assert "positive" in capsys.readouterr().err


def test_console_script_entry_point():
    out = subprocess.run([sys.executable, "-m", "thermogram.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("thermogram ")
