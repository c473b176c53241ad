"""The embedded default run behind ``thermogram demo``.

A small capsule lives through a few rounds of observations: a handful of
"important" keys are observed often and strongly, the rest rarely and
weakly. Each round writes one columnar batch, reinforces the important keys,
decays, and consolidates (fold, prune, four-temperature transitions). At the
end the capsule is rebuilt from its records and both state digests and the
chain are checked.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, List, Optional, TextIO

import numpy as np

from .consolidation import ConsolidationPolicy
from .core import Thermogram
from .delta import DeltaBatch
from .plasticity import PlasticityRule
from .signal import SIGNAL, Signal
from .thermal import ThermalConfig, ThermalState

__all__ = ["DemoResult", "run_demo"]


@dataclass
class DemoResult:
    """What :func:`run_demo` did and found."""

    layer_history: List[dict] = field(default_factory=list)
    deltas: int = 0
    records: int = 0
    head_hash: str = ""
    digest: str = ""
    replay_digest: str = ""
    verified: bool = False
    seconds: float = 0.0

    @property
    def replay_matches(self) -> bool:
        return self.digest == self.replay_digest


def run_demo(keys: int = 200, rounds: int = 12, dim: int = 16, seed: int = 7,
             out: Optional[TextIO] = None) -> DemoResult:
    """Run the demo; print a summary to ``out`` (if given) and return the result."""
    rng = np.random.default_rng(seed)
    step = [0]

    def clock() -> int:  # deterministic: one simulated minute per call
        step[0] += 1
        return 1_767_225_600_000_000_000 + step[0] * 60_000_000_000

    t = Thermogram("demo", PlasticityRule.stdp_like(), thermal_config=ThermalConfig.fast_learner(),
                   policy=ConsolidationPolicy.manual_only(), clock=clock, id=f"demo-seed-{seed}")
    names = [f"concept_{i:04d}" for i in range(keys)]
    important = rng.choice(keys, size=max(1, keys // 10), replace=False)
    weight = np.full(keys, 0.05)
    weight[important] = 1.0
    res = DemoResult()
    t0 = time.perf_counter()
    for r in range(rounds):
        n_obs = keys * 2
        idx = rng.choice(keys, size=n_obs, p=weight / weight.sum())
        values = np.clip(rng.normal(0, 0.5, size=(n_obs, dim)), -1, 1).astype(np.float32)
        strengths = np.empty(n_obs, SIGNAL)
        strengths["polarity"] = 1
        strengths["magnitude"] = np.where(np.isin(idx, important), rng.integers(180, 256, n_obs),
                                          rng.integers(5, 80, n_obs))
        batch = DeltaBatch.from_arrays([names[i] for i in idx], values, strengths, "update",
                                       source="demo-observer", clock=clock, id=f"round-{r}")
        t.apply_batch(batch)
        res.deltas += n_obs
        t.consolidate()
        for i in important[: max(1, len(important) // 2)]:
            t.reinforce(names[i], Signal.positive(20))
        t.apply_decay()
        res.layer_history.append(t.layer_counts())
    res.seconds = time.perf_counter() - t0
    res.records = len(t.records())
    res.head_hash = t.head_hash
    res.digest = t.state_digest()
    res.verified = t.verify()
    res.replay_digest = Thermogram.replay(t.records()).state_digest()
    if out is not None:
        _print_summary(res, t, out)
    return res


def _print_summary(res: DemoResult, t: Thermogram, out: TextIO) -> None:
    w = out.write
    w("thermogram demo: a capsule learning which concepts matter\n\n")
    w(f"{'round':>5}  {'hot':>5} {'warm':>5} {'cool':>5} {'cold':>5}\n")
    for i, c in enumerate(res.layer_history):
        w(f"{i + 1:>5}  {c['hot']:>5} {c['warm']:>5} {c['cool']:>5} {c['cold']:>5}\n")
    w("\n")
    for st in ThermalState:
        m = t.strengths(st)["magnitude"]
        if len(m):
            w(f"  {st.label:<5} strength median {int(np.median(m)):>3}, max {int(m.max()):>3}\n")
    w(f"\n  deltas applied   {res.deltas}\n")
    w(f"  records          {res.records}\n")
    w(f"  head hash        {res.head_hash}\n")
    w(f"  chain verified   {'yes' if res.verified else 'NO'}\n")
    w(f"  replay digest    {'matches' if res.replay_matches else 'DIFFERS'} ({res.digest[:16]}…)\n")
    w(f"  throughput       {res.deltas / max(res.seconds, 1e-9):,.0f} deltas/s "
      f"({res.seconds:.2f} s including consolidation)\n")
