"""The embedded spiking network: activation vectors in, weight deltas out.

Why this module is one piece (~800 lines): :class:`EmbeddedSNN` is one object whose state arrays
are shared by every method (process, process_batch, state/restore, neuromodulation);
the array work is in :mod:`thermogram.kernels.snn`, so the length is orchestration and
numpy-style docstrings.

A small SNN that keeps and reshapes associations, not facts. Each neuron has
a prototype vector; an input (a language model's hidden state, a sensor
embedding) activates the neurons whose prototypes point the same way, they
compete, activation spreads along sparse associative weights, and neurons
that spike together strengthen their connections (STDP). Homeostasis,
decay, eligibility traces and firing rates keep the network stable, and four
neuromodulators (:class:`~thermogram.neuromod.NeuromodState`) tune it.
With ``prototype_lr > 0`` the winning prototypes also move toward the inputs
they win, so prototypes become cluster centroids.

Every tick's changes come back as one :class:`~thermogram.delta.DeltaBatch`
of Update deltas that :meth:`Thermogram.apply_batch` applies directly:

* ``weight_{i}_{j}``: the synapse from neuron ``i`` to neuron ``j``; value a
  1-signal vector, ``Signal.from_signed(w)`` (continuous mode) or the ternary
  weight as ``(+1, 255)``, ``(0, 0)``, ``(-1, 255)``. Strength is the spike
  confidence of the change: the smaller of the two neurons' activations,
  clipped to [0, 1], through ``Signal.from_signed``. A synapse pruned by
  decay comes back as value 0 with strength 0 (an update, not a delete, so
  the batch applies to any capsule; the capsule's own pruning drops it).
* ``proto_{i}``: neuron ``i``'s prototype divided by its largest absolute
  component (so it spans [-1, 1] and uses all 255 magnitude steps), through
  ``signals_from_floats``. Cosine similarity, the only way the network reads
  a prototype, does not depend on that scale, so the capsule keeps what
  matters to within 1/255 per component; the exact float32 prototypes are in
  :meth:`EmbeddedSNN.state`. Strength: the neuron's activation, clipped.

The arithmetic follows the reference crate (thermogram-rs 1.0) in float32
and in its order of operations; see :mod:`thermogram.kernels.snn` for the
stages. Differences, each deliberate:

* Reproducible: prototypes come from a numpy ``Generator`` seeded by
  ``config.seed``; the same seed and inputs give identical deltas.
* Update deltas (the reference emits Merge, whose value a capsule never
  changes, and Delete for every weak weight on every decay tick).
* A delta only for a synapse whose weight actually changed; a batch from
  :meth:`EmbeddedSNN.process_batch` has one delta per changed key, with its
  final value and the strength of its last change.
* ``top_k`` is capped at ``num_neurons - 1``: a neuron connects to each other
  neuron at most once and never to itself (the reference's ring would repeat
  neighbours and add self-loops).
* Ternary STDP compares the two neurons' previous spike times; the reference
  stamps the current tick on both first, so for it every co-spiking pair is
  simultaneous and ternary weights never leave zero.
* Inputs whose squared norm would overflow (or underflow) float32 are scaled
  by a power of two before use (cosine similarity does not change).
"""
from __future__ import annotations

import dataclasses
import html
import threading
import time
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Tuple

import numpy as np

from .delta import Clock, DeltaBatch
from .errors import ValidationError
from .kernels import snn as _k
from .neuromod import LEVELS, NeuromodState, NeuromodSyncConfig
from .signal import SIGNAL, signals_from_floats

__all__ = ["EmbeddedSNNConfig", "EmbeddedSNN", "ENGINE_TYPE", "STATE_FORMAT"]

ENGINE_TYPE = "EmbeddedSNN"
STATE_FORMAT = 1
_F = np.float32
_F32 = np.dtype(np.float32)
_FLT_MAX = float(np.finfo(np.float32).max)
_TINY = np.float32(2.0 ** -60)
_MAX_CELLS = 2 ** 31
_ALIGN = 64
"""Byte alignment of the prototype matrix (one cache line: a 16-lane float32 vector)."""


def _padded(n: int) -> int:
    """``n`` rounded up to a whole number of 16-lane vectors."""
    return -(-n // _k.LANES) * _k.LANES



_INT_FIELDS = ("num_neurons", "input_dim", "top_k", "seed")
_BOOL_FIELDS = ("use_ternary",)
_UNIT_FIELDS = ("homeostasis_target", "competition_strength", "trace_decay", "prototype_lr")
_NONNEG_FIELDS = ("stdp_lr", "decay_rate", "ternary_threshold")
_ANY_FIELDS = ("spike_threshold",)


def _as_real(value: Any, name: str) -> float:
    if isinstance(value, np.ndarray) and value.ndim <= 1 and value.size == 1:
        value = value.reshape(())[()]  # 0-d, or 1-element after a canonical round trip
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValidationError(f"{name} must be a real number, got {type(value).__name__}")
    try:
        f = float(value)
    except OverflowError:
        f = float("inf")
    if not np.isfinite(f) or abs(f) > _FLT_MAX:
        raise ValidationError(f"{name} must be finite and within float32 range, got {value!r}")
    return f


def _as_int(value: Any, name: str) -> int:
    if isinstance(value, np.ndarray) and value.ndim <= 1 and value.size == 1:
        value = value.reshape(())[()]  # 0-d, or 1-element after a canonical round trip
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValidationError(f"{name} must be an integer, got {type(value).__name__}")
    return int(value)


@dataclass(frozen=True)
class EmbeddedSNNConfig:
    """Configuration of an :class:`EmbeddedSNN` (the reference's fields and defaults).

    Parameters
    ----------
    num_neurons : int
        Neurons, i.e. concept prototypes (>= 1).
    input_dim : int
        Length of every activation vector (>= 1).
    top_k : int
        Associative synapses per neuron (to its successors on a ring),
        capped at ``num_neurons - 1``.
    stdp_lr : float
        Weight step for a co-spiking pair, times dopamine.
    homeostasis_target : float
        Firing rate that homeostasis steers every neuron toward, in [0, 1].
    competition_strength : float
        Suppression of the lowest-ranked neuron, times norepinephrine, in [0, 1].
    decay_rate : float
        Weight decay per 10 ticks, times ``1 - serotonin``.
    trace_decay : float
        Eligibility trace decay per tick, in [0, 1].
    spike_threshold : float
        A neuron spikes when its activation is above this.
    use_ternary : bool
        Ternary weights (+1, 0, -1) with discrete STDP transitions.
    ternary_threshold : float
        Threshold of :meth:`EmbeddedSNN.quantized_weights` (``|w| < t`` -> 0).
    seed : int
        Seed of the prototype initialisation (>= 0); same seed, same network.
    prototype_lr : float
        Competitive learning rate of the prototypes in [0, 1]; 0 (default,
        as the reference) keeps them fixed.
    """

    num_neurons: int = 100
    input_dim: int = 2048
    top_k: int = 10
    stdp_lr: float = 0.01
    homeostasis_target: float = 0.1
    competition_strength: float = 0.5
    decay_rate: float = 0.001
    trace_decay: float = 0.1
    spike_threshold: float = 0.5
    use_ternary: bool = False
    ternary_threshold: float = 0.3
    seed: int = 0
    prototype_lr: float = 0.0

    def __post_init__(self):
        for name in _INT_FIELDS:
            object.__setattr__(self, name, _as_int(getattr(self, name), name))
        if self.num_neurons < 1:
            raise ValidationError(f"num_neurons must be at least 1, got {self.num_neurons}")
        if self.input_dim < 1:
            raise ValidationError(f"input_dim must be at least 1, got {self.input_dim}")
        if self.num_neurons * self.input_dim > _MAX_CELLS:
            raise ValidationError(f"num_neurons * input_dim must be at most {_MAX_CELLS}, "
                                  f"got {self.num_neurons * self.input_dim}")
        if self.top_k < 0:
            raise ValidationError(f"top_k must be non-negative, got {self.top_k}")
        if not 0 <= self.seed < 2 ** 128:
            raise ValidationError(f"seed must be an integer in [0, 2**128), got {self.seed}")
        for name in _BOOL_FIELDS:
            v = getattr(self, name)
            if isinstance(v, np.ndarray) and v.ndim == 0:
                v = v[()]
            if not isinstance(v, (bool, np.bool_)):
                raise ValidationError(f"{name} must be a bool, got {type(v).__name__}")
            object.__setattr__(self, name, bool(v))
        for name in _UNIT_FIELDS + _NONNEG_FIELDS + _ANY_FIELDS:
            v = _as_real(getattr(self, name), name)
            if name in _UNIT_FIELDS and not 0.0 <= v <= 1.0:
                raise ValidationError(f"{name} must be in [0, 1], got {v!r}")
            if name in _NONNEG_FIELDS and v < 0.0:
                raise ValidationError(f"{name} must be non-negative, got {v!r}")
            object.__setattr__(self, name, v)

    @classmethod
    def default(cls) -> "EmbeddedSNNConfig":
        """The reference's defaults (100 neurons, 2048-dim input, k = 10)."""
        return cls()

    @classmethod
    def ternary(cls, **overrides: Any) -> "EmbeddedSNNConfig":
        """Defaults with ``use_ternary=True`` (plus any overrides)."""
        return cls(**{"use_ternary": True, **overrides})

    def replace(self, **changes: Any) -> "EmbeddedSNNConfig":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    @property
    def connections(self) -> int:
        """Synapses per neuron actually used: ``min(top_k, num_neurons - 1)``."""
        return min(self.top_k, self.num_neurons - 1)

    def to_dict(self) -> Dict[str, Any]:
        """Plain ``{field: int | bool | float}``."""
        return dataclasses.asdict(self)

    def to_state(self) -> Dict[str, Any]:
        """As :meth:`to_dict`, floats as 0-d float64 arrays (for
        :func:`thermogram.canonical.encode_value`, which has no float)."""
        return {k: (np.array(v, dtype=np.float64) if isinstance(v, float) else v)
                for k, v in self.to_dict().items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "EmbeddedSNNConfig":
        """From :meth:`to_dict` or :meth:`to_state` output (unknown keys rejected)."""
        if not isinstance(d, Mapping):
            raise ValidationError(f"config must be a mapping, got {type(d).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        extra = sorted(set(d) - names)
        if extra:
            raise ValidationError(f"unknown config fields: {', '.join(map(str, extra))}")
        return cls(**dict(d))


def _default_clock() -> int:
    return time.time_ns()


def _readonly(a: np.ndarray) -> np.ndarray:
    v = a.view()
    v.flags.writeable = False
    return v


class EmbeddedSNN:
    """A small spiking network that turns activation vectors into weight deltas.

    Parameters
    ----------
    config : EmbeddedSNNConfig, optional
        Defaults to ``EmbeddedSNNConfig()``; keyword ``overrides`` replace
        fields (``EmbeddedSNN(num_neurons=10, input_dim=64)``).
    neuromod : NeuromodState, optional
        Initial levels (baseline 0.5).
    clock : callable, optional
        Returns integer ns since the epoch (UTC) for delta timestamps.
    **overrides
        Fields of :class:`EmbeddedSNNConfig` to replace in ``config``.

    Attributes
    ----------
    prototypes : (num_neurons, input_dim) float32, read-only view
    indices : (num_neurons, k) int64, read-only; target of each synapse
    weights : (num_neurons, k) float32, read-only
    ternary_weights : (num_neurons, k) int8, read-only
    traces, firing_rates, last_activations : (num_neurons,) float32, read-only
    last_spike_ms : (num_neurons,) int64, read-only; -1 = never spiked
    tick : int
        Ticks processed so far (a tick is 100 simulated ms).

    Raises
    ------
    ValidationError
        If ``config`` is not an :class:`EmbeddedSNNConfig`, an override names
        no config field, or a field is out of range.

    Notes
    -----
    Calls are serialised by a per-network lock, so threads may share a
    network; the kernels release the GIL, so separate networks run in parallel.
    :meth:`process` and :meth:`process_batch` return a
    :class:`~thermogram.delta.DeltaBatch` of Update deltas (keys
    ``weight_{i}_{j}`` and, with ``prototype_lr > 0``, ``proto_{i}``) for
    :meth:`Thermogram.apply_batch <thermogram.core.Thermogram.apply_batch>`.

    Examples
    --------
    >>> import numpy as np
    >>> from thermogram import Thermogram
    >>> snn = EmbeddedSNN(num_neurons=4, input_dim=8, top_k=2, spike_threshold=0.0, seed=1)
    >>> batch = snn.process(np.ones(8))
    >>> len(batch), batch.keys[:3]
    (8, ('weight_0_1', 'weight_0_2', 'weight_1_2'))
    >>> snn.tick, snn.weights.shape, round(snn.weight(0, 1), 3)
    (1, (4, 2), 0.105)
    >>> Thermogram("memory").apply_batch(batch)
    >>> again = EmbeddedSNN.restore(snn.state())
    >>> again.tick, bool(np.array_equal(again.weights, snn.weights))
    (1, True)
    >>> EmbeddedSNN(num_neurons=0)
    Traceback (most recent call last):
        ...
    thermogram.errors.ValidationError: num_neurons must be at least 1, got 0
    """

    def __init__(self, config: Optional[EmbeddedSNNConfig] = None, *,
                 neuromod: Optional[NeuromodState] = None, clock: Optional[Clock] = None,
                 **overrides: Any):
        cfg = EmbeddedSNNConfig() if config is None else config
        if not isinstance(cfg, EmbeddedSNNConfig):
            raise ValidationError(f"config must be an EmbeddedSNNConfig, got {type(cfg).__name__}")
        if overrides:
            try:
                cfg = cfg.replace(**overrides)
            except TypeError as e:
                raise ValidationError(str(e)) from None
        nm = NeuromodState() if neuromod is None else NeuromodState.coerce(neuromod).copy()
        self._setup(cfg, nm, clock)
        n, d = cfg.num_neurons, cfg.input_dim
        self._rng = np.random.Generator(np.random.PCG64(cfg.seed))
        u = self._rng.random((n, d), dtype=np.float32)
        self._set_prototypes((u - _k.HALF) * _k.INIT_SPAN)
        _k.ring_indices(n, self._kk, self._idx)
        self._w[:] = _k.INIT_WEIGHT

    def _setup(self, cfg: EmbeddedSNNConfig, nm: NeuromodState, clock: Optional[Clock]) -> None:
        if clock is not None and not callable(clock):
            raise ValidationError("clock must be a callable returning integer nanoseconds")
        n, d, k = cfg.num_neurons, cfg.input_dim, cfg.connections
        self._config = cfg
        self._kk = k
        self._neuromod = nm
        self._clock: Clock = clock if clock is not None else _default_clock
        self._lock = threading.RLock()
        self._tick = 0
        self._nstate = np.zeros((4, n), np.float32)
        self._traces = self._nstate[_k.S_TRACES]
        self._rates = self._nstate[_k.S_RATES]
        self._last_act = self._nstate[_k.S_LAST_ACT]
        self._pnorm = self._nstate[_k.S_PNORM]
        self._idx = np.zeros((n, k), np.int64)
        self._w = np.zeros((n, k), np.float32)
        self._tern = np.zeros((n, k), np.int8)
        self._last_spike = np.full(n, _k.NEVER, np.int64)
        # workspace
        nf, ni, nb = _k.workspace_sizes(n, k, _padded(n))
        self._fbuf = np.zeros(nf, np.float32)
        self._ibuf = np.zeros(ni, np.int64)
        self._bbuf = np.zeros(nb, np.uint8)
        (self._dots, self._ni, self._fws, self._wconf, self._iws, self._wlist, self._bws,
         self._wmark) = _k.workspace(self._fbuf, self._ibuf, self._bbuf, n, k, _padded(n))
        self._maxabs1 = np.zeros(1, np.uint32)
        self._shape1 = (d,)
        self._params_key: Optional[Tuple[float, ...]] = None
        self._params = np.zeros(len(_k.PARAMS), np.float32)
        hi = np.sqrt(_FLT_MAX / d) / 4.0
        self._hi_bits = int(np.float32(hi).view(np.uint32))
        self._lo_bits = int(_TINY.view(np.uint32))

    def _set_prototypes(self, protos: np.ndarray) -> None:
        """Store ``protos`` (N, D) transposed in ``_PTpad`` (D, N padded to a multiple of 16,
        zero columns, 64-byte aligned: the layout :func:`~thermogram.kernels.snn.input_dots`
        is fastest on) and compute their norms; ``_PT`` is the (D, N) view of the real columns."""
        n, d = protos.shape
        npad = _padded(n)
        buf = np.zeros(d * npad + _ALIGN // 4, np.float32)
        off = (-buf.ctypes.data % _ALIGN) // 4
        self._PTpad = buf[off:off + d * npad].reshape(d, npad)
        self._PTpad[:, :n] = protos.T
        self._PT = self._PTpad[:, :n]
        _k.proto_norms(self._PT, self._pnorm)

    # ------------------------------------------------------------------ views
    @property
    def config(self) -> EmbeddedSNNConfig:
        """The network's configuration (frozen)."""
        return self._config

    @property
    def num_neurons(self) -> int:
        """Number of neurons (``config.num_neurons``)."""
        return self._config.num_neurons

    @property
    def input_dim(self) -> int:
        """Length of every activation vector (``config.input_dim``)."""
        return self._config.input_dim

    @property
    def connections(self) -> int:
        """Synapses per neuron (``min(top_k, num_neurons - 1)``)."""
        return self._kk

    @property
    def tick(self) -> int:
        """Ticks processed so far (a tick is 100 simulated ms)."""
        return self._tick

    @property
    def neuromod(self) -> NeuromodState:
        """The current levels (the live object: changing it changes the next tick)."""
        return self._neuromod

    @neuromod.setter
    def neuromod(self, value: NeuromodState) -> None:
        self._neuromod = NeuromodState.coerce(value).copy()

    @property
    def prototypes(self) -> np.ndarray:
        """Prototype of every neuron, ``(num_neurons, input_dim)`` float32 (read-only view)."""
        return _readonly(self._PT.T)

    @property
    def indices(self) -> np.ndarray:
        """Target neuron of every synapse, ``(num_neurons, connections)`` int64 (read-only view)."""
        return _readonly(self._idx)

    @property
    def weights(self) -> np.ndarray:
        """Continuous synapse weights, ``(num_neurons, connections)`` float32 (read-only view)."""
        return _readonly(self._w)

    @property
    def ternary_weights(self) -> np.ndarray:
        """Ternary synapse weights (+1, 0, -1), ``(num_neurons, connections)`` int8 (read-only view)."""
        return _readonly(self._tern)

    @property
    def traces(self) -> np.ndarray:
        """Eligibility trace of every neuron, ``(num_neurons,)`` float32 (read-only view)."""
        return _readonly(self._traces)

    @property
    def firing_rates(self) -> np.ndarray:
        """Firing rate of every neuron (moving average of spikes per tick), ``(num_neurons,)`` float32
        (read-only view)."""
        return _readonly(self._rates)

    @property
    def last_activations(self) -> np.ndarray:
        """Every neuron's activation in the last tick, ``(num_neurons,)`` float32 (read-only view)."""
        return _readonly(self._last_act)

    @property
    def last_spike_ms(self) -> np.ndarray:
        """Simulated ms of every neuron's last spike (-1 = never), ``(num_neurons,)`` int64 (read-only)."""
        return _readonly(self._last_spike)

    def weight(self, i: int, j: int) -> Optional[float]:
        """Weight of the synapse ``i -> j``, or None when there is none."""
        i = _as_int(i, "i")
        j = _as_int(j, "j")
        n = self.num_neurons
        if not (0 <= i < n and 0 <= j < n):
            raise ValidationError(f"neuron indices must be in [0, {n}), got {i}, {j}")
        with self._lock:
            hit = np.flatnonzero(self._idx[i] == j)
            return None if hit.size == 0 else float(self._w[i, hit[0]])

    def quantized_weights(self, threshold: Optional[float] = None) -> np.ndarray:
        """The continuous weights as ternary int8: ``w >= t`` -> +1, ``w <= -t`` -> -1,
        else 0, with ``t = config.ternary_threshold`` unless given."""
        t = _F(self._config.ternary_threshold if threshold is None else _as_real(threshold, "threshold"))
        with self._lock:
            w = self._w.copy()
        return ((w >= t).astype(np.int8) - (w <= -t).astype(np.int8)).astype(np.int8)

    # ------------------------------------------------------------------ neuromodulation
    def sync_neuromod(self, external: NeuromodState,
                      sync: Optional[NeuromodSyncConfig] = None) -> bool:
        """Take the external levels: a copy (``sync=None``, as the reference), or
        pulled toward them by ``sync`` (:meth:`NeuromodSyncConfig.apply_sync`).
        Returns whether the levels were updated."""
        ext = NeuromodState.coerce(external, "external")
        if sync is None:
            with self._lock:
                self._neuromod = ext.copy()
            return True
        if not isinstance(sync, NeuromodSyncConfig):
            raise ValidationError(f"sync must be a NeuromodSyncConfig, got {type(sync).__name__}")
        with self._lock:
            return sync.apply_sync(self._neuromod, ext)

    def _params_for(self, nm: NeuromodState) -> np.ndarray:
        key = tuple(nm._levels)
        if key == self._params_key:
            return self._params
        c = self._config
        da, ser, ne, ach = (_F(v) for v in key)
        one = _F(1.0)
        p = np.zeros(len(_k.PARAMS), np.float32)
        p[_k.P_COMPETITION] = _F(c.competition_strength) * ne
        p[_k.P_GATE] = ach
        p[_k.P_THRESHOLD] = _F(c.spike_threshold)
        p[_k.P_LR] = _F(c.stdp_lr) * da
        p[_k.P_TARGET] = _F(c.homeostasis_target)
        p[_k.P_HOMEO_RATE] = _k.HOMEOSTASIS_GAIN * ser
        p[_k.P_DECAY] = _F(c.decay_rate) * (one - ser)
        p[_k.P_TRACE_DECAY] = _F(c.trace_decay)
        p[_k.P_PROTO_LR] = _F(c.prototype_lr)
        self._params, self._params_key = p, key
        return p

    # ------------------------------------------------------------------ ticks
    def _prepare(self, activation: Any, ndim: int) -> np.ndarray:
        """Validated float32 C-contiguous ``(T, input_dim)`` view or copy."""
        what = "activation" if ndim == 1 else "activations"
        a = activation
        if not isinstance(a, np.ndarray):
            try:
                a = np.asarray(a)
            except (ValueError, TypeError) as e:
                raise ValidationError(f"{what} must be a numeric array: {e}") from None
        kind = a.dtype.kind
        if kind not in "fiub":
            if kind == "O":
                try:
                    a = a.astype(np.float64)
                except (ValueError, TypeError):
                    raise ValidationError(f"{what} has dtype object with non-numeric items; "
                                          "expected real numbers") from None
            else:
                raise ValidationError(f"{what} must hold real numbers castable to float32, "
                                      f"got dtype {a.dtype}")
        d = self._config.input_dim
        if ndim == 1:
            if a.shape != (d,):
                raise ValidationError(f"activation must have shape ({d},), got {a.shape}")
        elif a.ndim != 2 or a.shape[1] != d:
            raise ValidationError(f"activations must have shape (T, {d}), got {a.shape}")
        if a.dtype != np.float32 or not a.flags.c_contiguous:
            with np.errstate(over="ignore", invalid="ignore"):
                a = np.ascontiguousarray(a, dtype=np.float32)
        x = a.reshape(1, d) if ndim == 1 else a
        t = x.shape[0]
        maxabs = self._maxabs1 if t == 1 else np.empty(t, np.uint32)
        bad, nscale = _k.scan_rows(x.view(np.uint32), self._lo_bits, self._hi_bits, maxabs)
        if bad >= 0:
            where = f"index {bad}" if ndim == 1 else f"row {bad // d}, column {bad % d}"
            raise ValidationError(f"{what} contains NaN, infinity or a value beyond float32 "
                                  f"range at {where}")
        if nscale:
            x = self._rescaled(x, maxabs)
        return x

    def _rescaled(self, x: np.ndarray, maxabs: np.ndarray) -> np.ndarray:
        m = maxabs.view(np.float32)
        need = (m > 0) & ((maxabs < self._lo_bits) | (maxabs > self._hi_bits))
        x = x.copy()
        _, e = np.frexp(m[need])
        x[need] *= np.ldexp(np.float32(1.0), -e).astype(np.float32)[:, None]
        return x

    def _now(self) -> int:
        t = self._clock()
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)):
            raise ValidationError(f"clock must return integer nanoseconds, got {t!r}")
        return int(t)

    def _run(self, x: np.ndarray, neuromod: Any) -> DeltaBatch:
        nm = self._neuromod if neuromod is None else NeuromodState.coerce(neuromod)
        ts = self._now()
        return self._run_rows(x, nm, neuromod is not None, ts, self._params_for(nm))

    def _run_rows(self, x: np.ndarray, nm: NeuromodState, given: bool, ts: int,
                  params: np.ndarray) -> DeltaBatch:
        self._take_neuromod(nm, given)
        if x.shape[0] == 0:
            return self._batch(0, 0, ts)
        nw, npc = _k.run_ticks(x, self._PTpad, self._idx, self._w, self._tern, self._nstate,
                               self._last_spike, self._tick, params, self._config.use_ternary,
                               self._dots, self._ni, self._fws, self._iws, self._bws,
                               self._wmark, self._wconf, self._wlist)
        self._tick += x.shape[0]
        return self._batch(int(nw), int(npc), ts)

    def _take_neuromod(self, nm: NeuromodState, given: bool) -> None:
        if given and nm._levels != self._neuromod._levels:
            self._neuromod = nm.copy()

    def _process_fast(self, x: np.ndarray, neuromod: Any) -> DeltaBatch:
        """:meth:`process` of a float32 C-contiguous ``(input_dim,)`` array with the default
        clock: validation and the tick in one kernel call (:func:`~thermogram.kernels.snn.run_row`),
        the clock read after it (``time.time_ns`` cannot fail, so nothing is left half done). An
        input that holds NaN or infinity, or needs scaling, does not run there and takes the
        general path, which raises or scales it."""
        nm = self._neuromod if neuromod is None else NeuromodState.coerce(neuromod)
        params = self._params_for(nm)
        ran, nw, npc = _k.run_row(x, self._lo_bits, self._hi_bits, self._PTpad, self._idx, self._w,
                                  self._tern, self._nstate, self._last_spike, self._tick, params,
                                  self._config.use_ternary, self._fbuf, self._ibuf, self._bbuf)
        if not ran:
            return self._run(self._prepare(x, 1), neuromod)
        ts = time.time_ns()
        self._take_neuromod(nm, neuromod is not None)
        self._tick += 1
        return self._empty_batch(ts) if nw == 0 and npc == 0 else self._batch(nw, npc, ts)

    def process(self, activation: Any, neuromod: Optional[NeuromodState] = None) -> DeltaBatch:
        """Run one tick on ``activation``.

        Parameters
        ----------
        activation : array_like, shape (input_dim,)
            Any real dtype; finite values.
        neuromod : NeuromodState, optional
            Replaces the current levels first, as in the reference; None
            keeps them.

        Returns
        -------
        DeltaBatch
            The tick's deltas as one batch (possibly empty), ready for
            :meth:`Thermogram.apply_batch`.

        Raises
        ------
        ValidationError
            Wrong shape, a dtype that is not real numbers, NaN or infinity,
            or a bad ``neuromod``; the network is then unchanged.
        """
        with self._lock:
            if (self._clock is _default_clock and type(activation) is np.ndarray
                    and activation.dtype is _F32 and activation.shape == self._shape1
                    and activation.flags.c_contiguous):
                return self._process_fast(activation, neuromod)
            return self._run(self._prepare(activation, 1), neuromod)

    def process_batch(self, activations: Any, neuromod: Optional[NeuromodState] = None) -> DeltaBatch:
        """Run one tick per row of ``activations`` in one kernel call.

        The network ends exactly as after ``T`` calls of :meth:`process`.

        Parameters
        ----------
        activations : array_like, shape (T, input_dim)
            Any real dtype; finite values. ``T = 0`` is a no-op.
        neuromod : NeuromodState, optional
            Replaces the current levels first and holds for every tick; None
            keeps them.

        Returns
        -------
        DeltaBatch
            One delta per changed key: its final value and the strength of its
            last change (empty when nothing changed).

        Raises
        ------
        ValidationError
            Wrong shape, a dtype that is not real numbers, NaN or infinity,
            or a bad ``neuromod``; the network is then unchanged.
        """
        with self._lock:
            return self._run(self._prepare(activations, 2), neuromod)

    def _empty_batch(self, ts: int) -> DeltaBatch:
        return DeltaBatch.empty("snn", ts)

    def _batch(self, nw: int, npc: int, ts: int) -> DeltaBatch:
        if nw == 0 and npc == 0:
            return self._empty_batch(ts)
        k = self._kk
        d = self._config.input_dim
        flat = np.sort(self._wlist[:nw])
        i, s = np.divmod(flat, k) if nw else (flat, flat)
        j = self._idx[i, s]
        keys = [f"weight_{a}_{b}" for a, b in zip(i.tolist(), j.tolist())]
        if self._config.use_ternary:
            t = self._tern[i, s]
            wv = np.empty(nw, SIGNAL)
            wv["polarity"] = t
            wv["magnitude"] = np.where(t != 0, 255, 0).astype(np.uint8)
        else:
            wv = signals_from_floats(self._w[i, s])
        strengths = [signals_from_floats(self._wconf[flat])]
        values = [wv]
        rows = np.sort(self._iws[_k.I_PLIST, :npc])
        if npc:
            keys.extend(f"proto_{r}" for r in rows.tolist())
            scaled = np.empty((npc, d), np.float32)
            _k.scaled_columns(self._PT, rows, scaled)
            values.append(signals_from_floats(scaled.reshape(-1)))
            strengths.append(signals_from_floats(self._fws[_k.W_PCONF, rows]))
        offsets = np.concatenate((np.arange(nw + 1, dtype=np.int64),
                                  nw + d * np.arange(1, npc + 1, dtype=np.int64)))
        return DeltaBatch.from_arrays(keys, (np.concatenate(values), offsets),
                                      np.concatenate(strengths), "update", ts,
                                      source="snn", clock=self._clock)

    # ------------------------------------------------------------------ state
    def state(self) -> Dict[str, Any]:
        """Everything needed to continue exactly where this network is.

        Returns
        -------
        dict
            Plain numpy arrays (copies) and Python ints / bools / strs; floats
            of the config and neuromodulators are 0-d float64 arrays, so the
            dict round-trips through :func:`thermogram.canonical.encode_value`
            (and so into a ``.thermo`` file beside its capsule).
        """
        with self._lock:
            st = self._rng.bit_generator.state
            return {
                "engine_type": ENGINE_TYPE,
                "format": STATE_FORMAT,
                "config": self._config.to_state(),
                "tick": self._tick,
                "prototypes": np.ascontiguousarray(self._PT.T),
                "indices": self._idx.copy(),
                "weights": self._w.copy(),
                "ternary_weights": self._tern.copy(),
                "traces": self._traces.copy(),
                "firing_rates": self._rates.copy(),
                "last_activations": self._last_act.copy(),
                "last_spike_ms": self._last_spike.copy(),
                "rng": _plain(st),
                "neuromod": {k: np.array(v, dtype=np.float64)
                             for k, v in self._neuromod.to_dict().items()},
            }

    @classmethod
    def restore(cls, state: Mapping[str, Any], *, clock: Optional[Clock] = None) -> "EmbeddedSNN":
        """Rebuild a network from :meth:`state` (or its decoded bytes).

        Parameters
        ----------
        state : mapping
            As returned by :meth:`state`.
        clock : callable, optional
            Returns integer ns for delta timestamps (clocks are not saved).

        Returns
        -------
        EmbeddedSNN
            A network that continues exactly where the saved one stopped.

        Raises
        ------
        ValidationError
            When anything is missing, of the wrong type or shape, or out of range.
        """
        if not isinstance(state, Mapping):
            raise ValidationError(f"state must be a mapping, got {type(state).__name__}")
        need = ("engine_type", "format", "config", "tick", "prototypes", "indices", "weights",
                "ternary_weights", "traces", "firing_rates", "last_activations", "last_spike_ms",
                "rng", "neuromod")
        missing = [k for k in need if k not in state]
        if missing:
            raise ValidationError(f"SNN state lacks {', '.join(missing)}")
        if state["engine_type"] != ENGINE_TYPE:
            raise ValidationError(f"state is of engine {state['engine_type']!r}, expected {ENGINE_TYPE!r}")
        if _as_int(state["format"], "format") != STATE_FORMAT:
            raise ValidationError(f"unknown SNN state format {state['format']!r}")
        cfg = EmbeddedSNNConfig.from_dict(state["config"])
        nm = NeuromodState.from_dict(state["neuromod"])
        self = cls.__new__(cls)
        self._setup(cfg, nm, clock)
        n, d, k = cfg.num_neurons, cfg.input_dim, cfg.connections
        tick = _as_int(state["tick"], "tick")
        if tick < 0:
            raise ValidationError(f"tick must be non-negative, got {tick}")
        protos = _state_array(state, "prototypes", np.float32, (n, d))
        idx = _state_array(state, "indices", np.int64, (n, k))
        w = _state_array(state, "weights", np.float32, (n, k))
        tern = _state_array(state, "ternary_weights", np.int8, (n, k))
        if k and (idx.min() < 0 or idx.max() >= n or (idx == np.arange(n)[:, None]).any()
                  or (np.diff(np.sort(idx, axis=1), axis=1) == 0).any()):
            raise ValidationError("indices must name other neurons, each at most once per row")
        if tern.size and (tern.min() < -1 or tern.max() > 1):
            raise ValidationError("ternary_weights must be -1, 0 or +1")
        last_spike = _state_array(state, "last_spike_ms", np.int64, (n,))
        if n and last_spike.min() < _k.NEVER:
            raise ValidationError("last_spike_ms must be -1 (never) or a tick time")
        self._set_prototypes(protos)
        self._idx[...] = idx
        self._w[...] = w
        self._tern[...] = tern
        self._traces[...] = _state_array(state, "traces", np.float32, (n,))
        self._rates[...] = _state_array(state, "firing_rates", np.float32, (n,))
        self._last_act[...] = _state_array(state, "last_activations", np.float32, (n,))
        self._last_spike[...] = last_spike
        self._tick = tick
        self._rng = np.random.Generator(np.random.PCG64())
        try:
            self._rng.bit_generator.state = dict(state["rng"])
        except (TypeError, ValueError, KeyError) as e:
            raise ValidationError(f"bad rng state: {e}") from None
        return self

    # ------------------------------------------------------------------ display
    def _summary(self) -> Dict[str, Any]:
        r = self._rates
        return {"mean": float(r.mean()) if r.size else 0.0, "max": float(r.max()) if r.size else 0.0,
                "active": int((r >= _F(0.01)).sum())}

    def __repr__(self) -> str:
        c = self._config
        with self._lock:
            s = self._summary()
        mode = "ternary" if c.use_ternary else "continuous"
        return (f"EmbeddedSNN(neurons={c.num_neurons}, input_dim={c.input_dim}, k={self._kk}, "
                f"{mode}, tick={self._tick}, mean_rate={s['mean']:.3f}, {self._neuromod!r})")

    def _repr_html_(self) -> str:
        c = self._config
        with self._lock:
            s = self._summary()
        mode = "ternary" if c.use_ternary else "continuous"
        nm = "".join(f"<td>{v:.2f}</td>" for v in self._neuromod.to_dict().values())
        heads = "".join(f"<th>{html.escape(k[:3])}</th>" for k in LEVELS)
        return (f"<div><b>EmbeddedSNN</b> {c.num_neurons} neurons x {c.input_dim} inputs, "
                f"k={self._kk}, {mode}, prototype_lr={c.prototype_lr:g}, tick {self._tick}"
                f"<table><tr><th>rate mean</th><th>rate max</th><th>active</th>{heads}</tr>"
                f"<tr><td>{s['mean']:.3f}</td><td>{s['max']:.3f}</td><td>{s['active']}</td>{nm}</tr>"
                f"</table></div>")


def _plain(obj: Any) -> Any:
    """A deep copy of nested dicts of ints / strs (an rng state) as plain Python."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (np.integer, int)) and not isinstance(obj, bool):
        return int(obj)
    return obj


def _state_array(state: Mapping[str, Any], name: str, dtype: Any, shape: Tuple[int, ...]) -> np.ndarray:
    a = state[name]
    if not isinstance(a, np.ndarray):
        raise ValidationError(f"state[{name!r}] must be a numpy array, got {type(a).__name__}")
    if a.shape != shape:
        raise ValidationError(f"state[{name!r}] must have shape {shape}, got {a.shape}")
    dt = np.dtype(dtype)
    if a.dtype != dt:
        if not np.can_cast(a.dtype, dt, "safe"):
            raise ValidationError(f"state[{name!r}] must be {dt}, got {a.dtype}")
        a = a.astype(dt)
    if dt.kind == "f" and a.size and not np.isfinite(a).all():
        raise ValidationError(f"state[{name!r}] contains NaN or infinity")
    return a


LOCK_FREE_SAFE: Dict[str, str] = {
    "restore": "builds a new network (no shared state)",
}
"""Public methods of :class:`EmbeddedSNN` that do not take its lock themselves, and why that is
safe; every other public method holds the lock (properties return read-only views or copies)."""
