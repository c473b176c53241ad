"""The embedded default run behind ``thermogram demo``.

A synthetic activation stream (:class:`ConceptStream`) stands in for a
language model's hidden states: ``k`` latent concepts in ``dim`` dimensions,
each a unit direction that turns slowly, sampled with noise and uneven
frequencies, with some pairs of concepts co-occurring and a few pure-noise
outliers; from three fifths of the run on, one concept leaves the stream (the
forgetting phase). The stream runs through an :class:`EmbeddedSNN` with
prototype learning, in chunks of ticks (one :meth:`EmbeddedSNN.process_batch`
call and one :class:`DeltaBatch` per chunk), into a file-backed capsule
``demo.thermo`` whose journal holds every record before the call returns.
Each tick also stands for a window of tokens from its concept's drifting
vocabulary (:func:`token_ids`), written as one entry per token (a second
batch per chunk), so the capsule ends with over 10,000 entries at the default
sizes. The capsule decays after every chunk and, every ``consolidate_every``
ticks, consolidates (fold, prune, four-temperature transitions) with
:func:`demo_thermal_config`. A baseline (:func:`make_baseline`) learns from the
same chunks, and its purity is reported beside the prototypes'. At the end the
network's state is
stored with the capsule, a checkpoint writes the snapshot, and three checks
run: the hash chain verifies, a replay of the records reaches the same state
digest, and the snapshot read back from disk has that digest too.

Everything is seeded and the clock is simulated (100 ms a tick), so the same
arguments give the same deltas, the same head hash and the same digest.

Why this module is one piece (~800 lines): the demo is one story (stream, network, capsule,
baseline, checks, summary) told top to bottom; its parts are used nowhere else.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, TextIO

import numpy as np

from .consolidation import ConsolidationPolicy
from .core import Thermogram
from .delta import DeltaBatch
from .errors import ThermogramError, ValidationError
from .neuromod import NeuromodState
from .plasticity import PlasticityRule
from .signal import SIGNAL, Signal
from .snn import EmbeddedSNN, EmbeddedSNNConfig
from .thermal import ThermalConfig, ThermalState

__all__ = ["ConceptStream", "DemoResult", "run_demo", "demo_thermal_config", "token_ids", "token_keys",
           "OnlineKMeans", "make_baseline", "warm_up", "demo_files", "print_header", "print_summary",
           "DEFAULT_FOLDER",
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
      belongs to no concept (label -1);
    * **forgetting**: from tick ``forget_at`` on, concept ``forget`` is no
      longer emitted (its ticks go to the other concepts, in proportion to
      their frequencies); ``forget=None`` (the default) keeps every concept.

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
                 anticorrelation: float = 0.1, skew: bool = True, forget: Optional[int] = None,
                 forget_at: int = 0):
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
        if forget is not None and not (0 <= forget < self.concepts and self.concepts > 1):
            raise ValidationError(f"forget must name one of {self.concepts} concepts (and leave one), got {forget}")
        self.forget, self.forget_at = forget, int(forget_at)

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
        if self.forget is not None:
            gone = (labels == self.forget) & (ticks >= self.forget_at)
            rest = self.frequencies.copy()
            rest[self.forget] = 0.0
            labels[gone] = rng.choice(k, size=int(gone.sum()), p=rest / rest.sum())
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


def demo_thermal_config() -> ThermalConfig:
    """The demo's thermal settings: :meth:`ThermalConfig.fast_learner` with faster decay
    in hot, warm and cool (20, 10 and 4 of 255 per decay, against 13, 1 and 1), so that
    what the stream stops feeding fades within the run while what it keeps feeding is
    held up by its updates and moves colder."""
    P = Signal.positive
    return ThermalConfig.fast_learner().replace(decay_rates=(P(20), P(10), P(4), P(1)))


def token_ids(rng: np.random.Generator, labels: np.ndarray, ticks: np.ndarray, per_tick: int,
              vocabulary: int, shift_every: int = 4) -> np.ndarray:
    """The ``per_tick`` tokens behind every tick, ``(n, per_tick)`` int64.

    A tick of concept ``c`` stands for a window of text about ``c``: its tokens are
    drawn from ``c``'s vocabulary with Zipf-like frequencies (rank ``r`` in proportion
    to ``r ** -1.1``), and that vocabulary drifts: the ranks start at
    ``tick // shift_every``, so old words fall out of use and new ones come in. An
    outlier tick (label -1) draws uniformly from ``100 * vocabulary`` noise tokens.
    """
    n = labels.shape[0]
    ranks = np.arange(1, vocabulary + 1, dtype=np.float64) ** -1.1
    ids = rng.choice(vocabulary, size=(n, per_tick), p=ranks / ranks.sum())
    ids += (ticks.astype(np.int64) // shift_every)[:, None]
    noise = labels < 0
    ids[noise] = rng.integers(0, 100 * vocabulary, size=(int(noise.sum()), per_tick))
    return ids


def token_keys(labels: np.ndarray, ids: np.ndarray) -> List[str]:
    """Capsule keys for :func:`token_ids`: ``c{concept}/w{id}``, ``noise/w{id}`` for outliers."""
    out: List[str] = []
    for label, row in zip(labels.tolist(), ids.tolist()):
        prefix = f"c{label}/w" if label >= 0 else "noise/w"
        out.extend(prefix + str(i) for i in row)
    return out


class OnlineKMeans:
    """The purity baseline: spherical mini-batch k-means in numpy, one update per chunk.

    Centroids start as the first ``k`` unit rows seen (random unit vectors if the first
    chunk is shorter); each chunk assigns every row to its closest centroid by cosine
    and moves each centroid toward the mean of its rows with rate ``rows / rows seen
    so far`` (the mini-batch k-means update, as in scikit-learn's MiniBatchKMeans).
    ``centres`` has the same role as the network's prototypes when scoring.
    """

    name = "online mini-batch k-means (numpy)"

    def __init__(self, k: int, dim: int, rng: np.random.Generator) -> None:
        self.k = int(k)
        self.centres = rng.standard_normal((self.k, dim)).astype(np.float32)
        self.centres /= np.linalg.norm(self.centres, axis=1, keepdims=True)
        self.seen = np.zeros(self.k, np.int64)
        self._started = False

    def partial_fit(self, X: np.ndarray) -> None:
        """Update the centroids with one chunk of rows."""
        U = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
        if not self._started:
            m = min(self.k, U.shape[0])
            self.centres[:m] = U[:m]
            self._started = True
        near = np.argmax(np.einsum("td,kd->tk", U, self.centres), axis=1)
        for j in np.unique(near):
            rows = U[near == j]
            self.seen[j] += rows.shape[0]
            self.centres[j] += (rows.sum(axis=0) - rows.shape[0] * self.centres[j]) / self.seen[j]


class _SklearnBaseline:
    """scikit-learn's MiniBatchKMeans on the same chunks (used when it is installed).

    Its first ``partial_fit`` needs at least ``k`` rows: chunks are held back until
    that many have arrived (the centres are zero until then)."""

    name = "scikit-learn MiniBatchKMeans"

    def __init__(self, k: int, dim: int, seed: int) -> None:
        from sklearn.cluster import MiniBatchKMeans
        self._km = MiniBatchKMeans(n_clusters=int(k), random_state=int(seed), n_init=1)
        self.k, self.dim = int(k), int(dim)
        self._held: List[np.ndarray] = []
        self._fitted = False

    def partial_fit(self, X: np.ndarray) -> None:
        """Update the centroids with one chunk of rows."""
        if not self._fitted:
            self._held.append(X)
            if sum(x.shape[0] for x in self._held) < self.k:
                return
            X = np.concatenate(self._held)
            self._held = []
        self._km.partial_fit(X)
        self._fitted = True

    @property
    def centres(self) -> np.ndarray:
        """The cluster centres, ``(k, dim)``."""
        return self._km.cluster_centers_ if self._fitted else np.zeros((self.k, self.dim), np.float32)


def make_baseline(k: int, dim: int, seed: int, prefer_sklearn: bool = True):
    """scikit-learn's MiniBatchKMeans when it is installed (and ``prefer_sklearn``),
    else :class:`OnlineKMeans`; both have ``name``, ``partial_fit(X)`` and ``centres``."""
    if prefer_sklearn:
        try:
            import sklearn.cluster  # noqa: F401
        except ImportError:
            pass
        else:
            return _SklearnBaseline(k, dim, seed)
    return OnlineKMeans(k, dim, np.random.default_rng(seed + 1))


@dataclass
class DemoResult:
    """What :func:`run_demo` did and found.

    ``history`` has one row at the start and one per consolidation (``tick``,
    entries per layer, ``records``); ``confusion[c, r]`` counts the ticks of concept ``c`` whose
    input was closest (cosine) to neuron ``r``'s prototype at the end of the
    tick's chunk (the ``outliers`` ticks of pure noise belong to no concept);
    ``strengths`` maps each layer to its entries' strength
    magnitudes at the end. ``forgotten`` has, for every row of ``history``, the
    entries per layer whose key belongs to concept ``forget`` (the concept the
    stream stops emitting at tick ``forget_at``; -1: none).
    ``baseline_confusion`` is ``confusion`` for the baseline named
    ``baseline_name`` (:func:`make_baseline`), fed the same chunks.
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
    compile_seconds: float = 0.0
    compiled: int = 0
    removed: List[str] = field(default_factory=list)
    tokens_per_tick: int = 0
    token_deltas: int = 0
    forget: int = -1
    forget_at: int = 0
    forgotten: List[dict] = field(default_factory=list)
    baseline_name: str = ""
    baseline_confusion: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int64))
    thermal: Optional[ThermalConfig] = field(default=None, repr=False)

    @property
    def entries(self) -> int:
        """Entries in the four layers at the end (a key may be in two layers)."""
        return sum(int(self.history[-1][k]) for k in LAYERS) if self.history else 0

    @property
    def baseline_purity(self) -> float:
        """:attr:`purity` of the baseline on the same stream."""
        return _purity(self.baseline_confusion)

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
        return _purity(self.confusion)

    @property
    def distinct_owners(self) -> int:
        """Concepts whose owner neuron owns no other concept."""
        o = self.owners
        o = o[o >= 0]
        vals, counts = np.unique(o, return_counts=True)
        return int(counts[counts == 1].sum())


def _purity(confusion: np.ndarray) -> float:
    total = confusion.sum()
    return float(confusion.max(axis=0).sum() / total) if total else 0.0


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


def _kernel_dispatchers() -> list:
    """Every compiled-kernel dispatcher of :mod:`thermogram.kernels` loaded so far."""
    found = []
    for name, mod in list(sys.modules.items()):
        if mod is None or not name.startswith("thermogram.kernels."):
            continue
        for obj in vars(mod).values():
            if hasattr(obj, "py_func") and hasattr(obj, "stats") and obj.py_func.__module__ == name:
                found.append(obj)
    return found


def warm_up(progress: bool = True, out: Optional[TextIO] = None, *, neurons: int = 8, dim: int = 8,
            ticks: int = 100, chunk: int = 50) -> tuple:
    """Run every stage of the demo once on a short case (``ticks`` ticks of a network of the
    run's size, so the capsule's key table and value arena take the same code paths) so
    that each kernel is compiled (first run) or loaded from Numba's cache (later runs)
    before anything is timed.

    Prints ``compiling kernels (first run only)`` to ``out`` first, and a bar over the
    stages when ``progress``. Returns ``(seconds, kernels compiled)``; the second is 0
    when every kernel came from the cache.
    """
    if out is not None:
        out.write("  compiling kernels (first run only; cached for later runs) ...\n")
        out.flush()
    t0 = time.perf_counter()
    clock = _Clock()
    snn = EmbeddedSNN(EmbeddedSNNConfig(num_neurons=neurons, input_dim=dim, top_k=max(neurons - 1, 0), seed=0,
                                        prototype_lr=0.05), clock=clock)
    stream = ConceptStream(2, dim, np.random.default_rng(0), warmup=0)
    mood = NeuromodState(acetylcholine=0.3)
    stages = ["network", "capsule", "decay", "consolidate", "checkpoint", "verify", "replay", "reload"]
    bar = None
    if progress:
        try:
            from tqdm.auto import tqdm
            bar = tqdm(total=len(stages), unit="stage", desc="compiling", disable=None, file=sys.stderr,
                       dynamic_ncols=True, leave=False)
        except ImportError:  # pragma: no cover - tqdm is a dependency
            bar = None
    with tempfile.TemporaryDirectory(prefix="thermogram-warm-up-") as tmp:
        path = os.path.join(tmp, CAPSULE_NAME)
        t = Thermogram.open(path, create=True, fsync="never", clock=clock, rule=PlasticityRule.stdp_like(),
                            thermal_config=demo_thermal_config(),
                            policy=ConsolidationPolicy.manual_only())
        try:
            # the checks' answers do not matter here (the run's own checks report them)
            steps = [None, None, t.apply_decay, t.consolidate, None, lambda: _check(t.verify),
                     lambda: _check(lambda: Thermogram.replay(t.records()).state_digest()), None]
            batches = []
            for name, step in zip(stages, steps):
                if bar is not None:
                    bar.set_postfix_str(name, refresh=True)
                if name == "network":
                    for done in range(0, ticks, chunk):
                        batches.append(snn.process_batch(stream.take(min(chunk, ticks - done))[0], mood))
                elif name == "capsule":
                    for batch in batches:
                        t.apply_batch(batch)
                        labels = np.zeros(4, np.int64)
                        ids = token_ids(np.random.default_rng(0), labels, np.arange(4), 4, 16)
                        strength = np.empty(16, SIGNAL)
                        strength["polarity"], strength["magnitude"] = 1, 200
                        t.apply_batch(DeltaBatch.from_arrays(token_keys(labels, ids),
                                                             np.zeros((16, 8), np.float32), strength))
                        t.apply_decay()
                        t.consolidate()
                    # as many new keys again as a long run can add: the key table grows
                    n = 2 * neurons * neurons + 16_384
                    t.apply_batch(DeltaBatch.from_arrays([f"warm_up_{i}" for i in range(n)],
                                                         np.zeros((n, 1), np.float32)))
                    t.layer_counts()
                elif name == "checkpoint":
                    t.extensions["snn"] = snn.state()
                    t.checkpoint()
                    t.strengths(ThermalState.HOT)
                elif name == "reload":
                    t.close()
                    _check(lambda: Thermogram.load(path).state_digest())
                else:
                    step()
                if bar is not None:
                    bar.update(1)
        finally:
            t.close()
            if bar is not None:
                bar.close()
    seconds = time.perf_counter() - t0
    compiled = sum(sum(d.stats.cache_misses.values()) for d in _kernel_dispatchers())
    if out is not None:
        what = f"{compiled} compiled and cached" if compiled else "all loaded from the cache"
        out.write(f"  kernels ready in {seconds:.1f} s ({what}; not counted in the throughput)\n\n")
        out.flush()
    return seconds, compiled


def print_header(res: "DemoResult", out: TextIO) -> None:
    """The first line ``thermogram demo`` prints: what runs, with which sizes."""
    out.write(f"thermogram demo: {res.concepts} drifting concepts in {res.dim} dimensions -> "
              f"{res.neurons}-neuron SNN -> capsule, {res.ticks:,} ticks of {res.tokens_per_tick} tokens, "
              f"seed {res.seed}\n")
    if res.forget >= 0:
        out.write(f"  concept {res.forget} leaves the stream at tick {res.forget_at:,} (forgetting phase)\n")
    out.write("\n")
    out.flush()


def run_demo(ticks: int = 2000, neurons: int = 64, dim: int = 2048, concepts: int = 8,
             seed: int = 7, folder: str = DEFAULT_FOLDER, *, chunk: int = 50,
             consolidate_every: Optional[int] = None, tokens_per_tick: int = 24,
             vocabulary: int = 6000, forget: Optional[int] = 1, forget_at: Optional[int] = None,
             progress: bool = True, plot: bool = True, out: Optional[TextIO] = None) -> DemoResult:
    """Run the demo into ``folder``; print a summary to ``out`` (if given).

    Every chunk of ``chunk`` ticks goes through the network (one batch of its
    prototype and weight deltas) and writes the chunk's tokens (``tokens_per_tick``
    a tick, :func:`token_ids`) as a second batch: one Update delta per token, key
    ``c{concept}/w{id}``, value the tick's activation folded to 8 components, strength
    the tick's best cosine with the network's prototypes (how sure the network is
    of what it saw; outliers write weak entries). Then the capsule decays. Every
    ``consolidate_every`` ticks (default: 250, or an eighth of the run for short
    runs, at least one chunk) it consolidates (fold, prune, four-temperature
    transitions) with :func:`demo_thermal_config`.

    From tick ``forget_at`` (default: three fifths of the run) concept ``forget``
    (default 1; None, or a single concept: none) leaves the stream; its hot entries
    fade and are pruned.

    The same chunks also train a baseline (:func:`make_baseline`), scored like the
    prototypes.

    With ``out``, the header and ``compiling kernels (first run only)`` are printed
    before anything is compiled, and the table and checks at the end. Every kernel is
    compiled (or loaded from the cache) on a tiny case first (:func:`warm_up`), so the
    reported throughput (``result.seconds``) excludes compilation
    (``result.compile_seconds``).

    Previous demo files in ``folder`` (:func:`demo_files`) are removed first;
    other files there are left alone. Returns a :class:`DemoResult`;
    ``result.ok`` says whether every check passed.
    """
    if consolidate_every is None:
        consolidate_every = max(chunk, min(250, ticks // 8 // chunk * chunk))
    if forget_at is None:
        forget_at = ticks * 3 // 5 // chunk * chunk
    for name, v in (("ticks", ticks), ("neurons", neurons), ("dim", dim), ("concepts", concepts),
                    ("chunk", chunk), ("consolidate_every", consolidate_every),
                    ("tokens_per_tick", tokens_per_tick), ("vocabulary", vocabulary)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValidationError(f"{name} must be a positive integer, got {v!r}")
    for name, v in (("seed", seed), ("forget_at", forget_at)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise ValidationError(f"{name} must be a non-negative integer, got {v!r}")
    if forget is not None and concepts < 2:
        forget = None  # one concept: nothing can leave the stream
    if forget is not None and (isinstance(forget, bool) or not isinstance(forget, (int, np.integer))
                               or not 0 <= forget < concepts):
        raise ValidationError(f"forget must be a concept in 0..{concepts - 1} or None, got {forget!r}")
    if plot:
        from .report import require_matplotlib
        require_matplotlib()

    folder = os.fspath(folder)
    os.makedirs(folder, exist_ok=True)
    thermal = demo_thermal_config()
    res = DemoResult(folder=folder, capsule_path=os.path.join(folder, CAPSULE_NAME),
                     ticks=int(ticks), neurons=int(neurons), dim=int(dim), concepts=int(concepts),
                     seed=int(seed), tokens_per_tick=int(tokens_per_tick),
                     forget=-1 if forget is None else int(forget), forget_at=int(forget_at), thermal=thermal)
    for p in demo_files(folder):
        os.remove(p)
        res.removed.append(p)
    if out is not None:
        print_header(res, out)
    res.compile_seconds, res.compiled = warm_up(progress, out, neurons=neurons, dim=dim, chunk=chunk)

    rng = np.random.default_rng(seed)
    stream = ConceptStream(concepts, dim, rng, warmup=min(300, ticks // 5), forget=forget,
                           forget_at=forget_at)
    token_rng = np.random.default_rng([seed, 1])
    fold = np.random.default_rng([seed, 2]).standard_normal((dim, 8)).astype(np.float32) / np.float32(np.sqrt(dim))
    baseline = make_baseline(neurons, dim, seed)
    res.baseline_name = baseline.name
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
    base_confusion = np.zeros((concepts, neurons), np.int64)
    prefix = f"c{res.forget}/"

    def forgotten_counts() -> dict:
        return {st.label: sum(1 for k in t.keys_for_state(st) if k.startswith(prefix)) if res.forget >= 0 else 0
                for st in ThermalState}

    bar = _progress(ticks, progress)
    t0 = time.perf_counter()
    aside = 0.0  # generating the stream, the baseline and scoring: not the pipeline's work
    t = Thermogram.open(res.capsule_path, create=True, fsync="always", clock=clock, name="demo",
                        id=f"thermogram-demo-seed-{seed}", rule=PlasticityRule.stdp_like(),
                        thermal_config=thermal, policy=ConsolidationPolicy.manual_only())
    try:
        res.history.append({"tick": 0, **t.layer_counts(), "records": len(t.records())})
        res.forgotten.append(forgotten_counts())
        done = 0
        next_consolidation = consolidate_every
        while done < ticks:
            n = min(chunk, ticks - done, next_consolidation - done)
            if done < forget_at < done + n:
                n = forget_at - done  # a chunk ends where the forgetting phase starts
            s0 = time.perf_counter()
            X, labels = stream.take(n)
            ids = token_ids(token_rng, labels, np.arange(done, done + n), tokens_per_tick, vocabulary)
            aside += time.perf_counter() - s0
            batch = snn.process_batch(X, mood)
            batch.id = f"snn-seed-{seed}-ticks-{done:08d}-{done + n:08d}"  # reproducible record hashes
            t.apply_batch(batch)
            res.deltas += len(batch)
            res.batches += 1
            sure = _best_cosine(X, snn.prototypes)
            strength = np.empty(n * tokens_per_tick, SIGNAL)
            strength["polarity"] = 1
            strength["magnitude"] = np.repeat(np.clip(np.rint(255 * sure), 1, 255).astype(np.uint8),
                                              tokens_per_tick)
            values = np.repeat(np.tanh(X @ fold), tokens_per_tick, axis=0)
            tokens = DeltaBatch.from_arrays(token_keys(labels, ids), values, strength, source="tokens",
                                            clock=clock, id=f"tokens-seed-{seed}-ticks-{done:08d}-{done + n:08d}")
            t.apply_batch(tokens)
            res.deltas += len(tokens)
            res.token_deltas += len(tokens)
            res.batches += 1
            t.apply_decay()
            s0 = time.perf_counter()
            baseline.partial_fit(X)
            _count_winners(X, labels, snn.prototypes, confusion)
            _count_winners(X, labels, baseline.centres, base_confusion)
            aside += time.perf_counter() - s0
            res.outliers += int((labels < 0).sum())
            done += n
            clock.tick = done
            if done == next_consolidation or done == ticks:
                c = t.consolidate()
                res.promoted += c.promoted
                res.demoted += c.demoted
                res.history.append({"tick": done, **t.layer_counts(), "records": len(t.records())})
                res.forgotten.append(forgotten_counts())
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
    res.baseline_confusion = base_confusion
    if plot:
        from .report import write_report
        res.report_path = os.path.join(folder, REPORT_NAME)
        write_report(res.report_path, res.history, res.strengths, confusion, thermal_config=thermal,
                     forgotten=res.forgotten if res.forget >= 0 else None,
                     forget=res.forget, forget_at=res.forget_at,
                     baseline=(res.baseline_name, base_confusion))
    if out is not None:
        print_summary(res, out, header=False)
    return res


def _best_cosine(X: np.ndarray, prototypes: np.ndarray) -> np.ndarray:
    """Each row's largest cosine with any prototype (0 where it is negative)."""
    norms = np.linalg.norm(prototypes, axis=1)
    norms[norms == 0] = 1.0
    xn = np.linalg.norm(X, axis=1)
    xn[xn == 0] = 1.0
    best = np.max(np.einsum("td,nd->tn", X, prototypes) / norms, axis=1) / xn
    return np.clip(best, 0.0, 1.0)


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


def print_summary(res: DemoResult, out: TextIO, header: bool = True) -> None:
    """The table and the checks, as ``thermogram demo`` prints them (after
    :func:`print_header` unless ``header=False``)."""
    w = out.write
    if header:
        print_header(res, out)
    gone = res.forget >= 0 and len(res.forgotten) == len(res.history)
    w(f"  {'tick':>7}  {'hot':>6} {'warm':>6} {'cool':>6} {'cold':>6}  {'records':>7}"
      + (f"  {f'concept {res.forget} (hot/warm/cool/cold)':>30}" if gone else "") + "\n")
    for n, h in enumerate(res.history):
        mark = " <- concept leaves" if gone and n > 0 and res.history[n - 1]["tick"] < res.forget_at <= h["tick"] \
            else ""
        extra = (f"  {'/'.join(str(res.forgotten[n][k]) for k in LAYERS):>30}" if gone else "")
        w(f"  {h['tick']:>7,}  {h['hot']:>6} {h['warm']:>6} {h['cool']:>6} {h['cold']:>6}  "
          f"{h['records']:>7}{extra}{mark}\n")
    w(f"  entries at the end: {res.entries:,} (a key may have a hot copy over a colder one)\n")
    w("\n")
    w(f"  {'layer':<5}  {'entries':>7}  {'strength median':>15}  {'max':>3}   (at the end)\n")
    for label in LAYERS:
        m = res.strengths.get(label, np.zeros(0))
        stats = f"{int(np.median(m)):>15}  {int(m.max()):>3}" if len(m) else f"{'-':>15}  {'-':>3}"
        w(f"  {label:<5}  {len(m):>7}  {stats}\n")
    w("\n")
    w(f"  prototypes       purity {res.purity:.3f}; {res.distinct_owners} of {res.concepts} concepts "
      f"have a neuron of their own\n")
    if res.baseline_name:
        w(f"  baseline         purity {res.baseline_purity:.3f}; {res.baseline_name}, "
          f"{res.neurons} centroids, same chunks\n")
    w(f"  deltas applied   {res.deltas:,} ({res.token_deltas:,} token writes) in {res.batches} batches; "
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
      f"{res.stream_seconds:.2f} s making the stream, the baseline and scoring not counted)\n")
    w(f"  kernels          ready in {res.compile_seconds:.1f} s before the run ("
      f"{f'{res.compiled} compiled' if res.compiled else 'loaded from the cache'}; not counted above)\n")
    w("\n")
    w(f"  capsule          {res.capsule_path} (snapshot; journal segments beside it)\n")
    if res.report_path:
        w(f"  report           {res.report_path}\n")
    if res.removed:
        w(f"  (replaced {len(res.removed)} file(s) from an earlier demo run in {res.folder})\n")
    w(f"\n  {'OK' if res.ok else 'FAILED'}\n")
