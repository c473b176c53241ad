"""Kernel tests: every kernel of ``thermogram.kernels`` against its naive twin in
``tests/naive``. The folder also runs with ``NUMBA_DISABLE_JIT=1``."""
