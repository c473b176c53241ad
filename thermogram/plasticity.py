"""Plasticity rules: how a new observation changes a stored strength."""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Dict

import numpy as np

from .errors import ValidationError
from .kernels import plasticity as _k
from .signal import SIGNAL, U8, Signal, packed_signals, unpacked_signals

__all__ = ["UpdatePolicy", "PlasticityRule"]



class UpdatePolicy(enum.IntEnum):
    """How :meth:`PlasticityRule.apply_update` combines current and new strength."""

    STDP = _k.STDP
    """Current decays with elapsed time, then ``+ learning_rate * new`` (clamped to 1)."""
    REPLACE = _k.REPLACE
    """The new strength replaces the old."""
    EMA = _k.EMA
    """``lr * new + (1 - lr) * current``."""
    BAYESIAN = _k.BAYESIAN
    """Strength-weighted mean ``(c^2 + n^2) / (c + n)``."""
    WTA = _k.WTA
    """Winner takes all: the larger of the two."""

    @classmethod
    def parse(cls, value: Any) -> "UpdatePolicy":
        """Policy from an UpdatePolicy, its int code, or a name (``"STDP"``, ``"ema"``...)."""
        if isinstance(value, UpdatePolicy):
            return value
        if isinstance(value, str):
            name = value.strip().upper()
            if name == "REPLACE":
                return cls.REPLACE
            try:
                return cls[name]
            except KeyError:
                pass
        elif isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            try:
                return cls(int(value))
            except ValueError:
                pass
        raise ValidationError(
            f"unknown update policy {value!r}; expected one of STDP, Replace, EMA, Bayesian, WTA"
        )

    @property
    def reference_name(self) -> str:
        """The name the reference crate uses (``"STDP"``, ``"Replace"``, ...)."""
        return {0: "STDP", 1: "Replace", 2: "EMA", 3: "Bayesian", 4: "WTA"}[int(self)]


def _strength_field(value: Any, name: str) -> Signal:
    return Signal.coerce(value, name)


@dataclass(frozen=True)
class PlasticityRule:
    """A plasticity rule: policy and its thresholds, all as Signals.

    Parameters
    ----------
    policy : UpdatePolicy
    novelty_threshold : Signal
        ``should_create_new(score)`` is true above this magnitude.
    merge_threshold : Signal
        ``should_merge(similarity)`` is true above ``255 - merge_threshold``.
    decay_rate : Signal
        STDP decay per day of elapsed time.
    prune_threshold : Signal
        Entries weaker than this are pruned at consolidation.
    learning_rate : Signal
        STDP/EMA step size.
    """

    policy: UpdatePolicy
    novelty_threshold: Signal
    merge_threshold: Signal
    decay_rate: Signal
    prune_threshold: Signal
    learning_rate: Signal

    def __post_init__(self):
        object.__setattr__(self, "policy", UpdatePolicy.parse(self.policy))
        for f in ("novelty_threshold", "merge_threshold", "decay_rate", "prune_threshold",
                  "learning_rate"):
            object.__setattr__(self, f, _strength_field(getattr(self, f), f))

    # presets -----------------------------------------------------------
    @classmethod
    def stdp_like(cls) -> "PlasticityRule":
        """STDP, novelty 153, merge 77, decay 3, prune 26, learning rate 26."""
        P = Signal.positive
        return cls(UpdatePolicy.STDP, P(153), P(77), P(3), P(26), P(26))

    @classmethod
    def conservative(cls) -> "PlasticityRule":
        """EMA, novelty 204, merge 102, decay 1, prune 13, learning rate 13."""
        P = Signal.positive
        return cls(UpdatePolicy.EMA, P(204), P(102), P(1), P(13), P(13))

    @classmethod
    def aggressive(cls) -> "PlasticityRule":
        """STDP, novelty 102, merge 51, decay 5, prune 51, learning rate 51."""
        P = Signal.positive
        return cls(UpdatePolicy.STDP, P(102), P(51), P(5), P(51), P(51))

    @classmethod
    def replace_only(cls) -> "PlasticityRule":
        """Replace; never creates, merges, decays or prunes; learning rate 255."""
        P = Signal.positive
        return cls(UpdatePolicy.REPLACE, P(255), P(0), P(0), P(0), P(255))

    @classmethod
    def bayesian(cls) -> "PlasticityRule":
        """Bayesian, novelty 179, merge 77, decay 3, prune 26, learning rate 26."""
        P = Signal.positive
        return cls(UpdatePolicy.BAYESIAN, P(179), P(77), P(3), P(26), P(26))

    # scalar rules ------------------------------------------------------
    def apply_update(self, current: Signal, new: Signal, time_delta_seconds: float = 0.0) -> Signal:
        """Fold ``new`` into ``current`` after ``time_delta_seconds`` (cast to float32).

        Polarity comes from ``new`` when its magnitude is at least the current one.
        """
        c = Signal.coerce(current, "current strength")
        n = Signal.coerce(new, "new strength")
        try:
            dt = float(time_delta_seconds)
        except (TypeError, ValueError):
            raise ValidationError(f"time_delta_seconds must be a number, got {time_delta_seconds!r}") from None
        p, m = _k.apply_update_scalar(
            int(self.policy), self.decay_rate.magnitude, self.learning_rate.magnitude,
            c.polarity, c.magnitude, n.polarity, n.magnitude, dt)
        return Signal.from_checked(p, m)

    def apply_update_array(self, current: np.ndarray, new: np.ndarray,
                           time_delta_seconds: Any = 0.0) -> np.ndarray:
        """Vectorised :meth:`apply_update` over SIGNAL arrays (same length).

        ``time_delta_seconds`` is a scalar or an array of the same length.
        Element ``i`` of the result is ``apply_update(current[i], new[i], dt[i])``, bit for bit.
        """
        cur = np.asarray(current)
        nw = np.asarray(new)
        if cur.dtype != SIGNAL or nw.dtype != SIGNAL:
            raise ValidationError("apply_update_array needs SIGNAL arrays")
        if cur.shape != nw.shape or cur.ndim != 1:
            raise ValidationError(f"shape mismatch: {cur.shape} vs {nw.shape}")
        try:
            dt = np.asarray(time_delta_seconds, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValidationError("time_delta_seconds must be a number or an array of numbers") from None
        if dt.size == 1:
            dt = dt.reshape(1)  # one value for every element: the kernel takes it as is
        elif dt.shape != cur.shape:
            raise ValidationError(f"time_delta_seconds has shape {dt.shape}; expected () or {cur.shape}")
        else:
            dt = np.ascontiguousarray(dt)
        out16 = np.empty(cur.shape[0], np.uint16)
        _k.apply_update_packed(int(self.policy), U8[self.decay_rate.magnitude], U8[self.learning_rate.magnitude],
                               packed_signals(cur), packed_signals(nw), dt, out16)
        return unpacked_signals(out16)

    def should_create_new(self, novelty_score: Signal) -> bool:
        """True when the novelty magnitude exceeds ``novelty_threshold``."""
        return Signal.coerce(novelty_score).magnitude > self.novelty_threshold.magnitude

    def should_merge(self, similarity: Signal) -> bool:
        """True when the similarity magnitude exceeds ``255 - merge_threshold``."""
        return Signal.coerce(similarity).magnitude > 255 - self.merge_threshold.magnitude

    def should_prune(self, strength: Signal) -> bool:
        """True when the strength magnitude is below ``prune_threshold``."""
        return Signal.coerce(strength).magnitude < self.prune_threshold.magnitude

    should_prune_signal = should_prune

    def should_prune_array(self, strengths: np.ndarray) -> np.ndarray:
        """Boolean mask of SIGNAL array entries below ``prune_threshold``."""
        s = np.asarray(strengths)
        if s.dtype != SIGNAL:
            raise ValidationError("should_prune_array needs a SIGNAL array")
        out = np.empty(s.shape[0], np.bool_)
        _k.below_threshold_mask(np.ascontiguousarray(s["magnitude"]),
                                U8[self.prune_threshold.magnitude], out)
        return out

    # ternary plasticity (the reference's transition tables) -------------
    def apply_ternary_update(self, current: Any, observed: Any, confidence: float):
        """Discrete update of a ternary weight toward ``observed`` with ``confidence``
        under this rule's policy (see :mod:`thermogram.ternary`)."""
        from .ternary import apply_ternary_update
        return apply_ternary_update(int(self.policy), self.learning_rate.magnitude, current, observed,
                                    confidence)

    def apply_ternary_update_array(self, current: Any, observed: Any, confidence: Any) -> np.ndarray:
        """Vectorised :meth:`apply_ternary_update` over int8 weight arrays."""
        from .ternary import apply_ternary_update_array
        return apply_ternary_update_array(int(self.policy), self.learning_rate.magnitude, current,
                                          observed, confidence)

    @staticmethod
    def apply_ternary_stdp(weight: Any, pre_fired: bool, post_fired: bool, time_delta_ms: int):
        """Ternary STDP on a co-firing pair: strengthen if pre led, weaken if it lagged."""
        from .ternary import apply_ternary_stdp
        return apply_ternary_stdp(weight, pre_fired, post_fired, time_delta_ms)

    @staticmethod
    def ternary_majority_vote(weights: Any):
        """The majority sign of some ternary weights (ties give zero)."""
        from .ternary import ternary_majority_vote
        return ternary_majority_vote(weights)

    @staticmethod
    def decay_toward_zero(weight: Any):
        """+1 and -1 decay to 0; 0 stays."""
        from .ternary import decay_toward_zero
        return decay_toward_zero(weight)

    @staticmethod
    def should_prune_ternary(weight: Any) -> bool:
        """A zero ternary weight can be pruned."""
        from .ternary import should_prune_ternary
        return should_prune_ternary(weight)

    # (de)serialisation -------------------------------------------------
    def to_dict(self) -> Dict[str, Any]:
        """Plain dict (reference field names; Signals as ``[polarity, magnitude]``)."""
        return {
            "policy": self.policy.reference_name,
            "novelty_threshold": list(self.novelty_threshold),
            "merge_threshold": list(self.merge_threshold),
            "decay_rate": list(self.decay_rate),
            "prune_threshold": list(self.prune_threshold),
            "learning_rate": list(self.learning_rate),
        }

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "PlasticityRule":
        """Inverse of :meth:`to_dict`; also takes ``{"polarity":..,"magnitude":..}`` signals."""
        def sig(v):
            if isinstance(v, dict):
                return Signal(v["polarity"], v["magnitude"])
            return Signal.coerce(v)
        try:
            return cls(UpdatePolicy.parse(d["policy"]), sig(d["novelty_threshold"]),
                       sig(d["merge_threshold"]), sig(d["decay_rate"]), sig(d["prune_threshold"]),
                       sig(d["learning_rate"]))
        except KeyError as e:
            raise ValidationError(f"plasticity rule is missing field {e}") from None
