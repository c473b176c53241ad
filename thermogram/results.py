"""Result records returned by the capsule's operations (plain dataclasses)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Tuple

__all__ = ["ConsolidationResult", "TransitionResult", "CrystallizationResult", "ThermogramStats"]


@dataclass
class TransitionResult:
    """Counts from one :meth:`Thermogram.run_thermal_transitions`."""

    promoted: Tuple[int, int, int] = (0, 0, 0)
    """hot->warm, warm->cool, cool->cold"""
    demoted: Tuple[int, int, int] = (0, 0, 0)
    """cold->cool, cool->warm, warm->hot"""
    pruned: int = 0

    @property
    def total_promoted(self) -> int:
        """Entries promoted (moved to a colder layer) over all three steps."""
        return sum(self.promoted)

    @property
    def total_demoted(self) -> int:
        """Entries demoted (moved to a hotter layer) over all three steps."""
        return sum(self.demoted)


@dataclass
class CrystallizationResult:
    """Counts from one :meth:`Thermogram.crystallize`: new cold entries, and merges into existing ones."""

    crystallized: int = 0
    merged: int = 0


@dataclass
class ThermogramStats:
    """A snapshot of sizes and counters (see :meth:`Thermogram.stats`)."""

    total_keys: int
    hot_entries: int
    warm_entries: int
    cool_entries: int
    cold_entries: int
    dirty_deltas: int
    total_deltas_lifetime: int
    total_consolidations: int
    records: int
    created_at: int
    last_consolidation: int
    estimated_size_bytes: int


@dataclass
class ConsolidationResult:
    """What one :meth:`Thermogram.consolidate` did.

    ``entries_merged`` counts merges folded into existing hot entries; with
    ``semantics="reference"`` it also adds the crystallized count, as the
    reference reports it.
    """

    deltas_processed: int = 0
    entries_after: int = 0
    entries_pruned: int = 0
    entries_merged: int = 0
    entries_created: int = 0
    entries_deleted: int = 0
    crystallized: int = 0
    promoted: int = 0
    demoted: int = 0
    transition_pruned: int = 0
    timestamp: int = 0

    def to_dict(self) -> Dict[str, int]:
        """The counters as a plain dict (a shallow copy of the fields)."""
        return dict(self.__dict__)
