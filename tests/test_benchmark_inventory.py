"""Every row that ``tools/compare_reference.py`` compares with the reference has an asv
benchmark behind it (so the dashboard shows it), with parameters that suite declares, and
every target names a row that exists."""
from __future__ import annotations

import importlib
import importlib.util
import itertools
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def cr():
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    spec = importlib.util.spec_from_file_location("compare_reference_under_test",
                                                  os.path.join(ROOT, "tools", "compare_reference.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _suites(cr):
    return [importlib.import_module(f"benchmarks.{m}") for m in cr.ASV_MODULES]


def _find(suites, bench):
    cls_name, meth = bench.split(".")
    for mod in suites:
        cls = getattr(mod, cls_name, None)
        if cls is not None and hasattr(cls, meth):
            return cls
    return None


def test_every_compared_row_has_an_asv_benchmark_with_those_parameters(cr):
    suites = _suites(cr)
    missing, bad_params = [], []
    for label, _ref, bench, params, _div, _unit in cr.ROWS:
        cls = _find(suites, bench)
        if cls is None:
            missing.append((label, bench))
            continue
        declared = getattr(cls, "params", None)
        if not params:
            continue
        grid = declared if declared and isinstance(declared[0], list) else [declared or []]
        if tuple(params) not in set(itertools.product(*grid)):
            bad_params.append((label, bench, params))
    assert not missing, f"rows without an asv benchmark: {missing}"
    assert not bad_params, f"rows whose parameters the suite does not declare: {bad_params}"


def test_every_target_names_a_row(cr):
    labels = [r[0] for r in cr.ROWS]
    for desc, label, kind, _thr in cr.TARGETS:
        if kind == "all_below_ns":
            assert any(lab.startswith(label) for lab in labels), desc
        else:
            assert label in labels, desc
