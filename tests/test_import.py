"""``import thermogram`` stays light, and the lazy top-level names all resolve."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import thermogram

OPTIONAL = ("pyarrow", "matplotlib", "tqdm", "dask", "distributed", "cryptography", "pandas", "polars")


def _run(code: str) -> str:
    """Run ``code`` in a fresh interpreter and return its stdout."""
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_import_loads_no_optional_library():
    out = _run(f"""
        import sys
        import thermogram
        print(sorted(m for m in {OPTIONAL!r} if m in sys.modules))
    """)
    assert out == "[]"


def test_import_is_lazy():
    out = _run("""
        import sys
        import thermogram
        print(sorted(m for m in ("numpy", "numba", "thermogram.core", "thermogram.kernels") if m in sys.modules))
    """)
    assert out == "[]"


def test_core_names_load_no_optional_library():
    # The capsule, signals, colonies, ternary weights, the SNN and distillation need none of them either.
    out = _run(f"""
        import sys
        import thermogram
        for name in thermogram.__all__:
            if name not in ("ArchiveReport", "verify_archive"):  # archives are Arrow by design
                getattr(thermogram, name)
        print(sorted(m for m in {OPTIONAL!r} if m in sys.modules))
    """)
    assert out == "[]"


@pytest.mark.parametrize("name", thermogram.__all__)
def test_every_public_name_resolves(name):
    value = getattr(thermogram, name)
    assert value is not None
    assert name in dir(thermogram)


def test_from_import_and_submodules():
    from thermogram import SIGNAL, EmbeddedSNN, Signal, Thermogram  # noqa: F401

    assert thermogram.snn.EmbeddedSNN is EmbeddedSNN
    assert thermogram.core.Thermogram is Thermogram
    assert thermogram.kernels.signal is not None
    with pytest.raises(AttributeError):
        thermogram.no_such_name  # noqa: B018
    with pytest.raises(AttributeError):
        thermogram._private_name  # noqa: B018


def test_all_is_unique():
    assert len(set(thermogram.__all__)) == len(thermogram.__all__)
