"""Which compiled kernels use instructions that are slow on some CPUs, on this machine.

Runs the behaviour fingerprint (``tools/fingerprint.py``, which calls nearly every kernel)
with an empty numba cache, so every kernel is compiled here and its machine code can be
read. It then counts, per kernel, the instructions that are fast on some CPUs and slow on
others: masked loads and stores (``vmaskmov*``, microcoded on AMD Zen 1/2) and gathers
(``vgather*`` / ``vpgather*``). A conditional expression that reads an array inside a
vectorised loop is the usual cause (see ``kernels/ternary.py``, ``_byte_sum``). What the
compiler emits depends on the CPU, so run this on each kind of machine you care about.

Usage: python tools/codegen_scan.py        (prints one line per kernel and instruction; ~3 min)
"""
from __future__ import annotations

import collections
import contextlib
import importlib
import io
import os
import pkgutil
import re
import runpy
import sys
import tempfile

SLOW = ("vmaskmovps", "vmaskmovpd", "vpmaskmovd", "vpmaskmovq",
        "vgatherdps", "vgatherqps", "vgatherdpd", "vgatherqpd",
        "vpgatherdd", "vpgatherqd", "vpgatherdq", "vpgatherqq")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main() -> int:
    if os.environ.get("NUMBA_CACHE_DIR") is None:
        # machine code is only readable for kernels compiled in this process
        os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="codegen-scan-")
        os.execv(sys.executable, [sys.executable] + sys.argv)
    sys.path.insert(0, ROOT)
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            runpy.run_path(os.path.join(ROOT, "tools", "fingerprint.py"), run_name="__main__")
        except SystemExit:
            pass
    import thermogram.kernels as kernels
    from numba.core.registry import CPUDispatcher

    found = collections.Counter()
    scanned = 0
    for info in pkgutil.iter_modules(kernels.__path__):
        mod = importlib.import_module(f"thermogram.kernels.{info.name}")
        for name, obj in sorted(vars(mod).items()):
            if not (isinstance(obj, CPUDispatcher) and obj.signatures):
                continue
            scanned += 1
            for asm in obj.inspect_asm().values():
                for ins in SLOW:
                    n = len(re.findall(rf"\b{ins}\b", asm))
                    if n:
                        found[(info.name, name, ins)] += n
    for (mod, name, ins), n in sorted(found.items()):
        print(f"{mod}.{name}: {ins} x {n}")
    print(f"# {scanned} compiled kernels scanned, {len(found)} with masked loads/stores or gathers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
