"""Thermal layers and their configuration (the reference's numbers)."""
from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from typing import Any, Dict, Sequence, Tuple

import numpy as np

from .errors import ValidationError, parse_int_enum
from .signal import Signal

__all__ = ["ThermalState", "ThermalConfig", "USIZE_MAX"]

USIZE_MAX = 2 ** 64 - 1
"""The reference's ``usize::MAX``: "never" for ``min_observations``."""


class ThermalState(enum.IntEnum):
    """The four layers, hottest first: working, session, skill, identity memory."""

    HOT = 0
    WARM = 1
    COOL = 2
    COLD = 3

    @classmethod
    def parse(cls, value: Any) -> "ThermalState":
        """Layer from a ThermalState, its index, or its name (``"hot"``...)."""
        return parse_int_enum(cls, value, "thermal state", "hot, warm, cool or cold")

    def colder(self) -> "ThermalState | None":
        """Next colder layer, or None for cold."""
        return None if self is ThermalState.COLD else ThermalState(self + 1)

    def hotter(self) -> "ThermalState | None":
        """Next hotter layer, or None for hot."""
        return None if self is ThermalState.HOT else ThermalState(self - 1)

    @property
    def label(self) -> str:
        """Lower-case name: ``"hot"``, ``"warm"``, ``"cool"``, ``"cold"``."""
        return self.name.lower()


def _sig4(values: Sequence[Any], name: str) -> Tuple[Signal, Signal, Signal, Signal]:
    if len(values) != 4:
        raise ValidationError(f"{name} needs 4 values (hot, warm, cool, cold), got {len(values)}")
    return tuple(Signal.coerce(v, name) for v in values)  # type: ignore[return-value]


@dataclass(frozen=True)
class ThermalConfig:
    """Per-layer decay, promotion and demotion settings (indexed hot, warm, cool, cold).

    Build with :meth:`default`, :meth:`fast_learner` or :meth:`organic`, and
    adjust with :meth:`replace`.
    """

    decay_rates: Tuple[Signal, Signal, Signal, Signal]
    promotion_thresholds: Tuple[Signal, Signal, Signal, Signal]
    demotion_thresholds: Tuple[Signal, Signal, Signal, Signal]
    min_observations: Tuple[int, int, int, int]
    allow_demotion: Tuple[bool, bool, bool, bool]
    prune_threshold: Signal
    crystallization_threshold: Signal
    allow_warming: bool = True
    warming_delta: Signal = field(default_factory=lambda: Signal.positive(77))

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731
        set_("decay_rates", _sig4(self.decay_rates, "decay_rates"))
        set_("promotion_thresholds", _sig4(self.promotion_thresholds, "promotion_thresholds"))
        set_("demotion_thresholds", _sig4(self.demotion_thresholds, "demotion_thresholds"))
        mo = tuple(self.min_observations)
        if len(mo) != 4 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                   and 0 <= int(v) <= USIZE_MAX for v in mo):
            raise ValidationError("min_observations needs 4 integers in 0..2**64-1")
        set_("min_observations", tuple(int(v) for v in mo))
        ad = tuple(self.allow_demotion)
        if len(ad) != 4:
            raise ValidationError("allow_demotion needs 4 booleans")
        set_("allow_demotion", tuple(bool(v) for v in ad))
        set_("prune_threshold", Signal.coerce(self.prune_threshold, "prune_threshold"))
        set_("crystallization_threshold",
             Signal.coerce(self.crystallization_threshold, "crystallization_threshold"))
        set_("allow_warming", bool(self.allow_warming))
        set_("warming_delta", Signal.coerce(self.warming_delta, "warming_delta"))
        ret = np.array([np.float32(1.0) - np.float32(x.magnitude) / np.float32(255.0)
                        for x in self.decay_rates], dtype=np.float32)
        ret.flags.writeable = False
        set_("_retention", ret)
        arrays = (self.mags("promotion_thresholds"), np.array(self.min_observations, dtype=np.uint64),
                  self.mags("demotion_thresholds"), np.array(self.allow_demotion, dtype=np.bool_))
        for a in arrays:
            a.flags.writeable = False
        set_("_transition", arrays)

    @classmethod
    def default(cls) -> "ThermalConfig":
        """The reference default: decay 26/3/1/1, promote at 153/191/230, demote below 77/102/128."""
        P = Signal.positive
        return cls((P(26), P(3), P(1), P(1)), (P(153), P(191), P(230), P(255)),
                   (P(0), P(77), P(102), P(128)), (3, 10, 50, USIZE_MAX),
                   (False, True, True, True), P(13), P(191), True, P(77))

    @classmethod
    def fast_learner(cls) -> "ThermalConfig":
        """Faster promotion, cold never demotes."""
        P = Signal.positive
        return cls((P(13), P(1), P(1), P(1)), (P(128), P(166), P(217), P(255)),
                   (P(0), P(51), P(77), P(102)), (2, 5, 20, USIZE_MAX),
                   (False, True, True, False), P(8), P(217), True, P(51))

    @classmethod
    def organic(cls) -> "ThermalConfig":
        """Slow, deliberate promotion."""
        P = Signal.positive
        return cls((P(26), P(3), P(1), P(1)), (P(179), P(204), P(242), P(255)),
                   (P(0), P(64), P(89), P(115)), (5, 15, 100, USIZE_MAX),
                   (False, True, True, True), P(13), P(242), True, P(77))

    def replace(self, **changes: Any) -> "ThermalConfig":
        """A copy with some fields changed."""
        return replace(self, **changes)

    # kernel-ready arrays ------------------------------------------------
    def retention_array(self) -> np.ndarray:
        """float32 ``1 - decay_rate/255`` per layer (read-only, computed once)."""
        return self._retention

    def transition_arrays(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(promotion magnitudes, min_observations, demotion magnitudes, allow_demotion)`` as
        the uint8 / uint64 / uint8 / bool arrays the transition kernel takes (read-only,
        computed once)."""
        return self._transition

    def mags(self, name: str) -> np.ndarray:
        """uint8 magnitudes of a 4-tuple Signal field."""
        return np.array([s.magnitude for s in getattr(self, name)], dtype=np.uint8)

    def to_dict(self) -> Dict[str, Any]:
        """Plain dict (Signals as ``[polarity, magnitude]``)."""
        return {
            "decay_rates": [list(s) for s in self.decay_rates],
            "promotion_thresholds": [list(s) for s in self.promotion_thresholds],
            "demotion_thresholds": [list(s) for s in self.demotion_thresholds],
            "min_observations": list(self.min_observations),
            "allow_demotion": list(self.allow_demotion),
            "prune_threshold": list(self.prune_threshold),
            "crystallization_threshold": list(self.crystallization_threshold),
            "allow_warming": self.allow_warming,
            "warming_delta": list(self.warming_delta),
        }

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "ThermalConfig":
        """Inverse of :meth:`to_dict`; also takes ``{"polarity":..,"magnitude":..}`` signals."""
        def sig(v):
            return Signal(v["polarity"], v["magnitude"]) if isinstance(v, dict) else Signal.coerce(v)
        try:
            return cls([sig(v) for v in d["decay_rates"]], [sig(v) for v in d["promotion_thresholds"]],
                       [sig(v) for v in d["demotion_thresholds"]], list(d["min_observations"]),
                       list(d["allow_demotion"]), sig(d["prune_threshold"]),
                       sig(d["crystallization_threshold"]), d.get("allow_warming", True),
                       sig(d.get("warming_delta", [1, 77])))
        except KeyError as e:
            raise ValidationError(f"thermal config is missing field {e}") from None
