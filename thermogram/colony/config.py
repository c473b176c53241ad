"""Colony configuration and result records: :class:`ColonyConfig`,
:class:`ColonyConsolidationResult`, :class:`ColonyStats`, :class:`ColonyMetadata`,
and the small validators they and the colony's constructor share."""
from __future__ import annotations

from dataclasses import dataclass, field
from dataclasses import replace as _dc_replace
from typing import Any, Dict

import numpy as np

from ..errors import ValidationError
from ..thermal import ThermalConfig

__all__ = ["ColonyConfig", "ColonyConsolidationResult", "ColonyStats", "ColonyMetadata"]


def _count(v: Any, name: str, minimum: int = 0) -> int:
    """``v`` as an int, or a :class:`ValidationError` unless it is an integer >= ``minimum``."""
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or int(v) < minimum:
        raise ValidationError(f"{name} must be an integer >= {minimum}, got {v!r}")
    return int(v)


def _f32(v: Any, name: str) -> float:
    """``v`` rounded to float32 (returned as a float), or a :class:`ValidationError`
    unless it is a finite real number."""
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise ValidationError(f"{name} must be a real number, got {type(v).__name__}")
    f = np.float32(v)
    if not np.isfinite(f):
        raise ValidationError(f"{name} must be finite, got {v!r}")
    return float(f)


@dataclass(frozen=True)
class ColonyConfig:
    """How a colony grows, shrinks and balances (the reference's fields and defaults).

    Parameters
    ----------
    split_threshold : int
        A member holding more keys than this splits in two at the next
        :meth:`ThermogramColony.consolidate` (default 10,000).
    merge_threshold : int
        Members holding fewer keys than this merge, two at a time (default 1,000).
    balance_target : float
        Where a split cuts a member's keys, as a quantile of their locality
        hashes: 0.5 (default) gives two halves.
    balance_tolerance : float
        Rebalancing moves keys only from members above ``target * (1 + tolerance)``
        to members below ``target * (1 - tolerance)``, where ``target`` is the
        mean keys per member (default 0.3).
    max_members : int
        No split beyond this many members (default 16).
    thermal_config : ThermalConfig
        Thermal configuration of new members (default ``ThermalConfig.default()``).

    Examples
    --------
    >>> ColonyConfig.fast_learner().split_threshold
    5000
    >>> ColonyConfig().replace(max_members=4).max_members
    4
    """

    split_threshold: int = 10_000
    merge_threshold: int = 1_000
    balance_target: float = 0.5
    balance_tolerance: float = 0.3
    max_members: int = 16
    thermal_config: ThermalConfig = field(default_factory=ThermalConfig.default)

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731
        set_("split_threshold", _count(self.split_threshold, "split_threshold"))
        set_("merge_threshold", _count(self.merge_threshold, "merge_threshold"))
        set_("max_members", _count(self.max_members, "max_members", 1))
        bt = _f32(self.balance_target, "balance_target")
        if not 0.0 < bt < 1.0:
            raise ValidationError(f"balance_target must be in (0, 1), got {self.balance_target!r}")
        set_("balance_target", bt)
        tol = _f32(self.balance_tolerance, "balance_tolerance")
        if tol < 0.0:
            raise ValidationError(f"balance_tolerance must be >= 0, got {self.balance_tolerance!r}")
        set_("balance_tolerance", tol)
        if not isinstance(self.thermal_config, ThermalConfig):
            raise ValidationError(f"thermal_config must be a ThermalConfig, got {type(self.thermal_config).__name__}")

    @classmethod
    def default(cls) -> "ColonyConfig":
        """Split above 10,000 keys, merge below 1,000, tolerance 0.3, at most 16 members."""
        return cls()

    @classmethod
    def fast_learner(cls) -> "ColonyConfig":
        """Smaller, faster members: split above 5,000, merge below 500, tolerance 0.25,
        at most 8 members, ``ThermalConfig.fast_learner()``."""
        return cls(5_000, 500, 0.5, 0.25, 8, ThermalConfig.fast_learner())

    def replace(self, **changes: Any) -> "ColonyConfig":
        """A copy with some fields changed."""
        return _dc_replace(self, **changes)

    def to_dict(self) -> Dict[str, Any]:
        """Plain, JSON-ready dict."""
        return {"split_threshold": self.split_threshold, "merge_threshold": self.merge_threshold,
                "balance_target": self.balance_target, "balance_tolerance": self.balance_tolerance,
                "max_members": self.max_members, "thermal_config": self.thermal_config.to_dict()}

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "ColonyConfig":
        """Inverse of :meth:`to_dict`."""
        if not isinstance(d, dict):
            raise ValidationError(f"colony config must be a mapping, got {type(d).__name__}")
        try:
            return cls(d["split_threshold"], d["merge_threshold"], d["balance_target"],
                       d["balance_tolerance"], d["max_members"], ThermalConfig.from_dict(d["thermal_config"]))
        except KeyError as e:
            raise ValidationError(f"colony config is missing field {e}") from None


@dataclass
class ColonyConsolidationResult:
    """What one :meth:`ThermogramColony.consolidate` did (summed over members)."""

    promoted: int = 0
    """Entries moved to a colder layer."""
    demoted: int = 0
    """Entries moved to a hotter layer."""
    pruned: int = 0
    """Entries dropped (weak hot entries, and weak entries of any layer after the transitions)."""
    rebalanced: int = 0
    """Keys moved from overloaded to underloaded members."""
    splits: int = 0
    merges: int = 0
    deltas_processed: int = 0
    """Pending deltas folded into the members."""
    neuromod_synced: int = 0
    """Members whose neuromodulator levels were pulled toward the colony's."""

    def to_dict(self) -> Dict[str, int]:
        """The counters as a plain dict (a shallow copy of the fields)."""
        return dict(self.__dict__)


@dataclass
class ColonyStats:
    """Sizes of a colony (see :meth:`ThermogramColony.stats`)."""

    member_count: int
    total_entries: int
    """Keys over all members (as the reference: a key in two layers of a member counts once)."""
    hot_entries: int
    warm_entries: int
    cool_entries: int
    cold_entries: int
    split_count: int
    merge_count: int
    pending_deltas: int = 0


@dataclass
class ColonyMetadata:
    """Identity and lifetime counters of a colony (times are int ns, UTC)."""

    id: str
    name: str
    created: int
    modified: int
    total_entries: int = 0
    split_count: int = 0
    merge_count: int = 0

    def to_dict(self) -> Dict[str, Any]:
        """The fields as a plain dict (a shallow copy of the fields)."""
        return dict(self.__dict__)
