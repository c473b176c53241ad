"""Every ```python block of README.md and docs/*.md runs as pasted.

The blocks of one file run in order in one namespace (a later block may use what an
earlier one made, as a reader pasting them one after another would), in a fresh
temporary folder. A block that fails names its file and line.
"""
from __future__ import annotations

import pathlib
import re
from typing import List, Tuple

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)


def python_blocks(path: pathlib.Path) -> List[Tuple[int, str]]:
    """The ```python blocks of a Markdown file as ``(first code line, source)`` pairs."""
    text = path.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start(1)) + 1, m.group(1)) for m in FENCE.finditer(text)]


def test_the_collector_finds_the_readme_blocks(tmp_path):
    blocks = python_blocks(ROOT / "README.md")
    assert len(blocks) >= 5
    assert all(src.strip() for _, src in blocks)
    p = tmp_path / "sample.md"
    p.write_text("text\n```python\nx = 1\n```\n```bash\nls\n```\n```python\ny = x\n```\n")
    assert python_blocks(p) == [(3, "x = 1\n"), (9, "y = x\n")]


@pytest.mark.parametrize("doc", [p for p in DOCS if python_blocks(p)], ids=lambda p: p.name)
def test_blocks_run(doc, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": f"readme_{doc.stem}"}
    for line, src in python_blocks(doc):
        code = compile(src, f"{doc.relative_to(ROOT)}:{line}", "exec")
        try:
            exec(code, namespace)  # noqa: S102 - the documentation's own examples
        except Exception as e:
            pytest.fail(f"{doc.name}, block at line {line}: {type(e).__name__}: {e}")
