"""When to consolidate, and what a consolidation reports."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Tuple

from .errors import ValidationError
from .results import ConsolidationResult

__all__ = ["ConsolidationTrigger", "ConsolidationPolicy", "ConsolidationResult", "NS_PER_HOUR"]

NS_PER_HOUR = 3_600_000_000_000


@dataclass(frozen=True)
class ConsolidationTrigger:
    """One trigger: ``delta_count(n)``, ``time_period(hours)``, ``dirty_size(bytes)`` or ``manual()``."""

    kind: str
    value: int = 0

    KINDS = ("delta_count", "time_period", "dirty_size", "manual")

    def __post_init__(self):
        if self.kind not in self.KINDS:
            raise ValidationError(f"unknown trigger {self.kind!r}; expected one of {self.KINDS}")
        if not isinstance(self.value, int) or isinstance(self.value, bool) or self.value < 0:
            raise ValidationError(f"trigger value must be a non-negative integer, got {self.value!r}")

    @classmethod
    def delta_count(cls, n: int) -> "ConsolidationTrigger":
        """Consolidate once ``n`` deltas are pending."""
        return cls("delta_count", n)

    @classmethod
    def time_period(cls, hours: int) -> "ConsolidationTrigger":
        """Consolidate once ``hours`` have passed since the last consolidation (by the clock)."""
        return cls("time_period", hours)

    @classmethod
    def dirty_size(cls, nbytes: int) -> "ConsolidationTrigger":
        """Consolidate once pending deltas are estimated at ``nbytes`` or more."""
        return cls("dirty_size", nbytes)

    @classmethod
    def manual(cls) -> "ConsolidationTrigger":
        """Never consolidate on its own."""
        return cls("manual", 0)

    def fires(self, pending: int, since_last_ns: int, dirty_bytes: int) -> bool:
        """Whether this trigger asks for a consolidation now."""
        if self.kind == "delta_count":
            return pending >= self.value
        if self.kind == "time_period":
            return since_last_ns >= self.value * NS_PER_HOUR
        if self.kind == "dirty_size":
            return dirty_bytes >= self.value
        return False


@dataclass(frozen=True)
class ConsolidationPolicy:
    """Triggers plus whether consolidation prunes and merges.

    The reference's presets: :meth:`default` (1000 deltas or 24 h),
    :meth:`aggressive` (100 or 1 h), :meth:`conservative` (10000 or a week,
    no pruning or merging), and :meth:`manual_only`.
    """

    triggers: Tuple[ConsolidationTrigger, ...] = ()
    enable_pruning: bool = True
    enable_merging: bool = True

    def __post_init__(self):
        trig = tuple(self.triggers)
        for t in trig:
            if not isinstance(t, ConsolidationTrigger):
                raise ValidationError(f"triggers must be ConsolidationTrigger objects, got {t!r}")
        object.__setattr__(self, "triggers", trig)
        object.__setattr__(self, "enable_pruning", bool(self.enable_pruning))
        object.__setattr__(self, "enable_merging", bool(self.enable_merging))

    @classmethod
    def default(cls) -> "ConsolidationPolicy":
        """Consolidate at 1000 pending deltas or every 24 hours; pruning and merging on."""
        T = ConsolidationTrigger
        return cls((T.delta_count(1000), T.time_period(24)), True, True)

    @classmethod
    def aggressive(cls) -> "ConsolidationPolicy":
        """Consolidate at 100 pending deltas or every hour; pruning and merging on."""
        T = ConsolidationTrigger
        return cls((T.delta_count(100), T.time_period(1)), True, True)

    @classmethod
    def conservative(cls) -> "ConsolidationPolicy":
        """Consolidate at 10000 pending deltas or every 168 hours (a week); no pruning or merging."""
        T = ConsolidationTrigger
        return cls((T.delta_count(10000), T.time_period(168)), False, False)

    @classmethod
    def manual_only(cls, enable_pruning: bool = True, enable_merging: bool = True) -> "ConsolidationPolicy":
        """Only the :meth:`ConsolidationTrigger.manual` trigger: never consolidate on its own."""
        return cls((ConsolidationTrigger.manual(),), enable_pruning, enable_merging)

    def should_consolidate(self, pending: int, since_last_ns: int, dirty_bytes: int) -> bool:
        """Whether any trigger fires."""
        return any(t.fires(pending, since_last_ns, dirty_bytes) for t in self.triggers)

    def to_dict(self) -> Dict[str, Any]:
        """Plain, JSON-ready dict; triggers as ``[kind, value]`` pairs."""
        return {"triggers": [[t.kind, t.value] for t in self.triggers],
                "enable_pruning": self.enable_pruning, "enable_merging": self.enable_merging}

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "ConsolidationPolicy":
        """Inverse of :meth:`to_dict`; also reads the reference's JSON triggers.

        A trigger may be a ``[kind, value]`` pair, a bare kind name (``"Manual"`` is the
        manual trigger), or a reference mapping: ``{"DeltaCount": n}``,
        ``{"TimePeriod": {"hours": h}}`` or ``{"DirtySize": {"bytes": b}}``. Missing
        ``enable_pruning`` / ``enable_merging`` default to True.
        """
        trig: List[ConsolidationTrigger] = []
        for t in d.get("triggers", []):
            if isinstance(t, str):  # reference JSON: "Manual"
                trig.append(ConsolidationTrigger.manual() if t == "Manual" else ConsolidationTrigger(t))
            elif isinstance(t, dict):  # reference JSON: {"DeltaCount": 1000}
                (k, v), = t.items()
                if k == "DeltaCount":
                    trig.append(ConsolidationTrigger.delta_count(int(v)))
                elif k == "TimePeriod":
                    trig.append(ConsolidationTrigger.time_period(int(v["hours"])))
                elif k == "DirtySize":
                    trig.append(ConsolidationTrigger.dirty_size(int(v["bytes"])))
                else:
                    raise ValidationError(f"unknown trigger {k!r}")
            else:
                trig.append(ConsolidationTrigger(str(t[0]), int(t[1])))
        return cls(tuple(trig), bool(d.get("enable_pruning", True)), bool(d.get("enable_merging", True)))
