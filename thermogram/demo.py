"""The embedded default run behind ``thermogram demo``.

A synthetic activation stream (:class:`ConceptStream`) stands in for a
language model's hidden states: ``k`` latent concepts in ``dim`` dimensions,
each a unit direction that turns slowly, sampled with noise and uneven
frequencies, with some pairs of concepts co-occurring and a few pure-noise
outliers. The stream runs through an :class:`EmbeddedSNN` with prototype
learning, in chunks of ticks (one :meth:`EmbeddedSNN.process_batch`
call and one :class:`DeltaBatch` per chunk), into a file-backed capsule
``demo.thermo`` whose journal holds every record before the call returns.
Every ``consolidate_every`` ticks the capsule decays and consolidates (fold,
prune, four-temperature transitions). At the end the network's state is
stored with the capsule, a checkpoint writes the snapshot, and three checks
run: the hash chain verifies, a replay of the records reaches the same state
digest, and the snapshot read back from disk has that digest too.

Everything is seeded and the clock is simulated (100 ms a tick), so the same
arguments give the same deltas, the same head hash and the same digest.
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, TextIO

import numpy as np

from .consolidation import ConsolidationPolicy
from .core import Thermogram
from .errors import ThermogramError, ValidationError
from .neuromod import NeuromodState
from .plasticity import PlasticityRule
from .snn import EmbeddedSNN, EmbeddedSNNConfig
from .thermal import ThermalConfig, ThermalState

__all__ = ["ConceptStream", "DemoResult", "run_demo", "demo_files", "print_summary", "DEFAULT_FOLDER",
           "CAPSULE_NAME", "REPORT_NAME", "START_NS", "TICK_NS", "LAYERS"]

DEFAULT_FOLDER = "thermogram-demo"
CAPSULE_NAME = "demo.thermo"
REPORT_NAME = "report.png"
START_NS = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z
TICK_NS = 100_000_000  # one tick is 100 simulated ms, as in the SNN
LAYERS = tuple(st.label for st in ThermalState)


class ConceptStream:
    """Activation vectors drawn from ``concepts`` drifting latent directions.

    Every tick picks a concept (concept ``c`` in proportion to ``1 / (c + 1)``
    when ``skew``, else uniformly) and emits its current direction plus
    Gaussian noise, scaled to the size of a language model's hidden state
    (components of about unit variance, norm about ``sqrt(dim)``). On top:

    * **drift**: every concept's direction turns slowly, by ``drift`` radians
      a tick, in a random plane of its own;
    * **co-occurrence**: after ``warmup`` ticks, with probability ``mix`` a
      tick blends its concept with its partner (0 with 1, 2 with 3, ...),
      ``(1 - mix_weight) * own + mix_weight * partner``, so that the two
      concepts' neurons fire together;
    * **outliers**: with probability ``outliers`` a tick is pure noise and
      belongs to no concept (label -1).

    The initial directions are random, orthonormal, then shifted away from
    their common mean so that every two have cosine ``-anticorrelation``
    (at most ``1 / (concepts - 1)``, where the mean is removed entirely), as
    class means are once centred. A neuron that has learned one concept
    then never looks closer to a new concept than an untrained neuron does.

    Parameters
    ----------
    concepts, dim : int
        Number of latent concepts and length of every vector.
    rng : numpy.random.Generator
        Source of every random number (seed it for a reproducible stream).
    drift : float
        Radians a concept's direction turns per tick (0.0002: 0.4 rad, a
        cosine of 0.92 with where it started, after 2,000 ticks).
    noise : float
        Norm of the noise relative to the direction (0.8: a sample's cosine
        with its concept is about 0.78).

    :meth:`take` returns ``(X, labels)``: a float32 ``(n, dim)`` array and the
    concept of every row (-1 for an outlier).
    """

    def __init__(self, concepts: int, dim: int, rng: np.random.Generator, *,
                 drift: float = 0.0002, noise: float = 0.8, mix: float = 0.1,
                 mix_weight: float = 0.45, warmup: int = 300, outliers: float = 0.05,
                 anticorrelation: float = 0.1, skew: bool = True):
        if concepts < 1 or dim < 1:
            raise ValidationError(f"concepts and dim must be at least 1, got {concepts} and {dim}")
        self.concepts, self.dim = int(concepts), int(dim)
        self.rng = rng
        self.drift, self.noise = float(drift), float(noise)
        self.mix, self.mix_weight, self.warmup = float(mix), float(mix_weight), int(warmup)
        self.outliers = float(outliers)
        self.ticks = 0
        self._start = _directions(rng, self.concepts, self.dim, float(anticorrelation))
        turn = rng.standard_normal((self.concepts, self.dim)).astype(np.float32)
        turn -= (turn * self._start).sum(axis=1, keepdims=True) * self._start
        norm = np.linalg.norm(turn, axis=1, keepdims=True)
        # unit and orthogonal to _start (in one dimension there is no room to turn)
        self._turn = np.where(norm > 0, turn / np.where(norm > 0, norm, 1), self._start)
        w = 1.0 / np.arange(1, self.concepts + 1) if skew else np.ones(self.concepts)
        self.frequencies = w / w.sum()

    def _at(self, concepts: np.ndarray, ticks: np.ndarray) -> np.ndarray:
        angle = (self.drift * ticks)[:, None]
        c = np.cos(angle) * self._start[concepts] + np.sin(angle) * self._turn[concepts]
        return c.astype(np.float32)

    @property
    def centres(self) -> np.ndarray:
        """Every concept's unit direction at the next tick, ``(concepts, dim)``."""
        return self._at(np.arange(self.concepts), np.full(self.concepts, float(self.ticks)))

    def take(self, n: int):
        """The next ``n`` samples and their concept labels (-1: outlier)."""
        rng, k, d = self.rng, self.concepts, self.dim
        ticks = self.ticks + np.arange(n, dtype=np.float64)
        labels = rng.choice(k, size=n, p=self.frequencies)
        sigma = np.float32(self.noise / np.sqrt(d))
        X = self._at(labels, ticks) + sigma * rng.standard_normal((n, d), dtype=np.float32)
        partner = np.minimum(labels ^ 1, k - 1)
        other = self._at(partner, ticks) + sigma * rng.standard_normal((n, d), dtype=np.float32)
        blend = (ticks >= self.warmup) & (partner != labels) & (rng.random(n) < self.mix)
        a = np.float32(self.mix_weight)
        X[blend] = (1 - a) * X[blend] + a * other[blend]
        X *= np.float32(np.sqrt(d))
        outlier = rng.random(n) < self.outliers
        X[outlier] = rng.standard_normal((int(outlier.sum()), d), dtype=np.float32)
        labels[outlier] = -1
        self.ticks += n
        return X, labels


def _directions(rng: np.random.Generator, k: int, d: int, anticorrelation: float) -> np.ndarray:
    """``k`` unit vectors in ``d`` dimensions whose pairwise cosine is
    ``-min(anticorrelation, 1 / (k - 1))`` (exactly when ``k <= d``)."""
    c = rng.standard_normal((k, d))
    if k <= d:
        c = np.linalg.qr(c.T)[0].T  # orthonormal rows
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    if k > 1 and anticorrelation > 0:
        rho = -min(anticorrelation, 1.0 / (k - 1))
        # (c_i - a m) . (c_j - a m) / |c_i - a m|^2 = rho for orthonormal c_i and m their mean
        a = 1.0 - np.sqrt(max(0.0, 1.0 + k * rho / (1.0 - rho)))
        c -= a * c.mean(axis=0)
        c /= np.linalg.norm(c, axis=1, keepdims=True)
    return c.astype(np.float32)


@dataclass
class DemoResult:
    """What :func:`run_demo` did and found.

    ``history`` has one row at the start and one per consolidation (``tick``,
    entries per layer, ``records``); ``confusion[c, r]`` counts the ticks of concept ``c`` whose
    input was closest (cosine) to neuron ``r``'s prototype at the end of the
    tick's chunk (the ``outliers`` ticks of pure noise belong to no concept);
    ``strengths`` maps each layer to its entries' strength
    magnitudes at the end.
    """

    folder: str = ""
    capsule_path: str = ""
    report_path: Optional[str] = None
    ticks: int = 0
    neurons: int = 0
    dim: int = 0
    concepts: int = 0
    seed: int = 0
    history: List[dict] = field(default_factory=list)
    confusion: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int64))
    strengths: Dict[str, np.ndarray] = field(default_factory=dict)
    outliers: int = 0
    deltas: int = 0
    batches: int = 0
    promoted: int = 0
    demoted: int = 0
    records: int = 0
    head_hash: str = ""
    digest: str = ""
    replay_digest: str = ""
    reload_digest: str = ""
    verified: bool = False
    seconds: float = 0.0
    stream_seconds: float = 0.0
    removed: List[str] = field(default_factory=list)

    @property
    def replay_matches(self) -> bool:
        """Whether a replay of the capsule's records reached the same (non-empty) state digest."""
        return bool(self.digest) and self.digest == self.replay_digest

    @property
    def reload_matches(self) -> bool:
        """Whether the capsule reloaded from its file has the same (non-empty) state digest."""
        return bool(self.digest) and self.digest == self.reload_digest

    @property
    def ok(self) -> bool:
        """Chain verified, replay and the reloaded snapshot reach the same digest."""
        return self.verified and self.replay_matches and self.reload_matches

    @property
    def owners(self) -> np.ndarray:
        """For each concept, the neuron that won most of its ticks (-1: none)."""
        c = self.confusion
        if c.size == 0:
            return np.zeros(0, np.int64)
        return np.where(c.sum(axis=1) > 0, c.argmax(axis=1), -1)

    @property
    def purity(self) -> float:
        """Share of ticks whose winning neuron's majority concept is their own."""
        total = self.confusion.sum()
        return float(self.confusion.max(axis=0).sum() / total) if total else 0.0

    @property
    def distinct_owners(self) -> int:
        """Concepts whose owner neuron owns no other concept."""
        o = self.owners
        o = o[o >= 0]
        vals, counts = np.unique(o, return_counts=True)
        return int(counts[counts == 1].sum())


def demo_files(folder: str) -> List[str]:
    """The files a demo run creates in ``folder`` that exist now (capsule, journal
    segments, lock, report); nothing else in the folder is touched."""
    if not os.path.isdir(folder):
        return []
    out = []
    for name in sorted(os.listdir(folder)):
        if (name in (CAPSULE_NAME, CAPSULE_NAME + ".lock", REPORT_NAME)
                or name.startswith(CAPSULE_NAME + ".journal")):
            p = os.path.join(folder, name)
            if os.path.isfile(p) or os.path.islink(p):
                out.append(p)
    return out


class _Clock:
    """Simulated time: 100 ms per tick, plus 1 ns per reading so that readings
    within a tick still increase."""

    def __init__(self) -> None:
        self.tick = 0
        self.reads = 0

    def __call__(self) -> int:
        self.reads += 1
        return START_NS + self.tick * TICK_NS + self.reads


def _progress(total: int, enabled: bool):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency; a missing bar is harmless
        return None
    # disable=None: silent when stderr is not a terminal
    return tqdm(total=total, unit="tick", desc="demo", disable=None, file=sys.stderr,
                dynamic_ncols=True, leave=False)


def run_demo(ticks: int = 2000, neurons: int = 64, dim: int = 2048, concepts: int = 8,
             seed: int = 7, folder: str = DEFAULT_FOLDER, *, chunk: int = 50,
             consolidate_every: Optional[int] = None, progress: bool = True, plot: bool = True,
             out: Optional[TextIO] = None) -> DemoResult:
    """Run the demo into ``folder``; print a summary to ``out`` (if given).

    The capsule decays and consolidates every ``consolidate_every`` ticks
    (default: 250, or an eighth of the run for short runs, at least one chunk).
    Previous demo files in ``folder`` (:func:`demo_files`) are removed first;
    other files there are left alone. Returns a :class:`DemoResult`;
    ``result.ok`` says whether every check passed.
    """
    if consolidate_every is None:
        consolidate_every = max(chunk, min(250, ticks // 8 // chunk * chunk))
    for name, v in (("ticks", ticks), ("neurons", neurons), ("dim", dim), ("concepts", concepts),
                    ("chunk", chunk), ("consolidate_every", consolidate_every)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValidationError(f"{name} must be a positive integer, got {v!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValidationError(f"seed must be a non-negative integer, got {seed!r}")
    if plot:
        from .report import require_matplotlib
        require_matplotlib()

    folder = os.fspath(folder)
    os.makedirs(folder, exist_ok=True)
    res = DemoResult(folder=folder, capsule_path=os.path.join(folder, CAPSULE_NAME),
                     ticks=int(ticks), neurons=int(neurons), dim=int(dim), concepts=int(concepts),
                     seed=int(seed))
    for p in demo_files(folder):
        os.remove(p)
        res.removed.append(p)

    rng = np.random.default_rng(seed)
    stream = ConceptStream(concepts, dim, rng, warmup=min(300, ticks // 5))
    clock = _Clock()
    # every neuron may connect to every other, so any two concepts that co-occur can bind
    snn = EmbeddedSNN(EmbeddedSNNConfig(num_neurons=neurons, input_dim=dim, top_k=max(neurons - 1, 0),
                                        seed=seed, prototype_lr=0.05), clock=clock)
    # Acetylcholine gates spreading along the associative weights. At the baseline 0.5 a
    # saturated weight lets the frequent concept's neuron make its partner spike on the
    # frequent concept's ticks, and drag the partner's prototype over to it; 0.3 keeps
    # the partners bound but their prototypes apart.
    mood = NeuromodState(acetylcholine=0.3)
    confusion = np.zeros((concepts, neurons), np.int64)

    bar = _progress(ticks, progress)
    t0 = time.perf_counter()
    aside = 0.0  # generating the stream and scoring the prototypes: not the pipeline's work
    t = Thermogram.open(res.capsule_path, create=True, fsync="always", clock=clock, name="demo",
                        id=f"thermogram-demo-seed-{seed}", rule=PlasticityRule.stdp_like(),
                        thermal_config=ThermalConfig.fast_learner(),
                        policy=ConsolidationPolicy.manual_only())
    try:
        res.history.append({"tick": 0, **t.layer_counts(), "records": len(t.records())})
        done = 0
        next_consolidation = consolidate_every
        while done < ticks:
            n = min(chunk, ticks - done, next_consolidation - done)
            s0 = time.perf_counter()
            X, labels = stream.take(n)
            aside += time.perf_counter() - s0
            batch = snn.process_batch(X, mood)
            batch.id = f"snn-seed-{seed}-ticks-{done:08d}-{done + n:08d}"  # reproducible record hashes
            t.apply_batch(batch)
            res.deltas += len(batch)
            res.batches += 1
            s0 = time.perf_counter()
            _count_winners(X, labels, snn.prototypes, confusion)
            aside += time.perf_counter() - s0
            res.outliers += int((labels < 0).sum())
            done += n
            clock.tick = done
            if done == next_consolidation or done == ticks:
                t.apply_decay()
                c = t.consolidate()
                res.promoted += c.promoted
                res.demoted += c.demoted
                res.history.append({"tick": done, **t.layer_counts(), "records": len(t.records())})
                next_consolidation += consolidate_every
                if bar is not None:
                    h = res.history[-1]
                    bar.set_postfix_str(" ".join(f"{k} {h[k]}" for k in LAYERS), refresh=False)
            if bar is not None:
                bar.update(n)
        t.extensions["snn"] = snn.state()  # the network lives on inside the snapshot
        t.checkpoint()
        res.seconds = time.perf_counter() - t0 - aside
        res.stream_seconds = aside
        res.records = len(t.records())
        res.head_hash = t.head_hash
        res.digest = t.state_digest()
        res.verified = _check(t.verify) is True
        res.replay_digest = _check(lambda: Thermogram.replay(t.records()).state_digest()) or ""
        res.strengths = {st.label: t.strengths(st)["magnitude"].copy() for st in ThermalState}
    finally:
        t.close()
        if bar is not None:
            bar.close()
    res.reload_digest = _check(lambda: Thermogram.load(res.capsule_path).state_digest()) or ""
    res.confusion = confusion
    if plot:
        from .report import write_report
        res.report_path = os.path.join(folder, REPORT_NAME)
        write_report(res.report_path, res.history, res.strengths, confusion)
    if out is not None:
        print_summary(res, out)
    return res


def _check(fn):
    """``fn()``, or None when it raises a ThermogramError (a failed check, reported as such)."""
    try:
        return fn()
    except ThermogramError:
        return None


def _count_winners(X: np.ndarray, labels: np.ndarray, prototypes: np.ndarray,
                   confusion: np.ndarray) -> None:
    """Add each concept row's (concept, closest prototype by cosine) to ``confusion``
    (outliers, label -1, are left out)."""
    keep = labels >= 0
    norms = np.linalg.norm(prototypes, axis=1)
    norms[norms == 0] = 1.0
    # einsum rather than BLAS: a multi-threaded BLAS call this small can take 10x longer
    # than a plain loop when the machine is busy
    winners = np.argmax(np.einsum("td,nd->tn", X[keep], prototypes) / norms, axis=1)
    np.add.at(confusion, (labels[keep], winners), 1)


def print_summary(res: DemoResult, out: TextIO) -> None:
    """The table and the checks, as ``thermogram demo`` prints them."""
    w = out.write
    w(f"thermogram demo: {res.concepts} drifting concepts in {res.dim} dimensions -> "
      f"{res.neurons}-neuron SNN -> capsule, {res.ticks:,} ticks, seed {res.seed}\n\n")
    w(f"  {'tick':>7}  {'hot':>6} {'warm':>6} {'cool':>6} {'cold':>6}  {'records':>7}\n")
    for h in res.history:
        w(f"  {h['tick']:>7,}  {h['hot']:>6} {h['warm']:>6} {h['cool']:>6} {h['cold']:>6}  "
          f"{h['records']:>7}\n")
    w("\n")
    w(f"  {'layer':<5}  {'entries':>7}  {'strength median':>15}  {'max':>3}   (at the end)\n")
    for label in LAYERS:
        m = res.strengths.get(label, np.zeros(0))
        stats = f"{int(np.median(m)):>15}  {int(m.max()):>3}" if len(m) else f"{'-':>15}  {'-':>3}"
        w(f"  {label:<5}  {len(m):>7}  {stats}\n")
    w("\n")
    w(f"  prototypes       purity {res.purity:.3f}; {res.distinct_owners} of {res.concepts} concepts "
      f"have a neuron of their own\n")
    w(f"  deltas applied   {res.deltas:,} in {res.batches} batches; "
      f"{res.promoted} promotions, {res.demoted} demotions\n")
    w(f"  records          {res.records}\n")
    w(f"  head hash        {res.head_hash}\n")
    w(f"  state digest     {res.digest}\n")
    w(f"  verified         {'yes' if res.verified else 'NO'} (every record's hash and link)\n")
    w(f"  replay           {'matches' if res.replay_matches else 'DIFFERS'} "
      f"(state rebuilt from the records)\n")
    w(f"  reloaded file    {'matches' if res.reload_matches else 'DIFFERS'} "
      f"(snapshot read back from disk)\n")
    secs = max(res.seconds, 1e-9)
    w(f"  throughput       {res.ticks / secs:,.0f} ticks/s, {res.deltas / secs:,.0f} deltas/s "
      f"({res.seconds:.2f} s in the network, journal, consolidation and checkpoint; "
      f"{res.stream_seconds:.2f} s making the stream and scoring not counted)\n")
    w("\n")
    w(f"  capsule          {res.capsule_path} (snapshot; journal segments beside it)\n")
    if res.report_path:
        w(f"  report           {res.report_path}\n")
    if res.removed:
        w(f"  (replaced {len(res.removed)} file(s) from an earlier demo run in {res.folder})\n")
    w(f"\n  {'OK' if res.ok else 'FAILED'}\n")
