"""Neuromodulation: four chemical levels that tune the embedded SNN.

:class:`NeuromodState` holds dopamine (scales the STDP learning rate),
serotonin (slows decay, drives homeostasis), norepinephrine (scales lateral
competition) and acetylcholine (gates spreading activation), each in
``[0, 1]``. :class:`NeuromodSyncConfig` pulls a local state toward an
external one (a shared coordinator), at most once per ``sync_interval_ms``.

Arithmetic is float32, as in the reference crate; every level is stored as
the Python float of a float32 value, so the kernels see exactly these levels.
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable, Dict, Mapping, Optional

import numpy as np

from .errors import ValidationError

__all__ = ["NeuromodState", "NeuromodSyncConfig", "LEVELS"]

LEVELS = ("dopamine", "serotonin", "norepinephrine", "acetylcholine")
"""The four levels, in the order used by arrays and dicts."""

_F = np.float32
_BASELINE = _F(0.5)


def _finite(value: Any, what: str) -> np.float32:
    if isinstance(value, np.ndarray) and value.ndim <= 1 and value.size == 1:
        value = value.reshape(())[()]  # 0-d, or 1-element after a canonical round trip
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValidationError(f"{what} must be a real number, got {type(value).__name__}")
    try:
        f = float(value)
    except OverflowError:
        f = math.inf
    with np.errstate(over="ignore"):
        v = _F(f)
    if not math.isfinite(f) or not np.isfinite(v):
        raise ValidationError(f"{what} must be finite (and within float32 range), got {value!r}")
    return v


def _clamp01(v: np.float32) -> float:
    return float(min(max(v, _F(0.0)), _F(1.0)))


class NeuromodState:
    """Neuromodulator levels, each clamped to ``[0, 1]``.

    Parameters
    ----------
    dopamine : float
        Reward; multiplies the STDP learning rate.
    serotonin : float
        Mood / confidence; homeostasis rate ``0.01 * serotonin``, decay
        ``decay_rate * (1 - serotonin)``.
    norepinephrine : float
        Arousal; multiplies the competition strength.
    acetylcholine : float
        Focus; gates spreading activation.

    All default to the baseline 0.5. Values outside ``[0, 1]`` are clamped;
    NaN or infinity raises :class:`ValidationError`.

    The modifiers (:meth:`reward`, :meth:`stress`, :meth:`focus`,
    :meth:`decay`) change the state in place and return it, so they chain.

    Examples
    --------
    >>> s = NeuromodState.baseline().reward(0.3)
    >>> round(s.dopamine, 6)
    0.8
    """

    __slots__ = ("_levels", "_synced_at")

    def __init__(self, dopamine: float = 0.5, serotonin: float = 0.5,
                 norepinephrine: float = 0.5, acetylcholine: float = 0.5):
        self._levels = [0.5, 0.5, 0.5, 0.5]
        self._synced_at: Optional[int] = None
        for i, (name, v) in enumerate(zip(LEVELS, (dopamine, serotonin, norepinephrine,
                                                   acetylcholine))):
            self._levels[i] = _clamp01(_finite(v, name))

    # levels ------------------------------------------------------------
    def _get(i):  # noqa: N805 - property factory
        def get(self) -> float:
            return self._levels[i]

        def set(self, value: float) -> None:
            self._levels[i] = _clamp01(_finite(value, LEVELS[i]))
        return property(get, set, doc=f"{LEVELS[i].capitalize()} level in [0, 1] (float32 value).")

    dopamine = _get(0)
    serotonin = _get(1)
    norepinephrine = _get(2)
    acetylcholine = _get(3)
    del _get

    # constructors -------------------------------------------------------
    @classmethod
    def baseline(cls) -> "NeuromodState":
        """All four levels at 0.5."""
        return cls()

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "NeuromodState":
        """From a mapping with the four level names (floats or 0-d arrays)."""
        if not isinstance(d, Mapping):
            raise ValidationError(f"neuromod state must be a mapping, got {type(d).__name__}")
        missing = [k for k in LEVELS if k not in d]
        if missing:
            raise ValidationError(f"neuromod state lacks {', '.join(missing)}")
        return cls(*(d[k] for k in LEVELS))

    @classmethod
    def coerce(cls, obj: Any, what: str = "neuromod") -> "NeuromodState":
        """A NeuromodState from itself or a mapping of levels."""
        if isinstance(obj, NeuromodState):
            return obj
        if isinstance(obj, Mapping):
            return cls.from_dict(obj)
        raise ValidationError(f"{what} must be a NeuromodState, got {type(obj).__name__}")

    # modifiers ----------------------------------------------------------
    def reward(self, amount: float) -> "NeuromodState":
        """Raise dopamine by ``amount`` (clamped)."""
        a = _finite(amount, "amount")
        self._levels[0] = _clamp01(_F(self._levels[0]) + a)
        return self

    def stress(self, amount: float) -> "NeuromodState":
        """Lower serotonin and raise norepinephrine by ``amount`` (clamped)."""
        a = _finite(amount, "amount")
        self._levels[1] = _clamp01(_F(self._levels[1]) - a)
        self._levels[2] = _clamp01(_F(self._levels[2]) + a)
        return self

    def focus(self, amount: float) -> "NeuromodState":
        """Raise acetylcholine by ``amount`` (clamped)."""
        a = _finite(amount, "amount")
        self._levels[3] = _clamp01(_F(self._levels[3]) + a)
        return self

    def decay(self, rate: float) -> "NeuromodState":
        """Move every level toward the baseline 0.5 by the fraction ``rate``
        (``level += (0.5 - level) * rate``, clamped)."""
        r = _finite(rate, "rate")
        for i in range(4):
            v = _F(self._levels[i])
            self._levels[i] = _clamp01(v + (_BASELINE - v) * r)
        return self

    def _pull(self, other: "NeuromodState", rate: np.float32) -> None:
        for i in range(4):
            v = _F(self._levels[i])
            self._levels[i] = _clamp01(v + (_F(other._levels[i]) - v) * rate)

    # conversions --------------------------------------------------------
    def copy(self) -> "NeuromodState":
        """An independent copy (the sync timer is not copied)."""
        c = object.__new__(NeuromodState)
        c._levels = list(self._levels)
        c._synced_at = None
        return c

    def to_dict(self) -> Dict[str, float]:
        """``{level name: float}``."""
        return dict(zip(LEVELS, self._levels))

    def as_array(self) -> np.ndarray:
        """The four levels as a float32 array, in :data:`LEVELS` order."""
        return np.array(self._levels, dtype=np.float32)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NeuromodState):
            return NotImplemented
        return self._levels == other._levels

    __hash__ = None  # mutable

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v:.4g}" for k, v in zip(LEVELS, self._levels))
        return f"NeuromodState({inner})"

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><td>{k}</td><td>{v:.3f}</td></tr>" for k, v in zip(LEVELS, self._levels))
        return f"<div><b>NeuromodState</b><table>{rows}</table></div>"


def _monotonic_ns() -> int:
    return time.monotonic_ns()


class NeuromodSyncConfig:
    """How a local :class:`NeuromodState` follows an external one.

    Parameters
    ----------
    enabled : bool
        ``False``: :meth:`apply_sync` never changes anything.
    sync_rate : float
        Fraction of the gap closed per sync, in ``[0, 1]`` (1 = copy).
    sync_interval_ms : int
        Minimum time between two syncs of the same local state; 0 = every call.
    clock : callable, optional
        Returns integer nanoseconds (default ``time.monotonic_ns``); inject one
        for tests and simulations.

    The time of the last sync is kept on each local state, so one config can
    serve many local states.

    Examples
    --------
    >>> local, external = NeuromodState(), NeuromodState(dopamine=1.0)
    >>> NeuromodSyncConfig.default().apply_sync(local, external)
    True
    >>> round(local.dopamine, 6)
    0.55
    """

    __slots__ = ("enabled", "sync_rate", "sync_interval_ms", "clock")

    def __init__(self, enabled: bool = True, sync_rate: float = 0.1, sync_interval_ms: int = 100,
                 clock: Optional[Callable[[], int]] = None):
        if not isinstance(enabled, (bool, np.bool_)):
            raise ValidationError(f"enabled must be a bool, got {type(enabled).__name__}")
        rate = _finite(sync_rate, "sync_rate")
        if not _F(0.0) <= rate <= _F(1.0):
            raise ValidationError(f"sync_rate must be in [0, 1], got {sync_rate!r}")
        if isinstance(sync_interval_ms, bool) or not isinstance(sync_interval_ms, (int, np.integer)) \
                or not 0 <= int(sync_interval_ms) < 2 ** 63 // 1_000_000:
            raise ValidationError(f"sync_interval_ms must be a non-negative integer, got {sync_interval_ms!r}")
        if clock is not None and not callable(clock):
            raise ValidationError("clock must be a callable returning integer nanoseconds")
        self.enabled = bool(enabled)
        self.sync_rate = float(rate)
        self.sync_interval_ms = int(sync_interval_ms)
        self.clock = clock

    @classmethod
    def default(cls, clock: Optional[Callable[[], int]] = None) -> "NeuromodSyncConfig":
        """Enabled, 10% of the gap per sync, at most every 100 ms."""
        return cls(True, 0.1, 100, clock)

    @classmethod
    def independent(cls, clock: Optional[Callable[[], int]] = None) -> "NeuromodSyncConfig":
        """Never sync: the local state runs on its own."""
        return cls(False, 0.0, 0, clock)

    @classmethod
    def full_sync(cls, clock: Optional[Callable[[], int]] = None) -> "NeuromodSyncConfig":
        """Copy the external state, at most every 50 ms."""
        return cls(True, 1.0, 50, clock)

    def _now(self) -> int:
        t = (self.clock or _monotonic_ns)()
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)):
            raise ValidationError(f"clock must return integer nanoseconds, got {t!r}")
        return int(t)

    def apply_sync(self, local: NeuromodState, external: NeuromodState) -> bool:
        """Pull ``local`` toward ``external`` by ``sync_rate`` (in place).

        Skipped (returns False) when disabled, or when the last sync of
        ``local`` was less than ``sync_interval_ms`` ago by :attr:`clock`.
        Returns True when a sync happened.
        """
        if not isinstance(local, NeuromodState) or not isinstance(external, NeuromodState):
            raise ValidationError("apply_sync needs two NeuromodState objects")
        if not self.enabled:
            return False
        if self.sync_interval_ms > 0:
            now = self._now()
            last = local._synced_at
            if last is not None and now - last < self.sync_interval_ms * 1_000_000:
                return False
            local._synced_at = now
        local._pull(external, _F(self.sync_rate))
        return True

    def to_dict(self) -> Dict[str, Any]:
        """``enabled``, ``sync_rate`` and ``sync_interval_ms`` as a plain dict (the clock is left out)."""
        return {"enabled": self.enabled, "sync_rate": self.sync_rate,
                "sync_interval_ms": self.sync_interval_ms}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NeuromodSyncConfig):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None

    def __repr__(self) -> str:
        return (f"NeuromodSyncConfig(enabled={self.enabled}, sync_rate={self.sync_rate:g}, "
                f"sync_interval_ms={self.sync_interval_ms})")

    def _repr_html_(self) -> str:
        return (f"<div><b>NeuromodSyncConfig</b> enabled={self.enabled}, "
                f"sync_rate={self.sync_rate:g}, interval={self.sync_interval_ms} ms</div>")
