"""Time-bounded fuzzing of the decoders and the journal reader (CI runs it briefly;
``scripts/fuzz.sh`` runs the coverage-guided harness for longer).

Every mutation of a valid input must load or raise FormatError, nothing else.
THERMOGRAM_FUZZ_SECONDS sets the budget per target (default 15)."""
import os
import time

import numpy as np
import pytest

from fuzz import targets

SECONDS = float(os.environ.get("THERMOGRAM_FUZZ_SECONDS", "15"))
SEEDS = targets.seeds()


@pytest.mark.parametrize("fmt", ["v1", "v2", "journal"])
def test_fuzz_decoders(fmt, record_property):
    pool = SEEDS[fmt]
    assert pool, f"no {fmt} seeds"
    rng = np.random.default_rng(int.from_bytes(fmt.encode(), "little"))
    deadline = time.monotonic() + SECONDS
    runs = 0
    while time.monotonic() < deadline:
        data = pool[int(rng.integers(0, len(pool)))]
        for _ in range(int(rng.integers(1, 4))):
            data = targets.mutate(rng, data)
        if fmt == "journal":
            targets.journal(data, SEEDS["journal_snapshot"])
        else:
            targets.decode_any(data)
        runs += 1
    record_property("executions", runs)
    print(f"{fmt}: {runs} executions in {SECONDS:.0f} s, no finding")
    assert runs > 10
