"""The doctests of every module of the installed ``thermogram`` package, one test per module.

Modules are found with :func:`pkgutil.walk_packages`, so examples added to any
docstring are picked up without touching this file. A module whose import needs
an optional extra that is not installed is skipped, naming the missing module.
"""
from __future__ import annotations

import doctest
import importlib
import io
import pkgutil
from typing import List

import pytest

import thermogram

OPTIONFLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE

# classes whose docstrings must carry at least one example
DOCUMENTED_CLASSES = ("Thermogram", "Delta", "DeltaBatch", "EmbeddedSNN", "TernaryLayer", "ThermogramColony")


def _walk(package) -> List[str]:
    return [m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".",
                                                  onerror=lambda name: None)]


def module_names() -> List[str]:
    """``thermogram`` and every module below it. ``thermogram.kernels`` is walked on its own:
    an editable install maps it from another folder, where walking ``thermogram`` misses it."""
    names = {"thermogram", *_walk(thermogram)}
    kernels = importlib.import_module("thermogram.kernels")
    names |= {"thermogram.kernels", *_walk(kernels)}
    return sorted(n for n in names if not n.endswith("__main__"))


def import_or_skip(name: str):
    """Import ``name``; skip only when what is missing is a module outside thermogram."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        missing = e.name or ""
        if missing == "thermogram" or missing.startswith("thermogram."):
            raise
        pytest.skip(f"{name} needs {missing!r}, an optional dependency that is not installed")


@pytest.mark.parametrize("name", module_names())
def test_module_doctests(name, tmp_path, monkeypatch):
    module = import_or_skip(name)
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=OPTIONFLAGS)
    report = io.StringIO()
    for test in sorted(finder.find(module, name), key=lambda t: t.name):
        runner.run(test, out=report.write)
    result = runner.summarize(verbose=False)
    if result.failed:
        pytest.fail(f"{result.failed} of {result.attempted} doctest examples failed in {name}:\n"
                    f"{report.getvalue()}", pytrace=False)


@pytest.mark.parametrize("cls_name", DOCUMENTED_CLASSES)
def test_main_classes_have_examples(cls_name):
    cls = getattr(thermogram, cls_name)
    tests = doctest.DocTestFinder(recurse=False).find(cls, cls_name)
    assert sum(len(t.examples) for t in tests) > 0, f"{cls_name}'s docstring has no doctest example"
