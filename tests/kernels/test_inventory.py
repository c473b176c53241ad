"""Every public kernel is exercised by the test file of its module (``test_<module>.py``
beside this one), so a new kernel cannot land without a test against a naive twin."""
import importlib
import inspect
import pathlib
import pkgutil
import re

import pytest

import thermogram.kernels

HERE = pathlib.Path(__file__).resolve().parent
MODULES = sorted(m.name for m in pkgutil.iter_modules(thermogram.kernels.__path__) if not m.name.startswith("_"))


def public_kernels(module) -> list:
    """Names of the functions (compiled or not) a kernel module defines, private ones left out."""
    out = []
    for name, obj in vars(module).items():
        fn = getattr(obj, "py_func", obj)
        if not name.startswith("_") and inspect.isfunction(fn) and fn.__module__ == module.__name__:
            out.append(name)
    return sorted(out)


def test_every_kernel_module_has_a_test_file():
    assert MODULES, "no kernel modules found"
    missing = [m for m in MODULES if not (HERE / f"test_{m}.py").exists()]
    assert not missing, f"kernel modules without tests/kernels/test_<module>.py: {missing}"


@pytest.mark.parametrize("name", MODULES)
def test_every_kernel_is_used_by_its_test_file(name):
    module = importlib.import_module(f"thermogram.kernels.{name}")
    path = HERE / f"test_{name}.py"
    if not path.exists():
        pytest.fail(f"{path.name} is missing")
    text = path.read_text()
    untested = [k for k in public_kernels(module) if not re.search(rf"\.{k}\b", text)]
    assert not untested, f"kernels of {name} not used in {path.name}: {untested}"
