"""Coverage-guided fuzzing with atheris (``scripts/fuzz.sh``).

The first input byte picks the target (decoders or journal); any exception
other than FormatError is a crash atheris reports and saves.

Numba compiles kernels from their Python bytecode, so the harness first runs
every target on the seeds (compiling or loading each kernel for the types it
will see) and only then instruments the loaded Python code for coverage.
"""
import sys

import atheris

import thermogram  # noqa: F401
from fuzz import targets

SEEDS = targets.seeds()
SNAPSHOT = SEEDS["journal_snapshot"]


def one_input(data: bytes) -> None:
    if not data:
        return
    if data[0] % 2:
        targets.journal(data[1:], SNAPSHOT)
    else:
        targets.decode_any(data[1:])


def main() -> None:
    for blob in SEEDS["v1"] + SEEDS["v2"]:
        targets.decode_any(blob)
    for blob in SEEDS["journal"]:
        targets.journal(blob, SNAPSHOT)
    atheris.instrument_all()
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
