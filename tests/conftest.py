import itertools
import os
import pathlib

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=60, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=30, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

ROOT = pathlib.Path(__file__).resolve().parent.parent


#: The reference crate's conformance vectors, copied into the repository.
CONFORMANCE_DIR = ROOT / "tests" / "data" / "conformance"


def conformance_dir() -> pathlib.Path:
    """The vector folder: $THERMOGRAM_CONFORMANCE_DIR, default tests/data/conformance."""
    env = os.environ.get("THERMOGRAM_CONFORMANCE_DIR")
    return pathlib.Path(env) if env else CONFORMANCE_DIR


class StepClock:
    """Deterministic clock: starts at ``start`` ns and advances ``step`` ns per call."""

    def __init__(self, start: int = 1_700_000_000_000_000_000, step: int = 1_000_000):
        self.start = start
        self._it = itertools.count(start, step)
        self.last = start

    def __call__(self) -> int:
        self.last = next(self._it)
        return self.last


@pytest.fixture
def clock():
    return StepClock()
